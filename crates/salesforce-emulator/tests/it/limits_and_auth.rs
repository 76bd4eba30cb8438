use leadwire_salesforce_emulator::EmulatorConfig;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestOrg, standard_config};

#[tokio::test]
async fn missing_or_bad_credentials_get_401_as_a_json_array() {
    let org = TestOrg::start().await;
    let url = org.data_url("sobjects/Lead/describe");
    let invalid_session =
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]);
    let missing = org.send(org.client.get(&url)).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.body, invalid_session);
    assert_eq!(
        missing.header("content-type"),
        Some("application/json;charset=UTF-8")
    );
    let wrong = org
        .send(org.client.get(&url).bearer_auth("00D000000000000!nope"))
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body, invalid_session);
    let malformed = org
        .send(org.client.get(&url).header("authorization", "Basic abc"))
        .await;
    assert_eq!(malformed.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        malformed.body,
        json!([{"message": "INVALID_HEADER_TYPE", "errorCode": "INVALID_AUTH_HEADER"}])
    );
    assert_eq!(
        org.emulator.api_requests_used(),
        0,
        "refused calls are not counted"
    );
}

#[tokio::test]
async fn daily_limit_is_reported_on_every_call_and_enforced_with_403() {
    let org = TestOrg::with(EmulatorConfig {
        daily_request_limit: 3,
        ..standard_config()
    })
    .await;
    for used in 1..=3 {
        let answer = org.call(Method::GET, "limits", None).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            answer.header("sforce-limit-info"),
            Some(format!("api-usage={used}/3").as_str())
        );
        assert_eq!(
            answer.body,
            json!({"DailyApiRequests": {"Max": 3, "Remaining": 3 - used}})
        );
    }
    let refused = org.create(json!({"LastName": "L", "Company": "C"})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        refused.body,
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    );
    assert_eq!(refused.header("sforce-limit-info"), Some("api-usage=3/3"));
    assert_eq!(org.emulator.lead_count(), 0);
    // Errors carry the header too.
    let org = TestOrg::start().await;
    let error = org.create(json!({"Vorname": "x"})).await;
    assert_eq!(
        error.header("sforce-limit-info"),
        Some("api-usage=1/100000")
    );
}

#[tokio::test]
async fn api_versions_outside_the_served_range() {
    let org = TestOrg::start().await;
    let retired = org
        .send(org.request(
            Method::GET,
            &format!("{}/services/data/v20.0/sobjects/Lead/describe", org.base),
        ))
        .await;
    assert_eq!(retired.status, StatusCode::GONE);
    let unknown = org
        .send(org.request(
            Method::GET,
            &format!("{}/services/data/v99.0/sobjects/Lead/describe", org.base),
        ))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.error_code(), "NOT_FOUND");
    let latest = org
        .send(org.request(
            Method::GET,
            &format!("{}/services/data/latest/sobjects/Lead/describe", org.base),
        ))
        .await;
    assert_eq!(latest.status, StatusCode::OK);
    let old_client = org
        .send(org.request(
            Method::GET,
            &format!("{}/services/data/v44.0/sobjects/Lead/describe", org.base),
        ))
        .await;
    assert_eq!(old_client.status, StatusCode::OK);
}
