use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::TestOrg;

async fn upsert(
    org: &TestOrg,
    version: &str,
    path: &str,
    body: serde_json::Value,
) -> crate::helpers::Answer {
    let url = format!("{}/services/data/{version}/sobjects/Lead/{path}", org.base);
    org.send(org.request(Method::PATCH, &url).json(&body)).await
}

#[tokio::test]
async fn upsert_creates_201_then_updates_200_from_v46_and_204_before() {
    let org = TestOrg::start().await;
    let body = json!({"LastName": "Ext", "Company": "C"});
    let created = upsert(&org, "v60.0", "Ext_Id__c/user-1", body.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_str().expect("id").to_owned();
    assert_eq!(
        created.body,
        json!({"id": id, "success": true, "errors": [], "created": true})
    );
    let updated = upsert(
        &org,
        "v60.0",
        "ext_id__c/USER-1",
        json!({"Lead_Stage__c": "MQL"}),
    )
    .await;
    assert_eq!(
        updated.status,
        StatusCode::OK,
        "external ids match case-insensitively: {}",
        updated.text
    );
    assert_eq!(
        updated.body,
        json!({"id": id, "success": true, "errors": [], "created": false})
    );
    let old = upsert(&org, "v45.0", "Ext_Id__c/user-1", json!({"Title": "CEO"})).await;
    assert_eq!(old.status, StatusCode::NO_CONTENT);
    assert_eq!(old.text, "");
    let old_create = upsert(&org, "v45.0", "Ext_Id__c/user-2", body.clone()).await;
    assert_eq!(old_create.status, StatusCode::CREATED);
    assert!(
        old_create.body.get("created").is_none(),
        "`created` exists since v46.0"
    );

    let record = org
        .call(Method::GET, &format!("sobjects/Lead/{id}"), None)
        .await;
    assert_eq!(record.body["Ext_Id__c"], "user-1");
    assert_eq!(record.body["Lead_Stage__c"], "MQL");
    assert_eq!(record.body["Title"], "CEO");
    let by_ext = org
        .call(Method::GET, "sobjects/Lead/Ext_Id__c/user-1", None)
        .await;
    assert_eq!(by_ext.body["Id"], id.as_str());
}

#[tokio::test]
async fn upsert_errors_and_multiple_matches() {
    let org = TestOrg::start().await;
    let unknown = upsert(
        &org,
        "v60.0",
        "Namez/x",
        json!({"LastName": "L", "Company": "C"}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.body,
        json!([{"message": "Provided external ID field does not exist or is not accessible: Namez", "errorCode": "NOT_FOUND"}])
    );
    let missing_required = upsert(&org, "v60.0", "Ext_Id__c/new", json!({"FirstName": "x"})).await;
    assert_eq!(missing_required.error_code(), "REQUIRED_FIELD_MISSING");

    // Two records with one external id (possible through plain creates): 300 with both URLs.
    for _ in 0..2 {
        let answer = org
            .create(json!({"LastName": "L", "Company": "C", "Ext_Id__c": "twin"}))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED);
    }
    let ambiguous = upsert(&org, "v60.0", "Ext_Id__c/twin", json!({"Title": "x"})).await;
    assert_eq!(ambiguous.status, StatusCode::MULTIPLE_CHOICES);
    let urls = ambiguous.body.as_array().expect("array of URLs");
    assert_eq!(urls.len(), 2);
    assert!(urls.iter().all(|url| {
        url.as_str()
            .is_some_and(|u| u.starts_with("/services/data/v60.0/sobjects/Lead/00Q"))
    }));
    let update_only = org
        .call(
            Method::PATCH,
            "sobjects/Lead/Ext_Id__c/absent?updateOnly=true",
            Some(json!({"LastName": "L", "Company": "C"})),
        )
        .await;
    assert_eq!(update_only.status, StatusCode::NOT_FOUND);
}
