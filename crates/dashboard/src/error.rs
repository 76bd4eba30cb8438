//! The one error type at the dashboard's edge. Its `IntoResponse` sets the status and marks the
//! response; `render_error_pages` (in `lib.rs`), which knows the request's language, turns the
//! mark into a translated page. 500s are logged, never shown.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use leadwire_api::Permission;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DashboardError {
    /// No live session: answered with a redirect to the sign-in page, back to `next` after.
    #[error("sign in first")]
    SignInRequired { next: String },
    /// The user's role lacks the permission the action's REST endpoint requires.
    #[error("your role lacks permission {0}")]
    Forbidden(Permission),
    /// A form post without the session's CSRF token.
    #[error("the form's security token is missing or stale")]
    BadCsrf,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// The service behind the page is not running on this node.
    #[error("{0} is not running on this server")]
    Unavailable(&'static str),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What `render_error_pages` renders: the message id of the page's title and a detail line
/// (already safe to show: never an internal error's text).
#[derive(Debug, Clone)]
pub(crate) struct ErrorPage {
    pub title_id: &'static str,
    pub detail: Option<String>,
}

impl From<leadwire_store::StoreError> for DashboardError {
    fn from(e: leadwire_store::StoreError) -> Self {
        DashboardError::Internal(e.to_string())
    }
}

impl From<leadwire_engine::EngineError> for DashboardError {
    fn from(e: leadwire_engine::EngineError) -> Self {
        use leadwire_engine::EngineError as E;
        match e {
            E::Invalid(m) => DashboardError::BadRequest(m),
            E::NotFound { what, id } => DashboardError::NotFound(format!("{what} '{id}'")),
            other => DashboardError::Internal(other.to_string()),
        }
    }
}

impl From<leadwire_webhooks::WebhookError> for DashboardError {
    fn from(e: leadwire_webhooks::WebhookError) -> Self {
        use leadwire_webhooks::WebhookError as W;
        match e {
            W::Invalid(m) | W::Conflict(m) => DashboardError::BadRequest(m),
            W::NotFound { what, id } => DashboardError::NotFound(format!("{what} '{id}'")),
            other => DashboardError::Internal(other.to_string()),
        }
    }
}

impl From<crate::auth::AuthError> for DashboardError {
    fn from(e: crate::auth::AuthError) -> Self {
        DashboardError::Internal(e.to_string())
    }
}

impl IntoResponse for DashboardError {
    fn into_response(self) -> Response {
        let (status, page) = match self {
            DashboardError::SignInRequired { next } => {
                let to = format!(
                    "/dashboard/login?next={}",
                    form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                let mut response = StatusCode::SEE_OTHER.into_response();
                if let Ok(value) = HeaderValue::from_str(&to) {
                    response.headers_mut().insert(header::LOCATION, value);
                }
                return response;
            }
            DashboardError::Forbidden(p) => (
                StatusCode::FORBIDDEN,
                ErrorPage {
                    title_id: "error-forbidden",
                    detail: Some(p.as_str().to_owned()),
                },
            ),
            DashboardError::BadCsrf => (
                StatusCode::FORBIDDEN,
                ErrorPage {
                    title_id: "error-csrf",
                    detail: None,
                },
            ),
            DashboardError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                ErrorPage {
                    title_id: "error-not-found",
                    detail: Some(what),
                },
            ),
            DashboardError::BadRequest(m) => (
                StatusCode::BAD_REQUEST,
                ErrorPage {
                    title_id: "error-bad-request",
                    detail: Some(m),
                },
            ),
            DashboardError::Unavailable(what) => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorPage {
                    title_id: "error-unavailable",
                    detail: Some(what.to_owned()),
                },
            ),
            DashboardError::Internal(m) => {
                tracing::error!(error = %m, "dashboard request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorPage {
                        title_id: "error-internal",
                        detail: None,
                    },
                )
            }
        };
        let mut response = status.into_response();
        response.extensions_mut().insert(page);
        response
    }
}
