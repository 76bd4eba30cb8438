//! Crash test: `leadwire serve` as a child process delivers 200 jobs to the Salesforce emulator
//! (over HTTPS, every answer slowed), is killed with SIGKILL while jobs are in flight, and is
//! started again on the same data directory. Every job must end delivered or in a terminal
//! state, every delivered user must have a lead, and duplicates from the crash window (allowed:
//! delivery is at-least-once) are counted and printed. On the database the test environment
//! names (SQLite in the data directory, or PostgreSQL with `LEADWIRE_TEST_DATABASE_URL`).

use std::collections::HashMap;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

mod common;

use common::{database_args, free_port};
use leadwire_app::DatabaseConfig;
use leadwire_profiles::Identifier;
use leadwire_salesforce_emulator::{Emulator, EmulatorConfig, FaultSettings, Share};
use leadwire_webhooks::{NewJob, RenderProperties};
use serde_json::{Value as Json, json};

const JOBS: usize = 200;

/// Starts `leadwire serve` on `db`; returns the child once the API answers.
fn start_server(data: &Path, db: &DatabaseConfig, ca: &Path, port: u16, log: &Path) -> Child {
    let mut args = database_args(data, db);
    args.extend(["--ca-cert".into(), ca.as_os_str().to_owned()]);
    for a in [
        "--allow-host",
        "localhost",
        "--job-lease-secs",
        "3",
        "--concurrency",
        "32",
    ] {
        args.push(a.into());
    }
    common::start_serve(port, &args, log)
}

/// Job counts by state, read through the store's API (another process on the same file).
async fn counts(db: &DatabaseConfig) -> HashMap<String, i64> {
    let store = leadwire_app::open_store(db).expect("store");
    store
        .read(|tx| tx.job_counts())
        .await
        .expect("counts")
        .into_iter()
        .map(|(state, n)| (state.as_str().to_owned(), i64::try_from(n).unwrap_or(0)))
        .collect()
}

fn open_jobs(c: &HashMap<String, i64>) -> i64 {
    c.get("queued").copied().unwrap_or(0) + c.get("in_flight").copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_in_flight_then_restart_accounts_for_every_job() {
    let emulator = Emulator::start(EmulatorConfig::loopback_with_https())
        .await
        .expect("emulator");
    let instance = emulator.https_url().expect("https");
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let db = leadwire_store::testing::test_database(&data);
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, emulator.ca_pem().expect("ca")).expect("write ca");
    let log = dir.path().join("server.log");

    let key = common::create_api_key(&data, &db, &["users.track", "templates.write"]);

    let port = free_port();
    let mut server = start_server(&data, &db, &ca, port, &log);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    for chunk in (0..JOBS).collect::<Vec<_>>().chunks(75) {
        let attributes: Vec<Json> = chunk
            .iter()
            .map(|i| json!({"external_id": format!("user-{i:03}"), "first_name": "Crash", "company": "Test Co"}))
            .collect();
        let r = http
            .post(format!("{base}/users/track"))
            .bearer_auth(&key)
            .json(&json!({"attributes": attributes}))
            .send()
            .await
            .expect("track");
        assert_eq!(r.status().as_u16(), 201);
    }
    let token = emulator.issue_access_token();
    let r = http
        .post(format!("{base}/templates/webhook/create"))
        .bearer_auth(&key)
        .json(&json!({
            "name": "Create Lead",
            "url": format!("{instance}/services/data/v60.0/sobjects/Lead/"),
            "method": "POST",
            "headers": {"Authorization": format!("Bearer {token}"), "Content-Type": "application/json"},
            "body": {"FirstName": "{{${first_name}}}", "LastName": "{{${user_id}}}", "Company": "{{custom_attribute.${company}}}"}
        }))
        .send()
        .await
        .expect("create template");
    assert_eq!(r.status().as_u16(), 201);
    let template: Json = r.json().await.expect("json");
    let template_id = template["template_id"].as_str().expect("id").to_owned();

    // Every answer takes 400 ms, so jobs are in flight when the server is killed.
    emulator
        .set_faults(FaultSettings {
            slow: Share::try_from(1.0).expect("share"),
            slow_delay_ms: 400,
            ..FaultSettings::default()
        })
        .expect("faults");

    // Enqueue inside one transaction of our own, as a campaign would (the outbox pattern),
    // through the store's API from this process.
    {
        let store = leadwire_app::open_store(&db).expect("store");
        let template_id = template_id.clone();
        store
            .transact(move |tx| {
                for i in 0..JOBS {
                    tx.enqueue_job(&NewJob {
                        template_id: template_id.clone(),
                        user: Identifier::ExternalId(format!("user-{i:03}")),
                        campaign_id: Some("crash".into()),
                        step_id: None,
                        properties: RenderProperties::default().to_json(),
                        not_before: None,
                        trace_context: None,
                    })?;
                }
                Ok::<_, leadwire_store::StoreError>(())
            })
            .await
            .expect("enqueue");
    }

    // Kill -9 once some leads exist and jobs are still in flight.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "no lead was created");
        if emulator.lead_count() >= 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill().expect("SIGKILL");
    let _ = server.wait();
    let at_kill = counts(&db).await;
    let leads_at_kill = emulator.lead_count();
    assert!(
        at_kill.get("in_flight").copied().unwrap_or(0) > 0,
        "jobs were in flight at the kill: {at_kill:?}"
    );
    assert!(open_jobs(&at_kill) > 0, "{at_kill:?}");

    emulator
        .set_faults(FaultSettings {
            slow: Share::try_from(0.5).expect("share"),
            slow_delay_ms: 100,
            ..FaultSettings::default()
        })
        .expect("faults");
    let mut server = start_server(&data, &db, &ca, port, &log);
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        let c = counts(&db).await;
        if open_jobs(&c) == 0 {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "jobs left unfinished after restart: {c:?}; log: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    server.kill().expect("stop");
    let _ = server.wait();

    let delivered = after.get("delivered").copied().unwrap_or(0);
    let terminal =
        after.get("failed").copied().unwrap_or(0) + after.get("aborted").copied().unwrap_or(0);
    let mut per_user: HashMap<String, usize> = HashMap::new();
    for lead in emulator.leads() {
        let name = lead["LastName"].as_str().unwrap_or_default().to_owned();
        *per_user.entry(name).or_default() += 1;
    }
    let leads = emulator.lead_count();
    let duplicates: usize = per_user.values().map(|n| n - 1).sum();
    println!(
        "crash test: {JOBS} jobs; at kill: {at_kill:?}, {leads_at_kill} leads; after restart: {delivered} delivered, {terminal} terminal; {leads} leads for {} users, {duplicates} duplicates from the crash window",
        per_user.len()
    );
    assert_eq!(
        usize::try_from(delivered + terminal).unwrap_or(0),
        JOBS,
        "every job is accounted for: {after:?}"
    );
    assert_eq!(terminal, 0, "nothing should fail here: {after:?}");
    assert_eq!(per_user.len(), JOBS, "every user has a lead");
    assert_eq!(leads, JOBS + duplicates);
}
