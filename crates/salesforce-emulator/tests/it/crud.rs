use leadwire_salesforce_emulator::EmulatorConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestOrg, VERSION, standard_config};

#[tokio::test]
async fn versions_need_no_auth_and_carry_no_limit_header() {
    let org = TestOrg::start().await;
    for path in ["/services/data/", "/services/data"] {
        let answer = org
            .send(org.client.get(format!("{}{path}", org.base)))
            .await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            answer.header("content-type"),
            Some("application/json;charset=UTF-8")
        );
        assert!(answer.header("sforce-limit-info").is_none());
        let versions = answer.body.as_array().expect("array");
        assert!(versions.contains(
            &json!({"label": "Spring '24", "url": "/services/data/v60.0", "version": "60.0"})
        ));
        assert!(versions.contains(
            &json!({"label": "Summer '14", "url": "/services/data/v31.0", "version": "31.0"})
        ));
        assert!(
            versions.iter().any(|v| v["version"] == "44.0")
                && versions.iter().any(|v| v["version"] == "67.0")
        );
    }
    assert_eq!(org.emulator.api_requests_used(), 0);
}

#[tokio::test]
async fn create_with_and_without_trailing_slash() {
    let org = TestOrg::start().await;
    for path in ["sobjects/Lead/", "sobjects/Lead", "sobjects/lead"] {
        let answer = org
            .call(
                Method::POST,
                path,
                Some(json!({"LastName": "Lovelace", "Company": "Analytical"})),
            )
            .await;
        assert_eq!(
            answer.status,
            StatusCode::CREATED,
            "{path}: {}",
            answer.text
        );
        let id = answer.body["id"].as_str().expect("id");
        assert_eq!(id.len(), 18);
        assert!(id.starts_with("00Q"));
        assert_eq!(
            answer.body,
            json!({"id": id, "success": true, "errors": []})
        );
        assert_eq!(
            answer.header("location"),
            Some(format!("/services/data/{VERSION}/sobjects/Lead/{id}").as_str())
        );
        assert_eq!(
            answer.header("content-type"),
            Some("application/json;charset=UTF-8")
        );
        assert!(
            answer
                .header("sforce-limit-info")
                .is_some_and(|v| v.starts_with("api-usage="))
        );
    }
    assert_eq!(org.emulator.lead_count(), 3);
}

#[tokio::test]
async fn read_returns_every_field_in_canonical_case_and_fields_selects() {
    let org = TestOrg::start().await;
    let created = org
        .create(json!({"firstname": "Ada", "LASTNAME": "Lovelace", "company": "Analytical", "email": "ada@example.com", "lead_stage__C": "Lead"}))
        .await;
    let id = created.body["id"].as_str().expect("id").to_owned();
    let answer = org
        .call(Method::GET, &format!("sobjects/Lead/{id}"), None)
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let record = answer.body.as_object().expect("object");
    assert_eq!(record.keys().next().map(String::as_str), Some("attributes"));
    assert_eq!(
        answer.body["attributes"],
        json!({"type": "Lead", "url": format!("/services/data/{VERSION}/sobjects/Lead/{id}")})
    );
    assert_eq!(answer.body["Id"], id.as_str());
    assert_eq!(answer.body["FirstName"], "Ada");
    assert_eq!(answer.body["Name"], "Ada Lovelace");
    assert_eq!(answer.body["Email"], "ada@example.com");
    assert_eq!(answer.body["Lead_Stage__c"], "Lead");
    assert_eq!(answer.body["Status"], "Open - Not Contacted");
    assert_eq!(answer.body["Title"], Value::Null, "nulls are included");
    assert_eq!(answer.body["IsDeleted"], false);
    assert_eq!(answer.body["IsConverted"], false);
    assert_eq!(
        answer.body["PhotoUrl"],
        format!("/services/images/photo/{id}")
    );
    let created_date = answer.body["CreatedDate"].as_str().expect("CreatedDate");
    assert!(
        created_date.ends_with("+0000") && created_date.len() == 28,
        "{created_date}"
    );
    assert!(
        answer.body["OwnerId"]
            .as_str()
            .is_some_and(|owner| owner.starts_with("005") && owner.len() == 18)
    );
    assert!(
        record.contains_key("Address") && record.contains_key("Ext_Id__c") && record.len() > 50
    );

    // ?fields= returns attributes, the fields asked for (canonical case), then Id; a 15-char id works.
    let short = &id[..15];
    let selected = org
        .call(
            Method::GET,
            &format!("sobjects/Lead/{short}?fields=firstname,LastName"),
            None,
        )
        .await;
    assert_eq!(selected.status, StatusCode::OK);
    let keys: Vec<&str> = selected
        .body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["attributes", "FirstName", "LastName", "Id"]);
    assert_eq!(selected.body["Id"], id.as_str());
    let bad_field = org
        .call(
            Method::GET,
            &format!("sobjects/Lead/{id}?fields=Vorname"),
            None,
        )
        .await;
    assert_eq!(bad_field.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad_field.message(),
        "No such column 'Vorname' on sobject of type Lead"
    );
}

#[tokio::test]
async fn update_answers_204_and_blank_required_fields_are_rejected() {
    let org = TestOrg::start().await;
    let id = org.create_lead("Lovelace").await;
    let answer = org
        .call(
            Method::PATCH,
            &format!("sobjects/Lead/{id}"),
            Some(json!({"Lead_Stage__c": "MQL", "firstName": "Ada"})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_eq!(answer.text, "");
    assert!(answer.header("sforce-limit-info").is_some());
    let read = org
        .call(Method::GET, &format!("sobjects/Lead/{id}"), None)
        .await;
    assert_eq!(read.body["Lead_Stage__c"], "MQL");
    assert_eq!(read.body["FirstName"], "Ada");

    for (body, message, fields) in [
        (
            json!({"LastName": ""}),
            "Required fields are missing: [LastName]",
            json!(["LastName"]),
        ),
        (
            json!({"Company": "   "}),
            "Required fields are missing: [Company]",
            json!(["Company"]),
        ),
        (
            json!({"lastname": " ", "company": ""}),
            "Required fields are missing: [LastName, Company]",
            json!(["LastName", "Company"]),
        ),
    ] {
        let answer = org
            .call(Method::PATCH, &format!("sobjects/Lead/{id}"), Some(body))
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            answer.body,
            json!([{"message": message, "errorCode": "REQUIRED_FIELD_MISSING", "fields": fields}])
        );
    }
    let create = org.create(json!({"FirstName": "x"})).await;
    assert_eq!(
        create.body,
        json!([{"message": "Required fields are missing: [LastName, Company]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["LastName", "Company"]}])
    );
}

#[tokio::test]
async fn delete_answers_204_then_entity_is_deleted() {
    let org = TestOrg::start().await;
    let id = org.create_lead("Gone").await;
    let answer = org
        .call(Method::DELETE, &format!("sobjects/Lead/{id}"), None)
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_eq!(answer.text, "");
    let deleted =
        json!([{"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED", "fields": []}]);
    for method in [Method::GET, Method::DELETE] {
        let again = org
            .call(method.clone(), &format!("sobjects/Lead/{id}"), None)
            .await;
        assert_eq!(again.status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(again.body, deleted);
    }
    let patch = org
        .call(
            Method::PATCH,
            &format!("sobjects/Lead/{id}"),
            Some(json!({"FirstName": "x"})),
        )
        .await;
    assert_eq!(patch.status, StatusCode::NOT_FOUND);
    assert_eq!(patch.body, deleted);
    assert_eq!(org.emulator.lead_count(), 0);
    assert_eq!(org.emulator.all_leads().len(), 1);
}

#[tokio::test]
async fn bad_record_keys_get_salesforces_answers() {
    let org = TestOrg::start().await;
    let not_found = |key: &str| json!([{"message": format!("Provided external ID field does not exist or is not accessible: {key}"), "errorCode": "NOT_FOUND"}]);
    for key in [
        "-1",
        "00Q3i000002MQiqEA",
        "00Q8e000000zzzz",
        "00Q8e000000zzzzAA1",
    ] {
        let answer = org
            .call(Method::GET, &format!("sobjects/Lead/{key}"), None)
            .await;
        if key == "00Q8e000000zzzzAA1" {
            // Right length, checksum that cannot match: malformed, not missing.
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{key}");
            assert_eq!(answer.error_code(), "MALFORMED_ID");
            continue;
        }
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{key}");
        assert_eq!(answer.body, not_found(key), "{key}");
    }
    let malformed = org
        .call(
            Method::PATCH,
            "sobjects/Lead/00Q3i000002MQiqEA1",
            Some(json!({"FirstName": "x"})),
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.body[0]["errorCode"], "MALFORMED_ID");
    assert_eq!(malformed.body[0]["fields"], json!(["Id"]));
    let unknown_object = org.call(Method::GET, "sobjects/Leed/describe", None).await;
    assert_eq!(unknown_object.status, StatusCode::NOT_FOUND);
    assert_eq!(
        unknown_object.body,
        json!([{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}])
    );
}

#[tokio::test]
async fn validation_errors_use_salesforces_codes_and_texts() {
    let org = TestOrg::start().await;
    let valid = json!({"LastName": "L", "Company": "C"});
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    let cases = [
        (with("Vorname", "Ada".into()), "INVALID_FIELD", "No such column 'Vorname' on sobject of type Lead".to_owned(), None),
        (with("Id", "00Q5f000008AsnDEAS".into()), "INVALID_FIELD", "The Id field should not be specified in the sobject data.".to_owned(), None),
        (with("FirstName", "x".repeat(41).into()), "STRING_TOO_LONG", format!("First Name: data value too large: {} (max length=40)", "x".repeat(41)), Some(json!(["FirstName"]))),
        (with("Email", "test@testcom".into()), "INVALID_EMAIL_ADDRESS", "Email: invalid email address: test@testcom".to_owned(), Some(json!(["Email"]))),
        (with("GeocodeAccuracy", "Province".into()), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "Geocode Accuracy: bad value for restricted picklist field: Province".to_owned(), Some(json!(["GeocodeAccuracy"]))),
        (with("Name", "x".into()), "INVALID_FIELD_FOR_INSERT_UPDATE", "Unable to create/update fields: Name. Please check the security settings of this field and verify that it is read/write for your profile or permission set.".to_owned(), Some(json!(["Name"]))),
        (with("Latitude", json!(-17.36)), "FIELD_INTEGRITY_EXCEPTION", "Longitude value is missing : Longitude".to_owned(), Some(json!(["Longitude"]))),
    ];
    for (body, code, message, fields) in cases {
        let answer = org.create(body.clone()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        let mut expected = json!({"message": message, "errorCode": code});
        if let Some(fields) = fields {
            expected["fields"] = fields;
        }
        assert_eq!(answer.body, json!([expected]), "{body}");
        assert_eq!(
            answer.header("content-type"),
            Some("application/json;charset=UTF-8")
        );
    }
    let type_error = org.create(with("IsUnreadByOwner", "True".into())).await;
    assert_eq!(type_error.error_code(), "JSON_PARSER_ERROR");
    assert!(
        type_error
            .message()
            .starts_with("Cannot deserialize instance of boolean from VALUE_STRING value True"),
        "{}",
        type_error.message()
    );
    assert!(type_error.body[0].get("fields").is_none());
    // Unrestricted standard picklists take any value; numbers may come as strings.
    assert_eq!(
        org.create(with("Status", "TestStatus".into())).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        org.create(with("AnnualRevenue", "123123123".into()))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        org.create(with("LastName", "x".repeat(80).into()))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(org.emulator.lead_count(), 3, "failed creates store nothing");
}

#[tokio::test]
async fn bodies_and_methods_are_checked_like_salesforce() {
    let org = TestOrg::start().await;
    let id = org.create_lead("L").await;
    let syntax = org
        .send(
            org.request(Method::POST, &org.data_url("sobjects/Lead/"))
                .header("content-type", "application/json")
                .body("{\n \"Company\": \"C\"\n \"LastName\": \"L\"\n}"),
        )
        .await;
    assert_eq!(syntax.status, StatusCode::BAD_REQUEST);
    assert_eq!(syntax.error_code(), "JSON_PARSER_ERROR");
    assert!(
        syntax.message().contains("at [line:3, column:"),
        "{}",
        syntax.message()
    );
    let no_type_post = org
        .send(org.request(Method::POST, &org.data_url("sobjects/Lead/")))
        .await;
    assert_eq!(no_type_post.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(no_type_post.error_code(), "UNSUPPORTED_MEDIA_TYPE");
    let no_type_patch = org
        .send(org.request(Method::PATCH, &org.data_url(&format!("sobjects/Lead/{id}"))))
        .await;
    assert_eq!(no_type_patch.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_type_patch.error_code(), "INVALID_CONTENT_TYPE");
    let empty_json = org
        .send(
            org.request(Method::POST, &org.data_url("sobjects/Lead/"))
                .header("content-type", "application/json"),
        )
        .await;
    assert_eq!(
        empty_json.body,
        json!([{"message": "The HTTP entity body is required, but this request has no entity body.", "errorCode": "JSON_PARSER_ERROR"}])
    );
    let patch_collection = org
        .call(
            Method::PATCH,
            "sobjects/Lead/",
            Some(json!({"Lead_Stage__c": "MQL"})),
        )
        .await;
    assert_eq!(patch_collection.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        patch_collection.body,
        json!([{"message": "HTTP Method 'PATCH' not allowed. Allowed are HEAD,GET,POST", "errorCode": "METHOD_NOT_ALLOWED"}])
    );
    // Clients that cannot send PATCH use POST with _HttpMethod=PATCH.
    let overridden = org
        .call(
            Method::POST,
            &format!("sobjects/Lead/{id}?_HttpMethod=PATCH"),
            Some(json!({"Title": "CTO"})),
        )
        .await;
    assert_eq!(overridden.status, StatusCode::NO_CONTENT);
    // The older `OAuth` scheme is accepted too.
    let oauth_scheme = org
        .send(
            org.client
                .get(org.data_url(&format!("sobjects/Lead/{id}")))
                .header("authorization", format!("OAuth {}", org.token)),
        )
        .await;
    assert_eq!(oauth_scheme.body["Title"], "CTO");
}

#[tokio::test]
async fn describe_and_basic_info() {
    let org = TestOrg::start().await;
    let describe = org.call(Method::GET, "sobjects/Lead/describe", None).await;
    assert_eq!(describe.status, StatusCode::OK);
    assert_eq!(describe.body["name"], "Lead");
    assert_eq!(describe.body["keyPrefix"], "00Q");
    let fields = describe.body["fields"].as_array().expect("fields");
    let field = |name: &str| {
        fields
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(field("LastName")["length"], 80);
    assert_eq!(field("LastName")["byteLength"], 240);
    assert_eq!(field("LastName")["nillable"], false);
    assert_eq!(field("Company")["length"], 255);
    assert_eq!(field("Email")["type"], "email");
    assert_eq!(field("Name")["createable"], false);
    assert_eq!(field("Lead_Stage__c")["custom"], true);
    assert_eq!(field("Ext_Id__c")["externalId"], true);
    assert_eq!(field("GeocodeAccuracy")["restrictedPicklist"], true);
    let status_values = field("Status")["picklistValues"].as_array().map(Vec::len);
    assert_eq!(status_values, Some(4));

    org.create_lead("Recent").await;
    let info = org.call(Method::GET, "sobjects/Lead/", None).await;
    assert_eq!(info.body["objectDescribe"]["name"], "Lead");
    assert_eq!(info.body["objectDescribe"]["labelPlural"], "Leads");
    assert_eq!(info.body["recentItems"][0]["Name"], "Recent");
    let global = org.call(Method::GET, "sobjects", None).await;
    assert_eq!(global.body["sobjects"][0]["name"], "Lead");
}

#[tokio::test]
async fn duplicate_rule_on_email_blocks_unless_the_header_allows_saving() {
    let org = TestOrg::with(EmulatorConfig {
        duplicate_rule_on_email: true,
        ..standard_config()
    })
    .await;
    let first = org
        .create(json!({"LastName": "A", "Company": "C", "Email": "dup@example.com"}))
        .await;
    let first_id = first.body["id"].as_str().expect("id").to_owned();
    let second = org
        .create(json!({"LastName": "B", "Company": "C", "email": "DUP@example.com"}))
        .await;
    assert_eq!(second.status, StatusCode::BAD_REQUEST);
    assert_eq!(second.error_code(), "DUPLICATES_DETECTED");
    let message =
        "You're creating a duplicate record. We recommend you use an existing record instead.";
    assert_eq!(second.message(), message);
    let result = &second.body[0]["duplicateResut"];
    assert_eq!(result["duplicateRuleEntityType"], "Lead");
    assert_eq!(result["errorMessage"], message);
    assert_eq!(
        result["matchResults"][0]["matchRecords"][0]["record"]["Id"],
        first_id.as_str()
    );
    assert_eq!(result["matchResults"][0]["size"], 1);
    let allowed = org
        .send(
            org.request(Method::POST, &org.data_url("sobjects/Lead/"))
                .header("Sforce-Duplicate-Rule-Header", "allowSave=true")
                .json(&json!({"LastName": "B", "Company": "C", "Email": "dup@example.com"})),
        )
        .await;
    assert_eq!(allowed.status, StatusCode::CREATED);
    // Without the rule, duplicates are fine.
    let relaxed = TestOrg::start().await;
    relaxed
        .create(json!({"LastName": "A", "Company": "C", "Email": "dup@example.com"}))
        .await;
    assert_eq!(
        relaxed
            .create(json!({"LastName": "B", "Company": "C", "Email": "dup@example.com"}))
            .await
            .status,
        StatusCode::CREATED
    );
}
