//! What a million profiles cost the real `leadwire serve`: the binary runs as a child process on
//! a fresh data directory, the users arrive through `POST /users/track` (75 per request, 16
//! requests at once, seven attributes each), and its peak resident set (`VmHWM` in
//! `/proc/PID/status`) is read once they are in. Then it is stopped (SIGTERM) and started again
//! on the same directory: start-up is from spawning the process to its API answering
//! `/readyz`, and the new process's peak RSS after start-up is read too.

use std::ffi::OsString;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::child::{self, Serve};

const TASKS: usize = 16;
const PER_REQUEST: usize = 75;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SizeResult {
    pub profiles: usize,
    pub arrival_seconds: f64,
    pub arrival_users_per_s: f64,
    /// The serving process's peak RSS once every profile was in (MB of 2^20 bytes).
    pub peak_rss_mb: f64,
    /// The data directory afterwards (MB of 10^6 bytes).
    pub disk_mb: f64,
    /// From spawning `leadwire serve` on the full directory to `/readyz` answering 200.
    pub startup_seconds: f64,
    /// From spawning to the "listening on" line.
    pub listening_seconds: f64,
    /// The restarted process's peak RSS once ready.
    pub startup_peak_rss_mb: f64,
}

fn serve_args(data: &std::path::Path) -> Vec<OsString> {
    ["--data-dir".into(), data.as_os_str().to_owned()]
        .into_iter()
        .chain(["--rate-limit", "1000000000", "--log-format", "json"].map(OsString::from))
        .collect()
}

async fn ready(http: &reqwest::Client, base: &str) -> bool {
    http.get(format!("{base}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

pub async fn run(profiles: usize) -> anyhow::Result<SizeResult> {
    let bin = child::leadwire_binary()?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let log = dir.path().join("serve.log");
    let key = child::create_api_key(&bin, &data, &["users.track"])?;
    let port = child::free_port()?;
    let args = serve_args(&data);
    let limit = Duration::from_secs(120);
    let server = Serve::start(&bin, port, &args, &log, limit)?;
    let base = server.url();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(TASKS)
        .build()?;

    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..TASKS {
        let (http, url, key, next) = (
            http.clone(),
            format!("{base}/users/track"),
            key.clone(),
            next.clone(),
        );
        tasks.spawn(async move {
            loop {
                let from = next.fetch_add(PER_REQUEST, std::sync::atomic::Ordering::Relaxed);
                if from >= profiles {
                    return Ok::<(), anyhow::Error>(());
                }
                let objects: Vec<_> = (from..(from + PER_REQUEST).min(profiles))
                    .map(|u| {
                        json!({"external_id": format!("user-{u:07}"), "first_name": "Ada", "last_name": format!("L{u}"),
                               "email": format!("user{u}@example.com"), "company": "Acme", "lead_score": u % 100,
                               "lead_stage": "Lead"})
                    })
                    .collect();
                let body = json!({"attributes": objects});
                // A refused or dropped request is sent again: every profile must arrive.
                let mut tries = 0;
                loop {
                    let sent = http.post(&url).bearer_auth(&key).json(&body).send().await;
                    match sent {
                        Ok(r) if r.status().is_success() => break,
                        other => {
                            tries += 1;
                            if tries > 10 {
                                anyhow::bail!("/users/track kept failing: {other:?}");
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let arrival = started.elapsed();
    // The feed runners and the trigger-feed pruning catch up with what arrived.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let peak = child::status_kib(server.pid(), "VmHWM:").context("reading VmHWM")?;
    server.stop(Duration::from_secs(60))?;
    let disk = child::dir_size(&data);

    // Start-up on the full directory.
    let spawned = Instant::now();
    let server = Serve::start(&bin, port, &args, &log, limit)?;
    let listening = server.started_in;
    let base = server.url();
    let deadline = Instant::now() + limit;
    while !ready(&http, &base).await {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the restarted server never got ready"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let startup = spawned.elapsed();
    let startup_peak = child::status_kib(server.pid(), "VmHWM:").unwrap_or(0);
    server.stop(Duration::from_secs(60))?;
    Ok(SizeResult {
        profiles,
        arrival_seconds: arrival.as_secs_f64(),
        arrival_users_per_s: profiles as f64 / arrival.as_secs_f64(),
        peak_rss_mb: peak as f64 / 1024.0,
        disk_mb: disk as f64 / 1e6,
        startup_seconds: startup.as_secs_f64(),
        listening_seconds: listening.as_secs_f64(),
        startup_peak_rss_mb: startup_peak as f64 / 1024.0,
    })
}

impl SizeResult {
    pub fn print(&self) {
        println!(
            "{} profiles with seven attributes, through POST /users/track of the real `leadwire serve`:",
            self.profiles
        );
        println!(
            "  arrival                    {:>10.1} s   ({:.0} users/s)",
            self.arrival_seconds, self.arrival_users_per_s
        );
        println!(
            "  peak RSS (VmHWM)           {:>10.0} MB  (goal <= 200 MB per million)",
            self.peak_rss_mb
        );
        println!("  data directory             {:>10.0} MB", self.disk_mb);
        println!(
            "  start-up to /readyz        {:>10.3} s   ({:.3} s to 'listening on')",
            self.startup_seconds, self.listening_seconds
        );
        println!(
            "  peak RSS after start-up    {:>10.0} MB",
            self.startup_peak_rss_mb
        );
    }
}
