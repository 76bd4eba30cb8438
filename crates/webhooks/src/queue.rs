//! The durable job queue on `webhook_jobs`.
//!
//! A job row holds ids only (template, user identifier, campaign/step) plus the trigger's
//! properties; the worker reloads the template and the profile when it claims the job
//! (hydration), so a render always sees the profile as of the attempt.
//!
//! States: `queued` → `in_flight` (claimed, with a lease) → `delivered` | `aborted` | `failed`,
//! or back to `queued` (retry, host busy). `due_at` is when the row next needs a worker: the
//! next attempt for a queued job, the lease's end for an in-flight one (so a crashed worker's
//! jobs are claimed again once their lease runs out), NULL when final. Every settle is
//! conditional on the claim number it was claimed with, so a worker whose lease was taken over
//! cannot overwrite the newer claim's result.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use leadwire_delivery::sender::AttemptReport;
use leadwire_delivery::webhook::CompiledWebhook;
use leadwire_delivery::worker::{Completion, Failure, Job, JobQueue, QueueError};
use leadwire_profiles::{Identifier, Profile};
use leadwire_store::Store;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::{Map, Value as Json};

use crate::WebhookError;
use crate::activity::{ActivityRow, insert_row};
use crate::db::{Db, blocking, millis};
use crate::templates::TemplateDefinition;

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

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub template_id: String,
    pub user: Identifier,
    pub campaign_id: Option<String>,
    /// Canvas step (or campaign message variation) id.
    pub step_id: Option<String>,
    pub properties: RenderProperties,
    /// Not sent before this time (now when `None`).
    pub not_before: Option<SystemTime>,
}

/// An enqueued job's ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub job_id: i64,
    /// Sent as `X-Leadwire-Delivery-Id` on every attempt.
    pub delivery_id: String,
}

fn identifier_label(id: &Identifier) -> String {
    match id {
        Identifier::ExternalId(x) => x.clone(),
        other => other.describe(),
    }
}

/// Enqueues a job inside the caller's transaction, so the job exists if and only if the
/// caller's write commits (the outbox pattern). The connection must be on leadwire's database
/// file, which [`crate::WebhookService::open`] (or [`crate::migrate`]) has migrated. Fails if the
/// template does not exist or is archived.
pub fn enqueue(tx: &Transaction<'_>, job: &NewJob) -> Result<Enqueued, WebhookError> {
    enqueue_on(tx, job)
}

pub(crate) fn enqueue_on(conn: &Connection, job: &NewJob) -> Result<Enqueued, WebhookError> {
    let archived: Option<bool> = conn
        .query_row(
            "SELECT archived FROM webhook_templates WHERE id = ?1",
            [&job.template_id],
            |r| r.get(0),
        )
        .optional()?;
    match archived {
        None => {
            return Err(WebhookError::NotFound {
                what: "template",
                id: job.template_id.clone(),
            });
        }
        Some(true) => {
            return Err(WebhookError::Conflict(format!(
                "template '{}' is archived; unarchive or pick another template",
                job.template_id
            )));
        }
        Some(false) => {}
    }
    let now = millis(SystemTime::now());
    let at = job.not_before.map_or(now, millis);
    let identifier = serde_json::to_string(&job.user)
        .map_err(|e| WebhookError::Invalid(format!("user identifier: {e}")))?;
    let (job_id, delivery_id) = conn.query_row(
        "INSERT INTO webhook_jobs (delivery_id, template_id, user_identifier, user_id, campaign_id, step_id, properties, next_attempt_at, due_at, enqueued_at)
         VALUES ('dlv_' || lower(hex(randomblob(12))), ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)
         RETURNING id, delivery_id",
        params![
            job.template_id,
            identifier,
            identifier_label(&job.user),
            job.campaign_id,
            job.step_id,
            job.properties.to_json().to_string(),
            at,
            now
        ],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(Enqueued {
        job_id,
        delivery_id,
    })
}

/// A job's row as shown to people and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    pub id: i64,
    pub delivery_id: String,
    pub template_id: String,
    pub user_id: String,
    pub campaign_id: Option<String>,
    pub state: String,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

struct ClaimedRow {
    id: i64,
    claims: i64,
    delivery_id: String,
    template_id: String,
    identifier: String,
    user_id: String,
    campaign_id: Option<String>,
    step_id: Option<String>,
    properties: String,
    attempts: u32,
    previous_delay_ms: Option<i64>,
}

/// The job id the worker sees: row id and claim number, so settles are claim-checked.
fn job_key(id: i64, claims: i64) -> String {
    format!("{id}.{claims}")
}

pub(crate) fn parse_job_key(key: &str) -> Result<(i64, i64), QueueError> {
    key.split_once('.')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
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

/// The queue. Holds its own connection to the shared file.
pub struct SqliteQueue {
    db: Arc<Db>,
    settler: std::sync::mpsc::Sender<Settle>,
    store: Arc<dyn Store>,
    compiled: Arc<TemplateCache>,
    notify: tokio::sync::Notify,
}

fn qe(e: WebhookError) -> QueueError {
    QueueError(e.to_string())
}

/// One settle: a claim-checked UPDATE (`?1` id, `?2` claim number, then `values`).
struct Settle {
    sql: &'static str,
    values: Vec<rusqlite::types::Value>,
    reply: tokio::sync::oneshot::Sender<Result<usize, String>>,
}

/// Most settles committed in one transaction.
const SETTLE_BATCH: usize = 512;

/// Applies settles with group commit: whatever is waiting goes into one transaction, each in a
/// savepoint so one failure undoes only itself. Ends when the queue is dropped.
fn settle_loop(mut conn: Connection, rx: std::sync::mpsc::Receiver<Settle>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < SETTLE_BATCH {
            match rx.try_recv() {
                Ok(s) => batch.push(s),
                Err(_) => break,
            }
        }
        let results = (|| -> Result<Vec<Result<usize, String>>, rusqlite::Error> {
            let mut tx =
                conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut results = Vec::with_capacity(batch.len());
            for s in &batch {
                let sp = tx.savepoint()?;
                let r = sp
                    .prepare_cached(s.sql)
                    .and_then(|mut st| st.execute(rusqlite::params_from_iter(s.values.iter())));
                match r {
                    Ok(n) => {
                        sp.commit()?;
                        results.push(Ok(n));
                    }
                    Err(e) => results.push(Err(e.to_string())),
                }
            }
            tx.commit()?;
            Ok(results)
        })();
        match results {
            Ok(results) => {
                for (s, r) in batch.into_iter().zip(results) {
                    let _ = s.reply.send(r);
                }
            }
            Err(e) => {
                for s in batch {
                    let _ = s.reply.send(Err(format!("settling jobs: {e}")));
                }
            }
        }
    }
}

type TemplateCache = Mutex<HashMap<String, (i64, Arc<CompiledWebhook>)>>;

enum Hydration {
    Ready(Arc<CompiledWebhook>),
    Broken(String),
}

impl SqliteQueue {
    /// `settle_conn` is a connection of its own for the group-committing settle thread.
    pub(crate) fn new(
        db: Arc<Db>,
        settle_conn: Connection,
        store: Arc<dyn Store>,
    ) -> Result<SqliteQueue, WebhookError> {
        let (settler, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("leadwire-webhook-settle".into())
            .spawn(move || settle_loop(settle_conn, rx))
            .map_err(|e| WebhookError::Setup(format!("cannot start the settle thread: {e}")))?;
        Ok(SqliteQueue {
            settler,
            db,
            store,
            compiled: Arc::new(Mutex::new(HashMap::new())),
            notify: tokio::sync::Notify::new(),
        })
    }

    /// Wakes a waiting worker (after a standalone enqueue).
    pub fn notify(&self) {
        self.notify.notify_one();
    }

    /// Enqueues in a transaction of its own and wakes the worker.
    pub async fn enqueue(&self, job: NewJob) -> Result<Enqueued, WebhookError> {
        let out = blocking(&self.db, move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let out = enqueue(&tx, &job)?;
            tx.commit()?;
            Ok(out)
        })
        .await?;
        self.notify();
        Ok(out)
    }

    /// Settles a job that cannot be hydrated (its template or user is gone) as failed, with an
    /// activity entry.
    async fn fail_unhydrated(&self, row: &ClaimedRow, message: String) -> Result<(), QueueError> {
        let (id, claims) = (row.id, row.claims);
        let entry = ActivityRow {
            at: SystemTime::now(),
            kind: "failed".into(),
            campaign_id: row.campaign_id.clone(),
            step_id: row.step_id.clone(),
            user_id: row.user_id.clone(),
            delivery_id: Some(row.delivery_id.clone()),
            template: Some(row.template_id.clone()),
            attempt: Some(row.attempts + 1),
            request: None,
            response: None,
            message: message.clone(),
        };
        blocking(&self.db, move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let now = millis(SystemTime::now());
            tx.execute(
                "UPDATE webhook_jobs SET state = 'failed', due_at = NULL, lease_until = NULL, finished_at = ?3, last_error = ?4
                 WHERE id = ?1 AND claims = ?2 AND state = 'in_flight'",
                params![id, claims, now, message],
            )?;
            insert_row(&tx, &entry)?;
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(qe)
    }

    async fn settle(
        &self,
        job: &Job,
        sql: &'static str,
        values: Vec<rusqlite::types::Value>,
    ) -> Result<(), QueueError> {
        let (id, claims) = parse_job_key(&job.id)?;
        let mut all: Vec<rusqlite::types::Value> = vec![id.into(), claims.into()];
        all.extend(values);
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.settler
            .send(Settle {
                sql,
                values: all,
                reply,
            })
            .map_err(|_| QueueError("the settle thread stopped".into()))?;
        let changed = rx
            .await
            .map_err(|_| QueueError("the settle thread stopped".into()))?
            .map_err(QueueError)?;
        if changed == 0 {
            tracing::warn!(job = %job.id, delivery_id = %job.delivery_id, "job was settled by a newer claim (its lease had run out); keeping that result");
        }
        Ok(())
    }

    /// Counts of jobs by state.
    pub async fn counts(&self) -> Result<HashMap<String, u64>, WebhookError> {
        blocking(&self.db, |conn| {
            let mut stmt =
                conn.prepare("SELECT state, count(*) FROM webhook_jobs GROUP BY state")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut out = HashMap::new();
            for row in rows {
                let (s, n) = row?;
                out.insert(s, u64::try_from(n).unwrap_or(0));
            }
            // Delivered jobs whose response fields are not on the profile yet: work still to do.
            let pending: i64 = conn.query_row(
                "SELECT count(*) FROM webhook_jobs WHERE write_back_pending IS NOT NULL",
                [],
                |r| r.get(0),
            )?;
            if pending > 0 {
                out.insert(
                    "write_back_pending".into(),
                    u64::try_from(pending).unwrap_or(0),
                );
            }
            Ok(out)
        })
        .await
    }

    /// Jobs, newest first, optionally of one campaign.
    pub async fn jobs(
        &self,
        campaign_id: Option<String>,
        limit: usize,
    ) -> Result<Vec<JobInfo>, WebhookError> {
        blocking(&self.db, move |conn| {
            let mut stmt = conn.prepare(
                "SELECT id, delivery_id, template_id, user_id, campaign_id, state, attempts, last_status, last_error
                 FROM webhook_jobs WHERE (?1 IS NULL OR campaign_id = ?1) ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(
                params![campaign_id, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| {
                    Ok(JobInfo {
                        id: r.get(0)?,
                        delivery_id: r.get(1)?,
                        template_id: r.get(2)?,
                        user_id: r.get(3)?,
                        campaign_id: r.get(4)?,
                        state: r.get(5)?,
                        attempts: r.get(6)?,
                        last_status: r.get(7)?,
                        last_error: r.get(8)?,
                    })
                },
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}

/// Compiled templates for the ids, from the cache when unchanged.
fn load_templates(
    cache: &TemplateCache,
    conn: &Connection,
    ids: &[String],
) -> Result<HashMap<String, Hydration>, WebhookError> {
    let mut out = HashMap::new();
    for id in ids {
        if out.contains_key(id) {
            continue;
        }
        let Some((version, _archived)) = crate::templates::version(conn, id)? else {
            out.insert(
                id.clone(),
                Hydration::Broken(format!("template '{id}' no longer exists")),
            );
            continue;
        };
        let cached = cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .filter(|(v, _)| *v == version)
            .map(|(_, c)| c.clone());
        let compiled = match cached {
            Some(c) => Hydration::Ready(c),
            None => {
                let record = crate::templates::get(conn, id)?;
                match TemplateDefinition::compile_checked(&record.definition) {
                    Ok(c) => {
                        let c = Arc::new(c);
                        cache
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .insert(id.clone(), (version, c.clone()));
                        Hydration::Ready(c)
                    }
                    Err(e) => Hydration::Broken(format!("template '{id}': {e}")),
                }
            }
        };
        out.insert(id.clone(), compiled);
    }
    Ok(out)
}

const CLAIM_SQL: &str = "UPDATE webhook_jobs
    SET state = 'in_flight', claims = claims + 1, lease_until = ?2, due_at = ?2
    WHERE id IN (SELECT id FROM webhook_jobs WHERE due_at IS NOT NULL AND due_at <= ?1 ORDER BY due_at LIMIT ?3)
    RETURNING id, claims, delivery_id, template_id, user_identifier, user_id, campaign_id, step_id, properties, attempts, previous_delay_ms";

impl JobQueue for SqliteQueue {
    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Job>, QueueError> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let max = i64::try_from(max.max(1)).unwrap_or(1);
        let cache = self.compiled.clone();
        let (rows, templates) = blocking(&self.db, move |conn| {
            let now = millis(SystemTime::now());
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let rows = {
                let mut stmt = tx.prepare_cached(CLAIM_SQL)?;
                stmt.query_map(params![now, now.saturating_add(lease_ms), max], |r| {
                    Ok(ClaimedRow {
                        id: r.get(0)?,
                        claims: r.get(1)?,
                        delivery_id: r.get(2)?,
                        template_id: r.get(3)?,
                        identifier: r.get(4)?,
                        user_id: r.get(5)?,
                        campaign_id: r.get(6)?,
                        step_id: r.get(7)?,
                        properties: r.get(8)?,
                        attempts: r.get(9)?,
                        previous_delay_ms: r.get(10)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?
            };
            tx.commit()?;
            let ids: Vec<String> = rows.iter().map(|r| r.template_id.clone()).collect();
            // Compiles are cached per template version; a hit costs one indexed read.
            let templates = load_templates(&cache, conn, &ids)?;
            Ok((rows, templates))
        })
        .await
        .map_err(qe)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }

        // Profiles, in one store call.
        let mut identifiers: Vec<(usize, Result<Identifier, String>)> = Vec::new();
        let mut wanted: Vec<Identifier> = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            match serde_json::from_str::<Identifier>(&row.identifier) {
                Ok(id) => {
                    if !wanted.contains(&id) {
                        wanted.push(id.clone());
                    }
                    identifiers.push((i, Ok(id)));
                }
                Err(e) => {
                    identifiers.push((i, Err(format!("stored user identifier is corrupt: {e}"))))
                }
            }
        }
        let found = self
            .store
            .find_profiles(wanted)
            .await
            .map_err(|e| QueueError(format!("loading profiles: {e}")))?
            .found;

        let mut jobs = Vec::with_capacity(rows.len());
        for ((_, identifier), row) in identifiers.into_iter().zip(rows.iter()) {
            let template = match templates.get(&row.template_id) {
                Some(Hydration::Ready(t)) => t.clone(),
                Some(Hydration::Broken(message)) => {
                    self.fail_unhydrated(row, message.clone()).await?;
                    continue;
                }
                None => {
                    self.fail_unhydrated(
                        row,
                        format!("template '{}' no longer exists", row.template_id),
                    )
                    .await?;
                    continue;
                }
            };
            let profile = match identifier {
                Ok(id) => match found.iter().find(|p| profile_matches(p, &id)) {
                    Some(p) => p,
                    None => {
                        self.fail_unhydrated(
                            row,
                            format!("user {} no longer exists; nothing was sent", id.describe()),
                        )
                        .await?;
                        continue;
                    }
                },
                Err(message) => {
                    self.fail_unhydrated(row, message).await?;
                    continue;
                }
            };
            let properties = serde_json::from_str::<Json>(&row.properties)
                .map_err(|e| WebhookError::Database(format!("job {}: properties: {e}", row.id)))
                .and_then(|j| RenderProperties::from_json(&j));
            let properties = match properties {
                Ok(p) => p,
                Err(e) => {
                    self.fail_unhydrated(row, e.to_string()).await?;
                    continue;
                }
            };
            let context = render_context(
                profile.liquid_context(),
                &properties,
                row.campaign_id.as_deref(),
                row.step_id.as_deref(),
                &row.delivery_id,
            );
            let mut job = Job::new(
                job_key(row.id, row.claims),
                row.user_id.clone(),
                template,
                Arc::new(context),
            )
            .with_campaign(row.campaign_id.clone(), row.step_id.clone());
            job.delivery_id = row.delivery_id.clone();
            job.attempts_made = row.attempts;
            job.previous_delay = row
                .previous_delay_ms
                .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
            jobs.push(job);
        }
        Ok(jobs)
    }

    async fn complete(&self, job: &Job, completion: Completion<'_>) -> Result<(), QueueError> {
        let now = millis(SystemTime::now());
        match completion {
            Completion::Delivered(report) => {
                self.settle(
                    job,
                    // `delivered` too: the write-back may have marked it first (same claim).
                    "UPDATE webhook_jobs SET state = 'delivered', due_at = NULL, lease_until = NULL, finished_at = ?3, attempts = ?4, last_status = ?5
                     WHERE id = ?1 AND claims = ?2 AND state IN ('in_flight', 'delivered')",
                    vec![
                        now.into(),
                        i64::from(report.attempt).into(),
                        report.response.as_ref().map_or(rusqlite::types::Value::Null, |r| i64::from(r.status).into()),
                    ],
                )
                .await
            }
            Completion::Aborted { reason } => {
                self.settle(
                    job,
                    "UPDATE webhook_jobs SET state = 'aborted', due_at = NULL, lease_until = NULL, finished_at = ?3, last_error = ?4
                     WHERE id = ?1 AND claims = ?2 AND state = 'in_flight'",
                    vec![now.into(), reason.to_owned().into()],
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
        let at = millis(when);
        self.settle(
            job,
            "UPDATE webhook_jobs SET state = 'queued', next_attempt_at = ?3, due_at = ?3, lease_until = NULL, attempts = ?4, previous_delay_ms = ?5, last_status = ?6, last_error = ?7
             WHERE id = ?1 AND claims = ?2 AND state = 'in_flight'",
            vec![
                at.into(),
                i64::from(report.attempt).into(),
                report
                    .next_delay
                    .map_or(rusqlite::types::Value::Null, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX).into()),
                report.response.as_ref().map_or(rusqlite::types::Value::Null, |r| i64::from(r.status).into()),
                report.summary().into(),
            ],
        )
        .await?;
        self.notify();
        Ok(())
    }

    async fn fail(&self, job: &Job, failure: &Failure) -> Result<(), QueueError> {
        let now = millis(SystemTime::now());
        let attempts = failure
            .report
            .as_ref()
            .map_or(job.attempts_made, |r| r.attempt);
        let status = failure
            .report
            .as_ref()
            .and_then(|r| r.response.as_ref())
            .map_or(rusqlite::types::Value::Null, |r| i64::from(r.status).into());
        self.settle(
            job,
            "UPDATE webhook_jobs SET state = 'failed', due_at = NULL, lease_until = NULL, finished_at = ?3, attempts = ?4, last_status = ?5, last_error = ?6
             WHERE id = ?1 AND claims = ?2 AND state = 'in_flight'",
            vec![now.into(), i64::from(attempts).into(), status, failure.message.clone().into()],
        )
        .await
    }

    async fn release(&self, job: &Job, not_before: SystemTime) -> Result<(), QueueError> {
        let at = millis(not_before);
        self.settle(
            job,
            "UPDATE webhook_jobs SET state = 'queued', next_attempt_at = ?3, due_at = ?3, lease_until = NULL
             WHERE id = ?1 AND claims = ?2 AND state = 'in_flight'",
            vec![at.into()],
        )
        .await
    }

    async fn wait_for_work(&self, max: Duration) {
        let _ = tokio::time::timeout(max, self.notify.notified()).await;
    }
}
