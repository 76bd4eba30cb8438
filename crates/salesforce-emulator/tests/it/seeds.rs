//! The seed pages (`testdata/seeds/*.txt`, one Braze doc page in five languages) carry a Create Lead body
//! table whose keys were translated by mistake. Salesforce must accept the camelCase keys and reject
//! every translated one with INVALID_FIELD.

use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::helpers::TestOrg;

/// The body keys of each seed's Create Lead table, in table order, as written in the file.
const SEED_BODY_KEYS: [(&str, [&str; 4]); 5] = [
    // 000_f78bf11a570f1103.txt (Portuguese): `email` was left untranslated.
    (
        "000_f78bf11a570f1103.txt",
        ["primeiroNome", "sobrenome", "email", "empresa"],
    ),
    // 001_f4d123c3c30b9225.txt (Spanish): `firstName` was left untranslated.
    (
        "001_f4d123c3c30b9225.txt",
        ["firstName", "apellido", "correo electrónico", "empresa"],
    ),
    // 002_d29cf2f0919eb42d.txt (French): `firstName` and `lastName` were left untranslated.
    (
        "002_d29cf2f0919eb42d.txt",
        ["firstName", "lastName", "e-mail", "entreprise"],
    ),
    // 003_4f93c4e6970171f8.txt (German).
    (
        "003_4f93c4e6970171f8.txt",
        ["Vorname", "Nachname", "E-Mail", "Unternehmen"],
    ),
    // 004_0cca35475d2e62b0.txt (Korean).
    ("004_0cca35475d2e62b0.txt", ["이름", "성", "이메일", "회사"]),
];

/// The body as Braze renders the documented template: camelCase keys.
const BRAZE_KEYS: [&str; 4] = ["firstName", "lastName", "email", "company"];
const VALUES: [&str; 4] = ["Ada", "Lovelace", "ada@example.com", "Analytical Engines"];

fn body(keys: &[&str]) -> Value {
    let object: Map<String, Value> = keys
        .iter()
        .zip(VALUES)
        .map(|(key, value)| ((*key).to_owned(), Value::from(value)))
        .collect();
    Value::Object(object)
}

#[tokio::test]
async fn the_braze_create_and_update_requests_succeed() {
    let org = TestOrg::start().await;
    let created = org.create(body(&BRAZE_KEYS)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let record = org
        .call(Method::GET, &format!("sobjects/Lead/{id}"), None)
        .await;
    assert_eq!(record.body["FirstName"], "Ada");
    assert_eq!(record.body["LastName"], "Lovelace");
    assert_eq!(record.body["Email"], "ada@example.com");
    assert_eq!(record.body["Company"], "Analytical Engines");
    // The seed's Update Lead webhook: PATCH by id with the custom stage field.
    let updated = org
        .call(
            Method::PATCH,
            &format!("sobjects/Lead/{id}"),
            Some(json!({"Lead_Stage__c": "MQL"})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::NO_CONTENT);
    let record = org
        .call(Method::GET, &format!("sobjects/Lead/{id}"), None)
        .await;
    assert_eq!(record.body["Lead_Stage__c"], "MQL");
}

#[tokio::test]
async fn every_translated_key_of_every_seed_is_rejected() {
    let org = TestOrg::start().await;
    let is_translated = |key: &str| !BRAZE_KEYS.contains(&key);
    for (seed, keys) in SEED_BODY_KEYS {
        // The whole body as the seed writes it: the first translated key, in body order, is reported.
        let first_translated = keys
            .iter()
            .copied()
            .find(|key| is_translated(key))
            .expect("each seed has translated keys");
        let answer = org.create(body(&keys)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{seed}");
        assert_eq!(
            answer.body,
            json!([{"message": format!("No such column '{first_translated}' on sobject of type Lead"), "errorCode": "INVALID_FIELD"}]),
            "{seed}"
        );
        // Each translated key alone, in an otherwise correct body.
        for (position, key) in keys
            .iter()
            .enumerate()
            .filter(|(_, key)| is_translated(key))
        {
            let mut mixed = BRAZE_KEYS;
            mixed[position] = key;
            let answer = org.create(body(&mixed)).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{seed}: {key}");
            assert_eq!(answer.error_code(), "INVALID_FIELD", "{seed}: {key}");
            assert_eq!(
                answer.message(),
                format!("No such column '{key}' on sobject of type Lead"),
                "{seed}: {key}"
            );
        }
    }
    assert_eq!(
        org.emulator.lead_count(),
        0,
        "no translated body created a lead"
    );
}
