//! Canvases end to end over real HTTP: users in through `/users/track`, leads created by the
//! campaign engine in the Salesforce emulator over HTTPS, then moved through Canvases whose
//! webhooks PATCH those leads, all started through `App::start`. Delivery runs in the background;
//! the test drives the feed passes (`Harness::settle_by_hand`), the Canvas ones at the harness's
//! clock, so Delays and windows are tested without sleeping. A restart stops leadwire and starts a
//! new one on the same data directory.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::DateTime;
use common::{CREATE_LEAD, Drive, Harness, harness_driven, lead_by_written_back_id, token_header};
use leadwire_campaigns::CampaignSpec;
use leadwire_canvas::{CanvasRecord, CanvasSpec, CanvasStatus, EntryRecipient};
use leadwire_profiles::{Identifier, Trigger};
use leadwire_store::{ChangeSource, Consumer, JobState, JourneyStatus, StoreError};
use leadwire_webhooks::templates::TemplateDefinition;
use serde_json::{Value as Json, json};

const MQL_BY_ID: &str = "Salesforce Sales Cloud > Update Lead to MQL (by written-back id)";
const STAGE_FROM_STEP: &str = "Stage from step";

fn mql_by_id_template(base: &str) -> Json {
    json!({
        "name": MQL_BY_ID,
        "url": lead_by_written_back_id(base),
        "method": "PATCH",
        "body": {"Lead_Stage__c": "MQL"},
        "headers": {"Authorization": token_header(base), "Content-Type": "application/json"}
    })
}

/// Writes the step's name (and an entry property and a context variable) so tests can see which
/// step sent it.
fn stage_from_step_template(base: &str, name: &str) -> Json {
    json!({
        "name": name,
        "url": lead_by_written_back_id(base),
        "method": "PATCH",
        "body": {"Lead_Stage__c": "{{campaign.${name}}}{{canvas_entry_properties.${suffix}}}{{context.${tag}}}"},
        "headers": {"Authorization": token_header(base), "Content-Type": "application/json"}
    })
}

/// The shared harness with delivery in the background and feed passes by hand, the templates the
/// Canvases here name, and the New lead campaign (which creates each user's lead and writes its
/// id back).
async fn canvas_harness() -> Harness {
    let h = harness_driven(Drive::DeliveryOnly).await;
    let base = h.emulator.https_url().expect("https");
    for t in [
        mql_by_id_template(&base),
        stage_from_step_template(&base, STAGE_FROM_STEP),
    ] {
        h.app
            .webhooks
            .create_template(TemplateDefinition::from_json(&t).expect("definition"))
            .await
            .expect("template saves");
    }
    h.app
        .campaigns
        .save_campaign(
            serde_json::from_value::<CampaignSpec>(json!({"name": "New lead", "status": "active", "trigger": {"type": "email_added"}, "template": CREATE_LEAD}))
                .expect("campaign"),
        )
        .await
        .expect("campaign saves");
    h
}

fn spec(v: Json) -> CanvasSpec {
    serde_json::from_value(v).expect("canvas spec")
}

async fn save(h: &Harness, v: Json) -> CanvasRecord {
    h.app
        .canvases
        .save_canvas(spec(v))
        .await
        .expect("canvas saves")
}

async fn save_err(h: &Harness, v: Json) -> String {
    h.app
        .canvases
        .save_canvas(spec(v))
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

async fn step_counts(h: &Harness, canvas_id: &str) -> HashMap<(String, String), i64> {
    h.app.canvases.step_counts(canvas_id).await.expect("counts")
}

fn count(counts: &HashMap<(String, String), i64>, step: &str, kind: &str) -> i64 {
    counts
        .get(&(step.to_string(), kind.to_string()))
        .copied()
        .unwrap_or(0)
}

fn ids(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Creates users with emails and waits until their leads exist and the leads' ids are written
/// back (the write-back commits with the job's settle, so a settled harness has them).
async fn leads(h: &Harness, ids: &[String], extra: Json) {
    for chunk in ids.chunks(75) {
        let attributes: Vec<Json> = chunk
            .iter()
            .map(|id| {
                let mut a = json!({"external_id": id, "first_name": "F", "last_name": id, "email": format!("{id}@example.com"), "company": "Acme"});
                if let (Json::Object(a), Json::Object(extra)) = (&mut a, &extra) {
                    a.extend(extra.clone());
                }
                a
            })
            .collect();
        h.track(json!({"attributes": attributes})).await;
    }
    h.settle_by_hand().await;
    for id in ids {
        if !h
            .profile(id)
            .await
            .custom
            .contains_key("salesforce_lead_id")
        {
            let jobs: Vec<_> = h
                .app
                .webhooks
                .jobs(None, 1000)
                .await
                .expect("jobs")
                .into_iter()
                .filter(|j| j.user_id == *id)
                .collect();
            panic!(
                "{id}'s lead id is not written back once settled; its jobs {jobs:?}; unfinished {:?}",
                h.unfinished_jobs().await
            );
        }
    }
}

/// The end of the trigger feed (the newest trigger's position).
async fn feed_end(h: &Harness) -> i64 {
    h.app
        .store
        .read(|tx| tx.feed_end())
        .await
        .expect("feed end")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_scoring_moves_exactly_the_users_above_the_threshold_to_mql_once() {
    let h = canvas_harness().await;
    let users: Vec<String> = (0..100).map(|i| format!("lead{i:03}")).collect();
    leads(&h, &users, json!({"lead_stage": "Lead", "lead_score": 0})).await;
    assert_eq!(h.emulator.lead_count(), 100);
    let yaml = include_str!("../../../examples/salesforce-sales-cloud/lead-scoring-canvas.yaml");
    let mut doc: Json = serde_norway::from_str(yaml).expect("yaml");
    if let Json::Object(m) = &mut doc {
        m.remove("kind");
    }
    let canvas = save(&h, doc).await;
    // Scores around the threshold (> 50): 1..=100.
    for chunk in users.chunks(50) {
        let attributes: Vec<Json> = chunk
            .iter()
            .map(|id| {
                let n: i64 = id[4..].parse().unwrap_or(0);
                json!({"external_id": id, "lead_score": n + 1})
            })
            .collect();
        h.track(json!({"attributes": attributes})).await;
    }
    h.settle_by_hand().await;
    for (i, id) in users.iter().enumerate() {
        let above = i as i64 + 1 > 50;
        let stage = h.lead_stage(id).await;
        let profile = h.profile(id).await;
        if above {
            assert_eq!(stage, json!("MQL"), "{id} is above the threshold");
            assert_eq!(profile.custom["lead_stage"], json!("MQL"));
        } else {
            assert_eq!(stage, Json::Null, "{id} is untouched");
            assert_eq!(profile.custom["lead_stage"], json!("Lead"));
        }
    }
    let counts = step_counts(&h, &canvas.id).await;
    assert_eq!(
        count(&counts, "update_lead", "webhook"),
        50,
        "each MQL updated once"
    );
    assert_eq!(count(&counts, "mark_mql", "user_update"), 50);
    assert_eq!(count(&counts, "threshold", "entered"), 100);
    // Scores keep moving: MQLs re-enter (re-entry 0 s) but are no longer Leads, so nothing more
    // is sent; users still below stay untouched.
    let delivered = h.job_count(JobState::Delivered).await;
    let attributes: Vec<Json> = users
        .iter()
        .enumerate()
        .filter(|(i, _)| *i >= 50 || *i < 10)
        .map(|(_, id)| json!({"external_id": id, "lead_score": 200}))
        .collect();
    for chunk in attributes.chunks(75) {
        h.track(json!({"attributes": chunk})).await;
    }
    h.settle_by_hand().await;
    let counts = step_counts(&h, &canvas.id).await;
    assert_eq!(
        count(&counts, "update_lead", "webhook"),
        60,
        "the 10 low users crossing now are updated once; the 50 MQLs are not updated again"
    );
    assert_eq!(h.job_count(JobState::Delivered).await, delivered + 10);
    assert_eq!(h.lead_stage("lead005").await, json!("MQL"));
    assert_eq!(h.lead_stage("lead020").await, Json::Null);
}

fn delayed_canvas() -> Json {
    json!({
        "name": "Nurture", "status": "active",
        "entry": {"triggers": [{"type": "custom_event", "name": "demo_requested"}]},
        "steps": [
            {"id": "first", "name": "Nurturing", "type": "webhook", "template": STAGE_FROM_STEP, "next": "wait"},
            {"id": "wait", "type": "delay", "seconds": 3600, "next": "bump"},
            {"id": "bump", "type": "user_update", "increments": {"lead_score": 5}, "next": "last"},
            {"id": "last", "name": "SQL", "type": "webhook", "template": STAGE_FROM_STEP}
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_survives_a_restart_and_fires_once() {
    let h = canvas_harness().await;
    leads(&h, &ids(&["d1"]), json!({"lead_score": 10})).await;
    let canvas = save(&h, delayed_canvas()).await;
    h.track(json!({"events": [{"external_id": "d1", "name": "demo_requested", "time": "2026-01-01T00:00:00Z", "properties": {"suffix": " (demo)"}}]})).await;
    h.settle_by_hand().await;
    assert_eq!(
        h.lead_stage("d1").await,
        json!("Nurturing (demo)"),
        "campaign.name is the step name; the entering event's properties are canvas_entry_properties"
    );
    // Half-way through the Delay: restart. Nothing happens before the hour is up.
    let h = h.restart().await;
    h.advance_clock(chrono::Duration::minutes(30));
    h.settle_by_hand().await;
    assert_eq!(h.lead_stage("d1").await, json!("Nurturing (demo)"));
    let h = h.restart().await;
    h.advance_clock(chrono::Duration::minutes(31));
    h.settle_by_hand().await;
    assert_eq!(
        h.lead_stage("d1").await,
        json!("SQL (demo)"),
        "entry properties persist"
    );
    assert_eq!(h.profile("d1").await.custom["lead_score"], json!(15));
    // Later passes (and another restart) do nothing more.
    let h = h.restart().await;
    h.advance_clock(chrono::Duration::hours(5));
    h.settle_by_hand().await;
    let counts = step_counts(&h, &canvas.id).await;
    assert_eq!(count(&counts, "last", "webhook"), 1);
    assert_eq!(count(&counts, "first", "webhook"), 1);
    assert_eq!(h.profile("d1").await.custom["lead_score"], json!(15));
    let journeys = h.app.canvases.journeys(&canvas.id).await.expect("journeys");
    assert_eq!(journeys.len(), 1);
    assert_eq!(journeys[0].status, JourneyStatus::Exited);
}

fn bump_canvas(template: &str) -> Json {
    json!({
        "name": "Bump", "status": "active",
        "entry": {"triggers": [{"type": "custom_event", "name": "webinar"}]},
        "steps": [
            {"id": "bump", "type": "user_update", "increments": {"lead_score": 5}, "next": "after"},
            {"id": "after", "name": "Bumped", "type": "webhook", "template": template}
        ]
    })
}

/// What one read snapshot shows of a Bump journey: whether the Canvas engine's feed position
/// passed `seq`, the user's lead_score, the bump step's User Updates and the after step's
/// webhooks counted, the Canvas's jobs and journeys.
#[derive(Debug, Clone, PartialEq)]
struct BumpState {
    consumed: bool,
    lead_score: Json,
    updates: i64,
    webhooks: i64,
    jobs: usize,
    journeys: usize,
}

async fn bump_state(
    store: &leadwire_store::Store,
    canvas_id: &str,
    external_id: &str,
    seq: i64,
) -> BumpState {
    let canvas_id = canvas_id.to_owned();
    let user = Identifier::ExternalId(external_id.to_owned());
    store
        .read(move |tx| {
            let counts = tx.step_counts(&canvas_id)?;
            let at = |step: &str, kind: &str| count(&counts, step, kind);
            Ok::<_, StoreError>(BumpState {
                consumed: tx.feed_position(Consumer::Canvases)? >= seq,
                lead_score: tx
                    .profile(&user)?
                    .and_then(|p| p.custom.get("lead_score").cloned())
                    .unwrap_or(Json::Null),
                updates: at("bump", "user_update"),
                webhooks: at("after", "webhook"),
                jobs: tx.jobs(Some(canvas_id.as_str()), 100)?.len(),
                journeys: tx.journeys(&canvas_id)?.len(),
            })
        })
        .await
        .expect("snapshot")
}

/// Replaces the old test that deleted and re-inserted a row of `canvas_pending_updates` around a
/// simulated crash: that table is gone, because a User Update is now applied in the same
/// transaction as the journey step and the feed position. What must hold instead: no snapshot
/// ever shows the trigger consumed without the increment (or the reverse), and repeating the
/// pass after a restart applies nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_update_commits_with_the_feed_position_and_a_pass_repeated_after_a_restart_applies_it_once()
 {
    let h = canvas_harness().await;
    leads(&h, &ids(&["c1"]), json!({"lead_score": 10})).await;
    let canvas = save(&h, bump_canvas(STAGE_FROM_STEP)).await;
    h.track(json!({"events": [{"external_id": "c1", "name": "webinar", "time": "2026-01-01T00:00:00Z"}]})).await;
    let seq = feed_end(&h).await;
    let before = bump_state(&h.app.store, &canvas.id, "c1", seq).await;
    assert_eq!(
        before,
        BumpState {
            consumed: false,
            lead_score: json!(10),
            updates: 0,
            webhooks: 0,
            jobs: 0,
            journeys: 0
        }
    );
    // A reader takes snapshot after snapshot while the pass runs: each must show the pass
    // either not at all or whole.
    let stop = Arc::new(AtomicBool::new(false));
    let (started, watching) = tokio::sync::oneshot::channel::<()>();
    let watcher = tokio::spawn({
        let (store, canvas_id, stop) = (h.app.store.clone(), canvas.id.clone(), stop.clone());
        async move {
            let mut seen: Vec<BumpState> = Vec::new();
            let mut started = Some(started);
            loop {
                let done = stop.load(Ordering::SeqCst);
                let state = bump_state(&store, &canvas_id, "c1", seq).await;
                if seen.last() != Some(&state) {
                    seen.push(state);
                }
                if let Some(started) = started.take() {
                    let _ = started.send(());
                }
                if done {
                    return seen;
                }
            }
        }
    });
    watching.await.expect("the reader took its first snapshot");
    let report = h.app.canvas_runner().pass_at(h.now()).await.expect("pass");
    stop.store(true, Ordering::SeqCst);
    let seen = watcher.await.expect("watcher");
    assert_eq!(
        (
            report.triggers,
            report.entries,
            report.updates,
            report.sends
        ),
        (1, 1, 1, 1),
        "{report:?}"
    );
    let after = BumpState {
        consumed: true,
        lead_score: json!(15),
        updates: 1,
        webhooks: 1,
        jobs: 1,
        journeys: 1,
    };
    assert_eq!(seen.first(), Some(&before));
    assert_eq!(seen.last(), Some(&after));
    assert!(
        seen.iter().all(|s| *s == before || *s == after),
        "a snapshot showed the pass half done: {seen:?}"
    );
    // leadwire restarts (once the step's webhook is delivered: see `Harness::restart`) and the
    // pass runs again: the trigger is consumed, nothing is applied twice (what it consumes now is
    // the increment's own lead_score change).
    h.deliveries_done().await;
    let h = h.restart().await;
    let again = h.app.canvas_runner().pass_at(h.now()).await.expect("pass");
    assert_eq!(
        (again.entries, again.updates, again.sends),
        (0, 0, 0),
        "{again:?}"
    );
    assert_eq!(bump_state(&h.app.store, &canvas.id, "c1", seq).await, after);
    h.settle_by_hand().await;
    assert_eq!(h.profile("c1").await.custom["lead_score"], json!(15));
    assert_eq!(h.lead_stage("c1").await, json!("Bumped"));
    // And once more from a fresh start.
    let h = h.restart().await;
    h.settle_by_hand().await;
    assert_eq!(
        h.profile("c1").await.custom["lead_score"],
        json!(15),
        "the increment is applied once"
    );
    assert_eq!(bump_state(&h.app.store, &canvas.id, "c1", seq).await, after);
    let jobs = h
        .app
        .webhooks
        .jobs(Some(canvas.id.clone()), 100)
        .await
        .expect("jobs");
    assert_eq!(
        jobs.iter().map(|j| j.state).collect::<Vec<_>>(),
        vec![JobState::Delivered],
        "the step's webhook is sent once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_whose_template_was_archived_skips_its_send_and_the_feed_keeps_moving() {
    let h = canvas_harness().await;
    leads(&h, &ids(&["f1"]), json!({"lead_score": 10})).await;
    let base = h.emulator.https_url().expect("https");
    let fragile = TemplateDefinition::from_json(&stage_from_step_template(&base, "Fragile"))
        .expect("definition");
    let template = h
        .app
        .webhooks
        .create_template(fragile.clone())
        .await
        .expect("template");
    let canvas = save(&h, bump_canvas("Fragile")).await;
    // The step's template disappears after the Canvas was saved: the pass applies the User
    // Update, skips the send (counted), and consumes the trigger; it does not stop the feed
    // for every Canvas.
    h.app
        .webhooks
        .archive_template(&template.id)
        .await
        .expect("archived");
    h.track(json!({"events": [{"external_id": "f1", "name": "webinar", "time": "2026-01-01T00:00:00Z"}]})).await;
    let seq = feed_end(&h).await;
    h.settle_by_hand().await;
    assert_eq!(
        bump_state(&h.app.store, &canvas.id, "f1", seq).await,
        BumpState {
            consumed: true,
            lead_score: json!(15),
            updates: 1,
            webhooks: 0,
            jobs: 0,
            journeys: 1
        }
    );
    let counts = h
        .app
        .canvases
        .step_counts(&canvas.id)
        .await
        .expect("counts");
    assert_eq!(
        counts.get(&("after".to_string(), "webhook_skipped".to_string())),
        Some(&1),
        "{counts:?}"
    );
    // With the template back, nothing is sent after the fact.
    h.app
        .webhooks
        .create_template(fragile)
        .await
        .expect("template again");
    h.settle_by_hand().await;
    assert_eq!(
        bump_state(&h.app.store, &canvas.id, "f1", seq).await.jobs,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_triggered_entry_decision_split_action_paths_context_and_exit() {
    let h = canvas_harness().await;
    let users = ids(&["a1", "a2", "a3", "a4"]);
    leads(&h, &users, json!({})).await;
    h.track(json!({"attributes": [{"external_id": "a1", "vip": true}, {"external_id": "a2", "vip": true}, {"external_id": "a3", "vip": true}]})).await;
    let canvas = save(
        &h,
        json!({
            "name": "Onboarding", "status": "active",
            "entry": {"triggers": [{"type": "api_triggered"}]},
            "exit": {"events": [{"type": "purchase"}]},
            "steps": [
                {"id": "ctx", "type": "context", "variables": [{"name": "tag", "type": "string", "value": "{% if custom_attribute.${vip} %}!{% endif %}"}], "next": "vip"},
                {"id": "vip", "type": "decision_split", "filter": {"attribute": "vip", "equals": true}, "yes": "paths", "no": "not_vip"},
                {"id": "not_vip", "name": "Regular", "type": "webhook", "template": STAGE_FROM_STEP},
                {"id": "paths", "type": "action_paths", "window_seconds": 86400, "groups": [
                    {"name": "Webinar", "trigger": {"type": "custom_event", "name": "webinar"}, "next": "webinar"}
                ], "everyone_else": "wait"},
                {"id": "webinar", "name": "Engaged", "type": "webhook", "template": STAGE_FROM_STEP},
                {"id": "wait", "type": "delay", "seconds": 60, "next": "idle"},
                {"id": "idle", "name": "Idle", "type": "webhook", "template": STAGE_FROM_STEP}
            ]
        }),
    )
    .await;
    let recipients: Vec<EntryRecipient> = users
        .iter()
        .map(|u| EntryRecipient {
            user: Identifier::ExternalId(u.clone()),
            entry_properties: (u == "a2").then(|| json!({"suffix": "-2"})),
            context: None,
        })
        .chain([EntryRecipient {
            user: Identifier::ExternalId("ghost".into()),
            entry_properties: None,
            context: None,
        }])
        .collect();
    let (dispatch, missing) = h
        .app
        .canvases
        .trigger_send(
            &canvas.id,
            recipients.clone(),
            Some(json!({"suffix": "-api"})),
            None,
            h.now(),
        )
        .await
        .expect("sends");
    assert!(dispatch.starts_with("dsp_"));
    assert_eq!(missing, vec![Identifier::ExternalId("ghost".into())]);
    h.settle_by_hand().await;
    assert_eq!(
        h.lead_stage("a4").await,
        json!("Regular-api"),
        "not VIP: the No path"
    );
    assert_eq!(
        h.lead_stage("a1").await,
        Json::Null,
        "waiting in Action Paths"
    );
    // a1 does the action: advances at once. a3 purchases: leaves when its step finishes.
    h.track(json!({
        "events": [{"external_id": "a1", "name": "webinar", "time": "2026-01-01T00:00:00Z"}],
        "purchases": [{"external_id": "a3", "product_id": "p", "currency": "USD", "price": 1, "time": "2026-01-01T00:00:00Z"}]
    }))
    .await;
    h.settle_by_hand().await;
    assert_eq!(
        h.lead_stage("a1").await,
        json!("Engaged-api!"),
        "entry properties and context"
    );
    assert_eq!(h.lead_stage("a2").await, Json::Null);
    // The window ends: a2 leaves through Everyone Else into a Delay, then Idle.
    h.advance_clock(chrono::Duration::hours(25));
    h.settle_by_hand().await;
    assert_eq!(h.lead_stage("a2").await, Json::Null, "in the Delay");
    let h = h.restart().await;
    h.advance_clock(chrono::Duration::minutes(2));
    h.settle_by_hand().await;
    assert_eq!(
        h.lead_stage("a2").await,
        json!("Idle-2!"),
        "per-recipient properties override"
    );
    assert_eq!(
        h.lead_stage("a3").await,
        Json::Null,
        "exited on the purchase"
    );
    let journeys = h.app.canvases.journeys(&canvas.id).await.expect("journeys");
    assert_eq!(journeys.len(), 4);
    assert!(journeys.iter().all(|j| j.status == JourneyStatus::Exited));
    let a3 = journeys
        .iter()
        .find(|j| j.exit_reason.as_deref() == Some("ExitCriteria"))
        .expect("one exit by criteria");
    assert_eq!(a3.journey.step, "paths");
    // API-triggered only; a paused Canvas refuses.
    h.app
        .canvases
        .set_status(&canvas.id, CanvasStatus::Paused)
        .await
        .expect("pause");
    let err = h
        .app
        .canvases
        .trigger_send(&canvas.id, recipients, None, None, h.now())
        .await
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("canvas 'Onboarding' is not active (it is paused)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saving_checks_the_graph_and_the_templates() {
    let h = canvas_harness().await;
    let err = save_err(
        &h,
        json!({
            "name": "Bad", "entry": {"triggers": [{"type": "email_added"}]},
            "steps": [{"id": "w", "type": "webhook", "template": "No such template"}]
        }),
    )
    .await;
    assert!(
        err.starts_with("canvas 'Bad', step 'w': no webhook template named 'No such template'"),
        "{err}"
    );
    let err = save_err(
        &h,
        json!({
            "name": "Loop", "entry": {"triggers": [{"type": "email_added"}]},
            "steps": [
                {"id": "a", "type": "decision_split", "filter": {"attribute": "x", "exists": true}, "yes": "b"},
                {"id": "b", "type": "user_update", "attributes": {"x": 1}, "next": "a"}
            ]
        }),
    )
    .await;
    assert!(err.contains("cycle without a Delay"), "{err}");
    assert!(h.app.canvases.canvases().await.expect("list").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_are_limited_per_utc_hour() {
    let h = canvas_harness().await;
    let users: Vec<String> = (0..5).map(|i| format!("l{i}")).collect();
    leads(&h, &users, json!({})).await;
    let canvas = save(
        &h,
        json!({
            "name": "Limited", "status": "active",
            "entry": {"triggers": [{"type": "custom_event", "name": "visit"}], "max_entries_per_hour": 3, "reentry_seconds": 0},
            "steps": [{"id": "set", "type": "user_update", "attributes": {"entered": true}}]
        }),
    )
    .await;
    // Sent at the start of a UTC hour, so the five entries fall in one hour.
    let hour = h.now().timestamp().div_euclid(3600);
    let start = DateTime::from_timestamp((hour + 1) * 3600, 0).unwrap_or_default();
    h.advance_clock(start - h.now());
    let events: Vec<Json> = users
        .iter()
        .map(|u| json!({"external_id": u, "name": "visit", "time": "2026-01-01T00:00:00Z"}))
        .collect();
    h.track(json!({"events": events})).await;
    h.settle_by_hand().await;
    assert_eq!(entered(&h, &users).await, 3, "three entries in this hour");
    assert_eq!(
        h.app
            .canvases
            .journeys(&canvas.id)
            .await
            .expect("journeys")
            .len(),
        3
    );
    // The next hour has room again.
    h.advance_clock(chrono::Duration::hours(1));
    h.track(
        json!({"events": [{"external_id": "l3", "name": "visit", "time": "2026-01-01T00:00:00Z"}]}),
    )
    .await;
    h.settle_by_hand().await;
    assert_eq!(
        h.app
            .canvases
            .journeys(&canvas.id)
            .await
            .expect("journeys")
            .len(),
        4
    );
}

async fn entered(h: &Harness, users: &[String]) -> usize {
    let mut n = 0;
    for u in users {
        if h.profile(u).await.custom.get("entered") == Some(&json!(true)) {
            n += 1;
        }
    }
    n
}

/// The ids of a Canvas's active journeys, oldest first.
async fn active_journeys(h: &Harness, canvas_id: &str) -> Vec<i64> {
    h.app
        .canvases
        .journeys(canvas_id)
        .await
        .expect("journeys")
        .into_iter()
        .filter(|j| j.status == JourneyStatus::Active)
        .map(|j| j.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_webhook_advances_the_user_and_unranked_actions_advance_the_earliest_entry() {
    let h = canvas_harness().await;
    leads(&h, &ids(&["w1"]), json!({})).await;
    let base = h.emulator.https_url().expect("https");
    h.app
        .webhooks
        .create_template(
            TemplateDefinition::from_json(&json!({
                "name": "Aborts",
                "url": format!("{base}/services/data/v60.0/sobjects/Lead/x"),
                "method": "PATCH",
                "body": "{% abort_message('not at threshold') %}",
                "headers": {"Content-Type": "application/json"}
            }))
            .expect("definition"),
        )
        .await
        .expect("template");
    let canvas = save(
        &h,
        json!({
            "name": "Abort then act", "status": "active",
            "entry": {"triggers": [{"type": "custom_event", "name": "start"}], "reentry_seconds": 0},
            "steps": [
                {"id": "gate", "type": "webhook", "template": "Aborts", "next": "paths"},
                {"id": "paths", "type": "action_paths", "window_seconds": 3600, "groups": [
                    {"name": "Clicked", "trigger": {"type": "custom_event", "name": "click"}, "next": "clicked"}
                ]},
                {"id": "clicked", "name": "Clicked", "type": "webhook", "template": STAGE_FROM_STEP}
            ]
        }),
    )
    .await;
    // Two entries (re-entry 0 s), both past the aborted message and waiting for the action.
    for _ in 0..2 {
        h.track(json!({"events": [{"external_id": "w1", "name": "start", "time": "2026-01-01T00:00:00Z"}]})).await;
        h.settle_by_hand().await;
    }
    assert_eq!(
        h.job_count(JobState::Aborted).await,
        2,
        "{:?}",
        h.app.webhooks.job_counts().await.expect("counts")
    );
    let before = active_journeys(&h, &canvas.id).await;
    assert_eq!(before.len(), 2, "the abort advanced both entries");
    h.track(
        json!({"events": [{"external_id": "w1", "name": "click", "time": "2026-01-01T00:00:00Z"}]}),
    )
    .await;
    h.settle_by_hand().await;
    assert_eq!(h.lead_stage("w1").await, json!("Clicked"));
    assert_eq!(
        active_journeys(&h, &canvas.id).await,
        vec![before[1]],
        "only the earliest entry advanced"
    );
}

/// The JSON editor's logged events, as they reached the trigger feed.
async fn upgraded_events(h: &Harness) -> usize {
    h.app
        .store
        .triggers_after(0, 1_000_000)
        .await
        .expect("feed")
        .into_iter()
        .filter(|t| {
            t.source == ChangeSource::CanvasUserUpdate
                && matches!(&t.trigger, Trigger::CustomEvent { name, .. } if name == "upgraded")
        })
        .count()
}

/// Replaces the old test that re-inserted a `canvas_pending_updates` row (with its logged
/// events) to simulate a crash before the row was removed: the JSON editor's attributes and
/// events now commit with the step and the feed position, so repeating passes after restarts
/// logs nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_editor_logs_events_once_even_when_passes_are_repeated_after_a_restart() {
    let h = canvas_harness().await;
    leads(&h, &ids(&["j1"]), json!({})).await;
    let upgrade = save(
        &h,
        json!({
            "name": "Upgrade", "status": "active",
            "entry": {"triggers": [{"type": "custom_event", "name": "signup"}]},
            "steps": [{"id": "u", "type": "user_update",
                       "json": "{\"attributes\": [{\"plan\": \"{{canvas_entry_properties.${plan} | default: 'pro'}}\"}], \"events\": [{\"name\": \"upgraded\", \"time\": \"2026-01-01T00:00:00Z\", \"properties\": {\"plan\": \"pro\"}}]}"}]
        }),
    )
    .await;
    // Counts the events the JSON editor logs: its changes raise triggers like any other change.
    save(
        &h,
        json!({
            "name": "Count upgrades", "status": "active",
            "entry": {"triggers": [{"type": "custom_event", "name": "upgraded"}], "reentry_seconds": 0},
            "steps": [{"id": "n", "type": "user_update", "increments": {"upgrades": 1}}]
        }),
    )
    .await;
    h.track(json!({"events": [{"external_id": "j1", "name": "signup", "time": "2026-01-01T00:00:00Z"}]})).await;
    let seq = feed_end(&h).await;
    // One pass: the signup enters Upgrade, whose update sets the plan and logs the event.
    let report = h.app.canvas_runner().pass_at(h.now()).await.expect("pass");
    assert_eq!(
        (report.triggers, report.entries, report.updates),
        (1, 1, 1),
        "{report:?}"
    );
    // The update, its event and the position are in the same snapshot.
    let (consumed, plan, events) = h
        .app
        .store
        .read(move |tx| {
            let consumed = tx.feed_position(Consumer::Canvases)? >= seq;
            let plan = tx
                .profile(&Identifier::ExternalId("j1".into()))?
                .and_then(|p| p.custom.get("plan").cloned());
            let events = tx
                .triggers_after(seq, 1000)?
                .into_iter()
                .filter(|t| matches!(&t.trigger, Trigger::CustomEvent { name, .. } if name == "upgraded"))
                .count();
            Ok::<_, StoreError>((consumed, plan, events))
        })
        .await
        .expect("snapshot");
    assert_eq!((consumed, plan, events), (true, Some(json!("pro")), 1));
    // leadwire restarts before anything acts on the event; the passes run again.
    let h = h.restart().await;
    h.settle_by_hand().await;
    let p = h.profile("j1").await;
    assert_eq!(p.custom["plan"], json!("pro"));
    assert_eq!(p.custom["upgrades"], json!(1));
    assert_eq!(upgraded_events(&h).await, 1);
    // Once more: nothing is applied or logged again.
    let h = h.restart().await;
    let again = h.app.canvas_runner().pass_at(h.now()).await.expect("pass");
    assert_eq!((again.entries, again.updates), (0, 0), "{again:?}");
    h.settle_by_hand().await;
    assert_eq!(h.profile("j1").await.custom["upgrades"], json!(1));
    assert_eq!(upgraded_events(&h).await, 1, "the event is logged once");
    assert_eq!(
        count(&step_counts(&h, &upgrade.id).await, "u", "user_update"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_webhook_is_saved_as_a_template_and_sent() {
    let h = canvas_harness().await;
    leads(&h, &ids(&["i1"]), json!({})).await;
    let base = h.emulator.https_url().expect("https");
    let canvas = json!({
        "name": "Inline", "status": "active",
        "entry": {"triggers": [{"type": "custom_event", "name": "go"}]},
        "steps": [{"id": "patch", "name": "Inline stage", "type": "webhook", "inline": {
            "url": lead_by_written_back_id(&base),
            "method": "PATCH",
            "body": {"Lead_Stage__c": "{{campaign.${name}}}"},
            "headers": {"Authorization": token_header(&base), "Content-Type": "application/json"}
        }}]
    });
    let err = save_err(&h, canvas.clone()).await;
    assert!(err.contains("inline webhook is not saved"), "{err}");
    h.app
        .canvases
        .save_canvas_with_webhooks(spec(canvas.clone()), &h.app.webhooks)
        .await
        .expect("saves");
    // Saving again updates the same template rather than adding one.
    h.app
        .canvases
        .save_canvas_with_webhooks(spec(canvas), &h.app.webhooks)
        .await
        .expect("saves again");
    let named = h
        .app
        .webhooks
        .list_templates(false, 1000, 0)
        .await
        .expect("templates")
        .into_iter()
        .filter(|t| t.definition.template.name == "Canvas 'Inline' > step 'patch'")
        .count();
    assert_eq!(named, 1);
    h.track(
        json!({"events": [{"external_id": "i1", "name": "go", "time": "2026-01-01T00:00:00Z"}]}),
    )
    .await;
    h.settle_by_hand().await;
    assert_eq!(h.lead_stage("i1").await, json!("Inline stage"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_entry_audience_is_checked_before_entry_and_re_entry_needs_its_window() {
    let h = canvas_harness().await;
    let users = ids(&["e1", "e2"]);
    leads(&h, &users, json!({})).await;
    h.track(json!({"attributes": [{"external_id": "e1", "vip": true}]}))
        .await;
    let canvas = save(
        &h,
        json!({
            "name": "VIP only", "status": "active",
            "entry": {"triggers": [{"type": "custom_event", "name": "visit"}],
                      "audience": {"attribute": "vip", "equals": true},
                      "reentry_seconds": 3600},
            "steps": [{"id": "n", "type": "user_update", "increments": {"visits": 1}}]
        }),
    )
    .await;
    let visit = json!({"events": [
        {"external_id": "e1", "name": "visit", "time": "2026-01-01T00:00:00Z"},
        {"external_id": "e2", "name": "visit", "time": "2026-01-01T00:00:00Z"}
    ]});
    h.track(visit.clone()).await;
    h.settle_by_hand().await;
    assert_eq!(h.profile("e1").await.custom.get("visits"), Some(&json!(1)));
    assert_eq!(
        h.profile("e2").await.custom.get("visits"),
        None,
        "not in the audience"
    );
    // Within the re-entry window nothing happens; after it, the user enters again.
    h.track(visit.clone()).await;
    h.settle_by_hand().await;
    assert_eq!(h.profile("e1").await.custom.get("visits"), Some(&json!(1)));
    h.advance_clock(chrono::Duration::minutes(61));
    h.track(visit).await;
    h.settle_by_hand().await;
    assert_eq!(h.profile("e1").await.custom.get("visits"), Some(&json!(2)));
    assert_eq!(
        h.app
            .canvases
            .journeys(&canvas.id)
            .await
            .expect("journeys")
            .len(),
        2
    );
}
