//! The management endpoints campaigns and Canvases share: `/{kind}/create`, `/{kind}/update`,
//! `/{kind}/details`, `/{kind}/list`, `/{kind}/pause`, `/{kind}/resume`. One generic handler each
//! over [`Managed`], implemented by the campaign engine and the Canvas engine.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use leadwire_engine::EngineError;
use serde::de::DeserializeOwned;
use serde_json::{Value as Json, json};

use crate::routes::{json_body, key_info, require, required_str};
use crate::{ApiError, AppState, Permission};

/// A stored resource as the API shows it.
pub(crate) struct Shown {
    pub id: String,
    pub name: String,
    /// The whole definition with its id (leadwire's own field, under `campaign` / `canvas`).
    pub json: Json,
    /// Braze's list entry: `{id, name, last_edited, tags}` (and `is_api_campaign`).
    pub listed: Json,
    /// Braze's details fields, answered at the top level beside the whole definition.
    pub details: Json,
}

/// The fields Braze's list and details answers share, from a record's parts.
pub(crate) fn braze_fields(
    id: &str,
    name: &str,
    description: &str,
    last_edited: chrono::DateTime<chrono::Utc>,
    status: &str,
) -> (Json, Json) {
    let last_edited = last_edited.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let listed =
        json!({"id": id, "name": name, "last_edited": last_edited, "tags": [], "status": status});
    let details = json!({
        "name": name,
        "description": description,
        "updated_at": last_edited,
        "archived": status == "archived",
        "draft": status == "draft",
        "channels": ["webhook"],
        "tags": [],
        "status": status,
    });
    (listed, details)
}

/// A resource with management endpoints.
pub(crate) trait Managed: Send + Sync + 'static {
    type Spec: DeserializeOwned + Send + 'static;
    /// `campaign` / `canvas`: the id field is `{KIND}_id`, the answer's object `{KIND}`.
    const KIND: &'static str;
    /// How messages name it (`campaign`, `Canvas`).
    const TITLE: &'static str;
    /// The list's key (`campaigns`, `canvases`).
    const PLURAL: &'static str;
    const READ: Permission;
    const WRITE: Permission;

    fn service(state: &AppState) -> Result<Arc<Self>, ApiError>;
    fn name(spec: &Self::Spec) -> &str;
    fn all(&self) -> impl Future<Output = Result<Vec<Shown>, EngineError>> + Send;
    fn one(&self, id_or_name: &str) -> impl Future<Output = Result<Shown, EngineError>> + Send;
    fn save(
        &self,
        state: &AppState,
        spec: Self::Spec,
    ) -> impl Future<Output = Result<Shown, EngineError>> + Send;
    fn set_active(
        &self,
        id_or_name: &str,
        active: bool,
    ) -> impl Future<Output = Result<Shown, EngineError>> + Send;
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Invalid(m) => ApiError::bad_request(m),
            EngineError::NotFound { what, id } => {
                ApiError::NotFound(format!("{what} '{id}' does not exist"))
            }
            EngineError::Store(leadwire_store::StoreError::Conflict(m)) => ApiError::Conflict(m),
            EngineError::Store(e @ leadwire_store::StoreError::Unavailable(_)) => e.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

fn spec_from<M: Managed>(body: &Json) -> Result<M::Spec, ApiError> {
    let mut spec = body.clone();
    if let Json::Object(m) = &mut spec {
        m.remove(&format!("{}_id", M::KIND));
    }
    serde_json::from_value(spec).map_err(|e| ApiError::bad_request(format!("{}: {e}", M::KIND)))
}

fn answer(kind: &str, shown: Shown) -> Json {
    json!({"message": "success", kind: shown.json})
}

pub(crate) async fn create<M: Managed>(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, M::WRITE)?;
    let service = M::service(&state)?;
    let spec = spec_from::<M>(&json_body(body, state.config.max_body_bytes)?)?;
    let name = M::name(&spec).to_owned();
    if service.all().await?.iter().any(|c| c.name == name) {
        return Err(ApiError::Conflict(format!(
            "a {} named '{name}' exists; update it with /{}/update",
            M::TITLE,
            M::KIND
        )));
    }
    let shown = service.save(&state, spec).await?;
    let mut out = json!({"message": "success", format!("{}_id", M::KIND): shown.id});
    out[M::KIND] = shown.json;
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

pub(crate) async fn update<M: Managed>(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, M::WRITE)?;
    let service = M::service(&state)?;
    let body = json_body(body, state.config.max_body_bytes)?;
    let id = required_str(&body, &format!("{}_id", M::KIND))?;
    let existing = service.one(&id).await?;
    let spec = spec_from::<M>(&body)?;
    if M::name(&spec) != existing.name {
        return Err(ApiError::bad_request(format!(
            "a {}'s 'name' cannot change; create a new {} instead",
            M::TITLE,
            M::TITLE
        )));
    }
    let shown = service.save(&state, spec).await?;
    Ok(axum::Json(answer(M::KIND, shown)).into_response())
}

pub(crate) async fn details<M: Managed>(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    query: Result<
        Query<std::collections::HashMap<String, String>>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, M::READ)?;
    let field = format!("{}_id", M::KIND);
    let id = query
        .ok()
        .and_then(|Query(q)| q.get(&field).cloned())
        .ok_or_else(|| ApiError::bad_request(format!("give ?{field}=ID")))?;
    let shown = M::service(&state)?.one(&id).await?;
    let mut out = shown.details;
    out["message"] = json!("success");
    out[M::KIND] = shown.json;
    Ok(axum::Json(out).into_response())
}

pub(crate) async fn list<M: Managed>(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, M::READ)?;
    let all: Vec<Json> = M::service(&state)?
        .all()
        .await?
        .into_iter()
        .map(|s| s.listed)
        .collect();
    Ok(axum::Json(json!({"message": "success", M::PLURAL: all})).into_response())
}

async fn set_active<M: Managed>(
    state: AppState,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
    active: bool,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, M::WRITE)?;
    let service = M::service(&state)?;
    let body = json_body(body, state.config.max_body_bytes)?;
    let id = required_str(&body, &format!("{}_id", M::KIND))?;
    let shown = service.set_active(&id, active).await?;
    Ok(axum::Json(answer(M::KIND, shown)).into_response())
}

pub(crate) async fn pause<M: Managed>(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    set_active::<M>(state, ext, body, false).await
}

pub(crate) async fn resume<M: Managed>(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    set_active::<M>(state, ext, body, true).await
}
