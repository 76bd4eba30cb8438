//! Response builders with Salesforce's headers: `Content-Type: application/json;charset=UTF-8`,
//! `Sforce-Limit-Info: api-usage=N/M` when the org's usage applies, errors as JSON arrays.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::Serialize;

use crate::api_error::ApiError;
use crate::limits::UsageReport;

pub const JSON_UTF8: &str = "application/json;charset=UTF-8";

pub fn json_bytes(status: u16, body: Vec<u8>, usage: Option<UsageReport>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    with_usage(response, usage)
}

pub fn json(status: u16, body: &impl Serialize, usage: Option<UsageReport>) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => json_bytes(status, bytes, usage),
        Err(error) => {
            tracing::error!(%error, "serialising a response failed");
            json_bytes(
                500,
                br#"[{"message":"An unexpected error occurred.","errorCode":"UNKNOWN_EXCEPTION"}]"#
                    .to_vec(),
                usage,
            )
        }
    }
}

pub fn error(error: ApiError, usage: Option<UsageReport>) -> Response {
    json(error.status, &[&error], usage)
}

pub fn no_content(usage: Option<UsageReport>) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    with_usage(response, usage)
}

pub fn with_usage(mut response: Response, usage: Option<UsageReport>) -> Response {
    if let Some(usage) = usage
        && let Ok(value) = HeaderValue::from_str(&usage.header_value())
    {
        response.headers_mut().insert("sforce-limit-info", value);
    }
    response
}

/// Salesforce's generic 500 shape.
pub fn injected_internal_error() -> Response {
    error(
        ApiError::request(
            500,
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred. Please include this ErrorId if you contact support: 1234567890-12345 (-1234567890)",
        ),
        None,
    )
}

pub fn injected_unavailable() -> Response {
    error(
        ApiError::request(
            503,
            "SERVER_UNAVAILABLE",
            "Server temporarily unavailable. Please try again later.",
        ),
        None,
    )
}

/// Salesforce itself answers 403 when over the limit; 429 is what a proxy or gateway in front says.
pub fn injected_too_many_requests(retry_after_secs: u32) -> Response {
    let mut response = error(
        ApiError::request(
            429,
            "REQUEST_LIMIT_EXCEEDED",
            "Too many requests. Retry after the time in Retry-After.",
        ),
        None,
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
}
