//! [`WebhookService`]: templates, credentials, preview and test send, the activity log, the
//! durable queue and the delivery worker, over the `Store`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use leadwire_delivery::batch::BatchConfig;
use leadwire_delivery::budget::Budgets;
use leadwire_delivery::circuit::{CircuitBreakers, CircuitConfig};
use leadwire_delivery::hostlimit::HostLimits;
use leadwire_delivery::redact::Redactor;
use leadwire_delivery::sender::{
    ClientSettings, Dispatch, LoggedRequest, LoggedResponse, Sender, SenderConfig, guarded_client,
};
use leadwire_delivery::ssrf::{GuardedFetcher, SsrfPolicy};
use leadwire_delivery::webhook::{RenderOutcome, RenderedRequest, Warning};
use leadwire_delivery::worker::{Worker, WorkerConfig};
use leadwire_http_client::HttpFetcher;
use leadwire_liquid::{ConnectedContent, ConnectedContentConfig, Context};
use leadwire_profiles::{Identifier, Profile};
use leadwire_salesforce::limits::BudgetPolicy;
use leadwire_salesforce::schema::FieldList;
use leadwire_salesforce::target::{Instances, Target, classify};
use leadwire_store::{
    ActivityQuery, ActivityRecord, ActivityRow, ActivityType, Enqueued, JobInfo, JobState, NewJob,
    Store,
};
use serde_json::{Value as Json, json};

use crate::WebhookError;
use crate::activity::{Activity, redact_request, redact_response, request_json, response_json};
use crate::credentials::{CredentialInfo, Credentials, NewCredential};
use crate::lint::LintWarning;
use crate::queue::{RenderProperties, StoreQueue, render_context};
use crate::templates::{TemplateDefinition, TemplateRecord, record};

/// Settings, resolved once at start-up.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub worker: WorkerConfig,
    pub sender: SenderConfig,
    pub ssrf: SsrfPolicy,
    /// PEM certificates to trust besides the public roots (the emulator's CA).
    pub extra_ca_pem: Vec<Vec<u8>>,
    /// Requests in flight to one host at most.
    pub per_host_concurrency: usize,
    pub circuit: CircuitConfig,
    pub connected_content: ConnectedContentConfig,
    /// Activity entries older than this are deleted (Braze: 60 hours).
    pub activity_retention: Duration,
    /// Instances besides `*.salesforce.com` to treat as Salesforce (origins or hosts: the
    /// emulator, a proxy), for creates' lookups, empty record ids and the linter.
    pub salesforce_instances: Vec<String>,
    /// How each org's daily API allowance is spent.
    pub api_budget: BudgetPolicy,
    /// How templates with `batch` share sObject Collections calls.
    pub batch: BatchConfig,
    /// Seals credential secrets at rest; `None` keeps them in clear (the binary always gives
    /// one: see `crate::sealed`).
    pub secret_key: Option<crate::sealed::SecretKey>,
}

impl WebhookConfig {
    pub fn new() -> WebhookConfig {
        WebhookConfig {
            worker: WorkerConfig::default(),
            sender: SenderConfig::default(),
            ssrf: SsrfPolicy::strict(),
            extra_ca_pem: Vec::new(),
            per_host_concurrency: 64,
            circuit: CircuitConfig::default(),
            connected_content: ConnectedContentConfig::default(),
            activity_retention: Duration::from_secs(60 * 3600),
            salesforce_instances: Vec::new(),
            api_budget: BudgetPolicy::default(),
            batch: BatchConfig::default(),
            secret_key: None,
        }
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig::new()
    }
}

type DeliveryWorker = Worker<StoreQueue, Activity>;

/// Which template to render.
#[derive(Debug, Clone)]
pub enum TemplateSource {
    Stored(String),
    /// An unsaved definition (the editor's preview).
    Draft(Box<TemplateDefinition>),
}

/// Whom to render for.
#[derive(Debug, Clone)]
pub enum PreviewUser {
    Existing(Identifier),
    /// A custom user: Braze's render context, `{"profile": {...}, "custom_attributes": {...}}`.
    Custom(Json),
}

#[derive(Debug, Clone)]
pub struct RenderRequest {
    pub template: TemplateSource,
    pub user: PreviewUser,
    pub properties: RenderProperties,
    pub campaign_id: Option<String>,
}

/// What a preview rendered (secrets redacted).
#[derive(Debug, Clone, PartialEq)]
pub enum Preview {
    Rendered(RenderedRequest),
    Aborted { reason: String },
    Error { field: String, message: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct PreviewResult {
    pub preview: Preview,
    pub warnings: Vec<Warning>,
}

impl PreviewResult {
    pub fn to_json(&self) -> Json {
        let warnings: Vec<Json> = self
            .warnings
            .iter()
            .map(|w| json!({"field": w.field.to_string(), "message": w.message}))
            .collect();
        let mut out = match &self.preview {
            Preview::Rendered(r) => json!({
                "outcome": "rendered",
                "request": {
                    "method": r.method.as_str(),
                    "url": r.url,
                    "headers": r.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
                    "body": r.body,
                }
            }),
            Preview::Aborted { reason } => json!({"outcome": "aborted", "message": reason}),
            Preview::Error { field, message } => {
                json!({"outcome": "render_error", "field": field, "message": message})
            }
        };
        out["warnings"] = Json::Array(warnings);
        out
    }
}

/// What a test send did (secrets redacted).
#[derive(Debug, Clone, PartialEq)]
pub enum TestSend {
    /// Rendering stopped (abort or error): nothing was sent.
    NotSent(Preview),
    Sent {
        delivery_id: String,
        request: LoggedRequest,
        response: Option<LoggedResponse>,
        error: Option<String>,
        duration: Duration,
        message: String,
    },
}

impl TestSend {
    pub fn to_json(&self) -> Json {
        match self {
            TestSend::NotSent(p) => {
                let mut out = PreviewResult {
                    preview: p.clone(),
                    warnings: vec![],
                }
                .to_json();
                out["sent"] = json!(false);
                out
            }
            TestSend::Sent {
                delivery_id,
                request,
                response,
                error,
                duration,
                message,
            } => json!({
                "sent": true,
                "delivery_id": delivery_id,
                "request": request_json(request),
                "response": response.as_ref().map(response_json),
                "error": error,
                "duration_ms": u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
                "message": message,
            }),
        }
    }
}

struct Running {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Everything about webhooks, over the `Store`.
pub struct WebhookService {
    store: Store,
    credentials: Arc<Credentials>,
    queue: Arc<StoreQueue>,
    activity: Arc<Activity>,
    sender: Arc<Sender>,
    connected: Arc<ConnectedContent>,
    worker: Arc<DeliveryWorker>,
    config: WebhookConfig,
    running: Mutex<Option<Running>>,
    /// The guarded client, for the linter's describe calls.
    client: reqwest::Client,
    instances: Instances,
    /// Each org's field list for an object, from its describe call: `origin|object` → when
    /// fetched and the list.
    describes: Mutex<HashMap<String, (Instant, Arc<FieldList>)>>,
    /// Each destination host's circuit breaker (the sender's), for `/metrics`.
    circuits: Arc<CircuitBreakers>,
    /// Each Salesforce org's API allowance (the sender's), for the dashboard.
    budgets: Arc<Budgets>,
}

/// How long an org's describe answer is reused by the linter.
const DESCRIBE_TTL: Duration = Duration::from_secs(600);

/// The user templates are linted for: no attributes, so a record id taken from one renders empty.
fn lint_user() -> Json {
    json!({"profile": {}, "custom_attributes": {}})
}

impl WebhookService {
    /// Builds the HTTP client and worker over the store. Call inside a Tokio runtime. The worker
    /// does not run until [`WebhookService::start`].
    pub async fn open(
        config: WebhookConfig,
        store: Store,
    ) -> Result<Arc<WebhookService>, WebhookError> {
        let credentials = Arc::new(Credentials::new(store.clone(), config.secret_key.clone()));
        let sealed = credentials.seal_plaintext().await?;
        if sealed > 0 {
            tracing::info!(
                sealed,
                "credential secrets saved in clear are now encrypted"
            );
        }
        let policy = Arc::new(config.ssrf.clone());
        let settings = ClientSettings {
            extra_ca_pem: config.extra_ca_pem.clone(),
            pool_max_idle_per_host: None,
        };
        let client = guarded_client(&settings, policy.clone())
            .map_err(|e| WebhookError::Setup(e.to_string()))?;
        let mut redactor = Redactor::new();
        let secrets = credentials.secrets().await?;
        for s in secrets {
            redactor = redactor.with_secret(s);
        }
        let lint_client = client.clone();
        let circuits = Arc::new(CircuitBreakers::new(config.circuit.clone()));
        let budgets = Arc::new(Budgets::new(config.api_budget.clone()));
        let sender = Arc::new(
            Sender::new(
                client.clone(),
                config.sender.clone(),
                policy.clone(),
                Arc::new(HostLimits::new(
                    config.per_host_concurrency,
                    config.worker.concurrency.max(1),
                )),
                circuits.clone(),
                Arc::new(redactor.clone()),
            )
            .with_budgets(budgets.clone()),
        );
        let fetcher = GuardedFetcher::new(
            Arc::new(HttpFetcher::new(client, tokio::runtime::Handle::current())),
            policy,
        );
        let connected = Arc::new(
            ConnectedContent::new(Arc::new(fetcher), config.connected_content.clone())
                .with_credentials(credentials.clone()),
        );
        let queue = Arc::new(StoreQueue::new(store.clone()));
        let activity = Arc::new(Activity::new(store.clone(), credentials.clone(), redactor));
        let worker = Arc::new(
            Worker::new(
                queue.clone(),
                activity.clone(),
                sender.clone(),
                config.worker.clone(),
            )
            .with_connected_content(connected.clone())
            .with_salesforce_instances(Instances::new(&config.salesforce_instances))
            .with_batching(config.batch.clone()),
        );
        Ok(Arc::new(WebhookService {
            store,
            credentials,
            queue,
            activity,
            sender,
            connected,
            worker,
            instances: Instances::new(&config.salesforce_instances),
            config,
            running: Mutex::new(None),
            client: lint_client,
            describes: Mutex::new(HashMap::new()),
            circuits,
            budgets,
        }))
    }

    /// Each Salesforce org's API allowance as its answers last reported it.
    pub fn api_budgets(&self) -> Vec<leadwire_delivery::budget::OrgBudget> {
        self.budgets.known()
    }

    /// Each destination host's circuit: 0 closed, 1 half open (one probe out), 2 open.
    pub fn circuit_states(&self) -> Vec<(String, f64)> {
        use leadwire_delivery::circuit::State;
        self.circuits
            .states()
            .into_iter()
            .map(|(host, state)| {
                let value = match state {
                    State::Closed => 0.0,
                    State::HalfOpen => 1.0,
                    State::Open { .. } => 2.0,
                };
                (host, value)
            })
            .collect()
    }

    pub fn config(&self) -> &WebhookConfig {
        &self.config
    }

    pub fn queue(&self) -> &Arc<StoreQueue> {
        &self.queue
    }

    pub fn activity_log(&self) -> &Arc<Activity> {
        &self.activity
    }

    /// The worker, for tests that drain the queue with `try_execute_job`.
    pub fn worker(&self) -> &Arc<DeliveryWorker> {
        &self.worker
    }

    // ----- templates -----

    /// Every warning for a template (it must compile): the compiler's and the Salesforce-aware
    /// linter's, with field lists from the org's describe call when it answers (else the
    /// built-in Lead schema).
    pub async fn lint(&self, definition: &TemplateDefinition) -> Vec<LintWarning> {
        let template = &definition.template;
        let Ok(compiled) = template.compile() else {
            return Vec::new();
        };
        let compiler_warnings = compiled.warnings().to_vec();
        let user = lint_user();
        let url = crate::lint::rendered_url(template, &user);
        let target = classify(
            template.method.as_str(),
            url.as_deref().unwrap_or(&template.url),
            &self.instances,
        );
        let describe = match &target {
            Some(t) if t.object().is_some() => self.describe(Arc::new(compiled), t).await,
            _ => None,
        };
        crate::lint::findings(
            template,
            &compiler_warnings,
            url.as_deref(),
            &self.instances,
            describe.as_deref(),
        )
    }

    /// The object's fields from the org's describe call, with the authorization the template
    /// renders (its token call shares the delivery cache); `None` when it does not answer.
    async fn describe(
        &self,
        compiled: Arc<leadwire_delivery::webhook::CompiledWebhook>,
        target: &Target,
    ) -> Option<Arc<FieldList>> {
        let object = target.object()?;
        let key = format!("{}|{}", target.origin, object.to_ascii_lowercase());
        if let Ok(cache) = self.describes.lock()
            && let Some((at, list)) = cache.get(&key)
            && at.elapsed() < DESCRIBE_TTL
        {
            return Some(list.clone());
        }
        let connected = self.connected.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let ctx = Context::new()
                .with_braze(&lint_user())
                .with_connected_content(connected);
            compiled.render(&ctx)
        })
        .await
        .ok()?;
        let RenderOutcome::Rendered(request) = outcome else {
            return None;
        };
        let mut call = self
            .client
            .get(target.data_url(&format!("sobjects/{object}/describe")))
            .timeout(Duration::from_secs(3))
            .header("Accept", "application/json");
        if let Some((_, auth)) = request
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            call = call.header("Authorization", auth.as_str());
        }
        let response = call.send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        let body = response.bytes().await.ok()?;
        let json: Json = serde_json::from_slice(&body).ok()?;
        let list = Arc::new(FieldList::from_describe(&json).ok()?);
        if let Ok(mut cache) = self.describes.lock() {
            cache.insert(key, (Instant::now(), list.clone()));
        }
        Some(list)
    }

    pub async fn create_template(
        &self,
        definition: TemplateDefinition,
    ) -> Result<TemplateRecord, WebhookError> {
        definition.compile_checked()?;
        let text = definition.to_json().to_string();
        let row = self
            .store
            .transact(move |tx| {
                let id =
                    tx.insert_template(&definition.template.name, &definition.description, &text)?;
                tx.template(&id)
            })
            .await?;
        record(row.ok_or_else(|| WebhookError::Database("the saved template vanished".into()))?)
    }

    pub async fn template(&self, id: &str) -> Result<TemplateRecord, WebhookError> {
        let key = id.to_owned();
        let row = self.store.read(move |tx| tx.template(&key)).await?;
        match row {
            Some(row) => record(row),
            None => Err(WebhookError::NotFound {
                what: "template",
                id: id.to_owned(),
            }),
        }
    }

    pub async fn update_template(
        &self,
        id: &str,
        definition: TemplateDefinition,
    ) -> Result<TemplateRecord, WebhookError> {
        definition.compile_checked()?;
        let text = definition.to_json().to_string();
        let key = id.to_owned();
        let row = self
            .store
            .transact(move |tx| {
                if !tx.update_template(
                    &key,
                    &definition.template.name,
                    &definition.description,
                    &text,
                )? {
                    return Ok(None);
                }
                tx.template(&key)
            })
            .await?;
        match row {
            Some(row) => record(row),
            None => Err(WebhookError::NotFound {
                what: "template",
                id: id.to_owned(),
            }),
        }
    }

    pub async fn archive_template(&self, id: &str) -> Result<TemplateRecord, WebhookError> {
        let key = id.to_owned();
        let row = self
            .store
            .transact(move |tx| {
                if !tx.archive_template(&key)? {
                    return Ok(None);
                }
                tx.template(&key)
            })
            .await?;
        match row {
            Some(row) => record(row),
            None => Err(WebhookError::NotFound {
                what: "template",
                id: id.to_owned(),
            }),
        }
    }

    pub async fn list_templates(
        &self,
        include_archived: bool,
        limit: usize,
        offset: usize,
    ) -> Result<Vec<TemplateRecord>, WebhookError> {
        let rows = self
            .store
            .read(move |tx| tx.templates(include_archived, limit, offset))
            .await?;
        rows.into_iter().map(record).collect()
    }

    // ----- credentials -----

    pub async fn save_credential(
        &self,
        credential: NewCredential,
    ) -> Result<CredentialInfo, WebhookError> {
        self.credentials.save(&credential).await
    }

    /// Deletes a credential (templates that name it then fail to render, with that reason in
    /// the activity log); `NotFound` when there is none by that name.
    pub async fn delete_credential(&self, name: &str) -> Result<(), WebhookError> {
        let key = name.to_owned();
        let deleted = self
            .store
            .transact(move |tx| tx.delete_credential(&key))
            .await?;
        if deleted {
            Ok(())
        } else {
            Err(WebhookError::NotFound {
                what: "credential",
                id: name.to_owned(),
            })
        }
    }

    pub async fn list_credentials(&self) -> Result<Vec<CredentialInfo>, WebhookError> {
        self.credentials.list().await
    }

    // ----- jobs -----

    /// Enqueues a job in a transaction of its own (engines enqueue inside their own with
    /// `Tx::enqueue_job`); the worker wakes when it commits.
    pub async fn enqueue(&self, job: NewJob) -> Result<Enqueued, WebhookError> {
        Ok(self.store.transact(move |tx| tx.enqueue_job(&job)).await?)
    }

    /// Whether the worker loop runs (`start` was called and `stop` was not).
    pub fn is_running(&self) -> bool {
        self.running.lock().is_ok_and(|r| r.is_some())
    }

    pub async fn job_counts(
        &self,
    ) -> Result<std::collections::HashMap<JobState, u64>, WebhookError> {
        Ok(self.store.read(|tx| tx.job_counts()).await?)
    }

    pub async fn jobs(
        &self,
        campaign_id: Option<String>,
        limit: usize,
    ) -> Result<Vec<JobInfo>, WebhookError> {
        Ok(self
            .store
            .read(move |tx| tx.jobs(campaign_id.as_deref(), limit))
            .await?)
    }

    // ----- activity -----

    pub async fn activity(
        &self,
        query: ActivityQuery,
    ) -> Result<Vec<ActivityRecord>, WebhookError> {
        self.activity.query(query).await
    }

    pub async fn prune_activity(&self) -> Result<usize, WebhookError> {
        self.activity.prune(self.config.activity_retention).await
    }

    // ----- preview and test send -----

    async fn render(
        &self,
        request: &RenderRequest,
        delivery_id: &str,
    ) -> Result<(RenderOutcome, Vec<Warning>, String, String), WebhookError> {
        let (definition, template_name) = match &request.template {
            TemplateSource::Stored(id) => {
                let record = self.template(id).await?;
                let name = record.definition.template.name.clone();
                (record.definition, name)
            }
            TemplateSource::Draft(d) => ((**d).clone(), d.template.name.clone()),
        };
        let compiled = Arc::new(definition.compile_checked()?);
        let (profile_context, user_label) = match &request.user {
            PreviewUser::Existing(id) => {
                let found = self.store.find_profiles(vec![id.clone()]).await?;
                let Some(profile) = found.found.into_iter().next() else {
                    return Err(WebhookError::NotFound {
                        what: "user",
                        id: id.describe(),
                    });
                };
                let label = profile
                    .external_id
                    .clone()
                    .unwrap_or_else(|| profile.braze_id.clone());
                (profile.liquid_context(), label)
            }
            PreviewUser::Custom(json) => {
                let Json::Object(user) = json else {
                    return Err(WebhookError::Invalid(
                        "a custom user must be an object: Braze's export shape \
                         ({\"external_id\", \"email\", \"first_name\", \"custom_attributes\": {...}}) \
                         or the render context ({\"profile\": {...}, \"custom_attributes\": {...}})"
                            .into(),
                    ));
                };
                let profile = Profile::from_user_json(user, chrono::Utc::now());
                let label = profile
                    .external_id
                    .clone()
                    .unwrap_or_else(|| "custom user".to_owned());
                (profile.liquid_context(), label)
            }
        };
        let context = Arc::new(render_context(
            profile_context,
            &request.properties,
            request.campaign_id.as_deref(),
            None,
            delivery_id,
        ));
        let warnings = compiled.warnings().to_vec();
        let connected = self.connected.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let ctx = Context::new()
                .with_braze(&context)
                .with_connected_content(connected);
            compiled.render(&ctx)
        })
        .await
        .map_err(|e| WebhookError::Database(format!("rendering stopped: {e}")))?;
        Ok((outcome, warnings, user_label, template_name))
    }

    fn preview_of(&self, outcome: RenderOutcome, redactor: &Redactor) -> Preview {
        match outcome {
            RenderOutcome::Rendered(r) => Preview::Rendered(RenderedRequest {
                method: r.method,
                url: redactor.text(&r.url),
                headers: redactor.headers(&r.headers),
                body: r.body.as_deref().map(|b| redactor.text(b)),
            }),
            RenderOutcome::Aborted { reason } => Preview::Aborted {
                reason: if reason.is_empty() {
                    "{% abort_message %} called".into()
                } else {
                    redactor.text(&reason)
                },
            },
            RenderOutcome::Error(e) => Preview::Error {
                field: e.field.to_string(),
                message: redactor.text(&e.message),
            },
            RenderOutcome::TokenFailed { field, failure } => Preview::Error {
                field: field.to_string(),
                message: redactor.text(&format!(
                    "Connected Content error: {}: {}",
                    failure.reason, failure.response_body
                )),
            },
        }
    }

    /// Renders without sending; connected_content calls are made (as Braze's preview does).
    pub async fn preview(&self, request: RenderRequest) -> Result<PreviewResult, WebhookError> {
        let (outcome, warnings, _, _) = self.render(&request, "preview").await?;
        let redactor = self.activity.redactor().await;
        Ok(PreviewResult {
            preview: self.preview_of(outcome, &redactor),
            warnings,
        })
    }

    /// Renders and sends once (no retries), logs the result to the activity log as a test send
    /// (`[TEST SEND]`), and returns what came back.
    pub async fn test_send(&self, request: RenderRequest) -> Result<TestSend, WebhookError> {
        let delivery_id = format!(
            "test_{:x}",
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let (outcome, _, user, template) = self.render(&request, &delivery_id).await?;
        let redactor = self.activity.redactor().await;
        let campaign_id = request.campaign_id.clone();
        let log = |message: String,
                   request: Option<&LoggedRequest>,
                   response: Option<&LoggedResponse>| ActivityRow {
            at: SystemTime::now(),
            kind: ActivityType::TestSend,
            campaign_id: campaign_id.clone(),
            step_id: None,
            user_id: user.clone(),
            delivery_id: Some(delivery_id.clone()),
            template: Some(template.clone()),
            attempt: Some(1),
            request: request.map(|r| request_json(&redact_request(&redactor, r))),
            response: response.map(|r| response_json(&redact_response(&redactor, r))),
            message: redactor.text(&format!("[TEST SEND] {message}")),
        };
        let rendered = match outcome {
            RenderOutcome::Rendered(r) => r,
            other => {
                let preview = self.preview_of(other, &redactor);
                let message = match &preview {
                    Preview::Aborted { reason } => reason.clone(),
                    Preview::Error { field, message } => format!("{field}: {message}"),
                    Preview::Rendered(_) => String::new(),
                };
                self.activity.insert(log(message, None, None)).await?;
                return Ok(TestSend::NotSent(preview));
            }
        };
        let attempt = match self
            .sender
            .send(&rendered, &delivery_id, 1, None, 0.5)
            .await
        {
            Dispatch::Attempted(a) => a,
            Dispatch::HostBusy => {
                return Err(WebhookError::Conflict(
                    "the webhook's host is at its concurrency limit; try the test again".into(),
                ));
            }
            Dispatch::Held { reason, .. } => {
                return Err(WebhookError::Conflict(format!(
                    "not sent to keep the org's API budget: {reason}"
                )));
            }
        };
        let report = &attempt.report;
        let message = match &report.response {
            Some(r) if (200..300).contains(&r.status) => format!(
                "{} {} answered {}",
                report.request.method, report.request.url, r.status
            ),
            _ => report.summary(),
        };
        let row = log(
            message.clone(),
            Some(&report.request),
            report.response.as_ref(),
        );
        let message = row.message.clone();
        self.activity.insert(row).await?;
        Ok(TestSend::Sent {
            delivery_id,
            request: redact_request(&redactor, &report.request),
            response: report
                .response
                .as_ref()
                .map(|r| redact_response(&redactor, r)),
            error: report.error.as_deref().map(|e| redactor.text(e)),
            duration: report.duration,
            message,
        })
    }

    // ----- worker -----

    /// Starts the worker loop and hourly activity pruning (idempotent).
    pub fn start(self: &Arc<Self>) {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if running.is_some() {
            return;
        }
        let (stop, rx) = tokio::sync::watch::channel(false);
        let mut worker_rx = rx.clone();
        let worker = self.worker.clone();
        let run = tokio::spawn(async move {
            worker
                .run(async move {
                    let _ = worker_rx.wait_for(|s| *s).await;
                })
                .await;
        });
        let me = Arc::downgrade(self);
        let mut prune_rx = rx;
        let prune = tokio::spawn(async move {
            loop {
                let Some(service) = me.upgrade() else { return };
                match service.prune_activity().await {
                    Ok(n) if n > 0 => tracing::info!(entries = n, "pruned the activity log"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning the activity log failed"),
                }
                drop(service);
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(3600)) => {}
                    _ = prune_rx.wait_for(|s| *s) => return,
                }
            }
        });
        *running = Some(Running {
            stop,
            tasks: vec![run, prune],
        });
    }

    /// Stops claiming jobs and waits for the jobs in flight.
    pub async fn stop(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(running) = running {
            let _ = running.stop.send(true);
            for t in running.tasks {
                let _ = t.await;
            }
        }
    }
}
