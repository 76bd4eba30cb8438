//! Canvas endpoints: Braze's `POST /canvas/trigger/send`, and the Canvas engine as a [`Managed`]
//! resource (`/canvas/{create,update,details,list,pause,resume}`). Journeys themselves run in `leadwire-canvas`; this module only speaks HTTP.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use leadwire_canvas::{
    CanvasEngine, CanvasRecord, CanvasSpec, CanvasStatus, EngineError, EntryRecipient,
};
use serde_json::{Value as Json, json};

use crate::managed::{Managed, Shown};
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
    let record = engine.canvas(&canvas_id).await?;
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
    let (dispatch_id, missing) = engine
        .trigger_send(&id, recipients, entry_properties, context, Utc::now())
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

impl Managed for CanvasEngine {
    type Spec = CanvasSpec;
    const KIND: &'static str = "canvas";
    const TITLE: &'static str = "Canvas";
    const PLURAL: &'static str = "canvases";
    const READ: Permission = Permission::CanvasRead;
    const WRITE: Permission = Permission::CanvasWrite;

    fn service(state: &AppState) -> Result<Arc<Self>, ApiError> {
        engine(state).cloned()
    }

    fn name(spec: &CanvasSpec) -> &str {
        &spec.name
    }

    async fn all(&self) -> Result<Vec<Shown>, EngineError> {
        Ok(self.canvases().await?.into_iter().map(shown).collect())
    }

    async fn one(&self, id_or_name: &str) -> Result<Shown, EngineError> {
        self.canvas(id_or_name).await.map(shown)
    }

    /// Saves a Canvas, with its inline webhooks saved as templates when the webhook service is
    /// on.
    async fn save(&self, state: &AppState, spec: CanvasSpec) -> Result<Shown, EngineError> {
        match &state.webhooks {
            Some(webhooks) => self.save_canvas_with_webhooks(spec, webhooks).await,
            None => self.save_canvas(spec).await,
        }
        .map(shown)
    }

    async fn set_active(&self, id_or_name: &str, active: bool) -> Result<Shown, EngineError> {
        let status = if active {
            CanvasStatus::Active
        } else {
            CanvasStatus::Paused
        };
        self.set_status(id_or_name, status).await.map(shown)
    }
}

fn shown(record: CanvasRecord) -> Shown {
    let status = serde_json::to_value(record.spec.status).unwrap_or(Json::Null);
    let (listed, mut details) = crate::managed::braze_fields(
        &record.id,
        &record.spec.name,
        &record.spec.description,
        record.last_edited,
        status.as_str().unwrap_or(""),
    );
    details["schedule_type"] = json!("action_based");
    details["steps"] = record
        .spec
        .steps
        .iter()
        .map(|step| json!({"id": step.id, "name": step.display_name()}))
        .collect();
    Shown {
        json: record.to_json(),
        listed,
        details,
        id: record.id,
        name: record.spec.name,
    }
}
