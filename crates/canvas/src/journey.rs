//! One user's journey through a Canvas, as a pure state machine: given the compiled Canvas, where
//! the user is, their profile, the time and (optionally) a trigger they just raised, [`advance`]
//! moves them as far as they can go and says what must happen: webhooks to enqueue, user updates
//! to apply, and whether they now wait (until a time), wait for an update, or have left.
//!
//! Step semantics follow Braze (reference §6.2): Audience Paths take the first matching group,
//! Everyone Else last; a Decision Split is checked on arrival; a Message (webhook) step advances
//! the user once the message is handed over, so an `abort_message` also advances them; a Delay
//! waits from arrival at the step, and a calendar time already past makes the user exit; Action
//! Paths advance at once on an action when unranked, or hold everyone until the window ends and take
//! the best-ranked group when ranked; exit criteria apply at the next step boundary.
//!
//! Pure: no clock reads, no I/O. This module must not know SQL, HTTP or webhook delivery.

use chrono::{DateTime, Duration, Utc};
use leadwire_liquid::{Context, Outcome, Template};
use leadwire_profiles::track::MAX_ARRAY_ITEMS;
use leadwire_profiles::{Profile, STANDARD_ATTRIBUTES, Trigger};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

use crate::spec::{CompiledCanvas, ContextType, DelayKind, Step};

/// Bound on the steps one call takes (the graph check rules out cycles without a wait; this guards
/// against a Canvas edited under a running journey).
const MAX_STEPS_PER_CALL: usize = 1000;

/// A user's place in a Canvas; stored as JSON by the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journey {
    /// The current step's id.
    pub step: String,
    pub entered_at: DateTime<Utc>,
    pub step_entered_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<Wait>,
    /// `canvas_entry_properties`, persistent for the whole journey.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_properties: Option<Json>,
    /// Context variables set so far (`{{context.${name}}}`).
    #[serde(default)]
    pub context: Map<String, Json>,
    /// An exception event happened: the user leaves when the current step finishes.
    #[serde(default)]
    pub exit_requested: bool,
    /// `event_properties` of the action that took the user down an Action Paths group (Braze:
    /// usable in Message steps downstream of a group other than Everyone Else).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_properties: Option<Json>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Wait {
    Delay {
        until: DateTime<Utc>,
    },
    /// Action Paths: the window's end and, when ranked, the best group done so far.
    Actions {
        until: DateTime<Utc>,
        best: Option<usize>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum UpdateOp {
    Set(Json),
    Remove,
}

/// Something the engine must do for the journey.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Webhook {
        step_id: String,
        step_name: String,
        template: String,
    },
    /// Absolute values only: increments are already resolved against the profile, so applying the
    /// update twice has the effect of applying it once.
    UserUpdate {
        step_id: String,
        ops: Vec<(String, UpdateOp)>,
        /// Events and purchases from the JSON editor, `/users/track`-shaped, without identifiers.
        track: Option<Json>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// A step with no next step finished.
    Completed,
    /// An exception event or the exit filter.
    ExitCriteria,
    /// A Delay's calendar time had already passed on arrival.
    DelayPassed,
    /// The step the journey was at no longer exists (the Canvas was edited).
    StepRemoved,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    /// Waits at the current step until this time (or a trigger, for Action Paths).
    Waiting {
        until: DateTime<Utc>,
    },
    /// A User Update must be applied before the journey continues at the current step.
    AwaitingUpdate,
    Exited(ExitReason),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Advanced {
    pub effects: Vec<Effect>,
    pub status: Status,
    /// Steps the user moved into.
    pub steps: usize,
    /// Their ids, in order (a step entered twice is listed twice).
    pub entered: Vec<String>,
}

/// A new journey at the Canvas's first step.
pub fn enter(
    canvas: &CompiledCanvas,
    now: DateTime<Utc>,
    entry_properties: Option<Json>,
) -> Journey {
    Journey {
        step: canvas.spec.steps[canvas.first].id.clone(),
        entered_at: now,
        step_entered_at: now,
        wait: None,
        entry_properties,
        context: Map::new(),
        exit_requested: false,
        event_properties: None,
    }
}

/// Moves the journey as far as it can go. `trigger` is something the user just did; only a step
/// the user was already waiting at when the call began sees it (the trigger that entered a user
/// does not also complete the Action Paths they reach).
pub fn advance(
    canvas: &CompiledCanvas,
    journey: &mut Journey,
    profile: &Profile,
    now: DateTime<Utc>,
    trigger: Option<&Trigger>,
) -> Advanced {
    let mut trigger = trigger;
    let mut effects = Vec::new();
    let mut entered: Vec<String> = Vec::new();
    let done = |effects, status, entered: Vec<String>| Advanced {
        effects,
        status,
        steps: entered.len(),
        entered,
    };
    loop {
        if entered.len() > MAX_STEPS_PER_CALL {
            return done(effects, Status::Waiting { until: now }, entered);
        }
        let Some(i) = canvas.step_index(&journey.step) else {
            return done(effects, Status::Exited(ExitReason::StepRemoved), entered);
        };
        let step = &canvas.steps[i];
        // Where the user goes next; `None` in the outer option means "stay and wait".
        let next: Option<usize>;
        match (step, journey.wait.clone()) {
            (Step::Delay { next: n, .. }, Some(Wait::Delay { until })) => {
                if now < until {
                    return done(effects, Status::Waiting { until }, entered);
                }
                journey.wait = None;
                next = *n;
            }
            (
                Step::ActionPaths {
                    ranked,
                    groups,
                    everyone_else,
                    ..
                },
                Some(Wait::Actions { until, best }),
            ) => {
                let action = trigger.take();
                let hit = action.and_then(|t| groups.iter().position(|(m, _)| m.matches(t)));
                if !ranked && let Some(g) = hit {
                    journey.wait = None;
                    journey.event_properties = action.and_then(properties_of);
                    next = groups[g].1;
                } else {
                    if let Some(h) = hit
                        && best.is_none_or(|b| h < b)
                    {
                        journey.event_properties = action.and_then(properties_of);
                    }
                    let best = match (best, hit) {
                        (Some(b), Some(h)) => Some(b.min(h)),
                        (b, h) => b.or(h),
                    };
                    if now < until {
                        journey.wait = Some(Wait::Actions { until, best });
                        return done(effects, Status::Waiting { until }, entered);
                    }
                    journey.wait = None;
                    next = match best {
                        Some(b) if *ranked => groups[b].1,
                        _ => {
                            journey.event_properties = None;
                            *everyone_else
                        }
                    };
                }
            }
            (_, Some(_)) => {
                // The step changed kind under a waiting journey: start it afresh.
                journey.wait = None;
                continue;
            }
            (step, None) => match step {
                Step::AudiencePaths {
                    groups,
                    everyone_else,
                } => {
                    let view = filter_view(profile, journey);
                    next = groups
                        .iter()
                        .find(|(f, _)| f.matches_profile(&view))
                        .map_or(*everyone_else, |(_, n)| *n);
                }
                Step::DecisionSplit { filter, yes, no } => {
                    next = if filter.matches_profile(&filter_view(profile, journey)) {
                        *yes
                    } else {
                        *no
                    };
                }
                Step::Webhook { template, next: n } => {
                    let spec = &canvas.spec.steps[i];
                    effects.push(Effect::Webhook {
                        step_id: spec.id.clone(),
                        step_name: spec.display_name().to_string(),
                        template: template.clone(),
                    });
                    next = *n;
                }
                Step::UserUpdate {
                    attributes,
                    increments,
                    remove,
                    arrays,
                    json,
                    next: n,
                } => {
                    let ctx = liquid_context(canvas, journey, profile, now);
                    let resolved =
                        resolve_update(attributes, increments, remove, arrays, profile, &ctx)
                            .and_then(|ops| match json {
                                None => Some((ops, None)),
                                Some(t) => resolve_json(t, &ctx, profile, ops),
                            });
                    if let Some((ops, track)) = resolved {
                        effects.push(Effect::UserUpdate {
                            step_id: canvas.spec.steps[i].id.clone(),
                            ops,
                            track,
                        });
                        if let Some(status) = boundary(canvas, journey, *n, profile, now) {
                            return done(effects, status, entered);
                        }
                        entered.push(journey.step.clone());
                        // Later steps must see the new values: stop until the update is applied.
                        return done(effects, Status::AwaitingUpdate, entered);
                    }
                    // abort_message: nothing to update; the user advances.
                    next = *n;
                }
                Step::Delay { wait, .. } => {
                    let until = match wait {
                        DelayKind::Seconds(s) => {
                            journey.step_entered_at + Duration::seconds(*s as i64)
                        }
                        DelayKind::Until(t) if *t < journey.step_entered_at => {
                            return done(effects, Status::Exited(ExitReason::DelayPassed), entered);
                        }
                        DelayKind::Until(t) => *t,
                    };
                    journey.wait = Some(Wait::Delay { until });
                    continue;
                }
                Step::ActionPaths { window_seconds, .. } => {
                    journey.wait = Some(Wait::Actions {
                        until: journey.step_entered_at + Duration::seconds(*window_seconds as i64),
                        best: None,
                    });
                    trigger = None;
                    continue;
                }
                Step::Context { variables, next: n } => {
                    for (name, kind, template) in variables {
                        let ctx = liquid_context(canvas, journey, profile, now);
                        let value =
                            render(template, &ctx).map_or(Json::Null, |text| convert(*kind, &text));
                        journey.context.insert(name.clone(), value);
                    }
                    next = *n;
                }
            },
        }
        if let Some(status) = boundary(canvas, journey, next, profile, now) {
            return done(effects, status, entered);
        }
        entered.push(journey.step.clone());
    }
}

/// What Audience Paths and Decision Splits filter on: the profile, plus the journey's Context
/// variables as `context.${name}` (Braze allows Context-variable filters there). A custom
/// attribute named `context` is shadowed while the journey has Context variables.
fn filter_view<'p>(profile: &'p Profile, journey: &Journey) -> std::borrow::Cow<'p, Profile> {
    if journey.context.is_empty() {
        return std::borrow::Cow::Borrowed(profile);
    }
    let mut view = profile.clone();
    view.custom
        .insert("context".into(), Json::Object(journey.context.clone()));
    std::borrow::Cow::Owned(view)
}

/// The properties of an event or purchase, as `event_properties` / `canvas_entry_properties`.
pub fn properties_of(trigger: &Trigger) -> Option<Json> {
    match trigger {
        Trigger::CustomEvent { properties, .. } | Trigger::Purchase { properties, .. } => {
            Some(Json::Object(properties.clone()))
        }
        _ => None,
    }
}

/// Leaving a step: exit criteria apply here; otherwise the user moves into `next`.
fn boundary(
    canvas: &CompiledCanvas,
    journey: &mut Journey,
    next: Option<usize>,
    profile: &Profile,
    now: DateTime<Utc>,
) -> Option<Status> {
    if journey.exit_requested
        || canvas
            .exit_filter
            .as_ref()
            .is_some_and(|f| f.matches_profile(profile))
    {
        return Some(Status::Exited(ExitReason::ExitCriteria));
    }
    let Some(n) = next else {
        return Some(Status::Exited(ExitReason::Completed));
    };
    journey.step = canvas.spec.steps[n].id.clone();
    journey.step_entered_at = now;
    journey.wait = None;
    None
}

/// Braze's render context for Liquid inside the Canvas.
pub fn liquid_context(
    canvas: &CompiledCanvas,
    journey: &Journey,
    profile: &Profile,
    now: DateTime<Utc>,
) -> Context {
    let mut data = profile.liquid_context();
    if let Json::Object(m) = &mut data {
        m.insert(
            "canvas_entry_properties".into(),
            journey
                .entry_properties
                .clone()
                .unwrap_or_else(|| json!({})),
        );
        m.insert("context".into(), Json::Object(journey.context.clone()));
        m.insert("canvas".into(), json!({"name": canvas.spec.name}));
    }
    Context::new().with_braze(&data).with_now(now)
}

fn render(template: &Template, ctx: &Context) -> Option<String> {
    match template.render(ctx) {
        Ok(Outcome::Rendered(s)) => Some(s),
        _ => None,
    }
}

fn convert(kind: ContextType, text: &str) -> Json {
    let t = text.trim();
    match kind {
        ContextType::String => Json::String(text.to_string()),
        ContextType::Number => t
            .parse::<i64>()
            .map(Json::from)
            .or_else(|_| t.parse::<f64>().map(Json::from))
            .unwrap_or(Json::Null),
        ContextType::Boolean => match t {
            "true" => Json::Bool(true),
            "false" => Json::Bool(false),
            _ => Json::Null,
        },
        ContextType::Time => leadwire_campaigns::filter::parse_date(t)
            .map_or(Json::Null, |d| Json::String(d.to_rfc3339())),
        ContextType::Array | ContextType::Object => serde_json::from_str(t).unwrap_or(Json::Null),
    }
}

/// The update as absolute values: Liquid rendered, increments added to the profile's current value.
/// `None` when a Liquid value aborted (Braze's abort_message cancels the update).
fn resolve_update(
    attributes: &[(String, Json, Option<std::sync::Arc<Template>>)],
    increments: &[(String, f64)],
    remove: &[String],
    arrays: &[(String, Vec<Json>, Vec<Json>)],
    profile: &Profile,
    ctx: &Context,
) -> Option<Vec<(String, UpdateOp)>> {
    let mut ops = Vec::new();
    for (name, literal, template) in attributes {
        let value = match template {
            Some(t) => match t.render(ctx) {
                Ok(Outcome::Rendered(s)) => Json::String(s),
                Ok(Outcome::Aborted { .. } | Outcome::TokenFailed(_)) => return None,
                Err(_) => Json::Null,
            },
            None => literal.clone(),
        };
        ops.push((
            name.clone(),
            if value.is_null() {
                UpdateOp::Remove
            } else {
                UpdateOp::Set(value)
            },
        ));
    }
    for (name, by) in increments {
        ops.push((
            name.clone(),
            UpdateOp::Set(add_number(attribute(profile, name), *by)),
        ));
    }
    for name in remove {
        ops.push((name.clone(), UpdateOp::Remove));
    }
    // As `/users/track` edits a simple array: remove, then add (moving a present value to the
    // end), keeping the newest values up to Braze's cap.
    for (name, add, del) in arrays {
        ops.push((
            name.clone(),
            UpdateOp::Set(edit_array(attribute(profile, name), add, del)),
        ));
    }
    Some(ops)
}

type Ops = Vec<(String, UpdateOp)>;

/// The JSON editor: attributes become absolute operations like the other fields (an `inc`
/// resolved against the profile, array `add` / `remove` applied), events and purchases are kept
/// for the store. `None` when it aborted or did not render JSON (nothing is updated).
fn resolve_json(
    template: &Template,
    ctx: &Context,
    profile: &Profile,
    mut ops: Vec<(String, UpdateOp)>,
) -> Option<(Ops, Option<Json>)> {
    let text = render(template, ctx)?;
    let Json::Object(body) = serde_json::from_str::<Json>(&text).ok()? else {
        return None;
    };
    // Later objects see earlier ones' values.
    let mut view = profile.clone();
    if let Some(Json::Array(objects)) = body.get("attributes") {
        for object in objects {
            let Json::Object(fields) = object else {
                continue;
            };
            let mut these = Vec::new();
            for (name, value) in fields {
                if matches!(
                    name.as_str(),
                    "external_id" | "braze_id" | "user_alias" | "_update_existing_only"
                ) {
                    continue;
                }
                let current = attribute(&view, name);
                let op = match value {
                    Json::Null => UpdateOp::Remove,
                    Json::Object(o)
                        if o.len() == 1 && o.get("inc").is_some_and(Json::is_number) =>
                    {
                        let by = o.get("inc").and_then(Json::as_f64).unwrap_or(0.0);
                        UpdateOp::Set(add_number(current, by))
                    }
                    Json::Object(o)
                        if !o.is_empty() && o.keys().all(|k| k == "add" || k == "remove") =>
                    {
                        let list = |k: &str| match o.get(k) {
                            Some(Json::Array(a)) => a.clone(),
                            _ => Vec::new(),
                        };
                        UpdateOp::Set(edit_array(current, &list("add"), &list("remove")))
                    }
                    other => UpdateOp::Set(other.clone()),
                };
                these.push((name.clone(), op));
            }
            overlay(&mut view, &these);
            ops.extend(these);
        }
    }
    let mut track = serde_json::Map::new();
    for key in ["events", "purchases"] {
        if let Some(Json::Array(items)) = body.get(key)
            && !items.is_empty()
        {
            track.insert(key.to_string(), Json::Array(items.clone()));
        }
    }
    Some((ops, (!track.is_empty()).then_some(Json::Object(track))))
}

fn add_number(current: Option<&Json>, by: f64) -> Json {
    let sum = current.and_then(Json::as_f64).unwrap_or(0.0) + by;
    let integral = current.is_none_or(|c| c.is_i64() || c.is_u64()) && by.fract() == 0.0;
    if integral && sum.abs() < 9.0e15 {
        Json::from(sum as i64)
    } else {
        Json::from(sum)
    }
}

fn edit_array(current: Option<&Json>, add: &[Json], del: &[Json]) -> Json {
    let mut items = match current {
        Some(Json::Array(a)) => a.clone(),
        None | Some(Json::Null) => Vec::new(),
        Some(other) => vec![other.clone()],
    };
    items.retain(|i| !del.contains(i));
    for a in add {
        items.retain(|i| i != a);
        items.push(a.clone());
    }
    let drop = items.len().saturating_sub(MAX_ARRAY_ITEMS);
    items.drain(..drop);
    Json::Array(items)
}

fn attribute<'p>(profile: &'p Profile, name: &str) -> Option<&'p Json> {
    if STANDARD_ATTRIBUTES.contains(&name) {
        profile.standard.get(name)
    } else {
        profile.custom.get(name)
    }
}

/// Applies an update's operations to an in-memory profile, so that journeys evaluated later in the
/// same pass (or before the update reaches the store) see the new values.
pub fn overlay(profile: &mut Profile, ops: &[(String, UpdateOp)]) {
    for (name, op) in ops {
        let map = if STANDARD_ATTRIBUTES.contains(&name.as_str()) {
            &mut profile.standard
        } else {
            &mut profile.custom
        };
        match op {
            UpdateOp::Set(v) => {
                map.insert(name.clone(), v.clone());
            }
            UpdateOp::Remove => {
                map.remove(name);
            }
        }
    }
}
