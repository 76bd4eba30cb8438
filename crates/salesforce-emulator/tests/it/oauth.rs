use std::time::Duration;

use leadwire_salesforce_emulator::auth::ConnectedApp;
use leadwire_salesforce_emulator::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EmulatorConfig};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Answer, TestOrg, standard_config};

async fn token_form(org: &TestOrg, form: &str) -> Answer {
    let request = org
        .client
        .post(format!("{}/services/oauth2/token", org.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_owned());
    org.send(request).await
}

#[tokio::test]
async fn client_credentials_in_the_form_body_get_the_full_token_response() {
    let org = TestOrg::start().await;
    let answer = token_form(&org, &format!("grant_type=client_credentials&client_id={DEFAULT_CLIENT_ID}&client_secret={DEFAULT_CLIENT_SECRET}")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.header("content-type"),
        Some("application/json;charset=UTF-8")
    );
    assert!(
        answer
            .header("cache-control")
            .is_some_and(|v| v.contains("no-store"))
    );
    assert!(
        answer.header("sforce-limit-info").is_none(),
        "the token endpoint is not an API call"
    );
    let body = &answer.body;
    let token = body["access_token"].as_str().expect("access_token");
    let (org_part, rest) = token.split_once('!').expect("token has the org id, then !");
    assert_eq!(org_part.len(), 15);
    assert!(org_part.starts_with("00D") && rest.len() >= 40);
    assert_eq!(body["instance_url"], org.base.as_str());
    let id = body["id"].as_str().expect("id");
    let parts: Vec<&str> = id.rsplitn(3, '/').collect();
    assert!(id.starts_with(&format!("{}/id/", org.base)));
    assert!(
        parts[0].starts_with("005")
            && parts[0].len() == 18
            && parts[1].starts_with("00D")
            && parts[1].len() == 18
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "api");
    let issued_at = body["issued_at"].as_str().expect("issued_at is a string");
    assert_eq!(issued_at.len(), 13);
    assert!(issued_at.chars().all(|c| c.is_ascii_digit()));
    let signature = body["signature"].as_str().expect("signature");
    assert_eq!(signature.len(), 44, "base64 of a 32-byte HMAC-SHA256");
    assert!(body.get("expires_in").is_none() && body.get("refresh_token").is_none());

    // The token works on the REST API.
    let versions = org
        .send(
            org.client
                .get(org.data_url("sobjects/Lead/describe"))
                .bearer_auth(token),
        )
        .await;
    assert_eq!(versions.status, StatusCode::OK);
}

#[tokio::test]
async fn http_basic_credentials_work_and_a_live_session_token_is_repeated() {
    let org = TestOrg::start().await;
    let first = token_form(&org, &format!("grant_type=client_credentials&client_id={DEFAULT_CLIENT_ID}&client_secret={DEFAULT_CLIENT_SECRET}")).await;
    let basic = org
        .send(
            org.client
                .post(format!("{}/services/oauth2/token", org.base))
                .basic_auth(DEFAULT_CLIENT_ID, Some(DEFAULT_CLIENT_SECRET))
                .form(&[("grant_type", "client_credentials")]),
        )
        .await;
    assert_eq!(basic.status, StatusCode::OK, "{}", basic.text);
    assert_eq!(basic.body["access_token"], first.body["access_token"]);
    // Braze e-mail bodies may arrive with `&amp;`; and no Content-Type at all.
    let amp = org
        .send(org.client.post(format!("{}/services/oauth2/token", org.base)).body(format!(
            "client_id={DEFAULT_CLIENT_ID}&amp;client_secret={DEFAULT_CLIENT_SECRET}&amp;grant_type=client_credentials"
        )))
        .await;
    assert_eq!(amp.status, StatusCode::OK, "{}", amp.text);
}

#[tokio::test]
async fn oauth_errors_are_single_objects_with_status_400() {
    let org = TestOrg::start().await;
    let cases = [
        (
            format!(
                "grant_type=client_credentials&client_id=nope&client_secret={DEFAULT_CLIENT_SECRET}"
            ),
            "invalid_client_id",
            "client identifier invalid",
        ),
        (
            format!(
                "grant_type=client_credentials&client_id={DEFAULT_CLIENT_ID}&client_secret=wrong"
            ),
            "invalid_client",
            "invalid client credentials",
        ),
        (
            format!(
                "grant_type=password&client_id={DEFAULT_CLIENT_ID}&client_secret={DEFAULT_CLIENT_SECRET}"
            ),
            "unsupported_grant_type",
            "grant type not supported",
        ),
        (
            format!("client_id={DEFAULT_CLIENT_ID}&client_secret={DEFAULT_CLIENT_SECRET}"),
            "invalid_request",
            "grant type is missing",
        ),
    ];
    for (form, error, description) in cases {
        let answer = token_form(&org, &form).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{form}");
        assert_eq!(
            answer.body,
            json!({"error": error, "error_description": description}),
            "{form}"
        );
        assert_eq!(
            answer.header("content-type"),
            Some("application/json;charset=UTF-8")
        );
    }
    let json_body = org
        .send(
            org.client
                .post(format!("{}/services/oauth2/token", org.base))
                .json(&json!({"grant_type": "client_credentials"})),
        )
        .await;
    assert_eq!(json_body.body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn several_connected_apps_get_their_own_tokens_and_revoke_ends_a_session() {
    let config = EmulatorConfig {
        connected_apps: vec![
            ConnectedApp {
                client_id: "app-one".into(),
                client_secret: "s1".into(),
            },
            ConnectedApp {
                client_id: "app-two".into(),
                client_secret: "s2".into(),
            },
        ],
        ..standard_config()
    };
    let org = TestOrg::with(config).await;
    let one = token_form(
        &org,
        "grant_type=client_credentials&client_id=app-one&client_secret=s1",
    )
    .await;
    let two = token_form(
        &org,
        "grant_type=client_credentials&client_id=app-two&client_secret=s2",
    )
    .await;
    assert_eq!(two.status, StatusCode::OK);
    assert_ne!(one.body["access_token"], two.body["access_token"]);
    let cross = token_form(
        &org,
        "grant_type=client_credentials&client_id=app-one&client_secret=s2",
    )
    .await;
    assert_eq!(cross.body["error"], "invalid_client");

    let token = two.body["access_token"].as_str().expect("token").to_owned();
    let revoke = org
        .send(
            org.client
                .post(format!("{}/services/oauth2/revoke", org.base))
                .form(&[("token", token.as_str())]),
        )
        .await;
    assert_eq!(revoke.status, StatusCode::OK);
    let after = org
        .send(
            org.client
                .get(org.data_url("sobjects/Lead/describe"))
                .bearer_auth(&token),
        )
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        after.body,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );
    let log = org.emulator.request_log();
    assert!(
        log.iter()
            .any(|entry| entry.client_id.as_deref() == Some("app-two"))
    );
}

#[tokio::test]
async fn sessions_time_out_after_the_configured_idle_time() {
    let config = EmulatorConfig {
        session_timeout: Duration::from_secs(1),
        ..standard_config()
    };
    let org = TestOrg::with(config).await;
    assert_eq!(
        org.call(Method::GET, "sobjects/Lead/describe", None)
            .await
            .status,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let expired = org.call(Method::GET, "sobjects/Lead/describe", None).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired.error_code(), "INVALID_SESSION_ID");
    // A new token is issued after expiry.
    assert_ne!(org.emulator.issue_access_token(), org.token);
}
