//! The durable job queue over the store's jobs.
//!
//! A job holds ids only (template, user identifier, campaign/step) plus the trigger's
//! properties; the queue reloads the template and the profile when it claims the job
//! (hydration), in the claim's transaction, so a render sees the profile as of the attempt.
//! Settles are claim-checked by the store; a delivery's settle and its response write-back
//! (`ChangeSource::WriteBack`) commit in one transaction, so a crash can never leave one without
//! the other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use leadwire_delivery::sender::AttemptReport;
use leadwire_delivery::webhook::CompiledWebhook;
use leadwire_delivery::worker::{Completion, Failure, Job, JobQueue, QueueError};
use leadwire_profiles::track::{AttrOp, AttributeObject};
use leadwire_profiles::{Identifier, ParsedTrack, Profile};
use leadwire_store::{
    ActivityRow, ActivityType, ChangeSource, ClaimedJob, JobClaim, Settlement, Store, StoreError,
    Tx,
};
use serde_json::{Map, Value as Json};

use crate::WebhookError;

/// What a render sees besides the profile: Braze's trigger and campaign namespaces.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RenderProperties {
    /// `{{event_properties.${name}}}` (action-based campaigns).
    pub event_properties: Option<Json>,
    /// `{{api_trigger_properties.${name}}}` (API-triggered campaigns).
    pub api_trigger_properties: Option<Json>,
    /// `{{canvas_entry_properties.${name}}}`.
    pub canvas_entry_properties: Option<Json>,
    /// Extra `{{campaign.${...}}}` fields (e.g. `name`); `api_id` and `dispatch_id` are filled
    /// from the job.
    pub campaign: Option<Json>,
    /// `{{canvas.${...}}}` fields.
    pub canvas: Option<Json>,
    /// `{{context.${...}}}` (Canvas context variables).
    pub context: Option<Json>,
}

const PROPERTY_KEYS: [&str; 6] = [
    "event_properties",
    "api_trigger_properties",
    "canvas_entry_properties",
    "campaign",
    "canvas",
    "context",
];

impl RenderProperties {
    fn fields(&self) -> [(&'static str, &Option<Json>); 6] {
        [
            ("event_properties", &self.event_properties),
            ("api_trigger_properties", &self.api_trigger_properties),
            ("canvas_entry_properties", &self.canvas_entry_properties),
            ("campaign", &self.campaign),
            ("canvas", &self.canvas),
            ("context", &self.context),
        ]
    }

    pub fn to_json(&self) -> Json {
        Json::Object(
            self.fields()
                .into_iter()
                .filter_map(|(k, v)| v.clone().map(|v| (k.to_owned(), v)))
                .collect(),
        )
    }

    /// From `{"event_properties": {...}, ...}`; unknown keys are an error naming them.
    pub fn from_json(value: &Json) -> Result<RenderProperties, WebhookError> {
        let Json::Object(map) = value else {
            return Err(WebhookError::Invalid(
                "properties must be an object like {\"event_properties\": {...}}".into(),
            ));
        };
        if let Some(k) = map.keys().find(|k| !PROPERTY_KEYS.contains(&k.as_str())) {
            return Err(WebhookError::Invalid(format!(
                "unknown property namespace '{k}'; known: {}",
                PROPERTY_KEYS.join(", ")
            )));
        }
        let get = |k: &str| map.get(k).filter(|v| !v.is_null()).cloned();
        Ok(RenderProperties {
            event_properties: get("event_properties"),
            api_trigger_properties: get("api_trigger_properties"),
            canvas_entry_properties: get("canvas_entry_properties"),
            campaign: get("campaign"),
            canvas: get("canvas"),
            context: get("context"),
        })
    }
}

/// Braze's render context for one user: `profile` and `custom_attributes` from the profile, the
/// trigger's properties, and `campaign` with `api_id` (the campaign id), `step_api_id` and
/// `dispatch_id` (the delivery id) merged over any extra campaign fields.
pub fn render_context(
    profile_context: Json,
    properties: &RenderProperties,
    campaign_id: Option<&str>,
    step_id: Option<&str>,
    delivery_id: &str,
) -> Json {
    let mut out = match profile_context {
        Json::Object(map) => map,
        _ => Map::new(),
    };
    for (k, v) in properties.fields() {
        if let Some(v) = v {
            out.insert(k.to_owned(), v.clone());
        }
    }
    let mut campaign = match out.remove("campaign") {
        Some(Json::Object(m)) => m,
        _ => Map::new(),
    };
    if let Some(id) = campaign_id {
        campaign.insert("api_id".into(), Json::String(id.to_owned()));
    }
    if let Some(id) = step_id {
        campaign.insert("step_api_id".into(), Json::String(id.to_owned()));
    }
    campaign.insert("dispatch_id".into(), Json::String(delivery_id.to_owned()));
    out.insert("campaign".into(), Json::Object(campaign));
    Json::Object(out)
}

/// The job id the worker sees: row id and claim number, so settles are claim-checked.
fn job_key(claim: JobClaim) -> String {
    format!("{}.{}", claim.id, claim.claims)
}

pub(crate) fn parse_job_key(key: &str) -> Result<JobClaim, QueueError> {
    key.split_once('.')
        .and_then(|(a, b)| {
            Some(JobClaim {
                id: a.parse().ok()?,
                claims: b.parse().ok()?,
            })
        })
        .ok_or_else(|| QueueError(format!("'{key}' is not a job id of this queue")))
}

fn profile_matches(profile: &Profile, id: &Identifier) -> bool {
    match id {
        Identifier::ExternalId(x) => profile.external_id.as_deref() == Some(x),
        Identifier::BrazeId(x) => &profile.braze_id == x,
        Identifier::Alias(a) => profile.aliases.contains(a),
        Identifier::Email(e) => profile.email().is_some_and(|p| p.eq_ignore_ascii_case(e)),
        Identifier::Phone(p) => profile.standard.get("phone").and_then(Json::as_str) == Some(p),
    }
}

type TemplateCache = Mutex<HashMap<String, (i64, Arc<CompiledWebhook>)>>;

/// A claimed job with what it renders from.
struct Hydrated {
    job: ClaimedJob,
    template: Arc<CompiledWebhook>,
    profile: Profile,
    properties: RenderProperties,
}

/// The queue, over the store.
pub struct StoreQueue {
    store: Store,
    compiled: Arc<TemplateCache>,
    settles: tokio::sync::mpsc::UnboundedSender<SettleRequest>,
}

/// One job's settle, and for a delivery the fields to write back (with the activity entry to
/// log if the store refuses them).
struct SettleRequest {
    claim: JobClaim,
    settlement: Settlement,
    write_back: Option<(Vec<(String, Json)>, ActivityRow)>,
    reply: tokio::sync::oneshot::Sender<Result<bool, String>>,
}

/// Most settles committed in one transaction.
const SETTLE_BATCH: usize = 512;

/// Settles whatever is waiting in one store transaction: one closure for many jobs instead of
/// one each. Ends when the queue is dropped.
async fn settle_loop(
    store: Store,
    mut requests: tokio::sync::mpsc::UnboundedReceiver<SettleRequest>,
) {
    while let Some(first) = requests.recv().await {
        let mut batch = vec![first];
        while batch.len() < SETTLE_BATCH {
            match requests.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let (work, replies): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|r| ((r.claim, r.settlement, r.write_back), r.reply))
            .unzip();
        let outcome = store
            .transact(move |tx| {
                let mut settled = Vec::with_capacity(work.len());
                for (claim, settlement, write_back_request) in work {
                    let done = tx.settle_job(claim, &settlement)?;
                    if done
                        && let Some((attributes, entry)) = write_back_request
                        && !attributes.is_empty()
                    {
                        let saved = match tx.job_user(claim.id)? {
                            Some(user) => write_back(tx, user, attributes)?,
                            None => Err("the job's user could not be read".into()),
                        };
                        if let Err(message) = saved {
                            tx.record_activity(&ActivityRow { message, ..entry })?;
                        }
                    }
                    settled.push(done);
                }
                Ok::<_, StoreError>(settled)
            })
            .await;
        match outcome {
            Ok(settled) => {
                for (reply, done) in replies.into_iter().zip(settled) {
                    let _ = reply.send(Ok(done));
                }
            }
            Err(e) => {
                let message = format!("settling jobs: {e}");
                for reply in replies {
                    let _ = reply.send(Err(message.clone()));
                }
            }
        }
    }
}

fn qe(e: impl std::fmt::Display) -> QueueError {
    QueueError(e.to_string())
}

/// The compiled template for `id`, from the cache when its version is unchanged.
fn compiled_template(
    tx: &mut Tx<'_>,
    cache: &TemplateCache,
    id: &str,
) -> Result<Result<Arc<CompiledWebhook>, String>, StoreError> {
    let Some((version, _archived)) = tx.template_version(id)? else {
        return Ok(Err(format!("template '{id}' no longer exists")));
    };
    let cached = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(id)
        .filter(|(v, _)| *v == version)
        .map(|(_, c)| c.clone());
    if let Some(c) = cached {
        return Ok(Ok(c));
    }
    let Some(row) = tx.template(id)? else {
        return Ok(Err(format!("template '{id}' no longer exists")));
    };
    let compiled =
        crate::templates::record(row).and_then(|r| r.definition.compile_checked().map(Arc::new));
    Ok(match compiled {
        Ok(c) => {
            cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(id.to_owned(), (version, c.clone()));
            Ok(c)
        }
        Err(e) => Err(format!("template '{id}': {e}")),
    })
}

/// Settles a job that cannot be hydrated (its template or user is gone) as failed, with an
/// activity entry, in the claim's transaction.
fn fail_unhydrated(tx: &mut Tx<'_>, job: &ClaimedJob, message: String) -> Result<(), StoreError> {
    tx.settle_job(
        job.claim,
        &Settlement::Failed {
            attempts: job.attempts,
            status: None,
            error: message.clone(),
        },
    )?;
    tx.record_activity(&ActivityRow {
        at: SystemTime::now(),
        kind: ActivityType::Failed,
        campaign_id: job.campaign_id.clone(),
        step_id: job.step_id.clone(),
        user_id: job.user_id.clone(),
        delivery_id: Some(job.delivery_id.clone()),
        template: Some(job.template_id.clone()),
        attempt: Some(job.attempts + 1),
        request: None,
        response: None,
        message,
    })?;
    Ok(())
}

/// Sets `attributes` on an existing user with `ChangeSource::WriteBack`; `Err` with the reason
/// a person reads when nothing could be saved.
pub(crate) fn write_back(
    tx: &mut Tx<'_>,
    user: Identifier,
    attributes: Vec<(String, Json)>,
) -> Result<Result<(), String>, StoreError> {
    let request = ParsedTrack {
        attributes: vec![AttributeObject {
            index: 0,
            identifier: user,
            update_existing_only: true,
            merge_objects: false,
            ops: attributes
                .into_iter()
                .map(|(k, v)| (k, AttrOp::Set(v)))
                .collect(),
        }],
        ..ParsedTrack::default()
    };
    let result = tx.track(&request, ChangeSource::WriteBack)?;
    Ok(match result.errors.first().or(result.skipped.first()) {
        Some(e) => Err(e.message.clone()),
        None if result.attributes_processed == 0 => {
            Err("the user no longer exists, so nothing was saved".into())
        }
        None => Ok(()),
    })
}

impl StoreQueue {
    /// Call inside a Tokio runtime (settles are committed by a task of their own).
    pub(crate) fn new(store: Store) -> StoreQueue {
        let (settles, requests) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(settle_loop(store.clone(), requests));
        StoreQueue {
            store,
            compiled: Arc::new(Mutex::new(HashMap::new())),
            settles,
        }
    }

    /// Wakes a waiting worker.
    pub fn notify(&self) {
        self.store.signals().wake_jobs();
    }

    async fn settle(&self, job: &Job, settlement: Settlement) -> Result<(), QueueError> {
        self.settle_with(job, settlement, None).await
    }

    async fn settle_with(
        &self,
        job: &Job,
        settlement: Settlement,
        write_back: Option<(Vec<(String, Json)>, ActivityRow)>,
    ) -> Result<(), QueueError> {
        let claim = parse_job_key(&job.id)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.settles
            .send(SettleRequest {
                claim,
                settlement,
                write_back,
                reply,
            })
            .map_err(|_| QueueError("the settle task stopped".into()))?;
        let settled = answer
            .await
            .map_err(|_| QueueError("the settle task stopped".into()))?
            .map_err(QueueError)?;
        if !settled {
            tracing::warn!(job = %job.id, delivery_id = %job.delivery_id, "job was settled by a newer claim (its lease had run out); keeping that result");
        }
        Ok(())
    }
}

fn status_of(report: &AttemptReport) -> Option<u16> {
    report.response.as_ref().map(|r| r.status)
}

impl JobQueue for StoreQueue {
    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Job>, QueueError> {
        let cache = self.compiled.clone();
        let hydrated = self
            .store
            .transact(move |tx| {
                let claimed = tx.claim_jobs(SystemTime::now(), lease, max)?;
                let mut out = Vec::with_capacity(claimed.len());
                for job in claimed {
                    let template = match compiled_template(tx, &cache, &job.template_id)? {
                        Ok(t) => t,
                        Err(message) => {
                            fail_unhydrated(tx, &job, message)?;
                            continue;
                        }
                    };
                    let user = match &job.user {
                        Ok(id) => id.clone(),
                        Err(message) => {
                            let message = message.clone();
                            fail_unhydrated(tx, &job, message)?;
                            continue;
                        }
                    };
                    let profile = match tx.profile(&user)? {
                        Some(p) if profile_matches(&p, &user) => p,
                        _ => {
                            let message = format!(
                                "user {} no longer exists; nothing was sent",
                                user.describe()
                            );
                            fail_unhydrated(tx, &job, message)?;
                            continue;
                        }
                    };
                    let properties = match RenderProperties::from_json(&job.properties) {
                        Ok(p) => p,
                        Err(e) => {
                            fail_unhydrated(tx, &job, format!("job {}: {e}", job.claim.id))?;
                            continue;
                        }
                    };
                    out.push(Hydrated {
                        job,
                        template,
                        profile,
                        properties,
                    });
                }
                Ok::<_, StoreError>(out)
            })
            .await
            .map_err(qe)?;
        // Contexts are built here, off the writer thread.
        Ok(hydrated
            .into_iter()
            .map(|h| {
                let context = render_context(
                    h.profile.liquid_context(),
                    &h.properties,
                    h.job.campaign_id.as_deref(),
                    h.job.step_id.as_deref(),
                    &h.job.delivery_id,
                );
                let mut job = Job::new(
                    job_key(h.job.claim),
                    h.job.user_id.clone(),
                    h.template,
                    Arc::new(context),
                )
                .with_campaign(h.job.campaign_id.clone(), h.job.step_id.clone());
                job.delivery_id = h.job.delivery_id;
                job.attempts_made = h.job.attempts;
                job.previous_delay = h.job.previous_delay;
                job.previous_status = h.job.last_status;
                // Every settled claim records its attempt; more claims than attempts + 1 means
                // an earlier claim ended without a settlement.
                job.interrupted = h.job.claim.claims > i64::from(h.job.attempts) + 1;
                job.trace_context = h.job.trace_context;
                job
            })
            .collect())
    }

    async fn complete(&self, job: &Job, completion: Completion<'_>) -> Result<(), QueueError> {
        match completion {
            Completion::Delivered {
                report,
                write_back: attributes,
            } => {
                let settlement = Settlement::Delivered {
                    attempts: report.attempt,
                    status: status_of(report),
                };
                let entry = ActivityRow {
                    at: SystemTime::now(),
                    kind: ActivityType::WriteBackFailed,
                    campaign_id: job.campaign_id.clone(),
                    step_id: job.step_id.clone(),
                    user_id: job.user_id.clone(),
                    delivery_id: Some(job.delivery_id.clone()),
                    template: Some(job.template.name().to_owned()),
                    attempt: Some(report.attempt),
                    request: None,
                    response: None,
                    message: String::new(),
                };
                self.settle_with(job, settlement, Some((attributes, entry)))
                    .await
            }
            Completion::Aborted { reason } => {
                self.settle(
                    job,
                    Settlement::Aborted {
                        reason: reason.to_owned(),
                    },
                )
                .await
            }
        }
    }

    async fn retry_at(
        &self,
        job: &Job,
        when: SystemTime,
        report: &AttemptReport,
    ) -> Result<(), QueueError> {
        self.settle(
            job,
            Settlement::Retry {
                at: when,
                attempts: report.attempt,
                previous_delay: report.next_delay,
                status: status_of(report),
                error: report.summary(),
            },
        )
        .await
    }

    async fn fail(&self, job: &Job, failure: &Failure) -> Result<(), QueueError> {
        let attempts = failure
            .report
            .as_ref()
            .map_or(job.attempts_made, |r| r.attempt);
        self.settle(
            job,
            Settlement::Failed {
                attempts,
                status: failure.report.as_ref().and_then(status_of),
                error: failure.message.clone(),
            },
        )
        .await
    }

    async fn release(&self, job: &Job, not_before: SystemTime) -> Result<(), QueueError> {
        self.settle(job, Settlement::Release { at: not_before })
            .await
    }

    async fn wait_for_work(&self, max: Duration) {
        self.store.signals().jobs_ready(max).await;
    }
}
