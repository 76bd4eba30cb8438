//! Canvas endpoints over real HTTP with the Canvas engine behind them:
//! `/canvas/create|list|details|pause|resume` and Braze's `/canvas/trigger/send` (permission,
//! attributes applied before entry, canvas_entry_properties and context, the paused notice).

use std::sync::Arc;

use leadwire_api::{Permission, Services};
use leadwire_canvas::CanvasEngine;
use leadwire_profiles::Identifier;
use leadwire_store::{SqliteConfig, SqliteStore, Store};
use leadwire_webhooks::{WebhookConfig, WebhookService};
use serde_json::{Value as Json, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canvases_over_http() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("leadwire.db");
    let store = Arc::new(SqliteStore::open(SqliteConfig::new(&db)).expect("store"));
    // Opened for its tables (templates); no webhook is sent here.
    let _webhooks = WebhookService::open(WebhookConfig::new(&db), store.clone())
        .await
        .expect("webhooks");
    let engine = Arc::new(CanvasEngine::open(&db, store.clone()).expect("canvas engine"));
    let key = store
        .create_api_key(
            "t".into(),
            [
                Permission::CanvasRead,
                Permission::CanvasWrite,
                Permission::CanvasTriggerSend,
            ]
            .map(|p| p.as_str().to_owned())
            .to_vec(),
        )
        .await
        .expect("key");
    let weak = store
        .create_api_key("weak".into(), vec![Permission::CanvasRead.as_str().into()])
        .await
        .expect("key");
    let api = leadwire_api::serve_with_services(
        "127.0.0.1:0".parse().expect("addr"),
        store.clone(),
        Default::default(),
        Services {
            canvases: Some(engine.clone()),
            ..Services::default()
        },
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

    let spec = json!({
        "name": "Stage by API", "status": "active",
        "entry": {"triggers": [{"type": "api_triggered"}]},
        "steps": [{"id": "set", "name": "Set stage", "type": "user_update",
                   "attributes": {"lead_stage": "{{canvas_entry_properties.${stage}}}{{context.${mark}}}"}}]
    });
    let (status, body) = post("/canvas/create", &key, spec.clone()).await;
    assert_eq!(status, 201, "{body}");
    let id = body["canvas_id"].as_str().expect("id").to_string();
    assert_eq!(post("/canvas/create", &key, spec).await.0, 409);
    let (status, body) = post(
        "/canvas/create",
        &key,
        json!({"name": "Broken", "entry": {"triggers": [{"type": "email_added"}]},
               "steps": [{"id": "a", "type": "webhook", "template": "t", "next": "b"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "canvas 'Broken', step 'a': its next step 'b' does not exist"
    );
    assert_eq!(post("/canvas/create", &weak, json!({})).await.0, 403);
    let details: Json = http
        .get(format!("{}/canvas/details?canvas_id={id}", api.url()))
        .bearer_auth(&weak)
        .send()
        .await
        .expect("details")
        .json()
        .await
        .expect("json");
    assert_eq!(details["canvas"]["name"], "Stage by API");
    let list: Json = http
        .get(format!("{}/canvas/list", api.url()))
        .bearer_auth(&weak)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(list["canvases"][0]["canvas_id"], id);

    let send = json!({
        "canvas_id": id,
        "canvas_entry_properties": {"stage": "MQL"},
        "context": {"mark": "!"},
        "recipients": [
            {"external_user_id": "c-1", "send_to_existing_only": false, "attributes": {"last_name": "Ngata"}},
            {"external_user_id": "c-2", "canvas_entry_properties": {"stage": "SQL"}, "context": {"mark": "?"}, "send_to_existing_only": false, "attributes": {"last_name": "Ito"}},
            {"external_user_id": "nobody"}
        ]
    });
    assert_eq!(
        post("/canvas/trigger/send", &weak, send.clone()).await.0,
        403
    );
    let (status, body) = post("/canvas/trigger/send", &key, send.clone()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["message"], "success");
    assert!(
        body["dispatch_id"]
            .as_str()
            .is_some_and(|d| d.starts_with("dsp_"))
    );
    assert_eq!(
        body["errors"][0]["type"],
        "no user with external_id 'nobody'"
    );
    for _ in 0..3 {
        engine.pass().await.expect("pass");
    }
    let stage = |id: &str| {
        let store = store.clone();
        let id = id.to_string();
        async move {
            store
                .find_profiles(vec![Identifier::ExternalId(id)])
                .await
                .expect("find")
                .found
                .into_iter()
                .next()
                .and_then(|p| p.custom.get("lead_stage").cloned())
        }
    };
    assert_eq!(stage("c-1").await, Some(json!("MQL!")));
    assert_eq!(
        stage("c-2").await,
        Some(json!("SQL?")),
        "per-recipient overrides"
    );

    // Paused: 201 with Braze's notice, and nobody enters.
    assert_eq!(
        post("/canvas/pause", &key, json!({"canvas_id": id}))
            .await
            .0,
        200
    );
    let again = json!({"canvas_id": id, "canvas_entry_properties": {"stage": "X"}, "recipients": [{"external_user_id": "c-1"}]});
    let (status, body) = post("/canvas/trigger/send", &key, again.clone()).await;
    assert_eq!(status, 201);
    assert_eq!(
        body["notice"],
        "The Canvas is paused. Resume the Canvas to ensure trigger requests will take effect."
    );
    engine.pass().await.expect("pass");
    assert_eq!(stage("c-1").await, Some(json!("MQL!")));
    assert_eq!(
        post("/canvas/resume", &key, json!({"canvas_id": id}))
            .await
            .0,
        200
    );
    let (status, _) = post("/canvas/trigger/send", &key, again).await;
    assert_eq!(status, 201);
    engine.pass().await.expect("pass");
    assert_eq!(
        stage("c-1").await,
        Some(json!("MQL!")),
        "without a re-entry window a user enters once"
    );
}
