//! `leadwire serve`'s delivery options, `leadwire templates test-send` and `leadwire activity
//! tail`. Argument handling only; the work is in `leadwire-webhooks`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use leadwire_delivery::ssrf::{IpNet, SsrfPolicy};
use leadwire_profiles::Identifier;
use leadwire_store::{ActivityQuery, ActivityType, Store};
use leadwire_webhooks::service::{PreviewUser, RenderRequest, TemplateSource, TestSend};
use leadwire_webhooks::templates::TemplateDefinition;
use leadwire_webhooks::{RenderProperties, WebhookConfig, WebhookService};

use crate::server_cmd::DataDir;

/// Outbound delivery settings, shared by `serve` and `templates test-send`.
#[derive(Args, Clone)]
pub struct DeliveryArgs {
    /// Webhooks sent at once by the workers.
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Requests in flight to one host at most.
    #[arg(long, default_value_t = 64)]
    pub per_host_concurrency: usize,
    /// A PEM CA certificate to trust besides the public roots (e.g. the Salesforce emulator's).
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// Allow webhooks to this host name or address/network (e.g. localhost, 10.0.0.0/8) even
    /// though it is not public (repeatable). Everything else non-public is refused.
    #[arg(long = "allow-host")]
    pub allow_hosts: Vec<String>,
    /// Request time limit in seconds (Braze: 90).
    #[arg(long, default_value_t = 90)]
    pub timeout_secs: u64,
    /// How long a claimed job belongs to a worker; after a crash its jobs are sent again once
    /// this has passed. Keep it above the request time limit.
    #[arg(long, default_value_t = 300)]
    pub job_lease_secs: u64,
    /// Activity log entries are kept this many hours (Braze: 60).
    #[arg(long, default_value_t = 60)]
    pub activity_retention_hours: u64,
    /// Time limit in seconds for a connected_content call (Braze: 2).
    #[arg(long, default_value_t = 2)]
    pub connected_content_timeout_secs: u64,
    /// A Salesforce instance besides *.salesforce.com (an origin such as https://127.0.0.1:8443,
    /// or a host), for lookups before retried creates, empty-record-id checks and the linter
    /// (repeatable).
    #[arg(long = "salesforce-instance")]
    pub salesforce_instances: Vec<String>,
    /// How long an OAuth token fetched by connected_content is reused, in seconds, when its
    /// answer has no expires_in (Salesforce's never has; its default session lasts 2 hours).
    /// A token Salesforce refuses earlier (401) is dropped and fetched again.
    #[arg(long, default_value_t = 7200)]
    pub token_lifetime_secs: u64,
    /// Daily Salesforce API calls kept unspent per org (at least this many, or the share below,
    /// whichever is larger); sends to an org pause before they reach it.
    #[arg(long, default_value_t = 500)]
    pub api_reserve_calls: u64,
    /// The reserve as a percentage of the org's daily allowance.
    #[arg(long, default_value_t = 5.0)]
    pub api_reserve_percent: f64,
    /// For templates with `batch: true`: how long, in milliseconds, a Salesforce write waits
    /// for others to the same org to share one sObject Collections call (up to 200 records).
    #[arg(long, default_value_t = 200)]
    pub batch_window_ms: u64,
}

impl DeliveryArgs {
    /// The defaults, as if no option was given (for commands without delivery options).
    pub fn quiet() -> DeliveryArgs {
        DeliveryArgs {
            concurrency: 256,
            per_host_concurrency: 64,
            ca_cert: None,
            allow_hosts: Vec::new(),
            timeout_secs: 90,
            job_lease_secs: 300,
            activity_retention_hours: 60,
            connected_content_timeout_secs: 2,
            salesforce_instances: Vec::new(),
            token_lifetime_secs: 7200,
            api_reserve_calls: 500,
            api_reserve_percent: 5.0,
            batch_window_ms: 200,
        }
    }

    /// Resolves the arguments into the service's typed configuration.
    pub fn config(&self) -> anyhow::Result<WebhookConfig> {
        let mut config = WebhookConfig::new();
        let mut policy = SsrfPolicy::strict();
        for host in &self.allow_hosts {
            policy = match host.parse::<IpNet>() {
                Ok(net) => policy.allow_net(net),
                Err(_) => policy.allow_host(host),
            };
        }
        config.ssrf = policy;
        if let Some(path) = &self.ca_cert {
            config.extra_ca_pem.push(
                std::fs::read(path)
                    .with_context(|| format!("reading the CA certificate {}", path.display()))?,
            );
        }
        config.worker.concurrency = self.concurrency.max(1);
        config.worker.lease = Duration::from_secs(self.job_lease_secs.max(1));
        config.per_host_concurrency = self.per_host_concurrency.max(1);
        config.sender.timeout = Duration::from_secs(self.timeout_secs.max(1));
        config.activity_retention = Duration::from_secs(self.activity_retention_hours * 3600);
        config.connected_content.timeout =
            Duration::from_secs(self.connected_content_timeout_secs.max(1));
        config.connected_content.token_lifetime = Duration::from_secs(self.token_lifetime_secs);
        config.salesforce_instances = self.salesforce_instances.clone();
        if !(0.0..=100.0).contains(&self.api_reserve_percent) {
            anyhow::bail!(
                "--api-reserve-percent must be between 0 and 100, got {}",
                self.api_reserve_percent
            );
        }
        config.api_budget.reserve_calls = self.api_reserve_calls;
        config.api_budget.reserve_share = self.api_reserve_percent / 100.0;
        config.batch.window = Duration::from_millis(self.batch_window_ms);
        Ok(config)
    }
}

/// Opens the webhook service on the store (the worker is not started).
pub async fn open_service(
    delivery: &DeliveryArgs,
    store: Store,
) -> anyhow::Result<Arc<WebhookService>> {
    let config = delivery.config()?;
    WebhookService::open(config, store)
        .await
        .context("opening webhook delivery")
}

#[derive(Args)]
pub struct TestSendArgs {
    /// A saved template's id (see GET /templates/webhook/list).
    #[arg(
        long,
        conflicts_with = "template_file",
        required_unless_present = "template_file"
    )]
    template_id: Option<String>,
    /// A template definition JSON file (the shape POST /templates/webhook/create takes).
    #[arg(long)]
    template_file: Option<PathBuf>,
    /// An existing user's external id.
    #[arg(long, conflicts_with = "user", required_unless_present = "user")]
    external_id: Option<String>,
    /// A custom user as JSON: {"profile": {...}, "custom_attributes": {...}}.
    #[arg(long)]
    user: Option<PathBuf>,
    /// Trigger properties as JSON: {"event_properties": {...}, "api_trigger_properties": {...}}.
    #[arg(long)]
    properties: Option<PathBuf>,
    /// Render only; do not send.
    #[arg(long)]
    preview: bool,
    #[command(flatten)]
    data: DataDir,
    #[command(flatten)]
    delivery: DeliveryArgs,
}

fn read_json(path: &PathBuf) -> anyhow::Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

pub fn test_send(args: TestSendArgs) -> anyhow::Result<()> {
    let template = match (&args.template_id, &args.template_file) {
        (Some(id), _) => TemplateSource::Stored(id.clone()),
        (None, Some(path)) => TemplateSource::Draft(Box::new(
            TemplateDefinition::from_json(&read_json(path)?)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        )),
        (None, None) => anyhow::bail!("give --template-id ID or --template-file FILE"),
    };
    let user = match (&args.external_id, &args.user) {
        (Some(id), _) => PreviewUser::Existing(Identifier::ExternalId(id.clone())),
        (None, Some(path)) => PreviewUser::Custom(read_json(path)?),
        (None, None) => anyhow::bail!("give --external-id ID or --user FILE"),
    };
    let properties = match &args.properties {
        Some(path) => RenderProperties::from_json(&read_json(path)?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        None => RenderProperties::default(),
    };
    let request = RenderRequest {
        template,
        user,
        properties,
        campaign_id: None,
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let out = runtime.block_on(async {
        let store = args.data.open_store()?;
        let service = open_service(&args.delivery, store).await?;
        if args.preview {
            let result = service.preview(request).await?;
            return anyhow::Ok(result.to_json());
        }
        let result = service.test_send(request).await?;
        if let TestSend::Sent { message, .. } = &result {
            eprintln!("{message}");
        }
        anyhow::Ok(result.to_json())
    })?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    if out["outcome"] == "render_error" {
        anyhow::bail!(
            "the template did not render ({}: {}); nothing was sent",
            out["field"].as_str().unwrap_or("template"),
            out["message"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct LintArgs {
    /// YAML config files or folders (as `leadwire apply` reads them), or template JSON files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// A Salesforce instance besides *.salesforce.com (origin or host; repeatable).
    #[arg(long = "salesforce-instance")]
    salesforce_instances: Vec<String>,
}

/// `${env:NAME}` in linted files: the variable's value, or a stand-in (a URL for `…_URL`), so a
/// file can be checked without its secrets.
pub(crate) fn env_or_stand_in(name: &str) -> Option<String> {
    Some(std::env::var(name).unwrap_or_else(|_| {
        if name.ends_with("_URL") {
            "https://example.my.salesforce.com".to_owned()
        } else {
            format!("env-{name}")
        }
    }))
}

/// Parses, compiles and lints templates, printing each problem with file and line; returns how
/// many errors (the template cannot be saved) and warnings (the linter's findings) there were.
pub(crate) fn check_templates(
    templates: Vec<(PathBuf, serde_json::Value)>,
    instances: &leadwire_salesforce::target::Instances,
) -> (usize, usize) {
    let (mut errors, mut warnings) = (0, 0);
    for (file, json) in templates {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let definition = match TemplateDefinition::from_json(&json) {
            Ok(d) => d,
            Err(e) => {
                println!("error: {}: {e}", file.display());
                errors += 1;
                continue;
            }
        };
        let name = definition.template.name.clone();
        let compiled = match definition.compile_checked() {
            Ok(c) => c,
            Err(e) => {
                println!("error: {}: template '{name}': {e}", file.display());
                errors += 1;
                continue;
            }
        };
        let user = serde_json::json!({"profile": {}, "custom_attributes": {}});
        let url = leadwire_webhooks::lint::rendered_url(&definition.template, &user);
        for warning in leadwire_webhooks::lint::findings(
            &definition.template,
            compiled.warnings(),
            url.as_deref(),
            instances,
            None,
        ) {
            println!(
                "warning: {}",
                leadwire_app::warning_line(&file, &text, &name, &warning)
            );
            warnings += 1;
        }
    }
    (errors, warnings)
}

pub fn lint(args: LintArgs) -> anyhow::Result<()> {
    let instances = leadwire_salesforce::target::Instances::new(&args.salesforce_instances);
    let mut templates: Vec<(PathBuf, serde_json::Value)> = Vec::new();
    let mut problems = 0usize;
    for path in &args.paths {
        let is_json = path.extension().is_some_and(|x| x == "json");
        if is_json {
            templates.push((path.clone(), read_json(path)?));
            continue;
        }
        let loaded = if path.is_dir() {
            leadwire_config::load_dir(path, &env_or_stand_in)
        } else {
            let mut bundle = leadwire_config::Bundle::default();
            leadwire_config::load_file(path, &env_or_stand_in, &mut bundle).map(|()| bundle)
        };
        match loaded {
            Ok(bundle) => templates.extend(bundle.templates),
            Err(errors) => {
                for e in errors {
                    println!("error: {e}");
                    problems += 1;
                }
            }
        }
    }
    let (errors, warnings) = check_templates(templates, &instances);
    problems += errors + warnings;
    if problems > 0 {
        println!("{problems} problem(s) found");
        std::process::exit(1);
    }
    println!("no problems found");
    Ok(())
}

#[derive(Subcommand)]
pub enum ActivityCommand {
    /// Print the message activity log and follow new entries (Ctrl-C stops).
    Tail(TailArgs),
}

#[derive(Args)]
pub struct TailArgs {
    /// Only this campaign's entries.
    #[arg(long)]
    campaign: Option<String>,
    /// Only this user's entries (external id).
    #[arg(long)]
    user: Option<String>,
    /// Only this type: aborted, render_error, retrying, failed, write_back_failed, test_send.
    #[arg(long = "type", value_parser = parse_activity_type)]
    kind: Option<ActivityType>,
    /// Entries from the last this many minutes to start with.
    #[arg(long, default_value_t = 60)]
    since_minutes: u64,
    /// Print what is there and exit instead of following.
    #[arg(long)]
    no_follow: bool,
    /// Print each entry as one JSON line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataDir,
}

fn parse_activity_type(s: &str) -> Result<ActivityType, String> {
    s.parse()
}

pub fn activity(cmd: ActivityCommand) -> anyhow::Result<()> {
    let ActivityCommand::Tail(args) = cmd;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let store = args.data.open_store()?;
        let service = open_service(
            &DeliveryArgs {
                concurrency: 1,
                per_host_concurrency: 1,
                ..DeliveryArgs::quiet()
            },
            store,
        )
        .await?;
        let mut after: Option<i64> = None;
        let since = SystemTime::now()
            .checked_sub(Duration::from_secs(args.since_minutes * 60))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        loop {
            let entries = service
                .activity(ActivityQuery {
                    campaign_id: args.campaign.clone(),
                    user_id: args.user.clone(),
                    kind: args.kind,
                    since: after.is_none().then_some(since),
                    until: None,
                    after_id: Some(after.unwrap_or(0)),
                    limit: Some(1000),
                })
                .await
                .context("reading the activity log")?;
            for e in &entries {
                if args.json {
                    println!("{}", leadwire_webhooks::activity::record_json(e));
                } else {
                    let row = &e.row;
                    let status = row
                        .response
                        .as_ref()
                        .and_then(|r| r.get("status"))
                        .map(|s| format!(" {s}"))
                        .unwrap_or_default();
                    println!(
                        "{} {:<17} campaign={} user={} attempt={}{} {}",
                        leadwire_webhooks::templates::rfc3339(row.at),
                        row.kind.as_str(),
                        row.campaign_id.as_deref().unwrap_or("-"),
                        row.user_id,
                        row.attempt.map_or("-".to_owned(), |a| a.to_string()),
                        status,
                        row.message
                    );
                }
                after = Some(e.id);
            }
            if after.is_none() {
                after = Some(0);
            }
            if args.no_follow && entries.len() < 1000 {
                return anyhow::Ok(());
            }
            if entries.len() < 1000 {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = tokio::signal::ctrl_c() => return anyhow::Ok(()),
                }
            }
        }
    })
}
