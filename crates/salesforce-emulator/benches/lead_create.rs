//! Lead creates per second against the emulator, next to a trivial 204 endpoint on the same server,
//! same run, same client concurrency. Goal: creates >= 50% of the 204 rate, so the emulator is never the
//! bottleneck of end-to-end benchmarks.
//!
//! `cargo bench -p leadwire-salesforce-emulator --bench lead_create`
//! Knobs: BENCH_SECS (default 3 per endpoint), BENCH_CONCURRENCY (default 16).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use leadwire_salesforce_emulator::{Emulator, EmulatorConfig};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `concurrency` clients against `url` for `duration`; returns successful requests per second.
async fn measure(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    expected: u16,
    concurrency: u64,
    duration: Duration,
) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for worker in 0..concurrency {
        let (client, url, token) = (client.clone(), url.to_owned(), token.to_owned());
        let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            let mut sequence = 0u64;
            while !stop.load(Ordering::Relaxed) {
                sequence += 1;
                let body = format!(
                    r#"{{"firstName":"Bench","lastName":"Lead {worker}-{sequence}","email":"bench{worker}.{sequence}@example.com","company":"Leadwire"}}"#
                );
                let sent = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().as_u16() == expected => {
                        let _ = response.bytes().await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    let count = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.await;
    }
    let failures = failed.load(Ordering::Relaxed);
    assert!(failures == 0, "{failures} requests to {url} failed");
    count as f64 / elapsed.as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let seconds = env_number("BENCH_SECS", 3);
        let concurrency = env_number("BENCH_CONCURRENCY", 16);
        let config = EmulatorConfig { daily_request_limit: u64::MAX, request_log_capacity: 1_000, ..EmulatorConfig::default() };
        let emulator = Emulator::start(config).await.expect("emulator starts");
        let base = emulator.http_url().expect("http");
        let token = emulator.issue_access_token();
        let client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(concurrency as usize).build().expect("client");
        let create_url = format!("{base}/services/data/v60.0/sobjects/Lead/");
        let noop_url = format!("{base}/__admin/noop");
        let duration = Duration::from_secs(seconds);
        let warm_up = Duration::from_millis(500);

        measure(&client, &noop_url, &token, 204, concurrency, warm_up).await;
        let noop = measure(&client, &noop_url, &token, 204, concurrency, duration).await;
        measure(&client, &create_url, &token, 201, concurrency, warm_up).await;
        let creates = measure(&client, &create_url, &token, 201, concurrency, duration).await;
        let ratio = creates / noop;
        println!("concurrency {concurrency}, {seconds} s per endpoint, one process (server and client share the cores)");
        println!("trivial 204 endpoint (/__admin/noop): {noop:>10.0} requests/s");
        println!("lead create (POST sobjects/Lead/):    {creates:>10.0} creates/s");
        println!("ratio creates / 204:                  {:>10.1} %  (goal >= 50 %)", ratio * 100.0);
        println!("leads stored: {}", emulator.lead_count());
        emulator.shutdown().await;
    });
}
