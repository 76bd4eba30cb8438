//! Webhook templates: the list, and the compose screen (Braze's Compose and Test tabs in one)
//! where a template is created, edited, previewed for a user and test-sent. Duplicate and
//! archive are buttons on the list. Everything goes through the [`WebhookService`]: the same
//! parse, compile, lint, preview and test send as `/templates/webhook/*`.
//!
//! [`WebhookService`]: leadwire_webhooks::WebhookService

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use leadwire_profiles::Identifier;
use leadwire_webhooks::lint::LintWarning;
use leadwire_webhooks::service::{
    Preview, PreviewResult, PreviewUser, RenderRequest, TemplateSource, TestSend,
};
use leadwire_webhooks::templates::{CompileIssue, TemplateDefinition, TemplateRecord};
use leadwire_webhooks::{RenderProperties, WebhookError};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::i18n::Tr;
use crate::{Dashboard, DashboardError, FormData, Permission, Posted, Signed, page};

pub(crate) fn routes() -> Router<Dashboard> {
    Router::new()
        .route("/dashboard/templates", get(list))
        .route("/dashboard/templates/new", get(new_page).post(compose_post))
        .route(
            "/dashboard/templates/{id}",
            get(edit_page).post(compose_post_existing),
        )
        .route("/dashboard/templates/{id}/duplicate", post(duplicate))
        .route("/dashboard/templates/{id}/archive", post(archive))
}

const METHODS: [&str; 5] = ["POST", "PUT", "PATCH", "GET", "DELETE"];

/// The compose form's content, as typed: it may not parse or compile yet.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Draft {
    pub name: String,
    pub description: String,
    pub url: String,
    pub method: String,
    /// `kv`, `raw` or `none`.
    pub body_mode: String,
    pub body_rows: Vec<(String, String)>,
    pub raw_body: String,
    pub header_rows: Vec<(String, String)>,
    pub value_typing: String,
    pub lookup_field: String,
    pub write_back_rows: Vec<(String, String)>,
    pub batch: bool,
    /// The preview user: an external id, or a custom user as JSON.
    pub preview_external_id: String,
    pub preview_user: String,
    /// Empty rows to show under each list (more after "add a row").
    pub extra_body_rows: usize,
    pub extra_header_rows: usize,
}

fn zip_rows(form: &FormData, keys: &str, values: &str) -> (Vec<(String, String)>, usize) {
    let ks = form.0.iter().filter(|(k, _)| k == keys).map(|(_, v)| v);
    let vs = form.0.iter().filter(|(k, _)| k == values).map(|(_, v)| v);
    let mut rows = Vec::new();
    let mut empty = 0;
    for (k, v) in ks.zip(vs) {
        if k.trim().is_empty() && v.trim().is_empty() {
            empty += 1;
        } else {
            rows.push((k.trim().to_owned(), v.clone()));
        }
    }
    (rows, empty)
}

impl Draft {
    fn blank() -> Draft {
        Draft {
            method: "POST".into(),
            body_mode: "kv".into(),
            value_typing: "strings".into(),
            extra_body_rows: 1,
            extra_header_rows: 1,
            ..Draft::default()
        }
    }

    fn from_definition(definition: &TemplateDefinition) -> Draft {
        use leadwire_delivery::webhook::Body;
        let t = &definition.template;
        let (body_mode, body_rows, raw_body) = match &t.body {
            Body::None => ("none", Vec::new(), String::new()),
            Body::KeyValue(kv) => ("kv", kv.clone(), String::new()),
            Body::Raw(text) => ("raw", Vec::new(), text.clone()),
        };
        let json = definition.to_json();
        Draft {
            name: t.name.clone(),
            description: definition.description.clone(),
            url: t.url.clone(),
            method: t.method.as_str().to_owned(),
            body_mode: body_mode.to_owned(),
            body_rows,
            raw_body,
            header_rows: t.headers.clone(),
            value_typing: json["value_typing"]
                .as_str()
                .unwrap_or("strings")
                .to_owned(),
            lookup_field: t.lookup_field.clone().unwrap_or_default(),
            write_back_rows: t
                .write_back
                .iter()
                .map(|r| (r.response_field.clone(), r.attribute.clone()))
                .collect(),
            batch: t.batch,
            extra_body_rows: 1,
            extra_header_rows: 1,
            ..Draft::default()
        }
    }

    fn from_form(form: &FormData) -> Draft {
        let (body_rows, empty_body) = zip_rows(form, "body_key", "body_value");
        let (header_rows, empty_headers) = zip_rows(form, "header_name", "header_value");
        let (write_back_rows, _) = zip_rows(form, "wb_field", "wb_attribute");
        let action = form.text("action");
        Draft {
            name: form.text("name").trim().to_owned(),
            description: form.text("description").to_owned(),
            url: form.text("url").trim().to_owned(),
            method: form.text("method").to_owned(),
            body_mode: match form.text("body_mode") {
                "raw" => "raw",
                "none" => "none",
                _ => "kv",
            }
            .to_owned(),
            body_rows,
            raw_body: form.text("raw_body").to_owned(),
            header_rows,
            value_typing: form.text("value_typing").to_owned(),
            lookup_field: form.text("lookup_field").trim().to_owned(),
            write_back_rows,
            batch: form.get("batch").is_some(),
            preview_external_id: form.text("preview_external_id").trim().to_owned(),
            preview_user: form.text("preview_user").to_owned(),
            extra_body_rows: empty_body.max(1) + usize::from(action == "add-body-row"),
            extra_header_rows: empty_headers.max(1) + usize::from(action == "add-header-row"),
        }
    }

    /// The definition JSON `/templates/webhook/create` takes.
    fn to_json(&self) -> Json {
        let body = match self.body_mode.as_str() {
            "raw" => json!(self.raw_body),
            "none" => Json::Null,
            _ => Json::Array(
                self.body_rows
                    .iter()
                    .map(|(k, v)| json!({"key": k, "value": v}))
                    .collect(),
            ),
        };
        json!({
            "name": self.name,
            "description": self.description,
            "url": self.url,
            "method": if self.method.is_empty() { "POST" } else { &self.method },
            "headers": self.header_rows.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
            "body": body,
            "value_typing": if self.value_typing.is_empty() { "strings" } else { &self.value_typing },
            "write_back": self.write_back_rows.iter().map(|(f, a)| json!({"response_field": f, "attribute": a})).collect::<Vec<_>>(),
            "lookup_field": self.lookup_field,
            "batch": self.batch,
        })
    }
}

/// What the compose screen reports about a draft: problems that stop it (by field, with line and
/// column), the linter's warnings, and anything else said about it.
#[derive(Debug, Default)]
struct Findings {
    issues: Vec<CompileIssue>,
    warnings: Vec<LintWarning>,
    /// A problem not tied to a field (a name already taken, a malformed field).
    general: Vec<String>,
}

impl Findings {
    fn from_error(e: WebhookError) -> Result<Findings, DashboardError> {
        match e {
            WebhookError::Compile(issues) => Ok(Findings {
                issues,
                ..Findings::default()
            }),
            WebhookError::Invalid(m) | WebhookError::Conflict(m) => Ok(Findings {
                general: vec![m],
                ..Findings::default()
            }),
            WebhookError::NotFound { what, id } => Ok(Findings {
                general: vec![format!("{what} '{id}' does not exist")],
                ..Findings::default()
            }),
            other => Err(other.into()),
        }
    }
}

/// What the bottom of the compose screen shows after a button.
enum Outcome {
    None,
    Saved,
    Preview(PreviewResult),
    TestSend(TestSend),
}

#[derive(Deserialize)]
struct ListQuery {
    archived: Option<u8>,
}

async fn list(
    State(d): State<Dashboard>,
    signed: Signed,
    Query(q): Query<ListQuery>,
) -> Result<Response, DashboardError> {
    signed.require(Permission::TemplatesRead)?;
    let tr = d.tr(signed.lang());
    let with_archived = q.archived.is_some();
    let records = d.webhooks()?.list_templates(with_archived, 1000, 0).await?;
    let can_write = signed.can(Permission::TemplatesWrite);
    let body = html! {
        h1 { (tr.t("templates-title")) }
        (page::api_help(tr, "/templates/webhook/{create,info,list,update,archive}"))
        p.actions {
            @if can_write { a.button href="/dashboard/templates/new" { (tr.t("templates-new")) } }
            @if with_archived {
                a href="/dashboard/templates" { (tr.t("templates-hide-archived")) }
            } @else {
                a href="/dashboard/templates?archived=1" { (tr.t("templates-show-archived")) }
            }
        }
        @if records.is_empty() {
            p { (tr.t("templates-none")) }
        } @else {
            table.list {
                caption.visually-hidden { (tr.t("templates-title")) }
                thead { tr {
                    th scope="col" { (tr.t("column-name")) }
                    th scope="col" { (tr.t("column-method")) }
                    th scope="col" { (tr.t("column-url")) }
                    th scope="col" { (tr.t("column-updated")) }
                    th scope="col" { (tr.t("column-actions")) }
                } }
                tbody {
                    @for r in &records {
                        @let t = &r.definition.template;
                        tr {
                            th scope="row" {
                                a href={ "/dashboard/templates/" (r.id) } { (t.name) }
                                @if r.archived { " " span.badge { (tr.t("templates-archived")) } }
                            }
                            td { (t.method.as_str()) }
                            td.url { code { (t.url) } }
                            td { (page::time(r.updated_at)) }
                            td.row-actions {
                                @if can_write {
                                    form method="post" action={ "/dashboard/templates/" (r.id) "/duplicate" } {
                                        (page::csrf(&signed))
                                        button type="submit" aria-label=(tr.ta("templates-duplicate-named", &[("name", t.name.clone().into())])) { (tr.t("templates-duplicate")) }
                                    }
                                    @if !r.archived {
                                        form method="post" action={ "/dashboard/templates/" (r.id) "/archive" } {
                                            (page::csrf(&signed))
                                            button type="submit" aria-label=(tr.ta("templates-archive-named", &[("name", t.name.clone().into())])) { (tr.t("templates-archive")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let title = tr.t("templates-title");
    Ok(page::document(tr, Some(&signed), &title, "templates", body).into_response())
}

async fn new_page(State(d): State<Dashboard>, signed: Signed) -> Result<Response, DashboardError> {
    signed.require(Permission::TemplatesWrite)?;
    let tr = d.tr(signed.lang());
    Ok(compose(
        tr,
        &signed,
        None,
        &Draft::blank(),
        &Findings::default(),
        &Outcome::None,
    )
    .into_response())
}

#[derive(Deserialize)]
struct EditQuery {
    saved: Option<u8>,
}

async fn edit_page(
    State(d): State<Dashboard>,
    signed: Signed,
    Path(id): Path<String>,
    Query(q): Query<EditQuery>,
) -> Result<Response, DashboardError> {
    signed.require(Permission::TemplatesRead)?;
    let tr = d.tr(signed.lang());
    let service = d.webhooks()?;
    let record = service.template(&id).await?;
    let findings = Findings {
        warnings: service.lint(&record.definition).await,
        ..Findings::default()
    };
    let outcome = if q.saved.is_some() {
        Outcome::Saved
    } else {
        Outcome::None
    };
    Ok(compose(
        tr,
        &signed,
        Some(&record),
        &Draft::from_definition(&record.definition),
        &findings,
        &outcome,
    )
    .into_response())
}

async fn compose_post(
    State(d): State<Dashboard>,
    posted: Posted,
) -> Result<Response, DashboardError> {
    handle_compose(d, posted, None).await
}

async fn compose_post_existing(
    State(d): State<Dashboard>,
    Path(id): Path<String>,
    posted: Posted,
) -> Result<Response, DashboardError> {
    handle_compose(d, posted, Some(id)).await
}

/// Whom the preview renders for: the external id typed, else the custom user's JSON.
fn preview_user(draft: &Draft) -> Result<PreviewUser, String> {
    if !draft.preview_external_id.is_empty() {
        return Ok(PreviewUser::Existing(Identifier::ExternalId(
            draft.preview_external_id.clone(),
        )));
    }
    let text = draft.preview_user.trim();
    if text.is_empty() {
        return Ok(PreviewUser::Custom(
            json!({"profile": {}, "custom_attributes": {}}),
        ));
    }
    match serde_json::from_str::<Json>(text) {
        Ok(user @ Json::Object(_)) => Ok(PreviewUser::Custom(user)),
        Ok(_) => Err("preview-user-not-object".into()),
        Err(e) => Err(e.to_string()),
    }
}

async fn handle_compose(
    d: Dashboard,
    posted: Posted,
    id: Option<String>,
) -> Result<Response, DashboardError> {
    let Posted { signed, form } = posted;
    let tr = d.tr(signed.lang());
    let service = d.webhooks()?.clone();
    let action = form.text("action").to_owned();
    let draft = Draft::from_form(&form);
    let record = match &id {
        Some(id) => Some(service.template(id).await?),
        None => None,
    };
    let render = |findings: &Findings, outcome: &Outcome| {
        compose(tr, &signed, record.as_ref(), &draft, findings, outcome).into_response()
    };
    let definition = match TemplateDefinition::from_json(&draft.to_json()) {
        Ok(def) => def,
        Err(e) => return Ok(render(&Findings::from_error(e)?, &Outcome::None)),
    };
    if let Err(e) = definition.compile_checked() {
        return Ok(render(&Findings::from_error(e)?, &Outcome::None));
    }
    let warnings = service.lint(&definition).await;
    let mut findings = Findings {
        warnings,
        ..Findings::default()
    };
    match action.as_str() {
        "save" => {
            signed.require(Permission::TemplatesWrite)?;
            let saved = match &id {
                Some(id) => service.update_template(id, definition).await,
                None => service.create_template(definition).await,
            };
            match saved {
                Ok(record) => Ok(Redirect::to(&format!(
                    "/dashboard/templates/{}?saved=1",
                    record.id
                ))
                .into_response()),
                Err(e) => {
                    let mut more = Findings::from_error(e)?;
                    more.warnings = findings.warnings;
                    Ok(render(&more, &Outcome::None))
                }
            }
        }
        "preview" | "test-send" => {
            let test = action == "test-send";
            signed.require(if test {
                Permission::TemplatesWrite
            } else {
                Permission::TemplatesRead
            })?;
            let user = match preview_user(&draft) {
                Ok(user) => user,
                Err(problem) => {
                    let text = if problem == "preview-user-not-object" {
                        tr.t("preview-user-not-object")
                    } else {
                        tr.ta("preview-user-bad-json", &[("detail", problem.into())])
                    };
                    findings.general.push(text);
                    return Ok(render(&findings, &Outcome::None));
                }
            };
            let request = RenderRequest {
                template: TemplateSource::Draft(Box::new(definition)),
                user,
                properties: RenderProperties::default(),
                campaign_id: None,
            };
            let outcome = if test {
                service.test_send(request).await.map(Outcome::TestSend)
            } else {
                service.preview(request).await.map(Outcome::Preview)
            };
            match outcome {
                Ok(outcome) => Ok(render(&findings, &outcome)),
                Err(e) => {
                    let more = Findings::from_error(e)?;
                    findings.general.extend(more.general);
                    findings.issues.extend(more.issues);
                    Ok(render(&findings, &Outcome::None))
                }
            }
        }
        // "Add a row" and anything else: show the form again, as typed, with its findings.
        _ => Ok(render(&findings, &Outcome::None)),
    }
}

async fn duplicate(
    State(d): State<Dashboard>,
    Path(id): Path<String>,
    posted: Posted,
) -> Result<Response, DashboardError> {
    posted.signed.require(Permission::TemplatesWrite)?;
    let tr = d.tr(posted.signed.lang());
    let service = d.webhooks()?;
    let original = service.template(&id).await?;
    let base = tr.ta(
        "templates-copy-name",
        &[("name", original.definition.template.name.clone().into())],
    );
    // A name that is free: "X (copy)", then "X (copy) 2", …
    for n in 1..=50 {
        let mut copy = original.definition.clone();
        copy.template.name = if n == 1 {
            base.clone()
        } else {
            format!("{base} {n}")
        };
        match service.create_template(copy).await {
            Ok(record) => {
                return Ok(
                    Redirect::to(&format!("/dashboard/templates/{}", record.id)).into_response()
                );
            }
            Err(WebhookError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DashboardError::BadRequest(base))
}

async fn archive(
    State(d): State<Dashboard>,
    Path(id): Path<String>,
    posted: Posted,
) -> Result<Response, DashboardError> {
    posted.signed.require(Permission::TemplatesWrite)?;
    d.webhooks()?.archive_template(&id).await?;
    Ok(Redirect::to("/dashboard/templates").into_response())
}

// ----- the compose screen -----

/// The issues and warnings about one field of the form (`label` as the compiler names it:
/// `URL`, `body key 'x'`, `header 'x'`, `body`, `lookup field`, `write-back 'x'`).
fn field_notes(tr: Tr<'_>, findings: &Findings, label: &str, note_id: &str) -> Markup {
    let issues: Vec<&CompileIssue> = findings
        .issues
        .iter()
        .filter(|i| i.field == label)
        .collect();
    let warnings: Vec<&LintWarning> = findings
        .warnings
        .iter()
        .filter(|w| w.field == label)
        .collect();
    html! {
        @if !issues.is_empty() || !warnings.is_empty() {
            div.notes id=(note_id) {
                @for i in &issues {
                    p.field-error {
                        strong { (tr.t("finding-error")) } " "
                        @if let (Some(line), Some(column)) = (i.line, i.column) {
                            span.where { (tr.ta("finding-line-column", &[("line", line.into()), ("column", column.into())])) } " "
                        }
                        (i.message)
                    }
                }
                @for w in &warnings {
                    p.field-warning data-code=(w.code) {
                        strong { (tr.t("finding-warning")) } " "
                        @if let (Some(line), Some(column)) = (w.line, w.column) {
                            span.where { (tr.ta("finding-line-column", &[("line", line.into()), ("column", column.into())])) } " "
                        }
                        (w.message)
                        @if let Some(s) = &w.suggestion {
                            " " span.suggestion { (tr.ta("finding-suggestion", &[("text", s.clone().into())])) }
                        }
                    }
                }
            }
        }
    }
}

/// Whether a field has notes (for `aria-invalid` and `aria-describedby`).
fn has_notes(findings: &Findings, label: &str) -> bool {
    findings.issues.iter().any(|i| i.field == label)
        || findings.warnings.iter().any(|w| w.field == label)
}

/// The labels of every field the form shows, to find findings about anything else.
fn shown_labels(draft: &Draft) -> Vec<String> {
    let mut labels = vec![
        "URL".to_owned(),
        "body".to_owned(),
        "lookup field".to_owned(),
    ];
    if draft.body_mode == "kv" {
        labels.extend(
            draft
                .body_rows
                .iter()
                .map(|(k, _)| format!("body key '{k}'")),
        );
    }
    labels.extend(
        draft
            .header_rows
            .iter()
            .map(|(k, _)| format!("header '{k}'")),
    );
    labels.extend(
        draft
            .write_back_rows
            .iter()
            .map(|(_, a)| format!("write-back '{a}'")),
    );
    labels
}

#[allow(clippy::too_many_lines)]
fn compose(
    tr: Tr<'_>,
    signed: &Signed,
    record: Option<&TemplateRecord>,
    draft: &Draft,
    findings: &Findings,
    outcome: &Outcome,
) -> axum::response::Html<String> {
    let action = match record {
        Some(r) => format!("/dashboard/templates/{}", r.id),
        None => "/dashboard/templates/new".to_owned(),
    };
    let title = match record {
        Some(r) => tr.ta(
            "compose-title-edit",
            &[("name", r.definition.template.name.clone().into())],
        ),
        None => tr.t("compose-title-new"),
    };
    let can_write = signed.can(Permission::TemplatesWrite);
    let labels = shown_labels(draft);
    let elsewhere: Vec<String> = findings
        .issues
        .iter()
        .filter(|i| !labels.contains(&i.field))
        .map(ToString::to_string)
        .chain(
            findings
                .warnings
                .iter()
                .filter(|w| !labels.contains(&w.field))
                .map(ToString::to_string),
        )
        .collect();
    let problem_count = findings.issues.len() + findings.general.len();
    let url_invalid = has_notes(findings, "URL");
    let body = html! {
        h1 { (title) }
        (page::api_help(tr, "/templates/webhook/{create,update,preview,test_send}"))
        @if matches!(outcome, Outcome::Saved) {
            p.notice role="status" id="saved" { (tr.t("compose-saved")) }
        }
        @if problem_count > 0 {
            div.error-summary role="alert" id="problems" tabindex="-1" {
                h2 { (tr.ta("compose-problems", &[("count", problem_count.into())])) }
                ul {
                    @for g in &findings.general { li { (g) } }
                    @for i in &findings.issues { li { (i.to_string()) } }
                }
            }
        }
        @if !findings.warnings.is_empty() {
            div.warning-summary id="warnings" {
                h2 { (tr.ta("compose-warnings", &[("count", findings.warnings.len().into())])) }
                ul { @for w in &findings.warnings {
                    li data-code=(w.code) {
                        (w.to_string())
                        @if let Some(s) = &w.suggestion { " — " (tr.ta("finding-suggestion", &[("text", s.clone().into())])) }
                    }
                } }
            }
        }
        @if !elsewhere.is_empty() {
            ul.field-error { @for e in &elsewhere { li { (e) } } }
        }
        form.compose method="post" action=(action) novalidate data-live-preview {
            (page::csrf(signed))
            // The default button (Enter in a field) saves.
            @if can_write { button.visually-hidden type="submit" name="action" value="save" tabindex="-1" aria-hidden="true" { (tr.t("compose-save")) } }
            fieldset {
                legend { (tr.t("compose-section-template")) }
                label for="name" { (tr.t("compose-name")) }
                input id="name" name="name" type="text" value=(draft.name) required;
                label for="description" { (tr.t("compose-description")) }
                input id="description" name="description" type="text" value=(draft.description);
            }
            fieldset {
                legend { (tr.t("compose-section-request")) }
                label for="url" { (tr.t("compose-url")) }
                @if url_invalid {
                    input id="url" name="url" type="text" value=(draft.url) required aria-invalid="true" aria-describedby="url-notes";
                } @else {
                    input id="url" name="url" type="text" value=(draft.url) required;
                }
                (field_notes(tr, findings, "URL", "url-notes"))
                label for="method" { (tr.t("compose-method")) }
                select id="method" name="method" {
                    @for m in METHODS {
                        option value=(m) selected[draft.method == m] { (m) }
                    }
                }
            }
            fieldset {
                legend { (tr.t("compose-section-body")) }
                div.radios role="radiogroup" aria-label=(tr.t("compose-body-mode")) {
                    label { input type="radio" name="body_mode" value="kv" checked[draft.body_mode == "kv"]; " " (tr.t("compose-body-kv")) }
                    label { input type="radio" name="body_mode" value="raw" checked[draft.body_mode == "raw"]; " " (tr.t("compose-body-raw")) }
                    label { input type="radio" name="body_mode" value="none" checked[draft.body_mode == "none"]; " " (tr.t("compose-body-none")) }
                }
                table.rows id="body-rows" {
                    caption { (tr.t("compose-body-pairs")) }
                    thead { tr { th scope="col" { (tr.t("compose-key")) } th scope="col" { (tr.t("compose-value")) } } }
                    tbody {
                        @for (i, (k, v)) in draft.body_rows.iter().enumerate() {
                            @let label = format!("body key '{k}'");
                            @let notes = format!("body-{i}-notes");
                            tr {
                                td { input id={ "body-key-" (i) } name="body_key" type="text" value=(k) aria-label=(tr.ta("compose-key-n", &[("n", (i + 1).into())])); }
                                td {
                                    @if has_notes(findings, &label) {
                                        input id={ "body-value-" (i) } name="body_value" type="text" value=(v) aria-label=(tr.ta("compose-value-n", &[("n", (i + 1).into())])) aria-invalid="true" aria-describedby=(notes);
                                    } @else {
                                        input id={ "body-value-" (i) } name="body_value" type="text" value=(v) aria-label=(tr.ta("compose-value-n", &[("n", (i + 1).into())]));
                                    }
                                    (field_notes(tr, findings, &label, &notes))
                                }
                            }
                        }
                        @for j in 0..draft.extra_body_rows {
                            @let i = draft.body_rows.len() + j;
                            tr {
                                td { input id={ "body-key-" (i) } name="body_key" type="text" value="" aria-label=(tr.ta("compose-key-n", &[("n", (i + 1).into())])); }
                                td { input id={ "body-value-" (i) } name="body_value" type="text" value="" aria-label=(tr.ta("compose-value-n", &[("n", (i + 1).into())])); }
                            }
                        }
                    }
                }
                button type="submit" name="action" value="add-body-row" { (tr.t("compose-add-body-row")) }
                label for="raw-body" { (tr.t("compose-raw-body")) }
                @if has_notes(findings, "body") {
                    textarea id="raw-body" name="raw_body" rows="10" spellcheck="false" aria-invalid="true" aria-describedby="raw-body-notes" { (draft.raw_body) }
                } @else {
                    textarea id="raw-body" name="raw_body" rows="10" spellcheck="false" { (draft.raw_body) }
                }
                (field_notes(tr, findings, "body", "raw-body-notes"))
                label for="value-typing" { (tr.t("compose-value-typing")) }
                select id="value-typing" name="value_typing" {
                    option value="strings" selected[draft.value_typing != "json_literals"] { (tr.t("compose-typing-strings")) }
                    option value="json_literals" selected[draft.value_typing == "json_literals"] { (tr.t("compose-typing-json")) }
                }
            }
            fieldset {
                legend { (tr.t("compose-section-headers")) }
                table.rows id="header-rows" {
                    caption { (tr.t("compose-header-pairs")) }
                    thead { tr { th scope="col" { (tr.t("compose-header-name")) } th scope="col" { (tr.t("compose-value")) } } }
                    tbody {
                        @for (i, (k, v)) in draft.header_rows.iter().enumerate() {
                            @let label = format!("header '{k}'");
                            @let notes = format!("header-{i}-notes");
                            tr {
                                td {
                                    @if has_notes(findings, &label) {
                                        input id={ "header-name-" (i) } name="header_name" type="text" value=(k) aria-label=(tr.ta("compose-header-name-n", &[("n", (i + 1).into())])) aria-invalid="true" aria-describedby=(notes);
                                    } @else {
                                        input id={ "header-name-" (i) } name="header_name" type="text" value=(k) aria-label=(tr.ta("compose-header-name-n", &[("n", (i + 1).into())]));
                                    }
                                }
                                td {
                                    input id={ "header-value-" (i) } name="header_value" type="text" value=(v) aria-label=(tr.ta("compose-header-value-n", &[("n", (i + 1).into())]));
                                    (field_notes(tr, findings, &label, &notes))
                                }
                            }
                        }
                        @for j in 0..draft.extra_header_rows {
                            @let i = draft.header_rows.len() + j;
                            tr {
                                td { input id={ "header-name-" (i) } name="header_name" type="text" value="" aria-label=(tr.ta("compose-header-name-n", &[("n", (i + 1).into())])); }
                                td { input id={ "header-value-" (i) } name="header_value" type="text" value="" aria-label=(tr.ta("compose-header-value-n", &[("n", (i + 1).into())])); }
                            }
                        }
                    }
                }
                button type="submit" name="action" value="add-header-row" { (tr.t("compose-add-header-row")) }
            }
            fieldset {
                legend { (tr.t("compose-section-salesforce")) }
                label for="lookup-field" { (tr.t("compose-lookup-field")) }
                input id="lookup-field" name="lookup_field" type="text" value=(draft.lookup_field) aria-describedby="lookup-help";
                p.help id="lookup-help" { (tr.t("compose-lookup-help")) }
                (field_notes(tr, findings, "lookup field", "lookup-notes"))
                table.rows id="write-back-rows" {
                    caption { (tr.t("compose-write-back")) }
                    thead { tr { th scope="col" { (tr.t("compose-response-field")) } th scope="col" { (tr.t("compose-attribute")) } } }
                    tbody {
                        @for (i, (f, a)) in draft.write_back_rows.iter().chain(std::iter::once(&(String::new(), String::new()))).enumerate() {
                            tr {
                                td { input name="wb_field" type="text" value=(f) aria-label=(tr.ta("compose-response-field-n", &[("n", (i + 1).into())])); }
                                td {
                                    input name="wb_attribute" type="text" value=(a) aria-label=(tr.ta("compose-attribute-n", &[("n", (i + 1).into())]));
                                    (field_notes(tr, findings, &format!("write-back '{a}'"), &format!("wb-{i}-notes")))
                                }
                            }
                        }
                    }
                }
                label.check { input type="checkbox" name="batch" value="1" checked[draft.batch]; " " (tr.t("compose-batch")) }
            }
            @if can_write {
                p.actions { button.primary type="submit" name="action" value="save" { (tr.t("compose-save")) } }
            }
            fieldset.test {
                legend { (tr.t("compose-section-test")) }
                p.help { (tr.t("compose-test-help")) }
                label for="preview-external-id" { (tr.t("compose-preview-external-id")) }
                input id="preview-external-id" name="preview_external_id" type="text" value=(draft.preview_external_id);
                label for="preview-user" { (tr.t("compose-preview-custom-user")) }
                textarea id="preview-user" name="preview_user" rows="4" spellcheck="false" aria-describedby="preview-user-help" { (draft.preview_user) }
                p.help id="preview-user-help" { (tr.t("compose-preview-custom-user-help")) }
                p.actions {
                    button type="submit" name="action" value="preview" { (tr.t("compose-preview")) }
                    @if can_write { button type="submit" name="action" value="test-send" { (tr.t("compose-test-send")) } }
                }
            }
        }
        (outcome_section(tr, outcome))
    };
    let page_title = title.clone();
    page::document(tr, Some(signed), &page_title, "templates", body)
}

fn headers_table(tr: Tr<'_>, caption: &str, headers: &[(String, String)]) -> Markup {
    html! {
        table.headers {
            caption { (caption) }
            thead { tr { th scope="col" { (tr.t("compose-header-name")) } th scope="col" { (tr.t("compose-value")) } } }
            tbody { @for (k, v) in headers { tr { th scope="row" { (k) } td { code { (v) } } } } }
        }
    }
}

fn preview_markup(tr: Tr<'_>, preview: &Preview) -> Markup {
    html! {
        @match preview {
            Preview::Rendered(r) => {
                p.request-line { code { (r.method.as_str()) " " (r.url) } }
                (headers_table(tr, &tr.t("result-request-headers"), &r.headers))
                h3 { (tr.t("result-request-body")) }
                pre.body { (r.body.as_deref().unwrap_or("")) }
            }
            Preview::Aborted { reason } => {
                p.aborted { strong { (tr.t("result-aborted")) } " " (reason) }
            }
            Preview::Error { field, message } => {
                p.field-error { strong { (tr.t("result-render-error")) } " " (field) ": " (message) }
            }
        }
    }
}

fn outcome_section(tr: Tr<'_>, outcome: &Outcome) -> Markup {
    html! {
        @match outcome {
            Outcome::None | Outcome::Saved => {}
            Outcome::Preview(result) => {
                section.result id="preview" aria-labelledby="preview-title" tabindex="-1" {
                    h2 id="preview-title" { (tr.t("result-preview-title")) }
                    (preview_markup(tr, &result.preview))
                }
            }
            Outcome::TestSend(TestSend::NotSent(preview)) => {
                section.result id="test-send" aria-labelledby="test-send-title" tabindex="-1" {
                    h2 id="test-send-title" { (tr.t("result-test-send-title")) }
                    p { (tr.t("result-not-sent")) }
                    (preview_markup(tr, preview))
                }
            }
            Outcome::TestSend(TestSend::Sent { delivery_id, request, response, error, duration, message }) => {
                section.result id="test-send" aria-labelledby="test-send-title" tabindex="-1" {
                    h2 id="test-send-title" { (tr.t("result-test-send-title")) }
                    @if let Some(r) = response {
                        p.status { (tr.t("result-status")) " " output id="response-status" { (r.status) } }
                    }
                    @if let Some(e) = error { p.field-error { (e) } }
                    p { (message) }
                    p.meta { (tr.ta("result-duration", &[("ms", u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).into())])) " · " code { (delivery_id) } }
                    h3 { (tr.t("result-request")) }
                    p.request-line { code { (request.method) " " (request.url) } }
                    (headers_table(tr, &tr.t("result-request-headers"), &request.headers))
                    pre.body { (request.body.as_deref().unwrap_or("")) }
                    @if let Some(r) = response {
                        h3 { (tr.t("result-response")) }
                        (headers_table(tr, &tr.t("result-response-headers"), &r.headers))
                        pre.body id="response-body" { (r.body) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_becomes_the_apis_definition_with_rows_in_order() {
        let form = FormData(
            [
                ("name", "Create Lead"),
                (
                    "url",
                    " https://x.my.salesforce.com/services/data/v60.0/sobjects/Lead/ ",
                ),
                ("method", "POST"),
                ("body_mode", "kv"),
                ("body_key", "LastName"),
                ("body_value", "{{${last_name}}}"),
                ("body_key", ""),
                ("body_value", ""),
                ("body_key", "Company"),
                ("body_value", "Acme"),
                ("header_name", "Content-Type"),
                ("header_value", "application/json"),
                ("action", "add-body-row"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .to_vec(),
        );
        let draft = Draft::from_form(&form);
        assert_eq!(
            draft.extra_body_rows, 2,
            "the empty row kept, plus one added"
        );
        let definition = TemplateDefinition::from_json(&draft.to_json()).expect("parses");
        let again = Draft::from_definition(&definition);
        assert_eq!(
            again.body_rows,
            [
                ("LastName".to_owned(), "{{${last_name}}}".to_owned()),
                ("Company".to_owned(), "Acme".to_owned())
            ]
        );
        assert_eq!(
            again.url,
            "https://x.my.salesforce.com/services/data/v60.0/sobjects/Lead/"
        );
        assert_eq!(
            again.header_rows,
            [("Content-Type".to_owned(), "application/json".to_owned())]
        );
    }

    #[test]
    fn a_raw_body_stays_raw() {
        let mut draft = Draft::blank();
        draft.name = "t".into();
        draft.url = "https://example.com/".into();
        draft.body_mode = "raw".into();
        draft.raw_body = "{\"a\": \"{{${first_name}}}\"}".into();
        let definition = TemplateDefinition::from_json(&draft.to_json()).expect("parses");
        assert_eq!(Draft::from_definition(&definition).raw_body, draft.raw_body);
    }
}
