//! leadwire's web dashboard: server-rendered HTML (maud) under `/dashboard`, served by
//! `leadwire serve` beside the REST API.
//!
//! Every page reads and writes through the same services as the REST API (the
//! [`WebhookService`], the campaign and Canvas engines, the [`Store`]'s typed API), so there is
//! no second implementation of anything. Every action requires the [`Permission`] its REST
//! endpoint requires, through the signed-in user's [`Role`]. Every string comes from the Fluent
//! catalogues under `locales/`. Every asset is compiled in (no CDN). Must not write SQL.

pub mod activity;
pub mod auth;
pub mod campaigns;
pub mod canvas_builder;
pub mod canvases;
pub mod charts;
pub mod credentials;
mod error;
pub mod i18n;
mod page;
pub mod templates;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use leadwire_canvas::CanvasEngine;
use leadwire_engine::CampaignEngine;
use leadwire_store::Store;
use leadwire_webhooks::WebhookService;
use maud::{Markup, html};
use serde::Deserialize;

pub use auth::{Role, User};
pub use error::DashboardError;
pub use i18n::{CatalogueError, I18n, Lang};
pub use leadwire_api::Permission;

use crate::auth::Session;
use crate::error::ErrorPage;
use crate::i18n::Tr;

/// Dashboard settings, resolved once at start-up.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    /// How long a sign-in lasts.
    pub session_ttl: Duration,
    /// Mark cookies `Secure` on every answer (behind a TLS-terminating proxy that does not send
    /// `X-Forwarded-Proto`). Without it they are `Secure` when the request came over HTTPS.
    pub secure_cookies: bool,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: false,
        }
    }
}

/// What every page handler gets: the services and the catalogues.
#[derive(Clone)]
pub struct Dashboard(Arc<Inner>);

pub struct Inner {
    pub store: Store,
    pub webhooks: Option<Arc<WebhookService>>,
    pub campaigns: Option<Arc<CampaignEngine>>,
    pub canvases: Option<Arc<CanvasEngine>>,
    pub i18n: I18n,
    pub config: DashboardConfig,
    /// Failed sign-ins, per email.
    pub throttle: auth::Throttle,
}

impl std::ops::Deref for Dashboard {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Dashboard {
    pub(crate) fn webhooks(&self) -> Result<&Arc<WebhookService>, DashboardError> {
        self.webhooks
            .as_ref()
            .ok_or(DashboardError::Unavailable("webhook delivery"))
    }

    pub(crate) fn tr(&self, lang: Lang) -> Tr<'_> {
        Tr {
            i18n: &self.i18n,
            lang,
        }
    }
}

/// The largest form the dashboard takes (a template with a long raw body).
const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;

/// The dashboard's routes (`/`, `/dashboard/…`), to merge beside the REST API's.
pub fn router(
    store: Store,
    services: &leadwire_api::Services,
    config: DashboardConfig,
) -> Result<Router, CatalogueError> {
    let state = Dashboard(Arc::new(Inner {
        store,
        webhooks: services.webhooks.clone(),
        campaigns: services.campaigns.clone(),
        canvases: services.canvases.clone(),
        i18n: I18n::load()?,
        config,
        throttle: auth::Throttle::default(),
    }));
    Ok(Router::new()
        .route("/", get(|| async { Redirect::to("/dashboard") }))
        .route("/dashboard", get(home))
        .route("/dashboard/", get(|| async { Redirect::to("/dashboard") }))
        .route("/dashboard/login", get(login_page).post(login))
        .route("/dashboard/logout", post(logout))
        .route("/dashboard/lang", get(switch_language))
        .route("/dashboard/assets/{file}", get(asset))
        .merge(templates::routes())
        .merge(activity::routes())
        .merge(campaigns::routes())
        .merge(canvases::routes())
        .merge(canvas_builder::routes())
        .merge(users::routes())
        .merge(credentials::routes())
        .merge(charts::routes())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            render_error_pages,
        ))
        .layer(middleware::from_fn(security_headers))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(state))
}

// ----- request context -----

/// A cookie's value from the request's `Cookie` headers.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

const SESSION_COOKIE: &str = "lw_session";
const LANG_COOKIE: &str = "lw_lang";
/// The sign-in form's CSRF token (double-submit: cookie and field must match), set before
/// there is a session.
const LOGIN_CSRF_COOKIE: &str = "lw_login_csrf";

/// The request's language and whether it came over HTTPS (directly or through a proxy that
/// says so).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestInfo {
    pub lang: Lang,
    pub https: bool,
}

impl RequestInfo {
    fn of(headers: &HeaderMap, uri: &axum::http::Uri) -> RequestInfo {
        let lang = i18n::negotiate(
            cookie(headers, LANG_COOKIE),
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        );
        let forwarded = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"));
        RequestInfo {
            lang,
            https: forwarded || uri.scheme_str() == Some("https"),
        }
    }
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure over HTTPS.
pub(crate) fn set_cookie(
    d: &Dashboard,
    info: RequestInfo,
    name: &str,
    value: &str,
    max_age: Option<Duration>,
) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={}", age.as_secs()));
    }
    if info.https || d.config.secure_cookies {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("lw_invalid=1"))
}

/// A signed-in request: its session, language and scheme. Extracting it from a request without
/// a live session answers with the sign-in page.
pub(crate) struct Signed {
    pub session: Session,
    pub info: RequestInfo,
}

impl Signed {
    pub fn lang(&self) -> Lang {
        self.info.lang
    }

    /// Refuses unless the user's role carries `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), DashboardError> {
        if self.session.user.role.allows(permission) {
            Ok(())
        } else {
            Err(DashboardError::Forbidden(permission))
        }
    }

    pub fn can(&self, permission: Permission) -> bool {
        self.session.user.role.allows(permission)
    }
}

impl FromRequestParts<Dashboard> for Signed {
    type Rejection = DashboardError;

    async fn from_request_parts(
        parts: &mut Parts,
        d: &Dashboard,
    ) -> Result<Signed, DashboardError> {
        let info = RequestInfo::of(&parts.headers, &parts.uri);
        let next = parts
            .uri
            .path_and_query()
            .map_or("/dashboard".to_owned(), |p| p.as_str().to_owned());
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(DashboardError::SignInRequired { next });
        };
        match auth::session(&d.store, token, chrono::Utc::now()).await? {
            Some(session) => Ok(Signed { session, info }),
            None => Err(DashboardError::SignInRequired { next }),
        }
    }
}

/// A posted form's fields, in order (repeated names kept).
#[derive(Debug, Clone, Default)]
pub(crate) struct FormData(pub Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> FormData {
        FormData(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The field's value, or empty.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }
}

/// A signed-in form post whose CSRF token matched the session's: every state-changing
/// dashboard request is one of these, so none can skip the check.
pub(crate) struct Posted {
    pub signed: Signed,
    pub form: FormData,
}

impl FromRequest<Dashboard> for Posted {
    type Rejection = Response;

    async fn from_request(request: Request, d: &Dashboard) -> Result<Posted, Response> {
        let (mut parts, body) = request.into_parts();
        let signed = Signed::from_request_parts(&mut parts, d)
            .await
            .map_err(IntoResponse::into_response)?;
        let body = Bytes::from_request(Request::from_parts(parts, body), d)
            .await
            .map_err(IntoResponse::into_response)?;
        let form = FormData::parse(&body);
        let given = form.text("csrf");
        if !auth::same(given, &signed.session.csrf) {
            return Err(DashboardError::BadCsrf.into_response());
        }
        Ok(Posted { signed, form })
    }
}

// ----- headers -----

/// What every dashboard answer tells the browser: only this origin's scripts, styles, images
/// and connections (no CDN, nothing inline but `style` attributes), never inside a frame, forms
/// only to this origin, no MIME sniffing, and the referrer only to this origin (the language
/// switcher goes back to the page it was on). Pages are not cached: they show live data.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

// ----- error pages -----

async fn render_error_pages(State(d): State<Dashboard>, request: Request, next: Next) -> Response {
    let info = RequestInfo::of(request.headers(), request.uri());
    let response = next.run(request).await;
    let Some(page) = response.extensions().get::<ErrorPage>().cloned() else {
        return response;
    };
    let tr = d.tr(info.lang);
    let title = tr.t(page.title_id);
    let body = html! {
        h1 { (title) }
        @if let Some(detail) = &page.detail { p.detail { (detail) } }
        p { a href="/dashboard" { (tr.t("error-back-home")) } }
    };
    (
        response.status(),
        page::document(tr, None, &title, "", body),
    )
        .into_response()
}

// ----- sign-in, sign-out, language, assets -----

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
    failed: Option<u8>,
    throttled: Option<u8>,
}

/// Only paths inside the dashboard are followed after sign-in (never another site).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/dashboard") && !n.starts_with("//") && !n.contains('\\') => {
            n.to_owned()
        }
        _ => "/dashboard".to_owned(),
    }
}

async fn login_page(
    State(d): State<Dashboard>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<LoginQuery>,
) -> Response {
    let info = RequestInfo::of(&headers, &uri);
    let tr = d.tr(info.lang);
    let csrf = auth::new_token();
    let next = safe_next(q.next.as_deref());
    let body = html! {
        h1 { (tr.t("login-title")) }
        @if q.failed.is_some() {
            p.error role="alert" id="login-error" { (tr.t("login-failed")) }
        }
        @if q.throttled.is_some() {
            p.error role="alert" id="login-throttled" { (tr.t("login-throttled")) }
        }
        form.stack method="post" action="/dashboard/login" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="next" value=(next);
            label for="email" { (tr.t("login-email")) }
            input id="email" name="email" type="email" autocomplete="username" required autofocus;
            label for="password" { (tr.t("login-password")) }
            input id="password" name="password" type="password" autocomplete="current-password" required;
            button type="submit" { (tr.t("login-submit")) }
        }
    };
    let title = tr.t("login-title");
    let mut response = page::document(tr, None, &title, "", body).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            &d,
            info,
            LOGIN_CSRF_COOKIE,
            &csrf,
            Some(Duration::from_secs(3600)),
        ),
    );
    response
}

async fn login(
    State(d): State<Dashboard>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Bytes,
) -> Result<Response, DashboardError> {
    let info = RequestInfo::of(&headers, &uri);
    let form = FormData::parse(&body);
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if expected.is_empty() || !auth::same(form.text("csrf"), expected) {
        return Err(DashboardError::BadCsrf);
    }
    let next = safe_next(form.get("next"));
    let email = auth::normalize_email(form.text("email")).unwrap_or_default();
    let now = std::time::Instant::now();
    let back = |reason: &str| {
        let to = format!(
            "/dashboard/login?{reason}=1&next={}",
            form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        );
        Redirect::to(&to).into_response()
    };
    if !d.throttle.allows(&email, now) {
        tracing::warn!(user = %email, "dashboard sign-in refused: too many failures");
        return Ok(back("throttled"));
    }
    let expires = chrono::Utc::now()
        + chrono::Duration::from_std(d.config.session_ttl).unwrap_or(chrono::Duration::hours(12));
    let signed_in =
        auth::sign_in(&d.store, form.text("email"), form.text("password"), expires).await?;
    let Some((token, user)) = signed_in else {
        tracing::info!("dashboard sign-in refused");
        d.throttle.failed(&email, now);
        return Ok(back("failed"));
    };
    d.throttle.succeeded(&email);
    tracing::info!(user = %user.email, role = %user.role, "dashboard sign-in");
    let mut response = Redirect::to(&next).into_response();
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&d, info, SESSION_COOKIE, &token, Some(d.config.session_ttl)),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&d, info, LOGIN_CSRF_COOKIE, "", Some(Duration::ZERO)),
    );
    Ok(response)
}

async fn logout(State(d): State<Dashboard>, posted: Posted) -> Result<Response, DashboardError> {
    auth::sign_out(&d.store, &posted.signed.session).await?;
    let mut response = Redirect::to("/dashboard/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            &d,
            posted.signed.info,
            SESSION_COOKIE,
            "",
            Some(Duration::ZERO),
        ),
    );
    Ok(response)
}

#[derive(Deserialize)]
struct LangQuery {
    to: String,
    back: Option<String>,
}

/// The language switcher: remembers the choice in a cookie (a preference, not state: a link).
async fn switch_language(
    State(d): State<Dashboard>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<LangQuery>,
) -> Response {
    let info = RequestInfo::of(&headers, &uri);
    // Back to the page the switcher was on (the Referer's path, when it is a dashboard page).
    let referer_path = headers
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.split_once("://"))
        .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()));
    let back = safe_next(q.back.as_deref().or(referer_path.as_deref()));
    let mut response = Redirect::to(&back).into_response();
    if let Some(lang) = Lang::from_code(&q.to) {
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(
                &d,
                info,
                LANG_COOKIE,
                lang.code(),
                Some(Duration::from_secs(365 * 24 * 3600)),
            ),
        );
    }
    response
}

/// The vendored assets, compiled in.
async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "app.css" => (include_str!("../assets/app.css"), "text/css; charset=utf-8"),
        "app.js" => (
            include_str!("../assets/app.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

// ----- home -----

async fn home(State(d): State<Dashboard>, signed: Signed) -> Result<Response, DashboardError> {
    let tr = d.tr(signed.lang());
    let counts = match &d.webhooks {
        Some(w) if signed.can(Permission::ActivityRead) => Some(w.job_counts().await?),
        _ => None,
    };
    let body: Markup = html! {
        h1 { (tr.t("home-title")) }
        p { (tr.ta("home-signed-in-as", &[("email", signed.session.user.email.clone().into()), ("role", signed.session.user.role.as_str().into())])) }
        @if let Some(counts) = counts {
            h2 { (tr.t("home-deliveries")) }
            (page::job_counts_table(tr, &counts))
        }
        h2 { (tr.t("home-next-steps")) }
        ul {
            li { a href="/dashboard/templates" { (tr.t("nav-templates")) } }
            li { a href="/dashboard/activity" { (tr.t("nav-activity")) } }
            li { a href="/docs" { (tr.t("nav-api-docs")) } }
        }
    };
    let title = tr.t("home-title");
    Ok(page::document(tr, Some(&signed), &title, "home", body).into_response())
}
