//! Campaign endpoints over real HTTP, with the webhook service, the campaign engine and the
//! Salesforce emulator behind them: `/campaigns/create|list|details|pause|resume` and Braze's
//! `/campaigns/trigger/send` (attributes applied before the send, trigger properties in Liquid).

use std::sync::Arc;
use std::time::{Duration, Instant};

use leadwire_api::{Permission, Services};
use leadwire_delivery::ssrf::SsrfPolicy;
use leadwire_engine::CampaignEngine;
use leadwire_salesforce_emulator::schema::CustomFieldSpec;
use leadwire_salesforce_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig,
};
use leadwire_store::{SqliteConfig, SqliteStore, Store};
use leadwire_webhooks::templates::TemplateDefinition;
use leadwire_webhooks::{WebhookConfig, WebhookService};
use serde_json::{Value as Json, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_over_http() {
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
    wh.ssrf = SsrfPolicy::strict().allow_host("localhost");
    wh.extra_ca_pem = vec![emulator.ca_pem().expect("ca").as_bytes().to_vec()];
    let webhooks = WebhookService::open(wh, store.clone())
        .await
        .expect("webhooks");
    let token = format!(
        "{{% connected_content {base}/services/oauth2/token :method post :body client_id={DEFAULT_CLIENT_ID}&client_secret={DEFAULT_CLIENT_SECRET}&grant_type=client_credentials :save result %}}Bearer {{{{result.access_token}}}}"
    );
    let template = json!({
        "name": "Create Lead from API trigger",
        "url": format!("{base}/services/data/v60.0/sobjects/Lead/"),
        "method": "POST",
        "body": {"lastName": "{{${last_name}}}", "email": "{{${email_address}}}", "company": "{{custom_attribute.${company}}}", "Lead_Stage__c": "{{api_trigger_properties.${stage}}}"},
        "headers": {"Authorization": token, "Content-Type": "application/json"}
    });
    webhooks
        .create_template(TemplateDefinition::from_json(&template).expect("definition"))
        .await
        .expect("saved");
    let queue = webhooks.queue().clone();
    let engine = Arc::new(
        CampaignEngine::open(&db)
            .expect("engine")
            .with_on_enqueue(Arc::new(move || queue.notify())),
    );
    webhooks.start();
    let perms = [
        Permission::UsersTrack,
        Permission::CampaignsRead,
        Permission::CampaignsWrite,
        Permission::CampaignsTriggerSend,
    ]
    .map(|p| p.as_str().to_owned())
    .to_vec();
    let key = store.create_api_key("t".into(), perms).await.expect("key");
    let weak = store
        .create_api_key(
            "weak".into(),
            vec![Permission::CampaignsRead.as_str().into()],
        )
        .await
        .expect("key");
    let services = Services {
        webhooks: Some(webhooks.clone()),
        campaigns: Some(engine.clone()),
        canvases: None,
    };
    let api = leadwire_api::serve_with_services(
        "127.0.0.1:0".parse().expect("addr"),
        store.clone(),
        Default::default(),
        services,
    )
    .await
    .expect("api");
    let http = reqwest::Client::new();
    let post = |path: &str, key: &str, body: Json| {
        let req = http
            .post(format!("{}{path}", api.url()))
            .bearer_auth(key)
            .json(&body);
        async move {
            let r = req.send().await.expect("request");
            let status = r.status().as_u16();
            (status, r.json::<Json>().await.unwrap_or(Json::Null))
        }
    };

    // Management.
    let spec = json!({"name": "API stage", "trigger": {"type": "api_triggered"}, "template": "Create Lead from API trigger", "status": "draft"});
    let (status, body) = post("/campaigns/create", &key, spec.clone()).await;
    assert_eq!(status, 201, "{body}");
    let id = body["campaign_id"].as_str().expect("id").to_string();
    assert_eq!(
        post("/campaigns/create", &key, spec).await.0,
        409,
        "names are unique"
    );
    let (status, body) = post(
        "/campaigns/create",
        &key,
        json!({"name": "Bad", "trigger": {"type": "email_added"}, "template": "No such template"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("no webhook template named 'No such template'"),
        "{body}"
    );
    assert_eq!(post("/campaigns/create", &weak, json!({})).await.0, 403);
    let list: Json = http
        .get(format!("{}/campaigns/list", api.url()))
        .bearer_auth(&weak)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(list["campaigns"][0]["campaign_id"], id);

    // A draft campaign does not send; resumed, it does.
    let send = json!({
        "campaign_id": id,
        "trigger_properties": {"stage": "MQL"},
        "recipients": [
            {"external_user_id": "api-1", "send_to_existing_only": false, "attributes": {"last_name": "Ngata", "email": "ngata@example.nz", "company": "Kiwi Ltd"}},
            {"external_user_id": "api-2", "trigger_properties": {"stage": "SQL"}, "send_to_existing_only": false, "attributes": {"last_name": "Ito", "email": "ito@example.jp", "company": "Ito KK"}},
            {"external_user_id": "nobody"}
        ]
    });
    let (status, body) = post("/campaigns/trigger/send", &key, send.clone()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("not active")
    );
    assert_eq!(
        post("/campaigns/resume", &key, json!({"campaign_id": id}))
            .await
            .0,
        200
    );
    let (status, body) = post("/campaigns/trigger/send", &key, send).await;
    assert_eq!(status, 201, "{body}");
    assert!(
        body["dispatch_id"]
            .as_str()
            .unwrap_or("")
            .starts_with("dsp_")
    );
    assert_eq!(
        body["errors"][0]["type"],
        "no user with external_id 'nobody'"
    );

    let deadline = Instant::now() + Duration::from_secs(15);
    while emulator.lead_count() < 2 {
        assert!(Instant::now() < deadline, "leads did not arrive");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let leads = emulator.leads();
    let stage = |email: &str| {
        leads
            .iter()
            .find(|l| l["Email"] == email)
            .map(|l| l["Lead_Stage__c"].clone())
    };
    assert_eq!(
        stage("ngata@example.nz"),
        Some(json!("MQL")),
        "attributes were applied before the send"
    );
    assert_eq!(
        stage("ito@example.jp"),
        Some(json!("SQL")),
        "per-recipient trigger properties override"
    );

    // Broadcast and recipients exclude each other; more than 50 recipients is refused.
    let (status, _) = post("/campaigns/trigger/send", &key, json!({"campaign_id": id, "broadcast": true, "recipients": [{"external_user_id": "api-1"}]})).await;
    assert_eq!(status, 400);
    let many: Vec<Json> = (0..51)
        .map(|i| json!({"external_user_id": format!("u{i}")}))
        .collect();
    assert_eq!(
        post(
            "/campaigns/trigger/send",
            &key,
            json!({"campaign_id": id, "recipients": many})
        )
        .await
        .0,
        400
    );
    assert_eq!(
        post("/campaigns/pause", &key, json!({"campaign_id": id}))
            .await
            .1["campaign"]["status"],
        "paused"
    );
    api.shutdown().await;
    webhooks.stop().await;
}
