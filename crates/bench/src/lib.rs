//! leadwire's benchmarks and reliability harness, one implementation behind one binary
//! (`leadwire-bench`). Every figure is printed next to its ceiling measured in the same run;
//! nothing here asserts a time.
//!
//! - [`liquid_render`]: renders per second, leadwire's engine next to the `liquid` crate.
//! - [`ingest`]: attribute updates per second through `/users/track` next to the store's own rate.
//! - [`e2e`]: leads per second end to end (leadwire started as `leadwire serve` starts it, the
//!   worked example applied, the bundled Salesforce emulator as the org) next to raw creates
//!   against the same emulator, and trigger-to-delivery latency at fixed offered loads.
//! - [`salesforce`]: Salesforce API calls and token requests per 1,000 leads against a faulty
//!   emulator: the seed's template as Braze runs it, leadwire unbatched and batched.
//! - [`size`]: the real `leadwire` binary with a million profiles: peak RSS and start-up time.
//! - [`chaos`]: the reliability harness: the seed's two flows against a faulty emulator while
//!   `leadwire serve` is killed with SIGKILL and restarted.
//! - [`report`]: `target/bench/results.json`, the SVG charts in `docs/bench/` and
//!   `BENCHMARKS.md`.

pub mod chaos;
pub mod child;
pub mod e2e;
pub mod ingest;
pub mod liquid_render;
pub mod machine;
pub mod report;
pub mod salesforce;
pub mod size;

use std::path::PathBuf;
use std::time::Duration;

/// The checkout this crate was built in (examples, fixtures, docs and BENCHMARKS.md live there).
pub fn workspace_root() -> PathBuf {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    root.canonicalize().unwrap_or(root)
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, or `target/` in the checkout).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The value at quantile `q` (0..=1) of sorted samples (nearest rank), zero when there are none.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * q.clamp(0.0, 1.0)).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Milliseconds as a float, for tables and JSON.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A `/users/track` object for user `i` under `prefix`, as the benchmarks send them: a name,
/// an email (which the "New lead" campaign acts on) and a company (which Salesforce requires).
pub fn lead_user(prefix: &str, i: usize) -> serde_json::Value {
    serde_json::json!({
        "external_id": format!("{prefix}-{i}"),
        "first_name": "Ada",
        "last_name": format!("L{i}"),
        "email": format!("{prefix}-{i}@example.com"),
        "company": "Acme",
    })
}

/// How long to wait for a condition polled every `every`, up to `limit` (a guard against hanging,
/// never a measurement). Returns whether the condition held.
pub async fn wait_until(limit: Duration, every: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(every).await;
    }
}
