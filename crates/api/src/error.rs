//! The one error type at the API edge, rendered as Braze renders errors.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::Permission;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 with Braze's fatal-error body; `errors` lists per-object problems when there are any.
    #[error("{message}")]
    BadRequest {
        message: String,
        errors: Vec<serde_json::Value>,
    },
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("API key lacks permission {0}")]
    Forbidden(Permission),
    #[error("rate limited")]
    RateLimited,
    #[error("request body too large")]
    TooLarge(usize),
    /// 404: the named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// 409: the request conflicts with what exists (a duplicate name, an archived template).
    #[error("{0}")]
    Conflict(String),
    /// 503: the feature is not running on this server.
    #[error("{0}")]
    Unavailable(&'static str),
    /// 503 with `Retry-After`: the database cannot be reached right now; nothing was changed.
    #[error("the database is unreachable: {0}")]
    DatabaseUnavailable(String),
    /// Never echoed: logged, and answered with a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            message: message.into(),
            errors: Vec::new(),
        }
    }
}

impl From<leadwire_store::StoreError> for ApiError {
    fn from(e: leadwire_store::StoreError) -> Self {
        match e {
            leadwire_store::StoreError::Unavailable(detail) => {
                ApiError::DatabaseUnavailable(detail)
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<leadwire_webhooks::WebhookError> for ApiError {
    fn from(e: leadwire_webhooks::WebhookError) -> Self {
        use leadwire_webhooks::WebhookError as W;
        match e {
            W::Invalid(message) => ApiError::bad_request(message),
            W::Compile(issues) => ApiError::BadRequest {
                message: format!(
                    "The template does not compile: {}",
                    issues
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                errors: issues.iter().map(|i| i.to_json()).collect(),
            },
            W::NotFound { what, id } => ApiError::NotFound(format!("{what} '{id}' does not exist")),
            W::Conflict(message) => ApiError::Conflict(message),
            W::Unavailable(detail) => ApiError::DatabaseUnavailable(detail),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::BadRequest { message, errors } => {
                let mut body = serde_json::json!({"message": message});
                if !errors.is_empty() {
                    body["errors"] = serde_json::Value::Array(errors.clone());
                }
                (StatusCode::BAD_REQUEST, body)
            }
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"message": "Invalid API key: send 'Authorization: Bearer YOUR-REST-API-KEY' with a key created by 'leadwire api-keys create'"}),
            ),
            ApiError::Forbidden(permission) => (
                StatusCode::FORBIDDEN,
                serde_json::json!({"message": format!("Access Denied: this API key lacks the '{permission}' permission")}),
            ),
            ApiError::RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                serde_json::json!({"message": "Rate Limited: wait until X-RateLimit-Reset"}),
            ),
            ApiError::TooLarge(max) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                serde_json::json!({"message": format!("Request body is larger than {max} bytes: send fewer objects per request")}),
            ),
            ApiError::NotFound(message) => (
                StatusCode::NOT_FOUND,
                serde_json::json!({"message": message}),
            ),
            ApiError::Conflict(message) => (
                StatusCode::CONFLICT,
                serde_json::json!({"message": message}),
            ),
            ApiError::Unavailable(message) => (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"message": message}),
            ),
            ApiError::DatabaseUnavailable(detail) => {
                tracing::warn!(%detail, "the database is unreachable; answering 503");
                let body = serde_json::json!({"message": "The database is unreachable right now; nothing was changed. Retry in a few seconds."});
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(axum::http::header::RETRY_AFTER, "5")],
                    axum::Json(body),
                )
                    .into_response();
            }
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "internal error answering a request");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    serde_json::json!({"message": "Internal Server Error"}),
                )
            }
        };
        (status, axum::Json(body)).into_response()
    }
}
