//! Delivered webhooks/second through the worker (in-memory queue → request received by a local
//! axum sink) next to the raw HTTP rate of the same pooled client against the same sink, in the
//! same run; p50/p99 queue-to-delivery latency at a steady offered load; and token requests per
//! 10,000 sends for the seed's connected_content header as written and with `:cache_max_age 900`.
//!
//! `cargo bench -p leadwire-delivery --bench deliver` (env `DELIVER_N`, default 50,000 jobs).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use leadwire_delivery::circuit::{CircuitBreakers, CircuitConfig};
use leadwire_delivery::hostlimit::HostLimits;
use leadwire_delivery::memory::{MemoryActivity, MemoryQueue};
use leadwire_delivery::redact::Redactor;
use leadwire_delivery::sender::{ClientSettings, Sender, SenderConfig, guarded_client};
use leadwire_delivery::ssrf::{GuardedFetcher, SsrfPolicy};
use leadwire_delivery::webhook::{Body, CompiledWebhook, Method, ValueTyping, WebhookTemplate};
use leadwire_delivery::worker::{Job, Worker, WorkerConfig};
use leadwire_http_client::HttpFetcher;
use leadwire_liquid::{ConnectedContent, ConnectedContentConfig};

const CONCURRENCY: usize = 64;

struct Sink {
    base: String,
    hooks: Arc<AtomicU64>,
    tokens: Arc<AtomicU64>,
}

async fn sink() -> Sink {
    let hooks = Arc::new(AtomicU64::new(0));
    let tokens = Arc::new(AtomicU64::new(0));
    let (h, t) = (hooks.clone(), tokens.clone());
    let app = Router::new()
        .route(
            "/hook",
            post(move |_body: String| {
                let h = h.clone();
                async move {
                    h.fetch_add(1, Ordering::Relaxed);
                    (
                        axum::http::StatusCode::CREATED,
                        r#"{"id":"00Q000000000001AAA","success":true}"#,
                    )
                }
            }),
        )
        .route(
            "/services/oauth2/token",
            post(move |_body: String| {
                let t = t.clone();
                async move {
                    t.fetch_add(1, Ordering::Relaxed);
                    axum::Json(
                        serde_json::json!({"access_token": "00Dxx!bench", "token_type": "Bearer"}),
                    )
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Sink {
        base: format!("http://{addr}"),
        hooks,
        tokens,
    }
}

fn policy() -> Arc<SsrfPolicy> {
    Arc::new(SsrfPolicy::strict().allow_net("127.0.0.1".parse().expect("net")))
}

fn template(url: &str, authorization: Option<String>) -> Arc<CompiledWebhook> {
    let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    if let Some(a) = authorization {
        headers.insert(0, ("Authorization".to_owned(), a));
    }
    Arc::new(
        WebhookTemplate {
            name: "bench".into(),
            url: url.into(),
            method: Method::Post,
            body: Body::KeyValue(vec![
                ("firstName".into(), "{{${first_name}}}".into()),
                ("lastName".into(), "{{${last_name}}}".into()),
                ("email".into(), "{{${email_address}}}".into()),
                ("company".into(), "{{custom_attribute.${company}}}".into()),
            ]),
            headers,
            value_typing: ValueTyping::Strings,
            write_back: vec![],
            lookup_field: None,
            batch: false,
        }
        .compile()
        .expect("compiles"),
    )
}

type BenchWorker = Worker<MemoryQueue, MemoryActivity>;

fn worker(client: reqwest::Client, connected: Option<Arc<ConnectedContent>>) -> Arc<BenchWorker> {
    let sender = Sender::new(
        client,
        SenderConfig::default(),
        policy(),
        Arc::new(HostLimits::new(CONCURRENCY, CONCURRENCY)),
        Arc::new(CircuitBreakers::new(CircuitConfig::default())),
        Arc::new(Redactor::new()),
    );
    let mut w = Worker::new(
        Arc::new(MemoryQueue::new()),
        Arc::new(MemoryActivity::new()),
        Arc::new(sender),
        WorkerConfig {
            concurrency: CONCURRENCY,
            claim_batch: 128,
            idle_wait: Duration::from_millis(1),
            ..WorkerConfig::default()
        },
    );
    if let Some(c) = connected {
        w = w.with_connected_content(c);
    }
    Arc::new(w)
}

fn profile(i: usize) -> Arc<serde_json::Value> {
    Arc::new(serde_json::json!({
        "profile": {"user_id": format!("u{i}"), "first_name": "Ada", "last_name": "Lovelace", "email_address": format!("ada{i}@example.com")},
        "custom_attributes": {"company": "Analytical Engines"}
    }))
}

/// Starts the worker loop; returns a stop handle.
fn start(
    w: &Arc<BenchWorker>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(w.clone().run(async move {
        let _ = rx.await;
    }));
    (tx, handle)
}

async fn wait_drained(q: &MemoryQueue) {
    while q.unfinished() > 0 {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn raw_rate(client: &reqwest::Client, url: &str, n: usize) -> f64 {
    let next = Arc::new(AtomicU64::new(0));
    let body = r#"{"firstName":"Ada","lastName":"Lovelace","email":"ada@example.com","company":"Analytical Engines"}"#;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, url, next) = (client.clone(), url.to_owned(), next.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n as u64 {
                let r = client
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .header("X-Leadwire-Delivery-Id", "raw")
                    .body(body)
                    .send()
                    .await;
                if let Ok(r) = r {
                    let _ = r.bytes().await;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

async fn token_requests(sink: &Sink, client: &reqwest::Client, cache: bool, sends: usize) -> u64 {
    let fetcher = GuardedFetcher::new(
        Arc::new(HttpFetcher::new(
            client.clone(),
            tokio::runtime::Handle::current(),
        )),
        policy(),
    );
    let connected = Arc::new(ConnectedContent::new(
        Arc::new(fetcher),
        ConnectedContentConfig::default(),
    ));
    let cache_option = if cache { "     :cache_max_age 900" } else { "" };
    let header = format!(
        "{{% connected_content {}/services/oauth2/token     :method post     :body client_id=id&client_secret=secret&grant_type=client_credentials{cache_option}     :save result %}}Bearer {{{{result.access_token}}}}",
        sink.base
    );
    let w = worker(client.clone(), Some(connected));
    let t = template(&format!("{}/hook", sink.base), Some(header));
    let before = sink.tokens.load(Ordering::Relaxed);
    for i in 0..sends {
        w.queue().push(Job::new(
            format!("tok-{cache}-{i}"),
            format!("u{i}"),
            t.clone(),
            profile(i),
        ));
    }
    let (stop, handle) = start(&w);
    wait_drained(w.queue()).await;
    let _ = stop.send(());
    let _ = handle.await;
    sink.tokens.load(Ordering::Relaxed) - before
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("DELIVER_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let sink = sink().await;
    let client = guarded_client(&ClientSettings::default(), policy()).expect("client");
    let url = format!("{}/hook", sink.base);

    // Warm-up, then the raw rate.
    let _ = raw_rate(&client, &url, 2_000).await;
    let raw = raw_rate(&client, &url, n).await;

    // Throughput: all jobs enqueued, then drained by the worker.
    let w = worker(client.clone(), None);
    let t = template(&url, None);
    let hooks_before = sink.hooks.load(Ordering::Relaxed);
    let started = Instant::now();
    for i in 0..n {
        w.queue().push(Job::new(
            format!("j{i}"),
            format!("u{i}"),
            t.clone(),
            profile(i),
        ));
    }
    let (stop, handle) = start(&w);
    wait_drained(w.queue()).await;
    let elapsed = started.elapsed();
    let _ = stop.send(());
    let _ = handle.await;
    let received = sink.hooks.load(Ordering::Relaxed) - hooks_before;
    assert_eq!(
        received, n as u64,
        "every job reached the sink exactly once"
    );
    let delivered = n as f64 / elapsed.as_secs_f64();
    let mut backlog: Vec<Duration> = w.queue().latencies();
    backlog.sort();

    // Latency at a steady offered load of half the measured delivery rate, for 2 s.
    let w = worker(client.clone(), None);
    let (stop, handle) = start(&w);
    let rate = (delivered / 2.0).max(100.0);
    let per_ms = (rate / 1000.0).max(1.0) as usize;
    let total = (rate * 2.0) as usize;
    let mut pushed = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    while pushed < total {
        tick.tick().await;
        for _ in 0..per_ms.min(total - pushed) {
            w.queue().push(Job::new(
                format!("s{pushed}"),
                "u",
                t.clone(),
                profile(pushed),
            ));
            pushed += 1;
        }
    }
    wait_drained(w.queue()).await;
    let _ = stop.send(());
    let _ = handle.await;
    let mut steady: Vec<Duration> = w.queue().latencies();
    steady.sort();

    let uncached = token_requests(&sink, &client, false, 10_000).await;
    let cached = token_requests(&sink, &client, true, 10_000).await;

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "deliver bench: {n} jobs, worker concurrency {CONCURRENCY}, local axum sink, same pooled client"
    );
    println!(
        "{:<52} {:>12.0} req/s",
        "raw HTTP (same client, same sink, 64 tasks)", raw
    );
    println!(
        "{:<52} {:>12.0} webhooks/s  ({:.0}% of raw)",
        "worker: in-memory queue -> sink",
        delivered,
        delivered / raw * 100.0
    );
    println!(
        "{:<52} p50 {:>8.2} ms  p99 {:>8.2} ms",
        "queue-to-delivery, all enqueued at once (backlog)",
        ms(percentile(&backlog, 0.5)),
        ms(percentile(&backlog, 0.99))
    );
    println!(
        "{:<52} p50 {:>8.2} ms  p99 {:>8.2} ms",
        format!("queue-to-delivery, steady {rate:.0}/s for 2 s"),
        ms(percentile(&steady, 0.5)),
        ms(percentile(&steady, 0.99))
    );
    println!(
        "{:<52} {:>12}",
        "token requests per 10,000 sends, seed as written", uncached
    );
    println!(
        "{:<52} {:>12}",
        "token requests per 10,000 sends, :cache_max_age 900", cached
    );
}
