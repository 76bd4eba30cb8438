//! The delivery worker: claims jobs from a [`JobQueue`], renders each job's webhook for its user,
//! sends it through the [`Sender`], and settles the job (delivered, aborted, retry at a time,
//! failed), reporting every abort, render error, failed attempt, retry and terminal failure to an
//! [`ActivitySink`], and a successful response's configured fields go with the job's completion.
//!
//! The core is [`Worker::try_execute_job`] (claim one, run it, say what happened) so tests can
//! drain a queue step by step; [`Worker::run`] is the same with bounded concurrency.
//!
//! Must not know how jobs, activity entries or profiles are stored: those are the three traits,
//! implemented by the store (durably) and by [`crate::memory`] (for tests and the benchmark).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use leadwire_liquid::{ConnectedContent, Context};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use leadwire_liquid::TokenFailure;
use leadwire_salesforce::soql::{self, Lookup};
use leadwire_salesforce::target::{Instances, Operation, Target, classify};

use crate::batch::{BatchConfig, BatchItem, BatchKey, BatchReply, Batcher, Member};
use crate::budget::BudgetChange;
use crate::retry::{AttemptResult, Classification, parse_retry_after};
use crate::sender::{Attempt, AttemptReport, Dispatch, LoggedRequest, LoggedResponse, Sender};
use crate::webhook::{
    CompiledWebhook, Field, Method, RenderError, RenderOutcome, RenderedRequest, WriteBackRule,
};

/// A claimed job, hydrated by the queue: the ids it was enqueued with plus the compiled template
/// and the user's render context as of the claim (the store keeps ids only and reloads them).
#[derive(Debug, Clone)]
pub struct Job {
    /// The queue's id for the job.
    pub id: String,
    /// Sent as `X-Leadwire-Delivery-Id` on every attempt; stable across retries.
    pub delivery_id: String,
    /// Attempts already made (0 for a new job).
    pub attempts_made: u32,
    /// The wait before this attempt, if it is a retry (decorrelated jitter uses it).
    pub previous_delay: Option<Duration>,
    /// The HTTP status the previous attempt got; `None` for a first attempt or one that got no
    /// answer (a retried create is looked up only then).
    pub previous_status: Option<u16>,
    /// An earlier claim of this job ended without settling it (the process died, or its lease
    /// ran out mid-send): its request may have reached the destination.
    pub interrupted: bool,
    /// Opaque campaign / canvas ids for the activity log.
    pub campaign_id: Option<String>,
    pub step_id: Option<String>,
    pub user_id: String,
    pub template: Arc<CompiledWebhook>,
    /// Braze's render context (`profile`, `custom_attributes`, `event_properties`, `campaign`…),
    /// as `leadwire_liquid::Context::with_braze` reads it.
    pub render_context: Arc<serde_json::Value>,
    /// The W3C `traceparent` of the work that enqueued the job: the delivery's span joins
    /// that trace (from `/users/track` to Salesforce's answer).
    pub trace_context: Option<String>,
}

impl Job {
    /// A new job whose delivery id is its id.
    pub fn new(
        id: impl Into<String>,
        user_id: impl Into<String>,
        template: Arc<CompiledWebhook>,
        render_context: Arc<serde_json::Value>,
    ) -> Job {
        let id = id.into();
        Job {
            delivery_id: id.clone(),
            id,
            attempts_made: 0,
            previous_delay: None,
            previous_status: None,
            interrupted: false,
            campaign_id: None,
            step_id: None,
            user_id: user_id.into(),
            template,
            render_context,
            trace_context: None,
        }
    }

    pub fn with_campaign(mut self, campaign_id: Option<String>, step_id: Option<String>) -> Job {
        self.campaign_id = campaign_id;
        self.step_id = step_id;
        self
    }
}

/// How a job ended well.
#[derive(Debug, Clone)]
pub enum Completion<'a> {
    /// Sent and accepted. `write_back` holds the response fields the template's rules picked
    /// out, to be saved on the user's profile in the same commit that settles the job, so a
    /// crash can never leave one without the other.
    Delivered {
        report: &'a AttemptReport,
        write_back: Vec<(String, serde_json::Value)>,
    },
    /// `abort_message`: nothing was sent, by design.
    Aborted { reason: &'a str },
}

/// Why a job failed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The template could not be rendered for this user (nothing was sent).
    Render,
    /// A terminal response or refusal (30x, 4xx other than 408/429, SSRF).
    Terminal,
    /// Retriable failures used up the schedule.
    RetriesExhausted,
    /// The OAuth token call failed for good (a 4xx from the token endpoint, or retries used up).
    TokenCall,
    /// A create's outcome is unknown and could not be settled by a lookup.
    OutcomeUnknown,
}

#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: FailureKind,
    /// What a person reads (secrets redacted).
    pub message: String,
    pub report: Option<AttemptReport>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("job queue: {0}")]
pub struct QueueError(pub String);

/// Durable (or in-memory) jobs. Every method settles or reschedules one claimed job; a job whose
/// lease runs out without being settled is claimable again (at-least-once delivery).
pub trait JobQueue: Send + Sync + 'static {
    /// Up to `max` due jobs, leased to the caller for `lease`.
    fn claim(
        &self,
        max: usize,
        lease: Duration,
    ) -> impl Future<Output = Result<Vec<Job>, QueueError>> + Send;
    fn complete(
        &self,
        job: &Job,
        completion: Completion<'_>,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
    /// Attempt `report.attempt` failed and is retried at `when`; the job's `attempts_made`
    /// becomes `report.attempt` and its `previous_delay` `report.next_delay`.
    fn retry_at(
        &self,
        job: &Job,
        when: SystemTime,
        report: &AttemptReport,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
    fn fail(
        &self,
        job: &Job,
        failure: &Failure,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
    /// Gives the job back without using an attempt (its host is saturated).
    fn release(
        &self,
        job: &Job,
        not_before: SystemTime,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
    /// Returns when work may be available, or after `max`; the default just sleeps.
    fn wait_for_work(&self, max: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(max)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    /// `abort_message` ran.
    Aborted,
    /// The template failed to render (e.g. an invalid connected_content URL).
    RenderError,
    /// An attempt failed and will be retried.
    Retrying,
    /// The job failed for good (terminal response, refusal, retries used up).
    Failed,
    /// Delivered, but the response fields could not be saved to the profile.
    WriteBackFailed,
    /// A connected_content call to an OAuth token endpoint failed (Braze: "Connected Content
    /// error"); the send is retried on the same rules, or failed.
    ConnectedContentError,
    /// Salesforce refused a cached token (401 `INVALID_SESSION_ID`): it was dropped and the
    /// request sent again with a new one.
    TokenRefreshed,
    /// A create was retried after an attempt whose outcome was unknown, and the lookup found the
    /// record already there: not created twice, its id written back.
    Deduplicated,
    /// A create went out and no answer came back, and nothing can tell whether it was made:
    /// not retried, so it cannot be made twice.
    OutcomeUnknown,
    /// The org's API allowance paused or resumed sends to it.
    ApiBudget,
}

/// One entry of the message activity log; secrets are already redacted.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityEntry {
    pub at: SystemTime,
    pub kind: ActivityKind,
    pub campaign_id: Option<String>,
    pub step_id: Option<String>,
    pub user_id: String,
    pub delivery_id: String,
    pub template: String,
    /// The attempt this is about (the one that would have been made, for aborts and render
    /// errors).
    pub attempt: u32,
    pub request: Option<LoggedRequest>,
    pub response: Option<LoggedResponse>,
    pub message: String,
}

/// Where activity entries go (the store's activity log).
pub trait ActivitySink: Send + Sync + 'static {
    fn record(&self, entry: ActivityEntry) -> impl Future<Output = ()> + Send;
}

/// Picks the rules' fields out of a JSON response body (dotted paths). Pure.
pub fn extract_write_back(
    rules: &[WriteBackRule],
    body: &[u8],
) -> Result<Vec<(String, serde_json::Value)>, String> {
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let json: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| format!("the response is not JSON ({e}), so no field could be saved"))?;
    rules
        .iter()
        .map(|rule| {
            let mut value = &json;
            for part in rule.response_field.split('.') {
                value = match value {
                    serde_json::Value::Object(map) => map.get(part),
                    serde_json::Value::Array(items) => {
                        part.parse::<usize>().ok().and_then(|i| items.get(i))
                    }
                    _ => None,
                }
                .ok_or_else(|| {
                    format!(
                        "the response has no '{}' to save as '{}'",
                        rule.response_field, rule.attribute
                    )
                })?;
            }
            Ok((rule.attribute.clone(), value.clone()))
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs executed at once by [`Worker::run`].
    pub concurrency: usize,
    /// Jobs claimed per queue round trip.
    pub claim_batch: usize,
    /// How long a claimed job stays ours; longer than the request time limit plus rendering.
    pub lease: Duration,
    /// Wait between polls when the queue is empty.
    pub idle_wait: Duration,
    /// When a host is saturated, the job is given back for this long.
    pub busy_host_delay: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 256,
            claim_batch: 128,
            lease: Duration::from_secs(5 * 60),
            idle_wait: Duration::from_millis(200),
            busy_host_delay: Duration::from_millis(100),
        }
    }
}

/// What [`Worker::try_execute_job`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutionOutcome {
    /// No due job.
    EmptyQueue,
    Delivered,
    Aborted,
    RenderFailed,
    Retrying {
        after: Duration,
    },
    Failed,
    /// Host saturated; given back without an attempt.
    Deferred,
}

/// The worker. Construct with [`Worker::new`], optionally add a connected_content client, then
/// call [`Worker::try_execute_job`] (tests) or [`Worker::run`] (service). It reads the time from
/// its sender's [`Clock`](crate::clock::Clock), so one clock drives a whole delivery pipeline.
pub struct Worker<Q, A> {
    queue: Arc<Q>,
    activity: Arc<A>,
    sender: Arc<Sender>,
    connected: Option<Arc<ConnectedContent>>,
    config: WorkerConfig,
    instances: Instances,
    batcher: Option<Arc<Batcher>>,
    rng: AtomicU64,
}

/// How a request may join a batch: its key and its part.
type Batchable<'a> = &'a (dyn Fn(&RenderedRequest) -> Option<(BatchKey, BatchItem)> + Sync);

/// Where a step of a job's execution got to: go on with the send, or the job is settled.
enum Step<T> {
    Continue(T),
    Settled(ExecutionOutcome),
}

/// SplitMix64 step: a cheap, well-mixed stream for jitter (not for secrets).
pub(crate) fn splitmix(state: &AtomicU64) -> f64 {
    let mut z = state
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

impl<Q: JobQueue, A: ActivitySink> Worker<Q, A> {
    pub fn new(
        queue: Arc<Q>,
        activity: Arc<A>,
        sender: Arc<Sender>,
        config: WorkerConfig,
    ) -> Worker<Q, A> {
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Worker {
            queue,
            activity,
            sender,
            connected: None,
            config,
            instances: Instances::default(),
            batcher: None,
            rng: AtomicU64::new(seed),
        }
    }

    /// Lets templates that ask for it (`batch`) share sObject Collections calls.
    pub fn with_batching(mut self, config: BatchConfig) -> Self {
        self.batcher = Some(Arc::new(Batcher::new(config, self.sender.clone())));
        self
    }

    /// Hosts besides `*.salesforce.com` to treat as Salesforce (the emulator, a proxy).
    pub fn with_salesforce_instances(mut self, instances: Instances) -> Self {
        self.instances = instances;
        self
    }

    /// The connected_content client renders use (share one per workspace: it holds the cache).
    pub fn with_connected_content(mut self, client: Arc<ConnectedContent>) -> Self {
        self.connected = Some(client);
        self
    }

    /// Fixes the jitter stream (tests).
    pub fn with_seed(self, seed: u64) -> Self {
        self.rng.store(seed, Ordering::Relaxed);
        self
    }

    pub fn queue(&self) -> &Arc<Q> {
        &self.queue
    }

    /// Claims one due job and executes it.
    pub async fn try_execute_job(&self) -> Result<ExecutionOutcome, QueueError> {
        let mut jobs = self.queue.claim(1, self.config.lease).await?;
        match jobs.pop() {
            Some(job) => self.execute(job).await,
            None => Ok(ExecutionOutcome::EmptyQueue),
        }
    }

    async fn render(&self, job: &Job) -> RenderOutcome {
        let started = std::time::Instant::now();
        let outcome = self.render_uncounted(job).await;
        metrics::histogram!("leadwire_webhook_render_seconds")
            .record(started.elapsed().as_secs_f64());
        outcome
    }

    async fn render_uncounted(&self, job: &Job) -> RenderOutcome {
        let template = job.template.clone();
        let braze = job.render_context.clone();
        let connected = self.connected.clone();
        let render = move || {
            let mut context = Context::new().with_braze(&braze);
            if let Some(client) = connected {
                context = context.with_connected_content(client);
            }
            template.render(&context)
        };
        if job.template.uses_connected_content() {
            // The fetcher blocks on the runtime: never on an async worker thread.
            match tokio::task::spawn_blocking(render).await {
                Ok(outcome) => outcome,
                Err(e) => RenderOutcome::Error(RenderError {
                    field: Field::Url,
                    message: format!("rendering stopped unexpectedly: {e}"),
                }),
            }
        } else {
            render()
        }
    }

    fn entry(
        &self,
        job: &Job,
        kind: ActivityKind,
        message: String,
        report: Option<&AttemptReport>,
    ) -> ActivityEntry {
        ActivityEntry {
            at: self.sender.clock().system_now(),
            kind,
            campaign_id: job.campaign_id.clone(),
            step_id: job.step_id.clone(),
            user_id: job.user_id.clone(),
            delivery_id: job.delivery_id.clone(),
            template: job.template.name().to_owned(),
            attempt: report.map_or(job.attempts_made + 1, |r| r.attempt),
            request: report.map(|r| r.request.clone()),
            response: report.and_then(|r| r.response.clone()),
            message: self.sender.redactor().text(&message),
        }
    }

    /// Runs one claimed job to its next state. Everything logged meanwhile carries the delivery
    /// id (the `X-Leadwire-Delivery-Id` Salesforce saw), so a send can be followed in the logs.
    pub async fn execute(&self, job: Job) -> Result<ExecutionOutcome, QueueError> {
        use tracing::Instrument as _;
        let span = tracing::info_span!(
            "delivery",
            delivery_id = %job.delivery_id,
            campaign = job.campaign_id.as_deref().unwrap_or(""),
            step = job.step_id.as_deref().unwrap_or(""),
            attempt = job.attempts_made + 1,
            outcome = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            url.full = tracing::field::Empty,
        );
        if let Some(parent) = &job.trace_context {
            leadwire_telemetry::continue_trace(&span, parent);
        }
        self.execute_in_span(job).instrument(span).await
    }

    async fn execute_in_span(&self, job: Job) -> Result<ExecutionOutcome, QueueError> {
        let request = match self.rendered(&job).await? {
            Step::Continue(r) => r,
            Step::Settled(outcome) => return Ok(outcome),
        };
        let target = classify(request.method.as_str(), &request.url, &self.instances);
        if let Some(Target {
            operation: Operation::MissingRecordId { object },
            ..
        }) = &target
        {
            let reason = format!(
                "not sent: the {object} record id in {} {} rendered empty for this user (Salesforce would answer 404 or 405); the user has no {object} id yet",
                request.method,
                self.sender.redactor().text(&request.url)
            );
            return self.abort(&job, reason).await;
        }
        let create = target
            .as_ref()
            .filter(|t| matches!(t.operation, Operation::Create { .. }));
        // A create retried after an attempt that got no answer, or after a claim that never
        // settled (leadwire was killed mid-send), first asks Salesforce whether the record is
        // already there. An answered failure (429, 5xx) wrote nothing.
        if let Some(target) = create
            && ((job.attempts_made > 0 && job.previous_status.is_none()) || job.interrupted)
            && let Some(field) = job.template.lookup_field()
        {
            match self.look_up(&job, &request, target, field).await? {
                Step::Continue(()) => {}
                Step::Settled(outcome) => return Ok(outcome),
            }
        }
        let batch_record = |rendered: &RenderedRequest| {
            let target = classify(rendered.method.as_str(), &rendered.url, &self.instances)?;
            crate::batch::record_of(rendered, &target)
        };
        let batchable: Option<Batchable<'_>> =
            (job.template.batched() && self.batcher.is_some()).then_some(&batch_record);
        let attempt = match self
            .send_with_fresh_token(&job, &request, &RenderedRequest::clone, batchable)
            .await?
        {
            Step::Continue(attempt) => attempt,
            Step::Settled(outcome) => return Ok(outcome),
        };
        if create.is_some()
            && attempt.report.result.outcome_unknown()
            && job.template.lookup_field().is_none()
        {
            let report = &attempt.report;
            let message = format!(
                "{}: the create may or may not have been made, so it is not sent again (a second lead could result). Name a lookup field (such as Email) on the template, or use an upsert URL (PATCH …/sobjects/Lead/External_Id__c/{{value}}), to make retries safe",
                report.summary()
            );
            self.count(&job, "outcome_unknown", Some(report));
            let entry = self.entry(&job, ActivityKind::OutcomeUnknown, message, Some(report));
            let failure = Failure {
                kind: FailureKind::OutcomeUnknown,
                message: entry.message.clone(),
                report: Some(report.clone()),
            };
            self.activity.record(entry).await;
            self.queue.fail(&job, &failure).await?;
            return Ok(ExecutionOutcome::Failed);
        }
        self.settle(&job, &attempt, &attempt.response_body).await
    }

    /// Renders the job's request, settling the job when rendering stops it.
    async fn rendered(&self, job: &Job) -> Result<Step<RenderedRequest>, QueueError> {
        Ok(match self.render(job).await {
            RenderOutcome::Rendered(r) => Step::Continue(r),
            RenderOutcome::Aborted { reason } => {
                let message = if reason.is_empty() {
                    "{% abort_message %} called".to_owned()
                } else {
                    reason
                };
                Step::Settled(self.abort(job, message).await?)
            }
            RenderOutcome::Error(error) => {
                self.count(job, "render_error", None);
                let entry = self.entry(job, ActivityKind::RenderError, error.to_string(), None);
                let failure = Failure {
                    kind: FailureKind::Render,
                    message: entry.message.clone(),
                    report: None,
                };
                self.activity.record(entry).await;
                self.queue.fail(job, &failure).await?;
                Step::Settled(ExecutionOutcome::RenderFailed)
            }
            RenderOutcome::TokenFailed { field, failure } => {
                Step::Settled(self.token_failed(job, &field, &failure).await?)
            }
        })
    }

    /// Counts a job's step in `leadwire_webhook_sends_total` (and the attempt's duration).
    fn count(&self, job: &Job, outcome: &'static str, report: Option<&AttemptReport>) {
        let status_class = match report.and_then(|r| r.response.as_ref()) {
            Some(r) => match r.status {
                200..=299 => "2xx",
                300..=399 => "3xx",
                400..=499 => "4xx",
                500..=599 => "5xx",
                _ => "other",
            },
            None => "none",
        };
        // The delivery's span (and its exported trace) carries the outcome and Salesforce's answer.
        let span = tracing::Span::current();
        span.record("outcome", outcome);
        if let Some(report) = report {
            span.record("url.full", report.request.url.as_str());
            if let Some(response) = &report.response {
                span.record("http.response.status_code", response.status);
            }
        }
        let campaign = job.campaign_id.clone().unwrap_or_default();
        let step = job.step_id.clone().unwrap_or_default();
        metrics::counter!(
            "leadwire_webhook_sends_total",
            "campaign" => campaign,
            "step" => step,
            "outcome" => outcome,
            "status_class" => status_class
        )
        .increment(1);
        if let Some(report) = report {
            metrics::histogram!("leadwire_webhook_attempt_seconds", "status_class" => status_class)
                .record(report.duration.as_secs_f64());
        }
    }

    async fn abort(&self, job: &Job, message: String) -> Result<ExecutionOutcome, QueueError> {
        self.count(job, "aborted", None);
        self.activity
            .record(self.entry(job, ActivityKind::Aborted, message.clone(), None))
            .await;
        self.queue
            .complete(job, Completion::Aborted { reason: &message })
            .await?;
        Ok(ExecutionOutcome::Aborted)
    }

    /// A failed OAuth token call is a failed attempt of the send, on Braze's retry rules, with
    /// the token endpoint's request and answer in the log.
    async fn token_failed(
        &self,
        job: &Job,
        field: &Field,
        failure: &TokenFailure,
    ) -> Result<ExecutionOutcome, QueueError> {
        let result = match (failure.status, failure.timed_out) {
            (Some(status), _) => AttemptResult::Status(status),
            (None, true) => AttemptResult::Timeout,
            (None, false) => AttemptResult::ConnectError,
        };
        let retry_after = failure
            .response_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, v)| parse_retry_after(v));
        let attempt = job.attempts_made + 1;
        let (classification, next_delay) = self.sender.plan_retry(
            result,
            attempt,
            retry_after,
            job.previous_delay,
            splitmix(&self.rng),
        );
        let redactor = self.sender.redactor();
        let report = AttemptReport {
            delivery_id: job.delivery_id.clone(),
            attempt,
            started_at: self.sender.clock().system_now(),
            duration: Duration::ZERO,
            request: LoggedRequest {
                method: failure.method.as_str().to_owned(),
                url: redactor.text(&failure.url),
                headers: redactor.headers(&failure.request_headers),
                body: failure.request_body.as_deref().map(|b| redactor.text(b)),
            },
            response: failure.status.map(|status| LoggedResponse {
                status,
                headers: redactor.headers(&failure.response_headers),
                body: redactor.text(&failure.response_body),
                truncated: false,
            }),
            result,
            classification,
            error: failure
                .status
                .is_none()
                .then(|| redactor.text(&failure.reason)),
            retry_after,
            next_delay,
        };
        let message = format!(
            "Connected Content error in {field}: the token call failed, so the request was not sent. {}",
            report.summary()
        );
        let entry = self.entry(
            job,
            ActivityKind::ConnectedContentError,
            message,
            Some(&report),
        );
        match (classification, next_delay) {
            (Classification::Retry(_), Some(after)) => {
                self.activity.record(entry).await;
                self.queue
                    .retry_at(job, self.sender.clock().system_now() + after, &report)
                    .await?;
                Ok(ExecutionOutcome::Retrying { after })
            }
            _ => {
                let failure = Failure {
                    kind: FailureKind::TokenCall,
                    message: entry.message.clone(),
                    report: Some(report.clone()),
                };
                self.activity.record(entry).await;
                self.queue.fail(job, &failure).await?;
                Ok(ExecutionOutcome::Failed)
            }
        }
    }

    /// One HTTP attempt through the sender; a held or busy host gives the job back.
    ///
    /// With `batch`, the request joins a batch instead (see [`crate::batch`]) and the job gets
    /// its own part of the call's outcome.
    async fn attempt(
        &self,
        job: &Job,
        request: &RenderedRequest,
        batch: Option<(BatchKey, BatchItem)>,
    ) -> Result<Step<Box<Attempt>>, QueueError> {
        let dispatch = match (batch, &self.batcher) {
            (Some((key, item)), Some(batcher)) => {
                let member = Member {
                    delivery_id: job.delivery_id.clone(),
                    attempt: job.attempts_made + 1,
                    previous_delay: job.previous_delay,
                };
                match batcher.submit(key, item, member).await {
                    BatchReply::Attempted(a) => Dispatch::Attempted(a),
                    BatchReply::HostBusy => Dispatch::HostBusy,
                    BatchReply::Held { wait } => Dispatch::Held {
                        wait,
                        reason: String::new(),
                    },
                }
            }
            _ => {
                self.sender
                    .send(
                        request,
                        &job.delivery_id,
                        job.attempts_made + 1,
                        job.previous_delay,
                        splitmix(&self.rng),
                    )
                    .await
            }
        };
        let attempt = match dispatch {
            Dispatch::HostBusy => {
                metrics::counter!("leadwire_webhook_held_total", "reason" => "host_busy")
                    .increment(1);
                self.queue
                    .release(
                        job,
                        self.sender.clock().system_now() + self.config.busy_host_delay,
                    )
                    .await?;
                return Ok(Step::Settled(ExecutionOutcome::Deferred));
            }
            Dispatch::Held { wait, .. } => {
                metrics::counter!("leadwire_webhook_held_total", "reason" => "api_budget")
                    .increment(1);
                self.queue
                    .release(job, self.sender.clock().system_now() + wait)
                    .await?;
                return Ok(Step::Settled(ExecutionOutcome::Deferred));
            }
            Dispatch::Attempted(a) => a,
        };
        if let Some(change) = &attempt.budget_change {
            let message = match change {
                BudgetChange::Paused(m) | BudgetChange::Resumed(m) => m.clone(),
            };
            self.activity
                .record(self.entry(job, ActivityKind::ApiBudget, message, Some(&attempt.report)))
                .await;
        }
        Ok(Step::Continue(attempt))
    }

    /// Sends; when Salesforce refuses the token the render fetched (401 `INVALID_SESSION_ID`),
    /// drops it from the cache, renders again with a new one and sends once more.
    ///
    /// `derive` turns the job's rendered request into the one to send (itself, or the lookup
    /// made with its authorization), so a re-render gives the new token to either.
    ///
    /// `batchable`, when given, says how the job's rendered request joins a batch.
    async fn send_with_fresh_token(
        &self,
        job: &Job,
        rendered: &RenderedRequest,
        derive: &(dyn Fn(&RenderedRequest) -> RenderedRequest + Sync),
        batchable: Option<Batchable<'_>>,
    ) -> Result<Step<Box<Attempt>>, QueueError> {
        let request = derive(rendered);
        let attempt = match self
            .attempt(job, &request, batchable.and_then(|b| b(rendered)))
            .await?
        {
            Step::Continue(a) => a,
            settled => return Ok(settled),
        };
        let refused = attempt
            .report
            .response
            .as_ref()
            .is_some_and(|r| r.status == 401 && r.body.contains("INVALID_SESSION_ID"));
        let (Some(connected), Some(token)) = (&self.connected, request.bearer_token()) else {
            return Ok(Step::Continue(attempt));
        };
        if !refused || !job.template.uses_connected_content() {
            return Ok(Step::Continue(attempt));
        }
        connected.forget_token(token);
        self.activity
            .record(self.entry(
                job,
                ActivityKind::TokenRefreshed,
                "Salesforce refused the cached access token (401 INVALID_SESSION_ID: expired or revoked); it was dropped and the request sent again with a new one".into(),
                Some(&attempt.report),
            ))
            .await;
        let rendered = match self.rendered(job).await? {
            Step::Continue(r) => r,
            Step::Settled(outcome) => return Ok(Step::Settled(outcome)),
        };
        self.attempt(
            job,
            &derive(&rendered),
            batchable.and_then(|b| b(&rendered)),
        )
        .await
    }

    /// Before a create is retried: is the record already there? Found settles the job as
    /// delivered (its id written back); not found lets the create go out again.
    async fn look_up(
        &self,
        job: &Job,
        request: &RenderedRequest,
        target: &Target,
        field: &str,
    ) -> Result<Step<()>, QueueError> {
        let Some(object) = target.object() else {
            return Ok(Step::Continue(()));
        };
        let Some(value) = request.body_field(field) else {
            // Nothing to look up by (the body has no such field for this user): the create
            // goes out again, as it would without a lookup field.
            return Ok(Step::Continue(()));
        };
        let query = match soql::lookup_query(object, field, &value) {
            Ok(q) => q,
            Err(_) => return Ok(Step::Continue(())),
        };
        let url = soql::query_url(target, &query);
        let lookup = |rendered: &RenderedRequest| {
            let mut headers: Vec<(String, String)> = rendered
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .cloned()
                .collect();
            headers.push(("Accept".into(), "application/json".into()));
            RenderedRequest {
                method: Method::Get,
                url: url.clone(),
                headers,
                body: None,
            }
        };
        let batch_lookup = |rendered: &RenderedRequest| {
            crate::batch::lookup_of(rendered, target, object, field, &value)
        };
        let batchable: Option<Batchable<'_>> =
            (job.template.batched() && self.batcher.is_some()).then_some(&batch_lookup);
        let attempt = match self
            .send_with_fresh_token(job, request, &lookup, batchable)
            .await?
        {
            Step::Continue(a) => a,
            Step::Settled(outcome) => return Ok(Step::Settled(outcome)),
        };
        if !attempt.report.classification.is_success() {
            // The lookup itself failed: the job waits (or fails) on the usual rules, and its
            // next attempt looks up again (the create's outcome is still unknown), so the
            // attempt is settled as one that got no answer.
            let mut unanswered = (*attempt).clone();
            // Until a lookup answers, the create is in the state a dropped connection left it
            // in, so it keeps the unreachable host's retry budget.
            if let Classification::Retry(_) = unanswered.report.classification {
                (
                    unanswered.report.classification,
                    unanswered.report.next_delay,
                ) = self.sender.plan_retry(
                    AttemptResult::NoAnswer,
                    unanswered.report.attempt,
                    unanswered.report.retry_after,
                    job.previous_delay,
                    splitmix(&self.rng),
                );
            }
            if let Some(response) = unanswered.report.response.take() {
                unanswered.report.error = Some(format!(
                    "the lookup before retrying the create answered {}: {}",
                    response.status,
                    response.body.chars().take(300).collect::<String>()
                ));
            }
            return Ok(Step::Settled(
                self.settle(job, &unanswered, &attempt.response_body)
                    .await?,
            ));
        }
        match soql::parse_lookup(&attempt.response_body) {
            Ok(Lookup::NotFound) => Ok(Step::Continue(())),
            Ok(Lookup::Found(id)) => {
                metrics::counter!("leadwire_webhook_deduplicated_total").increment(1);
                let body =
                    serde_json::json!({"id": id, "success": true, "errors": [], "created": false})
                        .to_string();
                self.activity
                    .record(self.entry(
                        job,
                        ActivityKind::Deduplicated,
                        format!(
                            "an earlier attempt had created {object} {id} ({field} = {value}) without an answer; it was not created again"
                        ),
                        Some(&attempt.report),
                    ))
                    .await;
                Ok(Step::Settled(
                    self.settle(job, &attempt, body.as_bytes()).await?,
                ))
            }
            Ok(Lookup::Several(ids)) => {
                self.count(job, "outcome_unknown", Some(&attempt.report));
                let message = format!(
                    "{} {object} records have {field} = {value} ({}); which one an earlier attempt created cannot be told, so the create is not sent again",
                    ids.len(),
                    ids.join(", ")
                );
                let entry = self.entry(
                    job,
                    ActivityKind::OutcomeUnknown,
                    message,
                    Some(&attempt.report),
                );
                let failure = Failure {
                    kind: FailureKind::OutcomeUnknown,
                    message: entry.message.clone(),
                    report: Some(attempt.report.clone()),
                };
                self.activity.record(entry).await;
                self.queue.fail(job, &failure).await?;
                Ok(Step::Settled(ExecutionOutcome::Failed))
            }
            Err(why) => {
                let entry = self.entry(
                    job,
                    ActivityKind::RenderError,
                    format!("the lookup before retrying the create failed: {why}"),
                    Some(&attempt.report),
                );
                self.activity.record(entry).await;
                Ok(Step::Continue(()))
            }
        }
    }

    /// Settles a job by its attempt: delivered (with write-back from `response_body`), retried
    /// on Braze's rules, or failed.
    async fn settle(
        &self,
        job: &Job,
        attempt: &Attempt,
        response_body: &[u8],
    ) -> Result<ExecutionOutcome, QueueError> {
        let report = &attempt.report;
        match (report.classification, report.next_delay) {
            (Classification::Success, _) => self.count(job, "delivered", Some(report)),
            (Classification::Retry(_), Some(_)) => self.count(job, "retrying", Some(report)),
            _ => self.count(job, "failed", Some(report)),
        }
        match (report.classification, report.next_delay) {
            (Classification::Success, _) => {
                let rules = job.template.write_back();
                let mut write_back = Vec::new();
                if !rules.is_empty() {
                    match extract_write_back(rules, response_body) {
                        Ok(attributes) => write_back = attributes,
                        Err(message) => {
                            self.activity
                                .record(self.entry(
                                    job,
                                    ActivityKind::WriteBackFailed,
                                    message,
                                    Some(report),
                                ))
                                .await;
                        }
                    }
                }
                self.queue
                    .complete(job, Completion::Delivered { report, write_back })
                    .await?;
                Ok(ExecutionOutcome::Delivered)
            }
            (Classification::Retry(_), Some(after)) => {
                self.activity
                    .record(self.entry(job, ActivityKind::Retrying, report.summary(), Some(report)))
                    .await;
                self.queue
                    .retry_at(job, self.sender.clock().system_now() + after, report)
                    .await?;
                Ok(ExecutionOutcome::Retrying { after })
            }
            (classification, _) => {
                let kind = if classification == Classification::Terminal {
                    FailureKind::Terminal
                } else {
                    FailureKind::RetriesExhausted
                };
                let entry = self.entry(job, ActivityKind::Failed, report.summary(), Some(report));
                let failure = Failure {
                    kind,
                    message: entry.message.clone(),
                    report: Some(report.clone()),
                };
                self.activity.record(entry).await;
                self.queue.fail(job, &failure).await?;
                Ok(ExecutionOutcome::Failed)
            }
        }
    }

    /// Claims and executes jobs, at most `concurrency` at once, until `shutdown` completes; then
    /// lets the jobs in flight finish (unfinished leases would be reclaimed after a crash anyway).
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()> + Send) {
        let slots = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            // Shutdown is checked here and while waiting, never during a claim: a claim that has
            // reached the queue commits, and its jobs must then run rather than sit leased until
            // the lease runs out.
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = std::future::ready(()) => {}
            }
            while tasks.try_join_next().is_some() {}
            let free = slots.available_permits();
            if free == 0 {
                tokio::select! {
                    _ = tasks.join_next() => continue,
                    () = &mut shutdown => break,
                }
            }
            // Claiming costs a queue round trip (a write transaction on SQLite): while jobs are
            // running and only a few slots are free, wait a moment for more to free up so each
            // claim takes a real batch instead of one or two jobs.
            let batch = self
                .config
                .claim_batch
                .max(1)
                .min(self.config.concurrency.max(1));
            if free < batch / 4 && !tasks.is_empty() {
                tokio::select! {
                    _ = tasks.join_next() => {}
                    () = tokio::time::sleep(Duration::from_millis(2)) => {}
                    () = &mut shutdown => break,
                }
                while tasks.try_join_next().is_some() {}
            }
            let free = slots.available_permits();
            if free == 0 {
                continue;
            }
            let claimed = self
                .queue
                .claim(free.min(self.config.claim_batch.max(1)), self.config.lease)
                .await;
            match claimed {
                Ok(jobs) if jobs.is_empty() => {
                    tokio::select! {
                        () = self.queue.wait_for_work(self.config.idle_wait) => {}
                        () = &mut shutdown => break,
                    }
                }
                Ok(jobs) => {
                    for job in jobs {
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            break;
                        };
                        let worker = self.clone();
                        tasks.spawn(async move {
                            let _permit = permit;
                            if let Err(e) = worker.execute(job).await {
                                tracing::warn!(error = %e, "could not settle a job; its lease will expire");
                            }
                        });
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming jobs failed");
                    tokio::select! {
                        () = tokio::time::sleep(self.config.idle_wait) => {}
                        () = &mut shutdown => break,
                    }
                }
            }
        }
        while tasks.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(field: &str, attribute: &str) -> WriteBackRule {
        WriteBackRule {
            response_field: field.into(),
            attribute: attribute.into(),
        }
    }

    #[test]
    fn write_back_fields_are_extracted_by_path() {
        let body = br#"{"id":"00Q5e00000AbCdEFGH","success":true,"errors":[],"nested":{"list":[{"x":1}]}}"#;
        assert_eq!(
            extract_write_back(
                &[
                    rule("id", "salesforce_lead_id"),
                    rule("nested.list.0.x", "n")
                ],
                body
            ),
            Ok(vec![
                (
                    "salesforce_lead_id".to_owned(),
                    serde_json::json!("00Q5e00000AbCdEFGH")
                ),
                ("n".to_owned(), serde_json::json!(1)),
            ])
        );
        assert_eq!(extract_write_back(&[], b"not json"), Ok(vec![]));
        let missing = extract_write_back(&[rule("lead.id", "x")], body).expect_err("missing");
        assert_eq!(missing, "the response has no 'lead.id' to save as 'x'");
        assert!(
            extract_write_back(&[rule("id", "x")], b"<html>")
                .expect_err("not JSON")
                .contains("not JSON")
        );
    }

    #[test]
    fn jitter_stream_is_in_unit_range_and_varies() {
        let state = AtomicU64::new(7);
        let draws: Vec<f64> = (0..1000).map(|_| splitmix(&state)).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((0.4..0.6).contains(&mean), "{mean}");
    }
}
