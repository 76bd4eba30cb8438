//! The reliability harness: the seed's two flows against a faulty Salesforce while the real
//! `leadwire serve` is killed with SIGKILL and started again on the same data directory.
//!
//! - The org is the bundled emulator, in this process, so it outlives every restart of leadwire.
//!   Faults are on for the whole run (500, 503, 429 with `Retry-After`, slow answers, connections
//!   dropped before and after the write is committed), and every access token is revoked once
//!   in each phase.
//! - leadwire is the built binary: `leadwire apply examples/salesforce-sales-cloud` (the seed's
//!   Create and Update Lead templates, the "New lead" campaign and the lead-scoring Canvases),
//!   `leadwire api-keys create`, then `leadwire serve` as a child process.
//! - Phase 1: every user arrives through `POST /users/track` (75 per request); one in a hundred
//!   has no company, which Salesforce refuses. The "New lead" campaign creates a lead for each.
//! - Phase 2: half of the users (score 30) get an engagement event once their lead's id has been
//!   written back (read through `/users/export/ids`); the points Canvas adds 25, the Lead
//!   Scoring Canvas moves them past 50 to MQL and its Update Lead webhook marks the lead. A
//!   quarter get an event that leaves them below the threshold (no update expected).
//! - Kills: half of them (rounded up) while leads are being created, the rest while MQL updates
//!   are being made, each at an even share of that phase's progress; the server is restarted
//!   on the same directory and port, and the senders resend what a dead server did not answer.
//! - The run ends when everything sent has been handled (both feed consumers at the end of the
//!   feed, no job queued or in flight, no journey due: read through the store's typed API), the
//!   retry schedule (Braze's: minutes between tries) included.
//!
//! Then it counts, from the emulator: leads expected, created, duplicated, lost; MQL updates
//! expected, made, doubled (a lead that received more than one committed PATCH); and for every
//! lost lead, missing update and refused user, the activity-log entry that explains it, read
//! through leadwire's REST API (`GET /activity?user_id=`).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use leadwire_app::{DatabaseConfig, SqliteConfig};
use leadwire_salesforce_emulator::{FaultKind, FaultSettings, RunningEmulator, Share};
use leadwire_store::{Consumer, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use crate::child::{self, Serve};

/// What a refusal the harness provokes is called in the failure list.
pub const REFUSED: &str = "refused as expected (no company)";

/// Users per `/users/track` request.
const PER_REQUEST: usize = 75;
/// `/users/export/ids` takes at most 50 ids.
const EXPORT_CHUNK: usize = 50;
/// Requests the senders keep in flight.
const SENDERS: usize = 4;

#[derive(Debug, Clone)]
pub struct ChaosOptions {
    pub users: usize,
    /// SIGKILLs (each followed by a restart) during the run.
    pub kills: usize,
    pub faults: FaultSettings,
    /// Revoke every access token once while leads are created and once while MQL updates are made.
    pub revoke_tokens: bool,
    /// `leadwire serve --job-lease-secs`: how long a killed server's jobs wait to be claimed again.
    pub job_lease_secs: u64,
    /// A guard against hanging, never a measurement: the run gives up after this.
    pub limit: Duration,
    /// Keep the data directory and logs here instead of a temporary directory.
    pub keep: Option<PathBuf>,
}

impl ChaosOptions {
    pub fn new(users: usize, kills: usize) -> anyhow::Result<ChaosOptions> {
        Ok(ChaosOptions {
            users,
            kills,
            faults: default_faults(7)?,
            revoke_tokens: true,
            job_lease_secs: 20,
            limit: Duration::from_secs(3 * 3600),
            keep: None,
        })
    }
}

/// 5% 500, 2% 503, 5% 429 (Retry-After 1 s), 3% slow (300 ms), 2% of connections dropped before
/// and 2% after the write is committed; the token endpoint included.
pub fn default_faults(seed: u64) -> anyhow::Result<FaultSettings> {
    fault_mix(seed, [0.05, 0.02, 0.05, 0.03, 0.02, 0.02])
}

/// Faults with these shares of requests, in order: answered 500, answered 503, answered 429
/// (`Retry-After: 1`), answered after 300 ms, dropped before the write, dropped after it.
pub fn fault_mix(seed: u64, shares: [f64; 6]) -> anyhow::Result<FaultSettings> {
    let [
        internal_error,
        unavailable,
        too_many_requests,
        slow,
        drop_before_write,
        drop_after_write,
    ] = shares.map(|v| Share::try_from(v).map_err(|e| anyhow::anyhow!("{e}")));
    Ok(FaultSettings {
        seed,
        internal_error: internal_error?,
        unavailable: unavailable?,
        too_many_requests: too_many_requests?,
        retry_after_secs: 1,
        slow: slow?,
        slow_delay_ms: 300,
        drop_before_write: drop_before_write?,
        drop_after_write: drop_after_write?,
        revoke_tokens_every_secs: None,
    })
}

/// One SIGKILL and restart.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kill {
    pub phase: String,
    /// Seconds into the run.
    pub at_seconds: f64,
    pub leads_at_kill: usize,
    pub mql_at_kill: usize,
    /// Jobs in flight (claimed, unsettled) just before the kill.
    pub in_flight_at_kill: u64,
    /// From spawning the new process to its API listening.
    pub restart_seconds: f64,
}

impl Kill {
    /// `kill -9 #1 at 12.3 s while creating leads: …`, for the `i`-th kill.
    pub fn describe(&self, i: usize) -> String {
        format!(
            "kill -9 #{} at {:.1} s while {}: {} leads, {} MQL, {} jobs in flight; restarted in {:.2} s",
            i + 1,
            self.at_seconds,
            self.phase,
            self.leads_at_kill,
            self.mql_at_kill,
            self.in_flight_at_kill,
            self.restart_seconds
        )
    }
}

/// A user whose outcome differs from the happy path, with what leadwire's activity log says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub user: String,
    /// `lost lead`, `missing MQL update`, `refused (no company)`, `duplicate lead`,
    /// `doubled MQL update`, `unexpected MQL update`.
    pub what: String,
    /// The activity-log entry that explains it (`None`: nothing in the log).
    pub explanation: Option<String>,
    /// What the harness saw (lead ids and times, kills in between).
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChaosReport {
    pub users: usize,
    pub kills_planned: usize,
    pub faults: FaultSettings,
    pub seconds: f64,
    pub settled: bool,
    pub leads_expected: usize,
    pub leads_created: usize,
    pub leads_duplicated: usize,
    pub leads_lost: usize,
    pub refused_expected: usize,
    pub refused_seen: usize,
    pub mql_expected: usize,
    pub mql_made: usize,
    pub mql_doubled: usize,
    /// Of the doubled: a PATCH sent again after an answer was dropped (at-least-once by design).
    pub mql_doubled_after_dropped_answer: usize,
    pub mql_missing: usize,
    pub mql_unexpected: usize,
    pub kills: Vec<Kill>,
    pub revocations: usize,
    /// `/users/track` requests sent again because the server did not answer (it was down).
    pub requests_resent: usize,
    /// Requests the emulator saw, and the faults it injected, by kind.
    pub emulator_requests: usize,
    pub faults_injected: BTreeMap<String, usize>,
    pub token_requests: usize,
    pub failures: Vec<Failure>,
    /// Failures with no activity-log entry to explain them.
    pub unexplained: usize,
}

fn user_id(i: usize) -> String {
    format!("chaos-{i:06}")
}

fn email(i: usize) -> String {
    format!("chaos-{i:06}@example.com")
}

/// One in a hundred users has no company: Salesforce refuses the create.
fn refused(i: usize) -> bool {
    i % 100 == 99
}

/// Half of the users cross the MQL threshold in phase 2.
fn mql_target(i: usize) -> bool {
    i.is_multiple_of(2) && !refused(i)
}

/// A quarter get an event that leaves them below the threshold.
fn below_threshold_event(i: usize) -> bool {
    i % 4 == 1 && !refused(i)
}

fn user_object(i: usize) -> Json {
    let mut user = json!({
        "external_id": user_id(i),
        "first_name": "Chaos",
        "last_name": format!("User {i}"),
        "email": email(i),
        "lead_stage": "Lead",
        "lead_score": if mql_target(i) { 30 } else { 0 },
    });
    if !refused(i) {
        user["company"] = json!("Acme");
    }
    user
}

/// What the senders and the monitor share.
struct Shared {
    http: reqwest::Client,
    base: String,
    key: String,
    resent: AtomicUsize,
    /// Set once every user has been sent.
    users_sent: AtomicBool,
    /// Set by the monitor when leadwire has nothing left to do: phase 2 stops waiting for ids.
    stalled: AtomicBool,
    deadline: Instant,
}

impl Shared {
    /// POSTs until the server answers 2xx (it may be down between a kill and its restart).
    async fn post(&self, path: &str, body: &Json) -> anyhow::Result<Json> {
        let url = format!("{}{path}", self.base);
        loop {
            if Instant::now() > self.deadline {
                bail!("gave up on {path}: the run's time limit passed");
            }
            match self
                .http
                .post(&url)
                .bearer_auth(&self.key)
                .json(body)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    return Ok(r.json().await.unwrap_or(Json::Null));
                }
                Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                    let status = r.status();
                    bail!(
                        "{path} answered {status}: {}",
                        r.text().await.unwrap_or_default()
                    );
                }
                _ => {
                    self.resent.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    async fn get(&self, path: &str) -> anyhow::Result<Json> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await?;
        let status = r.status();
        let body: Json = r.json().await.unwrap_or(Json::Null);
        if !status.is_success() {
            bail!("GET {path} answered {status}: {body}");
        }
        Ok(body)
    }
}

/// Runs `jobs` bodies through `post` with `SENDERS` in flight.
async fn send_all(shared: &Arc<Shared>, bodies: Vec<Json>) -> anyhow::Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(SENDERS));
    let mut tasks = tokio::task::JoinSet::new();
    for body in bodies {
        let permit = slots.clone().acquire_owned().await?;
        let shared = shared.clone();
        tasks.spawn(async move {
            let _permit = permit;
            shared.post("/users/track", &body).await.map(|_| ())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Phase 1: every user.
async fn phase_one(shared: Arc<Shared>, users: usize) -> anyhow::Result<()> {
    let bodies = (0..users)
        .collect::<Vec<_>>()
        .chunks(PER_REQUEST)
        .map(|c| json!({"attributes": c.iter().map(|i| user_object(*i)).collect::<Vec<_>>()}))
        .collect();
    send_all(&shared, bodies).await
}

/// Phase 2: an engagement event for each user in `pending` once their lead's id is on their
/// profile. Returns the users whose id never came (their lead was lost or refused).
async fn phase_two(shared: Arc<Shared>, mut pending: Vec<usize>) -> anyhow::Result<Vec<usize>> {
    while !pending.is_empty() {
        let mut ready = Vec::new();
        for chunk in pending.chunks(EXPORT_CHUNK) {
            let ids: Vec<String> = chunk.iter().map(|i| user_id(*i)).collect();
            let answer = shared
                .post(
                    "/users/export/ids",
                    &json!({"external_ids": ids, "fields_to_export": ["external_id", "custom_attributes"]}),
                )
                .await?;
            let with_id: std::collections::HashSet<&str> = answer["users"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|u| {
                    u["custom_attributes"]["salesforce_lead_id"]
                        .as_str()
                        .is_some_and(|s| !s.is_empty())
                })
                .filter_map(|u| u["external_id"].as_str())
                .collect();
            ready.extend(
                chunk
                    .iter()
                    .filter(|i| with_id.contains(user_id(**i).as_str())),
            );
        }
        let taken: std::collections::HashSet<usize> = ready.iter().copied().collect();
        pending.retain(|i| !taken.contains(i));
        let now = chrono::Utc::now().to_rfc3339();
        let bodies = ready
            .chunks(PER_REQUEST)
            .map(|c| {
                let events: Vec<Json> = c
                    .iter()
                    .map(|i| {
                        let name = if i % 3 == 0 {
                            "pricing_page_viewed"
                        } else {
                            "webinar_registered"
                        };
                        json!({"external_id": user_id(*i), "name": name, "time": now})
                    })
                    .collect();
                json!({"events": events})
            })
            .collect();
        send_all(&shared, bodies).await?;
        if ready.is_empty() {
            if shared.stalled.load(Ordering::Relaxed) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(pending)
}

/// Whether leadwire has handled everything sent so far, read through the store's typed API
/// from this process: both feed consumers at the feed's end, no job queued or in flight, no
/// journey due.
async fn idle(store: &Store) -> anyhow::Result<bool> {
    let now = chrono::Utc::now();
    Ok(store
        .read(move |tx| {
            let end = tx.feed_end()?;
            let mut caught_up = true;
            for consumer in Consumer::ALL {
                caught_up &= tx.feed_position(consumer)? >= end;
            }
            Ok::<_, leadwire_store::StoreError>(
                caught_up && tx.outstanding_jobs()? == 0 && tx.due_journey_count(now)? == 0,
            )
        })
        .await?)
}

/// Leads in the emulator by lower-cased email: (id, created, stage).
fn leads_by_email(emulator: &RunningEmulator) -> HashMap<String, Vec<(String, String, String)>> {
    let mut by: HashMap<String, Vec<(String, String, String)>> = HashMap::new();
    for lead in emulator.all_leads() {
        let Some(email) = lead["Email"].as_str() else {
            continue;
        };
        let field = |k: &str| lead[k].as_str().unwrap_or_default().to_owned();
        by.entry(email.to_lowercase()).or_default().push((
            field("Id"),
            field("CreatedDate"),
            field("Lead_Stage__c"),
        ));
    }
    by
}

fn mql_count(emulator: &RunningEmulator) -> usize {
    emulator
        .leads()
        .iter()
        .filter(|l| l["Lead_Stage__c"] == "MQL")
        .count()
}

/// The activity entry that explains what happened to `user`: the last terminal one (failed,
/// aborted, render or token error, write-back failure), else the last of any kind.
async fn explain(shared: &Shared, user: &str) -> Option<String> {
    let answer = shared
        .get(&format!("/activity?user_id={user}&limit=100"))
        .await
        .ok()?;
    let mut entries: Vec<&Json> = answer["entries"].as_array()?.iter().collect();
    entries.sort_by_key(|e| e["id"].as_i64().unwrap_or(0));
    let terminal = [
        "failed",
        "aborted",
        "render_error",
        "connected_content_error",
        "write_back_failed",
    ];
    let entry = entries
        .iter()
        .rev()
        .find(|e| terminal.contains(&e["type"].as_str().unwrap_or_default()))
        .or(entries.last())?;
    let message: String = entry["message"]
        .as_str()
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect();
    Some(format!(
        "{} {} (template '{}', attempt {}): {}",
        entry["time"].as_str().unwrap_or_default(),
        entry["type"].as_str().unwrap_or_default(),
        entry["template"].as_str().unwrap_or_default(),
        entry["attempt"],
        message
    ))
}

fn serve_args(data: &Path, instance: &str, lease: u64) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["--data-dir".into(), data.as_os_str().to_owned()];
    for a in [
        "--allow-host",
        "127.0.0.1",
        "--salesforce-instance",
        instance,
        "--job-lease-secs",
        &lease.to_string(),
        "--timeout-secs",
        &(lease / 2).max(1).to_string(),
        "--rate-limit",
        "1000000000",
        "--log-format",
        "json",
    ] {
        args.push(a.into());
    }
    args
}

/// Evenly spaced thresholds: `k` kills within `total` units of progress.
fn thresholds(total: usize, k: usize) -> Vec<usize> {
    (1..=k).map(|j| total * j / (k + 1)).collect()
}

pub async fn run(opts: &ChaosOptions) -> anyhow::Result<ChaosReport> {
    let bin = child::leadwire_binary()?;
    let started = Instant::now();
    let deadline = started + opts.limit;
    let temp = tempfile::tempdir()?;
    let dir = opts
        .keep
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let data = dir.join("data");
    let log = dir.join("serve.log");
    if opts.keep.is_some() {
        let _ = std::fs::remove_dir_all(&data);
        let _ = std::fs::remove_file(&log);
    }

    // The org, in this process: it outlives every restart of leadwire.
    let emulator = Arc::new(crate::e2e::emulator(opts.users * 20 + 10_000).await?);
    let instance = emulator
        .http_url()
        .context("emulator has no HTTP address")?;

    // leadwire's own commands prepare the data directory.
    let env = crate::e2e::example_env(&instance);
    let env: Vec<(&str, String)> = [
        "SALESFORCE_INSTANCE_URL",
        "SALESFORCE_CLIENT_ID",
        "SALESFORCE_CLIENT_SECRET",
    ]
    .into_iter()
    .filter_map(|k| Some((k, env(k)?)))
    .collect();
    let example = crate::workspace_root().join("examples/salesforce-sales-cloud");
    child::run(
        &bin,
        &[
            "apply".into(),
            example.into(),
            "--data-dir".into(),
            data.clone().into(),
        ],
        &env,
    )?;
    let key = child::create_api_key(
        &bin,
        &data,
        &["users.track", "users.export.ids", "activity.read"],
    )?;
    emulator
        .set_faults(opts.faults.clone())
        .map_err(|e| anyhow::anyhow!("fault settings: {e}"))?;

    let args = serve_args(&data, &instance, opts.job_lease_secs);
    let port = child::free_port()?;
    let start_limit = Duration::from_secs(120);
    let mut server = Some(Serve::start(&bin, port, &args, &log, start_limit)?);
    let store = {
        let db = DatabaseConfig::Sqlite(SqliteConfig::new(data.join("leadwire.db")));
        tokio::task::spawn_blocking(move || leadwire_app::open_store(&db)).await??
    };
    let shared = Arc::new(Shared {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?,
        base: format!("http://127.0.0.1:{port}"),
        key,
        resent: AtomicUsize::new(0),
        users_sent: AtomicBool::new(false),
        stalled: AtomicBool::new(false),
        deadline,
    });

    let users = opts.users;
    let leads_expected = (0..users).filter(|i| !refused(*i)).count();
    let mql_expected = (0..users).filter(|i| mql_target(*i)).count();
    let phase_two_users: Vec<usize> = (0..users)
        .filter(|i| mql_target(*i) || below_threshold_event(*i))
        .collect();
    let create_kills = opts.kills.div_ceil(2);
    let mut create_marks = thresholds(leads_expected, create_kills);
    let mut mql_marks = thresholds(mql_expected, opts.kills - create_kills);
    let mut create_revoke = opts.revoke_tokens.then_some(leads_expected / 4);
    let mut mql_revoke = opts.revoke_tokens.then_some(mql_expected / 4);

    let sender = {
        let shared = shared.clone();
        tokio::spawn(async move {
            phase_one(shared.clone(), users).await?;
            shared.users_sent.store(true, Ordering::Relaxed);
            phase_two(shared, phase_two_users).await
        })
    };

    let mut kills = Vec::new();
    let mut kill_times: Vec<SystemTime> = Vec::new();
    let mut revocations = 0;
    let mut idle_in_a_row = 0;
    let mut tick = 0u64;
    let mut mql = 0;
    let mut no_id = Vec::new();
    let mut sender = Some(sender);
    let settled = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        tick += 1;
        if Instant::now() > deadline {
            break false;
        }
        let leads = emulator.lead_count();
        if tick.is_multiple_of(5) {
            mql = mql_count(&emulator);
        }
        if create_revoke.is_some_and(|at| leads >= at) {
            emulator.revoke_all_tokens();
            revocations += 1;
            create_revoke = None;
        }
        if mql_revoke.is_some_and(|at| mql >= at && at > 0) {
            emulator.revoke_all_tokens();
            revocations += 1;
            mql_revoke = None;
        }
        let phase = if create_marks.first().is_some_and(|at| leads >= *at) {
            create_marks.remove(0);
            Some("creating leads")
        } else if mql_marks.first().is_some_and(|at| mql >= *at && *at > 0) {
            mql_marks.remove(0);
            Some("making MQL updates")
        } else {
            None
        };
        if let Some(phase) = phase
            && let Some(running) = server.take()
        {
            let in_flight = store.read(|tx| tx.in_flight_jobs()).await.unwrap_or(0);
            running.kill_9()?;
            kill_times.push(SystemTime::now());
            let at_seconds = started.elapsed().as_secs_f64();
            println!(
                "  kill -9 #{} at {at_seconds:.1} s ({phase}): {leads} leads, {mql} MQL, {in_flight} jobs in flight",
                kills.len() + 1
            );
            let restarted = Serve::start(&bin, port, &args, &log, start_limit)?;
            kills.push(Kill {
                phase: phase.to_owned(),
                at_seconds,
                leads_at_kill: leads,
                mql_at_kill: mql,
                in_flight_at_kill: in_flight,
                restart_seconds: restarted.started_in.as_secs_f64(),
            });
            server = Some(restarted);
            idle_in_a_row = 0;
            continue;
        }
        if !tick.is_multiple_of(10) {
            continue;
        }
        // Once a second: has leadwire handled everything sent so far?
        if idle(&store).await? {
            idle_in_a_row += 1;
        } else {
            idle_in_a_row = 0;
        }
        let senders_done = sender.as_ref().is_none_or(|s| s.is_finished());
        if idle_in_a_row >= 3 && shared.users_sent.load(Ordering::Relaxed) {
            // Nothing left to do: users still waiting for a lead id will not get one.
            shared.stalled.store(true, Ordering::Relaxed);
        }
        if senders_done && let Some(s) = sender.take() {
            no_id = s.await??;
            idle_in_a_row = 0;
            continue;
        }
        if sender.is_none() && idle_in_a_row >= 3 {
            break true;
        }
        if tick.is_multiple_of(100) {
            println!(
                "  {:.0} s: {leads}/{leads_expected} leads, {mql}/{mql_expected} MQL",
                started.elapsed().as_secs_f64()
            );
        }
    };
    if let Some(s) = sender.take() {
        s.abort();
    }

    let report = tally(
        opts,
        &emulator,
        &shared,
        Tallied {
            seconds: started.elapsed().as_secs_f64(),
            settled,
            leads_expected,
            mql_expected,
            kills,
            kill_times,
            revocations,
            no_id,
        },
    )
    .await;
    if let Some(server) = server {
        server.stop(Duration::from_secs(60))?;
    }
    drop(store);
    report
}

struct Tallied {
    seconds: f64,
    settled: bool,
    leads_expected: usize,
    mql_expected: usize,
    kills: Vec<Kill>,
    kill_times: Vec<SystemTime>,
    revocations: usize,
    no_id: Vec<usize>,
}

fn parse_created(s: &str) -> Option<SystemTime> {
    chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.3f%z")
        .ok()
        .map(SystemTime::from)
}

async fn tally(
    opts: &ChaosOptions,
    emulator: &RunningEmulator,
    shared: &Shared,
    t: Tallied,
) -> anyhow::Result<ChaosReport> {
    let by_email = leads_by_email(emulator);
    let log = emulator.request_log();
    let mut faults_injected = BTreeMap::new();
    for e in &log {
        if let Some(kind) = e.fault {
            *faults_injected.entry(format!("{kind:?}")).or_insert(0) += 1;
        }
    }
    let token_requests = log
        .iter()
        .filter(|e| e.path.contains("/oauth2/token"))
        .count();
    // Committed PATCHes per lead path (answered 2xx, or committed and then dropped).
    let mut patches: HashMap<&str, Vec<bool>> = HashMap::new();
    for e in &log {
        if e.method == "PATCH" && e.path.contains("/sobjects/Lead/") {
            let dropped = e.fault == Some(FaultKind::DropAfterWrite);
            if dropped || e.status.is_some_and(|s| (200..300).contains(&s)) {
                patches.entry(e.path.as_str()).or_default().push(dropped);
            }
        }
    }

    let mut failures = Vec::new();
    let (mut created, mut duplicated, mut lost) = (0, 0, 0);
    let (mut refused_expected, mut refused_seen) = (0, 0);
    let (mut mql_made, mut mql_missing, mut mql_unexpected) = (0, 0, 0);
    let (mut mql_doubled, mut mql_doubled_dropped) = (0, 0);
    for i in 0..opts.users {
        let user = user_id(i);
        let leads = by_email
            .get(&email(i))
            .map(Vec::as_slice)
            .unwrap_or_default();
        if refused(i) {
            refused_expected += 1;
            let explanation = explain(shared, &user).await;
            if leads.is_empty() && explanation.is_some() {
                refused_seen += 1;
            }
            failures.push(Failure {
                user: user.clone(),
                what: REFUSED.into(),
                detail: format!("{} leads for a user without a company", leads.len()),
                explanation,
            });
            continue;
        }
        if leads.is_empty() {
            lost += 1;
            failures.push(Failure {
                user: user.clone(),
                what: "lost lead".into(),
                detail: "no lead with this email in Salesforce".into(),
                explanation: explain(shared, &user).await,
            });
        } else {
            created += 1;
        }
        if leads.len() > 1 {
            duplicated += leads.len() - 1;
            let times: Vec<SystemTime> = leads.iter().filter_map(|l| parse_created(&l.1)).collect();
            let (first, last) = (times.iter().min(), times.iter().max());
            let kill_between = t
                .kill_times
                .iter()
                .any(|k| first.is_some_and(|f| k >= f) && last.is_some_and(|l| k <= l));
            let ids: Vec<String> = leads
                .iter()
                .map(|l| format!("{} at {}", l.0, l.1))
                .collect();
            failures.push(Failure {
                user: user.clone(),
                what: "duplicate lead".into(),
                detail: format!(
                    "{} leads: {}{}",
                    leads.len(),
                    ids.join(", "),
                    if kill_between {
                        "; a kill -9 came between them"
                    } else {
                        ""
                    }
                ),
                explanation: explain(shared, &user).await,
            });
        }
        let is_mql = leads.iter().any(|l| l.2 == "MQL");
        if mql_target(i) {
            if is_mql {
                mql_made += 1;
            } else {
                mql_missing += 1;
                let detail = if leads.is_empty() || t.no_id.contains(&i) {
                    "no lead id was written back, so no event was sent".to_owned()
                } else {
                    format!("lead {} is not MQL", leads[0].0)
                };
                failures.push(Failure {
                    user: user.clone(),
                    what: "missing MQL update".into(),
                    detail,
                    explanation: explain(shared, &user).await,
                });
            }
        } else if is_mql {
            mql_unexpected += 1;
            failures.push(Failure {
                user: user.clone(),
                what: "unexpected MQL update".into(),
                detail: "this user's score stays at or below 50".into(),
                explanation: explain(shared, &user).await,
            });
        }
        for lead in leads {
            let path = format!("/services/data/v60.0/sobjects/Lead/{}", lead.0);
            let Some(committed) = patches.get(path.as_str()) else {
                continue;
            };
            if committed.len() > 1 {
                mql_doubled += committed.len() - 1;
                let after_drop = committed[..committed.len() - 1].iter().any(|d| *d);
                if after_drop {
                    mql_doubled_dropped += committed.len() - 1;
                }
                failures.push(Failure {
                    user: user.clone(),
                    what: "doubled MQL update".into(),
                    detail: format!(
                        "{} committed PATCHes to lead {}{}",
                        committed.len(),
                        lead.0,
                        if after_drop {
                            " (one after an answer the emulator dropped: at-least-once)"
                        } else {
                            ""
                        }
                    ),
                    explanation: explain(shared, &user).await,
                });
            }
        }
    }
    let unexplained = failures
        .iter()
        .filter(|f| f.explanation.is_none() && f.what != "doubled MQL update")
        .count();
    Ok(ChaosReport {
        users: opts.users,
        kills_planned: opts.kills,
        faults: opts.faults.clone(),
        seconds: t.seconds,
        settled: t.settled,
        leads_expected: t.leads_expected,
        leads_created: created,
        leads_duplicated: duplicated,
        leads_lost: lost,
        refused_expected,
        refused_seen,
        mql_expected: t.mql_expected,
        mql_made,
        mql_doubled,
        mql_doubled_after_dropped_answer: mql_doubled_dropped,
        mql_missing,
        mql_unexpected,
        kills: t.kills,
        revocations: t.revocations,
        requests_resent: shared.resent.load(Ordering::Relaxed),
        emulator_requests: log.len(),
        faults_injected,
        token_requests,
        failures,
        unexplained,
    })
}

impl ChaosReport {
    /// The faults as one line.
    pub fn fault_line(&self) -> String {
        let f = &self.faults;
        let pct = |s: Share| f64::from(s) * 100.0;
        format!(
            "{:.0}% 500, {:.0}% 503, {:.0}% 429 (Retry-After {} s), {:.0}% slow ({} ms), {:.0}% dropped before and {:.0}% after the write (seed {})",
            pct(f.internal_error),
            pct(f.unavailable),
            pct(f.too_many_requests),
            f.retry_after_secs,
            pct(f.slow),
            f.slow_delay_ms,
            pct(f.drop_before_write),
            pct(f.drop_after_write),
            f.seed
        )
    }

    /// The table's rows: (what, expected, made, duplicated or doubled, lost or missing).
    pub fn rows(&self) -> Vec<(String, usize, usize, usize, usize)> {
        vec![
            (
                "leads (New lead campaign)".into(),
                self.leads_expected,
                self.leads_created,
                self.leads_duplicated,
                self.leads_lost,
            ),
            (
                "MQL updates (Lead Scoring Canvas)".into(),
                self.mql_expected,
                self.mql_made,
                self.mql_doubled,
                self.mql_missing,
            ),
            (
                "creates refused by Salesforce (no company)".into(),
                self.refused_expected,
                self.refused_seen,
                0,
                self.refused_expected - self.refused_seen,
            ),
        ]
    }

    pub fn print(&self) {
        println!(
            "chaos: {} users, {} of {} kill -9 restarts, faults {}; {} token revocations; {:.0} s{}",
            self.users,
            self.kills.len(),
            self.kills_planned,
            self.fault_line(),
            self.revocations,
            self.seconds,
            if self.settled {
                ""
            } else {
                " (NOT SETTLED: the time limit passed)"
            }
        );
        println!(
            "{:<44} {:>9} {:>9} {:>18} {:>14}",
            "", "expected", "made", "duplicated/doubled", "lost/missing"
        );
        for (what, expected, made, dup, lost) in self.rows() {
            println!("{what:<44} {expected:>9} {made:>9} {dup:>18} {lost:>14}");
        }
        println!(
            "MQL updates not expected: {}; doubled after a dropped answer (at-least-once): {}",
            self.mql_unexpected, self.mql_doubled_after_dropped_answer
        );
        for (i, k) in self.kills.iter().enumerate() {
            println!("{}", k.describe(i));
        }
        println!(
            "emulator: {} requests, {} token requests, faults injected {:?}; /users/track and export requests resent after no answer: {}",
            self.emulator_requests, self.token_requests, self.faults_injected, self.requests_resent
        );
        println!(
            "failures: {} ({} without an activity-log entry to explain them)",
            self.failures.len(),
            self.unexplained
        );
        for f in &self.failures {
            println!("  {} {}: {}", f.user, f.what, f.detail);
            match &f.explanation {
                Some(e) => println!("      activity: {e}"),
                None => println!("      activity: NOTHING IN THE LOG"),
            }
        }
    }
}
