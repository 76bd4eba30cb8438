//! The running leadwire: store, webhook delivery, campaign and Canvas engines and API, started and stopped
//! together (`serve` and `demo` both use it), and `apply` of a config bundle to it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use leadwire_canvas::CanvasEngine;
use leadwire_config::{Bundle, CredentialDoc};
use leadwire_engine::CampaignEngine;
use leadwire_store::{SqliteStore, Store};
use leadwire_webhooks::WebhookService;
use leadwire_webhooks::credentials::NewCredential;
use leadwire_webhooks::templates::TemplateDefinition;

use crate::server_cmd::DataDir;
use crate::webhooks_cmd::DeliveryArgs;

pub struct App {
    pub store: Arc<SqliteStore>,
    pub webhooks: Arc<WebhookService>,
    pub engine: Arc<CampaignEngine>,
    pub canvases: Arc<CanvasEngine>,
    engine_stop: Option<tokio::sync::oneshot::Sender<()>>,
    engine_task: Option<tokio::task::JoinHandle<()>>,
    canvas_stop: Option<tokio::sync::oneshot::Sender<()>>,
    canvas_task: Option<tokio::task::JoinHandle<()>>,
}

impl App {
    /// Opens everything on the data directory and starts the workers and the campaign engine.
    pub async fn start(data: &DataDir, delivery: &DeliveryArgs) -> anyhow::Result<App> {
        let store = Arc::new(data.open_store()?);
        let dyn_store: Arc<dyn Store> = store.clone();
        let webhooks = crate::webhooks_cmd::open_service(data, delivery, dyn_store).await?;
        let db = data.data_dir.join("leadwire.db");
        let queue = webhooks.queue().clone();
        let engine = tokio::task::spawn_blocking(move || CampaignEngine::open(&db))
            .await?
            .context("opening the campaign engine")?
            .with_on_enqueue(Arc::new(move || queue.notify()));
        let engine = Arc::new(engine);
        let db = data.data_dir.join("leadwire.db");
        let queue = webhooks.queue().clone();
        let canvas_store: Arc<dyn Store> = store.clone();
        let canvases = tokio::task::spawn_blocking(move || CanvasEngine::open(&db, canvas_store))
            .await?
            .context("opening the Canvas engine")?
            .with_on_enqueue(Arc::new(move || queue.notify()));
        let canvases = Arc::new(canvases);
        webhooks.start();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(engine.clone().run(async move {
            let _ = stopped.await;
        }));
        let (canvas_stop, canvas_stopped) = tokio::sync::oneshot::channel::<()>();
        let canvas_task = tokio::spawn(canvases.clone().run(async move {
            let _ = canvas_stopped.await;
        }));
        Ok(App {
            store,
            webhooks,
            engine,
            engine_stop: Some(stop),
            engine_task: Some(task),
            canvases,
            canvas_stop: Some(canvas_stop),
            canvas_task: Some(canvas_task),
        })
    }

    /// Serves the REST API with every service behind it.
    pub async fn serve_api(
        &self,
        listen: SocketAddr,
        config: leadwire_api::ApiConfig,
    ) -> anyhow::Result<leadwire_api::RunningApi> {
        let services = leadwire_api::Services {
            webhooks: Some(self.webhooks.clone()),
            campaigns: Some(self.engine.clone()),
            canvases: Some(self.canvases.clone()),
        };
        leadwire_api::serve_with_services(listen, self.store.clone(), config, services)
            .await
            .with_context(|| format!("listening on {listen}"))
    }

    /// Stops the campaign engine and the workers, letting jobs in flight finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.engine_stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.engine_task.take() {
            let _ = task.await;
        }
        if let Some(stop) = self.canvas_stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.canvas_task.take() {
            let _ = task.await;
        }
        self.webhooks.stop().await;
    }

    /// Saves every credential, template (created or updated by name), campaign and Canvas of a
    /// bundle.
    /// Returns one line per object saved.
    pub async fn apply(&self, bundle: Bundle) -> anyhow::Result<Vec<String>> {
        let mut done = Vec::new();
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
            let engine = self.engine.clone();
            tokio::task::spawn_blocking(move || engine.save_campaign(spec))
                .await?
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
        Ok(done)
    }

    /// Waits until the campaign and Canvas engines consumed the trigger feed, no Canvas work is
    /// due and no send is queued or in flight (sends scheduled later by a rate limit or waiting
    /// journeys excepted), or `timeout` passes.
    pub async fn settle(&self, timeout: Duration) -> anyhow::Result<bool> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            // Read on the engines' own connections: the campaign engine reports the feed, its
            // position and the webhook jobs in one transaction.
            let engine = self.engine.clone();
            let (campaigns_idle, feed_end) = tokio::task::spawn_blocking(move || {
                Ok::<_, leadwire_engine::EngineError>((engine.idle()?, engine.feed_end()?))
            })
            .await??;
            let canvases = self.canvases.clone();
            let (canvas_position, pending) = tokio::task::spawn_blocking(move || {
                Ok::<_, leadwire_canvas::EngineError>((
                    canvases.position()?,
                    canvases.outstanding(chrono::Utc::now())?,
                ))
            })
            .await??;
            if campaigns_idle && canvas_position >= feed_end && pending == 0 {
                return Ok(true);
            }
            if std::time::Instant::now() > deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
