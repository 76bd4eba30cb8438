//! The real path, as a user runs it: `leadwire serve` (the built binary, its own process) with the
//! seed's Create Lead template (token fetched with connected_content and cached) and the "New lead"
//! campaign, users in through `POST /users/track`, leads created in the bundled Salesforce emulator.
//! Printed next to the emulator's own rate for the same creates from a pooled client with one
//! token, in the same run. `cargo bench -p leadwire --bench serve_emulator`; `BENCH_USERS`
//! (default 20000). Run under `taskset -c 0,1` and without it to compare cores.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use leadwire_salesforce_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig,
};
use serde_json::{Value as Json, json};

const CONCURRENCY: usize = 64;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn raw_creates(base: &str, token: &str, n: usize) -> f64 {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("client");
    let url = format!("{base}/services/data/v60.0/sobjects/Lead/");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, url, token, next) =
            (client.clone(), url.clone(), token.to_owned(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let _ = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"firstName": "Raw", "lastName": format!("R{i}"), "email": format!("raw{i}@example.com"), "company": "Acme"}))
                    .send()
                    .await;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn leadwire() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leadwire"))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let users: usize = std::env::var("BENCH_USERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let config = EmulatorConfig {
        daily_request_limit: u64::MAX,
        request_log_capacity: 1_000,
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await.expect("emulator starts");
    let base = emulator.http_url().expect("http");

    // 1. The ceiling: the same creates straight at the emulator, one token.
    let token = emulator.issue_access_token();
    let raw = raw_creates(&base, &token, users).await;

    // 2. leadwire serve, as a user runs it.
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let out = leadwire()
        .args(["api-keys", "create", "--data-dir"])
        .arg(&data)
        .args([
            "--permission",
            "users.track",
            "--permission",
            "templates.write",
            "--permission",
            "campaigns.write",
        ])
        .output()
        .expect("api-keys create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .expect("key")
        .trim()
        .to_owned();
    let port = free_port();
    let mut server = leadwire()
        .args(["serve", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(&data)
        .args(["--allow-host", "127.0.0.1", "--rate-limit", "1000000000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("leadwire serve");
    let stdout = server.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("listening on") => break,
            Some(_) => {}
            None => panic!("leadwire serve exited"),
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let api = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("client");
    let post = |path: &str, body: Json| {
        let (http, url, key) = (http.clone(), format!("{api}{path}"), key.clone());
        async move {
            let r = http
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .expect("request");
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            assert!(status.is_success(), "{status}: {text}");
        }
    };
    post("/templates/webhook/create", json!({
        "name": "Salesforce Sales Cloud > Create Lead",
        "url": format!("{base}/services/data/v60.0/sobjects/Lead/"),
        "method": "POST",
        "body": {"firstName": "{{${first_name}}}", "lastName": "{{${last_name}}}", "email": "{{${email_address}}}", "company": "{{custom_attribute.${company}}}"},
        "headers": {
            "Authorization": format!("{{% connected_content {base}/services/oauth2/token :method post :body client_id={DEFAULT_CLIENT_ID}&client_secret={DEFAULT_CLIENT_SECRET}&grant_type=client_credentials :cache_max_age 900 :save result %}}Bearer {{{{result.access_token}}}}"),
            "Content-Type": "application/json"
        },
        "write_back": [{"response_field": "id", "attribute": "salesforce_lead_id"}]
    })).await;
    post("/campaigns/create", json!({"name": "New lead", "status": "active", "trigger": {"type": "email_added"}, "template": "Salesforce Sales Cloud > Create Lead"})).await;

    let before = emulator.lead_count();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (w, chunk) in (0..users).collect::<Vec<_>>().chunks(75).enumerate() {
        let objects: Vec<Json> = chunk
            .iter()
            .map(|i| json!({"external_id": format!("u{i}"), "first_name": "Ada", "last_name": format!("L{i}"), "email": format!("u{i}@example.com"), "company": "Acme"}))
            .collect();
        tasks.push(tokio::spawn(post(
            "/users/track",
            json!({"attributes": objects}),
        )));
        if w % 16 == 15 {
            for t in tasks.drain(..) {
                let _ = t.await;
            }
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    while emulator.lead_count() - before < users && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let created = emulator.lead_count() - before;
    let elapsed = started.elapsed().as_secs_f64();
    let _ = server.kill();
    let _ = server.wait();
    let through = created as f64 / elapsed;
    println!(
        "{users} users, {CONCURRENCY} connections, the emulator in this process, leadwire serve in its own:"
    );
    println!("  emulator creates/s, pooled client, one token      {raw:>10.0}");
    println!(
        "  leadwire serve: /users/track -> lead created/s     {through:>10.0}  ({:.0}% of the emulator's rate; {created} leads)",
        100.0 * through / raw
    );
    println!("  Braze's fastest campaign speed: 8,333/s");
}
