//! Attribute updates per second through `/users/track` (75 objects per request, many concurrent
//! connections) next to the store's own rate for the same batches, in the same run.
//! `cargo bench -p leadwire-api --bench track`; `BENCH_SECONDS` (default 5), `BENCH_CONNECTIONS` (64).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use leadwire_profiles::parse_track;
use leadwire_store::{ChangeSource, SqliteConfig, Store};
use serde_json::json;

const USERS: u64 = 100_000;
const PER_REQUEST: u64 = 75;

fn body(round: u64, worker: u64) -> serde_json::Value {
    let objects: Vec<_> = (0..PER_REQUEST)
        .map(|i| {
            let user = (round * 7919 + worker * 104_729 + i * 13) % USERS;
            json!({"external_id": format!("user-{user}"), "lead_score": round % 100, "plan": if i % 2 == 0 { "pro" } else { "free" }})
        })
        .collect();
    json!({"attributes": objects})
}

async fn seed(store: &Store) {
    for chunk in 0..USERS / PER_REQUEST + 1 {
        let objects: Vec<_> = (0..PER_REQUEST).map(|i| json!({"external_id": format!("user-{}", (chunk * PER_REQUEST + i) % USERS), "lead_score": 0})).collect();
        let parsed = parse_track(&json!({"attributes": objects})).expect("valid");
        store
            .track(parsed, ChangeSource::Import)
            .await
            .expect("seed");
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds: f64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let connections: u64 = std::env::var("BENCH_CONNECTIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    let dir = tempfile::tempdir().expect("dir");
    let store = Store::open_sqlite(SqliteConfig::new(dir.path().join("bench.db"))).expect("store");
    let started = Instant::now();
    seed(&store).await;
    println!(
        "seeded {USERS} users in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // 1. The store alone: pre-parsed batches from many tasks.
    let store_rate = {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for w in 0..connections {
            let (store, stop, done) = (store.clone(), stop.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    let parsed = parse_track(&body(round, w)).expect("valid");
                    let r = store.track(parsed, ChangeSource::Api).await.expect("track");
                    done.fetch_add(r.attributes_processed as u64, Ordering::Relaxed);
                    round += 1;
                }
            }));
        }
        let t = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let n = done.load(Ordering::Relaxed);
        let rate = n as f64 / t.elapsed().as_secs_f64();
        for task in tasks {
            let _ = task.await;
        }
        rate
    };

    // 2. Through HTTP: the real server, real connections.
    let key = store
        .create_api_key(
            "bench".into(),
            vec![leadwire_api::Permission::UsersTrack.as_str().into()],
        )
        .await
        .expect("key");
    let api = leadwire_api::serve(
        "127.0.0.1:0".parse().expect("addr"),
        store.clone(),
        leadwire_api::ApiConfig {
            rate_limit: u64::MAX / 2,
            ..Default::default()
        },
    )
    .await
    .expect("serve");
    let http_rate = {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections as usize)
            .build()
            .expect("client");
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let url = format!("{}/users/track", api.url());
        let mut tasks = Vec::new();
        for w in 0..connections {
            let (client, stop, done, url, key) = (
                client.clone(),
                stop.clone(),
                done.clone(),
                url.clone(),
                key.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    let payload = serde_json::to_vec(&body(round, w + 1000)).expect("json");
                    let r = client
                        .post(&url)
                        .bearer_auth(&key)
                        .header("content-type", "application/json")
                        .body(payload)
                        .send()
                        .await;
                    if let Ok(r) = r {
                        if r.status().as_u16() == 201 {
                            done.fetch_add(PER_REQUEST, Ordering::Relaxed);
                        }
                        let _ = r.bytes().await;
                    }
                    round += 1;
                }
            }));
        }
        let t = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let n = done.load(Ordering::Relaxed);
        let rate = n as f64 / t.elapsed().as_secs_f64();
        for task in tasks {
            let _ = task.await;
        }
        rate
    };
    api.shutdown().await;
    println!("{:<44} {:>14}", "path", "updates/s");
    println!(
        "{:<44} {:>14.0}",
        "store.track (pre-parsed, 75/batch)", store_rate
    );
    println!(
        "{:<44} {:>14.0}",
        format!("POST /users/track ({connections} connections)"),
        http_rate
    );
    println!(
        "{:<44} {:>13.0}%",
        "HTTP as a share of the store",
        100.0 * http_rate / store_rate
    );
    println!("goal: >= 75,000 updates/s through HTTP and >= 50% of the store's rate");
}
