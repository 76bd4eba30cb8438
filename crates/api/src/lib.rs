//! leadwire's REST API, in Braze's shapes: an app that calls Braze's REST API can point at leadwire
//! by changing the host and the key.
//!
//! The only crate that speaks HTTP and JSON to users. It parses requests (via `leadwire-profiles`),
//! checks keys and permissions, applies rate limits, and turns every failure into one error type
//! ([`ApiError`]) with Braze's `{"message": ..., "errors": [...]}` body. It must not know SQL: the
//! store is reached only through its typed API.

mod campaigns;
mod canvas;
mod error;
pub mod health;
mod managed;
pub mod openapi;
mod permission;
mod ratelimit;
mod recipients;
mod routes;
mod webhooks;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leadwire_canvas::CanvasEngine;
use leadwire_engine::CampaignEngine;
use leadwire_store::Store;
use leadwire_webhooks::WebhookService;

pub use error::ApiError;
pub use permission::{Permission, UnknownPermission};
pub use ratelimit::RateLimiter;

/// API settings, resolved once at start-up.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Requests per key per window (Braze's default: 250,000 an hour).
    pub rate_limit: u64,
    pub rate_window: Duration,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// A connection that has not sent a whole request head within this time (a slow or stalled
    /// client, or an idle keep-alive connection) is closed.
    pub header_read_timeout: Duration,
    /// Connections served at once; past it new ones wait in the kernel's backlog.
    pub max_connections: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            rate_limit: 250_000,
            rate_window: Duration::from_secs(3600),
            max_body_bytes: 4 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub limiter: Arc<RateLimiter>,
    pub config: Arc<ApiConfig>,
    /// Webhook templates, credentials, preview/test send and the activity log; `None` answers
    /// those endpoints with 503.
    pub webhooks: Option<Arc<WebhookService>>,
    /// Campaigns and `/campaigns/trigger/send`; `None` answers those endpoints with 503.
    pub campaigns: Option<Arc<CampaignEngine>>,
    /// Canvases and `/canvas/trigger/send`; `None` answers those endpoints with 503.
    pub canvases: Option<Arc<CanvasEngine>>,
    /// Keys whose unknown permission names were already logged (once per key, not per request).
    warned_keys: Arc<Mutex<HashSet<String>>>,
    /// Renders `/metrics`; `None` answers it 404.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

/// The optional services behind the API beyond users (webhooks, campaigns, canvases).
#[derive(Clone, Default)]
pub struct Services {
    pub webhooks: Option<Arc<WebhookService>>,
    pub campaigns: Option<Arc<CampaignEngine>>,
    pub canvases: Option<Arc<CanvasEngine>>,
    /// From [`health::install_metrics`]: serves `/metrics`.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

/// The router with every endpoint, for `axum::serve` or in-process tests.
pub fn router(store: Store, config: ApiConfig) -> axum::Router {
    router_with_webhooks(store, config, None)
}

/// The router with the webhook endpoints backed by `webhooks`.
pub fn router_with_webhooks(
    store: Store,
    config: ApiConfig,
    webhooks: Option<Arc<WebhookService>>,
) -> axum::Router {
    router_with_services(
        store,
        config,
        Services {
            webhooks,
            ..Services::default()
        },
    )
}

/// The router with every optional service given.
pub fn router_with_services(store: Store, config: ApiConfig, services: Services) -> axum::Router {
    let state = AppState {
        store,
        limiter: Arc::new(RateLimiter::new(config.rate_limit, config.rate_window)),
        config: Arc::new(config),
        webhooks: services.webhooks,
        campaigns: services.campaigns,
        canvases: services.canvases,
        warned_keys: Arc::default(),
        metrics: services.metrics,
    };
    health::router(state.clone())
        .merge(openapi::router())
        .merge(routes::router(state))
        .layer(axum::middleware::from_fn(request_id))
}

/// A profile change made through the API: the triggers it raises keep the request's trace, so
/// the sends they cause join it.
pub(crate) fn api_origin() -> leadwire_store::Origin {
    leadwire_store::Origin::traced(
        leadwire_store::ChangeSource::Api,
        leadwire_telemetry::current_trace_context(),
    )
}

/// Serves connections until `shutdown`, then lets requests in flight finish (up to 30 s).
/// Each connection must send a whole request head within `header_read_timeout`, including
/// between keep-alive requests, and at most `max_connections` are served at once, so clients
/// that hold connections open cannot pile them up.
async fn accept_loop(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    header_read_timeout: Duration,
    max_connections: usize,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    // HTTP/1.1 only: the auto (HTTP/2-detecting) builder waits for a first byte with no time
    // limit, which is exactly what a client holding connections open exploits.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight 30 s after shutdown began; closing them");
    }
}

/// A running API server.
pub struct RunningApi {
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningApi {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections and waits for in-flight requests.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.task.await;
    }
}

/// Binds `addr` (port 0 picks one) and serves the API in the background.
pub async fn serve(
    addr: SocketAddr,
    store: Store,
    config: ApiConfig,
) -> std::io::Result<RunningApi> {
    serve_with_webhooks(addr, store, config, None).await
}

/// [`serve`] with the webhook endpoints backed by `webhooks` (the caller starts its worker).
pub async fn serve_with_webhooks(
    addr: SocketAddr,
    store: Store,
    config: ApiConfig,
    webhooks: Option<Arc<WebhookService>>,
) -> std::io::Result<RunningApi> {
    serve_with_services(
        addr,
        store,
        config,
        Services {
            webhooks,
            ..Services::default()
        },
    )
    .await
}

/// [`serve`] with every optional service given (their callers start their loops).
pub async fn serve_with_services(
    addr: SocketAddr,
    store: Store,
    config: ApiConfig,
    services: Services,
) -> std::io::Result<RunningApi> {
    let header_read_timeout = config.header_read_timeout;
    let max_connections = config.max_connections.max(1);
    let app = router_with_services(store, config, services);
    serve_router(addr, app, header_read_timeout, max_connections).await
}

/// Serves any router (the API's merged with the dashboard's, say) with the API's accept loop:
/// the header-read timeout, the connection cap and graceful shutdown.
pub async fn serve_router(
    addr: SocketAddr,
    app: axum::Router,
    header_read_timeout: Duration,
    max_connections: usize,
) -> std::io::Result<RunningApi> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let max_connections = max_connections.max(1);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(accept_loop(
        listener,
        app,
        header_read_timeout,
        max_connections,
        rx,
    ));
    Ok(RunningApi {
        addr,
        shutdown: Some(tx),
        task,
    })
}

/// Gives every request an id (the caller's `X-Request-Id` when it sends a sane one), answers it
/// in `X-Request-Id`, and runs the handler in a `request` span so every log line it causes
/// carries the id.
async fn request_id(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument as _;
    let given = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned);
    let id = given.unwrap_or_else(|| {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        format!("req_{:08x}{:08x}{n:x}", std::process::id(), nanos)
    });
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
        http.response.status_code = tracing::field::Empty,
    );
    // A caller that traces its own work (W3C Trace Context) gets leadwire's spans in its trace.
    if let Some(parent) = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
    {
        leadwire_telemetry::continue_trace(&span, parent);
    }
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    let ms = started.elapsed().as_millis() as u64;
    span.in_scope(|| {
        // Refusals and errors are what an operator looks for; successes only when asked.
        if status >= 400 {
            tracing::info!(status, ms, "request answered");
        } else {
            tracing::debug!(status, ms, "request answered");
        }
    });
    if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
