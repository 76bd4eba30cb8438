//! `/services/oauth2/token` (client credentials, in the form body or HTTP Basic) and
//! `/services/oauth2/revoke`, with Salesforce's success and error shapes.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::respond;
use super::{AuthenticatedClient, ConnectionControl, Shared};
use crate::auth::{OAuthError, authenticate_client};
use crate::timestamp::Millis;

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/services/oauth2/revoke", post(revoke))
}

/// Form fields, tolerating Braze e-mail bodies where `&` became `&amp;` (`amp;client_secret`).
fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(key, value)| {
            (
                key.strip_prefix("amp;").unwrap_or(&key).to_owned(),
                value.into_owned(),
            )
        })
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn oauth_error(error: OAuthError) -> Response {
    no_store(respond::json(400, &error, None))
}

fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache,must-revalidate,max-age=0,no-store,private"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `user:password` from an HTTP Basic header, if there is one.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(BASE64.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// Where this emulator is reachable, as the client reached it.
pub fn instance_url(headers: &HeaderMap, control: Option<&ConnectionControl>) -> String {
    let scheme = control.map_or("http", |c| c.scheme);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| control.map(|c| c.local_addr.to_string()))
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{scheme}://{host}")
}

async fn token(
    State(shared): State<Arc<Shared>>,
    control: Option<axum::Extension<ConnectionControl>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // No Content-Type is fine: Braze's Connected Content sends form bodies without one.
    if !content_type.is_empty()
        && !content_type
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    {
        return oauth_error(OAuthError::UNSUPPORTED_GRANT);
    }
    let fields = form_fields(&body);
    match field(&fields, "grant_type") {
        None => return oauth_error(OAuthError::MISSING_GRANT),
        Some("client_credentials") => {}
        Some(_) => return oauth_error(OAuthError::UNSUPPORTED_GRANT),
    }
    let (client_id, client_secret) = match basic_credentials(&headers) {
        Some(credentials) => credentials,
        None => (
            field(&fields, "client_id").unwrap_or_default().to_owned(),
            field(&fields, "client_secret")
                .unwrap_or_default()
                .to_owned(),
        ),
    };
    let app = match authenticate_client(&shared.config.connected_apps, &client_id, &client_secret) {
        Ok(app) => app.clone(),
        Err(error) => return oauth_error(error),
    };
    let fresh = shared.new_access_token();
    let grant = shared
        .org()
        .sessions
        .grant(&app.client_id, Millis::now(), || fresh);
    shared.state_changed();
    let instance_url = instance_url(&headers, control.as_deref());
    let identity_url = format!("{instance_url}/id/{}/{}", shared.org_id, shared.user_id);
    let issued_at = grant.issued.0.to_string();
    // Salesforce signs id + issued_at with the consumer secret (HMAC-SHA256, base64).
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, app.client_secret.as_bytes());
    let signature = BASE64.encode(ring::hmac::sign(
        &key,
        format!("{identity_url}{issued_at}").as_bytes(),
    ));
    let body = serde_json::json!({
        "access_token": grant.access_token,
        "signature": signature,
        "scope": "api",
        "instance_url": instance_url,
        "id": identity_url,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "token_format": "opaque",
    });
    let mut response = no_store(respond::json(200, &body, None));
    response
        .extensions_mut()
        .insert(AuthenticatedClient(app.client_id));
    response
}

async fn revoke(State(shared): State<Arc<Shared>>, uri: axum::http::Uri, body: Bytes) -> Response {
    let mut fields = form_fields(&body);
    fields.extend(form_fields(uri.query().unwrap_or_default().as_bytes()));
    let Some(token) = field(&fields, "token") else {
        return oauth_error(OAuthError {
            error: "unsupported_token_type",
            error_description: "this token type is not supported",
        });
    };
    if shared.org().sessions.revoke(token) {
        shared.state_changed();
        axum::http::StatusCode::OK.into_response()
    } else {
        oauth_error(OAuthError {
            error: "invalid_token",
            error_description: "invalid token",
        })
    }
}
