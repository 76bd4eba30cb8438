//! The Canvas engine: every user's journey through every Canvas, durable in leadwire's SQLite file.
//!
//! A pass is one IMMEDIATE transaction: it reads the trigger feed after its stored position (its
//! own `canvas_feed_position` table, so it does not depend on the campaign engine's
//! `feed_positions` or on which engine opened the file first), enters users, marks exception
//! events, completes Action Paths, wakes journeys whose Delay or window is due, moves each journey
//! with the pure [`crate::journey::advance`], enqueues the webhooks of Message steps, and saves the
//! journeys and the new position, all together. A trigger is therefore consumed once and a step's
//! webhook enqueued once, across crashes and restarts; a Delay fires once because its end is stored
//! on the journey.
//!
//! User Update steps: profile writes go only through the store's writer ([`Store::track`] with
//! [`ChangeSource::CanvasUserUpdate`]), which is not part of this transaction. So the pass records the
//! update as a pending row (absolute values: increments were resolved against the profile read in the
//! transaction) and parks the journey in `updating`; after commit the update is applied through the
//! store and, in one transaction, the row is deleted and the journey released. A crash in between
//! leaves the row, which is applied again on the next pass: setting absolute values twice is the same
//! as once, so an increment never double-applies. Until a pending update is applied, the engine reads
//! the user's profile with it overlaid, so no journey decides on stale values.
//!
//! Knows SQL (its own tables, the store's shared reads, the webhook queue's `enqueue`); must not
//! speak HTTP or deliver anything itself.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use leadwire_campaigns::eligible;
use leadwire_profiles::track::AttrOp;
use leadwire_profiles::{AttributeObject, Identifier, ParsedTrack, Profile, Trigger, parse_track};
use leadwire_store::{ChangeSource, Store, shared};
use leadwire_webhooks::templates::TemplateDefinition;
use leadwire_webhooks::{NewJob, RenderProperties, WebhookService, enqueue};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde_json::{Value as Json, json};

use crate::journey::{self, Advanced, Effect, Journey, Status, UpdateOp, Wait};
use crate::spec::{CanvasSpec, CanvasStatus, CompiledCanvas, Step, StepKind, inline_template_name};

const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
    CREATE TABLE canvases (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        spec TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE canvas_journeys (
        id INTEGER PRIMARY KEY,
        canvas_id TEXT NOT NULL,
        braze_id TEXT NOT NULL,
        state TEXT NOT NULL,
        status TEXT NOT NULL,
        wake_at INTEGER,
        exit_reason TEXT,
        entered_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX canvas_journeys_user ON canvas_journeys(canvas_id, braze_id, status);
    CREATE INDEX canvas_journeys_due ON canvas_journeys(status, wake_at);
    CREATE TABLE canvas_entries (
        canvas_id TEXT NOT NULL,
        braze_id TEXT NOT NULL,
        last_entered_at INTEGER NOT NULL,
        entries INTEGER NOT NULL,
        PRIMARY KEY (canvas_id, braze_id)
    );
    CREATE TABLE canvas_pending_updates (
        id INTEGER PRIMARY KEY,
        journey_id INTEGER NOT NULL,
        braze_id TEXT NOT NULL,
        ops TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE canvas_step_counts (
        canvas_id TEXT NOT NULL,
        step_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (canvas_id, step_id, kind)
    );
    CREATE TABLE IF NOT EXISTS canvas_feed_position (consumer TEXT PRIMARY KEY, seq INTEGER NOT NULL);
    "#,
    ),
    (
        2,
        r#"
    CREATE TABLE canvas_hourly_entries (
        canvas_id TEXT NOT NULL,
        hour INTEGER NOT NULL,
        entries INTEGER NOT NULL,
        PRIMARY KEY (canvas_id, hour)
    );
    "#,
    ),
    (
        3,
        r#"
    ALTER TABLE canvas_pending_updates ADD COLUMN track TEXT;
    ALTER TABLE canvas_pending_updates ADD COLUMN feed_seq INTEGER NOT NULL DEFAULT 0;
    "#,
    ),
];

/// The feed consumer's name in `canvas_feed_position`.
const CONSUMER: &str = "canvases";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("database error: {0}")]
    Database(String),
    #[error("{0}")]
    Invalid(String),
    #[error("canvas '{0}' does not exist")]
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

/// A stored Canvas.
#[derive(Debug, Clone, PartialEq)]
pub struct CanvasRecord {
    pub id: String,
    pub spec: CanvasSpec,
}

impl CanvasRecord {
    pub fn to_json(&self) -> Json {
        let mut v = serde_json::to_value(&self.spec).unwrap_or(Json::Null);
        if let Json::Object(m) = &mut v {
            m.insert("canvas_id".into(), Json::String(self.id.clone()));
        }
        v
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    pub triggers: usize,
    pub entries: usize,
    pub woken: usize,
    /// Steps users moved into.
    pub steps: usize,
    pub webhooks: usize,
    pub updates_recorded: usize,
    pub updates_applied: usize,
    pub exits: usize,
    /// Entries dropped by the Canvas's hourly entry limit.
    pub limited: usize,
}

impl PassReport {
    pub fn idle(&self) -> bool {
        self.triggers == 0 && self.woken == 0 && self.updates_applied == 0 && self.entries == 0
    }

    fn add(&mut self, other: &PassReport) {
        self.triggers += other.triggers;
        self.entries += other.entries;
        self.woken += other.woken;
        self.steps += other.steps;
        self.webhooks += other.webhooks;
        self.updates_recorded += other.updates_recorded;
        self.updates_applied += other.updates_applied;
        self.exits += other.exits;
        self.limited += other.limited;
    }
}

/// A recipient of `POST /canvas/trigger/send`.
#[derive(Debug, Clone)]
pub struct EntryRecipient {
    pub user: Identifier,
    /// Overrides the request's entry properties key by key.
    pub entry_properties: Option<Json>,
    /// Overrides the request's `context` key by key.
    pub context: Option<Json>,
}

/// A journey as stored (for tests and status).
#[derive(Debug, Clone, PartialEq)]
pub struct JourneyRow {
    pub id: i64,
    pub braze_id: String,
    pub status: String,
    pub exit_reason: Option<String>,
    pub journey: Journey,
}

pub struct CanvasEngine {
    conn: Mutex<Connection>,
    store: Arc<dyn Store>,
    on_enqueue: Option<Arc<dyn Fn() + Send + Sync>>,
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl CanvasEngine {
    /// Opens leadwire's database (already created by the store and the webhook service) and
    /// migrates the Canvas tables.
    pub fn open(path: &Path, store: Arc<dyn Store>) -> Result<CanvasEngine, EngineError> {
        let mut conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000;",
        )?;
        leadwire_store::shared::apply_migrations(
            &mut conn,
            "canvas_schema_migrations",
            MIGRATIONS,
        )?;
        // Also for files migrated before the table was part of version 1.
        conn.execute_batch("CREATE TABLE IF NOT EXISTS canvas_feed_position (consumer TEXT PRIMARY KEY, seq INTEGER NOT NULL)")?;
        Ok(CanvasEngine {
            conn: Mutex::new(conn),
            store,
            on_enqueue: None,
        })
    }

    /// Called after a pass enqueued webhooks, e.g. to wake the delivery workers.
    pub fn with_on_enqueue(mut self, f: Arc<dyn Fn() + Send + Sync>) -> CanvasEngine {
        self.on_enqueue = Some(f);
        self
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>, EngineError> {
        self.conn
            .lock()
            .map_err(|_| EngineError::Database("canvas engine connection poisoned".into()))
    }

    /// Creates or replaces (by name) a Canvas after checking its graph and that its webhook
    /// templates exist.
    pub fn save_canvas(&self, spec: CanvasSpec) -> Result<CanvasRecord, EngineError> {
        spec.compile()
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let conn = self.conn()?;
        for step in &spec.steps {
            if let StepKind::Webhook {
                template, inline, ..
            } = &step.kind
            {
                let name = match (template, inline) {
                    (Some(t), _) => t.clone(),
                    (None, _) => inline_template_name(&spec.name, &step.id),
                };
                template_id(&conn, &name).map_err(|e| {
                    EngineError::Invalid(format!(
                        "canvas '{}', step '{}': {}",
                        spec.name,
                        step.id,
                        if inline.is_some() {
                            "its inline webhook is not saved; save the Canvas with save_canvas_with_webhooks".to_string()
                        } else {
                            e.to_string()
                        }
                    ))
                })?;
            }
        }
        let now = millis(Utc::now());
        let text = serde_json::to_string(&spec).map_err(|e| EngineError::Invalid(e.to_string()))?;
        let status = status_str(spec.status);
        let id: String = conn.query_row(
            "INSERT INTO canvases (id, name, spec, status, created_at, updated_at)
             VALUES ('cnv_' || lower(hex(randomblob(8))), ?1, ?2, ?3, ?4, ?4)
             ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, status = excluded.status, updated_at = excluded.updated_at
             RETURNING id",
            params![spec.name, text, status, now],
            |r| r.get(0),
        )?;
        Ok(CanvasRecord { id, spec })
    }

    /// [`CanvasEngine::save_canvas`], first saving each inline webhook as a template (created
    /// or updated under [`inline_template_name`]) so the queue can render it like any other.
    pub async fn save_canvas_with_webhooks(
        self: &Arc<Self>,
        spec: CanvasSpec,
        webhooks: &WebhookService,
    ) -> Result<CanvasRecord, EngineError> {
        spec.compile()
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let inline: Vec<(String, Json)> = spec
            .steps
            .iter()
            .filter_map(|step| match &step.kind {
                StepKind::Webhook {
                    template: None,
                    inline: Some(Json::Object(def)),
                    ..
                } => {
                    let mut def = def.clone();
                    let name = inline_template_name(&spec.name, &step.id);
                    def.insert("name".into(), Json::String(name.clone()));
                    Some((step.id.clone(), Json::Object(def)))
                }
                _ => None,
            })
            .collect();
        if !inline.is_empty() {
            let existing = webhooks.list_templates(false, 100_000, 0).await?;
            for (step_id, def) in inline {
                let definition = TemplateDefinition::from_json(&def).map_err(|e| {
                    EngineError::Invalid(format!(
                        "canvas '{}', step '{step_id}': inline webhook: {e}",
                        spec.name
                    ))
                })?;
                let name = definition.template.name.clone();
                let saved = match existing.iter().find(|t| t.definition.template.name == name) {
                    Some(t) => webhooks.update_template(&t.id, definition).await,
                    None => webhooks.create_template(definition).await,
                };
                saved.map_err(|e| {
                    EngineError::Invalid(format!(
                        "canvas '{}', step '{step_id}': inline webhook: {e}",
                        spec.name
                    ))
                })?;
            }
        }
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.save_canvas(spec))
            .await
            .map_err(|e| EngineError::Database(format!("saving the canvas panicked: {e}")))?
    }

    pub fn canvases(&self) -> Result<Vec<CanvasRecord>, EngineError> {
        let conn = self.conn()?;
        load_canvases(&conn)
    }

    pub fn canvas(&self, id_or_name: &str) -> Result<CanvasRecord, EngineError> {
        self.canvases()?
            .into_iter()
            .find(|c| c.id == id_or_name || c.spec.name == id_or_name)
            .ok_or_else(|| EngineError::NotFound(id_or_name.to_string()))
    }

    pub fn set_status(
        &self,
        id_or_name: &str,
        status: CanvasStatus,
    ) -> Result<CanvasRecord, EngineError> {
        let mut record = self.canvas(id_or_name)?;
        record.spec.status = status;
        self.save_canvas(record.spec)
    }

    /// One full pass at `now`: pending user updates applied, then the feed and due journeys
    /// processed in one transaction, then the updates that pass recorded applied.
    pub async fn pass_at(
        self: &Arc<Self>,
        now: DateTime<Utc>,
        max: usize,
    ) -> Result<PassReport, EngineError> {
        let mut report = PassReport {
            updates_applied: self.apply_pending(now).await?,
            ..PassReport::default()
        };
        let engine = self.clone();
        let pass = tokio::task::spawn_blocking(move || engine.process_at(now, max))
            .await
            .map_err(|e| EngineError::Database(format!("canvas pass panicked: {e}")))??;
        report.add(&pass);
        report.updates_applied += self.apply_pending(now).await?;
        Ok(report)
    }

    pub async fn pass(self: &Arc<Self>) -> Result<PassReport, EngineError> {
        self.pass_at(Utc::now(), 1000).await
    }

    /// Applies recorded User Update steps through the store, then releases their journeys.
    pub async fn apply_pending(&self, now: DateTime<Utc>) -> Result<usize, EngineError> {
        type Row = (i64, i64, String, String, Option<String>, i64);
        let pending: Vec<Row> = {
            let conn = self.conn()?;
            let mut stmt = conn.prepare_cached(
                "SELECT id, journey_id, braze_id, ops, track, feed_seq FROM canvas_pending_updates ORDER BY id LIMIT 1000",
            )?;
            stmt.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?
            .collect::<Result<_, _>>()?
        };
        let mut applied = 0;
        // Up to 75 updates per store request (the /users/track cap), then one transaction that
        // deletes their rows and releases their journeys.
        for chunk in pending.chunks(75) {
            let mut attributes = Vec::with_capacity(chunk.len());
            for (index, (_, _, braze_id, ops, _, _)) in chunk.iter().enumerate() {
                if ops == "[]" {
                    continue;
                }
                attributes.push(AttributeObject {
                    index,
                    identifier: Identifier::BrazeId(braze_id.clone()),
                    update_existing_only: true,
                    merge_objects: false,
                    ops: decode_ops(ops)?
                        .into_iter()
                        .map(|(k, op)| {
                            (
                                k,
                                match op {
                                    UpdateOp::Set(v) => AttrOp::Set(v),
                                    UpdateOp::Remove => AttrOp::Remove,
                                },
                            )
                        })
                        .collect(),
                });
            }
            let result = if attributes.is_empty() {
                leadwire_store::TrackResult::default()
            } else {
                self.store
                    .track(
                        ParsedTrack {
                            attributes,
                            ..ParsedTrack::default()
                        },
                        ChangeSource::CanvasUserUpdate,
                    )
                    .await?
            };
            for e in &result.errors {
                let journey_id = chunk.get(e.index).map(|p| p.1);
                tracing::warn!(?journey_id, error = %e.message, "canvas user update rejected");
            }
            for (_, journey_id, braze_id, _, track, feed_seq) in chunk {
                if let Some(track) = track {
                    self.apply_events(*journey_id, braze_id, track, *feed_seq)
                        .await?;
                }
            }
            let mut conn = self.conn()?;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for (id, journey_id, _, _, _, _) in chunk {
                tx.prepare_cached("DELETE FROM canvas_pending_updates WHERE id = ?1")?
                    .execute([id])?;
                tx.prepare_cached(
                    "UPDATE canvas_journeys SET status = 'active', wake_at = ?2 WHERE id = ?1 AND status = 'updating'",
                )?
                .execute(params![journey_id, millis(now)])?;
            }
            tx.commit()?;
            applied += chunk.len();
        }
        Ok(applied)
    }

    /// A JSON-editor update's events and purchases, exactly once: each is applied unless the feed
    /// after the position recorded with the update already holds the trigger it raises from a
    /// Canvas user update (a crash between the store's write and the row's removal).
    async fn apply_events(
        &self,
        journey_id: i64,
        braze_id: &str,
        track: &str,
        feed_seq: i64,
    ) -> Result<(), EngineError> {
        let Ok(Json::Object(mut body)) = serde_json::from_str::<Json>(track) else {
            tracing::warn!(
                journey_id,
                "canvas user update events are not JSON; skipped"
            );
            return Ok(());
        };
        for key in ["events", "purchases"] {
            if let Some(Json::Array(items)) = body.get_mut(key) {
                for item in items.iter_mut() {
                    if let Json::Object(o) = item {
                        o.insert("braze_id".into(), Json::String(braze_id.to_string()));
                        o.insert("_update_existing_only".into(), Json::Bool(true));
                    }
                }
            }
        }
        let mut parsed = match parse_track(&Json::Object(body)) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(journey_id, error = %e, "canvas user update events rejected");
                return Ok(());
            }
        };
        for e in &parsed.errors {
            tracing::warn!(journey_id, error = %e.message, "canvas user update event rejected");
        }
        parsed.attributes.clear();
        let done: Vec<Trigger> = {
            let conn = self.conn()?;
            shared::triggers_after(&conn, feed_seq, 100_000)?
                .into_iter()
                .filter(|t| t.braze_id == braze_id && t.source == ChangeSource::CanvasUserUpdate)
                .map(|t| t.trigger)
                .collect()
        };
        parsed
            .events
            .retain(|e| !done.contains(&Profile::event_trigger(e)));
        parsed
            .purchases
            .retain(|p| !done.contains(&Profile::purchase_trigger(p)));
        if parsed.events.is_empty() && parsed.purchases.is_empty() {
            return Ok(());
        }
        parsed.errors.clear();
        self.store
            .track(parsed, ChangeSource::CanvasUserUpdate)
            .await?;
        Ok(())
    }

    /// The transactional part of a pass: up to `max` triggers and `max` due journeys.
    pub fn process_at(&self, now: DateTime<Utc>, max: usize) -> Result<PassReport, EngineError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let position: i64 = tx
            .query_row(
                "SELECT seq FROM canvas_feed_position WHERE consumer = ?1",
                [CONSUMER],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let triggers = shared::triggers_after(&tx, position, max)?;
        let canvases: HashMap<String, CompiledCanvas> = load_canvases(&tx)?
            .into_iter()
            .filter(|c| c.spec.status == CanvasStatus::Active)
            .filter_map(|c| c.spec.compile().ok().map(|compiled| (c.id, compiled)))
            .collect();
        let mut pass = Pass {
            tx: &tx,
            now,
            profiles: HashMap::new(),
            report: PassReport {
                triggers: triggers.len(),
                ..PassReport::default()
            },
            feed_seq: triggers.last().map_or(position, |t| t.seq),
        };
        // A Canvas enters users on triggers raised after it was created, not on the feed's history.
        let created: HashMap<String, i64> = tx
            .prepare_cached("SELECT id, created_at FROM canvases")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut ids: Vec<&String> = canvases.keys().collect();
        ids.sort();
        for record in &triggers {
            for id in &ids {
                let canvas = &canvases[*id];
                let exit = canvas.exit_event(&record.trigger);
                // Braze: with ranking off, an action advances only the user's earliest entry
                // waiting in Action Paths; the others keep waiting (journeys come oldest first).
                let mut action_taken = false;
                for row in pass.active_journeys(id, &record.braze_id)? {
                    let mut journey = row.journey;
                    if exit {
                        journey.exit_requested = true;
                    }
                    // A journey waiting for its User Update only takes the exit flag.
                    if row.status == "active" && matches!(journey.wait, Some(Wait::Actions { .. }))
                    {
                        let unranked_hit = match canvas
                            .step_index(&journey.step)
                            .and_then(|i| canvas.steps.get(i))
                        {
                            Some(Step::ActionPaths {
                                ranked: false,
                                groups,
                                ..
                            }) => groups.iter().any(|(m, _)| m.matches(&record.trigger)),
                            _ => false,
                        };
                        let trigger = if unranked_hit && action_taken {
                            None
                        } else {
                            action_taken |= unranked_hit;
                            Some(&record.trigger)
                        };
                        pass.advance(id, canvas, Some(row.id), &record.braze_id, journey, trigger)?;
                    } else if exit {
                        pass.save_state(row.id, &journey)?;
                    }
                }
                let fresh = created
                    .get(*id)
                    .is_some_and(|at| millis(record.created_at) >= *at);
                if fresh && canvas.entered_by(&record.trigger) {
                    // Braze: an action-based entry's event properties are its
                    // canvas_entry_properties.
                    pass.try_enter(
                        id,
                        canvas,
                        &record.braze_id,
                        journey::properties_of(&record.trigger),
                        Default::default(),
                    )?;
                }
            }
        }
        // Journeys whose Delay or window ended, or whose User Update was applied.
        let due: Vec<(i64, String, String, String)> = tx
            .prepare_cached(
                "SELECT id, canvas_id, braze_id, state FROM canvas_journeys
                 WHERE status = 'active' AND wake_at <= ?1
                   AND canvas_id IN (SELECT id FROM canvases WHERE status = 'active')
                 ORDER BY wake_at, id LIMIT ?2",
            )?
            .query_map(params![millis(now), max as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?;
        for (jid, canvas_id, braze_id, state) in due {
            // A paused or deleted Canvas holds its journeys where they are.
            let Some(canvas) = canvases.get(&canvas_id) else {
                continue;
            };
            pass.report.woken += 1;
            let journey = decode_journey(jid, &state)?;
            pass.advance(&canvas_id, canvas, Some(jid), &braze_id, journey, None)?;
        }
        if let Some(last) = triggers.last().map(|t| t.seq) {
            tx.execute(
                "INSERT INTO canvas_feed_position (consumer, seq) VALUES (?1, ?2) ON CONFLICT(consumer) DO UPDATE SET seq = excluded.seq",
                params![CONSUMER, last],
            )?;
        }
        let report = pass.report;
        tx.commit()?;
        if report.webhooks > 0
            && let Some(f) = &self.on_enqueue
        {
            f();
        }
        Ok(report)
    }

    /// `POST /canvas/trigger/send` after the caller applied any `attributes`: enters each
    /// recipient (audience and re-entry permitting) and returns the dispatch id and the
    /// recipients that matched nobody.
    pub fn trigger_send(
        &self,
        canvas_id: &str,
        recipients: &[EntryRecipient],
        entry_properties: Option<&Json>,
        context: Option<&Json>,
        now: DateTime<Utc>,
    ) -> Result<(String, Vec<Identifier>), EngineError> {
        let record = self.canvas(canvas_id)?;
        let canvas = record
            .spec
            .compile()
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        if !canvas.api_triggered {
            return Err(EngineError::Invalid(format!(
                "canvas '{}' is not API-triggered",
                record.spec.name
            )));
        }
        if record.spec.status != CanvasStatus::Active {
            return Err(EngineError::Invalid(format!(
                "canvas '{}' is not active (it is {})",
                record.spec.name,
                status_str(record.spec.status)
            )));
        }
        let dispatch_id = format!("dsp_{:016x}", rand_u64());
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut missing = Vec::new();
        let mut pass = Pass {
            tx: &tx,
            now,
            profiles: HashMap::new(),
            report: PassReport::default(),
            feed_seq: tx
                .query_row(
                    "SELECT seq FROM canvas_feed_position WHERE consumer = ?1",
                    [CONSUMER],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or(0),
        };
        for r in recipients {
            let Some(profile) = shared::profile_by_identifier(&tx, &r.user)? else {
                missing.push(r.user.clone());
                continue;
            };
            // Per-recipient values override the request's keys (Braze).
            let props = merged(entry_properties, r.entry_properties.as_ref());
            let context = match merged(context, r.context.as_ref()) {
                Json::Object(m) => m,
                _ => serde_json::Map::new(),
            };
            pass.try_enter(&record.id, &canvas, &profile.braze_id, Some(props), context)?;
        }
        let webhooks = pass.report.webhooks;
        tx.commit()?;
        if webhooks > 0
            && let Some(f) = &self.on_enqueue
        {
            f();
        }
        Ok((dispatch_id, missing))
    }

    /// Runs passes until `shutdown` resolves, pausing briefly when there is nothing to do.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let idle = match self.pass().await {
                Ok(report) => report.idle(),
                Err(e) => {
                    tracing::error!(error = %e, "canvas pass failed; retrying");
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(std::time::Duration::from_millis(25)) => {}
                }
            }
        }
    }

    /// Where the feed consumer stands.
    pub fn position(&self) -> Result<i64, EngineError> {
        let conn = self.conn()?;
        Ok(conn
            .query_row(
                "SELECT seq FROM canvas_feed_position WHERE consumer = ?1",
                [CONSUMER],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    /// Every journey of a Canvas, oldest first.
    pub fn journeys(&self, canvas_id: &str) -> Result<Vec<JourneyRow>, EngineError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, braze_id, status, exit_reason, state FROM canvas_journeys WHERE canvas_id = ?1 ORDER BY id",
        )?;
        let rows: Vec<(i64, String, String, Option<String>, String)> = stmt
            .query_map([canvas_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(id, braze_id, status, exit_reason, state)| {
                Ok(JourneyRow {
                    id,
                    braze_id,
                    status,
                    exit_reason,
                    journey: decode_journey(id, &state)?,
                })
            })
            .collect()
    }

    /// How often each step of a Canvas did something (`webhook`, `user_update`, `entered`).
    pub fn step_counts(
        &self,
        canvas_id: &str,
    ) -> Result<HashMap<(String, String), i64>, EngineError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT step_id, kind, count FROM canvas_step_counts WHERE canvas_id = ?1",
        )?;
        let rows = stmt.query_map([canvas_id], |r| {
            Ok(((r.get::<_, String>(0)?, r.get::<_, String>(1)?), r.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Work a pass would do now besides the feed: user updates not yet applied, and journeys
    /// due (a Delay or window ended, or an update was applied). Zero means the engine is idle.
    pub fn outstanding(&self, now: DateTime<Utc>) -> Result<i64, EngineError> {
        let conn = self.conn()?;
        Ok(conn.query_row(
            "SELECT (SELECT COUNT(*) FROM canvas_pending_updates)
                  + (SELECT COUNT(*) FROM canvas_journeys WHERE status = 'active' AND wake_at <= ?1)",
            [millis(now)],
            |r| r.get(0),
        )?)
    }

    /// Pending user updates not yet applied (for tests and status).
    pub fn pending_updates(&self) -> Result<i64, EngineError> {
        let conn = self.conn()?;
        Ok(
            conn.query_row("SELECT COUNT(*) FROM canvas_pending_updates", [], |r| {
                r.get(0)
            })?,
        )
    }
}

/// The state of one transaction's work.
struct Pass<'t, 'c> {
    tx: &'t Transaction<'c>,
    now: DateTime<Utc>,
    /// Profiles read in this transaction, with pending updates overlaid.
    profiles: HashMap<String, Profile>,
    report: PassReport,
    /// The feed position every trigger raised by this pass's updates will come after.
    feed_seq: i64,
}

impl Pass<'_, '_> {
    fn profile(&mut self, braze_id: &str) -> Result<Option<Profile>, EngineError> {
        if let Some(p) = self.profiles.get(braze_id) {
            return Ok(Some(p.clone()));
        }
        let Some(mut profile) = shared::profile_by_braze_id(self.tx, braze_id)? else {
            return Ok(None);
        };
        let pending: Vec<String> = self
            .tx
            .prepare_cached(
                "SELECT ops FROM canvas_pending_updates WHERE braze_id = ?1 ORDER BY id",
            )?
            .query_map([braze_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for ops in pending {
            journey::overlay(&mut profile, &decode_ops(&ops)?);
        }
        self.profiles.insert(braze_id.to_string(), profile.clone());
        Ok(Some(profile))
    }

    /// The user's journeys in the Canvas that have not exited (waiting, or waiting for an update).
    fn active_journeys(
        &self,
        canvas_id: &str,
        braze_id: &str,
    ) -> Result<Vec<JourneyRow>, EngineError> {
        let rows: Vec<(i64, String, String)> = self
            .tx
            .prepare_cached(
                "SELECT id, state, status FROM canvas_journeys WHERE canvas_id = ?1 AND braze_id = ?2 AND status IN ('active', 'updating') ORDER BY id",
            )?
            .query_map(params![canvas_id, braze_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(id, state, status)| {
                Ok(JourneyRow {
                    id,
                    braze_id: braze_id.to_string(),
                    status,
                    exit_reason: None,
                    journey: decode_journey(id, &state)?,
                })
            })
            .collect()
    }

    /// Enters the user if the audience and re-entry rules allow it.
    fn try_enter(
        &mut self,
        canvas_id: &str,
        canvas: &CompiledCanvas,
        braze_id: &str,
        entry_properties: Option<Json>,
        context: serde_json::Map<String, Json>,
    ) -> Result<(), EngineError> {
        let Some(profile) = self.profile(braze_id)? else {
            return Ok(());
        };
        if !canvas
            .audience
            .as_ref()
            .is_none_or(|f| f.matches_profile(&profile))
        {
            return Ok(());
        }
        let last: Option<i64> = self
            .tx
            .prepare_cached(
                "SELECT last_entered_at FROM canvas_entries WHERE canvas_id = ?1 AND braze_id = ?2",
            )?
            .query_row(params![canvas_id, braze_id], |r| r.get(0))
            .optional()?;
        if !eligible(
            last.and_then(DateTime::from_timestamp_millis),
            canvas.spec.entry.reentry_seconds,
            self.now,
        ) {
            return Ok(());
        }
        if let Some(limit) = canvas.spec.entry.max_entries_per_hour {
            let hour = self.now.timestamp().div_euclid(3600);
            let so_far: i64 = self
                .tx
                .prepare_cached(
                    "SELECT entries FROM canvas_hourly_entries WHERE canvas_id = ?1 AND hour = ?2",
                )?
                .query_row(params![canvas_id, hour], |r| r.get(0))
                .optional()?
                .unwrap_or(0);
            if so_far as u64 >= limit {
                self.report.limited += 1;
                return Ok(());
            }
            self.tx
                .prepare_cached(
                    "INSERT INTO canvas_hourly_entries (canvas_id, hour, entries) VALUES (?1, ?2, 1)
                     ON CONFLICT(canvas_id, hour) DO UPDATE SET entries = entries + 1",
                )?
                .execute(params![canvas_id, hour])?;
        }
        self.tx
            .prepare_cached(
                "INSERT INTO canvas_entries (canvas_id, braze_id, last_entered_at, entries) VALUES (?1, ?2, ?3, 1)
                 ON CONFLICT(canvas_id, braze_id) DO UPDATE SET last_entered_at = excluded.last_entered_at, entries = entries + 1",
            )?
            .execute(params![canvas_id, braze_id, millis(self.now)])?;
        self.report.entries += 1;
        let mut journey = journey::enter(canvas, self.now, entry_properties);
        journey.context = context;
        self.count(canvas_id, &journey.step, "entered")?;
        self.advance(canvas_id, canvas, None, braze_id, journey, None)
    }

    /// Advances a journey, performs its effects and saves it.
    fn advance(
        &mut self,
        canvas_id: &str,
        canvas: &CompiledCanvas,
        id: Option<i64>,
        braze_id: &str,
        mut journey: Journey,
        trigger: Option<&leadwire_profiles::Trigger>,
    ) -> Result<(), EngineError> {
        let Some(profile) = self.profile(braze_id)? else {
            // The user was deleted: their journey ends.
            if let Some(id) = id {
                self.tx.execute(
                    "UPDATE canvas_journeys SET status = 'exited', exit_reason = 'user_deleted', wake_at = NULL WHERE id = ?1",
                    [id],
                )?;
            }
            return Ok(());
        };
        let Advanced {
            effects,
            status,
            steps,
        } = journey::advance(canvas, &mut journey, &profile, self.now, trigger);
        self.report.steps += steps;
        let (status_text, wake_at, exit_reason) = match &status {
            Status::Waiting { until } => ("active", Some(millis(*until)), None),
            Status::AwaitingUpdate => ("updating", None, None),
            Status::Exited(reason) => {
                self.report.exits += 1;
                ("exited", None, Some(format!("{reason:?}")))
            }
        };
        let state = serde_json::to_string(&journey)
            .map_err(|e| EngineError::Database(format!("journey state: {e}")))?;
        let now = millis(self.now);
        let id = match id {
            Some(id) => {
                self.tx
                    .prepare_cached(
                        "UPDATE canvas_journeys SET state = ?2, status = ?3, wake_at = ?4, exit_reason = ?5, updated_at = ?6 WHERE id = ?1",
                    )?
                    .execute(params![id, state, status_text, wake_at, exit_reason, now])?;
                id
            }
            None => self
                .tx
                .prepare_cached(
                    "INSERT INTO canvas_journeys (canvas_id, braze_id, state, status, wake_at, exit_reason, entered_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING id",
                )?
                .query_row(
                    params![canvas_id, braze_id, state, status_text, wake_at, exit_reason, now],
                    |r| r.get(0),
                )?,
        };
        for effect in effects {
            match effect {
                Effect::Webhook {
                    step_id,
                    step_name,
                    template,
                } => {
                    let job = NewJob {
                        template_id: template_id(self.tx, &template)?,
                        user: user_identifier(&profile),
                        campaign_id: Some(canvas_id.to_string()),
                        step_id: Some(step_id.clone()),
                        properties: RenderProperties {
                            canvas_entry_properties: journey.entry_properties.clone(),
                            event_properties: journey.event_properties.clone(),
                            canvas: Some(json!({"name": canvas.spec.name, "api_id": canvas_id})),
                            context: Some(Json::Object(journey.context.clone())),
                            campaign: Some(json!({"name": step_name})),
                            ..RenderProperties::default()
                        },
                        not_before: None,
                    };
                    enqueue(self.tx, &job)?;
                    self.report.webhooks += 1;
                    self.count(canvas_id, &step_id, "webhook")?;
                }
                Effect::UserUpdate {
                    step_id,
                    ops,
                    track,
                } => {
                    self.tx
                        .prepare_cached(
                            "INSERT INTO canvas_pending_updates (journey_id, braze_id, ops, track, feed_seq, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        )?
                        .execute(params![
                            id,
                            braze_id,
                            encode_ops(&ops),
                            track.map(|t| t.to_string()),
                            self.feed_seq,
                            now
                        ])?;
                    if let Some(p) = self.profiles.get_mut(braze_id) {
                        journey::overlay(p, &ops);
                    }
                    self.report.updates_recorded += 1;
                    self.count(canvas_id, &step_id, "user_update")?;
                }
            }
        }
        Ok(())
    }

    fn save_state(&self, id: i64, journey: &Journey) -> Result<(), EngineError> {
        let state = serde_json::to_string(journey)
            .map_err(|e| EngineError::Database(format!("journey state: {e}")))?;
        self.tx
            .prepare_cached("UPDATE canvas_journeys SET state = ?2 WHERE id = ?1")?
            .execute(params![id, state])?;
        Ok(())
    }

    fn count(&self, canvas_id: &str, step_id: &str, kind: &str) -> Result<(), EngineError> {
        self.tx
            .prepare_cached(
                "INSERT INTO canvas_step_counts (canvas_id, step_id, kind, count) VALUES (?1, ?2, ?3, 1)
                 ON CONFLICT(canvas_id, step_id, kind) DO UPDATE SET count = count + 1",
            )?
            .execute(params![canvas_id, step_id, kind])?;
        Ok(())
    }
}

fn merged(base: Option<&Json>, over: Option<&Json>) -> Json {
    let mut out = base.cloned().unwrap_or_else(|| json!({}));
    if let (Json::Object(b), Some(Json::Object(o))) = (&mut out, over) {
        b.extend(o.clone());
    }
    out
}

fn status_str(status: CanvasStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn encode_ops(ops: &[(String, UpdateOp)]) -> String {
    let list: Vec<Json> = ops
        .iter()
        .map(|(k, op)| match op {
            UpdateOp::Set(v) => json!([k, "set", v]),
            UpdateOp::Remove => json!([k, "remove"]),
        })
        .collect();
    Json::Array(list).to_string()
}

fn decode_ops(text: &str) -> Result<Vec<(String, UpdateOp)>, EngineError> {
    let bad = || EngineError::Database(format!("pending user update is corrupt: {text}"));
    let Json::Array(items) = serde_json::from_str::<Json>(text).map_err(|_| bad())? else {
        return Err(bad());
    };
    items
        .iter()
        .map(|item| {
            let name = item.get(0).and_then(Json::as_str).ok_or_else(bad)?;
            let op = match item.get(1).and_then(Json::as_str) {
                Some("set") => UpdateOp::Set(item.get(2).cloned().unwrap_or(Json::Null)),
                Some("remove") => UpdateOp::Remove,
                _ => return Err(bad()),
            };
            Ok((name.to_string(), op))
        })
        .collect()
}

fn decode_journey(id: i64, state: &str) -> Result<Journey, EngineError> {
    serde_json::from_str(state)
        .map_err(|e| EngineError::Database(format!("journey {id} state is corrupt: {e}")))
}

fn load_canvases(conn: &Connection) -> Result<Vec<CanvasRecord>, EngineError> {
    let mut stmt = conn.prepare_cached("SELECT id, spec FROM canvases ORDER BY created_at, id")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, spec) = row?;
        let spec: CanvasSpec = serde_json::from_str(&spec)
            .map_err(|e| EngineError::Database(format!("canvas {id}: {e}")))?;
        out.push(CanvasRecord { id, spec });
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

fn user_identifier(profile: &Profile) -> Identifier {
    match &profile.external_id {
        Some(id) => Identifier::ExternalId(id.clone()),
        None => Identifier::BrazeId(profile.braze_id.clone()),
    }
}

fn rand_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(48)
}
