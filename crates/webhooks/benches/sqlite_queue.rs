//! Delivered webhooks/second through the durable SQLite queue (enqueue in one transaction →
//! claim with leases → hydrate template + profile → render → send → settle) next to the raw HTTP
//! rate of a pooled client against the same local sink, in the same run.
//!
//! `cargo bench -p leadwire-webhooks --bench sqlite_queue` (env `SQLITE_DELIVER_N`, default 20,000).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use leadwire_delivery::ssrf::SsrfPolicy;
use leadwire_profiles::{Identifier, parse_track};
use leadwire_store::{ChangeSource, JobState, SqliteConfig, Store};
use leadwire_webhooks::templates::TemplateDefinition;
use leadwire_webhooks::{NewJob, RenderProperties, WebhookConfig, WebhookService};
use serde_json::json;

const CONCURRENCY: usize = 64;
/// Jobs in flight in the worker (claims are batched only when many slots are free at once).
const WORKERS: usize = 256;

async fn sink() -> (String, Arc<AtomicU64>) {
    let hooks = Arc::new(AtomicU64::new(0));
    let h = hooks.clone();
    let app = Router::new().route(
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
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/hook"), hooks)
}

async fn raw_rate(url: &str, n: usize) -> f64 {
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, next, url) = (client.clone(), next.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n as u64 {
                let _ = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(r#"{"firstName":"Ada","lastName":"Lovelace"}"#)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status());
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let n: usize = std::env::var("SQLITE_DELIVER_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let (url, hooks) = sink().await;
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("leadwire.db");
    let store = Store::open_sqlite(SqliteConfig::new(&db)).expect("store");
    for chunk in (0..n).collect::<Vec<_>>().chunks(75) {
        let attributes: Vec<_> = chunk
            .iter()
            .map(|i| json!({"external_id": format!("u{i}"), "first_name": "Ada", "last_name": format!("L{i}")}))
            .collect();
        store
            .track(
                parse_track(&json!({"attributes": attributes})).expect("parse"),
                ChangeSource::Import,
            )
            .await
            .expect("track");
    }
    let mut config = WebhookConfig::new();
    config.ssrf = SsrfPolicy::strict().allow_net("127.0.0.1/32".parse().expect("net"));
    config.worker.concurrency = WORKERS;
    config.per_host_concurrency = CONCURRENCY;
    let service = WebhookService::open(config, store.clone())
        .await
        .expect("webhooks");
    let template = service
        .create_template(
            TemplateDefinition::from_json(&json!({
                "name": "bench", "url": url, "method": "POST",
                "headers": {"Content-Type": "application/json"},
                "body": {"firstName": "{{${first_name}}}", "lastName": "{{${last_name}}}"}
            }))
            .expect("definition"),
        )
        .await
        .expect("template")
        .id;

    let raw = raw_rate(&url, n).await;
    hooks.store(0, Ordering::Relaxed);

    let started = Instant::now();
    store
        .transact(move |tx| {
            for i in 0..n {
                tx.enqueue_job(&NewJob {
                    template_id: template.clone(),
                    user: Identifier::ExternalId(format!("u{i}")),
                    campaign_id: Some("bench".into()),
                    step_id: None,
                    properties: RenderProperties::default().to_json(),
                    not_before: None,
                    trace_context: None,
                })?;
            }
            Ok::<_, leadwire_store::StoreError>(())
        })
        .await
        .expect("enqueue");
    let enqueue_rate = n as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    service.start();
    loop {
        let counts = service.job_counts().await.expect("counts");
        if counts.get(&JobState::Delivered).copied().unwrap_or(0) as usize >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    service.stop().await;
    let delivered = n as f64 / elapsed.as_secs_f64();
    println!(
        "{n} jobs, raw client {CONCURRENCY} concurrent, worker {WORKERS} concurrent, release build, same machine, same run:"
    );
    println!("  enqueue (one transaction)          {enqueue_rate:>10.0} jobs/s");
    println!("  raw HTTP, pooled client → sink     {raw:>10.0} req/s");
    println!(
        "  SQLite queue → sink (delivered)    {delivered:>10.0} jobs/s  ({:.0}% of raw; sink saw {})",
        100.0 * delivered / raw,
        hooks.load(Ordering::Relaxed)
    );
}
