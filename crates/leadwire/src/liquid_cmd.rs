//! `leadwire templates ...` and `leadwire liquid ...`: render a template for a user, run a
//! conformance file. Argument handling only; the work is in `leadwire-liquid`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use leadwire_liquid::{ConnectedContent, ConnectedContentConfig, Context, Outcome, Template};

#[derive(Subcommand)]
pub enum TemplatesCommand {
    /// Render a template for a user and print the result (connected_content calls are made).
    Render(RenderArgs),
    /// Render a saved or unsaved webhook template for a user and send it once; prints the
    /// response's status, headers and body (logged to the activity log as a test send).
    TestSend(Box<crate::webhooks_cmd::TestSendArgs>),
    /// Check webhook templates (YAML config files or folders, or template JSON files) for what
    /// Salesforce would refuse: translated or unknown field and header names (with the name
    /// meant), missing required fields, `[insert_…]` placeholders, record ids that render empty.
    /// Uses the built-in Lead schema; saving through the API or `leadwire apply` also asks the
    /// org's describe call. Exits 1 when there is anything to fix.
    Lint(crate::webhooks_cmd::LintArgs),
}

#[derive(Args)]
pub struct RenderArgs {
    /// The template file to render.
    #[arg(long, conflicts_with = "inline", required_unless_present = "inline")]
    template: Option<PathBuf>,
    /// The template text itself, instead of a file.
    #[arg(long)]
    inline: Option<String>,
    /// The user as JSON: {"profile": {"first_name": ...}, "custom_attributes": {...},
    /// "event_properties": {...}, "api_trigger_properties": {...}, "campaign": {...}, ...}.
    #[arg(long)]
    user: Option<PathBuf>,
    /// What `now` means to the date filter (RFC 3339), for reproducible output.
    #[arg(long)]
    now: Option<String>,
    /// A PEM certificate to trust for connected_content HTTPS (e.g. the Salesforce emulator's).
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// connected_content time limit in milliseconds (Braze: 2000).
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
}

#[derive(Subcommand)]
pub enum LiquidCommand {
    /// Run a golden-liquid format conformance file; prints failures and "N passed, N failed".
    Golden {
        file: PathBuf,
        /// Print every case, not only failures.
        #[arg(long)]
        verbose: bool,
    },
}

pub fn run_templates(cmd: TemplatesCommand) -> anyhow::Result<()> {
    match cmd {
        TemplatesCommand::Render(args) => render(args),
        TemplatesCommand::TestSend(args) => crate::webhooks_cmd::test_send(*args),
        TemplatesCommand::Lint(args) => crate::webhooks_cmd::lint(args),
    }
}

fn render(args: RenderArgs) -> anyhow::Result<()> {
    let (source, origin) = match (&args.template, &args.inline) {
        (Some(path), _) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("reading template {}", path.display()))?,
            path.display().to_string(),
        ),
        (None, Some(text)) => (text.clone(), "--inline".to_string()),
        (None, None) => bail!("give --template FILE or --inline TEXT"),
    };
    let template = Template::parse(&source).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    let user: serde_json::Value = match &args.user {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading user {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", path.display()))?
        }
        None => serde_json::json!({}),
    };
    if !user.is_object() {
        bail!(
            "the user JSON must be an object like {{\"profile\": {{...}}, \"custom_attributes\": {{...}}}}"
        );
    }
    let mut context = Context::new().with_braze(&user);
    if let Some(now) = &args.now {
        let now = chrono::DateTime::parse_from_rfc3339(now)
            .with_context(|| format!("--now {now} is not an RFC 3339 time"))?;
        context = context.with_now(now.with_timezone(&chrono::Utc));
    }
    let runtime = tokio::runtime::Runtime::new()?;
    if template.uses_connected_content() {
        let mut client_config = leadwire_http_client::ClientConfig::default();
        if let Some(path) = &args.ca_cert {
            client_config
                .extra_ca_pem
                .push(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?);
        }
        let _guard = runtime.enter();
        let client = leadwire_http_client::build_client(&client_config)?;
        let fetcher = leadwire_http_client::HttpFetcher::new(client, runtime.handle().clone());
        let config = ConnectedContentConfig {
            timeout: std::time::Duration::from_millis(args.timeout_ms),
            ..Default::default()
        };
        context = context
            .with_connected_content(Arc::new(ConnectedContent::new(Arc::new(fetcher), config)));
    }
    // Rendering blocks on connected_content calls, so it runs off the runtime's workers.
    match template
        .render(&context)
        .map_err(|e| anyhow::anyhow!("{origin}: {e}"))?
    {
        Outcome::Rendered(text) => {
            print!("{text}");
            Ok(())
        }
        Outcome::Aborted { reason } => {
            eprintln!("aborted: {reason}");
            std::process::exit(3);
        }
        Outcome::TokenFailed(failure) => Err(anyhow::anyhow!(
            "{origin}: the token call failed: {} {}",
            failure.reason,
            failure.response_body
        )),
    }
}

pub fn run_liquid(cmd: LiquidCommand) -> anyhow::Result<()> {
    match cmd {
        LiquidCommand::Golden { file, verbose } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let suite: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", file.display()))?;
            let results = leadwire_liquid::golden::run_suite(&suite)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            for r in &results {
                if !r.passed {
                    println!("FAIL {}: {}", r.name, r.detail);
                } else if verbose {
                    println!("ok   {}", r.name);
                }
            }
            let passed = results.iter().filter(|r| r.passed).count();
            println!("{passed} passed, {} failed", results.len() - passed);
            if passed != results.len() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
