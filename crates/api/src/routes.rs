//! Endpoints. Each handler parses its body into typed values, calls the store, and answers in
//! Braze's shapes; authentication and rate limiting happen in [`authenticate`] before any of them.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use leadwire_canvas::CanvasEngine;
use leadwire_engine::CampaignEngine;
use leadwire_profiles::{Identifier, TrackError, UserAlias, parse_track};
use leadwire_store::{ApiKeyInfo, IdentifyRequest, NewAlias};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::permission::Granted;
use crate::{ApiError, AppState, Permission};

/// Braze's cap on identifiers per export/delete/alias request.
const MAX_IDS_PER_REQUEST: usize = 50;

pub(crate) fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    Router::new()
        .route("/users/track", post(track))
        .route("/users/export/ids", post(export_ids))
        .route("/users/delete", post(delete_users))
        .route("/users/alias/new", post(alias_new))
        .route("/users/identify", post(identify))
        .route("/triggers", get(trigger_feed))
        .merge(crate::webhooks::routes())
        .route(
            "/campaigns/trigger/send",
            post(crate::campaigns::trigger_send),
        )
        .route(
            "/campaigns/create",
            post(crate::managed::create::<CampaignEngine>),
        )
        .route(
            "/campaigns/update",
            post(crate::managed::update::<CampaignEngine>),
        )
        .route(
            "/campaigns/details",
            get(crate::managed::details::<CampaignEngine>),
        )
        .route(
            "/campaigns/list",
            get(crate::managed::list::<CampaignEngine>),
        )
        .route(
            "/campaigns/pause",
            post(crate::managed::pause::<CampaignEngine>),
        )
        .route(
            "/campaigns/resume",
            post(crate::managed::resume::<CampaignEngine>),
        )
        .route("/canvas/trigger/send", post(crate::canvas::trigger_send))
        .route(
            "/canvas/create",
            post(crate::managed::create::<CanvasEngine>),
        )
        .route(
            "/canvas/update",
            post(crate::managed::update::<CanvasEngine>),
        )
        .route(
            "/canvas/details",
            get(crate::managed::details::<CanvasEngine>),
        )
        .route("/canvas/list", get(crate::managed::list::<CanvasEngine>))
        .route("/canvas/pause", post(crate::managed::pause::<CanvasEngine>))
        .route(
            "/canvas/resume",
            post(crate::managed::resume::<CanvasEngine>),
        )
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Checks `Authorization: Bearer KEY`, counts the request against the key's rate limit, and adds
/// `X-RateLimit-*` headers to whatever the handler answers.
async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let key = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|k| k.trim().to_string());
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return ApiError::Unauthorized.into_response();
    };
    let info = match state.store.api_key(key.clone()).await {
        Ok(Some(info)) => info,
        Ok(None) => return ApiError::Unauthorized.into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let decision = state.limiter.check(&info.id);
    let mut response = if decision.allowed {
        request.extensions_mut().insert(granted(&state, &info));
        next.run(request).await
    } else {
        ApiError::RateLimited.into_response()
    };
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-ratelimit-limit", decision.limit),
        ("x-ratelimit-remaining", decision.remaining),
        ("x-ratelimit-reset", decision.reset),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
    response
}

/// The key's stored permission names as [`Permission`]s; names this version does not know grant
/// nothing and are logged once per key.
fn granted(state: &AppState, info: &ApiKeyInfo) -> Granted {
    let (granted, unknown) = Granted::parse(&info.permissions);
    if !unknown.is_empty() {
        let first_time = state
            .warned_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(info.id.clone());
        if first_time {
            tracing::warn!(
                key_id = %info.id,
                key_name = %info.name,
                unknown = %unknown.join(", "),
                "API key has permissions this leadwire does not know; ignoring them"
            );
        }
    }
    granted
}

pub(crate) fn require(granted: &Granted, permission: Permission) -> Result<(), ApiError> {
    if granted.allows(permission) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(permission))
    }
}

/// What the request's key may do (set by [`authenticate`]).
pub(crate) fn key_info(request_extensions: &axum::http::Extensions) -> Result<&Granted, ApiError> {
    request_extensions
        .get::<Granted>()
        .ok_or(ApiError::Unauthorized)
}

/// Parses a JSON body, naming the line and column of a syntax error.
pub(crate) fn json_body(body: Result<Bytes, BytesRejection>, max: usize) -> Result<Json, ApiError> {
    let bytes = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(max)
        } else {
            ApiError::bad_request(e.body_text())
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "Invalid JSON at line {}, column {}: {e}",
            e.line(),
            e.column()
        ))
    })
}

async fn track(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::UsersTrack)?;
    let body = json_body(body, state.config.max_body_bytes)?;
    let parsed = parse_track(&body).map_err(|e| match e {
        TrackError::TooMany { kind, count } => ApiError::bad_request(format!(
            "Max Input Length Exceeded: '{kind}' has {count} objects; send at most 75 attributes, 75 events and 75 purchases per request"
        )),
        other => ApiError::bad_request(other.to_string()),
    })?;
    let result = state.store.track(parsed, crate::api_origin()).await?;
    let processed =
        result.attributes_processed + result.events_processed + result.purchases_processed;
    let errors: Vec<Json> = result
        .errors
        .iter()
        .map(|e| serde_json::to_value(e).unwrap_or(Json::Null))
        .collect();
    // An update-only object about an unknown user is accepted and left alone, as Braze does:
    // a request made only of those is a success, not a 400 (Braze's clients raise on a 400).
    if processed == 0 && !errors.is_empty() {
        return Err(ApiError::BadRequest {
            message:
                "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
                    .into(),
            errors,
        });
    }
    let mut body = json!({
        "message": "success",
        "attributes_processed": result.attributes_processed,
        "events_processed": result.events_processed,
        "purchases_processed": result.purchases_processed,
    });
    if !errors.is_empty() {
        body["errors"] = Json::Array(errors);
    }
    if !result.skipped.is_empty() {
        // leadwire's own field, beside Braze's: which objects were left alone and why.
        body["skipped"] = serde_json::to_value(&result.skipped).unwrap_or(Json::Null);
    }
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

/// A required string field of a JSON body, or a 400 naming it.
pub(crate) fn required_str(body: &Json, key: &str) -> Result<String, ApiError> {
    body.get(key)
        .and_then(Json::as_str)
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request(format!("'{key}' is required")))
}

pub(crate) fn parse_alias(value: &Json, path: &str) -> Result<UserAlias, ApiError> {
    match (
        value.get("alias_name").and_then(Json::as_str),
        value.get("alias_label").and_then(Json::as_str),
    ) {
        (Some(n), Some(l)) if !n.is_empty() && !l.is_empty() => Ok(UserAlias {
            alias_name: n.to_string(),
            alias_label: l.to_string(),
        }),
        _ => Err(ApiError::bad_request(format!(
            "{path} needs string 'alias_name' and 'alias_label'"
        ))),
    }
}

fn string_list(body: &Json, key: &str) -> Result<Vec<String>, ApiError> {
    match body.get(key) {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::bad_request(format!("'{key}[{i}]' must be a string")))
            })
            .collect(),
        Some(_) => Err(ApiError::bad_request(format!(
            "'{key}' must be an array of strings"
        ))),
    }
}

fn object_list<'a>(body: &'a Json, key: &str) -> Result<&'a [Json], ApiError> {
    match body.get(key) {
        None | Some(Json::Null) => Ok(&[]),
        Some(Json::Array(items)) => Ok(items),
        Some(_) => Err(ApiError::bad_request(format!(
            "'{key}' must be an array of objects"
        ))),
    }
}

fn check_count(n: usize) -> Result<(), ApiError> {
    if n > MAX_IDS_PER_REQUEST {
        return Err(ApiError::bad_request(format!(
            "The max number of external_ids and aliases per request was exceeded: {n} given, at most {MAX_IDS_PER_REQUEST}"
        )));
    }
    Ok(())
}

async fn export_ids(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::UsersExportIds)?;
    let body = json_body(body, state.config.max_body_bytes)?;
    let mut ids: Vec<Identifier> = string_list(&body, "external_ids")?
        .into_iter()
        .map(Identifier::ExternalId)
        .collect();
    for (i, a) in object_list(&body, "user_aliases")?.iter().enumerate() {
        ids.push(Identifier::Alias(parse_alias(
            a,
            &format!("'user_aliases[{i}]'"),
        )?));
    }
    for (key, make) in [
        ("braze_id", Identifier::BrazeId as fn(String) -> Identifier),
        ("email_address", |e: String| {
            Identifier::Email(e.to_lowercase())
        }),
        ("phone", Identifier::Phone),
    ] {
        match body.get(key) {
            Some(Json::String(v)) => ids.push(make(v.clone())),
            None | Some(Json::Null) => {}
            Some(_) => return Err(ApiError::bad_request(format!("'{key}' must be a string"))),
        }
    }
    check_count(ids.len())?;
    if ids.is_empty() {
        return Err(ApiError::bad_request(
            "give 'external_ids', 'user_aliases', 'braze_id', 'email_address' or 'phone'",
        ));
    }
    let fields = match body.get("fields_to_export") {
        None | Some(Json::Null) => None,
        Some(_) => Some(string_list(&body, "fields_to_export")?),
    };
    let leadwire_store::ExportedProfiles { found, missing } =
        state.store.export_profiles(ids).await?;
    let users: Vec<Json> = found
        .iter()
        .map(|(p, history)| p.export_with(history, fields.as_deref()))
        .collect();
    let invalid: Vec<Json> = missing
        .into_iter()
        .map(|id| match id {
            Identifier::ExternalId(x)
            | Identifier::BrazeId(x)
            | Identifier::Email(x)
            | Identifier::Phone(x) => Json::String(x),
            Identifier::Alias(a) => {
                json!({"alias_name": a.alias_name, "alias_label": a.alias_label})
            }
        })
        .collect();
    let mut out = json!({"message": "success", "users": users});
    if !invalid.is_empty() {
        out["invalid_user_ids"] = Json::Array(invalid);
    }
    Ok(axum::Json(out).into_response())
}

async fn delete_users(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::UsersDelete)?;
    let body = json_body(body, state.config.max_body_bytes)?;
    let mut ids: Vec<Identifier> = string_list(&body, "external_ids")?
        .into_iter()
        .map(Identifier::ExternalId)
        .collect();
    ids.extend(
        string_list(&body, "braze_ids")?
            .into_iter()
            .map(Identifier::BrazeId),
    );
    ids.extend(
        string_list(&body, "phone_numbers")?
            .into_iter()
            .map(Identifier::Phone),
    );
    for (i, a) in object_list(&body, "user_aliases")?.iter().enumerate() {
        ids.push(Identifier::Alias(parse_alias(
            a,
            &format!("'user_aliases[{i}]'"),
        )?));
    }
    for (i, e) in object_list(&body, "email_addresses")?.iter().enumerate() {
        let email = e.get("email").and_then(Json::as_str).ok_or_else(|| {
            ApiError::bad_request(format!("'email_addresses[{i}].email' must be a string"))
        })?;
        ids.push(Identifier::Email(email.to_lowercase()));
    }
    check_count(ids.len())?;
    let deleted = state.store.delete_users(ids).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"message": "success", "deleted": deleted})),
    )
        .into_response())
}

fn indexed_errors(errors: Vec<(usize, String)>, array: &str) -> Vec<Json> {
    errors
        .into_iter()
        .map(|(i, m)| json!({"type": m, "input_array": array, "index": i}))
        .collect()
}

async fn alias_new(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::UsersAliasNew)?;
    let body = json_body(body, state.config.max_body_bytes)?;
    let items = object_list(&body, "user_aliases")?;
    check_count(items.len())?;
    let mut aliases = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let alias = parse_alias(item, &format!("'user_aliases[{i}]'"))?;
        aliases.push(NewAlias {
            external_id: item
                .get("external_id")
                .and_then(Json::as_str)
                .map(str::to_string),
            alias,
        });
    }
    let errors = state.store.add_aliases(aliases).await?;
    success_with(errors, "user_aliases")
}

async fn identify(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::UsersIdentify)?;
    let body = json_body(body, state.config.max_body_bytes)?;
    let items = object_list(&body, "aliases_to_identify")?;
    check_count(items.len())?;
    let mut requests = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let external_id = item
            .get("external_id")
            .and_then(Json::as_str)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "'aliases_to_identify[{i}].external_id' must be a string"
                ))
            })?;
        let alias = parse_alias(
            item.get("user_alias").unwrap_or(&Json::Null),
            &format!("'aliases_to_identify[{i}].user_alias'"),
        )?;
        requests.push(IdentifyRequest {
            external_id: external_id.to_string(),
            alias,
        });
    }
    let errors = state.store.identify(requests).await?;
    success_with(errors, "aliases_to_identify")
}

fn success_with(errors: Vec<(usize, String)>, array: &str) -> Result<Response, ApiError> {
    let mut body = json!({"message": "success"});
    if !errors.is_empty() {
        body["errors"] = Json::Array(indexed_errors(errors, array));
    }
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

#[derive(Deserialize)]
struct FeedQuery {
    after: Option<i64>,
    limit: Option<usize>,
}

/// The ordered trigger feed (leadwire's own endpoint): entries after a position, oldest first.
async fn trigger_feed(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    query: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    require(key_info(&ext)?, Permission::TriggersRead)?;
    let Query(q) = query.map_err(|e| {
        ApiError::bad_request(format!("bad query string: {e}; use ?after=N&limit=M"))
    })?;
    let after = q.after.unwrap_or(0);
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let records = state.store.triggers_after(after, limit).await?;
    let next = records.last().map_or(after, |r| r.seq);
    Ok(
        axum::Json(json!({"message": "success", "triggers": records, "next": next}))
            .into_response(),
    )
}
