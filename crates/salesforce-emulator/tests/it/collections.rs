use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestOrg;

fn lead(last_name: &str) -> Value {
    json!({"attributes": {"type": "Lead"}, "LastName": last_name, "Company": "C"})
}

#[tokio::test]
async fn collection_create_reports_per_record_and_counts_as_one_call() {
    let org = TestOrg::start().await;
    let body = json!({"allOrNone": false, "records": [lead("A"), {"attributes": {"type": "Lead"}, "FirstName": "no last name"}, lead("B")]});
    let answer = org
        .call(Method::POST, "composite/sobjects", Some(body))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.header("sforce-limit-info"),
        Some("api-usage=1/100000")
    );
    let results = answer.body.as_array().expect("array");
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["success"], true);
    assert_eq!(results[0]["errors"], json!([]));
    assert!(results[0]["id"].as_str().is_some_and(|id| id.len() == 18));
    assert_eq!(
        results[1],
        json!({"success": false, "errors": [{"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [LastName, Company]", "fields": ["LastName", "Company"]}]})
    );
    assert_eq!(results[2]["success"], true);
    assert_eq!(org.emulator.lead_count(), 2);
}

#[tokio::test]
async fn all_or_none_rolls_everything_back() {
    let org = TestOrg::start().await;
    let body = json!({"allOrNone": true, "records": [lead("A"), {"attributes": {"type": "Lead"}, "LastName": "B", "Company": "C", "Vorname": "x"}]});
    let answer = org
        .call(Method::POST, "composite/sobjects/", Some(body))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.body,
        json!([
            {"success": false, "errors": [{"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": "Record rolled back because not all records were valid and the request was using AllOrNone header", "fields": []}]},
            {"success": false, "errors": [{"statusCode": "INVALID_FIELD", "message": "No such column 'Vorname' on sobject of type Lead", "fields": []}]},
        ])
    );
    assert_eq!(org.emulator.lead_count(), 0);
    let fine = org
        .call(
            Method::POST,
            "composite/sobjects",
            Some(json!({"allOrNone": true, "records": [lead("A"), lead("B")]})),
        )
        .await;
    assert!(
        fine.body
            .as_array()
            .is_some_and(|r| r.iter().all(|x| x["success"] == true))
    );
    assert_eq!(org.emulator.lead_count(), 2);
}

#[tokio::test]
async fn collections_limit_types_updates_and_deletes() {
    let org = TestOrg::start().await;
    let too_many: Vec<Value> = (0..201).map(|i| lead(&format!("L{i}"))).collect();
    let refused = org
        .call(
            Method::POST,
            "composite/sobjects",
            Some(json!({"records": too_many})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.error_code(), "EXCEEDED_ID_LIMIT");
    let exactly: Vec<Value> = (0..200).map(|i| lead(&format!("L{i}"))).collect();
    let accepted = org
        .call(
            Method::POST,
            "composite/sobjects",
            Some(json!({"records": exactly})),
        )
        .await;
    assert_eq!(accepted.body.as_array().map(Vec::len), Some(200));
    assert_eq!(org.emulator.lead_count(), 200);

    let untyped = org
        .call(
            Method::POST,
            "composite/sobjects",
            Some(json!({"records": [{"LastName": "L", "Company": "C"}]})),
        )
        .await;
    assert_eq!(untyped.body[0]["errors"][0]["statusCode"], "INVALID_TYPE");
    assert_eq!(
        untyped.body[0]["errors"][0]["message"],
        "Must send a concrete entity type."
    );

    let ids: Vec<String> = accepted.body.as_array().expect("results")[..2]
        .iter()
        .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let update = json!({"records": [{"attributes": {"type": "Lead"}, "id": ids[0], "Title": "T"}, {"attributes": {"type": "Lead"}, "id": ids[1], "LastName": ""}]});
    let updated = org
        .call(Method::PATCH, "composite/sobjects", Some(update))
        .await;
    assert_eq!(
        updated.body[0],
        json!({"id": ids[0], "success": true, "errors": []})
    );
    assert_eq!(
        updated.body[1]["errors"][0]["statusCode"],
        "REQUIRED_FIELD_MISSING"
    );
    let deleted = org
        .call(
            Method::DELETE,
            &format!(
                "composite/sobjects?ids={},{}&allOrNone=false",
                ids[0], ids[1]
            ),
            None,
        )
        .await;
    assert!(
        deleted
            .body
            .as_array()
            .is_some_and(|r| r.iter().all(|x| x["success"] == true))
    );
    let again = org
        .call(
            Method::DELETE,
            &format!("composite/sobjects?ids={}", ids[0]),
            None,
        )
        .await;
    assert_eq!(
        again.body[0]["errors"][0]["statusCode"],
        "ENTITY_IS_DELETED"
    );
    assert_eq!(org.emulator.lead_count(), 198);
}

#[tokio::test]
async fn all_or_none_undoes_records_that_clash_within_the_batch() {
    let config = leadwire_salesforce_emulator::EmulatorConfig {
        duplicate_rule_on_email: true,
        ..crate::helpers::standard_config()
    };
    let org = TestOrg::with(config).await;
    let twin = |name: &str| json!({"attributes": {"type": "Lead"}, "LastName": name, "Company": "C", "Email": "twin@example.com"});
    let answer = org
        .call(
            Method::POST,
            "composite/sobjects",
            Some(json!({"allOrNone": true, "records": [twin("A"), twin("B")]})),
        )
        .await;
    assert_eq!(
        answer.body[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(
        answer.body[1]["errors"][0]["statusCode"],
        "DUPLICATES_DETECTED"
    );
    assert_eq!(org.emulator.lead_count(), 0, "the first create was undone");
}
