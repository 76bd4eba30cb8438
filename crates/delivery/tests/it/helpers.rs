//! Shared rigs: a scripted HTTP server on port 0, the sender and worker wiring on a
//! [`ManualClock`], queue draining that moves that clock instead of sleeping.
//!
//! Real time only bounds real I/O here (the request timeout, the drain's hang guard); due times,
//! cool-downs and `Retry-After` run on the manual clock, so no outcome depends on how fast the
//! machine is.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use leadwire_delivery::budget::Budgets;
use leadwire_delivery::circuit::{CircuitBreakers, CircuitConfig};
use leadwire_delivery::clock::ManualClock;
use leadwire_delivery::hostlimit::HostLimits;
use leadwire_delivery::memory::{MemoryActivity, MemoryQueue};
use leadwire_delivery::redact::Redactor;
use leadwire_delivery::retry::{Jitter, RetrySchedule};
use leadwire_delivery::sender::{ClientSettings, Sender, SenderConfig, guarded_client};
use leadwire_delivery::ssrf::SsrfPolicy;
use leadwire_delivery::webhook::{
    Body, CompiledWebhook, Method as WebhookMethod, ValueTyping, WebhookTemplate,
};
use leadwire_delivery::worker::{ExecutionOutcome, Job, Worker, WorkerConfig};
use leadwire_salesforce::limits::BudgetPolicy;

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: vec![],
            body: String::new(),
            delay: Duration::ZERO,
        }
    }
    pub fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_owned()));
        self
    }
    pub fn body(mut self, body: &str) -> Reply {
        self.body = body.to_owned();
        self
    }
}

/// A request the server saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

#[derive(Clone, Default)]
pub struct Script {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Script {
    pub fn push(&self, reply: Reply) {
        self.replies.lock().expect("script").push_back(reply);
    }
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }
}

async fn scripted(
    State(script): State<Script>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    script.seen.lock().expect("seen").push(Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let reply = script
        .replies
        .lock()
        .expect("script")
        .pop_front()
        .unwrap_or_else(|| Reply::status(201).body(r#"{"id":"default"}"#));
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = (
        StatusCode::from_u16(reply.status).expect("status"),
        reply.body,
    )
        .into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).expect("header value"),
        );
    }
    response
}

/// Starts the scripted server; returns its base URL (`http://127.0.0.1:PORT`).
pub async fn script_server() -> (String, Script) {
    let script = Script::default();
    let app = axum::Router::new()
        .fallback(scripted)
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), script)
}

/// Tests' schedule: three tries, 10 ms base, no jitter, `Retry-After` up to 2 s.
pub fn fast_schedule() -> RetrySchedule {
    RetrySchedule {
        max_attempts: 3,
        max_attempts_unreachable: 3,
        base_delay: Duration::from_millis(10),
        multiplier: 2.0,
        max_delay: Duration::from_millis(100),
        max_delay_unreachable: Duration::from_millis(100),
        max_retry_after: Duration::from_secs(2),
        jitter: Jitter::None,
    }
}

pub struct Rig {
    pub worker: Worker<MemoryQueue, MemoryActivity>,
    pub queue: Arc<MemoryQueue>,
    pub activity: Arc<MemoryActivity>,
    pub circuits: Arc<CircuitBreakers>,
    /// Drives the sender, the worker and the queue; only tests move it.
    pub clock: Arc<ManualClock>,
}

pub struct RigOptions {
    pub policy: SsrfPolicy,
    pub circuit: CircuitConfig,
    pub timeout: Duration,
    pub extra_ca_pem: Vec<Vec<u8>>,
    pub redactor: Redactor,
    pub budget: BudgetPolicy,
}

impl Default for RigOptions {
    fn default() -> Self {
        RigOptions {
            policy: SsrfPolicy::strict()
                .allow_host("localhost")
                .allow_net("127.0.0.1".parse().expect("net")),
            circuit: CircuitConfig::default(),
            // Loopback answers at once; this only guards against a hung request on a busy machine.
            timeout: Duration::from_secs(20),
            extra_ca_pem: vec![],
            redactor: Redactor::new(),
            budget: BudgetPolicy::default(),
        }
    }
}

pub fn rig(options: RigOptions) -> Rig {
    let policy = Arc::new(options.policy);
    let client = guarded_client(
        &ClientSettings {
            extra_ca_pem: options.extra_ca_pem,
            pool_max_idle_per_host: None,
        },
        policy.clone(),
    )
    .expect("client");
    let circuits = Arc::new(CircuitBreakers::new(options.circuit));
    let clock = Arc::new(ManualClock::new());
    let sender = Sender::new(
        client,
        SenderConfig {
            timeout: options.timeout,
            schedule: fast_schedule(),
            ..SenderConfig::default()
        },
        policy,
        Arc::new(HostLimits::new(8, 64)),
        circuits.clone(),
        Arc::new(options.redactor),
    )
    .with_budgets(Arc::new(Budgets::new(options.budget)))
    .with_clock(clock.clone());
    let queue = Arc::new(MemoryQueue::new().with_clock(clock.clone()));
    let activity = Arc::new(MemoryActivity::new());
    let worker = Worker::new(
        queue.clone(),
        activity.clone(),
        Arc::new(sender),
        WorkerConfig::default(),
    )
    .with_seed(1);
    Rig {
        worker,
        queue,
        activity,
        circuits,
        clock,
    }
}

pub fn post_template(url: &str) -> WebhookTemplate {
    WebhookTemplate {
        name: "test".into(),
        url: url.into(),
        method: WebhookMethod::Post,
        body: Body::KeyValue(vec![("name".into(), "{{${first_name}}}".into())]),
        headers: vec![("Content-Type".into(), "application/json".into())],
        value_typing: ValueTyping::Strings,
        write_back: vec![],
        lookup_field: None,
        batch: false,
    }
}

pub fn compiled(template: &WebhookTemplate) -> Arc<CompiledWebhook> {
    Arc::new(template.compile().expect("template compiles"))
}

pub fn ada() -> Arc<serde_json::Value> {
    Arc::new(serde_json::json!({
        "profile": {"user_id": "u-ada", "first_name": "Ada", "last_name": "Lovelace", "email_address": "ada@example.com"},
        "custom_attributes": {"company": "Analytical Engines Ltd"}
    }))
}

pub fn job(id: &str, template: &Arc<CompiledWebhook>) -> Job {
    Job::new(id, "u-ada", template.clone(), ada())
        .with_campaign(Some("campaign-1".into()), Some("step-1".into()))
}

/// Executes jobs until none is left unfinished; returns every outcome in order. When no job is
/// due, moves the rig's clock to the next due time (a retry's wait takes no real time).
pub async fn drain(rig: &Rig) -> Vec<ExecutionOutcome> {
    // Real time, only against hanging forever.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut outcomes = Vec::new();
    while rig.queue.unfinished() > 0 {
        assert!(
            Instant::now() < deadline,
            "queue did not drain: {outcomes:?}"
        );
        match rig.worker.try_execute_job().await.expect("queue works") {
            ExecutionOutcome::EmptyQueue => match rig.queue.next_due() {
                Some(at) => rig.clock.advance_to(at),
                // Executed jobs are always settled, so an unfinished one is pending.
                None => panic!("unfinished jobs but none pending: {outcomes:?}"),
            },
            other => outcomes.push(other),
        }
    }
    outcomes
}
