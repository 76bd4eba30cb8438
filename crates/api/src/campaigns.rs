//! Campaign endpoints: Braze's `POST /campaigns/trigger/send`, and leadwire's campaign management
//! (`/campaigns/create`, `/campaigns/details`, `/campaigns/list`, `/campaigns/update`,
//! `/campaigns/pause`, `/campaigns/resume`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadwire_campaigns::{CampaignSpec, CampaignStatus};
use leadwire_engine::{CampaignEngine, EngineError, Recipient};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::routes::{json_body, key_info, require, required_str};
use crate::{ApiError, AppState, Permission};

/// Braze's cap on recipients per trigger request.
const MAX_RECIPIENTS: usize = 50;
/// Braze's cap on a trigger_properties object.
const MAX_TRIGGER_PROPERTIES_BYTES: usize = 50 * 1024;

fn engine(state: &AppState) -> Result<&Arc<CampaignEngine>, ApiError> {
    state
        .campaigns
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("campaigns are not enabled on this server"))
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Invalid(m) => ApiError::bad_request(m),
            EngineError::NotFound(id) => {
                ApiError::NotFound(format!("campaign '{id}' does not exist"))
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, EngineError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::from)
}

/// `POST /campaigns/trigger/send`: `attributes` are applied before the send (Braze), then one
/// send per recipient is enqueued (or one per eligible user with `broadcast`).
pub(crate) async fn trigger_send(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::CampaignsTriggerSend)?;
    let engine = engine(&state)?.clone();
    let body = json_body(body, state.config.max_body_bytes)?;
    let campaign_id = required_str(&body, "campaign_id")?;
    let broadcast = body
        .get("broadcast")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let trigger_properties = body
        .get("trigger_properties")
        .filter(|v| !v.is_null())
        .cloned();
    if let Some(tp) = &trigger_properties {
        if !tp.is_object() {
            return Err(ApiError::bad_request(
                "'trigger_properties' must be an object",
            ));
        }
        if tp.to_string().len() > MAX_TRIGGER_PROPERTIES_BYTES {
            return Err(ApiError::bad_request(
                "'trigger_properties' is larger than 50 KB",
            ));
        }
    }
    let raw = match body.get("recipients") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Array(items)) => items.clone(),
        Some(_) => return Err(ApiError::bad_request("'recipients' must be an array")),
    };
    if broadcast && !raw.is_empty() {
        return Err(ApiError::bad_request(
            "'recipients' is not allowed with 'broadcast': true",
        ));
    }
    if !broadcast && raw.is_empty() {
        return Err(ApiError::bad_request(
            "give 'recipients', or set 'broadcast': true to send to the whole audience",
        ));
    }
    if raw.len() > MAX_RECIPIENTS {
        return Err(ApiError::bad_request(format!(
            "'recipients' may hold at most {MAX_RECIPIENTS} objects, got {}",
            raw.len()
        )));
    }
    let mut recipients = Vec::new();
    let mut updates = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let (user, update) = crate::recipients::parse(r, i)?;
        if let Some(update) = update {
            updates.push((i, update));
        }
        let own = r
            .get("trigger_properties")
            .filter(|v| !v.is_null())
            .cloned();
        recipients.push(Recipient {
            user,
            trigger_properties: own,
        });
    }
    let mut errors = crate::recipients::apply_attributes(&state, updates).await?;
    let (dispatch_id, missing) = blocking(move || {
        engine.trigger_send(
            &campaign_id,
            &recipients,
            broadcast,
            trigger_properties.as_ref(),
        )
    })
    .await?;
    errors.extend(missing.iter().map(|id| json!({"type": format!("no user with {}", id.describe()), "input_array": "recipients"})));
    let mut out = json!({"dispatch_id": dispatch_id, "message": "success"});
    if !errors.is_empty() {
        out["errors"] = Json::Array(errors);
    }
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

fn spec_from(body: &Json) -> Result<CampaignSpec, ApiError> {
    let mut spec = body.clone();
    if let Json::Object(m) = &mut spec {
        m.remove("campaign_id");
    }
    serde_json::from_value(spec).map_err(|e| ApiError::bad_request(format!("campaign: {e}")))
}

pub(crate) async fn create(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::CampaignsWrite)?;
    let engine = engine(&state)?.clone();
    let spec = spec_from(&json_body(body, state.config.max_body_bytes)?)?;
    let name = spec.name.clone();
    if engine
        .campaigns()
        .map_err(ApiError::from)?
        .iter()
        .any(|c| c.spec.name == name)
    {
        return Err(ApiError::Conflict(format!(
            "a campaign named '{name}' exists; update it with /campaigns/update"
        )));
    }
    let record = blocking(move || engine.save_campaign(spec)).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(
            json!({"message": "success", "campaign_id": record.id, "campaign": record.to_json()}),
        ),
    )
        .into_response())
}

pub(crate) async fn update(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::CampaignsWrite)?;
    let engine = engine(&state)?.clone();
    let body = json_body(body, state.config.max_body_bytes)?;
    let id = required_str(&body, "campaign_id")?;
    let existing = engine.campaign(&id).map_err(ApiError::from)?;
    let spec = spec_from(&body)?;
    if spec.name != existing.spec.name {
        return Err(ApiError::bad_request(
            "a campaign's 'name' cannot change; create a new campaign instead",
        ));
    }
    let record = blocking(move || engine.save_campaign(spec)).await?;
    Ok(axum::Json(json!({"message": "success", "campaign": record.to_json()})).into_response())
}

#[derive(Deserialize)]
pub(crate) struct IdQuery {
    campaign_id: String,
}

pub(crate) async fn details(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    query: Result<Query<IdQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::CampaignsRead)?;
    let Query(q) = query.map_err(|_| ApiError::bad_request("give ?campaign_id=ID"))?;
    let record = engine(&state)?.campaign(&q.campaign_id)?;
    Ok(axum::Json(json!({"message": "success", "campaign": record.to_json()})).into_response())
}

pub(crate) async fn list(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::CampaignsRead)?;
    let campaigns: Vec<Json> = engine(&state)?
        .campaigns()?
        .iter()
        .map(|c| c.to_json())
        .collect();
    Ok(axum::Json(json!({"message": "success", "campaigns": campaigns})).into_response())
}

async fn set_status(
    state: AppState,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
    status: CampaignStatus,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::CampaignsWrite)?;
    let engine = engine(&state)?.clone();
    let body = json_body(body, state.config.max_body_bytes)?;
    let id = required_str(&body, "campaign_id")?;
    let record = blocking(move || engine.set_status(&id, status)).await?;
    Ok(axum::Json(json!({"message": "success", "campaign": record.to_json()})).into_response())
}

pub(crate) async fn pause(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    set_status(state, ext, body, CampaignStatus::Paused).await
}

pub(crate) async fn resume(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    set_status(state, ext, body, CampaignStatus::Active).await
}
