//! The `leadwire salesforce-emulator` command line: serve (the default), or `admin …` to talk to a
//! running emulator's admin API. The only place that uses `anyhow`; everything below returns typed errors.
//!
//! ```text
//! leadwire salesforce-emulator --listen 127.0.0.1:8080 --client-id ID --client-secret SECRET \
//!     --https-listen 127.0.0.1:8443 --ca-cert-out ca.pem --custom-field Lead_Stage__c:string:255
//! leadwire salesforce-emulator admin --url http://127.0.0.1:8080 count
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use crate::Emulator;
use crate::auth::ConnectedApp;
use crate::config::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_DAILY_REQUEST_LIMIT, EmulatorConfig,
};
use crate::faults::{FaultSettings, Share};
use crate::schema::CustomFieldSpec;

/// Run a local Salesforce Sales Cloud (OAuth + Lead REST API) with fault injection.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct EmulatorArgs {
    #[command(subcommand)]
    pub command: Option<EmulatorCommand>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum EmulatorCommand {
    /// Talk to a running emulator's admin API (`/__admin/`).
    Admin(AdminArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Plain HTTP address; port 0 picks a free port (the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Also serve HTTPS here, with a certificate generated at start.
    #[arg(long)]
    pub https_listen: Option<SocketAddr>,
    /// Write the generated CA certificate (PEM) here, for clients to trust.
    #[arg(long)]
    pub ca_cert_out: Option<PathBuf>,
    /// Connected app consumer key; repeat together with --client-secret for several apps.
    #[arg(long)]
    pub client_id: Vec<String>,
    /// Consumer secret of the --client-id at the same position.
    #[arg(long)]
    pub client_secret: Vec<String>,
    /// JSON file with connected apps: `[{"client_id": "…", "client_secret": "…"}]`.
    #[arg(long)]
    pub apps_file: Option<PathBuf>,
    /// Custom Lead field `Name__c:type[:arg]`; types string[:len], textarea[:len], email, phone, url,
    /// boolean, number, currency, date, datetime, picklist:A|B, restricted-picklist:A|B. Repeatable.
    #[arg(long)]
    pub custom_field: Vec<String>,
    /// Mark a field as an external id (usable in upsert URLs); declared as text(255) if new. Repeatable.
    #[arg(long)]
    pub external_id_field: Vec<String>,
    /// Daily API request allocation; past it requests get 403 REQUEST_LIMIT_EXCEEDED.
    #[arg(long, default_value_t = DEFAULT_DAILY_REQUEST_LIMIT)]
    pub daily_request_limit: u64,
    /// Session timeout in seconds (Salesforce's default is 2 hours).
    #[arg(long, default_value_t = 7200)]
    pub session_timeout_secs: u64,
    /// Enable the blocking duplicate rule on Email (DUPLICATES_DETECTED).
    #[arg(long)]
    pub duplicate_rule_email: bool,
    /// Keep leads, usage and sessions in this JSON file across restarts.
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    /// Seed of the fault generator: the same seed repeats the same faults.
    #[arg(long, default_value_t = 0)]
    pub fault_seed: u64,
    /// Share of requests answered 500.
    #[arg(long, default_value = "0")]
    pub fault_500: Share,
    /// Share of requests answered 503.
    #[arg(long, default_value = "0")]
    pub fault_503: Share,
    /// Share of requests answered 429 with Retry-After.
    #[arg(long, default_value = "0")]
    pub fault_429: Share,
    /// Retry-After seconds on injected 429s.
    #[arg(long, default_value_t = 1)]
    pub fault_retry_after_secs: u32,
    /// Share of requests answered only after --fault-slow-ms.
    #[arg(long, default_value = "0")]
    pub fault_slow: Share,
    #[arg(long, default_value_t = 5000)]
    pub fault_slow_ms: u64,
    /// Share of requests whose connection is dropped before anything is written.
    #[arg(long, default_value = "0")]
    pub fault_drop_before_write: Share,
    /// Share of requests committed, then dropped without an answer (makes client retries duplicate).
    #[arg(long, default_value = "0")]
    pub fault_drop_after_write: Share,
    /// Revoke every access token every N seconds.
    #[arg(long)]
    pub revoke_tokens_every_secs: Option<u64>,
    /// Requests kept in the admin request log.
    #[arg(long, default_value_t = 10_000)]
    pub request_log_capacity: usize,
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The emulator's plain-HTTP base URL (its --listen address).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    #[command(subcommand)]
    pub action: AdminAction,
}

#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Print the leads as a JSON array.
    Leads {
        #[arg(long)]
        include_deleted: bool,
    },
    /// Print live and deleted lead counts.
    Count,
    /// Dump everything: leads (deleted too), API usage, sessions, faults.
    Dump,
    /// Print the request log.
    Requests {
        /// Only entries with this sequence number or later.
        #[arg(long, default_value_t = 0)]
        since: u64,
    },
    /// Forget leads, usage, sessions and the request log.
    Reset,
    /// Revoke every access token now.
    RevokeTokens,
    /// Print the fault settings.
    Faults,
    /// Replace the fault settings with this JSON, e.g. '{"seed":1,"internal_error":0.1}'.
    SetFaults { json: String },
}

pub async fn run(args: EmulatorArgs) -> anyhow::Result<()> {
    match args.command {
        Some(EmulatorCommand::Admin(admin)) => run_admin(admin).await,
        None => serve(args.serve).await,
    }
}

fn connected_apps(args: &ServeArgs) -> anyhow::Result<Vec<ConnectedApp>> {
    anyhow::ensure!(
        args.client_id.len() == args.client_secret.len(),
        "give one --client-secret for each --client-id ({} ids, {} secrets)",
        args.client_id.len(),
        args.client_secret.len()
    );
    let mut apps: Vec<ConnectedApp> = args
        .client_id
        .iter()
        .zip(&args.client_secret)
        .map(|(id, secret)| ConnectedApp {
            client_id: id.clone(),
            client_secret: secret.clone(),
        })
        .collect();
    if let Some(path) = &args.apps_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let from_file: Vec<ConnectedApp> = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a JSON array of client_id/client_secret",
                path.display()
            )
        })?;
        apps.extend(from_file);
    }
    if apps.is_empty() {
        apps.push(ConnectedApp {
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            client_secret: DEFAULT_CLIENT_SECRET.to_owned(),
        });
    }
    Ok(apps)
}

/// Resolves the flags into a configuration; [`Emulator::start`] validates it.
pub fn config_from_args(args: &ServeArgs) -> anyhow::Result<EmulatorConfig> {
    let custom_fields = args
        .custom_field
        .iter()
        .map(|spec| CustomFieldSpec::parse(spec))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(EmulatorConfig {
        http_listen: Some(args.listen),
        https_listen: args.https_listen,
        ca_cert_out: args.ca_cert_out.clone(),
        connected_apps: connected_apps(args)?,
        custom_fields,
        external_id_fields: args.external_id_field.clone(),
        daily_request_limit: args.daily_request_limit,
        session_timeout: Duration::from_secs(args.session_timeout_secs),
        duplicate_rule_on_email: args.duplicate_rule_email,
        faults: FaultSettings {
            seed: args.fault_seed,
            internal_error: args.fault_500,
            unavailable: args.fault_503,
            too_many_requests: args.fault_429,
            retry_after_secs: args.fault_retry_after_secs,
            slow: args.fault_slow,
            slow_delay_ms: args.fault_slow_ms,
            drop_before_write: args.fault_drop_before_write,
            drop_after_write: args.fault_drop_after_write,
            revoke_tokens_every_secs: args.revoke_tokens_every_secs,
        },
        state_file: args.state_file.clone(),
        request_log_capacity: args.request_log_capacity,
    })
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Another subscriber may already be installed by an embedding binary; that one wins.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let config = config_from_args(&args)?;
    let app_ids: Vec<String> = config
        .connected_apps
        .iter()
        .map(|app| app.client_id.clone())
        .collect();
    let emulator = Emulator::start(config)
        .await
        .context("starting the Salesforce emulator")?;
    if let Some(url) = emulator.http_url() {
        println!("salesforce-emulator listening on {url}");
    }
    if let Some(url) = emulator.https_url() {
        println!(
            "salesforce-emulator listening on {url} (also https://127.0.0.1:{})",
            url.rsplit(':').next().unwrap_or_default()
        );
        match &args.ca_cert_out {
            Some(path) => println!(
                "CA certificate written to {} (trust it for HTTPS)",
                path.display()
            ),
            None => {
                println!("pass --ca-cert-out PATH to write the CA certificate clients must trust")
            }
        }
    }
    println!("connected apps: {}", app_ids.join(", "));
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    println!("shutting down");
    emulator.shutdown().await;
    Ok(())
}

async fn run_admin(args: AdminArgs) -> anyhow::Result<()> {
    use hyper::Method;
    let (method, path, body) = match &args.action {
        AdminAction::Leads { include_deleted } => (
            Method::GET,
            format!("/__admin/leads?include_deleted={include_deleted}"),
            None,
        ),
        AdminAction::Count => (Method::GET, "/__admin/leads/count".to_owned(), None),
        AdminAction::Dump => (Method::GET, "/__admin/state".to_owned(), None),
        AdminAction::Requests { since } => (
            Method::GET,
            format!("/__admin/requests?since={since}"),
            None,
        ),
        AdminAction::Reset => (Method::POST, "/__admin/reset".to_owned(), None),
        AdminAction::RevokeTokens => (Method::POST, "/__admin/revoke-tokens".to_owned(), None),
        AdminAction::Faults => (Method::GET, "/__admin/faults".to_owned(), None),
        AdminAction::SetFaults { json } => {
            let settings: FaultSettings =
                serde_json::from_str(json).context("fault settings are not valid JSON")?;
            (
                Method::PUT,
                "/__admin/faults".to_owned(),
                Some(serde_json::to_vec(&settings)?),
            )
        }
    };
    let (status, bytes) = admin_request(&args.url, method, &path, body).await?;
    let text = String::from_utf8_lossy(&bytes);
    // Pretty-print JSON answers; 204s print nothing.
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(value) => println!("{}", serde_json::to_string_pretty(&value)?),
        Err(_) if text.is_empty() => {}
        Err(_) => println!("{text}"),
    }
    anyhow::ensure!(
        (200..300).contains(&status),
        "the emulator answered HTTP {status}"
    );
    Ok(())
}

/// One HTTP/1.1 request over a fresh connection; the admin API is plain HTTP on loopback.
async fn admin_request(
    base: &str,
    method: hyper::Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> anyhow::Result<(u16, Vec<u8>)> {
    let uri: hyper::Uri = format!("{}{path}", base.trim_end_matches('/'))
        .parse()
        .context("invalid --url")?;
    anyhow::ensure!(
        uri.scheme_str() == Some("http"),
        "the admin CLI speaks plain HTTP: use the emulator's --listen address"
    );
    let authority = uri.authority().context("--url needs a host")?.clone();
    let port = authority.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((authority.host(), port))
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(uri.path_and_query().map_or("/", |pq| pq.as_str()))
        .header(hyper::header::HOST, authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))?;
    let response = sender
        .send_request(request)
        .await
        .context("sending the admin request")?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes().to_vec();
    Ok((status, bytes))
}
