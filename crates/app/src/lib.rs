//! The running leadwire, wired in one place: the [`Store`], the [`WebhookService`] and its
//! workers, the feed runners with the campaign and Canvas engines, and the REST API, started and
//! stopped together. The binary's `serve` and `demo`, the integration tests and the benchmarks all
//! start leadwire through [`App::start`], so no harness wires it differently.
//!
//! Must not parse command lines or read files other than through its typed [`AppConfig`]; that is
//! the binary's job.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use leadwire_canvas::CanvasEngine;
use leadwire_config::{Bundle, CredentialDoc};
use leadwire_engine::{CampaignEngine, FeedRunner};
use leadwire_store::{Consumer, Store};
pub use leadwire_store::{DatabaseConfig, PostgresConfig, SqliteConfig};
use leadwire_webhooks::credentials::NewCredential;
use leadwire_webhooks::templates::TemplateDefinition;
use leadwire_webhooks::{WebhookConfig, WebhookService};

/// What a node does. Several nodes on one PostgreSQL database may each take a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// The REST API only: takes requests, runs no feed runner and no delivery worker.
    Api,
    /// The feed runners and delivery workers only: no REST API.
    Worker,
    /// Both (a single node, and the default).
    #[default]
    All,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Api, Role::Worker, Role::All];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::Worker => "worker",
            Role::All => "all",
        }
    }

    /// Whether this node serves the REST API.
    pub fn serves_api(self) -> bool {
        matches!(self, Role::Api | Role::All)
    }

    /// Whether this node runs the feed runners and delivery workers.
    pub fn runs_workers(self) -> bool {
        matches!(self, Role::Worker | Role::All)
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role '{s}': use api, worker or all"))
    }
}

/// Everything leadwire needs to start, resolved and checked once.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The database: the embedded SQLite file (`DATA_DIR/leadwire.db`) or a PostgreSQL server.
    pub database: DatabaseConfig,
    pub webhooks: WebhookConfig,
    /// Whether the feed runners and delivery workers run (off: an API-only or maintenance
    /// process that still reads and writes the store).
    pub workers: bool,
    /// Triggers every feed consumer has passed are deleted once they are this old (the
    /// `/triggers` feed serves this much history).
    pub feed_retention: Duration,
    /// The web dashboard served beside the API.
    pub dashboard: leadwire_dashboard::DashboardConfig,
}

impl AppConfig {
    /// The defaults for a data directory (the embedded SQLite database in it).
    pub fn new(data_dir: impl Into<PathBuf>) -> AppConfig {
        AppConfig::with_database(DatabaseConfig::Sqlite(SqliteConfig::new(
            data_dir.into().join("leadwire.db"),
        )))
    }

    /// The defaults for a database.
    pub fn with_database(database: DatabaseConfig) -> AppConfig {
        AppConfig {
            database,
            webhooks: WebhookConfig::new(),
            workers: true,
            feed_retention: Duration::from_secs(15 * 60),
            dashboard: leadwire_dashboard::DashboardConfig::default(),
        }
    }
}

/// Opens the store alone (commands that need nothing else: `api-keys create`, `users import`).
/// Blocks while it connects.
pub fn open_store(database: &DatabaseConfig) -> anyhow::Result<Store> {
    Store::open(database.clone()).with_context(|| match database {
        DatabaseConfig::Sqlite(c) => format!("opening the store at {}", c.path.display()),
        DatabaseConfig::Postgres(_) => "opening the store on PostgreSQL".to_string(),
    })
}

struct Task {
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<()>,
}

fn spawn_runner<C: leadwire_engine::FeedConsumer>(runner: FeedRunner<C>) -> Task {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(runner.run(async move {
        let _ = stopped.await;
    }));
    Task { stop, handle }
}

/// A queued send due further ahead than this is "scheduled" (a campaign's pace), not pending work.
pub const SCHEDULED_AHEAD: Duration = Duration::from_secs(10);

/// How often consumed triggers are pruned, and how many go in one transaction (short, so the
/// writer is never held long).
const PRUNE_EVERY: Duration = Duration::from_secs(5);
const PRUNE_BATCH: usize = 20_000;

/// Deletes triggers every consumer has passed and older than `retention`, in short
/// transactions; returns how many went.
pub async fn prune_feed(
    store: &Store,
    retention: Duration,
) -> Result<usize, leadwire_store::StoreError> {
    let keep_after = chrono::Utc::now()
        - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::zero());
    let mut total = 0;
    loop {
        let n = store
            .transact(move |tx| tx.prune_feed(keep_after, PRUNE_BATCH))
            .await?;
        total += n;
        if n < PRUNE_BATCH {
            break;
        }
    }
    // Hand the pages the pruned triggers held back to the file system, a batch per transaction.
    if total > 0 {
        let mut free = u64::MAX;
        loop {
            let left = store.transact(|tx| tx.release_free_pages(4096)).await?;
            // Stops when nothing is left, or nothing moved (a file without incremental
            // auto-vacuum keeps its free pages for reuse).
            if left == 0 || left >= free {
                break;
            }
            free = left;
        }
    }
    Ok(total)
}

/// Prunes the trigger feed every [`PRUNE_EVERY`].
fn spawn_feed_pruning(store: Store, retention: Duration) -> Task {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        loop {
            match prune_feed(&store, retention).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(triggers = n, "pruned the trigger feed"),
                Err(e) => tracing::warn!(error = %e, "pruning the trigger feed failed"),
            }
            tokio::select! {
                _ = &mut stopped => return,
                () = tokio::time::sleep(PRUNE_EVERY) => {}
            }
        }
    });
    Task { stop, handle }
}

/// A template warning as `leadwire apply` and `leadwire templates lint` print it:
/// `file:line: template 'Create Lead': body key 'Vorname': … (write 'FirstName')`. The line is
/// where the header or body key is written after the template's name, when it can be found.
pub fn warning_line(
    file: &std::path::Path,
    text: &str,
    template: &str,
    warning: &leadwire_webhooks::lint::LintWarning,
) -> String {
    let key = warning
        .key
        .as_deref()
        .or((warning.field == "URL").then_some("url"));
    let line = key.and_then(|k| leadwire_config::line_of_key_after(text, template, k));
    let place = match line {
        Some(l) => format!("{}:{l}", file.display()),
        None => file.display().to_string(),
    };
    let suggestion = warning
        .suggestion
        .as_deref()
        .map(|s| format!(" (write '{s}')"))
        .unwrap_or_default();
    format!("{place}: template '{template}': {warning}{suggestion}")
}

/// What [`App::apply`] saved, and what the linter says about its templates.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// One line per object saved: `template 'Create Lead' created`.
    pub done: Vec<String>,
    /// `file:line: template 'Create Lead': body key 'Vorname': … (write 'FirstName')`.
    pub warnings: Vec<String>,
}

pub struct App {
    pub store: Store,
    pub webhooks: Arc<WebhookService>,
    pub campaigns: Arc<CampaignEngine>,
    pub canvases: Arc<CanvasEngine>,
    /// The web dashboard's settings (sessions, cookies).
    pub dashboard: leadwire_dashboard::DashboardConfig,
    tasks: Vec<Task>,
}

impl App {
    /// Opens everything and, unless `config.workers` is off, starts the feed runners and the
    /// delivery workers. Call inside a Tokio runtime.
    pub async fn start(config: AppConfig) -> anyhow::Result<App> {
        let database = config.database.clone();
        let store = tokio::task::spawn_blocking(move || open_store(&database)).await??;
        let webhooks = WebhookService::open(config.webhooks.clone(), store.clone())
            .await
            .context("starting webhook delivery")?;
        let campaigns = Arc::new(CampaignEngine::new(store.clone()));
        let canvases = Arc::new(CanvasEngine::new(store.clone()));
        let mut tasks = Vec::new();
        if config.workers {
            webhooks.start();
            tasks.push(spawn_runner(FeedRunner::new(
                store.clone(),
                campaigns.clone(),
            )));
            tasks.push(spawn_runner(FeedRunner::new(
                store.clone(),
                canvases.clone(),
            )));
            tasks.push(spawn_feed_pruning(store.clone(), config.feed_retention));
        }
        Ok(App {
            store,
            webhooks,
            campaigns,
            canvases,
            dashboard: config.dashboard.clone(),
            tasks,
        })
    }

    /// The campaign engine's feed runner (tests drive passes by hand with `pass_at`).
    pub fn campaign_runner(&self) -> FeedRunner<CampaignEngine> {
        FeedRunner::new(self.store.clone(), self.campaigns.clone())
    }

    /// The Canvas engine's feed runner.
    pub fn canvas_runner(&self) -> FeedRunner<CanvasEngine> {
        FeedRunner::new(self.store.clone(), self.canvases.clone())
    }

    /// The services the REST API serves.
    pub fn services(&self) -> leadwire_api::Services {
        leadwire_api::Services {
            webhooks: Some(self.webhooks.clone()),
            campaigns: Some(self.campaigns.clone()),
            canvases: Some(self.canvases.clone()),
            metrics: leadwire_api::health::install_metrics(),
        }
    }

    /// Serves the REST API with every service behind it, and the web dashboard (`/dashboard`)
    /// over the same services beside it.
    pub async fn serve_api(
        &self,
        listen: SocketAddr,
        config: leadwire_api::ApiConfig,
    ) -> anyhow::Result<leadwire_api::RunningApi> {
        let services = self.services();
        let dashboard =
            leadwire_dashboard::router(self.store.clone(), &services, self.dashboard.clone())
                .context("loading the dashboard's message catalogues")?;
        let header_read_timeout = config.header_read_timeout;
        let max_connections = config.max_connections;
        let app = leadwire_api::router_with_services(self.store.clone(), config, services)
            .merge(dashboard);
        leadwire_api::serve_router(listen, app, header_read_timeout, max_connections)
            .await
            .with_context(|| format!("listening on {listen}"))
    }

    /// Stops the feed runners and the workers, letting jobs in flight finish.
    pub async fn stop(mut self) {
        for task in self.tasks.drain(..) {
            let _ = task.stop.send(());
            let _ = task.handle.await;
        }
        self.webhooks.stop().await;
    }

    /// Saves every credential, template (created or updated by name), campaign and Canvas of a
    /// bundle. Returns one line per object saved, and the linter's warnings on the templates.
    pub async fn apply(&self, bundle: Bundle) -> anyhow::Result<Applied> {
        let mut done = Vec::new();
        let mut warnings = Vec::new();
        for (file, doc) in bundle.credentials {
            let credential = match doc {
                CredentialDoc::Basic {
                    name,
                    username,
                    password,
                } => NewCredential::Basic {
                    name,
                    username,
                    password,
                },
                CredentialDoc::Token {
                    name,
                    headers,
                    allowed_domain,
                } => NewCredential::Token {
                    name,
                    headers: headers.into_iter().collect(),
                    allowed_domain,
                },
            };
            let name = credential.name().to_string();
            self.webhooks
                .save_credential(credential)
                .await
                .with_context(|| format!("{}: credential '{name}'", file.display()))?;
            done.push(format!("credential '{name}'"));
        }
        let existing = self.webhooks.list_templates(false, 10_000, 0).await?;
        for (file, json) in bundle.templates {
            let definition = TemplateDefinition::from_json(&json)
                .with_context(|| format!("{}: template", file.display()))?;
            let name = definition.template.name.clone();
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for w in self.webhooks.lint(&definition).await {
                warnings.push(warning_line(&file, &text, &name, &w));
            }
            let found = existing.iter().find(|t| t.definition.template.name == name);
            let result = match found {
                Some(t) => self
                    .webhooks
                    .update_template(&t.id, definition)
                    .await
                    .map(|_| "updated"),
                None => self
                    .webhooks
                    .create_template(definition)
                    .await
                    .map(|_| "created"),
            };
            let verb = result.with_context(|| format!("{}: template '{name}'", file.display()))?;
            done.push(format!("template '{name}' {verb}"));
        }
        for (file, spec) in bundle.campaigns {
            let name = spec.name.clone();
            self.campaigns
                .save_campaign(spec)
                .await
                .with_context(|| format!("{}: campaign '{name}'", file.display()))?;
            done.push(format!("campaign '{name}'"));
        }
        for (file, spec) in bundle.canvases {
            let name = spec.name.clone();
            self.canvases
                .save_canvas_with_webhooks(spec, &self.webhooks)
                .await
                .with_context(|| format!("{}: canvas '{name}'", file.display()))?;
            done.push(format!("canvas '{name}'"));
        }
        Ok(Applied { done, warnings })
    }

    /// Whether everything triggered so far has been handled: both consumers have read the whole
    /// feed, no journey is due and no send is in flight or queued to go within
    /// [`SCHEDULED_AHEAD`] (sends a campaign's pace holds for later, and journeys waiting on a
    /// Delay, excepted; a send handed back for a busy host or retried soon still counts). Read
    /// from one snapshot, so the facts are from the same instant.
    pub async fn idle(&self) -> anyhow::Result<bool> {
        let now = chrono::Utc::now();
        let idle = self
            .store
            .read(move |tx| {
                let end = tx.feed_end()?;
                let mut caught_up = true;
                for consumer in Consumer::ALL {
                    caught_up &= tx.feed_position(consumer)? >= end;
                }
                let due_jobs = match tx.next_job_due()? {
                    Some(at) => at <= std::time::SystemTime::now() + SCHEDULED_AHEAD,
                    None => false,
                };
                Ok::<_, leadwire_store::StoreError>(
                    caught_up
                        && !due_jobs
                        && tx.in_flight_jobs()? == 0
                        && tx.due_journey_count(now)? == 0,
                )
            })
            .await?;
        Ok(idle)
    }

    /// Waits until [`App::idle`], or `timeout` passes; returns whether it settled.
    pub async fn settle(&self, timeout: Duration) -> anyhow::Result<bool> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.idle().await? {
                return Ok(true);
            }
            if tokio::time::Instant::now() > deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
