//! The durable queue on a real database file: outbox enqueue, leases and reclaim after a crash,
//! claim-checked settles, hydration failures logged, write-backs committed with their settle.

use std::sync::Arc;
use std::time::Duration;

use leadwire_delivery::worker::{Completion, JobQueue};
use leadwire_profiles::{Identifier, parse_track};
use leadwire_store::{ActivityQuery, ActivityType, ChangeSource, JobState, Store, StoreError};
use leadwire_webhooks::templates::TemplateDefinition;
use leadwire_webhooks::{NewJob, RenderProperties, WebhookConfig, WebhookService};
use serde_json::json;

struct Rig {
    service: Arc<WebhookService>,
    store: Store,
    template: String,
    _dir: tempfile::TempDir,
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().expect("dir");
    let store = leadwire_store::testing::test_store(dir.path()).expect("store");
    let body = json!({"attributes": [{"external_id": "u1", "first_name": "Ada"}]});
    store
        .track(parse_track(&body).expect("parse"), ChangeSource::Api)
        .await
        .expect("track");
    let service = WebhookService::open(WebhookConfig::new(), store.clone())
        .await
        .expect("open");
    let template = service
        .create_template(
            TemplateDefinition::from_json(&json!({
                "name": "t", "url": "https://example.com/{{${user_id}}}",
                "body": {"name": "{{${first_name}}} {{event_properties.${plan}}} {{campaign.${api_id}}}"}
            }))
            .expect("definition"),
        )
        .await
        .expect("create")
        .id;
    Rig {
        service,
        store,
        template,
        _dir: dir,
    }
}

fn job(template: &str, user: &str) -> NewJob {
    NewJob {
        template_id: template.to_owned(),
        user: Identifier::ExternalId(user.to_owned()),
        campaign_id: Some("c1".into()),
        step_id: Some("s1".into()),
        properties: RenderProperties {
            event_properties: Some(json!({"plan": "pro"})),
            ..RenderProperties::default()
        }
        .to_json(),
        not_before: None,
        trace_context: None,
    }
}

fn counts_of(counts: &std::collections::HashMap<JobState, u64>, state: JobState) -> u64 {
    counts.get(&state).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_joins_the_callers_transaction() {
    let rig = rig().await;
    let j = job(&rig.template, "u1");
    let rolled_back = rig
        .store
        .transact(move |tx| {
            tx.enqueue_job(&j)?;
            Err::<(), _>(StoreError::Conflict("the caller changed its mind".into()))
        })
        .await;
    assert!(rolled_back.is_err());
    assert!(rig.service.job_counts().await.expect("counts").is_empty());
    let j = job(&rig.template, "u1");
    let e = rig
        .store
        .transact(move |tx| tx.enqueue_job(&j))
        .await
        .expect("enqueue");
    assert!(e.delivery_id.starts_with("dlv_"));
    let counts = rig.service.job_counts().await.expect("counts");
    assert_eq!(counts_of(&counts, JobState::Queued), 1);
    let missing = rig
        .store
        .transact(|tx| tx.enqueue_job(&job("wt_missing", "u1")))
        .await
        .expect_err("missing");
    assert_eq!(missing.to_string(), "template 'wt_missing' does not exist");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_hydrate_and_expired_leases_come_back() {
    let rig = rig().await;
    let enqueued = rig
        .service
        .enqueue(job(&rig.template, "u1"))
        .await
        .expect("enqueue");
    let queue = rig.service.queue();
    // A zero lease runs out at once: as if the worker that claimed it crashed.
    let jobs = queue.claim(10, Duration::ZERO).await.expect("claim");
    assert_eq!(jobs.len(), 1);
    let first = &jobs[0];
    assert_eq!(first.delivery_id, enqueued.delivery_id);
    assert_eq!(first.user_id, "u1");
    assert_eq!(first.campaign_id.as_deref(), Some("c1"));
    let ctx = &first.render_context;
    assert_eq!(ctx["profile"]["first_name"], "Ada");
    assert_eq!(ctx["event_properties"]["plan"], "pro");
    assert_eq!(ctx["campaign"]["api_id"], "c1");
    assert_eq!(ctx["campaign"]["dispatch_id"], json!(enqueued.delivery_id));
    // Its lease ran out (the worker "crashed"): claimed again, leased this time…
    let again = queue
        .claim(10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0].delivery_id, enqueued.delivery_id,
        "same delivery id"
    );
    assert_ne!(again[0].id, first.id, "a new claim");
    // The first claim never settled: its send may have reached Salesforce, and the worker
    // looks a create up before sending it again.
    assert!(!first.interrupted, "a first claim is not interrupted");
    assert!(again[0].interrupted, "a claim after an unsettled one is");
    // …so nobody else gets it.
    assert!(
        queue
            .claim(10, Duration::from_secs(60))
            .await
            .expect("claim")
            .is_empty()
    );
    // The stale claim cannot settle it; the new one can.
    queue
        .complete(first, Completion::Aborted { reason: "stale" })
        .await
        .expect("stale settle is ignored");
    let counts = rig.service.job_counts().await.expect("counts");
    assert_eq!(counts_of(&counts, JobState::InFlight), 1);
    queue
        .complete(&again[0], Completion::Aborted { reason: "done" })
        .await
        .expect("settle");
    let jobs = rig.service.jobs(None, 10).await.expect("jobs");
    assert_eq!(jobs[0].state, JobState::Aborted);
    assert_eq!(jobs[0].last_error.as_deref(), Some("done"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_user_fails_the_job_with_an_activity_entry() {
    let rig = rig().await;
    rig.service
        .enqueue(job(&rig.template, "u1"))
        .await
        .expect("enqueue");
    rig.store
        .delete_users(vec![Identifier::ExternalId("u1".into())])
        .await
        .expect("delete");
    let jobs = rig
        .service
        .queue()
        .claim(10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert!(jobs.is_empty());
    let counts = rig.service.job_counts().await.expect("counts");
    assert_eq!(counts_of(&counts, JobState::Failed), 1);
    let log = rig
        .service
        .activity(ActivityQuery::default())
        .await
        .expect("activity");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].row.kind, ActivityType::Failed);
    assert_eq!(
        log[0].row.message,
        "user external_id 'u1' no longer exists; nothing was sent"
    );
    assert_eq!(rig.service.prune_activity().await.expect("prune"), 0);
}

/// A claimed job delivered with a 201 whose response gave a lead id.
fn delivered(attempt: u32) -> leadwire_delivery::sender::AttemptReport {
    use leadwire_delivery::retry::{AttemptResult, Classification};
    use leadwire_delivery::sender::{AttemptReport, LoggedRequest, LoggedResponse};
    AttemptReport {
        delivery_id: "dlv_test".into(),
        attempt,
        started_at: std::time::SystemTime::now(),
        duration: Duration::ZERO,
        request: LoggedRequest {
            method: "POST".into(),
            url: "https://example.com/u1".into(),
            headers: Vec::new(),
            body: None,
        },
        response: Some(LoggedResponse {
            status: 201,
            headers: Vec::new(),
            body: r#"{"id":"00Q000000000001AAA","success":true}"#.into(),
            truncated: false,
        }),
        result: AttemptResult::Status(201),
        classification: Classification::Success,
        error: None,
        retry_after: None,
        next_delay: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_and_its_write_back_commit_together() {
    let rig = rig().await;
    rig.service
        .enqueue(job(&rig.template, "u1"))
        .await
        .expect("enqueue");
    let queue = rig.service.queue();
    let jobs = queue
        .claim(1, Duration::from_secs(60))
        .await
        .expect("claim");
    let report = delivered(1);
    queue
        .complete(
            &jobs[0],
            Completion::Delivered {
                report: &report,
                write_back: vec![("salesforce_lead_id".into(), json!("00Q000000000001AAA"))],
            },
        )
        .await
        .expect("settle");
    let found = rig
        .store
        .find_profiles(vec![Identifier::ExternalId("u1".into())])
        .await
        .expect("find");
    assert_eq!(
        found.found[0].custom["salesforce_lead_id"],
        json!("00Q000000000001AAA")
    );
    let counts = rig.service.job_counts().await.expect("counts");
    assert_eq!(counts_of(&counts, JobState::Delivered), 1);
    // The write-back raised its trigger in the same commit.
    let feed = rig.store.triggers_after(0, 100).await.expect("feed");
    assert!(
        feed.iter().any(|t| t.source == ChangeSource::WriteBack),
        "{feed:?}"
    );

    // A write-back for a user deleted meanwhile: delivered, and the log says what was lost.
    rig.service
        .enqueue(job(&rig.template, "u1"))
        .await
        .expect("enqueue");
    let jobs = queue
        .claim(1, Duration::from_secs(60))
        .await
        .expect("claim");
    rig.store
        .delete_users(vec![Identifier::ExternalId("u1".into())])
        .await
        .expect("delete");
    queue
        .complete(
            &jobs[0],
            Completion::Delivered {
                report: &report,
                write_back: vec![("salesforce_lead_id".into(), json!("00Q000000000002AAA"))],
            },
        )
        .await
        .expect("settle");
    let counts = rig.service.job_counts().await.expect("counts");
    assert_eq!(counts_of(&counts, JobState::Delivered), 2);
    let log = rig
        .service
        .activity(ActivityQuery {
            kind: Some(ActivityType::WriteBackFailed),
            ..ActivityQuery::default()
        })
        .await
        .expect("activity");
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].row.message.contains("u1"), "{}", log[0].row.message);
}
