//! The campaign engine: reads the trigger feed from a stored position, decides which campaigns fire
//! for whom (trigger, audience, re-eligibility, delivery speed), and enqueues the webhook sends, all
//! in one SQLite transaction with the new feed position. A trigger is therefore consumed exactly
//! once, across crashes and restarts: either its sends and the position commit together, or
//! neither does and the next pass sees it again.
//!
//! Also serves API-triggered sends (`POST /campaigns/trigger/send`) and stores campaigns.
//!
//! Knows SQL (its own tables, the store's shared reads, the webhook queue's `enqueue`) and the pure
//! rules of `leadwire-campaigns`; must not speak HTTP or deliver anything itself.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use leadwire_campaigns::campaign::Compiled;
use leadwire_campaigns::{CampaignSpec, CampaignStatus, RateLimiter, TriggerSpec, eligible};
use leadwire_profiles::{Identifier, Profile, Trigger};
use leadwire_store::shared;
use leadwire_webhooks::{NewJob, RenderProperties, enqueue};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::{Value as Json, json};

const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    r#"
    CREATE TABLE campaigns (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        spec TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE campaign_sends (
        id INTEGER PRIMARY KEY,
        campaign_id TEXT NOT NULL,
        braze_id TEXT NOT NULL,
        job_id INTEGER NOT NULL,
        dispatch_id TEXT,
        trigger_seq INTEGER,
        sent_at INTEGER NOT NULL
    );
    CREATE INDEX campaign_sends_user ON campaign_sends(campaign_id, braze_id, sent_at);
    CREATE TABLE feed_positions (consumer TEXT PRIMARY KEY, seq INTEGER NOT NULL);
    "#,
)];

/// The feed consumer's name in `feed_positions`.
const CONSUMER: &str = "campaigns";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("database error: {0}")]
    Database(String),
    #[error("{0}")]
    Invalid(String),
    #[error("campaign '{0}' does not exist")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] leadwire_store::StoreError),
    #[error(transparent)]
    Webhooks(#[from] leadwire_webhooks::WebhookError),
}

impl From<rusqlite::Error> for EngineError {
    fn from(e: rusqlite::Error) -> Self {
        EngineError::Database(e.to_string())
    }
}

/// A stored campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignRecord {
    pub id: String,
    pub spec: CampaignSpec,
}

impl CampaignRecord {
    pub fn to_json(&self) -> Json {
        let mut v = serde_json::to_value(&self.spec).unwrap_or(Json::Null);
        if let Json::Object(m) = &mut v {
            m.insert("campaign_id".into(), Json::String(self.id.clone()));
        }
        v
    }
}

/// What one pass over the feed did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    pub triggers: usize,
    pub sends: usize,
}

/// A recipient of an API-triggered send, already resolved to a profile.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub user: Identifier,
    pub trigger_properties: Option<Json>,
}

pub struct CampaignEngine {
    conn: Mutex<Connection>,
    limiters: Mutex<HashMap<String, RateLimiter>>,
    on_enqueue: Option<Arc<dyn Fn() + Send + Sync>>,
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn system_time(t: DateTime<Utc>) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(t.timestamp_millis().max(0) as u64)
}

impl CampaignEngine {
    /// Opens leadwire's database (already created by the store and the webhook service) and
    /// migrates the engine's tables.
    pub fn open(path: &Path) -> Result<CampaignEngine, EngineError> {
        let mut conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000;",
        )?;
        shared::apply_migrations(&mut conn, "engine_schema_migrations", MIGRATIONS)?;
        Ok(CampaignEngine {
            conn: Mutex::new(conn),
            limiters: Mutex::new(HashMap::new()),
            on_enqueue: None,
        })
    }

    /// Called after a pass enqueued sends, e.g. to wake the delivery workers.
    pub fn with_on_enqueue(mut self, f: Arc<dyn Fn() + Send + Sync>) -> CampaignEngine {
        self.on_enqueue = Some(f);
        self
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>, EngineError> {
        self.conn
            .lock()
            .map_err(|_| EngineError::Database("engine connection poisoned".into()))
    }

    /// Creates or replaces (by name) a campaign after checking it compiles and its template exists.
    pub fn save_campaign(&self, spec: CampaignSpec) -> Result<CampaignRecord, EngineError> {
        spec.compile()
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let conn = self.conn()?;
        template_id(&conn, &spec.template)?;
        let now = millis(Utc::now());
        let text = serde_json::to_string(&spec).map_err(|e| EngineError::Invalid(e.to_string()))?;
        let status = serde_json::to_value(spec.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let id: String = conn.query_row(
            "INSERT INTO campaigns (id, name, spec, status, created_at, updated_at)
             VALUES ('cmp_' || lower(hex(randomblob(8))), ?1, ?2, ?3, ?4, ?4)
             ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, status = excluded.status, updated_at = excluded.updated_at
             RETURNING id",
            params![spec.name, text, status, now],
            |r| r.get(0),
        )?;
        Ok(CampaignRecord { id, spec })
    }

    pub fn campaigns(&self) -> Result<Vec<CampaignRecord>, EngineError> {
        let conn = self.conn()?;
        load_campaigns(&conn)
    }

    pub fn campaign(&self, id_or_name: &str) -> Result<CampaignRecord, EngineError> {
        self.campaigns()?
            .into_iter()
            .find(|c| c.id == id_or_name || c.spec.name == id_or_name)
            .ok_or_else(|| EngineError::NotFound(id_or_name.to_string()))
    }

    pub fn set_status(
        &self,
        id_or_name: &str,
        status: CampaignStatus,
    ) -> Result<CampaignRecord, EngineError> {
        let mut record = self.campaign(id_or_name)?;
        record.spec.status = status;
        self.save_campaign(record.spec)
    }

    /// One pass: reads up to `max` triggers after the stored position and enqueues their sends,
    /// in one transaction with the new position.
    pub fn process_feed(&self, max: usize) -> Result<PassReport, EngineError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let position: i64 = tx
            .query_row(
                "SELECT seq FROM feed_positions WHERE consumer = ?1",
                [CONSUMER],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let triggers = shared::triggers_after(&tx, position, max)?;
        let Some(last) = triggers.last().map(|t| t.seq) else {
            return Ok(PassReport::default());
        };
        let campaigns: Vec<(String, Compiled)> = load_campaigns(&tx)?
            .into_iter()
            .filter(|c| {
                c.spec.status == CampaignStatus::Active
                    && c.spec.trigger != TriggerSpec::ApiTriggered
            })
            .filter_map(|c| c.spec.compile().ok().map(|compiled| (c.id, compiled)))
            .collect();
        let now = Utc::now();
        let mut report = PassReport {
            triggers: triggers.len(),
            sends: 0,
        };
        let mut limiters = self
            .limiters
            .lock()
            .map_err(|_| EngineError::Database("limiter state poisoned".into()))?;
        for record in &triggers {
            let fired: Vec<&(String, Compiled)> = campaigns
                .iter()
                .filter(|(_, c)| c.fired_by(&record.trigger))
                .collect();
            if fired.is_empty() {
                continue;
            }
            // Braze evaluates the audience after the trigger, against the profile as it is now.
            let Some(profile) = shared::profile_by_braze_id(&tx, &record.braze_id)? else {
                continue;
            };
            for (campaign_id, campaign) in fired {
                if !campaign
                    .audience
                    .as_ref()
                    .is_none_or(|f| f.matches_profile(&profile))
                {
                    continue;
                }
                if !eligible(
                    last_received(&tx, campaign_id, &profile.braze_id)?,
                    campaign.spec.reeligibility_seconds,
                    now,
                ) {
                    continue;
                }
                let slot = limiters
                    .entry(campaign_id.clone())
                    .or_default()
                    .next_slot(campaign.spec.rate_limit_per_minute, now);
                let properties = RenderProperties {
                    event_properties: event_properties(&record.trigger),
                    campaign: Some(json!({"name": campaign.spec.name})),
                    ..RenderProperties::default()
                };
                send(
                    &tx,
                    campaign_id,
                    &campaign.spec.template,
                    &profile,
                    properties,
                    slot,
                    Some(record.seq),
                    None,
                    now,
                )?;
                report.sends += 1;
            }
        }
        tx.execute(
            "INSERT INTO feed_positions (consumer, seq) VALUES (?1, ?2) ON CONFLICT(consumer) DO UPDATE SET seq = excluded.seq",
            params![CONSUMER, last],
        )?;
        tx.commit()?;
        drop(limiters);
        if report.sends > 0
            && let Some(f) = &self.on_enqueue
        {
            f();
        }
        Ok(report)
    }

    /// `POST /campaigns/trigger/send` after the caller applied any `attributes`: enqueues one send
    /// per recipient (or every eligible user for a broadcast) and returns the dispatch id and the
    /// recipients that matched nobody.
    pub fn trigger_send(
        &self,
        campaign_id: &str,
        recipients: &[Recipient],
        broadcast: bool,
        trigger_properties: Option<&Json>,
    ) -> Result<(String, Vec<Identifier>), EngineError> {
        let campaign = self.campaign(campaign_id)?;
        if campaign.spec.trigger != TriggerSpec::ApiTriggered {
            return Err(EngineError::Invalid(format!(
                "campaign '{}' is not API-triggered",
                campaign.spec.name
            )));
        }
        if campaign.spec.status != CampaignStatus::Active {
            return Err(EngineError::Invalid(format!(
                "campaign '{}' is not active (it is {:?})",
                campaign.spec.name, campaign.spec.status
            )));
        }
        let compiled = campaign
            .spec
            .compile()
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let dispatch_id = format!("dsp_{:016x}", rand_u64());
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = Utc::now();
        let mut missing = Vec::new();
        let mut targets: Vec<(Profile, Option<Json>)> = Vec::new();
        if broadcast {
            let mut stmt = tx.prepare("SELECT braze_id FROM profiles")?;
            let ids: Vec<String> = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            drop(stmt);
            for id in ids {
                if let Some(p) = shared::profile_by_braze_id(&tx, &id)? {
                    targets.push((p, None));
                }
            }
        } else {
            for r in recipients {
                match shared::profile_by_identifier(&tx, &r.user)? {
                    Some(p) => targets.push((p, r.trigger_properties.clone())),
                    None => missing.push(r.user.clone()),
                }
            }
        }
        let mut limiters = self
            .limiters
            .lock()
            .map_err(|_| EngineError::Database("limiter state poisoned".into()))?;
        let mut sent = 0;
        for (profile, own) in targets {
            if !compiled
                .audience
                .as_ref()
                .is_none_or(|f| f.matches_profile(&profile))
            {
                continue;
            }
            if !eligible(
                last_received(&tx, &campaign.id, &profile.braze_id)?,
                campaign.spec.reeligibility_seconds,
                now,
            ) {
                continue;
            }
            // Per-recipient trigger properties override the request's keys (Braze).
            let mut props = trigger_properties.cloned().unwrap_or_else(|| json!({}));
            if let (Json::Object(base), Some(Json::Object(extra))) = (&mut props, own) {
                base.extend(extra);
            }
            let slot = limiters
                .entry(campaign.id.clone())
                .or_default()
                .next_slot(campaign.spec.rate_limit_per_minute, now);
            let properties = RenderProperties {
                api_trigger_properties: Some(props),
                campaign: Some(json!({"name": campaign.spec.name})),
                ..RenderProperties::default()
            };
            send(
                &tx,
                &campaign.id,
                &campaign.spec.template,
                &profile,
                properties,
                slot,
                None,
                Some(&dispatch_id),
                now,
            )?;
            sent += 1;
        }
        tx.commit()?;
        drop(limiters);
        if sent > 0
            && let Some(f) = &self.on_enqueue
        {
            f();
        }
        Ok((dispatch_id, missing))
    }

    /// Consumes the feed until `shutdown` resolves, pausing briefly when there is nothing new.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let engine = self.clone();
            let pass = tokio::task::spawn_blocking(move || engine.process_feed(1000)).await;
            let idle = match pass {
                Ok(Ok(report)) => report.triggers == 0,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "campaign pass failed; retrying");
                    true
                }
                Err(e) => {
                    tracing::error!(error = %e, "campaign pass panicked");
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(Duration::from_millis(25)) => {}
                }
            }
        }
    }

    /// Whether everything triggered so far has been handled: the campaign consumer has read the
    /// whole feed and no webhook job is queued, in flight or waiting for its write-back. Read in
    /// one transaction on this connection, so the three facts are from the same instant.
    pub fn idle(&self) -> Result<bool, EngineError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        let feed_end: i64 =
            tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM triggers", [], |r| {
                r.get(0)
            })?;
        let position: i64 = tx
            .query_row(
                "SELECT seq FROM feed_positions WHERE consumer = ?1",
                [CONSUMER],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let outstanding: i64 = tx.query_row(
            "SELECT count(*) FROM webhook_jobs WHERE state IN ('queued', 'in_flight') OR write_back_pending IS NOT NULL",
            [],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(position >= feed_end && outstanding == 0)
    }

    /// The newest trigger's position in the feed.
    pub fn feed_end(&self) -> Result<i64, EngineError> {
        let conn = self.conn()?;
        Ok(
            conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM triggers", [], |r| {
                r.get(0)
            })?,
        )
    }

    /// Where the feed consumer stands (for tests and status).
    pub fn position(&self) -> Result<i64, EngineError> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                "SELECT seq FROM feed_positions WHERE consumer = ?1",
                [CONSUMER],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    /// The database file this engine uses.
    pub fn path(&self) -> Option<PathBuf> {
        self.conn().ok().and_then(|c| c.path().map(PathBuf::from))
    }
}

fn rand_u64() -> u64 {
    // Enough uniqueness for dispatch ids without another dependency: time and a counter.
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(48)
}

fn load_campaigns(conn: &Connection) -> Result<Vec<CampaignRecord>, EngineError> {
    let mut stmt = conn.prepare_cached("SELECT id, spec FROM campaigns ORDER BY created_at, id")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, spec) = row?;
        let spec: CampaignSpec = serde_json::from_str(&spec)
            .map_err(|e| EngineError::Database(format!("campaign {id}: {e}")))?;
        out.push(CampaignRecord { id, spec });
    }
    Ok(out)
}

fn template_id(conn: &Connection, name: &str) -> Result<String, EngineError> {
    conn.prepare_cached(
        "SELECT id FROM webhook_templates WHERE (name = ?1 OR id = ?1) AND archived = 0",
    )?
    .query_row([name], |r| r.get(0))
    .optional()?
    .ok_or_else(|| {
        EngineError::Invalid(format!(
            "no webhook template named '{name}'; create it first (leadwire apply or the REST API)"
        ))
    })
}

/// When the user last received this campaign: a send whose job did not end aborted or failed.
/// Sends still queued count, so a second trigger in the meantime does not send twice.
fn last_received(
    conn: &Connection,
    campaign_id: &str,
    braze_id: &str,
) -> Result<Option<DateTime<Utc>>, EngineError> {
    let at: Option<i64> = conn
        .prepare_cached(
            "SELECT s.sent_at FROM campaign_sends s JOIN webhook_jobs j ON j.id = s.job_id
             WHERE s.campaign_id = ?1 AND s.braze_id = ?2 AND j.state NOT IN ('aborted', 'failed')
             ORDER BY s.sent_at DESC LIMIT 1",
        )?
        .query_row(params![campaign_id, braze_id], |r| r.get(0))
        .optional()?;
    Ok(at.and_then(DateTime::from_timestamp_millis))
}

fn event_properties(trigger: &Trigger) -> Option<Json> {
    match trigger {
        Trigger::CustomEvent { properties, .. } | Trigger::Purchase { properties, .. } => {
            Some(Json::Object(properties.clone()))
        }
        _ => None,
    }
}

fn user_identifier(profile: &Profile) -> Identifier {
    match &profile.external_id {
        Some(id) => Identifier::ExternalId(id.clone()),
        None => Identifier::BrazeId(profile.braze_id.clone()),
    }
}

#[allow(clippy::too_many_arguments)]
fn send(
    tx: &rusqlite::Transaction<'_>,
    campaign_id: &str,
    template: &str,
    profile: &Profile,
    properties: RenderProperties,
    slot: DateTime<Utc>,
    trigger_seq: Option<i64>,
    dispatch_id: Option<&str>,
    // The pass's time: eligibility compares against it, so a send recorded in this pass must not
    // look like it came later.
    now: DateTime<Utc>,
) -> Result<(), EngineError> {
    let template_id = template_id(tx, template)?;
    let job = NewJob {
        template_id,
        user: user_identifier(profile),
        campaign_id: Some(campaign_id.to_string()),
        step_id: None,
        properties,
        not_before: Some(system_time(slot)),
    };
    let enqueued = enqueue(tx, &job)?;
    tx.prepare_cached("INSERT INTO campaign_sends (campaign_id, braze_id, job_id, dispatch_id, trigger_seq, sent_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
        .execute(params![campaign_id, profile.braze_id, enqueued.job_id, dispatch_id, trigger_seq, millis(now)])?;
    Ok(())
}
