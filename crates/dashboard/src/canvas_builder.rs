//! The Canvas builder: entry (trigger, re-entry), then the steps, each with the fields of its
//! type (Audience Paths: a group's filter and where it and everyone else go; Decision Split: a
//! filter, yes and no; User Update: an attribute and its value; Webhook: a template; Delay:
//! seconds; anything else, or a step the simple fields cannot hold, as the step's JSON). Saved
//! through the Canvas engine as `/canvas/create` and `/canvas/update` do, with the same checks
//! (every `next` names a step, no cycle without a wait…), whose messages name the step.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use leadwire_canvas::{CanvasEngine, CanvasRecord, CanvasSpec, CanvasStatus};
use leadwire_engine::EngineError;
use maud::{Markup, html};
use serde_json::{Map, Value as Json, json};

use crate::i18n::Tr;
use crate::{Dashboard, DashboardError, FormData, Permission, Posted, Signed, page};

pub(crate) fn routes() -> Router<Dashboard> {
    Router::new()
        .route("/dashboard/canvases/new", get(new_page).post(create))
        .route("/dashboard/canvases/{id}/edit", get(edit_page).post(update))
}

fn engine(d: &Dashboard) -> Result<&Arc<CanvasEngine>, DashboardError> {
    d.canvases
        .as_ref()
        .ok_or(DashboardError::Unavailable("Canvases"))
}

/// The step types the builder has fields for, and `json` for any step as its JSON.
pub(crate) const STEP_TYPES: [(&str, &str); 6] = [
    ("audience_paths", "step-audience-paths"),
    ("decision_split", "step-decision-split"),
    ("user_update", "step-user-update"),
    ("webhook", "step-webhook"),
    ("delay", "step-delay"),
    ("json", "builder-step-json"),
];

/// One step as the form holds it.
#[derive(Debug, Clone, Default, PartialEq)]
struct StepForm {
    id: String,
    name: String,
    kind: String,
    /// Audience Paths: the group's name.
    group: String,
    /// Audience Paths' group filter, or Decision Split's filter (JSON).
    filter: String,
    /// Where the step (or its group, or "yes") leads.
    next: String,
    /// Where everyone else (or "no") goes.
    other: String,
    attribute: String,
    value: String,
    template: String,
    seconds: String,
    /// The step's fields as JSON (type `json`).
    json: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct CanvasForm {
    name: String,
    description: String,
    trigger: String,
    trigger_name: String,
    also_email_added: bool,
    reentry_seconds: String,
    steps: Vec<StepForm>,
}

fn text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

fn opt(v: Option<&Json>) -> String {
    v.map(text).unwrap_or_default()
}

impl StepForm {
    /// The step's fields in the simple form when they fit it, else as JSON.
    fn of(step: &Json) -> StepForm {
        let id = opt(step.get("id"));
        let name = opt(step.get("name"));
        let kind = opt(step.get("type"));
        let mut form = StepForm {
            id,
            name,
            kind: kind.clone(),
            ..StepForm::default()
        };
        let pretty = |v: Option<&Json>| {
            v.and_then(|v| serde_json::to_string_pretty(v).ok())
                .unwrap_or_default()
        };
        let fits = match kind.as_str() {
            "audience_paths" => match step.get("groups").and_then(Json::as_array) {
                Some(groups) if groups.len() == 1 => {
                    form.group = opt(groups[0].get("name"));
                    form.filter = pretty(groups[0].get("filter"));
                    form.next = opt(groups[0].get("next"));
                    form.other = opt(step.get("everyone_else"));
                    true
                }
                _ => false,
            },
            "decision_split" => {
                form.filter = pretty(step.get("filter"));
                form.next = opt(step.get("yes"));
                form.other = opt(step.get("no"));
                true
            }
            "user_update" => {
                let attributes = step.get("attributes").and_then(Json::as_object);
                let simple = attributes.is_some_and(|a| a.len() == 1)
                    && ["increments", "arrays", "remove", "json"].iter().all(|k| {
                        step.get(*k).is_none_or(|v| {
                            v.is_null()
                                || v.as_object().is_some_and(Map::is_empty)
                                || v.as_array().is_some_and(Vec::is_empty)
                        })
                    });
                if let (true, Some((k, v))) = (simple, attributes.and_then(|a| a.iter().next())) {
                    form.attribute = k.clone();
                    form.value = text(v);
                    form.next = opt(step.get("next"));
                }
                simple
            }
            "webhook" if step.get("inline").is_none_or(Json::is_null) => {
                form.template = opt(step.get("template"));
                form.next = opt(step.get("next"));
                true
            }
            "delay" if step.get("until").is_none_or(Json::is_null) => {
                form.seconds = opt(step.get("seconds"));
                form.next = opt(step.get("next"));
                true
            }
            _ => false,
        };
        if !fits {
            let mut rest = step.as_object().cloned().unwrap_or_default();
            rest.remove("id");
            rest.remove("name");
            form.kind = "json".into();
            form.json = serde_json::to_string_pretty(&Json::Object(rest)).unwrap_or_default();
        }
        form
    }

    /// The step as the spec writes it, or the problem (a message id and detail).
    fn to_json(&self) -> Result<Json, String> {
        let or_null = |s: &str| {
            if s.trim().is_empty() {
                Json::Null
            } else {
                json!(s.trim())
            }
        };
        let filter = || {
            serde_json::from_str::<Json>(&self.filter)
                .map_err(|e| format!("builder-bad-json|{}: {e}", self.id))
        };
        let mut step = match self.kind.as_str() {
            "audience_paths" => json!({
                "type": "audience_paths",
                "groups": [{"name": self.group, "filter": filter()?, "next": or_null(&self.next)}],
                "everyone_else": or_null(&self.other),
            }),
            "decision_split" => json!({
                "type": "decision_split",
                "filter": filter()?,
                "yes": or_null(&self.next),
                "no": or_null(&self.other),
            }),
            "user_update" => {
                // A JSON literal (60, true, "x"), else the text itself (Liquid allowed).
                let value =
                    serde_json::from_str::<Json>(&self.value).unwrap_or_else(|_| json!(self.value));
                json!({"type": "user_update", "attributes": {self.attribute.trim(): value}, "next": or_null(&self.next)})
            }
            "webhook" => {
                json!({"type": "webhook", "template": self.template, "next": or_null(&self.next)})
            }
            "delay" => {
                let seconds: u64 = self
                    .seconds
                    .trim()
                    .parse()
                    .map_err(|_| format!("builder-bad-seconds|{}", self.id))?;
                json!({"type": "delay", "seconds": seconds, "next": or_null(&self.next)})
            }
            _ => serde_json::from_str::<Json>(&self.json)
                .ok()
                .filter(Json::is_object)
                .ok_or_else(|| format!("builder-bad-json|{}", self.id))?,
        };
        step["id"] = json!(self.id);
        if !self.name.trim().is_empty() {
            step["name"] = json!(self.name.trim());
        }
        Ok(step)
    }
}

impl CanvasForm {
    fn of(spec: &CanvasSpec) -> CanvasForm {
        let json = serde_json::to_value(spec).unwrap_or(Json::Null);
        let triggers = json["entry"]["triggers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let main = triggers
            .iter()
            .find(|t| t["type"] != "email_added")
            .or(triggers.first());
        CanvasForm {
            name: spec.name.clone(),
            description: spec.description.clone(),
            trigger: main.map(|t| opt(t.get("type"))).unwrap_or_default(),
            trigger_name: main
                .map(|t| opt(t.get("attribute").or(t.get("name"))))
                .unwrap_or_default(),
            also_email_added: triggers.len() > 1
                && triggers.iter().any(|t| t["type"] == "email_added"),
            reentry_seconds: opt(json["entry"].get("reentry_seconds")),
            steps: json["steps"]
                .as_array()
                .map(|s| s.iter().map(StepForm::of).collect())
                .unwrap_or_default(),
        }
    }

    fn parse(form: &FormData) -> CanvasForm {
        let count: usize = form.text("step_count").parse().unwrap_or(0).min(200);
        let field = |i: usize, k: &str| form.text(&format!("step_{i}_{k}")).to_owned();
        let mut steps: Vec<StepForm> = (0..count)
            .map(|i| StepForm {
                id: field(i, "id").trim().to_owned(),
                name: field(i, "name"),
                kind: field(i, "type"),
                group: field(i, "group"),
                filter: field(i, "filter"),
                next: field(i, "next"),
                other: field(i, "other"),
                attribute: field(i, "attribute"),
                value: field(i, "value"),
                template: field(i, "template"),
                seconds: field(i, "seconds"),
                json: field(i, "json"),
            })
            .filter(|s| !s.id.is_empty())
            .collect();
        if form.text("action") == "add-step" {
            steps.push(StepForm {
                kind: "user_update".into(),
                ..StepForm::default()
            });
        }
        CanvasForm {
            name: form.text("name").trim().to_owned(),
            description: form.text("description").to_owned(),
            trigger: form.text("trigger").to_owned(),
            trigger_name: form.text("trigger_name").trim().to_owned(),
            also_email_added: form.get("also_email_added").is_some(),
            reentry_seconds: form.text("reentry_seconds").trim().to_owned(),
            steps,
        }
    }

    /// The spec `/canvas/create` takes, or the problem (a message id, `|` detail).
    fn spec(&self, status: CanvasStatus) -> Result<CanvasSpec, String> {
        let mut triggers = vec![match self.trigger.as_str() {
            "email_added" => json!({"type": "email_added"}),
            "custom_event" => json!({"type": "custom_event", "name": self.trigger_name}),
            "api_triggered" => json!({"type": "api_triggered"}),
            _ => json!({"type": "attribute_changed", "attribute": self.trigger_name}),
        }];
        if self.also_email_added && self.trigger != "email_added" {
            triggers.push(json!({"type": "email_added"}));
        }
        let mut entry = json!({"triggers": triggers});
        if !self.reentry_seconds.is_empty() {
            let s: u64 = self
                .reentry_seconds
                .parse()
                .map_err(|_| "builder-bad-reentry".to_owned())?;
            entry["reentry_seconds"] = json!(s);
        }
        let steps = self
            .steps
            .iter()
            .map(StepForm::to_json)
            .collect::<Result<Vec<_>, _>>()?;
        let spec = json!({
            "name": self.name,
            "description": self.description,
            "status": status,
            "entry": entry,
            "steps": steps,
        });
        serde_json::from_value(spec).map_err(|e| format!("campaign-bad-spec|{e}"))
    }
}

async fn new_page(State(d): State<Dashboard>, signed: Signed) -> Result<Response, DashboardError> {
    signed.require(Permission::CanvasWrite)?;
    let tr = d.tr(signed.lang());
    let form = CanvasForm {
        trigger: "attribute_changed".into(),
        steps: vec![StepForm {
            kind: "audience_paths".into(),
            ..StepForm::default()
        }],
        ..CanvasForm::default()
    };
    let templates = page::template_names(&d).await?;
    Ok(builder(tr, &signed, None, &form, &templates, &[]).into_response())
}

async fn edit_page(
    State(d): State<Dashboard>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, DashboardError> {
    signed.require(Permission::CanvasWrite)?;
    let tr = d.tr(signed.lang());
    let record = engine(&d)?.canvas(&id).await?;
    let templates = page::template_names(&d).await?;
    Ok(builder(
        tr,
        &signed,
        Some(&record),
        &CanvasForm::of(&record.spec),
        &templates,
        &[],
    )
    .into_response())
}

async fn create(State(d): State<Dashboard>, posted: Posted) -> Result<Response, DashboardError> {
    save(d, posted, None).await
}

async fn update(
    State(d): State<Dashboard>,
    Path(id): Path<String>,
    posted: Posted,
) -> Result<Response, DashboardError> {
    save(d, posted, Some(id)).await
}

async fn save(
    d: Dashboard,
    posted: Posted,
    id: Option<String>,
) -> Result<Response, DashboardError> {
    let Posted { signed, form } = posted;
    signed.require(Permission::CanvasWrite)?;
    let tr = d.tr(signed.lang());
    let engine = engine(&d)?.clone();
    let record = match &id {
        Some(id) => Some(engine.canvas(id).await?),
        None => None,
    };
    let mut typed = CanvasForm::parse(&form);
    if let Some(r) = &record {
        typed.name = r.spec.name.clone();
    }
    let templates = page::template_names(&d).await?;
    let show = |problems: Vec<String>| {
        builder(tr, &signed, record.as_ref(), &typed, &templates, &problems).into_response()
    };
    // "Add a step" and "Show the fields of the chosen types" only show the form again.
    if form.text("action") != "save" {
        return Ok(show(Vec::new()));
    }
    let status = record
        .as_ref()
        .map_or(CanvasStatus::Draft, |r| r.spec.status);
    let spec = match typed.spec(status) {
        Ok(spec) => spec,
        Err(problem) => return Ok(show(vec![page::problem_text(tr, &problem)])),
    };
    if record.is_none()
        && engine
            .canvases()
            .await?
            .iter()
            .any(|c| c.spec.name == spec.name)
    {
        return Ok(show(vec![
            tr.ta("builder-name-taken", &[("name", spec.name.clone().into())]),
        ]));
    }
    let saved = match &d.webhooks {
        Some(w) => engine.save_canvas_with_webhooks(spec, w).await,
        None => engine.save_canvas(spec).await,
    };
    match saved {
        Ok(r) => Ok(Redirect::to(&format!("/dashboard/canvases/{}", r.id)).into_response()),
        Err(EngineError::Invalid(message)) => Ok(show(vec![message])),
        Err(e) => Err(e.into()),
    }
}

fn step_fields(tr: Tr<'_>, i: usize, s: &StepForm, templates: &[String]) -> Markup {
    let f = |k: &str| format!("step_{i}_{k}");
    let id = |k: &str| format!("step-{i}-{k}");
    html! {
        @match s.kind.as_str() {
            "audience_paths" => {
                label for=(id("group")) { (tr.t("builder-group-name")) }
                input id=(id("group")) name=(f("group")) type="text" value=(s.group);
                label for=(id("filter")) { (tr.t("builder-filter")) }
                textarea id=(id("filter")) name=(f("filter")) rows="4" spellcheck="false" { (s.filter) }
                label for=(id("next")) { (tr.t("builder-group-next")) }
                input id=(id("next")) name=(f("next")) type="text" value=(s.next);
                label for=(id("other")) { (tr.t("builder-everyone-else")) }
                input id=(id("other")) name=(f("other")) type="text" value=(s.other);
            }
            "decision_split" => {
                label for=(id("filter")) { (tr.t("builder-filter")) }
                textarea id=(id("filter")) name=(f("filter")) rows="4" spellcheck="false" { (s.filter) }
                label for=(id("next")) { (tr.t("builder-yes")) }
                input id=(id("next")) name=(f("next")) type="text" value=(s.next);
                label for=(id("other")) { (tr.t("builder-no")) }
                input id=(id("other")) name=(f("other")) type="text" value=(s.other);
            }
            "user_update" => {
                label for=(id("attribute")) { (tr.t("compose-attribute")) }
                input id=(id("attribute")) name=(f("attribute")) type="text" value=(s.attribute);
                label for=(id("value")) { (tr.t("compose-value")) }
                input id=(id("value")) name=(f("value")) type="text" value=(s.value);
                label for=(id("next")) { (tr.t("builder-next")) }
                input id=(id("next")) name=(f("next")) type="text" value=(s.next);
            }
            "webhook" => {
                label for=(id("template")) { (tr.t("column-template")) }
                select id=(id("template")) name=(f("template")) {
                    @for t in templates { option value=(t) selected[s.template == *t] { (t) } }
                }
                label for=(id("next")) { (tr.t("builder-next")) }
                input id=(id("next")) name=(f("next")) type="text" value=(s.next);
            }
            "delay" => {
                label for=(id("seconds")) { (tr.t("builder-seconds")) }
                input id=(id("seconds")) name=(f("seconds")) type="text" inputmode="numeric" value=(s.seconds);
                label for=(id("next")) { (tr.t("builder-next")) }
                input id=(id("next")) name=(f("next")) type="text" value=(s.next);
            }
            _ => {
                label for=(id("json")) { (tr.t("builder-step-json")) }
                textarea id=(id("json")) name=(f("json")) rows="6" spellcheck="false" { (s.json) }
            }
        }
    }
}

fn builder(
    tr: Tr<'_>,
    signed: &Signed,
    record: Option<&CanvasRecord>,
    form: &CanvasForm,
    templates: &[String],
    problems: &[String],
) -> axum::response::Html<String> {
    let (title, action) = match record {
        Some(r) => (
            tr.ta(
                "builder-title-edit",
                &[("name", r.spec.name.clone().into())],
            ),
            format!("/dashboard/canvases/{}/edit", r.id),
        ),
        None => (
            tr.t("builder-title-new"),
            "/dashboard/canvases/new".to_owned(),
        ),
    };
    let body = html! {
        h1 { (title) }
        @if !problems.is_empty() {
            div.error-summary role="alert" id="problems" {
                h2 { (tr.ta("compose-problems", &[("count", problems.len().into())])) }
                ul { @for p in problems { li { (p) } } }
            }
        }
        form.compose method="post" action=(action) novalidate {
            (page::csrf(signed))
            // Enter in a field saves.
            button.visually-hidden type="submit" name="action" value="save" tabindex="-1" aria-hidden="true" { (tr.t("builder-save")) }
            input type="hidden" name="step_count" value=(form.steps.len());
            fieldset {
                legend { (tr.t("campaign-section-basics")) }
                label for="name" { (tr.t("column-name")) }
                @if record.is_some() {
                    input id="name" name="name" type="text" value=(form.name) readonly;
                } @else {
                    input id="name" name="name" type="text" value=(form.name) required;
                }
                label for="description" { (tr.t("compose-description")) }
                input id="description" name="description" type="text" value=(form.description);
            }
            fieldset {
                legend { (tr.t("builder-entry")) }
                label for="trigger" { (tr.t("campaign-trigger-kind")) }
                select id="trigger" name="trigger" {
                    @for (value, id) in [("attribute_changed", "trigger-attribute-changed"), ("email_added", "trigger-email-added"), ("custom_event", "trigger-custom-event"), ("api_triggered", "trigger-api-triggered")] {
                        option value=(value) selected[form.trigger == value] { (tr.t(id)) }
                    }
                }
                label for="trigger-name" { (tr.t("campaign-trigger-name")) }
                input id="trigger-name" name="trigger_name" type="text" value=(form.trigger_name);
                label.check { input type="checkbox" name="also_email_added" value="1" checked[form.also_email_added]; " " (tr.t("builder-also-email")) }
                label for="reentry" { (tr.t("builder-reentry")) }
                input id="reentry" name="reentry_seconds" type="text" inputmode="numeric" value=(form.reentry_seconds) aria-describedby="reentry-help";
                p.help id="reentry-help" { (tr.t("builder-reentry-help")) }
            }
            @for (i, s) in form.steps.iter().enumerate() {
                fieldset.step id={ "step-" (i) } {
                    legend { (tr.ta("builder-step-n", &[("n", (i + 1).into())])) }
                    label for={ "step-" (i) "-id" } { (tr.t("builder-step-id")) }
                    input id={ "step-" (i) "-id" } name={ "step_" (i) "_id" } type="text" value=(s.id) aria-describedby="step-id-help";
                    label for={ "step-" (i) "-name" } { (tr.t("column-name")) }
                    input id={ "step-" (i) "-name" } name={ "step_" (i) "_name" } type="text" value=(s.name);
                    label for={ "step-" (i) "-type" } { (tr.t("column-type")) }
                    select id={ "step-" (i) "-type" } name={ "step_" (i) "_type" } {
                        @for (value, id) in STEP_TYPES {
                            option value=(value) selected[s.kind == value] { (tr.t(id)) }
                        }
                    }
                    (step_fields(tr, i, s, templates))
                }
            }
            p.help id="step-id-help" { (tr.t("builder-step-help")) }
            p.actions {
                button type="submit" name="action" value="refresh" { (tr.t("builder-refresh")) }
                button type="submit" name="action" value="add-step" { (tr.t("builder-add-step")) }
                button.primary type="submit" name="action" value="save" { (tr.t("builder-save")) }
            }
        }
    };
    page::document(tr, Some(signed), &title, "canvases", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead_scoring() -> CanvasSpec {
        serde_json::from_value(json!({
            "name": "Lead Scoring Canvas",
            "entry": {"triggers": [{"type": "attribute_changed", "attribute": "lead_score"}, {"type": "email_added"}], "reentry_seconds": 0},
            "steps": [
                {"id": "threshold", "name": "MQL Threshold check", "type": "audience_paths",
                 "groups": [{"name": "MQL Threshold", "filter": {"attribute": "lead_score", "greater_than": 50}, "next": "mark_mql"}],
                 "everyone_else": null},
                {"id": "mark_mql", "type": "user_update", "attributes": {"lead_stage": "MQL"}, "next": "wait"},
                {"id": "wait", "type": "delay", "seconds": 60, "next": "ctx"},
                {"id": "ctx", "type": "context", "variables": [], "next": null}
            ]
        }))
        .expect("spec")
    }

    #[test]
    fn a_spec_survives_the_form_and_back() {
        let spec = lead_scoring();
        let form = CanvasForm::of(&spec);
        assert_eq!(form.trigger, "attribute_changed");
        assert!(form.also_email_added);
        let kinds: Vec<&str> = form.steps.iter().map(|s| s.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["audience_paths", "user_update", "delay", "json"],
            "context as JSON"
        );
        assert_eq!(form.steps[1].value, "MQL");
        let again = form.spec(CanvasStatus::Draft).expect("valid");
        assert_eq!(again.steps, spec.steps);
        assert_eq!(again.entry, spec.entry);
    }

    #[test]
    fn bad_fields_name_the_step() {
        let mut form = CanvasForm::of(&lead_scoring());
        form.steps[0].filter = "{".into();
        assert!(
            form.spec(CanvasStatus::Draft)
                .err()
                .is_some_and(|e| e.starts_with("builder-bad-json|threshold"))
        );
        let mut form = CanvasForm::of(&lead_scoring());
        form.steps[2].seconds = "soon".into();
        assert_eq!(
            form.spec(CanvasStatus::Draft).err().as_deref(),
            Some("builder-bad-seconds|wait")
        );
    }
}
