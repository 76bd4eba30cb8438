use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::TestOrg;

async fn query(org: &TestOrg, path: &str, soql: &str) -> crate::helpers::Answer {
    org.send(
        org.request(Method::GET, &org.data_url(path))
            .query(&[("q", soql)]),
    )
    .await
}

#[tokio::test]
async fn query_finds_leads_by_email_and_external_id() {
    let org = TestOrg::start().await;
    let created = org.create(json!({"LastName": "Q", "Company": "C", "Email": "q@example.com", "Ext_Id__c": "ext-9"})).await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    org.create(json!({"LastName": "Other", "Company": "C", "Email": "other@example.com"}))
        .await;
    for path in ["query", "query/"] {
        let answer = query(
            &org,
            path,
            "SELECT Id, email, LastName FROM Lead WHERE Email = 'Q@example.com'",
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert!(answer.header("sforce-limit-info").is_some());
        assert_eq!(
            answer.body,
            json!({"totalSize": 1, "done": true, "records": [{
                "attributes": {"type": "Lead", "url": format!("/services/data/v60.0/sobjects/Lead/{id}")},
                "Id": id, "Email": "q@example.com", "LastName": "Q"
            }]})
        );
    }
    let by_ext = query(
        &org,
        "query",
        "SELECT Id FROM Lead WHERE Ext_Id__c = 'ext-9' AND Company = 'C' LIMIT 1",
    )
    .await;
    assert_eq!(by_ext.body["totalSize"], 1);
    let all = query(&org, "query", "SELECT Id FROM Lead LIMIT 10").await;
    assert_eq!(all.body["totalSize"], 2);
    let none = query(
        &org,
        "query",
        "SELECT Id FROM Lead WHERE Email = 'nobody@example.com'",
    )
    .await;
    assert_eq!(
        none.body,
        json!({"totalSize": 0, "done": true, "records": []})
    );
    org.call(Method::DELETE, &format!("sobjects/Lead/{id}"), None)
        .await;
    let after_delete = query(&org, "query", "SELECT Id FROM Lead").await;
    assert_eq!(after_delete.body["totalSize"], 1);
    let query_all = query(
        &org,
        "queryAll",
        "SELECT Id, IsDeleted FROM Lead WHERE IsDeleted = true",
    )
    .await;
    assert_eq!(query_all.body["totalSize"], 1);
}

#[tokio::test]
async fn bad_queries_get_soql_errors() {
    let org = TestOrg::start().await;
    let unknown_field = query(&org, "query", "SELECT Id, Vorname FROM Lead").await;
    assert_eq!(unknown_field.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown_field.error_code(), "INVALID_FIELD");
    assert!(
        unknown_field
            .message()
            .contains("No such column 'Vorname' on entity 'Lead'")
    );
    assert!(unknown_field.message().contains("ERROR at Row:1:Column:12"));
    let unknown_object = query(&org, "query", "SELECT Id FROM Leads").await;
    assert_eq!(unknown_object.error_code(), "INVALID_TYPE");
    let malformed = query(&org, "query", "SELECT FROM Lead").await;
    assert_eq!(malformed.error_code(), "MALFORMED_QUERY");
}
