//! Canvas endpoints: Braze's `POST /canvas/trigger/send`, and leadwire's Canvas management
//! (`/canvas/create`, `/canvas/update`, `/canvas/details`, `/canvas/list`, `/canvas/pause`,
//! `/canvas/resume`). Journeys themselves run in `leadwire-canvas`; this module only speaks HTTP.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use leadwire_canvas::{CanvasEngine, CanvasSpec, CanvasStatus, EngineError, EntryRecipient};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::routes::{json_body, key_info, require, required_str};
use crate::{ApiError, AppState, Permission};

/// Braze's cap on recipients per trigger request.
const MAX_RECIPIENTS: usize = 50;
/// Braze's cap on a context / canvas_entry_properties object.
const MAX_PROPERTIES_BYTES: usize = 50 * 1024;

fn engine(state: &AppState) -> Result<&Arc<CanvasEngine>, ApiError> {
    state
        .canvases
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("canvases are not enabled on this server"))
}

fn api_error(e: EngineError) -> ApiError {
    match e {
        EngineError::Invalid(m) => ApiError::bad_request(m),
        EngineError::NotFound(id) => ApiError::NotFound(format!("canvas '{id}' does not exist")),
        other => ApiError::Internal(other.to_string()),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(api_error)
}

fn object_field(body: &Json, key: &str, at: &str) -> Result<Option<Json>, ApiError> {
    match body.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(v @ Json::Object(_)) => {
            if v.to_string().len() > MAX_PROPERTIES_BYTES {
                return Err(ApiError::bad_request(format!(
                    "'{at}{key}' is larger than 50 KB"
                )));
            }
            Ok(Some(v.clone()))
        }
        Some(_) => Err(ApiError::bad_request(format!(
            "'{at}{key}' must be an object"
        ))),
    }
}

/// `POST /canvas/trigger/send`: `attributes` are applied first (Braze), then each recipient
/// enters the Canvas (audience and re-entry permitting). A paused Canvas answers 201 with a
/// notice and enters nobody, as Braze does.
pub(crate) async fn trigger_send(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::CanvasTriggerSend)?;
    let engine = engine(&state)?.clone();
    let body = json_body(body, state.config.max_body_bytes)?;
    let canvas_id = required_str(&body, "canvas_id")?;
    let context = object_field(&body, "context", "")?;
    let entry_properties = object_field(&body, "canvas_entry_properties", "")?;
    if body.get("broadcast").and_then(Json::as_bool) == Some(true) {
        return Err(ApiError::bad_request(
            "'broadcast' is not supported for Canvases yet; give 'recipients'",
        ));
    }
    let raw = match body.get("recipients") {
        Some(Json::Array(items)) if !items.is_empty() => items.clone(),
        Some(Json::Array(_)) | None | Some(Json::Null) => {
            return Err(ApiError::bad_request("'recipients' is required"));
        }
        Some(_) => return Err(ApiError::bad_request("'recipients' must be an array")),
    };
    if raw.len() > MAX_RECIPIENTS {
        return Err(ApiError::bad_request(format!(
            "'recipients' may hold at most {MAX_RECIPIENTS} objects, got {}",
            raw.len()
        )));
    }
    let record = engine.canvas(&canvas_id).map_err(api_error)?;
    match record.spec.status {
        CanvasStatus::Active => {}
        CanvasStatus::Paused => {
            return Ok(accepted(
                "The Canvas is paused. Resume the Canvas to ensure trigger requests will take effect.",
                None,
                Vec::new(),
            ));
        }
        other => {
            return Ok(accepted(
                &format!(
                    "The Canvas is {}; trigger requests take no effect.",
                    serde_json::to_value(other)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                ),
                None,
                Vec::new(),
            ));
        }
    }
    let mut recipients = Vec::new();
    let mut updates = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let (user, update) = crate::recipients::parse(r, i)?;
        if let Some(update) = update {
            updates.push((i, update));
        }
        let at = format!("recipients[{i}].");
        recipients.push(EntryRecipient {
            user,
            entry_properties: object_field(r, "canvas_entry_properties", &at)?,
            context: object_field(r, "context", &at)?,
        });
    }
    let mut errors = crate::recipients::apply_attributes(&state, updates).await?;
    let id = record.id.clone();
    let (dispatch_id, missing) = blocking(move || {
        engine.trigger_send(
            &id,
            &recipients,
            entry_properties.as_ref(),
            context.as_ref(),
            Utc::now(),
        )
    })
    .await?;
    errors.extend(missing.iter().map(|id| json!({"type": format!("no user with {}", id.describe()), "input_array": "recipients"})));
    Ok(accepted("", Some(dispatch_id), errors))
}

fn accepted(notice: &str, dispatch_id: Option<String>, errors: Vec<Json>) -> Response {
    let mut out = json!({"notice": notice, "dispatch_id": dispatch_id, "message": "success"});
    if !errors.is_empty() {
        out["errors"] = Json::Array(errors);
    }
    (StatusCode::CREATED, axum::Json(out)).into_response()
}

fn spec_from(body: &Json) -> Result<CanvasSpec, ApiError> {
    let mut spec = body.clone();
    if let Json::Object(m) = &mut spec {
        m.remove("canvas_id");
    }
    serde_json::from_value(spec).map_err(|e| ApiError::bad_request(format!("canvas: {e}")))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::CanvasWrite)?;
    let engine = engine(&state)?.clone();
    let spec = spec_from(&json_body(body, state.config.max_body_bytes)?)?;
    let name = spec.name.clone();
    if engine
        .canvases()
        .map_err(api_error)?
        .iter()
        .any(|c| c.spec.name == name)
    {
        return Err(ApiError::Conflict(format!(
            "a Canvas named '{name}' exists; update it with /canvas/update"
        )));
    }
    let record = save(&state, &engine, spec).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(
            json!({"message": "success", "canvas_id": record.id, "canvas": record.to_json()}),
        ),
    )
        .into_response())
}

pub(crate) async fn update(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::CanvasWrite)?;
    let engine = engine(&state)?.clone();
    let body = json_body(body, state.config.max_body_bytes)?;
    let id = required_str(&body, "canvas_id")?;
    let existing = engine.canvas(&id).map_err(api_error)?;
    let spec = spec_from(&body)?;
    if spec.name != existing.spec.name {
        return Err(ApiError::bad_request(
            "a Canvas's 'name' cannot change; create a new Canvas instead",
        ));
    }
    let record = save(&state, &engine, spec).await?;
    Ok(axum::Json(json!({"message": "success", "canvas": record.to_json()})).into_response())
}

/// Saves a Canvas, with its inline webhooks saved as templates when the webhook service is on.
async fn save(
    state: &AppState,
    engine: &Arc<CanvasEngine>,
    spec: CanvasSpec,
) -> Result<leadwire_canvas::CanvasRecord, ApiError> {
    match &state.webhooks {
        Some(webhooks) => engine
            .save_canvas_with_webhooks(spec, webhooks)
            .await
            .map_err(api_error),
        None => {
            let engine = engine.clone();
            blocking(move || engine.save_canvas(spec)).await
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct IdQuery {
    canvas_id: String,
}

pub(crate) async fn details(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    query: Result<Query<IdQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::CanvasRead)?;
    let Query(q) = query.map_err(|_| ApiError::bad_request("give ?canvas_id=ID"))?;
    let record = engine(&state)?.canvas(&q.canvas_id).map_err(api_error)?;
    Ok(axum::Json(json!({"message": "success", "canvas": record.to_json()})).into_response())
}

pub(crate) async fn list(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::CanvasRead)?;
    let canvases: Vec<Json> = engine(&state)?
        .canvases()
        .map_err(api_error)?
        .iter()
        .map(|c| c.to_json())
        .collect();
    Ok(axum::Json(json!({"message": "success", "canvases": canvases})).into_response())
}

async fn set_status(
    state: AppState,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
    status: CanvasStatus,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::CanvasWrite)?;
    let engine = engine(&state)?.clone();
    let body = json_body(body, state.config.max_body_bytes)?;
    let id = required_str(&body, "canvas_id")?;
    let record = blocking(move || engine.set_status(&id, status)).await?;
    Ok(axum::Json(json!({"message": "success", "canvas": record.to_json()})).into_response())
}

pub(crate) async fn pause(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    set_status(state, ext, body, CanvasStatus::Paused).await
}

pub(crate) async fn resume(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    set_status(state, ext, body, CanvasStatus::Active).await
}
