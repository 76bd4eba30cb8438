//! The Canvas engine: every user's journey through every Canvas, durable in the store.
//!
//! The engine is a feed consumer ([`FeedConsumer`]): a pass is one store transaction that reads
//! the triggers after its position, enters users, marks exception events, completes Action Paths,
//! wakes journeys whose Delay or window is due, moves each journey with the pure
//! [`crate::journey::advance`], enqueues the webhooks of Message steps, applies User Updates, and
//! saves the journeys and the new position, all together. A trigger is therefore consumed once, a
//! step's webhook enqueued once and a User Update applied once, across crashes and restarts; a
//! Delay fires once because its end is stored on the journey.
//!
//! User Update steps write the profile in the pass's transaction (`Tx::track` with
//! [`ChangeSource::CanvasUserUpdate`]), so later steps see the new values at once and an
//! increment is never applied twice: there is nothing to recover after a crash.
//!
//! Knows the store's transaction API; must not speak HTTP, write SQL or deliver anything itself.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use leadwire_campaigns::eligible;
use leadwire_engine::campaigns::template_id;
use leadwire_engine::{
    EngineError, FeedConsumer, PassReport, SpecCache, dispatch_id, user_identifier,
};
use leadwire_profiles::track::AttrOp;
use leadwire_profiles::{AttributeObject, Identifier, ParsedTrack, Trigger, parse_track};
use leadwire_store::{
    ChangeSource, Consumer, JourneyStatus, JourneyWrite, NewJob, Store, TriggerRecord, Tx,
};
use leadwire_webhooks::templates::TemplateDefinition;
use leadwire_webhooks::{RenderProperties, WebhookService};
use serde_json::{Value as Json, json};

use crate::journey::{self, Advanced, Effect, Journey, Status, UpdateOp, Wait};
use crate::spec::{CanvasSpec, CanvasStatus, CompiledCanvas, Step, StepKind, inline_template_name};

/// A stored Canvas.
#[derive(Debug, Clone, PartialEq)]
pub struct CanvasRecord {
    pub id: String,
    pub spec: CanvasSpec,
    /// When it was last saved (Braze's `last_edited`).
    pub last_edited: DateTime<Utc>,
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
    pub status: JourneyStatus,
    pub exit_reason: Option<String>,
    pub journey: Journey,
}

/// Most times one pass re-advances a journey after applying its User Updates (a Canvas has at
/// most 200 steps; a journey stops at every Delay or Action Paths).
const MAX_UPDATE_ROUNDS: usize = 200;

pub struct CanvasEngine {
    store: Store,
    /// The active Canvases, compiled.
    compiled: SpecCache<CompiledCanvas>,
}

impl CanvasEngine {
    pub fn new(store: Store) -> CanvasEngine {
        CanvasEngine {
            store,
            compiled: SpecCache::default(),
        }
    }

    /// Creates or replaces (by name) a Canvas after checking its graph and that its webhook
    /// templates exist.
    pub async fn save_canvas(&self, spec: CanvasSpec) -> Result<CanvasRecord, EngineError> {
        spec.compile()
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let text = serde_json::to_string(&spec).map_err(|e| EngineError::Invalid(e.to_string()))?;
        let check = spec.clone();
        let id = self
            .store
            .transact(move |tx| {
                for step in &check.steps {
                    if let StepKind::Webhook {
                        template, inline, ..
                    } = &step.kind
                    {
                        let name = match template {
                            Some(t) => t.clone(),
                            None => inline_template_name(&check.name, &step.id),
                        };
                        template_id(tx, &name).map_err(|e| {
                            EngineError::Invalid(format!(
                                "canvas '{}', step '{}': {}",
                                check.name,
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
                Ok::<_, EngineError>((tx.save_canvas(&check.name, &text)?, tx.now()))
            })
            .await?;
        let (id, last_edited) = id;
        Ok(CanvasRecord {
            id,
            spec,
            last_edited,
        })
    }

    /// [`CanvasEngine::save_canvas`], first saving each inline webhook as a template (created
    /// or updated under [`inline_template_name`]) so the queue can render it like any other.
    pub async fn save_canvas_with_webhooks(
        &self,
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
        self.save_canvas(spec).await
    }

    pub async fn canvases(&self) -> Result<Vec<CanvasRecord>, EngineError> {
        self.store
            .read(|tx| {
                tx.canvases()?
                    .into_iter()
                    .map(|row| {
                        let spec: CanvasSpec = serde_json::from_str(&row.spec)
                            .map_err(|e| EngineError::Corrupt(format!("canvas {}: {e}", row.id)))?;
                        Ok(CanvasRecord {
                            id: row.id,
                            spec,
                            last_edited: row.updated_at,
                        })
                    })
                    .collect()
            })
            .await
    }

    pub async fn canvas(&self, id_or_name: &str) -> Result<CanvasRecord, EngineError> {
        self.canvases()
            .await?
            .into_iter()
            .find(|c| c.id == id_or_name || c.spec.name == id_or_name)
            .ok_or_else(|| EngineError::NotFound {
                what: "canvas",
                id: id_or_name.to_string(),
            })
    }

    pub async fn set_status(
        &self,
        id_or_name: &str,
        status: CanvasStatus,
    ) -> Result<CanvasRecord, EngineError> {
        let mut record = self.canvas(id_or_name).await?;
        record.spec.status = status;
        self.save_canvas(record.spec).await
    }

    /// `POST /canvas/trigger/send` after the caller applied any `attributes`: enters each
    /// recipient (audience and re-entry permitting) and returns the dispatch id and the
    /// recipients that matched nobody.
    pub async fn trigger_send(
        &self,
        canvas_id: &str,
        recipients: Vec<EntryRecipient>,
        entry_properties: Option<Json>,
        context: Option<Json>,
        now: DateTime<Utc>,
    ) -> Result<(String, Vec<Identifier>), EngineError> {
        let record = self.canvas(canvas_id).await?;
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
        let dispatch = dispatch_id();
        let missing = self
            .store
            .transact(move |tx| {
                let mut missing = Vec::new();
                let mut pass = Pass {
                    tx,
                    now,
                    report: PassReport::default(),
                };
                for r in recipients {
                    let Some(profile) = pass.tx.profile(&r.user)? else {
                        missing.push(r.user);
                        continue;
                    };
                    // Per-recipient values override the request's keys (Braze).
                    let props = merged(entry_properties.as_ref(), r.entry_properties.as_ref());
                    let context = match merged(context.as_ref(), r.context.as_ref()) {
                        Json::Object(m) => m,
                        _ => serde_json::Map::new(),
                    };
                    pass.try_enter(&record.id, &canvas, &profile.braze_id, Some(props), context)?;
                }
                Ok::<_, EngineError>(missing)
            })
            .await?;
        Ok((dispatch, missing))
    }

    /// Every journey of a Canvas, oldest first.
    pub async fn journeys(&self, canvas_id: &str) -> Result<Vec<JourneyRow>, EngineError> {
        let canvas_id = canvas_id.to_owned();
        self.store
            .read(move |tx| {
                tx.journeys(&canvas_id)?
                    .into_iter()
                    .map(|row| {
                        Ok(JourneyRow {
                            journey: decode_journey(row.id, &row.state)?,
                            id: row.id,
                            braze_id: row.braze_id,
                            status: row.status,
                            exit_reason: row.exit_reason,
                        })
                    })
                    .collect()
            })
            .await
    }

    /// How often each step of a Canvas did something (`webhook`, `user_update`, `entered`).
    pub async fn step_counts(
        &self,
        canvas_id: &str,
    ) -> Result<HashMap<(String, String), i64>, EngineError> {
        let canvas_id = canvas_id.to_owned();
        Ok(self
            .store
            .read(move |tx| tx.step_counts(&canvas_id))
            .await?)
    }

    /// Journeys due at `now` (a Delay or window ended): zero means no timed work is waiting.
    pub async fn outstanding(&self, now: DateTime<Utc>) -> Result<u64, EngineError> {
        Ok(self.store.read(move |tx| tx.due_journey_count(now)).await?)
    }
}

/// The active Canvases, compiled, by id; and when every Canvas was created.
type ActiveCanvases = (
    HashMap<String, Arc<CompiledCanvas>>,
    HashMap<String, DateTime<Utc>>,
);

impl CanvasEngine {
    fn active_canvases(&self, tx: &mut Tx<'_>) -> Result<ActiveCanvases, EngineError> {
        let mut compiled = HashMap::new();
        let mut created = HashMap::new();
        for row in tx.canvases()? {
            created.insert(row.id.clone(), row.created_at);
            let canvas = self.compiled.get(&row.id, &row.spec, |text| {
                let Ok(spec) = serde_json::from_str::<CanvasSpec>(text) else {
                    tracing::warn!(canvas = %row.id, "stored canvas does not parse; skipped");
                    return None;
                };
                (spec.status == CanvasStatus::Active)
                    .then(|| spec.compile().ok())
                    .flatten()
            });
            if let Some(canvas) = canvas {
                compiled.insert(row.id, canvas);
            }
        }
        Ok((compiled, created))
    }
}

impl FeedConsumer for CanvasEngine {
    fn consumer(&self) -> Consumer {
        Consumer::Canvases
    }

    fn pass(
        &self,
        tx: &mut Tx<'_>,
        triggers: &[TriggerRecord],
        now: DateTime<Utc>,
    ) -> Result<PassReport, EngineError> {
        let (canvases, created) = self.active_canvases(tx)?;
        let mut pass = Pass {
            tx,
            now,
            report: PassReport::default(),
        };
        if canvases.is_empty() {
            return Ok(pass.report);
        }
        let mut ids: Vec<&String> = canvases.keys().collect();
        ids.sort();
        for record in triggers {
            // The steps this trigger runs now join the trace of the request that raised it.
            let _trace = record.trace_context.as_deref().map(|parent| {
                leadwire_telemetry::resume(
                    tracing::info_span!("canvas trigger", seq = record.seq),
                    parent,
                )
            });
            for id in &ids {
                let canvas = &canvases[*id];
                let exit = canvas.exit_event(&record.trigger);
                // Braze: with ranking off, an action advances only the user's earliest entry
                // waiting in Action Paths; the others keep waiting (journeys come oldest first).
                let mut action_taken = false;
                for row in pass.tx.open_journeys(id, &record.braze_id)? {
                    let mut journey = decode_journey(row.id, &row.state)?;
                    if exit {
                        journey.exit_requested = true;
                    }
                    if matches!(journey.wait, Some(Wait::Actions { .. })) {
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
                let fresh = created.get(*id).is_some_and(|at| record.created_at >= *at);
                // A Canvas's own User Updates do not enter users into it again.
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
        // Journeys whose Delay or window ended.
        let active: Vec<String> = canvases.keys().cloned().collect();
        for row in pass.tx.due_journeys(&active, now, 1000)? {
            let Some(canvas) = canvases.get(&row.canvas_id) else {
                continue;
            };
            pass.report.woken += 1;
            let journey = decode_journey(row.id, &row.state)?;
            pass.advance(
                &row.canvas_id,
                canvas,
                Some(row.id),
                &row.braze_id,
                journey,
                None,
            )?;
        }
        Ok(pass.report)
    }

    fn next_wake(&self, tx: &mut Tx<'_>) -> Result<Option<DateTime<Utc>>, EngineError> {
        let (canvases, _) = self.active_canvases(tx)?;
        let active: Vec<String> = canvases.into_keys().collect();
        Ok(tx.next_journey_wake(&active)?)
    }
}

/// The state of one transaction's work.
struct Pass<'p, 't> {
    tx: &'p mut Tx<'t>,
    now: DateTime<Utc>,
    report: PassReport,
}

impl Pass<'_, '_> {
    /// Enters the user if the audience and re-entry rules allow it.
    fn try_enter(
        &mut self,
        canvas_id: &str,
        canvas: &CompiledCanvas,
        braze_id: &str,
        entry_properties: Option<Json>,
        context: serde_json::Map<String, Json>,
    ) -> Result<(), EngineError> {
        let Some(profile) = self.tx.profile_by_braze_id(braze_id)? else {
            return Ok(());
        };
        if !canvas
            .audience
            .as_ref()
            .is_none_or(|f| f.matches_profile(&profile))
        {
            return Ok(());
        }
        if !eligible(
            self.tx.last_entry(canvas_id, braze_id)?,
            canvas.spec.entry.reentry_seconds,
            self.now,
        ) {
            return Ok(());
        }
        if let Some(limit) = canvas.spec.entry.max_entries_per_hour {
            let hour = self.now.timestamp().div_euclid(3600);
            if self.tx.hourly_entries(canvas_id, hour)? >= limit {
                self.report.limited += 1;
                return Ok(());
            }
            self.tx.count_hourly_entry(canvas_id, hour)?;
        }
        self.tx.record_entry(canvas_id, braze_id, self.now)?;
        self.report.entries += 1;
        let mut journey = journey::enter(canvas, self.now, entry_properties);
        journey.context = context;
        self.tx.count_step(canvas_id, &journey.step, "entered")?;
        self.advance(canvas_id, canvas, None, braze_id, journey, None)
    }

    /// Advances a journey, performs its effects (User Updates applied here, in the pass's
    /// transaction, then the journey goes on with the new values) and saves it.
    fn advance(
        &mut self,
        canvas_id: &str,
        canvas: &CompiledCanvas,
        mut id: Option<i64>,
        braze_id: &str,
        mut journey: Journey,
        mut trigger: Option<&Trigger>,
    ) -> Result<(), EngineError> {
        for _ in 0..MAX_UPDATE_ROUNDS {
            let Some(profile) = self.tx.profile_by_braze_id(braze_id)? else {
                // The user was deleted: their journey ends.
                if let Some(id) = id {
                    self.tx.exit_journey(id, "user_deleted")?;
                }
                return Ok(());
            };
            let Advanced {
                effects,
                status,
                steps,
                entered,
            } = journey::advance(canvas, &mut journey, &profile, self.now, trigger.take());
            self.report.steps += steps;
            // Each step's arrivals, for the dashboard's graph (the first step's at entry).
            for step_id in &entered {
                self.tx.count_step(canvas_id, step_id, "entered")?;
            }
            let state = serde_json::to_string(&journey)
                .map_err(|e| EngineError::Corrupt(format!("journey state: {e}")))?;
            let exit_reason = match &status {
                Status::Exited(reason) => {
                    self.report.exits += 1;
                    Some(format!("{reason:?}"))
                }
                _ => None,
            };
            let write = JourneyWrite {
                state: &state,
                status: if exit_reason.is_some() {
                    JourneyStatus::Exited
                } else {
                    JourneyStatus::Active
                },
                wake_at: match &status {
                    Status::Waiting { until } => Some(*until),
                    _ => None,
                },
                exit_reason: exit_reason.as_deref(),
            };
            let saved = self.tx.write_journey(id, canvas_id, braze_id, &write)?;
            id = Some(saved);
            for effect in effects {
                self.perform(canvas_id, canvas, braze_id, &journey, effect)?;
            }
            if status != Status::AwaitingUpdate {
                return Ok(());
            }
        }
        tracing::warn!(
            canvas = canvas_id,
            braze_id,
            "journey kept updating; it waits for the next pass"
        );
        Ok(())
    }

    fn perform(
        &mut self,
        canvas_id: &str,
        canvas: &CompiledCanvas,
        braze_id: &str,
        journey: &Journey,
        effect: Effect,
    ) -> Result<(), EngineError> {
        match effect {
            Effect::Webhook {
                step_id,
                step_name,
                template,
            } => {
                let Some(profile) = self.tx.profile_by_braze_id(braze_id)? else {
                    return Ok(());
                };
                // A template archived or deleted after the Canvas was saved skips this send
                // (counted and logged) rather than stopping every Canvas's feed.
                let template_id = match self.tx.template_id_by_name(&template)? {
                    Some(id) => id,
                    None => {
                        tracing::warn!(canvas = canvas_id, step = %step_id, template = %template, "the step's webhook template no longer exists; send skipped");
                        self.tx.count_step(canvas_id, &step_id, "webhook_skipped")?;
                        return Ok(());
                    }
                };
                let job = NewJob {
                    template_id,
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
                    }
                    .to_json(),
                    not_before: None,
                    trace_context: leadwire_telemetry::current_trace_context(),
                };
                self.tx.enqueue_job(&job)?;
                self.report.sends += 1;
                self.tx.count_step(canvas_id, &step_id, "webhook")?;
            }
            Effect::UserUpdate {
                step_id,
                ops,
                track,
            } => {
                self.update_user(braze_id, &ops, track)?;
                self.report.updates += 1;
                self.tx.count_step(canvas_id, &step_id, "user_update")?;
            }
        }
        Ok(())
    }

    /// Applies a User Update step's attributes, and a JSON-editor update's events and purchases,
    /// through the store in this transaction.
    fn update_user(
        &mut self,
        braze_id: &str,
        ops: &[(String, UpdateOp)],
        track: Option<Json>,
    ) -> Result<(), EngineError> {
        let mut request = ParsedTrack::default();
        if !ops.is_empty() {
            request.attributes.push(AttributeObject {
                index: 0,
                identifier: Identifier::BrazeId(braze_id.to_owned()),
                update_existing_only: true,
                merge_objects: false,
                ops: ops
                    .iter()
                    .map(|(k, op)| {
                        (
                            k.clone(),
                            match op {
                                UpdateOp::Set(v) => AttrOp::Set(v.clone()),
                                UpdateOp::Remove => AttrOp::Remove,
                            },
                        )
                    })
                    .collect(),
            });
        }
        if let Some(Json::Object(mut body)) = track {
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
            body.remove("attributes");
            match parse_track(&Json::Object(body)) {
                Ok(parsed) => {
                    for e in &parsed.errors {
                        tracing::warn!(braze_id, error = %e.message, "canvas user update event rejected");
                    }
                    request.events = parsed.events;
                    request.purchases = parsed.purchases;
                }
                Err(e) => {
                    tracing::warn!(braze_id, error = %e, "canvas user update events rejected");
                }
            }
        }
        if request.attributes.is_empty()
            && request.events.is_empty()
            && request.purchases.is_empty()
        {
            return Ok(());
        }
        let result = self.tx.track(&request, ChangeSource::CanvasUserUpdate)?;
        for e in result.errors.iter().chain(&result.skipped) {
            tracing::warn!(braze_id, error = %e.message, "canvas user update rejected");
        }
        Ok(())
    }

    fn save_state(&mut self, id: i64, journey: &Journey) -> Result<(), EngineError> {
        let state = serde_json::to_string(journey)
            .map_err(|e| EngineError::Corrupt(format!("journey state: {e}")))?;
        self.tx.set_journey_state(id, &state)?;
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

fn decode_journey(id: i64, state: &str) -> Result<Journey, EngineError> {
    serde_json::from_str(state)
        .map_err(|e| EngineError::Corrupt(format!("journey {id} state is corrupt: {e}")))
}
