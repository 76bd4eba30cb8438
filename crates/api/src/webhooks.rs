//! Webhook endpoints: templates (create, info, list, update, archive, preview, test send),
//! Connected Content credentials, and the message activity log. Handlers parse the request into
//! `leadwire-webhooks` values by hand and call the [`WebhookService`]; secrets never appear in
//! a response.
//!
//! | Method | Path | Permission |
//! |---|---|---|
//! | POST | `/templates/webhook/create` | `templates.write` |
//! | GET | `/templates/webhook/info?template_id=` | `templates.read` |
//! | GET | `/templates/webhook/list?include_archived=&limit=&offset=` | `templates.read` |
//! | POST | `/templates/webhook/update` | `templates.write` |
//! | POST | `/templates/webhook/archive` | `templates.write` |
//! | POST | `/templates/webhook/preview` | `templates.read` |
//! | POST | `/templates/webhook/test_send` | `templates.write` |
//! | POST | `/credentials/create` | `credentials.write` |
//! | GET | `/credentials/list` | `credentials.read` |
//! | GET | `/activity?campaign_id=&user_id=&type=&since=&until=&after_id=&limit=` | `activity.read` |

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use leadwire_profiles::Identifier;
use leadwire_store::{ActivityQuery, ActivityType};
use leadwire_webhooks::credentials::NewCredential;
use leadwire_webhooks::service::{PreviewUser, RenderRequest, TemplateSource};
use leadwire_webhooks::templates::TemplateDefinition;
use leadwire_webhooks::{RenderProperties, WebhookService};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::routes::{json_body, key_info, require};
use crate::{ApiError, AppState, Permission};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/templates/webhook/create", post(create))
        .route("/templates/webhook/info", get(info))
        .route("/templates/webhook/list", get(list))
        .route("/templates/webhook/update", post(update))
        .route("/templates/webhook/archive", post(archive))
        .route("/templates/webhook/preview", post(preview))
        .route("/templates/webhook/test_send", post(test_send))
        .route("/credentials/create", post(credential_create))
        .route("/credentials/list", get(credential_list))
        .route("/activity", get(activity))
}

fn service(state: &AppState) -> Result<&Arc<WebhookService>, ApiError> {
    state.webhooks.as_ref().ok_or(ApiError::Unavailable(
        "Webhooks are not enabled on this server: start it with 'leadwire serve'",
    ))
}

fn qs<T>(q: Result<Query<T>, QueryRejection>, usage: &str) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request(format!("bad query string: {e}; use {usage}")))
}

fn str_field<'a>(body: &'a Json, key: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_request(format!("'{key}' must be a string"))),
    }
}

fn template_id(body: &Json) -> Result<String, ApiError> {
    str_field(body, "template_id")?
        .map(str::to_owned)
        .ok_or_else(|| ApiError::bad_request("'template_id' is required"))
}

/// What the linter says about a saved template (saving never waits on it to be clean).
async fn warnings_json(
    service: &leadwire_webhooks::WebhookService,
    definition: &TemplateDefinition,
) -> Vec<Json> {
    service
        .lint(definition)
        .await
        .iter()
        .map(|w| w.to_json())
        .collect()
}

async fn create(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::TemplatesWrite)?;
    let body = json_body(body, state.config.max_body_bytes)?;
    if body.get("template_id").is_some() {
        return Err(ApiError::bad_request(
            "'template_id' is chosen by the server; to change a template use /templates/webhook/update",
        ));
    }
    let definition = TemplateDefinition::from_json(&body)?;
    let service = service(&state)?;
    let record = service.create_template(definition).await?;
    let warnings = warnings_json(service, &record.definition).await;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "message": "success",
            "template_id": record.id,
            "template": record.to_json(),
            "warnings": warnings,
        })),
    )
        .into_response())
}

#[derive(Deserialize)]
struct InfoQuery {
    template_id: String,
}

async fn info(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    query: Result<Query<InfoQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::TemplatesRead)?;
    let q = qs(query, "?template_id=ID")?;
    let record = service(&state)?.template(&q.template_id).await?;
    let mut out = record.to_json();
    out["message"] = json!("success");
    Ok(axum::Json(out).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    include_archived: Option<bool>,
    limit: Option<usize>,
    offset: Option<usize>,
}

async fn list(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::TemplatesRead)?;
    let q = qs(query, "?include_archived=true&limit=100&offset=0")?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let records = service(&state)?
        .list_templates(
            q.include_archived.unwrap_or(false),
            limit,
            q.offset.unwrap_or(0),
        )
        .await?;
    let templates: Vec<Json> = records.iter().map(|r| r.to_json()).collect();
    Ok(
        axum::Json(json!({"message": "success", "count": templates.len(), "templates": templates}))
            .into_response(),
    )
}

async fn update(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::TemplatesWrite)?;
    let body = json_body(body, state.config.max_body_bytes)?;
    let id = template_id(&body)?;
    let definition = TemplateDefinition::from_json(&body)?;
    let service = service(&state)?;
    let record = service.update_template(&id, definition).await?;
    let warnings = warnings_json(service, &record.definition).await;
    Ok(axum::Json(json!({
        "message": "success",
        "template_id": record.id,
        "template": record.to_json(),
        "warnings": warnings,
    }))
    .into_response())
}

async fn archive(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::TemplatesWrite)?;
    let body = json_body(body, state.config.max_body_bytes)?;
    let id = template_id(&body)?;
    let record = service(&state)?.archive_template(&id).await?;
    Ok(
        axum::Json(json!({"message": "success", "template_id": record.id, "archived": true}))
            .into_response(),
    )
}

/// `{"template_id": ID | "template": {...}, "external_id": ID | "user": {...},
///   "properties": {...}, "campaign_id": ID}`
fn render_request(body: &Json) -> Result<RenderRequest, ApiError> {
    let template = match (str_field(body, "template_id")?, body.get("template")) {
        (Some(id), None) => TemplateSource::Stored(id.to_owned()),
        (None, Some(t)) => TemplateSource::Draft(Box::new(TemplateDefinition::from_json(t)?)),
        _ => {
            return Err(ApiError::bad_request(
                "give either 'template_id' (a saved template) or 'template' (an unsaved definition)",
            ));
        }
    };
    let user = match (str_field(body, "external_id")?, body.get("user")) {
        (Some(id), None) => PreviewUser::Existing(Identifier::ExternalId(id.to_owned())),
        (None, Some(u)) if u.is_object() => PreviewUser::Custom(u.clone()),
        (None, Some(_)) => {
            return Err(ApiError::bad_request(
                "'user' must be an object: Braze's export shape ({\"external_id\": ..., \"email\": ..., \"custom_attributes\": {...}}) or the render context ({\"profile\": {...}, \"custom_attributes\": {...}})",
            ));
        }
        _ => {
            return Err(ApiError::bad_request(
                "give either 'external_id' (an existing user) or 'user' (a custom user)",
            ));
        }
    };
    let properties = match body.get("properties") {
        None | Some(Json::Null) => RenderProperties::default(),
        Some(p) => RenderProperties::from_json(p)?,
    };
    Ok(RenderRequest {
        template,
        user,
        properties,
        campaign_id: str_field(body, "campaign_id")?.map(str::to_owned),
    })
}

async fn preview(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::TemplatesRead)?;
    let body = json_body(body, state.config.max_body_bytes)?;
    let request = render_request(&body)?;
    let result = service(&state)?.preview(request).await?;
    let mut out = result.to_json();
    // A render error or abort keeps its own message: that text is what the user needs.
    if out.get("message").is_none() {
        out["message"] = json!("success");
    }
    Ok(axum::Json(out).into_response())
}

async fn test_send(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::TemplatesWrite)?;
    let body = json_body(body, state.config.max_body_bytes)?;
    let request = render_request(&body)?;
    let result = service(&state)?.test_send(request).await?;
    let mut out = result.to_json();
    if out.get("message").is_none() {
        out["message"] = json!("success");
    }
    // Nothing was sent because the template did not render: say so with a non-2xx status.
    let status = if out["outcome"] == "render_error" {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(out)).into_response())
}

fn pairs(value: Option<&Json>, key: &str) -> Result<Vec<(String, String)>, ApiError> {
    match value {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                v.as_str()
                    .map(|v| (k.clone(), v.to_owned()))
                    .ok_or_else(|| ApiError::bad_request(format!("'{key}.{k}' must be a string")))
            })
            .collect(),
        Some(_) => Err(ApiError::bad_request(format!(
            "'{key}' must be an object of header name to value"
        ))),
    }
}

/// `{"name", "type": "basic", "username", "password"}` or
/// `{"name", "type": "token", "headers": {...}, "allowed_domain"}`. Creates or replaces.
/// `type` is the name YAML uses too; `kind`, this endpoint's first name for it, is still read.
async fn credential_create(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::CredentialsWrite)?;
    let body = json_body(body, state.config.max_body_bytes)?;
    let name = str_field(&body, "name")?
        .ok_or_else(|| ApiError::bad_request("'name' is required"))?
        .to_owned();
    let kind = match str_field(&body, "type")? {
        Some(kind) => Some(kind),
        None => str_field(&body, "kind")?,
    };
    let credential = match kind {
        Some("basic") => NewCredential::Basic {
            name,
            username: str_field(&body, "username")?
                .ok_or_else(|| ApiError::bad_request("a basic credential needs 'username'"))?
                .to_owned(),
            password: str_field(&body, "password")?
                .ok_or_else(|| ApiError::bad_request("a basic credential needs 'password'"))?
                .to_owned(),
        },
        Some("token") => NewCredential::Token {
            name,
            headers: pairs(body.get("headers"), "headers")?,
            allowed_domain: str_field(&body, "allowed_domain")?.map(str::to_owned),
        },
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "'type' is '{other}'; use 'basic' or 'token'"
            )));
        }
        None => {
            return Err(ApiError::bad_request(
                "'type' is required: 'basic' (username and password) or 'token' (headers)",
            ));
        }
    };
    let info = service(&state)?.save_credential(credential).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"message": "success", "credential": info.to_json()})),
    )
        .into_response())
}

async fn credential_list(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::CredentialsRead)?;
    let list = service(&state)?.list_credentials().await?;
    let credentials: Vec<Json> = list.iter().map(|c| c.to_json()).collect();
    Ok(axum::Json(json!({"message": "success", "credentials": credentials})).into_response())
}

#[derive(Deserialize)]
struct ActivityParams {
    campaign_id: Option<String>,
    user_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    since: Option<String>,
    until: Option<String>,
    after_id: Option<i64>,
    limit: Option<usize>,
}

fn time(value: Option<String>, key: &str) -> Result<Option<SystemTime>, ApiError> {
    value
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(&v)
                .map(SystemTime::from)
                .map_err(|e| {
                    ApiError::bad_request(format!(
                        "'{key}' is not an RFC 3339 time like 2026-01-31T12:00:00Z: {e}"
                    ))
                })
        })
        .transpose()
}

async fn activity(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    query: Result<Query<ActivityParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::ActivityRead)?;
    let q = qs(
        query,
        "?campaign_id=&user_id=&type=&since=RFC3339&until=RFC3339&after_id=N&limit=M",
    )?;
    let query = ActivityQuery {
        campaign_id: q.campaign_id,
        user_id: q.user_id,
        kind: q
            .kind
            .map(|k| k.parse::<ActivityType>())
            .transpose()
            .map_err(ApiError::bad_request)?,
        since: time(q.since, "since")?,
        until: time(q.until, "until")?,
        after_id: q.after_id,
        limit: q.limit,
    };
    let entries = service(&state)?.activity(query).await?;
    let last = entries.iter().map(|e| e.id).max();
    let entries: Vec<Json> = entries
        .iter()
        .map(leadwire_webhooks::activity::record_json)
        .collect();
    Ok(
        axum::Json(json!({"message": "success", "entries": entries, "last_id": last}))
            .into_response(),
    )
}
