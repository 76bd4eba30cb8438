//! Leads per second end to end, and trigger-to-delivery latency at fixed offered loads.
//!
//! leadwire is started through `App::start` as `leadwire serve` starts it (same worker and
//! per-host concurrency as `serve`'s defaults), with the worked example applied
//! (`examples/salesforce-sales-cloud`: the seed's Create Lead template with its token fetched by
//! connected_content, the "New lead" campaign and the two Canvases), and the bundled Salesforce
//! emulator as the org. Users arrive through `POST /users/track`; a lead is delivered when the
//! emulator has it. Next to it, the ceiling: the same creates straight at the same emulator from
//! a pooled client with one token, in the same run.
//!
//! Latency is from just before the user's `/users/track` request is sent to the lead's
//! `CreatedDate` in the emulator (both read from this machine's clock, millisecond precision).
//! Offered loads are open-loop: one user per request at a steady rate, whether or not earlier
//! requests have been answered.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use leadwire_app::{App, AppConfig};
use leadwire_delivery::ssrf::SsrfPolicy;
use leadwire_salesforce_emulator::schema::CustomFieldSpec;
use leadwire_salesforce_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig, RunningEmulator,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use crate::{lead_user, ms, percentile};

/// Connections of the raw client and of the saturating `/users/track` sender.
const CONCURRENCY: usize = 64;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadPoint {
    /// Users per second offered (one per request).
    pub offered_per_s: f64,
    pub seconds: f64,
    pub sent: usize,
    pub delivered: usize,
    /// Leads delivered per second, from the first request to the last lead.
    pub achieved_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct E2eResult {
    /// Raw creates per second against the emulator, pooled client, one token: the ceiling.
    pub raw_creates_per_s: f64,
    /// Users sent at saturation (75 per request, 16 requests at once).
    pub saturation_users: usize,
    pub saturation_delivered: usize,
    pub saturation_leads_per_s: f64,
    pub saturation_p50_ms: f64,
    pub saturation_p99_ms: f64,
    pub loads: Vec<LoadPoint>,
}

/// The emulator as the benchmarks use it: plain HTTP, no faults, no daily limit to speak of,
/// the seed's `Lead_Stage__c` field.
pub async fn emulator(request_log_capacity: usize) -> anyhow::Result<RunningEmulator> {
    let mut config = EmulatorConfig {
        daily_request_limit: u64::MAX / 2,
        request_log_capacity,
        ..EmulatorConfig::default()
    };
    config
        .custom_fields
        .push(CustomFieldSpec::parse("Lead_Stage__c:string:255").context("custom field")?);
    Ok(Emulator::start(config).await?)
}

/// The worked example's environment for an org at `instance`.
pub fn example_env(instance: &str) -> impl Fn(&str) -> Option<String> + '_ {
    move |name: &str| match name {
        "SALESFORCE_INSTANCE_URL" => Some(instance.to_owned()),
        "SALESFORCE_CLIENT_ID" => Some(DEFAULT_CLIENT_ID.to_owned()),
        "SALESFORCE_CLIENT_SECRET" => Some(DEFAULT_CLIENT_SECRET.to_owned()),
        _ => None,
    }
}

/// `examples/salesforce-sales-cloud`, loaded for an org at `instance`.
pub fn example_bundle(instance: &str) -> anyhow::Result<leadwire_config::Bundle> {
    let dir = crate::workspace_root().join("examples/salesforce-sales-cloud");
    leadwire_config::load_dir(&dir, &example_env(instance)).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("{}: {}", dir.display(), lines.join("; "))
    })
}

/// Raw creates per second: `n` leads from `CONCURRENCY` tasks with one token.
async fn raw_creates(emulator: &RunningEmulator, n: usize) -> anyhow::Result<f64> {
    let base = emulator
        .http_url()
        .context("emulator has no HTTP address")?;
    let token = emulator.issue_access_token();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()?;
    let url = format!("{base}/services/data/v60.0/sobjects/Lead/");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (client, url, token, next) = (client.clone(), url.clone(), token.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let body = json!({"firstName": "Raw", "lastName": format!("R{i}"), "email": format!("raw-{i}@example.com"), "company": "Acme"});
                let _ = client.post(&url).bearer_auth(&token).json(&body).send().await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// leadwire as `serve` starts it, the worked example applied, the API on a free port.
struct Leadwire {
    app: App,
    api: leadwire_api::RunningApi,
    key: String,
    _dir: tempfile::TempDir,
}

async fn start_leadwire(emulator: &RunningEmulator) -> anyhow::Result<Leadwire> {
    let instance = emulator
        .http_url()
        .context("emulator has no HTTP address")?;
    let dir = tempfile::tempdir()?;
    let mut config = AppConfig::new(dir.path());
    config.webhooks.ssrf = SsrfPolicy::strict().allow_net("127.0.0.1/32".parse()?);
    config.webhooks.salesforce_instances = vec![instance.clone()];
    // `leadwire serve`'s defaults.
    config.webhooks.worker.concurrency = 256;
    config.webhooks.per_host_concurrency = 64;
    let app = App::start(config).await?;
    app.apply(example_bundle(&instance)?).await?;
    let key = app
        .store
        .create_api_key("bench".into(), vec!["users.track".into()])
        .await?;
    let api = app
        .serve_api(
            ([127, 0, 0, 1], 0).into(),
            leadwire_api::ApiConfig {
                rate_limit: u64::MAX / 2,
                ..Default::default()
            },
        )
        .await?;
    Ok(Leadwire {
        app,
        api,
        key,
        _dir: dir,
    })
}

/// When each lead whose email starts with `prefix` was created, by email.
fn created_at(emulator: &RunningEmulator, prefix: &str) -> HashMap<String, SystemTime> {
    emulator
        .leads()
        .iter()
        .filter_map(|lead| {
            let email = lead["Email"].as_str()?;
            if !email.starts_with(prefix) {
                return None;
            }
            let at = chrono::DateTime::parse_from_str(
                lead["CreatedDate"].as_str()?,
                "%Y-%m-%dT%H:%M:%S%.3f%z",
            )
            .ok()?;
            Some((email.to_owned(), SystemTime::from(at)))
        })
        .collect()
}

/// Latencies of the delivered users (sorted), and the last delivery.
fn latencies(
    sent: &HashMap<String, SystemTime>,
    created: &HashMap<String, SystemTime>,
) -> (Vec<Duration>, Option<SystemTime>) {
    let mut l: Vec<Duration> = sent
        .iter()
        .filter_map(|(email, at)| {
            let done = created.get(email)?;
            Some(done.duration_since(*at).unwrap_or(Duration::ZERO))
        })
        .collect();
    l.sort();
    (l, created.values().max().copied())
}

/// Waits until the emulator has `n` more leads than `before` (at most `limit`).
async fn wait_for_leads(emulator: &RunningEmulator, before: usize, n: usize, limit: Duration) {
    crate::wait_until(limit, Duration::from_millis(20), || {
        emulator.lead_count().saturating_sub(before) >= n
    })
    .await;
}

async fn post_track(http: &reqwest::Client, url: &str, key: &str, body: &Json) -> bool {
    match http.post(url).bearer_auth(key).json(body).send().await {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}

/// One offered load: `rate` users per second for `seconds`, one user per request, open loop.
async fn offered_load(
    lw: &Leadwire,
    emulator: &RunningEmulator,
    rate: f64,
    seconds: f64,
) -> anyhow::Result<LoadPoint> {
    let n = (rate * seconds).round() as usize;
    let prefix = format!("load{rate}");
    let url = format!("{}/users/track", lw.api.url());
    let http = reqwest::Client::new();
    let before = emulator.lead_count();
    let mut sent = HashMap::new();
    let started = Instant::now();
    let first = SystemTime::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let user = lead_user(&prefix, i);
        sent.insert(format!("{prefix}-{i}@example.com"), SystemTime::now());
        let (http, url, key) = (http.clone(), url.clone(), lw.key.clone());
        tasks.spawn(
            async move { post_track(&http, &url, &key, &json!({"attributes": [user]})).await },
        );
    }
    while tasks.join_next().await.is_some() {}
    wait_for_leads(emulator, before, n, Duration::from_secs(120)).await;
    let created = created_at(emulator, &format!("{prefix}-"));
    let (l, last) = latencies(&sent, &created);
    let span = last
        .and_then(|t| t.duration_since(first).ok())
        .unwrap_or(Duration::ZERO);
    Ok(LoadPoint {
        offered_per_s: rate,
        seconds,
        sent: n,
        delivered: l.len(),
        achieved_per_s: l.len() as f64 / span.as_secs_f64().max(1e-9),
        p50_ms: ms(percentile(&l, 0.5)),
        p99_ms: ms(percentile(&l, 0.99)),
        max_ms: ms(l.last().copied().unwrap_or_default()),
    })
}

/// Saturation: `users` users, 75 per request, 16 requests at once, as fast as they are taken.
async fn saturation(
    lw: &Leadwire,
    emulator: &RunningEmulator,
    users: usize,
) -> anyhow::Result<(usize, f64, f64, f64)> {
    let prefix = "max";
    let url = format!("{}/users/track", lw.api.url());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()?;
    let before = emulator.lead_count();
    let mut sent = HashMap::new();
    let first = SystemTime::now();
    let started = Instant::now();
    let slots = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in (0..users).collect::<Vec<_>>().chunks(75) {
        let permit = slots.clone().acquire_owned().await?;
        let objects: Vec<Json> = chunk.iter().map(|i| lead_user(prefix, *i)).collect();
        let now = SystemTime::now();
        for i in chunk {
            sent.insert(format!("{prefix}-{i}@example.com"), now);
        }
        let (http, url, key) = (http.clone(), url.clone(), lw.key.clone());
        tasks.spawn(async move {
            let _permit = permit;
            post_track(&http, &url, &key, &json!({"attributes": objects})).await
        });
    }
    while tasks.join_next().await.is_some() {}
    wait_for_leads(emulator, before, users, Duration::from_secs(600)).await;
    let elapsed = started.elapsed();
    let created = created_at(emulator, &format!("{prefix}-"));
    let (l, last) = latencies(&sent, &created);
    let span = last
        .and_then(|t| t.duration_since(first).ok())
        .unwrap_or(elapsed);
    Ok((
        l.len(),
        l.len() as f64 / span.as_secs_f64().max(1e-9),
        ms(percentile(&l, 0.5)),
        ms(percentile(&l, 0.99)),
    ))
}

/// The raw ceiling with `users` creates, leadwire at saturation with `users` users, then each
/// offered load in `loads` for `seconds`.
pub async fn run(users: usize, loads: &[f64], seconds: f64) -> anyhow::Result<E2eResult> {
    let emulator = emulator(1_000).await?;
    let raw = raw_creates(&emulator, users).await?;
    println!("  raw creates against the emulator: {raw:.0}/s");
    let lw = start_leadwire(&emulator).await?;
    let (delivered, per_s, p50, p99) = saturation(&lw, &emulator, users).await?;
    println!("  saturation: {delivered}/{users} leads, {per_s:.0}/s");
    let mut points = Vec::new();
    for rate in loads {
        let point = offered_load(&lw, &emulator, *rate, seconds).await?;
        println!(
            "  offered {:.0}/s: {}/{} delivered, {:.0}/s, p50 {:.1} ms, p99 {:.1} ms",
            point.offered_per_s,
            point.delivered,
            point.sent,
            point.achieved_per_s,
            point.p50_ms,
            point.p99_ms
        );
        points.push(point);
    }
    lw.api.shutdown().await;
    lw.app.stop().await;
    emulator.shutdown().await;
    Ok(E2eResult {
        raw_creates_per_s: raw,
        saturation_users: users,
        saturation_delivered: delivered,
        saturation_leads_per_s: per_s,
        saturation_p50_ms: p50,
        saturation_p99_ms: p99,
        loads: points,
    })
}

impl E2eResult {
    pub fn print(&self) {
        println!(
            "{:<56} {:>10} {:>10} {:>10}",
            "case", "leads/s", "p50 ms", "p99 ms"
        );
        println!(
            "{:<56} {:>10.0} {:>10} {:>10}",
            "raw creates -> emulator, pooled client, one token", self.raw_creates_per_s, "-", "-"
        );
        println!(
            "{:<56} {:>10.0} {:>10.1} {:>10.1}",
            format!(
                "leadwire at saturation ({}/{} delivered)",
                self.saturation_delivered, self.saturation_users
            ),
            self.saturation_leads_per_s,
            self.saturation_p50_ms,
            self.saturation_p99_ms
        );
        for p in &self.loads {
            println!(
                "{:<56} {:>10.0} {:>10.1} {:>10.1}",
                format!(
                    "offered {:.0}/s for {:.0} s ({}/{} delivered)",
                    p.offered_per_s, p.seconds, p.delivered, p.sent
                ),
                p.achieved_per_s,
                p.p50_ms,
                p.p99_ms
            );
        }
    }
}
