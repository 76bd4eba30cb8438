//! The seed's Create Lead template against the Salesforce emulator with its faults on (10% 500,
//! 5% 429, 3% slow, 2% of connections dropped before and 2% after the write, the token endpoint
//! included) and every token revoked halfway, three ways in one run: as Braze runs it (a token
//! call per send, `Bearer ` when it fails, blind retries), through leadwire's worker unbatched,
//! and batched. Prints token requests, Salesforce API calls, leads made, duplicates, leads lost
//! and leads/s, beside a ceiling: plain creates with one token and no faults, same concurrency.
//!
//! `leadwire-bench salesforce` (`--leads`, default 10,000).
//! Retry delays are Braze's schedule compressed (100 ms base instead of 2 minutes); attempt
//! counts are Braze's (5 answered, 10 unreachable).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use leadwire_delivery::batch::BatchConfig;
use leadwire_delivery::circuit::{CircuitBreakers, CircuitConfig};
use leadwire_delivery::hostlimit::HostLimits;
use leadwire_delivery::memory::{JobState, MemoryActivity, MemoryQueue};
use leadwire_delivery::redact::Redactor;
use leadwire_delivery::retry::{Jitter, RetrySchedule};
use leadwire_delivery::sender::{ClientSettings, Sender, SenderConfig, guarded_client};
use leadwire_delivery::ssrf::{GuardedFetcher, SsrfPolicy};
use leadwire_delivery::webhook::{Body, Method, ValueTyping, WebhookTemplate, WriteBackRule};
use leadwire_delivery::worker::{Job, Worker, WorkerConfig};
use leadwire_http_client::HttpFetcher;
use leadwire_liquid::{ConnectedContent, ConnectedContentConfig};
use leadwire_salesforce::target::Instances;
use leadwire_salesforce_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig, FaultSettings,
    RunningEmulator,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

const CONCURRENCY: usize = 256;

/// The fault mix: 10% 500, 5% 429 (Retry-After 1 s), 3% slow (300 ms), 2% dropped before and
/// 2% after the write.
pub fn faults(seed: u64) -> anyhow::Result<FaultSettings> {
    crate::chaos::fault_mix(seed, [0.10, 0.0, 0.05, 0.03, 0.02, 0.02])
}

async fn emulator(faulty: bool) -> anyhow::Result<RunningEmulator> {
    let mut config = EmulatorConfig {
        request_log_capacity: 1_000_000,
        daily_request_limit: 10_000_000,
        ..EmulatorConfig::default()
    };
    if faulty {
        config.faults = faults(12)?;
    }
    Ok(Emulator::start(config).await?)
}

fn schedule() -> RetrySchedule {
    RetrySchedule {
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        max_delay_unreachable: Duration::from_secs(1),
        max_retry_after: Duration::from_secs(1),
        jitter: Jitter::Equal,
        ..RetrySchedule::default()
    }
}

fn token_header(instance: &str) -> String {
    format!(
        "{{% connected_content {instance}/services/oauth2/token :method post :body client_id={DEFAULT_CLIENT_ID}&client_secret={DEFAULT_CLIENT_SECRET}&grant_type=client_credentials :save result %}}Bearer {{{{result.access_token}}}}"
    )
}

fn user(n: usize) -> serde_json::Value {
    json!({
        "profile": {"user_id": format!("u-{n}"), "first_name": format!("Lead{n}"), "last_name": "Müller", "email_address": format!("lead{n}@example.com")},
        "custom_attributes": {"company": "Acme"}
    })
}

/// One way of sending `leads` creates, as counted at the emulator.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Tally {
    pub name: String,
    pub token_requests: usize,
    pub api_calls: usize,
    pub leads: usize,
    pub duplicates: usize,
    pub lost: usize,
    pub seconds: f64,
    /// API calls that were writes, and how many of them failed or were dropped by a fault.
    pub writes: usize,
    pub failed_writes: usize,
    /// SOQL lookups (leadwire's, before a create retried after an unknown outcome).
    pub lookups: usize,
    /// Jobs that did not end delivered, by the reason their failure gives.
    pub failures: Vec<(String, usize)>,
}

impl Tally {
    pub fn per_thousand(&self, count: usize, leads: usize) -> f64 {
        count as f64 * 1000.0 / leads.max(1) as f64
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SalesforceResult {
    pub leads: usize,
    /// The ceiling (one token, no faults) first, then Braze's way, leadwire unbatched, batched.
    pub rows: Vec<Tally>,
}

fn tally(emulator: &RunningEmulator, name: &str, n: usize, seconds: f64) -> Tally {
    let log = emulator.request_log();
    let token_requests = log
        .iter()
        .filter(|e| e.path.contains("/oauth2/token"))
        .count();
    let api_calls = log
        .iter()
        .filter(|e| e.path.starts_with("/services/data/v"))
        .count();
    let mut by_email: HashMap<String, usize> = HashMap::new();
    for lead in emulator.leads() {
        if let Some(email) = lead["Email"].as_str() {
            *by_email.entry(email.to_lowercase()).or_default() += 1;
        }
    }
    let duplicates = by_email.values().map(|c| c.saturating_sub(1)).sum();
    let lost = (0..n)
        .filter(|i| !by_email.contains_key(&format!("lead{i}@example.com")))
        .count();
    let data: Vec<_> = log
        .iter()
        .filter(|e| e.path.starts_with("/services/data/v"))
        .collect();
    let lookups = data.iter().filter(|e| e.path.contains("/query")).count();
    let failed_writes = data
        .iter()
        .filter(|e| !e.path.contains("/query") && e.status.is_none_or(|s| s >= 300))
        .count();
    Tally {
        name: name.to_owned(),
        token_requests,
        api_calls,
        leads: emulator.lead_count(),
        duplicates,
        lost,
        seconds,
        writes: data.len() - lookups,
        failed_writes,
        lookups,
        failures: Vec::new(),
    }
}

/// Revokes every token once half the leads exist.
fn revoke_halfway(emulator: Arc<RunningEmulator>, n: usize, done: Arc<AtomicBool>) {
    tokio::spawn(async move {
        while !done.load(Ordering::Relaxed) {
            if emulator.lead_count() >= n / 2 {
                emulator.revoke_all_tokens();
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
}

/// Braze as its documentation describes it: the token call is made for every send (and every
/// retry), a failed one renders an empty token, 408/429/5xx and connection failures are retried
/// blindly, anything else is final.
async fn as_braze_runs_it(
    emulator: Arc<RunningEmulator>,
    n: usize,
    ceiling: bool,
) -> anyhow::Result<f64> {
    let instance = emulator.http_url().unwrap_or_default();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .timeout(Duration::from_secs(90))
        .build()?;
    let token = |client: reqwest::Client, instance: String| async move {
        let answer = client
            .post(format!("{instance}/services/oauth2/token"))
            .timeout(Duration::from_secs(2))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!(
                "client_id={DEFAULT_CLIENT_ID}&client_secret={DEFAULT_CLIENT_SECRET}&grant_type=client_credentials"
            ))
            .send()
            .await
            .ok()?;
        if !answer.status().is_success() {
            return None;
        }
        let json: serde_json::Value = serde_json::from_slice(&answer.bytes().await.ok()?).ok()?;
        json["access_token"].as_str().map(str::to_owned)
    };
    let shared_token = if ceiling {
        token(client.clone(), instance.clone()).await
    } else {
        None
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let permit = slots.clone().acquire_owned().await?;
        let (client, instance, shared_token) =
            (client.clone(), instance.clone(), shared_token.clone());
        tasks.spawn(async move {
            let _permit = permit;
            let body = json!({"firstName": format!("Lead{i}"), "lastName": "Müller", "email": format!("lead{i}@example.com"), "company": "Acme"}).to_string();
            let schedule = schedule();
            for attempt in 1..=schedule.max_attempts_unreachable {
                let bearer = match &shared_token {
                    Some(t) => t.clone(),
                    None => token(client.clone(), instance.clone()).await.unwrap_or_default(),
                };
                let sent = client
                    .post(format!("{instance}/services/data/v60.0/sobjects/Lead/"))
                    .header("Authorization", format!("Bearer {bearer}"))
                    .header("Content-Type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                let retry = match sent {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) => {
                        let s = r.status().as_u16();
                        (s == 408 || s == 429 || s >= 500) && attempt < schedule.max_attempts
                    }
                    Err(_) => true,
                };
                if !retry {
                    return;
                }
                tokio::time::sleep(schedule.base_delay * attempt).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(started.elapsed().as_secs_f64())
}

/// Leadwire's worker on an in-memory queue; the seconds it took and the failures by reason.
async fn through_leadwire(
    emulator: Arc<RunningEmulator>,
    n: usize,
    batch: bool,
) -> anyhow::Result<(f64, Vec<(String, usize)>)> {
    let instance = emulator.http_url().unwrap_or_default();
    let policy = Arc::new(
        SsrfPolicy::strict()
            .allow_host("localhost")
            .allow_net("127.0.0.1/32".parse()?),
    );
    let client = guarded_client(
        &ClientSettings {
            extra_ca_pem: vec![],
            pool_max_idle_per_host: Some(CONCURRENCY),
        },
        policy.clone(),
    )?;
    let sender = Arc::new(Sender::new(
        client.clone(),
        SenderConfig {
            schedule: schedule(),
            ..SenderConfig::default()
        },
        policy.clone(),
        Arc::new(HostLimits::new(CONCURRENCY, CONCURRENCY)),
        Arc::new(CircuitBreakers::new(CircuitConfig::default())),
        Arc::new(Redactor::new().with_secret(DEFAULT_CLIENT_SECRET)),
    ));
    let fetcher = GuardedFetcher::new(
        Arc::new(HttpFetcher::new(client, tokio::runtime::Handle::current())),
        policy,
    );
    let connected = Arc::new(ConnectedContent::new(
        Arc::new(fetcher),
        ConnectedContentConfig::default(),
    ));
    let queue = Arc::new(MemoryQueue::new());
    let mut worker = Worker::new(
        queue.clone(),
        Arc::new(MemoryActivity::new()),
        sender,
        WorkerConfig {
            concurrency: CONCURRENCY,
            ..WorkerConfig::default()
        },
    )
    .with_connected_content(connected)
    .with_salesforce_instances(Instances::new([&instance]));
    if batch {
        worker = worker.with_batching(BatchConfig::default());
    }
    let template = WebhookTemplate {
        name: "Create Lead".into(),
        url: format!("{instance}/services/data/v60.0/sobjects/Lead/"),
        method: Method::Post,
        body: Body::KeyValue(vec![
            ("firstName".into(), "{{${first_name}}}".into()),
            ("lastName".into(), "{{${last_name}}}".into()),
            ("email".into(), "{{${email_address}}}".into()),
            ("company".into(), "{{custom_attribute.${company}}}".into()),
        ]),
        headers: vec![
            ("Authorization".into(), token_header(&instance)),
            ("Content-Type".into(), "application/json".into()),
        ],
        value_typing: ValueTyping::Strings,
        write_back: vec![WriteBackRule {
            response_field: "id".into(),
            attribute: "salesforce_lead_id".into(),
        }],
        lookup_field: Some("Email".into()),
        batch,
    };
    let compiled = Arc::new(
        template
            .compile()
            .map_err(|e| anyhow::anyhow!("the Create Lead template: {e:?}"))?,
    );
    for i in 0..n {
        queue.push(Job::new(
            format!("job-{i}"),
            format!("u-{i}"),
            compiled.clone(),
            Arc::new(user(i)),
        ));
    }
    let started = Instant::now();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = Arc::new(worker);
    let running = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    while queue.unfinished() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let _ = stop.send(());
    let _ = running.await;
    // Every job that did not end delivered, with the reason its activity entry gives.
    let mut reasons: HashMap<String, usize> = HashMap::new();
    for i in 0..n {
        if let Some(JobState::Failed { message, .. }) = queue.state(&format!("job-{i}")) {
            let short: String = message.chars().take(160).collect();
            *reasons.entry(short).or_default() += 1;
        }
    }
    let mut reasons: Vec<(String, usize)> = reasons.into_iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok((seconds, reasons))
}

fn row(t: &Tally, n: usize) {
    println!(
        "{:<34} {:>8} {:>10} {:>8} {:>10} {:>6} {:>9.0} {:>14.1} {:>12.1}",
        t.name,
        t.token_requests,
        t.api_calls,
        t.leads,
        t.duplicates,
        t.lost,
        n as f64 / t.seconds.max(1e-9),
        t.per_thousand(t.api_calls, n),
        t.per_thousand(t.token_requests, n),
    );
    if t.writes > 0 && t.name != CEILING {
        println!(
            "    API calls: {} writes ({} of them failed or dropped by a fault), {} lookups",
            t.writes, t.failed_writes, t.lookups
        );
    }
    for (reason, count) in &t.failures {
        println!("    failed ×{count}: {reason}");
    }
}

const CEILING: &str = "ceiling: one token, no faults";

impl SalesforceResult {
    pub fn print(&self) {
        println!(
            "{:<34} {:>8} {:>10} {:>8} {:>10} {:>6} {:>9} {:>14} {:>12}",
            "",
            "tokens",
            "API calls",
            "leads",
            "duplicates",
            "lost",
            "leads/s",
            "calls/1k leads",
            "tokens/1k"
        );
        for t in &self.rows {
            row(t, self.leads);
        }
    }
}

/// `n` leads four ways: the ceiling, then against the faulty emulator with every token revoked
/// halfway, as Braze runs the seed's template, through leadwire unbatched and batched.
pub async fn run(n: usize) -> anyhow::Result<SalesforceResult> {
    println!(
        "  {n} leads; emulator faults: 10% 500, 5% 429, 3% slow (300 ms), 2% dropped before and 2% after the write, token endpoint included; every token revoked halfway"
    );
    let mut rows = Vec::new();
    let ceiling = Arc::new(emulator(false).await?);
    let seconds = as_braze_runs_it(ceiling.clone(), n, true).await?;
    rows.push(tally(&ceiling, CEILING, n, seconds));
    for (name, mode) in [
        ("seed template as Braze runs it", 0),
        ("leadwire, unbatched", 1),
        ("leadwire, batched", 2),
    ] {
        let sf = Arc::new(emulator(true).await?);
        let done = Arc::new(AtomicBool::new(false));
        revoke_halfway(sf.clone(), n, done.clone());
        let (seconds, failures) = match mode {
            0 => (as_braze_runs_it(sf.clone(), n, false).await?, Vec::new()),
            1 => through_leadwire(sf.clone(), n, false).await?,
            _ => through_leadwire(sf.clone(), n, true).await?,
        };
        done.store(true, Ordering::Relaxed);
        let mut t = tally(&sf, name, n, seconds);
        t.failures = failures;
        println!("  {name}: {} leads in {seconds:.1} s", t.leads);
        rows.push(t);
    }
    Ok(SalesforceResult { leads: n, rows })
}
