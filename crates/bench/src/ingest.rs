//! Attribute updates per second through `POST /users/track` (75 objects per request, many
//! concurrent connections) next to the store's own rate for the same batches (pre-parsed,
//! `Store::track`), in the same run, on a store seeded with `users` profiles.
//! `leadwire-bench ingest`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use leadwire_profiles::parse_track;
use leadwire_store::{ChangeSource, SqliteConfig, Store};
use serde::{Deserialize, Serialize};
use serde_json::json;

const PER_REQUEST: u64 = 75;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestResult {
    pub users: u64,
    pub connections: u64,
    pub seconds: f64,
    /// `Store::track` with pre-parsed batches of 75 from `connections` tasks: the ceiling.
    pub store_updates_per_s: f64,
    /// `POST /users/track` over HTTP from `connections` connections.
    pub http_updates_per_s: f64,
}

fn body(round: u64, worker: u64, users: u64) -> serde_json::Value {
    let objects: Vec<_> = (0..PER_REQUEST)
        .map(|i| {
            let user = (round * 7919 + worker * 104_729 + i * 13) % users;
            json!({"external_id": format!("user-{user}"), "lead_score": round % 100, "plan": if i % 2 == 0 { "pro" } else { "free" }})
        })
        .collect();
    json!({"attributes": objects})
}

async fn seed(store: &Store, users: u64) -> anyhow::Result<()> {
    for chunk in 0..users / PER_REQUEST + 1 {
        let objects: Vec<_> = (0..PER_REQUEST).map(|i| json!({"external_id": format!("user-{}", (chunk * PER_REQUEST + i) % users), "lead_score": 0})).collect();
        let parsed = parse_track(&json!({"attributes": objects}))?;
        store.track(parsed, ChangeSource::Import).await?;
    }
    Ok(())
}

/// Seeds `users` profiles, then measures each path for `seconds` with `connections` tasks.
pub async fn run(users: u64, seconds: f64, connections: u64) -> anyhow::Result<IngestResult> {
    let users = users.max(PER_REQUEST);
    let dir = tempfile::tempdir()?;
    let store = Store::open_sqlite(SqliteConfig::new(dir.path().join("bench.db")))?;
    let started = Instant::now();
    seed(&store, users).await?;
    println!(
        "  seeded {users} users in {:.1} s",
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
                    let Ok(parsed) = parse_track(&body(round, w, users)) else {
                        return;
                    };
                    if let Ok(r) = store.track(parsed, ChangeSource::Api).await {
                        done.fetch_add(r.attributes_processed as u64, Ordering::Relaxed);
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

    // 2. Through HTTP: the real server, real connections.
    let key = store
        .create_api_key(
            "bench".into(),
            vec![leadwire_api::Permission::UsersTrack.as_str().into()],
        )
        .await?;
    let api = leadwire_api::serve(
        ([127, 0, 0, 1], 0).into(),
        store.clone(),
        leadwire_api::ApiConfig {
            rate_limit: u64::MAX / 2,
            ..Default::default()
        },
    )
    .await
    .context("serving the API")?;
    let http_rate = {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(connections as usize)
            .build()?;
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
                    let payload = body(round, w + 1000, users).to_string();
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
    Ok(IngestResult {
        users,
        connections,
        seconds,
        store_updates_per_s: store_rate,
        http_updates_per_s: http_rate,
    })
}

impl IngestResult {
    pub fn print(&self) {
        println!("{:<48} {:>14}", "path", "updates/s");
        println!(
            "{:<48} {:>14.0}",
            "store.track (pre-parsed, 75/batch): the ceiling", self.store_updates_per_s
        );
        println!(
            "{:<48} {:>14.0}",
            format!("POST /users/track ({} connections)", self.connections),
            self.http_updates_per_s
        );
        println!(
            "{:<48} {:>13.0}%",
            "HTTP as a share of the store",
            100.0 * self.http_updates_per_s / self.store_updates_per_s.max(1e-9)
        );
    }
}
