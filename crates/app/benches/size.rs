//! What a million users cost: peak RSS while they arrive, disk after the feed is pruned, and
//! start-up time on the full database. Users arrive through the store's `track` in batches of 75
//! from 16 tasks (as `/users/track` requests would), each with seven attributes, while leadwire
//! runs as `App::start` runs it (feed runners consuming, feed pruning).
//! `cargo bench -p leadwire-app --bench size`; `BENCH_USERS` (default 1,000,000).

use std::time::{Duration, Instant};

use leadwire_app::{App, AppConfig};
use leadwire_profiles::parse_track;
use leadwire_store::ChangeSource;
use serde_json::json;

fn kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn disk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

const TASKS: usize = 16;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let users: usize = std::env::var("BENCH_USERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("dir");
    let mut config = AppConfig::new(dir.path());
    config.feed_retention = Duration::ZERO;
    let database = config.database.clone();
    let app = App::start(config).await.expect("leadwire starts");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let store = app.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = t * 75;
            while i < users {
                let objects: Vec<_> = (i..(i + 75).min(users))
                    .map(|u| {
                        json!({"external_id": format!("user-{u:07}"), "first_name": "Ada", "last_name": format!("L{u}"),
                               "email": format!("user{u}@example.com"), "company": "Acme", "lead_score": u % 100,
                               "lead_stage": "Lead"})
                    })
                    .collect();
                let parsed = parse_track(&json!({"attributes": objects})).expect("valid");
                store.track(parsed, ChangeSource::Import).await.expect("track");
                i += TASKS * 75;
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let arrival = started.elapsed();
    let peak_during = kib("VmHWM:");
    assert!(app.settle(Duration::from_secs(600)).await.expect("settle"));
    let pruned = leadwire_app::prune_feed(&app.store, Duration::ZERO)
        .await
        .expect("prune");
    app.store.checkpoint().await.expect("checkpoint");
    let left = app.store.triggers_after(0, 10).await.expect("feed").len();
    let (page, pages, free) = app.store.read(|tx| tx.file_pages()).await.expect("pages");
    let on_disk = disk(dir.path());
    app.stop().await;
    let reopened = Instant::now();
    let store = leadwire_app::open_store(&database).expect("reopens");
    let startup = reopened.elapsed();
    let count = store.profile_count().await.expect("count");
    println!("{users} users with seven attributes, arriving from {TASKS} tasks in batches of 75:");
    println!(
        "  arrival                 {:>10.1} s  ({:.0} users/s)",
        arrival.as_secs_f64(),
        users as f64 / arrival.as_secs_f64()
    );
    println!(
        "  peak RSS                {:>10.0} MB  (goal <= 200 MB per million)",
        peak_during as f64 / 1024.0
    );
    println!(
        "  on disk after pruning   {:>10.0} MB  (goal <= 400 MB per million; {pruned} triggers pruned, {left} left)",
        on_disk as f64 / 1e6
    );
    println!(
        "  of which live pages     {:>10.0} MB  (the rest: free pages the file reuses, and the WAL)",
        ((pages - free) * page) as f64 / 1e6
    );
    println!(
        "  start-up on that file   {:>10.3} s  ({count} profiles)",
        startup.as_secs_f64()
    );
}
