//! A Canvas as written in YAML or sent to the REST API, and the checks that make it a graph leadwire
//! can run: every `next` names a step, every step is reachable from the first, no cycle runs without
//! a wait, at most 200 steps. Errors name the step.
//!
//! Pure: this module must not know SQL, HTTP, the clock or how webhooks are delivered.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use leadwire_campaigns::campaign::Compiled as CompiledCampaign;
use leadwire_campaigns::{CampaignSpec, CampaignStatus, Filter, FilterSpec, TriggerSpec};
use leadwire_profiles::Trigger;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// Braze: at most 200 steps per Canvas.
pub const MAX_STEPS: usize = 200;
/// Braze: Audience Paths and Action Paths have up to 8 groups besides Everyone Else.
pub const MAX_GROUPS: usize = 8;
/// Braze: an Action Paths evaluation window is at most 31 days.
pub const MAX_WINDOW_SECONDS: u64 = 31 * 24 * 3600;
/// Braze: delays up to 2 years (extended delays).
pub const MAX_DELAY_SECONDS: u64 = 2 * 366 * 24 * 3600;
/// Braze: up to 10 context variables per step.
pub const MAX_CONTEXT_VARIABLES: usize = 10;

/// A Canvas's status; the same lifecycle as a campaign's.
pub type CanvasStatus = CampaignStatus;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CanvasSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub status: CanvasStatus,
    pub entry: EntrySpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitSpec>,
    /// The step users enter at; the first listed step when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_step: Option<String>,
    pub steps: Vec<StepSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntrySpec {
    /// Action-based triggers (any one enters), or a single `{type: api_triggered}`.
    pub triggers: Vec<TriggerSpec>,
    /// The target audience, checked before entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<FilterSpec>,
    /// Re-entry: absent means a user enters once; `0` lets them re-enter at once (lead scoring).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reentry_seconds: Option<u64>,
    /// "Limit entrance volume": for action-based and API-triggered Canvases Braze applies the
    /// limit per UTC hour; entries beyond it are dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entries_per_hour: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExitSpec {
    /// Exception events: a user who does one leaves when their current step finishes.
    #[serde(default)]
    pub events: Vec<TriggerSpec>,
    /// A user who matches this at a step boundary leaves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<FilterSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StepSpec {
    pub id: String,
    /// The step's display name (`{{campaign.${name}}}` in its messages); the id when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(flatten)]
    pub kind: StepKind,
}

impl StepSpec {
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// A step. `next: None` (or absent) means the user leaves the Canvas after the step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StepKind {
    AudiencePaths {
        groups: Vec<AudienceGroup>,
        #[serde(default)]
        everyone_else: Option<String>,
    },
    DecisionSplit {
        filter: FilterSpec,
        #[serde(default)]
        yes: Option<String>,
        #[serde(default)]
        no: Option<String>,
    },
    UserUpdate {
        /// Values to set; string values may use Liquid (rendered per user).
        #[serde(default)]
        attributes: Map<String, Json>,
        /// Increment (or, negative, decrement) numeric attributes.
        #[serde(default)]
        increments: Map<String, Json>,
        #[serde(default)]
        remove: Vec<String>,
        /// Simple arrays: values to add and to remove (as `/users/track`'s `add` / `remove`).
        #[serde(default)]
        arrays: Map<String, Json>,
        /// Braze's advanced JSON editor: Liquid rendering to `{"attributes": [{...}], "events":
        /// [...], "purchases": [...]}` without identifiers (leadwire adds the user's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        json: Option<String>,
        #[serde(default)]
        next: Option<String>,
    },
    /// A Message step on the webhook channel: a saved template by name, or an inline webhook
    /// (a template definition without a name, saved as [`inline_template_name`]).
    Webhook {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        template: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inline: Option<Json>,
        #[serde(default)]
        next: Option<String>,
    },
    Delay {
        #[serde(default)]
        seconds: Option<u64>,
        /// A calendar time (RFC 3339); a user arriving after it exits.
        #[serde(default)]
        until: Option<String>,
        #[serde(default)]
        next: Option<String>,
    },
    ActionPaths {
        #[serde(default = "default_window")]
        window_seconds: u64,
        #[serde(default)]
        ranked: bool,
        groups: Vec<ActionGroup>,
        #[serde(default)]
        everyone_else: Option<String>,
    },
    Context {
        variables: Vec<ContextVariable>,
        #[serde(default)]
        next: Option<String>,
    },
}

fn default_window() -> u64 {
    24 * 3600
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AudienceGroup {
    pub name: String,
    pub filter: FilterSpec,
    #[serde(default)]
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionGroup {
    pub name: String,
    pub trigger: TriggerSpec,
    #[serde(default)]
    pub next: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContextType {
    Boolean,
    Number,
    String,
    Array,
    Time,
    Object,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextVariable {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ContextType,
    /// Liquid, rendered when the user reaches the step.
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CanvasError {
    #[error("canvas name is empty")]
    NoName,
    #[error("canvas '{0}' has no steps")]
    NoSteps(String),
    #[error("canvas '{canvas}' has {count} steps; Braze allows at most {MAX_STEPS}")]
    TooManySteps { canvas: String, count: usize },
    #[error("canvas '{canvas}': {detail}")]
    Entry { canvas: String, detail: String },
    #[error("canvas '{canvas}', step '{step}': {detail}")]
    Step {
        canvas: String,
        step: String,
        detail: String,
    },
}

/// A trigger checked once, matched many times (the campaigns crate's matching rules).
#[derive(Debug, Clone)]
pub struct TriggerMatcher(CompiledCampaign);

impl TriggerMatcher {
    pub fn compile(trigger: &TriggerSpec) -> Result<TriggerMatcher, String> {
        let spec = CampaignSpec {
            name: "trigger".into(),
            description: String::new(),
            status: CampaignStatus::Active,
            trigger: trigger.clone(),
            template: "-".into(),
            audience: None,
            reeligibility_seconds: None,
            rate_limit_per_minute: None,
        };
        spec.compile()
            .map(TriggerMatcher)
            .map_err(|e| e.to_string())
    }

    pub fn matches(&self, trigger: &Trigger) -> bool {
        self.0.fired_by(trigger)
    }
}

/// A step with its filters and triggers compiled and its `next` names resolved to indexes.
#[derive(Debug, Clone)]
pub enum Step {
    AudiencePaths {
        groups: Vec<(Filter, Option<usize>)>,
        everyone_else: Option<usize>,
    },
    DecisionSplit {
        filter: Filter,
        yes: Option<usize>,
        no: Option<usize>,
    },
    UserUpdate {
        attributes: Vec<(
            String,
            Json,
            Option<std::sync::Arc<leadwire_liquid::Template>>,
        )>,
        increments: Vec<(String, f64)>,
        remove: Vec<String>,
        /// Attribute, values to add, values to remove.
        arrays: Vec<(String, Vec<Json>, Vec<Json>)>,
        json: Option<std::sync::Arc<leadwire_liquid::Template>>,
        next: Option<usize>,
    },
    Webhook {
        template: String,
        next: Option<usize>,
    },
    Delay {
        wait: DelayKind,
        next: Option<usize>,
    },
    ActionPaths {
        window_seconds: u64,
        ranked: bool,
        groups: Vec<(TriggerMatcher, Option<usize>)>,
        everyone_else: Option<usize>,
    },
    Context {
        variables: Vec<(
            String,
            ContextType,
            std::sync::Arc<leadwire_liquid::Template>,
        )>,
        next: Option<usize>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelayKind {
    Seconds(u64),
    Until(DateTime<Utc>),
}

impl Step {
    /// Steps that make a user wait: a cycle through one cannot spin within a pass.
    fn waits(&self) -> bool {
        matches!(self, Step::Delay { .. } | Step::ActionPaths { .. })
    }

    pub fn successors(&self) -> Vec<usize> {
        let mut out: Vec<Option<usize>> = match self {
            Step::AudiencePaths {
                groups,
                everyone_else,
            } => {
                let mut v: Vec<_> = groups.iter().map(|(_, n)| *n).collect();
                v.push(*everyone_else);
                v
            }
            Step::DecisionSplit { yes, no, .. } => vec![*yes, *no],
            Step::ActionPaths {
                groups,
                everyone_else,
                ..
            } => {
                let mut v: Vec<_> = groups.iter().map(|(_, n)| *n).collect();
                v.push(*everyone_else);
                v
            }
            Step::UserUpdate { next, .. }
            | Step::Webhook { next, .. }
            | Step::Delay { next, .. }
            | Step::Context { next, .. } => vec![*next],
        };
        out.dedup();
        out.into_iter().flatten().collect()
    }
}

/// A Canvas checked and compiled.
#[derive(Debug, Clone)]
pub struct CompiledCanvas {
    pub spec: CanvasSpec,
    pub steps: Vec<Step>,
    pub first: usize,
    pub index: HashMap<String, usize>,
    pub entry_triggers: Vec<TriggerMatcher>,
    pub api_triggered: bool,
    pub audience: Option<Filter>,
    pub exit_events: Vec<TriggerMatcher>,
    pub exit_filter: Option<Filter>,
}

impl CompiledCanvas {
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub fn step_spec(&self, i: usize) -> Option<&StepSpec> {
        self.spec.steps.get(i)
    }

    /// Whether this trigger enters users (action-based Canvases only).
    pub fn entered_by(&self, trigger: &Trigger) -> bool {
        self.entry_triggers.iter().any(|m| m.matches(trigger))
    }

    pub fn exit_event(&self, trigger: &Trigger) -> bool {
        self.exit_events.iter().any(|m| m.matches(trigger))
    }
}

impl CanvasSpec {
    pub fn compile(&self) -> Result<CompiledCanvas, CanvasError> {
        let canvas = self.name.clone();
        if canvas.trim().is_empty() {
            return Err(CanvasError::NoName);
        }
        if self.steps.is_empty() {
            return Err(CanvasError::NoSteps(canvas));
        }
        if self.steps.len() > MAX_STEPS {
            return Err(CanvasError::TooManySteps {
                canvas,
                count: self.steps.len(),
            });
        }
        let entry_err = |detail: String| CanvasError::Entry {
            canvas: canvas.clone(),
            detail,
        };
        let step_err = |step: &str, detail: String| CanvasError::Step {
            canvas: canvas.clone(),
            step: step.to_string(),
            detail,
        };
        let mut index = HashMap::new();
        for (i, s) in self.steps.iter().enumerate() {
            if s.id.trim().is_empty() {
                return Err(entry_err(format!("step {} has an empty id", i + 1)));
            }
            if index.insert(s.id.clone(), i).is_some() {
                return Err(step_err(&s.id, "two steps have this id".into()));
            }
        }
        // Entry.
        let api_triggered = self.entry.triggers.contains(&TriggerSpec::ApiTriggered);
        if self.entry.triggers.is_empty() {
            return Err(entry_err(
                "entry needs at least one trigger (or {type: api_triggered})".into(),
            ));
        }
        if api_triggered && self.entry.triggers.len() > 1 {
            return Err(entry_err(
                "an API-triggered Canvas has no other entry triggers".into(),
            ));
        }
        let mut entry_triggers = Vec::new();
        if !api_triggered {
            for t in &self.entry.triggers {
                entry_triggers.push(
                    TriggerMatcher::compile(t).map_err(|e| entry_err(format!("entry: {e}")))?,
                );
            }
        }
        let audience = self
            .entry
            .audience
            .as_ref()
            .map(FilterSpec::compile)
            .transpose()
            .map_err(|e| entry_err(format!("entry audience: {e}")))?;
        let mut exit_events = Vec::new();
        let mut exit_filter = None;
        if let Some(exit) = &self.exit {
            for t in &exit.events {
                if *t == TriggerSpec::ApiTriggered {
                    return Err(entry_err("api_triggered is not an exit event".into()));
                }
                exit_events
                    .push(TriggerMatcher::compile(t).map_err(|e| entry_err(format!("exit: {e}")))?);
            }
            exit_filter = exit
                .filter
                .as_ref()
                .map(FilterSpec::compile)
                .transpose()
                .map_err(|e| entry_err(format!("exit filter: {e}")))?;
        }
        // Steps.
        let mut steps = Vec::with_capacity(self.steps.len());
        for s in &self.steps {
            let id = s.id.as_str();
            let next = |n: &Option<String>| -> Result<Option<usize>, CanvasError> {
                match n {
                    None => Ok(None),
                    Some(name) => index.get(name).copied().map(Some).ok_or_else(|| {
                        step_err(id, format!("its next step '{name}' does not exist"))
                    }),
                }
            };
            let filter = |f: &FilterSpec| f.compile().map_err(|e| step_err(id, e.to_string()));
            let liquid = |src: &str| {
                leadwire_liquid::Template::parse(src)
                    .map(std::sync::Arc::new)
                    .map_err(|e| step_err(id, format!("Liquid: {e}")))
            };
            let step = match &s.kind {
                StepKind::AudiencePaths {
                    groups,
                    everyone_else,
                } => {
                    if groups.is_empty() || groups.len() > MAX_GROUPS {
                        return Err(step_err(
                            id,
                            format!(
                                "Audience Paths needs 1 to {MAX_GROUPS} groups besides Everyone Else"
                            ),
                        ));
                    }
                    Step::AudiencePaths {
                        groups: groups
                            .iter()
                            .map(|g| Ok((filter(&g.filter)?, next(&g.next)?)))
                            .collect::<Result<_, CanvasError>>()?,
                        everyone_else: next(everyone_else)?,
                    }
                }
                StepKind::DecisionSplit { filter: f, yes, no } => Step::DecisionSplit {
                    filter: filter(f)?,
                    yes: next(yes)?,
                    no: next(no)?,
                },
                StepKind::UserUpdate {
                    attributes,
                    increments,
                    remove,
                    arrays,
                    json,
                    next: n,
                } => {
                    if attributes.is_empty()
                        && increments.is_empty()
                        && remove.is_empty()
                        && arrays.is_empty()
                        && json.is_none()
                    {
                        return Err(step_err(id, "a User Update step changes nothing".into()));
                    }
                    let mut attrs = Vec::new();
                    for (k, v) in attributes {
                        let template = match v {
                            Json::String(src) if src.contains("{{") || src.contains("{%") => {
                                Some(liquid(src)?)
                            }
                            _ => None,
                        };
                        attrs.push((k.clone(), v.clone(), template));
                    }
                    let mut incs = Vec::new();
                    for (k, v) in increments {
                        let Some(by) = v.as_f64() else {
                            return Err(step_err(
                                id,
                                format!("increment of '{k}' must be a number, got {v}"),
                            ));
                        };
                        incs.push((k.clone(), by));
                    }
                    let mut edits = Vec::new();
                    for (k, v) in arrays {
                        let list = |key: &str| -> Result<Vec<Json>, CanvasError> {
                            match v.get(key) {
                                None | Some(Json::Null) => Ok(Vec::new()),
                                Some(Json::Array(items)) => Ok(items.clone()),
                                Some(other) => Err(step_err(
                                    id,
                                    format!("arrays.{k}.{key} must be a list, got {other}"),
                                )),
                            }
                        };
                        let unknown = v
                            .as_object()
                            .map(|o| o.keys().any(|key| key != "add" && key != "remove"));
                        if unknown != Some(false) {
                            return Err(step_err(
                                id,
                                format!("arrays.{k} takes only 'add' and 'remove' lists"),
                            ));
                        }
                        edits.push((k.clone(), list("add")?, list("remove")?));
                    }
                    Step::UserUpdate {
                        attributes: attrs,
                        increments: incs,
                        remove: remove.clone(),
                        arrays: edits,
                        json: match json {
                            Some(src) if src.len() > 65_536 => {
                                return Err(step_err(
                                    id,
                                    "the JSON editor holds at most 65,536 characters".into(),
                                ));
                            }
                            Some(src) => Some(liquid(src)?),
                            None => None,
                        },
                        next: next(n)?,
                    }
                }
                StepKind::Webhook {
                    template,
                    inline,
                    next: n,
                } => {
                    let template = match (template, inline) {
                        (Some(t), None) if !t.trim().is_empty() => t.clone(),
                        (None, Some(Json::Object(_))) => inline_template_name(&canvas, id),
                        (None, Some(_)) => {
                            return Err(step_err(
                                id,
                                "'inline' must be a webhook definition (url, method, body, headers)"
                                    .into(),
                            ));
                        }
                        _ => {
                            return Err(step_err(
                                id,
                                "a Webhook step needs exactly one of 'template' (a name) and 'inline'"
                                    .into(),
                            ));
                        }
                    };
                    Step::Webhook {
                        template,
                        next: next(n)?,
                    }
                }
                StepKind::Delay {
                    seconds,
                    until,
                    next: n,
                } => {
                    let wait = match (seconds, until) {
                        (Some(s), None) if *s <= MAX_DELAY_SECONDS => DelayKind::Seconds(*s),
                        (Some(s), None) => {
                            return Err(step_err(
                                id,
                                format!("a delay of {s} s is longer than Braze's 2 years"),
                            ));
                        }
                        (None, Some(t)) => DelayKind::Until(
                            leadwire_campaigns::filter::parse_date(t).ok_or_else(|| {
                                step_err(
                                    id,
                                    format!("'{t}' is not a time; use RFC 3339, e.g. 2026-05-28T10:00:00Z"),
                                )
                            })?,
                        ),
                        _ => {
                            return Err(step_err(
                                id,
                                "a Delay needs exactly one of 'seconds' and 'until'".into(),
                            ));
                        }
                    };
                    Step::Delay {
                        wait,
                        next: next(n)?,
                    }
                }
                StepKind::ActionPaths {
                    window_seconds,
                    ranked,
                    groups,
                    everyone_else,
                } => {
                    if groups.is_empty() || groups.len() > MAX_GROUPS {
                        return Err(step_err(
                            id,
                            format!(
                                "Action Paths needs 1 to {MAX_GROUPS} action groups besides Everyone Else"
                            ),
                        ));
                    }
                    if *window_seconds > MAX_WINDOW_SECONDS {
                        return Err(step_err(
                            id,
                            format!(
                                "the evaluation window of {window_seconds} s is longer than Braze's 31 days"
                            ),
                        ));
                    }
                    let mut compiled = Vec::new();
                    for g in groups {
                        if g.trigger == TriggerSpec::ApiTriggered {
                            return Err(step_err(
                                id,
                                format!("group '{}': api_triggered is not an action", g.name),
                            ));
                        }
                        let m = TriggerMatcher::compile(&g.trigger)
                            .map_err(|e| step_err(id, format!("group '{}': {e}", g.name)))?;
                        compiled.push((m, next(&g.next)?));
                    }
                    Step::ActionPaths {
                        window_seconds: *window_seconds,
                        ranked: *ranked,
                        groups: compiled,
                        everyone_else: next(everyone_else)?,
                    }
                }
                StepKind::Context { variables, next: n } => {
                    if variables.is_empty() || variables.len() > MAX_CONTEXT_VARIABLES {
                        return Err(step_err(
                            id,
                            format!("a Context step has 1 to {MAX_CONTEXT_VARIABLES} variables"),
                        ));
                    }
                    Step::Context {
                        variables: variables
                            .iter()
                            .map(|v| Ok((v.name.clone(), v.kind, liquid(&v.value)?)))
                            .collect::<Result<_, CanvasError>>()?,
                        next: next(n)?,
                    }
                }
            };
            steps.push(step);
        }
        let first = match &self.first_step {
            None => 0,
            Some(name) => index
                .get(name)
                .copied()
                .ok_or_else(|| entry_err(format!("first_step '{name}' does not name a step")))?,
        };
        // Reachability from the first step.
        let mut seen = HashSet::from([first]);
        let mut stack = vec![first];
        while let Some(i) = stack.pop() {
            for n in steps[i].successors() {
                if seen.insert(n) {
                    stack.push(n);
                }
            }
        }
        if let Some(unreachable) = (0..steps.len()).find(|i| !seen.contains(i)) {
            return Err(step_err(
                &self.steps[unreachable].id,
                format!(
                    "no path leads to this step from the first step '{}'",
                    self.steps[first].id
                ),
            ));
        }
        // Cycles that never wait: depth-first search over the edges out of non-waiting steps.
        if let Some(i) = cycle_without_wait(&steps) {
            return Err(step_err(
                &self.steps[i].id,
                "this step is on a cycle without a Delay or Action Paths step; users would loop forever".into(),
            ));
        }
        Ok(CompiledCanvas {
            spec: self.clone(),
            steps,
            first,
            index,
            entry_triggers,
            api_triggered,
            audience,
            exit_events,
            exit_filter,
        })
    }
}

/// The name an inline webhook's template is saved under.
pub fn inline_template_name(canvas: &str, step_id: &str) -> String {
    format!("Canvas '{canvas}' > step '{step_id}'")
}

fn cycle_without_wait(steps: &[Step]) -> Option<usize> {
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut mark = vec![0u8; steps.len()];
    for start in 0..steps.len() {
        if mark[start] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, Vec<usize>)> = vec![(start, edges(steps, start))];
        mark[start] = 1;
        while let Some((node, rest)) = stack.last_mut() {
            match rest.pop() {
                Some(n) if mark[n] == 1 => return Some(n),
                Some(n) if mark[n] == 0 => {
                    mark[n] = 1;
                    let e = edges(steps, n);
                    stack.push((n, e));
                }
                Some(_) => {}
                None => {
                    mark[*node] = 2;
                    stack.pop();
                }
            }
        }
    }
    None
}

fn edges(steps: &[Step], i: usize) -> Vec<usize> {
    if steps[i].waits() {
        Vec::new()
    } else {
        steps[i].successors()
    }
}
