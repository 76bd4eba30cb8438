//! The store through its API, on a fresh database per test: a SQLite file, or a fresh schema on
//! the PostgreSQL server `LEADWIRE_TEST_DATABASE_URL` names.

use leadwire_profiles::{Identifier, Trigger, UserAlias, parse_track};
use leadwire_store::testing::test_database;
use leadwire_store::{
    ChangeSource, DatabaseConfig, IdentifyRequest, NewAlias, SqliteConfig, Store,
};
use serde_json::json;

fn fresh() -> (tempfile::TempDir, Store) {
    let (dir, _, store) = fresh_with_config();
    (dir, store)
}

/// A fresh store and what reopens it.
fn fresh_with_config() -> (tempfile::TempDir, DatabaseConfig, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = test_database(&dir.path().join("data"));
    let store = Store::open(config.clone()).expect("opens");
    (dir, config, store)
}

async fn track(store: &Store, body: serde_json::Value) -> leadwire_store::TrackResult {
    store
        .track(
            parse_track(&body).expect("valid request"),
            ChangeSource::Api,
        )
        .await
        .expect("applies")
}

#[tokio::test]
async fn track_creates_updates_and_feeds_triggers_in_order() {
    let (_dir, store) = fresh();
    let r = track(&store, json!({"attributes": [{"external_id": "u1", "email": "jose@example.com", "lead_score": 10}]})).await;
    assert_eq!((r.attributes_processed, r.errors.len()), (1, 0));
    track(
        &store,
        json!({"attributes": [{"external_id": "u1", "lead_score": 10}]}),
    )
    .await;
    track(
        &store,
        json!({"attributes": [{"external_id": "u1", "lead_score": {"inc": 45}}]}),
    )
    .await;
    track(&store, json!({"events": [{"external_id": "u1", "name": "webinar", "time": "2024-05-28T10:00:00Z", "properties": {"topic": "AI"}}]})).await;

    let feed = store.triggers_after(0, 100).await.expect("feed");
    let kinds: Vec<&str> = feed.iter().map(|t| t.trigger.kind()).collect();
    assert_eq!(
        kinds,
        [
            "attribute_changed",
            "email_added",
            "attribute_changed",
            "custom_event"
        ]
    );
    assert!(feed.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(matches!(&feed[2].trigger, Trigger::AttributeChanged { new, .. } if new == &json!(55)));
    let rest = store.triggers_after(feed[1].seq, 100).await.expect("feed");
    assert_eq!(
        rest.len(),
        2,
        "reading from a position returns only later entries"
    );
    let leadwire_store::FoundProfiles { found, missing } = store
        .find_profiles(vec![
            Identifier::ExternalId("u1".into()),
            Identifier::ExternalId("nobody".into()),
        ])
        .await
        .expect("find");
    assert_eq!(found[0].custom["lead_score"], json!(55));
    assert_eq!(missing, vec![Identifier::ExternalId("nobody".into())]);
}

#[tokio::test]
async fn update_existing_only_and_alias_defaults() {
    let (_dir, store) = fresh();
    let r = track(&store, json!({"attributes": [
        {"external_id": "ghost", "_update_existing_only": true, "x": 1},
        {"user_alias": {"alias_name": "a1", "alias_label": "web"}, "x": 1},
        {"user_alias": {"alias_name": "a2", "alias_label": "web"}, "_update_existing_only": false, "x": 2}
    ]})).await;
    assert_eq!(r.attributes_processed, 1);
    // Update-only objects about unknown users are skipped, not errors (Braze accepts them).
    assert_eq!(
        r.skipped.iter().map(|e| e.index).collect::<Vec<_>>(),
        [0, 1]
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(store.profile_count().await.expect("count"), 1);
}

#[tokio::test]
async fn data_survives_reopening() {
    let (_dir, config, store) = fresh_with_config();
    {
        track(
            &store,
            json!({"attributes": [{"external_id": "u1", "first_name": "José"}]}),
        )
        .await;
        drop(store);
    }
    let store = Store::open(config).expect("reopens and migrates idempotently");
    let leadwire_store::FoundProfiles { found, .. } = store
        .find_profiles(vec![Identifier::ExternalId("u1".into())])
        .await
        .expect("find");
    assert_eq!(found[0].standard["first_name"], "José");
    assert_eq!(
        store.triggers_after(0, 10).await.expect("feed").len(),
        0,
        "first_name is standard: no attribute trigger"
    );
}

#[tokio::test]
async fn aliases_identify_and_delete() {
    let (_dir, store) = fresh();
    let alias = UserAlias {
        alias_name: "anon-7".into(),
        alias_label: "web".into(),
    };
    let errors = store
        .add_aliases(vec![NewAlias {
            external_id: None,
            alias: alias.clone(),
        }])
        .await
        .expect("alias");
    assert!(errors.is_empty());
    track(&store, json!({"attributes": [{"user_alias": {"alias_name": "anon-7", "alias_label": "web"}, "plan": "trial"}]})).await;
    track(
        &store,
        json!({"attributes": [{"external_id": "u9", "company": "Acme"}]}),
    )
    .await;
    let errors = store
        .identify(vec![IdentifyRequest {
            external_id: "u9".into(),
            alias: alias.clone(),
        }])
        .await
        .expect("identify");
    assert!(errors.is_empty(), "{errors:?}");
    let leadwire_store::FoundProfiles { found, .. } = store
        .find_profiles(vec![Identifier::Alias(alias.clone())])
        .await
        .expect("find");
    assert_eq!(found[0].external_id.as_deref(), Some("u9"));
    assert_eq!(found[0].custom["plan"], "trial");
    assert_eq!(found[0].custom["company"], "Acme");
    assert_eq!(
        store.profile_count().await.expect("count"),
        1,
        "the alias-only profile merged into u9"
    );
    assert_eq!(
        store
            .delete_users(vec![Identifier::ExternalId("u9".into())])
            .await
            .expect("delete"),
        1
    );
    assert_eq!(store.profile_count().await.expect("count"), 0);
}

#[tokio::test]
async fn api_keys_are_stored_hashed() {
    // The file's bytes are checked: SQLite only.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("leadwire.db");
    let store = Store::open_sqlite(SqliteConfig::new(&path)).expect("opens");
    let key = store
        .create_api_key("ci".into(), vec!["users.track".into()])
        .await
        .expect("key");
    let info = store
        .api_key(key.clone())
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(info.permissions, ["users.track"]);
    assert!(
        store
            .api_key("lw-wrong".into())
            .await
            .expect("lookup")
            .is_none()
    );
    let raw = std::fs::read(&path).expect("db file");
    let wal = std::fs::read(dir.path().join("leadwire.db-wal")).unwrap_or_default();
    let needle = key.as_bytes();
    assert!(
        !raw.windows(needle.len()).any(|w| w == needle)
            && !wal.windows(needle.len()).any(|w| w == needle),
        "the key itself is never written"
    );
}

#[tokio::test]
async fn concurrent_requests_are_all_applied() {
    let (_dir, store) = fresh();
    let store = std::sync::Arc::new(store);
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..20 {
                let objs: Vec<_> = (0..75).map(|k| json!({"external_id": format!("u{}", (t * 20 + i) * 75 + k), "score": k})).collect();
                track(&store, json!({"attributes": objs})).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(store.profile_count().await.expect("count"), 8 * 20 * 75);
}

#[tokio::test]
async fn a_failed_object_keeps_earlier_changes_to_the_same_user() {
    let (_dir, config, store) = fresh_with_config();
    track(
        &store,
        json!({"attributes": [{"external_id": "u1", "nick": "x"}]}),
    )
    .await;
    let r = track(
        &store,
        json!({
            "attributes": [
                {"external_id": "u1", "score": 1},
                {"external_id": "u1", "nick": {"inc": 1}},
                {"external_id": "u1", "plan": "pro"}
            ],
            "events": [{"external_id": "u1", "name": "e", "time": "2024-01-01T00:00:00Z"}]
        }),
    )
    .await;
    assert_eq!(
        (r.attributes_processed, r.events_processed, r.errors.len()),
        (2, 1, 1)
    );
    // Read through a fresh store so the check sees the database, not the writer's cache.
    drop(store);
    let store = Store::open(config).expect("reopens");
    let leadwire_store::FoundProfiles { found, .. } = store
        .find_profiles(vec![Identifier::ExternalId("u1".into())])
        .await
        .expect("find");
    assert_eq!(found[0].custom["score"], 1);
    assert_eq!(found[0].custom["plan"], "pro");
    assert_eq!(found[0].custom["nick"], "x");
}

fn job_for(template_id: &str, user: &str) -> leadwire_store::NewJob {
    leadwire_store::NewJob {
        template_id: template_id.into(),
        user: Identifier::ExternalId(user.into()),
        campaign_id: Some("cmp_1".into()),
        step_id: None,
        properties: json!({}),
        not_before: None,
        trace_context: None,
    }
}

#[tokio::test]
async fn a_failed_transaction_undoes_only_its_own_changes() {
    let (_dir, store) = fresh();
    track(
        &store,
        json!({"attributes": [{"external_id": "u1", "score": 1}]}),
    )
    .await;
    // Two transactions in flight together (one group commit): one fails after writing.
    let failing = store.transact(|tx| {
        tx.track(
            &parse_track(&json!({"attributes": [{"external_id": "u1", "score": 99}]}))
                .expect("valid"),
            ChangeSource::Api,
        )?;
        Err::<(), _>(leadwire_store::StoreError::Conflict(
            "changed my mind".into(),
        ))
    });
    let passing = store.transact(|tx| {
        tx.track(
            &parse_track(&json!({"attributes": [{"external_id": "u2", "score": 2}]}))
                .expect("valid"),
            ChangeSource::Api,
        )
    });
    let (failed, passed) = tokio::join!(failing, passing);
    assert!(matches!(
        failed,
        Err(leadwire_store::StoreError::Conflict(_))
    ));
    assert_eq!(passed.expect("applies").attributes_processed, 1);
    let found = store
        .find_profiles(vec![
            Identifier::ExternalId("u1".into()),
            Identifier::ExternalId("u2".into()),
        ])
        .await
        .expect("reads");
    let score = |i: usize| found.found[i].custom.get("score").cloned();
    assert_eq!(
        score(0),
        Some(json!(1)),
        "the failed transaction left u1 alone"
    );
    assert_eq!(score(1), Some(json!(2)));
    // Its trigger went with it: only u1's first change and u2's are in the feed.
    let feed = store.triggers_after(0, 100).await.expect("feed");
    assert_eq!(feed.len(), 2, "{feed:?}");
}

#[tokio::test]
async fn jobs_are_claimed_once_and_settled_by_their_claim_only() {
    let (_dir, store) = fresh();
    track(
        &store,
        json!({"attributes": [{"external_id": "u1", "email": "a@example.com"}]}),
    )
    .await;
    let template = store
        .transact(|tx| tx.insert_template("Create Lead", "", "{}"))
        .await
        .expect("template");
    let t = template.clone();
    let enqueued = store
        .transact(move |tx| tx.enqueue_job(&job_for(&t, "u1")))
        .await
        .expect("enqueues");
    let lease = std::time::Duration::from_secs(60);
    let now = std::time::SystemTime::now();
    let first = store
        .transact(move |tx| tx.claim_jobs(now, lease, 10))
        .await
        .expect("claims");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].claim.id, enqueued.job_id);
    let again = store
        .transact(move |tx| tx.claim_jobs(now, lease, 10))
        .await
        .expect("claims");
    assert!(again.is_empty(), "a leased job is not claimed twice");
    // After the lease ran out a second claim takes it; the first claim's settle then changes
    // nothing.
    let later = now + lease + std::time::Duration::from_secs(1);
    let second = store
        .transact(move |tx| tx.claim_jobs(later, lease, 10))
        .await
        .expect("claims");
    assert_eq!(second.len(), 1);
    let (old, new) = (first[0].claim, second[0].claim);
    let delivered = leadwire_store::Settlement::Delivered {
        attempts: 1,
        status: Some(201),
    };
    let d = delivered.clone();
    assert!(
        !store
            .transact(move |tx| tx.settle_job(old, &d))
            .await
            .expect("settles")
    );
    assert!(
        store
            .transact(move |tx| tx.settle_job(new, &delivered))
            .await
            .expect("settles")
    );
    let counts = store.read(|tx| tx.job_counts()).await.expect("counts");
    assert_eq!(counts.get(&leadwire_store::JobState::Delivered), Some(&1));
}

#[tokio::test]
async fn a_settle_and_the_profile_write_it_causes_commit_together() {
    let (_dir, store) = fresh();
    track(
        &store,
        json!({"attributes": [{"external_id": "u1", "email": "a@example.com"}]}),
    )
    .await;
    let template = store
        .transact(|tx| tx.insert_template("Create Lead", "", "{}"))
        .await
        .expect("template");
    store
        .transact(move |tx| tx.enqueue_job(&job_for(&template, "u1")))
        .await
        .expect("enqueues");
    let now = std::time::SystemTime::now();
    let claimed = store
        .transact(move |tx| tx.claim_jobs(now, std::time::Duration::from_secs(60), 1))
        .await
        .expect("claims");
    let claim = claimed[0].claim;
    // The write-back fails after the settle: both roll back, the job stays claimable.
    let result = store
        .transact(move |tx| {
            tx.settle_job(
                claim,
                &leadwire_store::Settlement::Delivered {
                    attempts: 1,
                    status: Some(201),
                },
            )?;
            tx.track(
                &parse_track(&json!({"attributes": [{"external_id": "u1", "lead_id": "00Q1"}]}))
                    .expect("valid"),
                ChangeSource::WriteBack,
            )?;
            Err::<(), _>(leadwire_store::StoreError::Database("disk on fire".into()))
        })
        .await;
    assert!(result.is_err());
    let counts = store.read(|tx| tx.job_counts()).await.expect("counts");
    assert_eq!(counts.get(&leadwire_store::JobState::InFlight), Some(&1));
    let found = store
        .find_profiles(vec![Identifier::ExternalId("u1".into())])
        .await
        .expect("reads");
    assert_eq!(found.found[0].custom.get("lead_id"), None);
}

#[tokio::test]
async fn feed_positions_are_per_consumer_and_pruning_waits_for_every_consumer() {
    use leadwire_store::Consumer;
    let (_dir, store) = fresh();
    for i in 0..5 {
        track(
            &store,
            json!({"attributes": [{"external_id": format!("u{i}"), "score": i}]}),
        )
        .await;
    }
    // Positions are opaque and increasing (1, 2, 3… on SQLite; transaction-based on PostgreSQL).
    let seqs: Vec<i64> = store
        .triggers_after(0, 100)
        .await
        .expect("feed")
        .iter()
        .map(|t| t.seq)
        .collect();
    assert_eq!(seqs.len(), 5);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let end = store.read(|tx| tx.feed_end()).await.expect("end");
    assert_eq!(end, seqs[4]);
    store
        .transact(move |tx| tx.set_feed_position(Consumer::Campaigns, end))
        .await
        .expect("moves");
    let keep_after = chrono::Utc::now() + chrono::Duration::hours(1);
    let pruned = store
        .transact(move |tx| tx.prune_feed(keep_after, 1000))
        .await
        .expect("prunes");
    assert_eq!(pruned, 0, "the Canvas consumer has not read anything yet");
    store
        .transact({
            let third = seqs[2];
            move |tx| tx.set_feed_position(Consumer::Canvases, third)
        })
        .await
        .expect("moves");
    let pruned = store
        .transact(move |tx| tx.prune_feed(keep_after, 1000))
        .await
        .expect("prunes");
    assert_eq!(pruned, 3, "up to the slowest consumer");
    let rest = store.triggers_after(0, 100).await.expect("feed");
    assert_eq!(rest.iter().map(|t| t.seq).collect::<Vec<_>>(), seqs[3..]);
    // Positions only move forward.
    store
        .transact({
            let first = seqs[0];
            move |tx| tx.set_feed_position(Consumer::Campaigns, first)
        })
        .await
        .expect("moves");
    let at = store
        .read(|tx| tx.feed_position(Consumer::Campaigns))
        .await
        .expect("reads");
    assert_eq!(at, end);
}

#[tokio::test]
async fn dashboard_users_and_sessions_store_only_hashes_and_expire() {
    let (_dir, store) = fresh();
    let id = store
        .transact(|tx| tx.create_dashboard_user("ana@example.com", "$argon2id$stand-in", "editor"))
        .await
        .expect("user saves");
    let taken = store
        .transact(|tx| tx.create_dashboard_user("ana@example.com", "$argon2id$other", "viewer"))
        .await;
    assert!(
        matches!(&taken, Err(leadwire_store::StoreError::Conflict(m)) if m.contains("ana@example.com")),
        "{taken:?}"
    );
    let user = store
        .read(|tx| tx.dashboard_user_by_email("ana@example.com"))
        .await
        .expect("reads")
        .expect("found");
    assert_eq!(
        (
            user.id.as_str(),
            user.role.as_str(),
            user.password_hash.as_str()
        ),
        (id.as_str(), "editor", "$argon2id$stand-in")
    );
    assert!(
        store
            .read(|tx| tx.dashboard_user_by_email("nobody@example.com"))
            .await
            .expect("reads")
            .is_none()
    );

    let now = chrono::Utc::now();
    let hash = leadwire_store::token_hash("session-token");
    assert_ne!(hash, "session-token", "the token is stored hashed");
    let (h, uid) = (hash.clone(), id.clone());
    store
        .transact(move |tx| tx.create_dashboard_session(&h, &uid, now + chrono::Duration::hours(1)))
        .await
        .expect("session saves");
    let h = hash.clone();
    let found = store
        .read(move |tx| tx.dashboard_session(&h, now))
        .await
        .expect("reads")
        .expect("live session found");
    assert_eq!(found.user.email, "ana@example.com");
    // Past its expiry the session is not found, though the row is still there.
    let h = hash.clone();
    let later = now + chrono::Duration::hours(2);
    assert!(
        store
            .read(move |tx| tx.dashboard_session(&h, later))
            .await
            .expect("reads")
            .is_none()
    );
    let h = hash.clone();
    assert!(
        store
            .transact(move |tx| tx.delete_dashboard_session(&h))
            .await
            .expect("deletes")
    );
    let h = hash.clone();
    assert!(
        store
            .read(move |tx| tx.dashboard_session(&h, now))
            .await
            .expect("reads")
            .is_none(),
        "signed out"
    );
    let users = store.read(|tx| tx.dashboard_users()).await.expect("lists");
    assert_eq!(users.len(), 1);
}

#[tokio::test]
async fn a_credential_is_deleted_by_name() {
    let (_dir, store) = fresh();
    let row = leadwire_store::CredentialRow {
        name: "sf".into(),
        kind: leadwire_store::CredentialKind::Basic,
        username: Some("u".into()),
        secret: Some("p".into()),
        headers: Vec::new(),
        allowed_domain: None,
        created_at: std::time::SystemTime::now(),
        updated_at: std::time::SystemTime::now(),
    };
    store
        .transact(move |tx| tx.put_credential(&row))
        .await
        .expect("saves");
    assert!(
        store
            .transact(|tx| tx.delete_credential("sf"))
            .await
            .expect("deletes")
    );
    assert!(
        !store
            .transact(|tx| tx.delete_credential("sf"))
            .await
            .expect("runs"),
        "gone"
    );
    assert!(
        store
            .read(|tx| tx.credentials())
            .await
            .expect("reads")
            .is_empty()
    );
}

#[tokio::test]
async fn delivery_buckets_count_jobs_by_campaign_template_and_state() {
    let (_dir, store) = fresh();
    let template = store
        .transact(|tx| tx.insert_template("Create Lead", "", "{}"))
        .await
        .expect("template");
    let t = template.clone();
    store
        .transact(move |tx| {
            tx.enqueue_job(&job_for(&t, "u1"))?;
            tx.enqueue_job(&job_for(&t, "u2"))?;
            let mut other = job_for(&t, "u3");
            other.campaign_id = Some("cmp_2".into());
            tx.enqueue_job(&other)
        })
        .await
        .expect("enqueues");
    let since = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let buckets = store
        .read(move |tx| tx.delivery_buckets(since, std::time::Duration::from_secs(3600)))
        .await
        .expect("reads");
    let of = |c: &str| {
        buckets
            .iter()
            .filter(|b| b.campaign_id.as_deref() == Some(c))
            .map(|b| (b.jobs, b.state, b.template_id.clone(), b.finished))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of("cmp_1"),
        [(2, leadwire_store::JobState::Queued, template.clone(), 0)]
    );
    assert_eq!(
        of("cmp_2"),
        [(1, leadwire_store::JobState::Queued, template, 0)]
    );
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(3600);
    let none = store
        .read(move |tx| tx.delivery_buckets(later, std::time::Duration::from_secs(60)))
        .await
        .expect("reads");
    assert!(none.is_empty(), "only jobs enqueued since the time given");
}

#[tokio::test]
async fn a_users_recent_events_come_newest_first() {
    let (_dir, store) = fresh();
    track(&store, json!({"events": [
        {"external_id": "u1", "name": "webinar", "time": "2024-05-28T10:00:00Z", "properties": {"topic": "AI"}},
        {"external_id": "u1", "name": "demo_request", "time": "2024-05-29T10:00:00Z"}
    ]}))
    .await;
    track(
        &store,
        json!({"events": [{"external_id": "u2", "name": "other", "time": "2024-05-29T10:00:00Z"}]}),
    )
    .await;
    let found = store
        .find_profiles(vec![Identifier::ExternalId("u1".into())])
        .await
        .expect("finds");
    let braze_id = found.found[0].braze_id.clone();
    let events = store
        .read(move |tx| tx.recent_events(&braze_id, 10))
        .await
        .expect("reads");
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["demo_request", "webinar"]);
    assert_eq!(events[1].properties["topic"], json!("AI"));
}
