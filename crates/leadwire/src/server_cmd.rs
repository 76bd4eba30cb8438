//! `leadwire serve`, `leadwire api-keys create` and `leadwire users import`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::builder::{PossibleValuesParser, TypedValueParser as _};
use clap::{Args, Subcommand};
use leadwire_api::Permission;
use leadwire_app::{DatabaseConfig, PostgresConfig, Role};
use leadwire_store::{SqliteConfig, Store};

/// Where leadwire keeps its state, shared by every command that opens the store.
#[derive(Args, Clone)]
pub struct DataDir {
    /// Directory of the embedded database (created on first start); unused with --database-url.
    #[arg(long, env = "LEADWIRE_DATA_DIR", default_value = "leadwire-data")]
    pub data_dir: PathBuf,
    /// A PostgreSQL database instead of the embedded one (postgres://user:password@host:port/db);
    /// several nodes may share it.
    #[arg(long, env = "LEADWIRE_DATABASE_URL", value_parser = parse_database_url)]
    pub database_url: Option<String>,
    /// The PostgreSQL schema leadwire's tables live in (created if missing).
    #[arg(
        long,
        env = "LEADWIRE_DATABASE_SCHEMA",
        default_value = "public",
        requires = "database_url"
    )]
    pub database_schema: String,
    /// The key credential secrets are encrypted with at rest: a file holding base64 of 32 bytes,
    /// created (mode 0600) on first start when missing. Default: `secret.key` in --data-dir.
    /// `LEADWIRE_SECRET_KEY` (the base64 itself) takes precedence. Nodes sharing a database need
    /// the same key.
    #[arg(long, env = "LEADWIRE_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
}

/// `--database-url`: a PostgreSQL URL, checked once here so a typo is refused at start-up.
fn parse_database_url(url: &str) -> Result<String, String> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(url.to_string())
    } else {
        Err("expected a PostgreSQL URL such as postgres://leadwire:secret@db.internal:5432/leadwire (leave it out for the embedded SQLite database in --data-dir)".into())
    }
}

impl DataDir {
    /// The database these options name.
    pub fn database(&self) -> DatabaseConfig {
        match &self.database_url {
            Some(url) => DatabaseConfig::Postgres(
                PostgresConfig::new(url.clone()).with_schema(self.database_schema.clone()),
            ),
            None => DatabaseConfig::Sqlite(SqliteConfig::new(self.data_dir.join("leadwire.db"))),
        }
    }

    /// Where the data is, for people (the password left out).
    pub fn describe(&self) -> String {
        match self.database() {
            DatabaseConfig::Sqlite(c) => c.path.display().to_string(),
            DatabaseConfig::Postgres(c) => {
                format!("{} (schema {})", c.redacted_url(), c.schema)
            }
        }
    }

    /// The key that seals credential secrets (see `--secret-key-file`).
    pub fn secret_key(&self) -> anyhow::Result<leadwire_webhooks::sealed::SecretKey> {
        use leadwire_webhooks::sealed::SecretKey;
        if let Ok(text) = std::env::var("LEADWIRE_SECRET_KEY") {
            return Ok(SecretKey::from_base64(&text, "LEADWIRE_SECRET_KEY")?);
        }
        let path = self
            .secret_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secret.key"));
        Ok(SecretKey::load_or_create(&path)?)
    }

    pub fn open_store(&self) -> anyhow::Result<Store> {
        leadwire_app::open_store(&self.database())
    }

    /// leadwire's typed configuration for this database and these delivery options.
    pub fn app_config(
        &self,
        delivery: &crate::webhooks_cmd::DeliveryArgs,
        workers: bool,
    ) -> anyhow::Result<leadwire_app::AppConfig> {
        let mut config = leadwire_app::AppConfig::with_database(self.database());
        config.webhooks = delivery.config()?;
        config.webhooks.secret_key = Some(self.secret_key()?);
        config.workers = workers;
        Ok(config)
    }
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address for the REST API.
    #[arg(long, env = "LEADWIRE_LISTEN", default_value = "127.0.0.1:4000")]
    listen: SocketAddr,
    #[command(flatten)]
    data: DataDir,
    /// Requests per API key per hour (Braze's default is 250,000).
    #[arg(long, default_value_t = 250_000)]
    rate_limit: u64,
    #[command(flatten)]
    delivery: crate::webhooks_cmd::DeliveryArgs,
    /// What this node does: `api` (REST API only), `worker` (feed runners and delivery only) or
    /// `all`. Several nodes on one PostgreSQL database share the work.
    #[arg(long, env = "LEADWIRE_ROLE", default_value = "all", value_parser = role_parser())]
    role: Role,
    /// Log lines as `json`, `text`, or `auto` (JSON when stderr is not a terminal).
    #[arg(long, env = "LEADWIRE_LOG_FORMAT", value_enum, default_value = "auto")]
    log_format: LogFormat,
    /// On SIGTERM or Ctrl-C, how long in-flight sends may take to finish before leadwire exits
    /// anyway (their jobs are then sent again after their lease, with the same delivery id).
    #[arg(long, default_value_t = 30)]
    shutdown_grace_secs: u64,
    /// Mark the dashboard's cookies `Secure` on every answer (behind a TLS-terminating proxy
    /// that does not send `X-Forwarded-Proto: https`; with it they are marked anyway).
    #[arg(long, env = "LEADWIRE_DASHBOARD_SECURE_COOKIES")]
    dashboard_secure_cookies: bool,
    /// How long a dashboard sign-in lasts, in hours.
    #[arg(long, default_value_t = 12)]
    dashboard_session_hours: u64,
    #[command(flatten)]
    tracing: TracingArgs,
}

/// OpenTelemetry trace export, under the standard OpenTelemetry variable names.
#[derive(clap::Args, Debug, Clone)]
pub struct TracingArgs {
    /// Export traces over OTLP/HTTP to this collector (its base URL, e.g. http://localhost:4318;
    /// spans go to /v1/traces under it). A send's trace runs from the /users/track request to
    /// Salesforce's answer. Off when unset.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// `http/protobuf` or `http/json`.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_PROTOCOL",
        default_value = "http/protobuf",
        value_name = "PROTOCOL",
        value_parser = |s: &str| s.parse::<leadwire_telemetry::OtlpProtocol>()
    )]
    otlp_protocol: leadwire_telemetry::OtlpProtocol,
    /// `service.name` on exported spans.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "leadwire")]
    otel_service_name: String,
}

impl TracingArgs {
    fn otlp(&self) -> anyhow::Result<Option<leadwire_telemetry::OtlpConfig>> {
        let Some(endpoint) = &self.otlp_endpoint else {
            return Ok(None);
        };
        Ok(Some(leadwire_telemetry::OtlpConfig::from_base_endpoint(
            endpoint,
            self.otlp_protocol,
            &self.otel_service_name,
        )?))
    }
}

fn role_parser() -> impl clap::builder::TypedValueParser<Value = Role> {
    PossibleValuesParser::new(Role::ALL.iter().map(|r| r.as_str()))
        .try_map(|name| name.parse::<Role>())
}

#[derive(Subcommand)]
pub enum ApiKeysCommand {
    /// Create an API key; prints the new key alone on its last line.
    Create {
        #[command(flatten)]
        data: DataDir,
        /// A permission to grant, as Braze names it (repeatable).
        #[arg(
            long = "permission",
            value_name = "PERMISSION",
            required = true,
            value_parser = permission_parser()
        )]
        permissions: Vec<Permission>,
        /// A name to recognise the key by.
        #[arg(long, default_value = "default")]
        name: String,
    },
}

#[derive(Subcommand)]
pub enum DashboardUsersCommand {
    /// Create a dashboard user. The password is read from --password-file, else from stdin
    /// (its first line), so it never appears in the process list or shell history.
    Create {
        #[command(flatten)]
        data: DataDir,
        /// The email the user signs in with.
        #[arg(long)]
        email: String,
        /// `viewer` (reads everything), `editor` (also edits templates, campaigns, Canvases and
        /// sends tests) or `admin` (everything, credentials included).
        #[arg(long, value_parser = dashboard_role_parser())]
        role: leadwire_dashboard::Role,
        /// A file whose first line is the password.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

fn dashboard_role_parser() -> impl clap::builder::TypedValueParser<Value = leadwire_dashboard::Role>
{
    PossibleValuesParser::new(leadwire_dashboard::Role::ALL.iter().map(|r| r.as_str()))
        .try_map(|name| name.parse::<leadwire_dashboard::Role>())
}

pub fn dashboard_users(cmd: DashboardUsersCommand) -> anyhow::Result<()> {
    let DashboardUsersCommand::Create {
        data,
        email,
        role,
        password_file,
    } = cmd;
    let text = match &password_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the password from {}", path.display()))?,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password from stdin")?;
            line
        }
    };
    let password = text.lines().next().unwrap_or("");
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let store = data.open_store()?;
        leadwire_dashboard::auth::create_user(&store, &email, role, password)
            .await
            .with_context(|| format!("creating dashboard user '{email}'"))
    })?;
    let email = leadwire_dashboard::auth::normalize_email(&email).unwrap_or(email);
    println!("created dashboard user {email} ({role})");
    Ok(())
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Import users from a CSV file in Braze's format (external_id column plus attribute columns).
    Import {
        file: PathBuf,
        #[command(flatten)]
        data: DataDir,
    },
}

/// `--permission`: one of [`Permission::ALL`] (so `--help` lists them and a typo is refused with
/// the valid names).
fn permission_parser() -> impl clap::builder::TypedValueParser<Value = Permission> {
    PossibleValuesParser::new(Permission::ALL.iter().map(|p| p.as_str()))
        .try_map(|name| name.parse::<Permission>())
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// JSON lines when stderr is not a terminal, else text.
    Auto,
    /// Human-readable text; colour only on a terminal.
    Text,
    /// One JSON object per line (timestamp, level, target, fields, span).
    Json,
}

/// Logs to stderr, `RUST_LOG` filtering (default `info`). A log collector reading a file or a
/// pipe gets JSON (or plain text without colour codes); a person at a terminal gets text. With an
/// OTLP endpoint, spans are exported too.
pub(crate) fn init_tracing(
    format: LogFormat,
    tracing: &TracingArgs,
) -> anyhow::Result<leadwire_telemetry::Telemetry> {
    use std::io::IsTerminal;
    let terminal = std::io::stderr().is_terminal();
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !terminal,
    };
    let otlp = tracing.otlp()?;
    let telemetry = leadwire_telemetry::init(
        leadwire_telemetry::LogOutput {
            json,
            ansi: terminal,
        },
        otlp.as_ref(),
    )?;
    if let Some(otlp) = &otlp {
        tracing::info!(url = %otlp.traces_url, "exporting traces over OTLP");
    }
    Ok(telemetry)
}

/// Ctrl-C or SIGTERM (what `docker stop` and Kubernetes send).
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("listening for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}

pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let telemetry = init_tracing(args.log_format, &args.tracing)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let served = runtime.block_on(async move {
        let config = leadwire_api::ApiConfig {
            rate_limit: args.rate_limit,
            rate_window: Duration::from_secs(3600),
            ..Default::default()
        };
        let mut app_config = args
            .data
            .app_config(&args.delivery, args.role.runs_workers())?;
        // A node waits for a database that is not up yet (started together, or restarting);
        // one-shot commands fail at once.
        if let DatabaseConfig::Postgres(c) = &mut app_config.database {
            c.wait_for_database = Duration::from_secs(600);
        }
        app_config.dashboard.secure_cookies = args.dashboard_secure_cookies;
        app_config.dashboard.session_ttl = Duration::from_secs(args.dashboard_session_hours.max(1) * 3600);
        let app = leadwire_app::App::start(app_config).await?;
        let api = if args.role.serves_api() {
            let api = app.serve_api(args.listen, config).await?;
            println!("leadwire API listening on {}", api.url());
            println!(
                "dashboard at {}/dashboard (users: leadwire dashboard-users create)",
                api.url()
            );
            Some(api)
        } else {
            println!("leadwire worker running (no API: --role worker)");
            None
        };
        println!("data in {}", args.data.describe());
        shutdown_signal().await?;
        tracing::info!("shutting down: no new requests or jobs; letting sends in flight finish");
        let grace = Duration::from_secs(args.shutdown_grace_secs);
        let stopped = tokio::time::timeout(grace, async {
            if let Some(api) = api {
                api.shutdown().await;
            }
            app.stop().await;
        })
        .await;
        if stopped.is_err() {
            tracing::warn!(
                grace_secs = args.shutdown_grace_secs,
                "sends still in flight after the grace period; their jobs go out again once their lease ends"
            );
        } else {
            tracing::info!("stopped cleanly");
        }
        Ok(())
    });
    // The last spans (the sends that just finished) go out before the process ends.
    telemetry.shutdown();
    served
}

pub fn api_keys(cmd: ApiKeysCommand) -> anyhow::Result<()> {
    let ApiKeysCommand::Create {
        data,
        permissions,
        name,
    } = cmd;
    // The store keeps Braze's names as strings.
    let names: Vec<String> = permissions.iter().map(|p| p.as_str().to_owned()).collect();
    let runtime = tokio::runtime::Runtime::new()?;
    let key = runtime.block_on(async {
        let store = data.open_store()?;
        store
            .create_api_key(name.clone(), names.clone())
            .await
            .context("creating the key")
    })?;
    println!("created API key '{name}' with {}", names.join(", "));
    println!("{key}");
    Ok(())
}

pub fn users(cmd: UsersCommand) -> anyhow::Result<()> {
    let UsersCommand::Import { file, data } = cmd;
    let reader =
        std::fs::File::open(&file).with_context(|| format!("opening {}", file.display()))?;
    let total = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(async {
        let store = data.open_store()?;
        let started = std::time::Instant::now();
        let report = leadwire_import::import_csv(std::io::BufReader::new(reader), &store, |rows| {
            let rate = rows as f64 / started.elapsed().as_secs_f64().max(0.001);
            eprint!(
                "\r  {rows} rows read ({rate:.0} rows/s, file {} KiB)",
                total / 1024
            );
            let _ = std::io::stderr().flush();
        })
        .await
        .with_context(|| format!("importing {}", file.display()))?;
        eprintln!();
        anyhow::Ok(report)
    })?;
    println!(
        "{} rows: {} imported, {} rejected",
        report.rows,
        report.imported,
        report.rejected.len()
    );
    for r in &report.rejected {
        let column = r
            .column
            .as_deref()
            .map(|c| format!(", column '{c}'"))
            .unwrap_or_default();
        println!("  line {}{column}: {}", r.line, r.reason);
    }
    Ok(())
}
