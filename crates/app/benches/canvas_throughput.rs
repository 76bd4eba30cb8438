//! Canvas throughput on leadwire's SQLite file: `BENCH_USERS` users (default 5000) at lead_stage
//! "Lead" get a lead_score above the threshold through the store; the Canvas engine then moves
//! every one through the seed's lead-scoring Canvas (entry, Audience Paths, User Update applied
//! through the store, the Update Lead webhook enqueued). Prints Canvas steps processed per second and
//! users moved through the Canvas per second, next to the campaign path's rate (the campaign engine
//! consuming the same score changes and enqueueing the same webhook) from the same run.
//! Delivery is not measured here (see `leadwire-engine`'s `campaign_e2e`): both paths stop at the
//! durable queue. leadwire is started through `App::start` with no background runners, so passes
//! are driven here. `cargo bench -p leadwire-app --bench canvas_throughput`.

use std::time::Instant;

use leadwire_app::{App, AppConfig};
use leadwire_campaigns::CampaignSpec;
use leadwire_canvas::CanvasSpec;
use leadwire_profiles::parse_track;
use leadwire_store::{ChangeSource, Store};
use leadwire_webhooks::templates::TemplateDefinition;
use serde_json::{Value as Json, json};

const TEMPLATE: &str = "Salesforce Sales Cloud > Update Lead to MQL (by written-back id)";

async fn track(store: &Store, attributes: Vec<Json>) {
    for chunk in attributes.chunks(75) {
        let parsed = parse_track(&json!({"attributes": chunk})).expect("valid request");
        store
            .track(parsed, ChangeSource::Api)
            .await
            .expect("track applies");
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let users: usize = std::env::var("BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let dir = tempfile::tempdir().expect("dir");
    // No runner and no worker: both paths stop at the durable queue, passes driven here.
    let mut config = AppConfig::new(dir.path());
    config.workers = false;
    let app = App::start(config).await.expect("leadwire starts");
    let store = app.store.clone();
    app.webhooks
        .create_template(
            TemplateDefinition::from_json(&json!({
                "name": TEMPLATE,
                "url": "https://example.com/services/data/v60.0/sobjects/Lead/{{custom_attribute.${salesforce_lead_id}}}",
                "method": "PATCH",
                "body": {"Lead_Stage__c": "MQL"},
                "headers": {"Content-Type": "application/json"}
            }))
            .expect("definition"),
        )
        .await
        .expect("template");
    let ids: Vec<String> = (0..users).map(|i| format!("bench-{i:06}")).collect();
    track(
        &store,
        ids.iter()
            .map(|id| json!({"external_id": id, "lead_stage": "Lead", "lead_score": 0, "salesforce_lead_id": format!("00Q{id}")}))
            .collect(),
    )
    .await;

    let (canvases, campaigns) = (app.canvas_runner(), app.campaign_runner());
    let yaml = include_str!("../../../examples/salesforce-sales-cloud/lead-scoring-canvas.yaml");
    let mut doc: Json = serde_norway::from_str(yaml).expect("yaml");
    if let Json::Object(m) = &mut doc {
        m.remove("kind");
    }
    let spec: CanvasSpec = serde_json::from_value(doc).expect("canvas");
    let canvas = app.canvases.save_canvas(spec).await.expect("canvas saves");
    let campaign: CampaignSpec = serde_json::from_value(json!({
        "name": "MQL handoff", "status": "active",
        "trigger": {"type": "attribute_changed", "attribute": "lead_score"},
        "template": TEMPLATE,
        "audience": {"all": [{"attribute": "lead_score", "greater_than": 50}, {"attribute": "lead_stage", "equals": "Lead"}]},
        "reeligibility_seconds": 0
    }))
    .expect("campaign");
    app.campaigns
        .save_campaign(campaign)
        .await
        .expect("campaign saves");
    // Both engines start from the end of the feed so far (users' creation is not measured).
    let start = store
        .triggers_after(0, usize::MAX / 2)
        .await
        .expect("feed")
        .last()
        .map_or(0, |t| t.seq);
    while campaigns.position().await.expect("position") < start {
        campaigns.pass().await.expect("skip history");
    }
    while canvases.position().await.expect("position") < start {
        canvases.pass().await.expect("skip history");
    }

    // Every user crosses the threshold.
    track(
        &store,
        ids.iter()
            .map(|id| json!({"external_id": id, "lead_score": 60}))
            .collect(),
    )
    .await;
    let feed_end = store
        .triggers_after(start, usize::MAX / 2)
        .await
        .expect("feed")
        .last()
        .map_or(start, |t| t.seq);

    // The campaign path over the score changes.
    let t = Instant::now();
    let mut sends = 0;
    while campaigns.position().await.expect("position") < feed_end {
        sends += campaigns.pass().await.expect("pass").sends;
    }
    let campaign_secs = t.elapsed().as_secs_f64();

    // The Canvas path over the same score changes (and the stage changes its User Updates raise).
    let t = Instant::now();
    let mut steps = 0;
    let mut entries = 0;
    let mut end = feed_end;
    loop {
        let report = canvases.pass().await.expect("pass");
        steps += report.steps + report.entries;
        entries += report.entries;
        // The feed grows as User Updates apply; read only what is new.
        end = store
            .triggers_after(end, usize::MAX / 2)
            .await
            .expect("feed")
            .last()
            .map_or(end, |t| t.seq);
        if report.idle()
            && canvases.position().await.expect("position") >= end
            && app
                .canvases
                .outstanding(chrono::Utc::now())
                .await
                .expect("outstanding")
                == 0
        {
            break;
        }
    }
    let canvas_secs = t.elapsed().as_secs_f64();
    let moved = app
        .canvases
        .step_counts(&canvas.id)
        .await
        .expect("counts")
        .get(&("update_lead".to_string(), "webhook".to_string()))
        .copied()
        .unwrap_or(0);
    assert_eq!(
        moved as usize, users,
        "every user reached the Update Lead step once"
    );
    assert_eq!(sends, users, "the campaign sent once per user");

    println!("canvas_throughput: {users} users crossing the MQL threshold");
    println!(
        "  canvas   {:>10.0} steps/s  {:>8.0} users moved through the lead-scoring Canvas/s  ({steps} steps, {entries} entries, {canvas_secs:.2} s)",
        steps as f64 / canvas_secs,
        moved as f64 / canvas_secs
    );
    println!(
        "  campaign {:>10.0} triggers/s {:>8.0} sends enqueued/s  ({sends} sends, {campaign_secs:.2} s)",
        users as f64 / campaign_secs,
        sends as f64 / campaign_secs
    );
}
