//! Leads per second end to end — a user with an email in through `POST /users/track`, the trigger
//! feed, the campaign engine, the durable queue, the webhook worker, a request received by a local
//! sink — and trigger-to-delivery latency (p50/p99) at fixed offered loads, next to the raw HTTP
//! rate of a pooled client against the same sink in the same run.
//! leadwire is started through `App::start`, as `leadwire serve` starts it.
//! `cargo bench -p leadwire-app --bench e2e`; `BENCH_USERS` (default 20000). Run under
//! `taskset -c 0,1` and without it to compare 2 cores with all of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use leadwire_app::{App, AppConfig};
use leadwire_delivery::ssrf::SsrfPolicy;
use leadwire_webhooks::templates::TemplateDefinition;
use serde_json::{Value as Json, json};

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn sink() -> (String, Arrivals) {
    let arrivals: Arrivals = Arc::new(Mutex::new(HashMap::new()));
    let a = arrivals.clone();
    let app = axum::Router::new().route(
        "/lead",
        post(move |body: String| {
            let a = a.clone();
            async move {
                if let Ok(v) = serde_json::from_str::<Json>(&body)
                    && let Some(email) = v["email"].as_str()
                    && let Ok(mut m) = a.lock()
                {
                    m.entry(email.to_string()).or_insert_with(Instant::now);
                }
                (
                    axum::http::StatusCode::CREATED,
                    "{\"id\":\"00Q000000000001AAA\",\"success\":true}",
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
    (format!("http://{addr}/lead"), arrivals)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let users: usize = std::env::var("BENCH_USERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let (url, arrivals) = sink().await;

    // Raw ceiling: the same kind of pooled client straight at the sink.
    let raw = {
        let client = reqwest::Client::new();
        let n = 20_000usize;
        let started = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..64 {
            let (client, url) = (client.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                for i in (w..n).step_by(64) {
                    let _ = client
                        .post(&url)
                        .body(format!("{{\"email\":\"raw{i}@x.io\"}}"))
                        .send()
                        .await;
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        n as f64 / started.elapsed().as_secs_f64()
    };

    let dir = tempfile::tempdir().expect("dir");
    let mut config = AppConfig::new(dir.path());
    config.webhooks.ssrf = SsrfPolicy::strict().allow_host("127.0.0.1");
    config.webhooks.worker.concurrency = 128;
    let app = App::start(config).await.expect("leadwire starts");
    let template = json!({"name": "Create Lead", "url": url, "method": "POST",
        "body": {"lastName": "{{${last_name}}}", "email": "{{${email_address}}}", "company": "{{custom_attribute.${company}}}"},
        "headers": {"Content-Type": "application/json"}});
    app.webhooks
        .create_template(TemplateDefinition::from_json(&template).expect("def"))
        .await
        .expect("template");
    app.campaigns
        .save_campaign(serde_json::from_value(json!({"name": "New lead", "status": "active", "trigger": {"type": "email_added"}, "template": "Create Lead"})).expect("spec"))
        .await
        .expect("campaign");
    let key = app
        .store
        .create_api_key("bench".into(), vec!["users.track".into()])
        .await
        .expect("key");
    let api = app
        .serve_api(
            "127.0.0.1:0".parse().expect("addr"),
            leadwire_api::ApiConfig {
                rate_limit: u64::MAX / 2,
                ..Default::default()
            },
        )
        .await
        .expect("api");
    let track_url = format!("{}/users/track", api.url());
    let client = reqwest::Client::new();
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));

    let wait_for = |emails: Vec<String>, limit: Duration| {
        let arrivals = arrivals.clone();
        async move {
            let deadline = Instant::now() + limit;
            loop {
                let done = arrivals
                    .lock()
                    .map(|m| emails.iter().filter(|e| m.contains_key(*e)).count())
                    .unwrap_or(0);
                if done == emails.len() || Instant::now() > deadline {
                    return done;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let latencies = |emails: &[String]| {
        let s = sent.lock().map(|m| m.clone()).unwrap_or_default();
        let a = arrivals.lock().map(|m| m.clone()).unwrap_or_default();
        let mut l: Vec<Duration> = emails
            .iter()
            .filter_map(|e| Some(a.get(e)?.duration_since(*s.get(e)?)))
            .collect();
        l.sort();
        l
    };

    println!(
        "{:<52} {:>12} {:>10} {:>10}",
        "case", "leads/s", "p50", "p99"
    );
    println!(
        "{:<52} {:>12.0} {:>10} {:>10}",
        "raw HTTP, pooled client -> sink (64 tasks)", raw, "-", "-"
    );

    // Fixed offered loads: one user per request at a steady rate.
    for rate in [100u64, 500, 1000] {
        let seconds = 4;
        let n = (rate * seconds) as usize;
        let emails: Vec<String> = (0..n).map(|i| format!("r{rate}-{i}@example.com")).collect();
        let started = Instant::now();
        let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        let mut inflight = Vec::new();
        for email in &emails {
            interval.tick().await;
            let body = json!({"attributes": [{"external_id": email, "last_name": "L", "email": email, "company": "C"}]});
            if let Ok(mut m) = sent.lock() {
                m.insert(email.clone(), Instant::now());
            }
            let (client, url, key) = (client.clone(), track_url.clone(), key.clone());
            inflight.push(tokio::spawn(async move {
                let _ = client.post(url).bearer_auth(key).json(&body).send().await;
            }));
        }
        for t in inflight {
            let _ = t.await;
        }
        let done = wait_for(emails.clone(), Duration::from_secs(60)).await;
        let elapsed = started.elapsed().as_secs_f64();
        let l = latencies(&emails);
        println!(
            "{:<52} {:>12.0} {:>9.1}ms {:>9.1}ms",
            format!("offered {rate}/s for {seconds}s ({done}/{n} delivered)"),
            done as f64 / elapsed,
            percentile(&l, 0.5).as_secs_f64() * 1e3,
            percentile(&l, 0.99).as_secs_f64() * 1e3
        );
    }

    // Saturation: batches of 75 users per request from 16 connections, as fast as possible.
    let emails: Vec<String> = (0..users).map(|i| format!("max-{i}@example.com")).collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (w, chunk) in emails.chunks(75).enumerate() {
        let objects: Vec<Json> = chunk
            .iter()
            .map(|e| json!({"external_id": e, "last_name": "L", "email": e, "company": "C"}))
            .collect();
        let now = Instant::now();
        if let Ok(mut m) = sent.lock() {
            for e in chunk {
                m.insert(e.clone(), now);
            }
        }
        let (client, url, key) = (client.clone(), track_url.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let _ = client
                .post(url)
                .bearer_auth(key)
                .json(&json!({"attributes": objects}))
                .send()
                .await;
        }));
        if w % 16 == 15 {
            for t in tasks.drain(..) {
                let _ = t.await;
            }
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let done = wait_for(emails.clone(), Duration::from_secs(120)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let l = latencies(&emails);
    println!(
        "{:<52} {:>12.0} {:>9.1}ms {:>9.1}ms",
        format!("saturation: {users} users, 75/request ({done} delivered)"),
        done as f64 / elapsed,
        percentile(&l, 0.5).as_secs_f64() * 1e3,
        percentile(&l, 0.99).as_secs_f64() * 1e3
    );
    println!("Braze's fastest campaign speed for comparison: 500,000/min = 8,333/s");
}
