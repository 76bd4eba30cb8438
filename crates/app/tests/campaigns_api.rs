//! Campaign endpoints over real HTTP, with the webhook service, the campaign engine and the
//! Salesforce emulator behind them: `/campaigns/create|list|details|pause|resume` and Braze's
//! `/campaigns/trigger/send` (attributes applied before the send, trigger properties in Liquid).

mod common;

use common::{harness, token_header};
use leadwire_api::Permission;
use leadwire_webhooks::templates::TemplateDefinition;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaigns_over_http() {
    let h = harness().await;
    let base = h.emulator.https_url().expect("https");
    let template = json!({
        "name": "Create Lead from API trigger",
        "url": format!("{base}/services/data/v60.0/sobjects/Lead/"),
        "method": "POST",
        "body": {"lastName": "{{${last_name}}}", "email": "{{${email_address}}}", "company": "{{custom_attribute.${company}}}", "Lead_Stage__c": "{{api_trigger_properties.${stage}}}"},
        "headers": {"Authorization": token_header(&base), "Content-Type": "application/json"}
    });
    h.app
        .webhooks
        .create_template(TemplateDefinition::from_json(&template).expect("definition"))
        .await
        .expect("saved");
    let key = h
        .key_with(&[
            Permission::UsersTrack,
            Permission::CampaignsRead,
            Permission::CampaignsWrite,
            Permission::CampaignsTriggerSend,
        ])
        .await;
    let weak = h.key_with(&[Permission::CampaignsRead]).await;

    // Management.
    let spec = json!({"name": "API stage", "trigger": {"type": "api_triggered"}, "template": "Create Lead from API trigger", "status": "draft"});
    let (status, body) = h.post_as(&key, "/campaigns/create", spec.clone()).await;
    assert_eq!(status, 201, "{body}");
    let id = body["campaign_id"].as_str().expect("id").to_string();
    assert_eq!(
        h.post_as(&key, "/campaigns/create", spec).await.0,
        409,
        "names are unique"
    );
    let (status, body) = h
        .post_as(
            &key,
            "/campaigns/create",
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
    assert_eq!(
        h.post_as(&weak, "/campaigns/create", json!({})).await.0,
        403
    );
    let (status, list) = h.get_as(&weak, "/campaigns/list").await;
    assert_eq!(status, 200, "{list}");
    // Braze's list entry: {id, name, last_edited, is_api_campaign, tags}.
    let entry = &list["campaigns"][0];
    assert_eq!(entry["id"], id, "{list}");
    assert_eq!(entry["is_api_campaign"], true, "{list}");
    assert_eq!(entry["tags"], json!([]), "{list}");
    assert!(
        entry["last_edited"]
            .as_str()
            .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()),
        "{list}"
    );
    let (status, details) = h
        .get_as(&weak, &format!("/campaigns/details?campaign_id={id}"))
        .await;
    assert_eq!(status, 200, "{details}");
    assert_eq!(details["schedule_type"], "api_triggered", "{details}");
    assert_eq!(details["name"], entry["name"], "{details}");
    assert_eq!(details["draft"], true, "{details}");

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
    let (status, body) = h
        .post_as(&key, "/campaigns/trigger/send", send.clone())
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("not active")
    );
    assert_eq!(
        h.post_as(&key, "/campaigns/resume", json!({"campaign_id": id}))
            .await
            .0,
        200
    );
    let (status, body) = h.post_as(&key, "/campaigns/trigger/send", send).await;
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

    h.settle().await;
    assert_eq!(h.emulator.lead_count(), 2, "{:?}", h.emulator.leads());
    let stage = |email: &str| {
        h.leads_with_email(email)
            .first()
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
    let (status, _) = h
        .post_as(
            &key,
            "/campaigns/trigger/send",
            json!({"campaign_id": id, "broadcast": true, "recipients": [{"external_user_id": "api-1"}]}),
        )
        .await;
    assert_eq!(status, 400);
    let many: Vec<_> = (0..51)
        .map(|i| json!({"external_user_id": format!("u{i}")}))
        .collect();
    assert_eq!(
        h.post_as(
            &key,
            "/campaigns/trigger/send",
            json!({"campaign_id": id, "recipients": many})
        )
        .await
        .0,
        400
    );
    assert_eq!(
        h.post_as(&key, "/campaigns/pause", json!({"campaign_id": id}))
            .await
            .1["campaign"]["status"],
        "paused"
    );
}
