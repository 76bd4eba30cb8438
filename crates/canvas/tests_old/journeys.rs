//! Canvases end to end over real HTTP: users in through `/users/track`, leads created by the
//! campaign engine in the Salesforce emulator over HTTPS, then moved through Canvases whose
//! webhooks PATCH those leads. Time is driven explicitly (`pass_at`) so Delays and windows are
//! tested without sleeping; "restarts" drop the engine and open a new one on the same file.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use leadwire_campaigns::CampaignSpec;
use leadwire_canvas::{CanvasEngine, CanvasSpec, EntryRecipient};
use leadwire_delivery::ssrf::SsrfPolicy;
use leadwire_engine::CampaignEngine;
use leadwire_profiles::Identifier;
use leadwire_salesforce_emulator::schema::CustomFieldSpec;
use leadwire_salesforce_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig, RunningEmulator,
};
use leadwire_store::{SqliteConfig, SqliteStore, Store};
use leadwire_webhooks::templates::TemplateDefinition;
use leadwire_webhooks::{WebhookConfig, WebhookService};
use serde_json::{Value as Json, json};

struct Harness {
    dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    service: Arc<WebhookService>,
    campaigns: Arc<CampaignEngine>,
    canvas: Mutex<Arc<CanvasEngine>>,
    _stop_campaigns: tokio::sync::oneshot::Sender<()>,
    api: leadwire_api::RunningApi,
    key: String,
    emulator: RunningEmulator,
    http: reqwest::Client,
    /// Simulated time ahead of the wall clock, for Delays and windows.
    offset: Mutex<chrono::Duration>,
}

fn token_header(base: &str) -> String {
    format!(
        "{{% connected_content {base}/services/oauth2/token :method post :body client_id={DEFAULT_CLIENT_ID}&client_secret={DEFAULT_CLIENT_SECRET}&grant_type=client_credentials :cache_max_age 900 :save result %}}Bearer {{{{result.access_token}}}}"
    )
}

fn templates(base: &str) -> Vec<Json> {
    vec![
        json!({
            "name": "Salesforce Sales Cloud > Create Lead",
            "url": format!("{base}/services/data/v60.0/sobjects/Lead/"),
            "method": "POST",
            "body": {"firstName": "{{${first_name}}}", "lastName": "{{${last_name}}}", "email": "{{${email_address}}}", "company": "{{custom_attribute.${company}}}"},
            "headers": {"Authorization": token_header(base), "Content-Type": "application/json"},
            "write_back": [{"response_field": "id", "attribute": "salesforce_lead_id"}]
        }),
        json!({
            "name": "Salesforce Sales Cloud > Update Lead to MQL (by written-back id)",
            "url": format!("{base}/services/data/v60.0/sobjects/Lead/{{{{custom_attribute.${{salesforce_lead_id}}}}}}"),
            "method": "PATCH",
            "body": {"Lead_Stage__c": "MQL"},
            "headers": {"Authorization": token_header(base), "Content-Type": "application/json"}
        }),
        // Writes the step's name (and an entry property) so tests can see which step sent it.
        json!({
            "name": "Stage from step",
            "url": format!("{base}/services/data/v60.0/sobjects/Lead/{{{{custom_attribute.${{salesforce_lead_id}}}}}}"),
            "method": "PATCH",
            "body": {"Lead_Stage__c": "{{campaign.${name}}}{{canvas_entry_properties.${suffix}}}{{context.${tag}}}"},
            "headers": {"Authorization": token_header(base), "Content-Type": "application/json"}
        }),
    ]
}

async fn harness() -> Harness {
    let mut config = EmulatorConfig::loopback_with_https();
    config
        .custom_fields
        .push(CustomFieldSpec::parse("Lead_Stage__c:string:255").expect("field"));
    let emulator = Emulator::start(config).await.expect("emulator");
    let base = emulator.https_url().expect("https");
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("leadwire.db");
    let store = Arc::new(SqliteStore::open(SqliteConfig::new(&db)).expect("store"));
    let mut wh = WebhookConfig::new(&db);
    wh.ssrf = SsrfPolicy::strict()
        .allow_host("localhost")
        .allow_host("127.0.0.1");
    wh.extra_ca_pem = vec![emulator.ca_pem().expect("ca").as_bytes().to_vec()];
    let service = WebhookService::open(wh, store.clone())
        .await
        .expect("webhook service");
    for t in templates(&base) {
        service
            .create_template(TemplateDefinition::from_json(&t).expect("definition"))
            .await
            .expect("template saves");
    }
    let queue = service.queue().clone();
    let campaigns = Arc::new(
        CampaignEngine::open(&db)
            .expect("engine")
            .with_on_enqueue(Arc::new(move || queue.notify())),
    );
    campaigns
        .save_campaign(
            serde_json::from_value::<CampaignSpec>(json!({"name": "New lead", "status": "active", "trigger": {"type": "email_added"}, "template": "Salesforce Sales Cloud > Create Lead"}))
                .expect("campaign"),
        )
        .expect("campaign saves");
    service.start();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(campaigns.clone().run(async move {
        let _ = stopped.await;
    }));
    let key = store
        .create_api_key("t".into(), vec!["users.track".into()])
        .await
        .expect("key");
    let api = leadwire_api::serve(
        "127.0.0.1:0".parse().expect("addr"),
        store.clone(),
        Default::default(),
    )
    .await
    .expect("api");
    Harness {
        canvas: Mutex::new(Arc::new(open_canvas_engine(&db, &store, &service))),
        dir,
        store,
        service,
        campaigns,
        _stop_campaigns: stop,
        api,
        key,
        emulator,
        http: reqwest::Client::new(),
        offset: Mutex::new(chrono::Duration::zero()),
    }
}

fn open_canvas_engine(
    db: &std::path::Path,
    store: &Arc<SqliteStore>,
    service: &Arc<WebhookService>,
) -> CanvasEngine {
    let queue = service.queue().clone();
    CanvasEngine::open(db, store.clone())
        .expect("canvas engine")
        .with_on_enqueue(Arc::new(move || queue.notify()))
}

fn spec(v: Json) -> CanvasSpec {
    serde_json::from_value(v).expect("canvas spec")
}

impl Harness {
    fn engine(&self) -> Arc<CanvasEngine> {
        self.canvas.lock().expect("lock").clone()
    }

    /// Drops the engine (as a crash or restart would) and opens a new one on the same file.
    fn restart(&self) {
        let fresh = Arc::new(open_canvas_engine(
            &self.dir.path().join("leadwire.db"),
            &self.store,
            &self.service,
        ));
        *self.canvas.lock().expect("lock") = fresh;
    }

    fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.offset.lock().expect("lock")
    }

    fn advance_clock(&self, by: chrono::Duration) {
        *self.offset.lock().expect("lock") += by;
    }

    async fn track(&self, body: Json) {
        let r = self
            .http
            .post(format!("{}/users/track", self.api.url()))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .expect("track");
        assert_eq!(
            r.status().as_u16(),
            201,
            "{}",
            r.text().await.unwrap_or_default()
        );
    }

    /// Runs Canvas passes until both engines consumed the feed, no update is pending and no job
    /// is queued or in flight.
    async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let engine = self.engine();
            let report = engine.pass_at(self.now(), 1000).await.expect("pass");
            let feed_end = self
                .store
                .triggers_after(0, 1_000_000)
                .await
                .expect("feed")
                .last()
                .map_or(0, |t| t.seq);
            let counts = self.service.job_counts().await.expect("counts");
            let busy = counts.get("queued").copied().unwrap_or(0)
                + counts.get("in_flight").copied().unwrap_or(0);
            if report.idle()
                && engine.position().expect("position") >= feed_end
                && self.campaigns.position().expect("position") >= feed_end
                && engine.pending_updates().expect("pending") == 0
                && busy == 0
            {
                return;
            }
            assert!(Instant::now() < deadline, "did not settle: {counts:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn profile(&self, external_id: &str) -> leadwire_profiles::Profile {
        let found = self
            .store
            .find_profiles(vec![Identifier::ExternalId(external_id.into())])
            .await
            .expect("find");
        found.found.into_iter().next().expect("profile exists")
    }

    /// The Salesforce lead's stage for a user (via the written-back lead id).
    async fn stage(&self, external_id: &str) -> Json {
        let p = self.profile(external_id).await;
        let id = p
            .custom
            .get("salesforce_lead_id")
            .cloned()
            .expect("lead id written back");
        self.emulator
            .leads()
            .into_iter()
            .find(|l| l["Id"] == id)
            .map(|l| l["Lead_Stage__c"].clone())
            .expect("lead exists")
    }

    fn delivered(&self, counts: &std::collections::HashMap<String, u64>) -> u64 {
        counts.get("delivered").copied().unwrap_or(0)
    }

    /// Creates users with emails and waits for their leads to exist.
    async fn leads(&self, ids: &[String], extra: Json) {
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
            self.track(json!({"attributes": attributes})).await;
        }
        self.settle().await;
        // The created leads' ids are written back after delivery; wait for them, so later
        // webhooks addressing the lead by that id do not race the write-back.
        let deadline = Instant::now() + Duration::from_secs(20);
        for id in ids {
            while !self
                .profile(id)
                .await
                .custom
                .contains_key("salesforce_lead_id")
            {
                assert!(
                    Instant::now() < deadline,
                    "{id}'s lead id was not written back"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.settle().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_scoring_moves_exactly_the_users_above_the_threshold_to_mql_once() {
    let h = harness().await;
    let users: Vec<String> = (0..100).map(|i| format!("lead{i:03}")).collect();
    h.leads(&users, json!({"lead_stage": "Lead", "lead_score": 0}))
        .await;
    assert_eq!(h.emulator.lead_count(), 100);
    let yaml = include_str!("../../../examples/salesforce-sales-cloud/lead-scoring-canvas.yaml");
    let mut doc: Json = serde_norway::from_str(yaml).expect("yaml");
    if let Json::Object(m) = &mut doc {
        m.remove("kind");
    }
    let canvas = h.engine().save_canvas(spec(doc)).expect("canvas saves");
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
    h.settle().await;
    for (i, id) in users.iter().enumerate() {
        let above = i as i64 + 1 > 50;
        let stage = h.stage(id).await;
        let profile = h.profile(id).await;
        if above {
            assert_eq!(stage, json!("MQL"), "{id} is above the threshold");
            assert_eq!(profile.custom["lead_stage"], json!("MQL"));
        } else {
            assert_eq!(stage, Json::Null, "{id} is untouched");
            assert_eq!(profile.custom["lead_stage"], json!("Lead"));
        }
    }
    let counts = h.engine().step_counts(&canvas.id).expect("counts");
    let count = |step: &str, kind: &str| {
        counts
            .get(&(step.to_string(), kind.to_string()))
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(count("update_lead", "webhook"), 50, "each MQL updated once");
    assert_eq!(count("mark_mql", "user_update"), 50);
    assert_eq!(count("threshold", "entered"), 100);
    // Scores keep moving: MQLs re-enter (re-entry 0 s) but are no longer Leads, so nothing more
    // is sent; users still below stay untouched.
    let delivered = h.delivered(&h.service.job_counts().await.expect("counts"));
    let attributes: Vec<Json> = users
        .iter()
        .enumerate()
        .filter(|(i, _)| *i >= 50 || *i < 10)
        .map(|(_, id)| json!({"external_id": id, "lead_score": 200}))
        .collect();
    for chunk in attributes.chunks(75) {
        h.track(json!({"attributes": chunk})).await;
    }
    h.settle().await;
    let counts = h.engine().step_counts(&canvas.id).expect("counts");
    assert_eq!(
        counts.get(&("update_lead".to_string(), "webhook".to_string())),
        Some(&60),
        "the 10 low users crossing now are updated once; the 50 MQLs are not updated again"
    );
    assert_eq!(
        h.delivered(&h.service.job_counts().await.expect("counts")),
        delivered + 10
    );
    assert_eq!(h.stage("lead005").await, json!("MQL"));
    assert_eq!(h.stage("lead020").await, Json::Null);
}

fn delayed_canvas() -> CanvasSpec {
    spec(json!({
        "name": "Nurture", "status": "active",
        "entry": {"triggers": [{"type": "custom_event", "name": "demo_requested"}]},
        "steps": [
            {"id": "first", "name": "Nurturing", "type": "webhook", "template": "Stage from step", "next": "wait"},
            {"id": "wait", "type": "delay", "seconds": 3600, "next": "bump"},
            {"id": "bump", "type": "user_update", "increments": {"lead_score": 5}, "next": "last"},
            {"id": "last", "name": "SQL", "type": "webhook", "template": "Stage from step"}
        ]
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_survives_a_restart_and_fires_once() {
    let h = harness().await;
    h.leads(&["d1".to_string()], json!({"lead_score": 10}))
        .await;
    let canvas = h.engine().save_canvas(delayed_canvas()).expect("saves");
    h.track(json!({"events": [{"external_id": "d1", "name": "demo_requested", "time": "2026-01-01T00:00:00Z", "properties": {"suffix": " (demo)"}}]})).await;
    h.settle().await;
    assert_eq!(
        h.stage("d1").await,
        json!("Nurturing (demo)"),
        "campaign.name is the step name; the entering event's properties are canvas_entry_properties"
    );
    // Half-way through the Delay: restart. Nothing happens before the hour is up.
    h.restart();
    h.advance_clock(chrono::Duration::minutes(30));
    h.settle().await;
    assert_eq!(h.stage("d1").await, json!("Nurturing (demo)"));
    h.restart();
    h.advance_clock(chrono::Duration::minutes(31));
    h.settle().await;
    assert_eq!(
        h.stage("d1").await,
        json!("SQL (demo)"),
        "entry properties persist"
    );
    assert_eq!(h.profile("d1").await.custom["lead_score"], json!(15));
    // Later passes (and another restart) do nothing more.
    h.restart();
    h.advance_clock(chrono::Duration::hours(5));
    h.settle().await;
    let counts = h.engine().step_counts(&canvas.id).expect("counts");
    assert_eq!(counts[&("last".to_string(), "webhook".to_string())], 1);
    assert_eq!(counts[&("first".to_string(), "webhook".to_string())], 1);
    assert_eq!(h.profile("d1").await.custom["lead_score"], json!(15));
    let journeys = h.engine().journeys(&canvas.id).expect("journeys");
    assert_eq!(journeys.len(), 1);
    assert_eq!(journeys[0].status, "exited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_a_user_update_and_its_application_neither_loses_nor_doubles_it() {
    let h = harness().await;
    h.leads(&["c1".to_string()], json!({"lead_score": 10}))
        .await;
    let canvas = h
        .engine()
        .save_canvas(spec(json!({
            "name": "Bump", "status": "active",
            "entry": {"triggers": [{"type": "custom_event", "name": "webinar"}]},
            "steps": [
                {"id": "bump", "type": "user_update", "increments": {"lead_score": 5}, "next": "after"},
                {"id": "after", "name": "Bumped", "type": "webhook", "template": "Stage from step"}
            ]
        })))
        .expect("saves");
    h.track(json!({"events": [{"external_id": "c1", "name": "webinar", "time": "2026-01-01T00:00:00Z"}]})).await;
    // Only the transaction runs: the update is recorded, then the process "crashes".
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.engine().pending_updates().expect("pending") == 0 {
        h.engine().process_at(h.now(), 1000).expect("process");
        assert!(Instant::now() < deadline, "update never recorded");
    }
    let pending: (i64, i64, String, String, i64) = {
        let conn = rusqlite::Connection::open(h.dir.path().join("leadwire.db")).expect("db");
        conn.query_row(
            "SELECT id, journey_id, braze_id, ops, created_at FROM canvas_pending_updates",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .expect("row")
    };
    h.restart();
    h.settle().await;
    assert_eq!(h.profile("c1").await.custom["lead_score"], json!(15));
    assert_eq!(h.stage("c1").await, json!("Bumped"));
    // A crash after the store applied it but before the row was deleted: the row is applied again.
    {
        let conn = rusqlite::Connection::open(h.dir.path().join("leadwire.db")).expect("db");
        conn.execute(
            "INSERT INTO canvas_pending_updates (id, journey_id, braze_id, ops, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            rusqlite::params![pending.0, pending.1, pending.2, pending.3, pending.4],
        )
        .expect("reinsert");
    }
    h.restart();
    h.settle().await;
    assert_eq!(
        h.profile("c1").await.custom["lead_score"],
        json!(15),
        "an increment is stored as its result, so re-applying it changes nothing"
    );
    let counts = h.engine().step_counts(&canvas.id).expect("counts");
    assert_eq!(counts[&("after".to_string(), "webhook".to_string())], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_triggered_entry_decision_split_action_paths_context_and_exit() {
    let h = harness().await;
    let users: Vec<String> = ["a1", "a2", "a3", "a4"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    h.leads(&users, json!({})).await;
    h.track(json!({"attributes": [{"external_id": "a1", "vip": true}, {"external_id": "a2", "vip": true}, {"external_id": "a3", "vip": true}]})).await;
    let canvas = h
        .engine()
        .save_canvas(spec(json!({
            "name": "Onboarding", "status": "active",
            "entry": {"triggers": [{"type": "api_triggered"}]},
            "exit": {"events": [{"type": "purchase"}]},
            "steps": [
                {"id": "ctx", "type": "context", "variables": [{"name": "tag", "type": "string", "value": "{% if custom_attribute.${vip} %}!{% endif %}"}], "next": "vip"},
                {"id": "vip", "type": "decision_split", "filter": {"attribute": "vip", "equals": true}, "yes": "paths", "no": "not_vip"},
                {"id": "not_vip", "name": "Regular", "type": "webhook", "template": "Stage from step"},
                {"id": "paths", "type": "action_paths", "window_seconds": 86400, "groups": [
                    {"name": "Webinar", "trigger": {"type": "custom_event", "name": "webinar"}, "next": "webinar"}
                ], "everyone_else": "wait"},
                {"id": "webinar", "name": "Engaged", "type": "webhook", "template": "Stage from step"},
                {"id": "wait", "type": "delay", "seconds": 60, "next": "idle"},
                {"id": "idle", "name": "Idle", "type": "webhook", "template": "Stage from step"}
            ]
        })))
        .expect("saves");
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
        .engine()
        .trigger_send(
            &canvas.id,
            &recipients,
            Some(&json!({"suffix": "-api"})),
            None,
            h.now(),
        )
        .expect("sends");
    assert!(dispatch.starts_with("dsp_"));
    assert_eq!(missing, vec![Identifier::ExternalId("ghost".into())]);
    h.settle().await;
    assert_eq!(
        h.stage("a4").await,
        json!("Regular-api"),
        "not VIP: the No path"
    );
    assert_eq!(h.stage("a1").await, Json::Null, "waiting in Action Paths");
    // a1 does the action: advances at once. a3 purchases: leaves when its step finishes.
    h.track(json!({
        "events": [{"external_id": "a1", "name": "webinar", "time": "2026-01-01T00:00:00Z"}],
        "purchases": [{"external_id": "a3", "product_id": "p", "currency": "USD", "price": 1, "time": "2026-01-01T00:00:00Z"}]
    }))
    .await;
    h.settle().await;
    assert_eq!(
        h.stage("a1").await,
        json!("Engaged-api!"),
        "entry properties and context"
    );
    assert_eq!(h.stage("a2").await, Json::Null);
    // The window ends: a2 leaves through Everyone Else into a Delay, then Idle.
    h.advance_clock(chrono::Duration::hours(25));
    h.settle().await;
    assert_eq!(h.stage("a2").await, Json::Null, "in the Delay");
    h.restart();
    h.advance_clock(chrono::Duration::minutes(2));
    h.settle().await;
    assert_eq!(
        h.stage("a2").await,
        json!("Idle-2!"),
        "per-recipient properties override"
    );
    assert_eq!(h.stage("a3").await, Json::Null, "exited on the purchase");
    let journeys = h.engine().journeys(&canvas.id).expect("journeys");
    assert_eq!(journeys.len(), 4);
    assert!(journeys.iter().all(|j| j.status == "exited"));
    let a3 = journeys
        .iter()
        .find(|j| j.exit_reason.as_deref() == Some("ExitCriteria"))
        .expect("one exit by criteria");
    assert_eq!(a3.journey.step, "paths");
    // API-triggered only; a paused Canvas refuses.
    h.engine()
        .set_status(&canvas.id, leadwire_canvas::CanvasStatus::Paused)
        .expect("pause");
    let err = h
        .engine()
        .trigger_send(&canvas.id, &recipients, None, None, h.now())
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("canvas 'Onboarding' is not active (it is paused)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saving_checks_the_graph_and_the_templates() {
    let h = harness().await;
    let err = h
        .engine()
        .save_canvas(spec(json!({
            "name": "Bad", "entry": {"triggers": [{"type": "email_added"}]},
            "steps": [{"id": "w", "type": "webhook", "template": "No such template"}]
        })))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("canvas 'Bad', step 'w': no webhook template named 'No such template'"),
        "{err}"
    );
    let err = h
        .engine()
        .save_canvas(spec(json!({
            "name": "Loop", "entry": {"triggers": [{"type": "email_added"}]},
            "steps": [
                {"id": "a", "type": "decision_split", "filter": {"attribute": "x", "exists": true}, "yes": "b"},
                {"id": "b", "type": "user_update", "attributes": {"x": 1}, "next": "a"}
            ]
        })))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("cycle without a Delay"), "{err}");
    assert!(h.engine().canvases().expect("list").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn either_engine_may_open_a_fresh_file_first() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("leadwire.db");
    let store = Arc::new(SqliteStore::open(SqliteConfig::new(&db)).expect("store"));
    let _webhooks = WebhookService::open(WebhookConfig::new(&db), store.clone())
        .await
        .expect("webhooks");
    let canvas = CanvasEngine::open(&db, store.clone()).expect("canvas engine first");
    let campaigns = CampaignEngine::open(&db).expect("then the campaign engine");
    assert_eq!(canvas.position().expect("position"), 0);
    assert_eq!(campaigns.position().expect("position"), 0);
    drop(canvas);
    CanvasEngine::open(&db, store).expect("reopens");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_are_limited_per_utc_hour() {
    let h = harness().await;
    let users: Vec<String> = (0..5).map(|i| format!("l{i}")).collect();
    h.leads(&users, json!({})).await;
    let canvas = h
        .engine()
        .save_canvas(spec(json!({
            "name": "Limited", "status": "active",
            "entry": {"triggers": [{"type": "custom_event", "name": "visit"}], "max_entries_per_hour": 3, "reentry_seconds": 0},
            "steps": [{"id": "set", "type": "user_update", "attributes": {"entered": true}}]
        })))
        .expect("saves");
    // Sent at the start of a UTC hour, so the five entries fall in one hour.
    let hour = h.now().timestamp().div_euclid(3600);
    let start = DateTime::from_timestamp((hour + 1) * 3600, 0).unwrap_or_default();
    h.advance_clock(start - h.now());
    let events: Vec<Json> = users
        .iter()
        .map(|u| json!({"external_id": u, "name": "visit", "time": "2026-01-01T00:00:00Z"}))
        .collect();
    h.track(json!({"events": events})).await;
    h.settle().await;
    assert_eq!(entered(&h, &users).await, 3, "three entries in this hour");
    assert_eq!(h.engine().journeys(&canvas.id).expect("journeys").len(), 3);
    // The next hour has room again.
    h.advance_clock(chrono::Duration::hours(1));
    h.track(
        json!({"events": [{"external_id": "l3", "name": "visit", "time": "2026-01-01T00:00:00Z"}]}),
    )
    .await;
    h.settle().await;
    assert_eq!(h.engine().journeys(&canvas.id).expect("journeys").len(), 4);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_webhook_advances_the_user_and_unranked_actions_advance_the_earliest_entry() {
    let h = harness().await;
    h.leads(&["w1".to_string()], json!({})).await;
    let base = h.emulator.https_url().expect("https");
    h.service
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
    let canvas = h
        .engine()
        .save_canvas(spec(json!({
            "name": "Abort then act", "status": "active",
            "entry": {"triggers": [{"type": "custom_event", "name": "start"}], "reentry_seconds": 0},
            "steps": [
                {"id": "gate", "type": "webhook", "template": "Aborts", "next": "paths"},
                {"id": "paths", "type": "action_paths", "window_seconds": 3600, "groups": [
                    {"name": "Clicked", "trigger": {"type": "custom_event", "name": "click"}, "next": "clicked"}
                ]},
                {"id": "clicked", "name": "Clicked", "type": "webhook", "template": "Stage from step"}
            ]
        })))
        .expect("saves");
    // Two entries (re-entry 0 s), both past the aborted message and waiting for the action.
    for _ in 0..2 {
        h.track(json!({"events": [{"external_id": "w1", "name": "start", "time": "2026-01-01T00:00:00Z"}]})).await;
        h.settle().await;
    }
    let counts = h.service.job_counts().await.expect("counts");
    assert_eq!(counts.get("aborted").copied(), Some(2), "{counts:?}");
    let waiting = |h: &Harness| {
        h.engine()
            .journeys(&canvas.id)
            .expect("journeys")
            .into_iter()
            .filter(|j| j.status == "active")
            .map(|j| j.id)
            .collect::<Vec<_>>()
    };
    let before = waiting(&h);
    assert_eq!(before.len(), 2, "the abort advanced both entries");
    h.track(
        json!({"events": [{"external_id": "w1", "name": "click", "time": "2026-01-01T00:00:00Z"}]}),
    )
    .await;
    h.settle().await;
    assert_eq!(h.stage("w1").await, json!("Clicked"));
    assert_eq!(
        waiting(&h),
        vec![before[1]],
        "only the earliest entry advanced"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_editor_logs_events_once_even_when_reapplied_after_a_crash() {
    let h = harness().await;
    h.leads(&["j1".to_string()], json!({})).await;
    h.engine()
        .save_canvas(spec(json!({
            "name": "Upgrade", "status": "active",
            "entry": {"triggers": [{"type": "custom_event", "name": "signup"}]},
            "steps": [{"id": "u", "type": "user_update",
                       "json": "{\"attributes\": [{\"plan\": \"{{canvas_entry_properties.${plan} | default: 'pro'}}\"}], \"events\": [{\"name\": \"upgraded\", \"time\": \"2026-01-01T00:00:00Z\", \"properties\": {\"plan\": \"pro\"}}]}"}]
        })))
        .expect("saves");
    // Counts the events the JSON editor logs: its changes raise triggers like any other change.
    h.engine()
        .save_canvas(spec(json!({
            "name": "Count upgrades", "status": "active",
            "entry": {"triggers": [{"type": "custom_event", "name": "upgraded"}], "reentry_seconds": 0},
            "steps": [{"id": "n", "type": "user_update", "increments": {"upgrades": 1}}]
        })))
        .expect("saves");
    h.track(json!({"events": [{"external_id": "j1", "name": "signup", "time": "2026-01-01T00:00:00Z"}]})).await;
    // Only the transaction: the update is recorded, then the process "crashes" before applying it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.engine().pending_updates().expect("pending") == 0 {
        h.engine().process_at(h.now(), 1000).expect("process");
        assert!(Instant::now() < deadline, "update never recorded");
    }
    let row: (i64, i64, String, String, Option<String>, i64, i64) = {
        let conn = rusqlite::Connection::open(h.dir.path().join("leadwire.db")).expect("db");
        conn.query_row(
            "SELECT id, journey_id, braze_id, ops, track, feed_seq, created_at FROM canvas_pending_updates",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
        )
        .expect("row")
    };
    assert!(row.4.is_some(), "the events are recorded with the update");
    h.restart();
    h.settle().await;
    let p = h.profile("j1").await;
    assert_eq!(p.custom["plan"], json!("pro"));
    assert_eq!(p.custom["upgrades"], json!(1));
    // A crash after the store wrote the event but before the row was removed: applied again,
    // the event is not logged twice.
    {
        let conn = rusqlite::Connection::open(h.dir.path().join("leadwire.db")).expect("db");
        conn.execute(
            "INSERT INTO canvas_pending_updates (id, journey_id, braze_id, ops, track, feed_seq, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![row.0, row.1, row.2, row.3, row.4, row.5, row.6],
        )
        .expect("reinsert");
    }
    h.restart();
    h.settle().await;
    assert_eq!(h.profile("j1").await.custom["upgrades"], json!(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inline_webhook_is_saved_as_a_template_and_sent() {
    let h = harness().await;
    h.leads(&["i1".to_string()], json!({})).await;
    let base = h.emulator.https_url().expect("https");
    let canvas = json!({
        "name": "Inline", "status": "active",
        "entry": {"triggers": [{"type": "custom_event", "name": "go"}]},
        "steps": [{"id": "patch", "name": "Inline stage", "type": "webhook", "inline": {
            "url": format!("{base}/services/data/v60.0/sobjects/Lead/{{{{custom_attribute.${{salesforce_lead_id}}}}}}"),
            "method": "PATCH",
            "body": {"Lead_Stage__c": "{{campaign.${name}}}"},
            "headers": {"Authorization": token_header(&base), "Content-Type": "application/json"}
        }}]
    });
    let err = h
        .engine()
        .save_canvas(spec(canvas.clone()))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("inline webhook is not saved"), "{err}");
    h.engine()
        .save_canvas_with_webhooks(spec(canvas.clone()), &h.service)
        .await
        .expect("saves");
    // Saving again updates the same template rather than adding one.
    h.engine()
        .save_canvas_with_webhooks(spec(canvas), &h.service)
        .await
        .expect("saves again");
    let named = h
        .service
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
    h.settle().await;
    assert_eq!(h.stage("i1").await, json!("Inline stage"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_entry_audience_is_checked_before_entry_and_re_entry_needs_its_window() {
    let h = harness().await;
    let users = vec!["e1".to_string(), "e2".to_string()];
    h.leads(&users, json!({})).await;
    h.track(json!({"attributes": [{"external_id": "e1", "vip": true}]}))
        .await;
    let canvas = h
        .engine()
        .save_canvas(spec(json!({
            "name": "VIP only", "status": "active",
            "entry": {"triggers": [{"type": "custom_event", "name": "visit"}],
                      "audience": {"attribute": "vip", "equals": true},
                      "reentry_seconds": 3600},
            "steps": [{"id": "n", "type": "user_update", "increments": {"visits": 1}}]
        })))
        .expect("saves");
    let visit = json!({"events": [
        {"external_id": "e1", "name": "visit", "time": "2026-01-01T00:00:00Z"},
        {"external_id": "e2", "name": "visit", "time": "2026-01-01T00:00:00Z"}
    ]});
    h.track(visit.clone()).await;
    h.settle().await;
    assert_eq!(h.profile("e1").await.custom.get("visits"), Some(&json!(1)));
    assert_eq!(
        h.profile("e2").await.custom.get("visits"),
        None,
        "not in the audience"
    );
    // Within the re-entry window nothing happens; after it, the user enters again.
    h.track(visit.clone()).await;
    h.settle().await;
    assert_eq!(h.profile("e1").await.custom.get("visits"), Some(&json!(1)));
    h.advance_clock(chrono::Duration::minutes(61));
    h.track(visit).await;
    h.settle().await;
    assert_eq!(h.profile("e1").await.custom.get("visits"), Some(&json!(2)));
    assert_eq!(h.engine().journeys(&canvas.id).expect("journeys").len(), 2);
}
