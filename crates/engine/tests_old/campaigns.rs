//! Campaigns end to end over real HTTP: users in through `/users/track`, leads out to the
//! Salesforce emulator over HTTPS, through the trigger feed, the campaign engine and the durable
//! webhook queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use leadwire_campaigns::CampaignSpec;
use leadwire_delivery::ssrf::SsrfPolicy;
use leadwire_engine::{CampaignEngine, Recipient};
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
    engine: Arc<CampaignEngine>,
    stop_engine: Option<tokio::sync::oneshot::Sender<()>>,
    api: leadwire_api::RunningApi,
    key: String,
    emulator: RunningEmulator,
    http: reqwest::Client,
}

fn create_lead_template(base: &str) -> Json {
    // The seed's Create Lead template, verbatim but for the instance and the credentials.
    json!({
        "name": "Salesforce Sales Cloud > Create Lead",
        "url": format!("{base}/services/data/v60.0/sobjects/Lead/"),
        "method": "POST",
        "body": {"firstName": "{{${first_name}}}", "lastName": "{{${last_name}}}", "email": "{{${email_address}}}", "company": "{{custom_attribute.${company}}}"},
        "headers": {
            "Authorization": format!("{{% connected_content {base}/services/oauth2/token     :method post     :body client_id={DEFAULT_CLIENT_ID}&client_secret={DEFAULT_CLIENT_SECRET}&grant_type=client_credentials     :save result %}}Bearer {{{{result.access_token}}}}"),
            "Content-Type": "application/json"
        },
        "write_back": [{"response_field": "id", "attribute": "salesforce_lead_id"}]
    })
}

fn update_lead_template(base: &str) -> Json {
    json!({
        "name": "Salesforce Sales Cloud > Update Lead to MQL",
        "url": format!("{base}/services/data/v60.0/sobjects/Lead/{{{{custom_attribute.${{salesforce_lead_id}}}}}}"),
        "method": "PATCH",
        "body": {"Lead_Stage__c": "{{api_trigger_properties.${stage} | default: 'MQL'}}"},
        "headers": {
            "Authorization": format!("{{% connected_content {base}/services/oauth2/token :method post :body client_id={DEFAULT_CLIENT_ID}&client_secret={DEFAULT_CLIENT_SECRET}&grant_type=client_credentials :cache_max_age 900 :save result %}}Bearer {{{{result.access_token}}}}"),
            "Content-Type": "application/json"
        }
    })
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
    for t in [create_lead_template(&base), update_lead_template(&base)] {
        service
            .create_template(TemplateDefinition::from_json(&t).expect("definition"))
            .await
            .expect("template saves");
    }
    let queue = service.queue().clone();
    let engine = Arc::new(
        CampaignEngine::open(&db)
            .expect("engine")
            .with_on_enqueue(Arc::new(move || queue.notify())),
    );
    service.start();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(engine.clone().run(async move {
        let _ = stopped.await;
    }));
    let key = store
        .create_api_key(
            "t".into(),
            vec!["users.track".into(), "users.export.ids".into()],
        )
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
        dir,
        store,
        service,
        engine,
        stop_engine: Some(stop),
        api,
        key,
        emulator,
        http: reqwest::Client::new(),
    }
}

fn campaign(spec: Json) -> CampaignSpec {
    serde_json::from_value(spec).expect("campaign spec")
}

impl Harness {
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

    /// Waits until the engine consumed the whole feed and no job is queued or in flight.
    async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let engine = self.engine.clone();
            let idle = tokio::task::spawn_blocking(move || engine.idle())
                .await
                .expect("join")
                .expect("idle");
            if idle {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "did not settle: jobs {:?}",
                self.service.job_counts().await.expect("counts")
            );
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    fn leads_with_email(&self, email: &str) -> Vec<Json> {
        self.emulator
            .leads()
            .into_iter()
            .filter(|l| l["Email"] == email)
            .collect()
    }

    async fn profile(&self, external_id: &str) -> leadwire_profiles::Profile {
        let found = self
            .store
            .find_profiles(vec![Identifier::ExternalId(external_id.into())])
            .await
            .expect("find");
        found.found.into_iter().next().expect("profile exists")
    }
}

fn new_lead_campaign() -> CampaignSpec {
    campaign(
        json!({"name": "New lead", "status": "active", "trigger": {"type": "email_added"}, "template": "Salesforce Sales Cloud > Create Lead"}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_email_becomes_exactly_one_lead() {
    let h = harness().await;
    h.engine
        .save_campaign(new_lead_campaign())
        .expect("campaign");
    h.track(json!({"attributes": [{"external_id": "u1", "first_name": "José", "last_name": "Müller", "email": "jose@example.com", "company": "Acme 주식회사"}]})).await;
    h.track(json!({"attributes": [{"external_id": "u2", "first_name": "No", "last_name": "Email", "company": "Acme"}]})).await;
    h.settle().await;
    h.track(json!({"attributes": [{"external_id": "u1", "email": "jose@example.com", "first_name": "José"}]})).await;
    h.settle().await;
    let leads = h.leads_with_email("jose@example.com");
    assert_eq!(leads.len(), 1, "exactly one lead: {leads:?}");
    assert_eq!(
        (
            leads[0]["FirstName"].as_str(),
            leads[0]["LastName"].as_str(),
            leads[0]["Company"].as_str()
        ),
        (Some("José"), Some("Müller"), Some("Acme 주식회사"))
    );
    assert_eq!(
        h.emulator.lead_count(),
        1,
        "the user without an email created nothing"
    );
    // The created lead's id was written back, raising an attribute-change trigger.
    let p = h.profile("u1").await;
    assert_eq!(p.custom["salesforce_lead_id"], leads[0]["Id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attribute_change_campaign_fires_on_change_only_and_respects_audience() {
    let h = harness().await;
    h.engine
        .save_campaign(new_lead_campaign())
        .expect("campaign");
    h.engine
        .save_campaign(campaign(json!({
            "name": "MQL handoff", "status": "active",
            "trigger": {"type": "attribute_changed", "attribute": "lead_score"},
            "template": "Salesforce Sales Cloud > Update Lead to MQL",
            "audience": {"all": [{"attribute": "lead_score", "greater_than": 50}, {"attribute": "salesforce_lead_id", "exists": true}]},
            "reeligibility_seconds": 0
        })))
        .expect("campaign");
    h.track(json!({"attributes": [{"external_id": "m1", "first_name": "Ann", "last_name": "Lee", "email": "ann@example.com", "company": "Acme", "lead_score": 10}]})).await;
    h.settle().await;
    let Some(lead_id) = h
        .profile("m1")
        .await
        .custom
        .get("salesforce_lead_id")
        .and_then(|v| v.as_str())
        .map(str::to_string)
    else {
        let activity = h
            .service
            .activity(Default::default())
            .await
            .expect("activity");
        let jobs = h.service.job_counts().await.expect("counts");
        panic!(
            "no salesforce_lead_id after settle; jobs {jobs:?}; activity {:?}",
            activity
                .iter()
                .map(|a| (&a.kind, &a.message))
                .collect::<Vec<_>>()
        );
    };
    let stage = |h: &Harness| {
        h.emulator
            .leads()
            .into_iter()
            .find(|l| l["Id"] == lead_id.as_str())
            .map(|l| l["Lead_Stage__c"].clone())
    };
    h.track(json!({"attributes": [{"external_id": "m1", "lead_score": 40}]}))
        .await;
    h.settle().await;
    assert_eq!(
        stage(&h),
        Some(Json::Null),
        "below the audience threshold nothing is sent"
    );
    h.track(json!({"attributes": [{"external_id": "m1", "lead_score": 60}]}))
        .await;
    h.settle().await;
    // Poll as well: under a loaded CI machine the delivery can trail the queue's bookkeeping.
    let deadline = Instant::now() + Duration::from_secs(15);
    while stage(&h) != Some(json!("MQL")) {
        if Instant::now() > deadline {
            let jobs = h.service.job_counts().await.expect("counts");
            panic!(
                "the lead never reached MQL; jobs {jobs:?}, lead {:?}",
                stage(&h)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.settle().await;
    let sends_before = h
        .service
        .job_counts()
        .await
        .expect("counts")
        .get("delivered")
        .copied()
        .unwrap_or(0);
    h.track(json!({"attributes": [{"external_id": "m1", "lead_score": 60}]}))
        .await;
    h.settle().await;
    let sends_after = h
        .service
        .job_counts()
        .await
        .expect("counts")
        .get("delivered")
        .copied()
        .unwrap_or(0);
    assert_eq!(
        sends_before, sends_after,
        "the same value again does not fire"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_triggered_campaign_uses_trigger_properties() {
    let h = harness().await;
    h.engine
        .save_campaign(new_lead_campaign())
        .expect("campaign");
    h.engine
        .save_campaign(campaign(json!({"name": "Stage by API", "status": "active", "trigger": {"type": "api_triggered"}, "template": "Salesforce Sales Cloud > Update Lead to MQL"})))
        .expect("campaign");
    h.track(json!({"attributes": [{"external_id": "a1", "last_name": "Kim", "email": "kim@example.com", "company": "Acme"}]})).await;
    h.settle().await;
    let (dispatch, missing) = h
        .engine
        .trigger_send(
            "Stage by API",
            &[
                Recipient {
                    user: Identifier::ExternalId("a1".into()),
                    trigger_properties: Some(json!({"stage": "SQL"})),
                },
                Recipient {
                    user: Identifier::ExternalId("ghost".into()),
                    trigger_properties: None,
                },
            ],
            false,
            Some(&json!({"stage": "MQL"})),
        )
        .expect("sends");
    assert!(dispatch.starts_with("dsp_"));
    assert_eq!(missing, vec![Identifier::ExternalId("ghost".into())]);
    h.settle().await;
    let lead = h.leads_with_email("kim@example.com").pop().expect("lead");
    assert_eq!(
        lead["Lead_Stage__c"], "SQL",
        "per-recipient trigger properties override the request's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reeligibility_and_rate_limit() {
    let h = harness().await;
    h.engine
        .save_campaign(new_lead_campaign())
        .expect("campaign");
    h.engine
        .save_campaign(campaign(json!({"name": "Once", "status": "active", "trigger": {"type": "custom_event", "name": "demo_requested"}, "template": "Salesforce Sales Cloud > Update Lead to MQL"})))
        .expect("campaign");
    h.engine
        .save_campaign(campaign(json!({"name": "Slow", "status": "active", "trigger": {"type": "custom_event", "name": "pinged"}, "template": "Salesforce Sales Cloud > Update Lead to MQL", "reeligibility_seconds": 0, "rate_limit_per_minute": 10})))
        .expect("campaign");
    h.track(json!({"attributes": [{"external_id": "r1", "last_name": "Roe", "email": "roe@example.com", "company": "Acme"}]})).await;
    h.settle().await;
    let event = |name: &str| json!({"events": [{"external_id": "r1", "name": name, "time": "2024-01-01T00:00:00Z"}]});
    h.track(event("demo_requested")).await;
    h.settle().await;
    h.track(event("demo_requested")).await;
    h.settle().await;
    let delivered =
        |c: &std::collections::HashMap<String, u64>| c.get("delivered").copied().unwrap_or(0);
    assert_eq!(
        delivered(&h.service.job_counts().await.expect("counts")),
        2,
        "create + one update: default re-eligibility is once"
    );
    // 12 pings at a 10/minute limit: 10 go now, 2 wait for the next minute.
    for _ in 0..12 {
        h.track(event("pinged")).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let counts = h.service.job_counts().await.expect("counts");
        let feed_end = h
            .store
            .triggers_after(0, 100_000)
            .await
            .expect("feed")
            .last()
            .map_or(0, |t| t.seq);
        let consumed = h.engine.position().expect("position") >= feed_end;
        // Once every ping is consumed and the first ten went out, the last two must be waiting.
        if consumed
            && delivered(&counts) >= 12
            && counts.get("in_flight").copied().unwrap_or(0) == 0
        {
            assert_eq!(
                (
                    delivered(&counts),
                    counts.get("queued").copied().unwrap_or(0)
                ),
                (12, 2),
                "{counts:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rate-limited sends did not go out: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_between_trigger_and_send_sends_exactly_once() {
    let mut h = harness().await;
    h.engine
        .save_campaign(new_lead_campaign())
        .expect("campaign");
    // Stop the engine, produce triggers, then start a fresh engine on the same database.
    if let Some(stop) = h.stop_engine.take() {
        let _ = stop.send(());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..5 {
        h.track(json!({"attributes": [{"external_id": format!("x{i}"), "last_name": "X", "email": format!("x{i}@example.com"), "company": "Acme"}]})).await;
    }
    let queue = h.service.queue().clone();
    let engine = Arc::new(
        CampaignEngine::open(&h.dir.path().join("leadwire.db"))
            .expect("engine")
            .with_on_enqueue(Arc::new(move || queue.notify())),
    );
    // A pass that consumes the feed, then another that must find nothing left to do.
    let first = engine.process_feed(1000).expect("pass");
    assert_eq!(first.sends, 5);
    assert_eq!(engine.process_feed(1000).expect("pass").triggers, 0);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(engine.clone().run(async move {
        let _ = stopped.await;
    }));
    h.stop_engine = Some(stop);
    h.engine = engine;
    h.settle().await;
    for i in 0..5 {
        assert_eq!(h.leads_with_email(&format!("x{i}@example.com")).len(), 1);
    }
}
