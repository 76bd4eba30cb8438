//! The HTTP shell: listeners (HTTP and HTTPS), per-connection serving with the power to drop a
//! connection without answering, the fault and request-log middleware, and the in-process handle
//! [`RunningEmulator`]. Salesforce's rules live in the core modules; this layer only translates.

mod admin;
mod oauth;
mod respond;
mod rest;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::auth::{PeriodicRevocation, Sessions};
use crate::config::{ConfigError, EmulatorConfig, ValidConfig};
use crate::faults::{Fault, FaultInjector, FaultKind, FaultPlan, FaultPlanError, FaultSettings};
use crate::id::{KeyPrefix, SalesforceId};
use crate::lead::{RenderContext, render_record};
use crate::limits::ApiUsage;
use crate::persist::{self, PersistError, PersistedState};
use crate::schema::LeadSchema;
use crate::store::{INSTANCE, LeadStore};
use crate::timestamp::Millis;

/// API version used when the admin API renders records.
const ADMIN_API_VERSION: &str = "60.0";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("binding {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    State(#[from] PersistError),
    #[error("writing the CA certificate to {path}: {source}")]
    WriteCa {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// The org's mutable state, behind one lock: records, the API allocation, sessions.
pub(crate) struct Org {
    pub store: LeadStore,
    pub usage: ApiUsage,
    pub sessions: Sessions,
}

/// One request as the admin request log shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct RequestLogEntry {
    pub seq: u64,
    pub at: String,
    pub method: String,
    pub path: String,
    /// `None` when the connection was dropped without an answer.
    pub status: Option<u16>,
    pub fault: Option<FaultKind>,
    pub client_id: Option<String>,
    pub duration_ms: u64,
}

struct RequestLog {
    entries: VecDeque<RequestLogEntry>,
    capacity: usize,
    next_seq: u64,
}

/// What handlers share.
pub(crate) struct Shared {
    pub config: ValidConfig,
    pub org: Mutex<Org>,
    faults: Mutex<FaultInjector>,
    log: Mutex<RequestLog>,
    /// Wakes the state-file writer; `None` without a state file.
    persist_signal: Option<Arc<Notify>>,
    pub org_id: SalesforceId,
    pub user_id: SalesforceId,
}

/// Poisoning only follows a panic in another handler; the data is still consistent enough for a test double.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub fn org(&self) -> MutexGuard<'_, Org> {
        lock(&self.org)
    }

    pub fn schema(&self) -> &Arc<LeadSchema> {
        &self.config.schema
    }

    /// Called after every committed change.
    pub fn state_changed(&self) {
        if let Some(signal) = &self.persist_signal {
            signal.notify_one();
        }
    }

    fn persisted_state(&self) -> PersistedState {
        let org = self.org();
        PersistedState {
            format: persist::FORMAT,
            store: org.store.snapshot(),
            api_requests_used: org.usage.report().used,
            sessions: org.sessions.export(),
        }
    }

    fn save_state(&self) -> Result<(), PersistError> {
        match &self.config.state_file {
            Some(path) => persist::save(path, &self.persisted_state()),
            None => Ok(()),
        }
    }

    pub fn set_faults(&self, settings: FaultSettings) -> Result<(), FaultPlanError> {
        let plan = FaultPlan::try_from(settings)?;
        let revocation = plan
            .settings()
            .revoke_tokens_every_secs
            .map(|secs| PeriodicRevocation {
                origin: Millis::now(),
                period_millis: i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX),
            });
        self.org().sessions.set_periodic_revocation(revocation);
        *lock(&self.faults) = FaultInjector::new(plan);
        Ok(())
    }

    pub fn fault_settings(&self) -> FaultSettings {
        lock(&self.faults).plan().settings().clone()
    }

    fn record_request(&self, mut entry: RequestLogEntry) {
        let mut log = lock(&self.log);
        entry.seq = log.next_seq;
        log.next_seq += 1;
        if log.entries.len() == log.capacity {
            log.entries.pop_front();
        }
        log.entries.push_back(entry);
    }

    pub fn request_log(&self, since: u64) -> Vec<RequestLogEntry> {
        lock(&self.log)
            .entries
            .iter()
            .filter(|entry| entry.seq >= since)
            .cloned()
            .collect()
    }

    pub fn reset(&self) {
        {
            let mut org = self.org();
            org.store.clear();
            org.usage.reset(Millis::now());
            org.sessions.revoke_all();
        }
        lock(&self.log).entries.clear();
        self.state_changed();
    }

    pub fn render_context(&self, api_version: &'static str) -> RenderContext<'static> {
        RenderContext {
            api_version,
            running_user: self.user_id,
        }
    }

    pub fn admin_leads(&self, include_deleted: bool) -> Vec<Value> {
        let org = self.org();
        let context = self.render_context(ADMIN_API_VERSION);
        org.store
            .all()
            .filter(|record| include_deleted || !record.deleted)
            .map(|record| render_record(self.schema(), record, &context))
            .collect()
    }

    /// A fresh opaque token: the org id, `!`, then random base-62 text.
    pub fn new_access_token(&self) -> String {
        use ring::rand::SecureRandom;
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut random = [0u8; 96];
        if ring::rand::SystemRandom::new().fill(&mut random).is_err() {
            // Falls back to time-derived bytes; uniqueness, not secrecy, is what a test double needs.
            let mut rng = crate::faults::SeededRng::new(
                Millis::now().0 as u64 ^ u64::from(std::process::id()),
            );
            random
                .iter_mut()
                .for_each(|byte| *byte = rng.next_u64() as u8);
        }
        let tail: String = random
            .iter()
            .map(|byte| ALPHABET[usize::from(*byte) % ALPHABET.len()] as char)
            .collect();
        format!("{}!{tail}", self.org_id.short())
    }
}

/// Which listener a connection came in on, and the switch that drops it without an answer.
#[derive(Clone)]
pub(crate) struct ConnectionControl {
    pub scheme: &'static str,
    pub local_addr: SocketAddr,
    drop_signal: Arc<Notify>,
}

impl ConnectionControl {
    /// Closes the connection; the caller should then never answer (await `pending`).
    fn drop_connection(&self) {
        self.drop_signal.notify_one();
    }
}

/// Marks a response with the connected app that made the request, for the request log.
#[derive(Clone)]
pub(crate) struct AuthenticatedClient(pub String);

/// Entry point: configure and start.
pub struct Emulator;

impl Emulator {
    /// Validates the configuration, loads the state file, binds the listeners and serves in the
    /// background on the current tokio runtime.
    pub async fn start(config: EmulatorConfig) -> Result<RunningEmulator, StartError> {
        let config = ValidConfig::try_from(config)?;
        let now = Millis::now();
        let mut org = Org {
            store: LeadStore::new(config.schema.clone(), config.duplicate_rule_on_email),
            usage: ApiUsage::new(config.daily_request_limit, now),
            sessions: Sessions::new(
                i64::try_from(config.session_timeout.as_millis()).unwrap_or(i64::MAX),
            ),
        };
        if let Some(path) = &config.state_file
            && let Some(state) = persist::load(path)?
        {
            let dropped = org.store.restore(state.store);
            if !dropped.is_empty() {
                tracing::warn!(fields = ?dropped, "state file has fields this configuration does not declare; dropped them");
            }
            org.usage.set_used(state.api_requests_used);
            org.sessions.import(state.sessions);
        }
        let persist_signal = config.state_file.as_ref().map(|_| Arc::new(Notify::new()));
        let fault_settings = config.faults.settings().clone();
        let shared = Arc::new(Shared {
            org_id: SalesforceId::generate(KeyPrefix::ORGANIZATION, INSTANCE, 1),
            user_id: SalesforceId::generate(KeyPrefix::USER, INSTANCE, 1),
            faults: Mutex::new(FaultInjector::new(FaultPlan::default())),
            log: Mutex::new(RequestLog {
                entries: VecDeque::new(),
                capacity: config.request_log_capacity,
                next_seq: 1,
            }),
            org: Mutex::new(org),
            persist_signal: persist_signal.clone(),
            config,
        });
        shared
            .set_faults(fault_settings)
            .map_err(ConfigError::from)?;

        let router = router(shared.clone());
        let mut tasks = Vec::new();
        let mut http_addr = None;
        if let Some(address) = shared.config.http_listen {
            let listener = TcpListener::bind(address)
                .await
                .map_err(|source| StartError::Bind { address, source })?;
            let local = listener
                .local_addr()
                .map_err(|source| StartError::Bind { address, source })?;
            http_addr = Some(local);
            tasks.push(tokio::spawn(accept_loop(listener, router.clone(), None)));
        }
        let mut https_addr = None;
        let mut ca_pem = None;
        if let Some(address) = shared.config.https_listen {
            let material = crate::tls::generate()?;
            if let Some(path) = &shared.config.ca_cert_out {
                std::fs::write(path, &material.ca_pem).map_err(|source| StartError::WriteCa {
                    path: path.clone(),
                    source,
                })?;
            }
            let listener = TcpListener::bind(address)
                .await
                .map_err(|source| StartError::Bind { address, source })?;
            let local = listener
                .local_addr()
                .map_err(|source| StartError::Bind { address, source })?;
            https_addr = Some(local);
            ca_pem = Some(material.ca_pem);
            let acceptor = tokio_rustls::TlsAcceptor::from(material.server_config);
            tasks.push(tokio::spawn(accept_loop(
                listener,
                router.clone(),
                Some(acceptor),
            )));
        }
        if let Some(signal) = persist_signal {
            tasks.push(tokio::spawn(persist_loop(shared.clone(), signal)));
        }
        Ok(RunningEmulator {
            shared,
            http_addr,
            https_addr,
            ca_pem,
            tasks,
        })
    }
}

/// Writes the state file whenever something changed; bursts of changes coalesce into one write.
async fn persist_loop(shared: Arc<Shared>, signal: Arc<Notify>) {
    loop {
        signal.notified().await;
        let writer = shared.clone();
        let result = tokio::task::spawn_blocking(move || writer.save_state()).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "saving state failed"),
            Err(error) => tracing::error!(%error, "state writer task failed"),
        }
    }
}

/// A started emulator. Dropping it stops serving; [`RunningEmulator::shutdown`] also saves state.
pub struct RunningEmulator {
    shared: Arc<Shared>,
    http_addr: Option<SocketAddr>,
    https_addr: Option<SocketAddr>,
    ca_pem: Option<String>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningEmulator {
    /// `http://127.0.0.1:PORT`, the instance URL for plain-HTTP clients.
    pub fn http_url(&self) -> Option<String> {
        self.http_addr.map(|address| format!("http://{address}"))
    }

    /// `https://localhost:PORT`; the certificate also covers `127.0.0.1`.
    pub fn https_url(&self) -> Option<String> {
        self.https_addr
            .map(|address| format!("https://localhost:{}", address.port()))
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// The CA certificate (PEM) to trust for HTTPS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Issues (or repeats) an access token for the first connected app, without an HTTP round trip.
    pub fn issue_access_token(&self) -> String {
        let client_id = self
            .shared
            .config
            .connected_apps
            .first()
            .map(|app| app.client_id.clone())
            .unwrap_or_default();
        let fresh = self.shared.new_access_token();
        let grant = self
            .shared
            .org()
            .sessions
            .grant(&client_id, Millis::now(), || fresh);
        self.shared.state_changed();
        grant.access_token
    }

    /// Live leads, rendered as `GET sobjects/Lead/{id}` would (v60.0).
    pub fn leads(&self) -> Vec<Value> {
        self.shared.admin_leads(false)
    }

    /// Live and deleted leads.
    pub fn all_leads(&self) -> Vec<Value> {
        self.shared.admin_leads(true)
    }

    pub fn lead_count(&self) -> usize {
        self.shared.org().store.live_count()
    }

    pub fn request_log(&self) -> Vec<RequestLogEntry> {
        self.shared.request_log(0)
    }

    pub fn api_requests_used(&self) -> u64 {
        self.shared.org().usage.report().used
    }

    pub fn set_faults(&self, settings: FaultSettings) -> Result<(), FaultPlanError> {
        self.shared.set_faults(settings)
    }

    pub fn revoke_all_tokens(&self) -> usize {
        let count = self.shared.org().sessions.revoke_all();
        self.shared.state_changed();
        count
    }

    /// Forgets leads, usage, sessions and the request log.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// Writes the state file now (a no-op without one).
    pub fn save_state(&self) -> Result<(), PersistError> {
        self.shared.save_state()
    }

    /// Stops serving and saves the state file.
    pub async fn shutdown(mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
        if let Err(error) = self.shared.save_state() {
            tracing::error!(%error, "saving state at shutdown failed");
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    let salesforce = Router::new()
        .merge(oauth::routes())
        .merge(rest::routes())
        .fallback(rest::not_found)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            faults_and_log,
        ));
    Router::new()
        .nest("/__admin", admin::routes())
        .merge(salesforce)
        .with_state(shared)
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    let scheme = if tls.is_some() { "https" } else { "http" };
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let local_addr = stream.local_addr().unwrap_or(peer);
        let router = router.clone();
        match &tls {
            None => {
                tokio::spawn(serve_connection(stream, router, scheme, local_addr));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor.accept(stream).await {
                        Ok(stream) => serve_connection(stream, router, scheme, local_addr).await,
                        Err(error) => tracing::debug!(%error, %peer, "TLS handshake failed"),
                    }
                });
            }
        }
    }
}

/// Serves one connection until it ends or a fault asks for it to be dropped. Dropping the hyper
/// connection future closes the socket, so the client sees the connection end with no response.
async fn serve_connection<S>(io: S, router: Router, scheme: &'static str, local_addr: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let drop_signal = Arc::new(Notify::new());
    let control = ConnectionControl {
        scheme,
        local_addr,
        drop_signal: drop_signal.clone(),
    };
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(control.clone());
        router.clone().oneshot(request.map(axum::body::Body::new))
    });
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service);
    tokio::select! {
        result = connection => {
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
        }
        () = drop_signal.notified() => {}
    }
}

/// Decides the request's fault, carries it out, and logs one line per request.
async fn faults_and_log(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let path = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |pq| pq.as_str().to_owned(),
    );
    let control = request.extensions().get::<ConnectionControl>().cloned();
    let fault = lock(&shared.faults).decide();
    let log = |status: Option<u16>, client_id: Option<String>| {
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            target: "salesforce_emulator::request",
            "{method} {path} -> {} in {duration_ms} ms{}",
            status.map_or_else(|| "dropped".to_owned(), |s| s.to_string()),
            fault.kind().map(|kind| format!(" (fault: {kind:?})")).unwrap_or_default()
        );
        shared.record_request(RequestLogEntry {
            seq: 0,
            at: Millis::now().to_salesforce_datetime(),
            method: method.clone(),
            path: path.clone(),
            status,
            fault: fault.kind(),
            client_id,
            duration_ms,
        });
    };
    let response = match fault {
        Fault::InternalError => respond::injected_internal_error(),
        Fault::Unavailable => respond::injected_unavailable(),
        Fault::TooManyRequests { retry_after_secs } => {
            respond::injected_too_many_requests(retry_after_secs)
        }
        Fault::DropBeforeWrite => {
            log(None, None);
            return drop_and_hang(control).await;
        }
        Fault::Slow { delay_ms } => {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            next.run(request).await
        }
        Fault::DropAfterWrite => {
            // The handler has committed its write by the time it returns; only the answer is lost.
            let response = next.run(request).await;
            let client = response
                .extensions()
                .get::<AuthenticatedClient>()
                .map(|c| c.0.clone());
            log(None, client);
            return drop_and_hang(control).await;
        }
        Fault::None => next.run(request).await,
    };
    let client = response
        .extensions()
        .get::<AuthenticatedClient>()
        .map(|c| c.0.clone());
    log(Some(response.status().as_u16()), client);
    response
}

async fn drop_and_hang(control: Option<ConnectionControl>) -> Response {
    match control {
        Some(control) => {
            control.drop_connection();
            std::future::pending::<Response>().await
        }
        // Only reachable when the router is driven without our connection loop.
        None => axum::http::StatusCode::BAD_GATEWAY.into_response(),
    }
}
