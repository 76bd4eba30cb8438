//! Campaigns: the list with each one's status, and the builder (trigger, audience,
//! re-eligibility, rate limit, template), start and pause. Saved through the
//! [`CampaignEngine`] as `/campaigns/create`, `/update`, `/resume` and `/pause` do, with the same
//! checks (a spec that does not compile or names no template is refused with the engine's
//! message).
//!
//! [`CampaignEngine`]: leadwire_engine::CampaignEngine

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use leadwire_campaigns::{CampaignSpec, CampaignStatus, TriggerSpec};
use leadwire_engine::{CampaignEngine, CampaignRecord, EngineError};
use maud::{Markup, html};
use serde_json::{Value as Json, json};

use crate::i18n::Tr;
use crate::{Dashboard, DashboardError, FormData, Permission, Posted, Signed, page};

pub(crate) fn routes() -> Router<Dashboard> {
    Router::new()
        .route("/dashboard/campaigns", get(list))
        .route("/dashboard/campaigns/new", get(new_page).post(create))
        .route("/dashboard/campaigns/{id}", get(edit_page).post(update))
        .route("/dashboard/campaigns/{id}/status", post(set_status))
}

fn engine(d: &Dashboard) -> Result<&Arc<CampaignEngine>, DashboardError> {
    d.campaigns
        .as_ref()
        .ok_or(DashboardError::Unavailable("campaigns"))
}

/// The trigger kinds the builder offers: `(value, message id)`.
pub(crate) const TRIGGERS: [(&str, &str); 5] = [
    ("email_added", "trigger-email-added"),
    ("attribute_changed", "trigger-attribute-changed"),
    ("custom_event", "trigger-custom-event"),
    ("purchase", "trigger-purchase"),
    ("api_triggered", "trigger-api-triggered"),
];

pub(crate) fn status_id(status: CampaignStatus) -> &'static str {
    match status {
        CampaignStatus::Draft => "status-draft",
        CampaignStatus::Active => "status-active",
        CampaignStatus::Paused => "status-paused",
        CampaignStatus::Archived => "status-archived",
    }
}

fn trigger_kind(trigger: &TriggerSpec) -> &'static str {
    match trigger {
        TriggerSpec::EmailAdded => "email_added",
        TriggerSpec::AttributeChanged { .. } => "attribute_changed",
        TriggerSpec::CustomEvent { .. } => "custom_event",
        TriggerSpec::Purchase { .. } => "purchase",
        TriggerSpec::ApiTriggered => "api_triggered",
    }
}

/// The builder's fields, as typed.
#[derive(Debug, Clone, Default)]
struct Form {
    name: String,
    description: String,
    trigger: String,
    /// The attribute, event name or product id the trigger names.
    trigger_name: String,
    /// The attribute's value (JSON, or text) for `attribute_changed`.
    trigger_value: String,
    template: String,
    audience: String,
    reeligibility_minutes: String,
    rate_limit: String,
}

impl Form {
    fn of(spec: &CampaignSpec) -> Form {
        let (trigger_name, trigger_value) = match &spec.trigger {
            TriggerSpec::AttributeChanged { attribute, value } => (
                attribute.clone(),
                value.as_ref().map(Json::to_string).unwrap_or_default(),
            ),
            TriggerSpec::CustomEvent { name, .. } => (name.clone(), String::new()),
            TriggerSpec::Purchase { product_id } => {
                (product_id.clone().unwrap_or_default(), String::new())
            }
            _ => (String::new(), String::new()),
        };
        Form {
            name: spec.name.clone(),
            description: spec.description.clone(),
            trigger: trigger_kind(&spec.trigger).to_owned(),
            trigger_name,
            trigger_value,
            template: spec.template.clone(),
            audience: spec
                .audience
                .as_ref()
                .and_then(|a| serde_json::to_string_pretty(a).ok())
                .unwrap_or_default(),
            reeligibility_minutes: spec
                .reeligibility_seconds
                .map(|s| (s / 60).to_string())
                .unwrap_or_default(),
            rate_limit: spec
                .rate_limit_per_minute
                .map(|r| r.to_string())
                .unwrap_or_default(),
        }
    }

    fn parse(form: &FormData) -> Form {
        let text = |k: &str| form.text(k).trim().to_owned();
        Form {
            name: text("name"),
            description: form.text("description").to_owned(),
            trigger: text("trigger"),
            trigger_name: text("trigger_name"),
            trigger_value: text("trigger_value"),
            template: text("template"),
            audience: form.text("audience").to_owned(),
            reeligibility_minutes: text("reeligibility_minutes"),
            rate_limit: text("rate_limit"),
        }
    }

    /// The spec the REST API would take, or the message id of the field that is wrong.
    fn spec(&self, status: CampaignStatus) -> Result<CampaignSpec, String> {
        let trigger = match self.trigger.as_str() {
            "attribute_changed" => {
                let mut t = json!({"type": "attribute_changed", "attribute": self.trigger_name});
                if !self.trigger_value.is_empty() {
                    // A JSON literal (42, true, "x"), else the text itself.
                    t["value"] = serde_json::from_str(&self.trigger_value)
                        .unwrap_or_else(|_| json!(self.trigger_value));
                }
                t
            }
            "custom_event" => json!({"type": "custom_event", "name": self.trigger_name}),
            "purchase" if self.trigger_name.is_empty() => json!({"type": "purchase"}),
            "purchase" => json!({"type": "purchase", "product_id": self.trigger_name}),
            "api_triggered" => json!({"type": "api_triggered"}),
            _ => json!({"type": "email_added"}),
        };
        let mut spec = json!({
            "name": self.name,
            "description": self.description,
            "status": status,
            "trigger": trigger,
            "template": self.template,
        });
        if !self.audience.trim().is_empty() {
            spec["audience"] = serde_json::from_str(&self.audience)
                .map_err(|e| format!("campaign-bad-audience|{e}"))?;
        }
        if !self.reeligibility_minutes.is_empty() {
            let minutes: u64 = self
                .reeligibility_minutes
                .parse()
                .map_err(|_| "campaign-bad-number".to_owned())?;
            spec["reeligibility_seconds"] = json!(minutes.saturating_mul(60));
        }
        if !self.rate_limit.is_empty() {
            let n: u32 = self
                .rate_limit
                .parse()
                .map_err(|_| "campaign-bad-number".to_owned())?;
            spec["rate_limit_per_minute"] = json!(n);
        }
        serde_json::from_value(spec).map_err(|e| format!("campaign-bad-spec|{e}"))
    }
}

async fn list(State(d): State<Dashboard>, signed: Signed) -> Result<Response, DashboardError> {
    signed.require(Permission::CampaignsRead)?;
    let tr = d.tr(signed.lang());
    let campaigns = engine(&d)?.campaigns().await?;
    let can_write = signed.can(Permission::CampaignsWrite);
    let body = html! {
        h1 { (tr.t("campaigns-title")) }
        (page::api_help(tr, "/campaigns/{create,update,details,list,pause,resume}"))
        @if can_write { p.actions { a.button href="/dashboard/campaigns/new" { (tr.t("campaigns-new")) } } }
        @if campaigns.is_empty() {
            p { (tr.t("campaigns-none")) }
        } @else {
            table.list {
                caption.visually-hidden { (tr.t("campaigns-title")) }
                thead { tr {
                    th scope="col" { (tr.t("column-name")) }
                    th scope="col" { (tr.t("column-state")) }
                    th scope="col" { (tr.t("campaign-trigger")) }
                    th scope="col" { (tr.t("column-template")) }
                    th scope="col" { (tr.t("column-updated")) }
                    th scope="col" { (tr.t("column-actions")) }
                } }
                tbody {
                    @for c in &campaigns {
                        (campaign_row(tr, &signed, c, can_write))
                    }
                }
            }
        }
    };
    let title = tr.t("campaigns-title");
    Ok(page::document(tr, Some(&signed), &title, "campaigns", body).into_response())
}

fn trigger_label(tr: Tr<'_>, trigger: &TriggerSpec) -> String {
    let kind = trigger_kind(trigger);
    let id = TRIGGERS
        .iter()
        .find(|(v, _)| *v == kind)
        .map_or("trigger-email-added", |(_, id)| id);
    let detail = match trigger {
        TriggerSpec::AttributeChanged { attribute, .. } => format!(": {attribute}"),
        TriggerSpec::CustomEvent { name, .. } => format!(": {name}"),
        TriggerSpec::Purchase {
            product_id: Some(p),
        } => format!(": {p}"),
        _ => String::new(),
    };
    format!("{}{detail}", tr.t(id))
}

fn campaign_row(tr: Tr<'_>, signed: &Signed, c: &CampaignRecord, can_write: bool) -> Markup {
    let status = c.spec.status;
    html! {
        tr data-status=(serde_json::to_value(status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()) {
            th scope="row" { a href={ "/dashboard/campaigns/" (c.id) } { (c.spec.name) } }
            td { span.badge { (tr.t(status_id(status))) } }
            td { (trigger_label(tr, &c.spec.trigger)) }
            td { (c.spec.template) }
            td { (c.last_edited.format("%Y-%m-%d %H:%M:%S UTC")) }
            td.row-actions {
                @if can_write { (status_button(tr, signed, c)) }
            }
        }
    }
}

/// Start (or pause, when active) as a one-button form, labelled with the campaign's name.
fn status_button(tr: Tr<'_>, signed: &Signed, c: &CampaignRecord) -> Markup {
    let name = c.spec.name.clone();
    let (to, id, label) = if c.spec.status == CampaignStatus::Active {
        ("paused", "campaign-pause", "campaign-pause-named")
    } else {
        ("active", "campaign-start", "campaign-start-named")
    };
    html! {
        form.inline method="post" action={ "/dashboard/campaigns/" (c.id) "/status" } {
            (page::csrf(signed))
            input type="hidden" name="to" value=(to);
            button type="submit" data-to=(to) aria-label=(tr.ta(label, &[("name", name.into())])) { (tr.t(id)) }
        }
    }
}

async fn new_page(State(d): State<Dashboard>, signed: Signed) -> Result<Response, DashboardError> {
    signed.require(Permission::CampaignsWrite)?;
    let tr = d.tr(signed.lang());
    let templates = page::template_names(&d).await?;
    let form = Form {
        trigger: "email_added".into(),
        ..Form::default()
    };
    Ok(builder(tr, &signed, None, &form, &templates, &[]).into_response())
}

async fn edit_page(
    State(d): State<Dashboard>,
    signed: Signed,
    Path(id): Path<String>,
) -> Result<Response, DashboardError> {
    signed.require(Permission::CampaignsRead)?;
    let tr = d.tr(signed.lang());
    let record = engine(&d)?.campaign(&id).await?;
    let templates = page::template_names(&d).await?;
    Ok(builder(
        tr,
        &signed,
        Some(&record),
        &Form::of(&record.spec),
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
    signed.require(Permission::CampaignsWrite)?;
    let tr = d.tr(signed.lang());
    let engine = engine(&d)?.clone();
    let record = match &id {
        Some(id) => Some(engine.campaign(id).await?),
        None => None,
    };
    let mut typed = Form::parse(&form);
    // As `/campaigns/update`: a campaign's name cannot change.
    if let Some(r) = &record {
        typed.name = r.spec.name.clone();
    }
    let status = record
        .as_ref()
        .map_or(CampaignStatus::Draft, |r| r.spec.status);
    let templates = page::template_names(&d).await?;
    let refuse = |problems: Vec<String>| {
        builder(tr, &signed, record.as_ref(), &typed, &templates, &problems).into_response()
    };
    let spec = match typed.spec(status) {
        Ok(spec) => spec,
        Err(problem) => return Ok(refuse(vec![page::problem_text(tr, &problem)])),
    };
    if record.is_none()
        && engine
            .campaigns()
            .await?
            .iter()
            .any(|c| c.spec.name == spec.name)
    {
        return Ok(refuse(vec![tr.ta(
            "campaign-name-taken",
            &[("name", spec.name.clone().into())],
        )]));
    }
    match engine.save_campaign(spec).await {
        Ok(saved) => {
            Ok(Redirect::to(&format!("/dashboard/campaigns/{}", saved.id)).into_response())
        }
        Err(EngineError::Invalid(message)) => Ok(refuse(vec![message])),
        Err(e) => Err(e.into()),
    }
}

async fn set_status(
    State(d): State<Dashboard>,
    Path(id): Path<String>,
    posted: Posted,
) -> Result<Response, DashboardError> {
    posted.signed.require(Permission::CampaignsWrite)?;
    let status = match posted.form.text("to") {
        "active" => CampaignStatus::Active,
        "paused" => CampaignStatus::Paused,
        other => return Err(DashboardError::BadRequest(other.to_owned())),
    };
    engine(&d)?.set_status(&id, status).await?;
    Ok(Redirect::to("/dashboard/campaigns").into_response())
}

fn builder(
    tr: Tr<'_>,
    signed: &Signed,
    record: Option<&CampaignRecord>,
    form: &Form,
    templates: &[String],
    problems: &[String],
) -> axum::response::Html<String> {
    let (title, action) = match record {
        Some(r) => (
            tr.ta(
                "campaign-title-edit",
                &[("name", r.spec.name.clone().into())],
            ),
            format!("/dashboard/campaigns/{}", r.id),
        ),
        None => (tr.t("campaigns-new"), "/dashboard/campaigns/new".to_owned()),
    };
    let can_write = signed.can(Permission::CampaignsWrite);
    let body = html! {
        h1 { (title) }
        @if let Some(r) = record {
            p { (tr.t("column-state")) ": " span.badge id="campaign-status" { (tr.t(status_id(r.spec.status))) } }
            @if can_write { (status_button(tr, signed, r)) }
        }
        @if !problems.is_empty() {
            div.error-summary role="alert" id="problems" {
                h2 { (tr.ta("compose-problems", &[("count", problems.len().into())])) }
                ul { @for p in problems { li { (p) } } }
            }
        }
        form.compose method="post" action=(action) {
            (page::csrf(signed))
            fieldset {
                legend { (tr.t("campaign-section-basics")) }
                label for="name" { (tr.t("column-name")) }
                @if record.is_some() {
                    input id="name" name="name" type="text" value=(form.name) readonly aria-describedby="name-help";
                    p.help id="name-help" { (tr.t("campaign-name-fixed")) }
                } @else {
                    input id="name" name="name" type="text" value=(form.name) required;
                }
                label for="description" { (tr.t("compose-description")) }
                input id="description" name="description" type="text" value=(form.description);
            }
            fieldset {
                legend { (tr.t("campaign-trigger")) }
                label for="trigger" { (tr.t("campaign-trigger-kind")) }
                select id="trigger" name="trigger" {
                    @for (value, id) in TRIGGERS {
                        option value=(value) selected[form.trigger == value] { (tr.t(id)) }
                    }
                }
                label for="trigger-name" { (tr.t("campaign-trigger-name")) }
                input id="trigger-name" name="trigger_name" type="text" value=(form.trigger_name) aria-describedby="trigger-name-help";
                p.help id="trigger-name-help" { (tr.t("campaign-trigger-name-help")) }
                label for="trigger-value" { (tr.t("campaign-trigger-value")) }
                input id="trigger-value" name="trigger_value" type="text" value=(form.trigger_value);
            }
            fieldset {
                legend { (tr.t("campaign-section-message")) }
                label for="template" { (tr.t("column-template")) }
                select id="template" name="template" {
                    @for t in templates {
                        option value=(t) selected[form.template == *t] { (t) }
                    }
                }
            }
            fieldset {
                legend { (tr.t("campaign-section-delivery")) }
                label for="audience" { (tr.t("campaign-audience")) }
                textarea id="audience" name="audience" rows="4" spellcheck="false" aria-describedby="audience-help" { (form.audience) }
                p.help id="audience-help" { (tr.t("campaign-audience-help")) }
                label for="reeligibility" { (tr.t("campaign-reeligibility")) }
                input id="reeligibility" name="reeligibility_minutes" type="text" inputmode="numeric" value=(form.reeligibility_minutes) aria-describedby="reeligibility-help";
                p.help id="reeligibility-help" { (tr.t("campaign-reeligibility-help")) }
                label for="rate-limit" { (tr.t("campaign-rate-limit")) }
                input id="rate-limit" name="rate_limit" type="text" inputmode="numeric" value=(form.rate_limit) aria-describedby="rate-limit-help";
                p.help id="rate-limit-help" { (tr.t("campaign-rate-limit-help")) }
            }
            @if can_write { p.actions { button.primary type="submit" { (tr.t("campaign-save")) } } }
        }
    };
    page::document(tr, Some(signed), &title, "campaigns", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_makes_the_apis_spec() {
        let form = Form {
            name: "New lead".into(),
            trigger: "email_added".into(),
            template: "Create Lead".into(),
            reeligibility_minutes: "90".into(),
            rate_limit: "100".into(),
            ..Form::default()
        };
        let spec = form.spec(CampaignStatus::Draft).expect("valid");
        assert_eq!(spec.trigger, TriggerSpec::EmailAdded);
        assert_eq!(spec.reeligibility_seconds, Some(5400));
        assert_eq!(spec.rate_limit_per_minute, Some(100));
        let back = Form::of(&spec);
        assert_eq!(back.reeligibility_minutes, "90");

        let attr = Form {
            trigger: "attribute_changed".into(),
            trigger_name: "lead_stage".into(),
            trigger_value: "MQL".into(),
            ..form.clone()
        };
        assert_eq!(
            attr.spec(CampaignStatus::Active).expect("valid").trigger,
            TriggerSpec::AttributeChanged {
                attribute: "lead_stage".into(),
                value: Some(json!("MQL"))
            }
        );
        let bad = Form {
            rate_limit: "lots".into(),
            ..form.clone()
        };
        assert_eq!(
            bad.spec(CampaignStatus::Draft).err().as_deref(),
            Some("campaign-bad-number")
        );
        let bad = Form {
            audience: "{".into(),
            ..form
        };
        assert!(
            bad.spec(CampaignStatus::Draft)
                .err()
                .is_some_and(|e| e.starts_with("campaign-bad-audience|"))
        );
    }
}
