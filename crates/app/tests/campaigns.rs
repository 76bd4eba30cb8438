//! Campaigns end to end over real HTTP: users in through `/users/track`, leads out to the
//! Salesforce emulator over HTTPS, through the trigger feed, the campaign engine's feed runner and
//! the durable webhook queue, all started through `App::start`.

mod common;

use common::{CREATE_LEAD, Harness, UPDATE_LEAD, harness};
use leadwire_campaigns::CampaignSpec;
use leadwire_engine::Recipient;
use leadwire_profiles::Identifier;
use leadwire_store::JobState;
use serde_json::{Value as Json, json};

fn campaign(spec: Json) -> CampaignSpec {
    serde_json::from_value(spec).expect("campaign spec")
}

fn new_lead_campaign() -> CampaignSpec {
    campaign(
        json!({"name": "New lead", "status": "active", "trigger": {"type": "email_added"}, "template": CREATE_LEAD}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_email_becomes_exactly_one_lead() {
    let h = harness().await;
    h.app
        .campaigns
        .save_campaign(new_lead_campaign())
        .await
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
    h.app
        .campaigns
        .save_campaign(new_lead_campaign())
        .await
        .expect("campaign");
    h.app.campaigns
        .save_campaign(campaign(json!({
            "name": "MQL handoff", "status": "active",
            "trigger": {"type": "attribute_changed", "attribute": "lead_score"},
            "template": UPDATE_LEAD,
            "audience": {"all": [{"attribute": "lead_score", "greater_than": 50}, {"attribute": "salesforce_lead_id", "exists": true}]},
            "reeligibility_seconds": 0
        })))
        .await
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
            .app
            .webhooks
            .activity(Default::default())
            .await
            .expect("activity");
        let jobs = h.app.webhooks.job_counts().await.expect("counts");
        panic!(
            "no salesforce_lead_id after settle; jobs {jobs:?}; activity {:?}",
            activity
                .iter()
                .map(|a| (a.row.kind, &a.row.message))
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
    h.eventually("the lead reaching MQL", async || {
        stage(&h) == Some(json!("MQL"))
    })
    .await;
    h.settle().await;
    let sends_before = h.job_count(JobState::Delivered).await;
    h.track(json!({"attributes": [{"external_id": "m1", "lead_score": 60}]}))
        .await;
    h.settle().await;
    let sends_after = h.job_count(JobState::Delivered).await;
    assert_eq!(
        sends_before, sends_after,
        "the same value again does not fire"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_triggered_campaign_uses_trigger_properties() {
    let h = harness().await;
    h.app
        .campaigns
        .save_campaign(new_lead_campaign())
        .await
        .expect("campaign");
    h.app.campaigns
        .save_campaign(campaign(json!({"name": "Stage by API", "status": "active", "trigger": {"type": "api_triggered"}, "template": UPDATE_LEAD})))
        .await
        .expect("campaign");
    h.track(json!({"attributes": [{"external_id": "a1", "last_name": "Kim", "email": "kim@example.com", "company": "Acme"}]})).await;
    h.settle().await;
    let (dispatch, missing) = h
        .app
        .campaigns
        .trigger_send(
            "Stage by API",
            vec![
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
            Some(json!({"stage": "MQL"})),
        )
        .await
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
    h.app
        .campaigns
        .save_campaign(new_lead_campaign())
        .await
        .expect("campaign");
    h.app.campaigns
        .save_campaign(campaign(json!({"name": "Once", "status": "active", "trigger": {"type": "custom_event", "name": "demo_requested"}, "template": UPDATE_LEAD})))
        .await
        .expect("campaign");
    h.app.campaigns
        .save_campaign(campaign(json!({"name": "Slow", "status": "active", "trigger": {"type": "custom_event", "name": "pinged"}, "template": UPDATE_LEAD, "reeligibility_seconds": 0, "rate_limit_per_minute": 10})))
        .await
        .expect("campaign");
    h.track(json!({"attributes": [{"external_id": "r1", "last_name": "Roe", "email": "roe@example.com", "company": "Acme"}]})).await;
    h.settle().await;
    let event = |name: &str| json!({"events": [{"external_id": "r1", "name": name, "time": "2024-01-01T00:00:00Z"}]});
    h.track(event("demo_requested")).await;
    h.settle().await;
    h.track(event("demo_requested")).await;
    h.settle().await;
    assert_eq!(
        h.job_count(JobState::Delivered).await,
        2,
        "create + one update: default re-eligibility is once"
    );
    // 12 pings at a 10/minute limit: 10 go now, 2 wait for the next minute.
    for _ in 0..12 {
        h.track(event("pinged")).await;
    }
    h.settle().await;
    assert_eq!(
        (
            h.job_count(JobState::Delivered).await,
            h.job_count(JobState::Queued).await
        ),
        (12, 2),
        "ten pings now, two held for the next minute"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_between_trigger_and_send_sends_exactly_once() {
    // No runner and no worker: triggers wait in the feed.
    let h = common::harness_with(false).await;
    h.app
        .campaigns
        .save_campaign(new_lead_campaign())
        .await
        .expect("campaign");
    for i in 0..5 {
        h.track(json!({"attributes": [{"external_id": format!("x{i}"), "last_name": "X", "email": format!("x{i}@example.com"), "company": "Acme"}]})).await;
    }
    // A pass that consumes the feed, then another that must find nothing left to do.
    let runner = h.app.campaign_runner();
    let first = runner.pass().await.expect("pass");
    assert_eq!(first.sends, 5, "{first:?}");
    assert_eq!(runner.pass().await.expect("pass").triggers, 0);
    // A fresh leadwire on the same database (the first one stopped) delivers each once.
    let Harness {
        database,
        app,
        emulator,
        ..
    } = h;
    app.stop().await;
    let app = leadwire_app::App::start(common::config_for(&database, &emulator, true))
        .await
        .expect("restarts");
    assert!(
        app.settle(std::time::Duration::from_secs(60))
            .await
            .expect("settle")
    );
    for i in 0..5 {
        let email = format!("x{i}@example.com");
        let leads = emulator
            .leads()
            .into_iter()
            .filter(|l| l["Email"] == email.as_str())
            .count();
        assert_eq!(leads, 1, "{email}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaigns_delivery_pace_holds_across_a_restart() {
    // No runner and no worker: passes are driven here, nothing is sent.
    let h = common::harness_with(false).await;
    h.app
        .campaigns
        .save_campaign(campaign(json!({"name": "Slow", "status": "active", "trigger": {"type": "custom_event", "name": "pinged"}, "template": UPDATE_LEAD, "reeligibility_seconds": 0, "rate_limit_per_minute": 10})))
        .await
        .expect("campaign");
    h.track(json!({"attributes": [{"external_id": "p1", "last_name": "P", "email": "p1@example.com", "company": "Acme"}]})).await;
    let ping = json!({"events": [{"external_id": "p1", "name": "pinged", "time": "2024-01-01T00:00:00Z"}]});
    for _ in 0..10 {
        h.track(ping.clone()).await;
    }
    let runner = h.app.campaign_runner();
    while runner.pass().await.expect("pass").triggers > 0 {}
    // A fresh leadwire on the same database: the eleventh send still waits for the next minute.
    let Harness {
        database,
        app,
        emulator,
        ..
    } = h;
    app.stop().await;
    let app = leadwire_app::App::start(common::config_for(&database, &emulator, false))
        .await
        .expect("restarts");
    app.store
        .track(
            leadwire_profiles::parse_track(&ping).expect("valid"),
            leadwire_store::ChangeSource::Api,
        )
        .await
        .expect("track");
    let runner = app.campaign_runner();
    while runner.pass().await.expect("pass").triggers > 0 {}
    let campaign_id = app.campaigns.campaign("Slow").await.expect("campaign").id;
    let jobs = app
        .webhooks
        .jobs(Some(campaign_id), 100)
        .await
        .expect("jobs");
    assert_eq!(jobs.len(), 11);
    let now = std::time::SystemTime::now();
    let later: Vec<_> = jobs
        .iter()
        .filter(|j| {
            j.due_at
                .is_some_and(|at| at > now + std::time::Duration::from_secs(30))
        })
        .collect();
    assert_eq!(
        later.len(),
        1,
        "only the eleventh waits for the next minute: {jobs:?}"
    );
    assert_eq!(later[0].id, jobs.iter().map(|j| j.id).max().expect("jobs"));
    app.stop().await;
}
