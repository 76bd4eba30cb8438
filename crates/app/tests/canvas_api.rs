//! Canvas endpoints over real HTTP with the Canvas engine behind them:
//! `/canvas/create|list|details|pause|resume` and Braze's `/canvas/trigger/send` (permission,
//! attributes applied before entry, canvas_entry_properties and context, the paused notice).
//! Nothing runs in the background: the test runs the Canvas engine's passes itself.

mod common;

use common::{Harness, harness_with};
use leadwire_api::Permission;
use serde_json::{Value as Json, json};

async fn stage(h: &Harness, external_id: &str) -> Option<Json> {
    h.profile(external_id)
        .await
        .custom
        .get("lead_stage")
        .cloned()
}

async fn pass(h: &Harness) {
    h.app.canvas_runner().pass().await.expect("pass");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canvases_over_http() {
    let h = harness_with(false).await;
    let key = h
        .key_with(&[
            Permission::CanvasRead,
            Permission::CanvasWrite,
            Permission::CanvasTriggerSend,
        ])
        .await;
    let weak = h.key_with(&[Permission::CanvasRead]).await;

    let spec = json!({
        "name": "Stage by API", "status": "active",
        "entry": {"triggers": [{"type": "api_triggered"}]},
        "steps": [{"id": "set", "name": "Set stage", "type": "user_update",
                   "attributes": {"lead_stage": "{{canvas_entry_properties.${stage}}}{{context.${mark}}}"}}]
    });
    let (status, body) = h.post_as(&key, "/canvas/create", spec.clone()).await;
    assert_eq!(status, 201, "{body}");
    let id = body["canvas_id"].as_str().expect("id").to_string();
    assert_eq!(h.post_as(&key, "/canvas/create", spec).await.0, 409);
    let (status, body) = h
        .post_as(
            &key,
            "/canvas/create",
            json!({"name": "Broken", "entry": {"triggers": [{"type": "email_added"}]},
                   "steps": [{"id": "a", "type": "webhook", "template": "t", "next": "b"}]}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["message"],
        "canvas 'Broken', step 'a': its next step 'b' does not exist"
    );
    assert_eq!(h.post_as(&weak, "/canvas/create", json!({})).await.0, 403);
    let (status, details) = h
        .get_as(&weak, &format!("/canvas/details?canvas_id={id}"))
        .await;
    assert_eq!(status, 200, "{details}");
    assert_eq!(details["canvas"]["name"], "Stage by API");
    let (status, list) = h.get_as(&weak, "/canvas/list").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["canvases"][0]["id"], id, "{list}");
    assert_eq!(list["canvases"][0]["name"], "Stage by API", "{list}");
    assert_eq!(details["name"], "Stage by API", "{details}");
    assert_eq!(details["channels"], json!(["webhook"]), "{details}");

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
        h.post_as(&weak, "/canvas/trigger/send", send.clone())
            .await
            .0,
        403
    );
    let (status, body) = h.post_as(&key, "/canvas/trigger/send", send.clone()).await;
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
        pass(&h).await;
    }
    assert_eq!(stage(&h, "c-1").await, Some(json!("MQL!")));
    assert_eq!(
        stage(&h, "c-2").await,
        Some(json!("SQL?")),
        "per-recipient overrides"
    );

    // Paused: 201 with Braze's notice, and nobody enters.
    assert_eq!(
        h.post_as(&key, "/canvas/pause", json!({"canvas_id": id}))
            .await
            .0,
        200
    );
    let again = json!({"canvas_id": id, "canvas_entry_properties": {"stage": "X"}, "recipients": [{"external_user_id": "c-1"}]});
    let (status, body) = h.post_as(&key, "/canvas/trigger/send", again.clone()).await;
    assert_eq!(status, 201);
    assert_eq!(
        body["notice"],
        "The Canvas is paused. Resume the Canvas to ensure trigger requests will take effect."
    );
    pass(&h).await;
    assert_eq!(stage(&h, "c-1").await, Some(json!("MQL!")));
    assert_eq!(
        h.post_as(&key, "/canvas/resume", json!({"canvas_id": id}))
            .await
            .0,
        200
    );
    let (status, _) = h.post_as(&key, "/canvas/trigger/send", again).await;
    assert_eq!(status, 201);
    pass(&h).await;
    assert_eq!(
        stage(&h, "c-1").await,
        Some(json!("MQL!")),
        "without a re-entry window a user enters once"
    );
}
