//! The durable queue on a real database file: outbox enqueue, leases and reclaim after a crash,
//! claim-checked settles, hydration failures logged, pending write-backs recovered.

use std::sync::Arc;
use std::time::Duration;

use leadwire_delivery::worker::{Completion, JobQueue};
use leadwire_profiles::{Identifier, parse_track};
use leadwire_store::{ChangeSource, SqliteConfig, SqliteStore, Store};
use leadwire_webhooks::activity::ActivityQuery;
use leadwire_webhooks::templates::TemplateDefinition;
use leadwire_webhooks::{NewJob, RenderProperties, WebhookConfig, WebhookService};
use serde_json::json;

struct Rig {
    service: Arc<WebhookService>,
    store: Arc<SqliteStore>,
    db: std::path::PathBuf,
    template: String,
    _dir: tempfile::TempDir,
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("leadwire.db");
    let store = Arc::new(SqliteStore::open(SqliteConfig::new(&db)).expect("store"));
    let body = json!({"attributes": [{"external_id": "u1", "first_name": "Ada"}]});
    store
        .track(parse_track(&body).expect("parse"), ChangeSource::Api)
        .await
        .expect("track");
    let service = WebhookService::open(WebhookConfig::new(&db), store.clone())
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
        db,
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
        },
        not_before: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_joins_the_callers_transaction() {
    let rig = rig().await;
    let mut conn = rusqlite::Connection::open(&rig.db).expect("db");
    {
        let tx = conn.transaction().expect("tx");
        leadwire_webhooks::enqueue(&tx, &job(&rig.template, "u1")).expect("enqueue");
        tx.rollback().expect("rollback");
    }
    assert!(rig.service.job_counts().await.expect("counts").is_empty());
    {
        let tx = conn.transaction().expect("tx");
        let e = leadwire_webhooks::enqueue(&tx, &job(&rig.template, "u1")).expect("enqueue");
        assert!(e.delivery_id.starts_with("dlv_"));
        tx.commit().expect("commit");
    }
    assert_eq!(rig.service.job_counts().await.expect("counts")["queued"], 1);
    let tx = conn.transaction().expect("tx");
    let missing = leadwire_webhooks::enqueue(&tx, &job("wt_missing", "u1")).expect_err("missing");
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
    let jobs = queue
        .claim(10, Duration::from_millis(200))
        .await
        .expect("claim");
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
    // Leased: nobody else gets it…
    assert!(
        queue
            .claim(10, Duration::from_secs(60))
            .await
            .expect("claim")
            .is_empty()
    );
    // …until the lease runs out (the worker "crashed").
    tokio::time::sleep(Duration::from_millis(250)).await;
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
    // The stale claim cannot settle it; the new one can.
    queue
        .complete(first, Completion::Aborted { reason: "stale" })
        .await
        .expect("stale settle is ignored");
    assert_eq!(
        rig.service.job_counts().await.expect("counts")["in_flight"],
        1
    );
    queue
        .complete(&again[0], Completion::Aborted { reason: "done" })
        .await
        .expect("settle");
    let jobs = rig.service.jobs(None, 10).await.expect("jobs");
    assert_eq!(jobs[0].state, "aborted");
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
    assert_eq!(rig.service.job_counts().await.expect("counts")["failed"], 1);
    let log = rig
        .service
        .activity(ActivityQuery::default())
        .await
        .expect("activity");
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].kind, "failed");
    assert_eq!(
        log[0].message,
        "user external_id 'u1' no longer exists; nothing was sent"
    );
    assert_eq!(rig.service.prune_activity().await.expect("prune"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_write_backs_are_applied_on_restart() {
    let rig = rig().await;
    rig.service
        .enqueue(job(&rig.template, "u1"))
        .await
        .expect("enqueue");
    // A crash between "delivered, write-back pending" and the profile update.
    let conn = rusqlite::Connection::open(&rig.db).expect("db");
    conn.execute(
        "UPDATE webhook_jobs SET state = 'delivered', due_at = NULL, write_back_pending = ?1",
        [r#"[["salesforce_lead_id","00Q000000000001AAA"]]"#],
    )
    .expect("simulate");
    let reopened = WebhookService::open(WebhookConfig::new(&rig.db), rig.store.clone())
        .await
        .expect("reopen");
    let found = rig
        .store
        .find_profiles(vec![Identifier::ExternalId("u1".into())])
        .await
        .expect("find");
    assert_eq!(
        found.found[0].custom["salesforce_lead_id"],
        json!("00Q000000000001AAA")
    );
    assert_eq!(reopened.write_back().recover().await.expect("again"), 0);
}
