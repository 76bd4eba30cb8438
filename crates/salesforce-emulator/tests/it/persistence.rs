use std::path::PathBuf;
use std::time::Duration;

use leadwire_salesforce_emulator::{Emulator, EmulatorConfig};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestOrg, standard_config};

fn temporary_state_file(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "leadwire-emulator-{name}-{}.json",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

#[tokio::test]
async fn state_survives_a_restart() {
    let path = temporary_state_file("restart");
    let config = || EmulatorConfig {
        state_file: Some(path.clone()),
        ..standard_config()
    };
    let org = TestOrg::with(config()).await;
    let kept = org.create_lead("Kept").await;
    let gone = org.create_lead("Gone").await;
    org.call(
        Method::PATCH,
        &format!("sobjects/Lead/{kept}"),
        Some(json!({"Lead_Stage__c": "MQL"})),
    )
    .await;
    org.call(Method::DELETE, &format!("sobjects/Lead/{gone}"), None)
        .await;
    // The writer saves in the background shortly after each change, without waiting for shutdown.
    let mut saved = false;
    for _ in 0..50 {
        if std::fs::read_to_string(&path)
            .is_ok_and(|text| text.contains(&kept) && text.contains("MQL"))
        {
            saved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(saved, "state file written after the change");
    let token = org.token.clone();
    let used = org.emulator.api_requests_used();
    org.emulator.shutdown().await;

    let restarted = Emulator::start(config()).await.expect("restarts");
    let base = restarted.http_url().expect("http");
    let client = crate::helpers::http_client();
    let read = client
        .get(format!("{base}/services/data/v60.0/sobjects/Lead/{kept}"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answer");
    assert_eq!(read.status(), StatusCode::OK, "sessions survive too");
    let limit = read
        .headers()
        .get("sforce-limit-info")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let record: serde_json::Value = read.json().await.expect("json");
    assert_eq!(record["Lead_Stage__c"], "MQL");
    assert_eq!(limit, Some(format!("api-usage={}/100000", used + 1)));
    let deleted = client
        .get(format!("{base}/services/data/v60.0/sobjects/Lead/{gone}"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("answer");
    assert_eq!(deleted.status(), StatusCode::NOT_FOUND);
    assert_eq!(restarted.lead_count(), 1);
    // New ids continue after the restored ones.
    let created = client
        .post(format!("{base}/services/data/v60.0/sobjects/Lead/"))
        .bearer_auth(&token)
        .json(&json!({"LastName": "New", "Company": "C"}))
        .send()
        .await
        .expect("answer");
    let new_id = created.json::<serde_json::Value>().await.expect("json")["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(new_id.as_str() > gone.as_str());
    restarted.shutdown().await;
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn a_corrupt_state_file_stops_the_start() {
    let path = temporary_state_file("corrupt");
    std::fs::write(&path, "{not json").expect("written");
    let result = Emulator::start(EmulatorConfig {
        state_file: Some(path.clone()),
        ..standard_config()
    })
    .await;
    assert!(result.is_err());
    let _ = std::fs::remove_file(&path);
}
