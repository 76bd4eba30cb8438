//! The real path, as a user runs it: `leadwire serve` (the built binary, in its own processes)
//! with the seed's Create Lead template (token fetched with connected_content and cached) and the
//! "New lead" campaign, users in through `POST /users/track`, leads created in the bundled
//! Salesforce emulator. Printed next to the emulator's own rate for the same creates from a pooled
//! client with one token (the ceiling), in the same run:
//!
//! - one node on the embedded SQLite database;
//! - with `BENCH_DATABASE_URL` (or `LEADWIRE_TEST_DATABASE_URL`) naming a PostgreSQL server, 1, 2
//!   and 3 nodes on it (each run in a fresh schema), requests spread over the nodes.
//!
//! With each, the CPU time the leadwire processes and the PostgreSQL server spent per lead: on a
//! machine whose cores the nodes share, that (not the rate) tells how it would scale.
//! `cargo bench -p leadwire --bench serve_emulator`; `BENCH_USERS` (default 20000). Run under
//! `taskset -c 0,1` and without it to compare cores.

#[path = "../tests/common/mod.rs"]
mod common;

use std::ffi::OsString;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use leadwire_app::{DatabaseConfig, PostgresConfig, SqliteConfig};
use leadwire_salesforce_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig, RunningEmulator,
};
use serde_json::{Value as Json, json};

const CONCURRENCY: usize = 64;

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

/// CPU time (user + system) a process has used, from `/proc` (zero where there is none).
fn cpu_of(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 (1-based): 11 and 12 after the state field.
    let total = ticks(11) + ticks(12);
    Duration::from_millis(total * 1000 / 100)
}

/// CPU time every PostgreSQL server process has used so far.
fn postgres_cpu() -> Duration {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(cpu_of)
        .sum()
}

struct Run {
    label: String,
    leads: usize,
    per_second: f64,
    /// CPU per lead, per leadwire node (microseconds).
    node_cpu_us: Vec<f64>,
    /// CPU per lead of the PostgreSQL server (microseconds), when there is one.
    postgres_cpu_us: Option<f64>,
}

/// `nodes` leadwire processes on `db`, `users` users spread over them; the leads/s seen at the
/// emulator.
async fn run_leadwire(
    emulator: &RunningEmulator,
    label: &str,
    db: &DatabaseConfig,
    data: &std::path::Path,
    nodes: usize,
    users: usize,
) -> Run {
    let base = emulator.http_url().expect("http");
    let key = common::create_api_key(
        data,
        db,
        &["users.track", "templates.write", "campaigns.write"],
    );
    let mut args = common::database_args(data, db);
    for a in ["--allow-host", "127.0.0.1", "--rate-limit", "1000000000"] {
        args.push(OsString::from(a));
    }
    let logs = tempfile::tempdir().expect("logs");
    let ports: Vec<u16> = (0..nodes).map(|_| common::free_port()).collect();
    let mut children: Vec<Child> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            common::start_serve(*port, &args, &logs.path().join(format!("node-{i}.log")))
        })
        .collect();
    let apis: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("client");
    let post = |api: &str, path: &str, body: Json| {
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
    post(&apis[0], "/templates/webhook/create", json!({
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
    post(&apis[0], "/campaigns/create", json!({"name": "New lead", "status": "active", "trigger": {"type": "email_added"}, "template": "Salesforce Sales Cloud > Create Lead"})).await;

    let node_cpu_before: Vec<Duration> = children.iter().map(|c| cpu_of(c.id())).collect();
    let pg_before = postgres_cpu();
    let before = emulator.lead_count();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (w, chunk) in (0..users).collect::<Vec<_>>().chunks(75).enumerate() {
        let objects: Vec<Json> = chunk
            .iter()
            .map(|i| json!({"external_id": format!("{label}-u{i}"), "first_name": "Ada", "last_name": format!("L{i}"), "email": format!("{label}-u{i}@example.com"), "company": "Acme"}))
            .collect();
        tasks.push(tokio::spawn(post(
            &apis[w % nodes],
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
    let deadline = Instant::now() + Duration::from_secs(900);
    while emulator.lead_count() - before < users && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let leads = emulator.lead_count() - before;
    let elapsed = started.elapsed().as_secs_f64();
    let per_lead = |d: Duration| d.as_secs_f64() * 1e6 / leads.max(1) as f64;
    let node_cpu_us = children
        .iter()
        .zip(&node_cpu_before)
        .map(|(c, b)| per_lead(cpu_of(c.id()).saturating_sub(*b)))
        .collect();
    let postgres_cpu_us = matches!(db, DatabaseConfig::Postgres(_))
        .then(|| per_lead(postgres_cpu().saturating_sub(pg_before)));
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    Run {
        label: label.to_string(),
        leads,
        per_second: leads as f64 / elapsed,
        node_cpu_us,
        postgres_cpu_us,
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let users: usize = std::env::var("BENCH_USERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let postgres = std::env::var("BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("LEADWIRE_TEST_DATABASE_URL"))
        .ok()
        .filter(|u| !u.is_empty());
    let config = EmulatorConfig {
        daily_request_limit: u64::MAX,
        request_log_capacity: 1_000,
        ..EmulatorConfig::default()
    };
    let emulator = Emulator::start(config).await.expect("emulator starts");
    let base = emulator.http_url().expect("http");

    // The ceiling: the same creates straight at the emulator, one token.
    let token = emulator.issue_access_token();
    let raw = raw_creates(&base, &token, users).await;

    let dir = tempfile::tempdir().expect("dir");
    let mut runs = Vec::new();
    let data = dir.path().join("sqlite");
    let sqlite = DatabaseConfig::Sqlite(SqliteConfig::new(data.join("leadwire.db")));
    runs.push(run_leadwire(&emulator, "sqlite-1", &sqlite, &data, 1, users).await);
    if let Some(url) = &postgres {
        for nodes in 1..=3 {
            let label = format!("postgres-{nodes}");
            let schema = format!("bench_{}_{nodes}", std::process::id());
            let db = DatabaseConfig::Postgres(PostgresConfig::new(url.clone()).with_schema(schema));
            runs.push(
                run_leadwire(
                    &emulator,
                    &label,
                    &db,
                    &dir.path().join(&label),
                    nodes,
                    users,
                )
                .await,
            );
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "{users} users per run, {CONCURRENCY} connections, {cores} cores; the emulator in this process, each leadwire node in its own:"
    );
    println!("  emulator creates/s, pooled client, one token       {raw:>8.0}   (the ceiling)");
    for r in &runs {
        let nodes: Vec<String> = r.node_cpu_us.iter().map(|us| format!("{us:.0}")).collect();
        let pg = r
            .postgres_cpu_us
            .map(|us| format!(", PostgreSQL {us:.0} µs"))
            .unwrap_or_default();
        println!(
            "  leadwire {:<12} /users/track -> lead/s    {:>8.0}   ({:>3.0}% of the ceiling; {} leads; CPU per lead: node{} {} µs{pg})",
            r.label,
            r.per_second,
            100.0 * r.per_second / raw,
            r.leads,
            if r.node_cpu_us.len() > 1 { "s" } else { "" },
            nodes.join(" + "),
        );
    }
    if postgres.is_none() {
        println!("  (PostgreSQL runs skipped: set BENCH_DATABASE_URL to a PostgreSQL server)");
    }
    println!("  Braze's fastest campaign speed: 8,333/s");
}
