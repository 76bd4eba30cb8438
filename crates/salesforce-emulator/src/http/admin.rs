//! The admin API under `/__admin/`: see and reset what happened, change faults at run time, and a
//! trivial 204 endpoint the benchmark compares against. Not Salesforce: no auth, no limits, no faults.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde::Deserialize;
use serde_json::json;

use super::Shared;
use super::respond;
use crate::faults::FaultSettings;

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/noop", any(noop))
        .route("/health", get(health))
        .route("/leads", get(leads))
        .route("/leads/count", get(count))
        .route("/state", get(state))
        .route("/requests", get(requests))
        .route("/reset", post(reset))
        .route("/revoke-tokens", post(revoke_tokens))
        .route("/faults", get(get_faults).put(put_faults))
}

async fn noop() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    respond::json(
        200,
        &json!({"status": "ok", "org_id": shared.org_id, "user_id": shared.user_id}),
        None,
    )
}

#[derive(Deserialize)]
struct LeadsParams {
    #[serde(default)]
    include_deleted: bool,
}

async fn leads(State(shared): State<Arc<Shared>>, Query(params): Query<LeadsParams>) -> Response {
    respond::json(200, &shared.admin_leads(params.include_deleted), None)
}

async fn count(State(shared): State<Arc<Shared>>) -> Response {
    let org = shared.org();
    respond::json(
        200,
        &json!({"live": org.store.live_count(), "deleted": org.store.deleted_count()}),
        None,
    )
}

async fn state(State(shared): State<Arc<Shared>>) -> Response {
    let leads = shared.admin_leads(true);
    let (usage, sessions) = {
        let org = shared.org();
        (org.usage.report(), org.sessions.len())
    };
    let body = json!({
        "leads": leads,
        "api_usage": usage,
        "sessions": sessions,
        "faults": shared.fault_settings(),
    });
    respond::json(200, &body, None)
}

#[derive(Deserialize)]
struct RequestsParams {
    #[serde(default)]
    since: u64,
}

async fn requests(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<RequestsParams>,
) -> Response {
    respond::json(200, &shared.request_log(params.since), None)
}

async fn reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.reset();
    StatusCode::NO_CONTENT
}

async fn revoke_tokens(State(shared): State<Arc<Shared>>) -> Response {
    let revoked = shared.org().sessions.revoke_all();
    shared.state_changed();
    respond::json(200, &json!({"revoked": revoked}), None)
}

async fn get_faults(State(shared): State<Arc<Shared>>) -> Response {
    respond::json(200, &shared.fault_settings(), None)
}

/// Replaces the fault settings (and restarts the generator from their seed).
async fn put_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let settings: FaultSettings = match serde_json::from_slice(&body) {
        Ok(settings) => settings,
        Err(error) => return respond::json(400, &json!({"error": error.to_string()}), None),
    };
    match shared.set_faults(settings) {
        Ok(()) => respond::json(200, &shared.fault_settings(), None),
        Err(error) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": error.to_string()})),
        )
            .into_response(),
    }
}
