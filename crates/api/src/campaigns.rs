//! Campaign endpoints: Braze's `POST /campaigns/trigger/send`, and the campaign engine as a
//! [`Managed`] resource (`/campaigns/{create,update,details,list,pause,resume}`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadwire_campaigns::{CampaignSpec, CampaignStatus, TriggerSpec};
use leadwire_engine::{CampaignEngine, CampaignRecord, EngineError, Recipient};
use serde_json::{Value as Json, json};

use crate::managed::{Managed, Shown};
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
    let (dispatch_id, missing) = engine
        .trigger_send(&campaign_id, recipients, broadcast, trigger_properties)
        .await?;
    errors.extend(missing.iter().map(|id| json!({"type": format!("no user with {}", id.describe()), "input_array": "recipients"})));
    let mut out = json!({"dispatch_id": dispatch_id, "message": "success"});
    if !errors.is_empty() {
        out["errors"] = Json::Array(errors);
    }
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

impl Managed for CampaignEngine {
    type Spec = CampaignSpec;
    const KIND: &'static str = "campaign";
    const TITLE: &'static str = "campaign";
    const PLURAL: &'static str = "campaigns";
    const READ: Permission = Permission::CampaignsRead;
    const WRITE: Permission = Permission::CampaignsWrite;

    fn service(state: &AppState) -> Result<Arc<Self>, ApiError> {
        engine(state).cloned()
    }

    fn name(spec: &CampaignSpec) -> &str {
        &spec.name
    }

    async fn all(&self) -> Result<Vec<Shown>, EngineError> {
        Ok(self.campaigns().await?.into_iter().map(shown).collect())
    }

    async fn one(&self, id_or_name: &str) -> Result<Shown, EngineError> {
        self.campaign(id_or_name).await.map(shown)
    }

    async fn save(&self, _state: &AppState, spec: CampaignSpec) -> Result<Shown, EngineError> {
        self.save_campaign(spec).await.map(shown)
    }

    async fn set_active(&self, id_or_name: &str, active: bool) -> Result<Shown, EngineError> {
        let status = if active {
            CampaignStatus::Active
        } else {
            CampaignStatus::Paused
        };
        self.set_status(id_or_name, status).await.map(shown)
    }
}

fn shown(record: CampaignRecord) -> Shown {
    let api_triggered = matches!(record.spec.trigger, TriggerSpec::ApiTriggered);
    let status = serde_json::to_value(record.spec.status).unwrap_or(Json::Null);
    let (mut listed, mut details) = crate::managed::braze_fields(
        &record.id,
        &record.spec.name,
        &record.spec.description,
        record.last_edited,
        status.as_str().unwrap_or(""),
    );
    listed["is_api_campaign"] = json!(api_triggered);
    details["schedule_type"] = json!(if api_triggered {
        "api_triggered"
    } else {
        "action_based"
    });
    Shown {
        json: record.to_json(),
        listed,
        details,
        id: record.id,
        name: record.spec.name,
    }
}
