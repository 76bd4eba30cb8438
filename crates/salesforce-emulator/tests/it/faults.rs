use std::time::Duration;

use leadwire_salesforce_emulator::{EmulatorConfig, FaultKind, FaultSettings, Share};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestOrg, standard_config};

fn share(value: f64) -> Share {
    Share::try_from(value).expect("valid share")
}

#[tokio::test]
async fn injected_500_503_and_429_answers() {
    let org = TestOrg::start().await;
    org.emulator
        .set_faults(FaultSettings {
            internal_error: share(1.0),
            ..Default::default()
        })
        .expect("valid");
    let answer = org.create(json!({"LastName": "L", "Company": "C"})).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.error_code(), "UNKNOWN_EXCEPTION");

    org.emulator
        .set_faults(FaultSettings {
            unavailable: share(1.0),
            ..Default::default()
        })
        .expect("valid");
    let answer = org.create(json!({"LastName": "L", "Company": "C"})).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);

    org.emulator
        .set_faults(FaultSettings {
            too_many_requests: share(1.0),
            retry_after_secs: 7,
            ..Default::default()
        })
        .expect("valid");
    let answer = org.create(json!({"LastName": "L", "Company": "C"})).await;
    assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer.header("retry-after"), Some("7"));
    assert_eq!(
        org.emulator.lead_count(),
        0,
        "answered faults write nothing"
    );
    let kinds: Vec<Option<FaultKind>> = org
        .emulator
        .request_log()
        .iter()
        .map(|entry| entry.fault)
        .collect();
    assert_eq!(
        kinds,
        [
            Some(FaultKind::InternalError),
            Some(FaultKind::Unavailable),
            Some(FaultKind::TooManyRequests)
        ]
    );
}

#[tokio::test]
async fn slow_answers_arrive_after_the_delay_and_trip_client_timeouts() {
    let org = TestOrg::start().await;
    org.emulator
        .set_faults(FaultSettings {
            slow: share(1.0),
            slow_delay_ms: 600,
            ..Default::default()
        })
        .expect("valid");
    let started = std::time::Instant::now();
    let answer = org.create(json!({"LastName": "L", "Company": "C"})).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    assert!(started.elapsed() >= Duration::from_millis(600));
    let timed_out = org
        .request(Method::POST, &org.data_url("sobjects/Lead/"))
        .json(&json!({"LastName": "L", "Company": "C"}))
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(timed_out.is_err_and(|error| error.is_timeout()));
}

#[tokio::test]
async fn dropped_connections_before_and_after_the_write() {
    let org = TestOrg::start().await;
    org.emulator
        .set_faults(FaultSettings {
            drop_before_write: share(1.0),
            ..Default::default()
        })
        .expect("valid");
    let before = org
        .request(Method::POST, &org.data_url("sobjects/Lead/"))
        .json(&json!({"LastName": "L", "Company": "C"}))
        .send()
        .await;
    assert!(before.is_err(), "no answer when dropped before the write");
    assert_eq!(org.emulator.lead_count(), 0);

    org.emulator
        .set_faults(FaultSettings {
            drop_after_write: share(1.0),
            ..Default::default()
        })
        .expect("valid");
    let after = org
        .request(Method::POST, &org.data_url("sobjects/Lead/"))
        .json(&json!({"LastName": "L", "Company": "C"}))
        .send()
        .await;
    assert!(after.is_err(), "no answer when dropped after the write");
    assert_eq!(
        org.emulator.lead_count(),
        1,
        "the write was committed although the client saw no answer"
    );
    let entry = org.emulator.request_log().pop().expect("logged");
    assert_eq!(entry.status, None);
    assert_eq!(entry.fault, Some(FaultKind::DropAfterWrite));
}

#[tokio::test]
async fn the_same_seed_repeats_the_same_faults() {
    let run = || async {
        let settings = FaultSettings {
            seed: 99,
            internal_error: share(0.3),
            unavailable: share(0.2),
            ..Default::default()
        };
        let org = TestOrg::with(EmulatorConfig {
            faults: settings,
            ..standard_config()
        })
        .await;
        let mut statuses = Vec::new();
        for _ in 0..30 {
            statuses.push(org.call(Method::GET, "limits", None).await.status.as_u16());
        }
        statuses
    };
    let first = run().await;
    assert_eq!(first, run().await);
    assert!(
        first.contains(&500) && first.contains(&503) && first.contains(&200),
        "{first:?}"
    );
}

#[tokio::test]
async fn tokens_are_revoked_every_n_seconds() {
    let config = EmulatorConfig {
        faults: FaultSettings {
            revoke_tokens_every_secs: Some(1),
            ..Default::default()
        },
        ..standard_config()
    };
    let org = TestOrg::with(config).await;
    // Wait for a fresh period so the token is issued at its start.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let token = org.emulator.issue_access_token();
    let url = org.data_url("limits");
    let mut saw_ok = false;
    let mut saw_revoked = false;
    for _ in 0..30 {
        let answer = org.send(org.client.get(&url).bearer_auth(&token)).await;
        match answer.status {
            StatusCode::OK if !saw_revoked => saw_ok = true,
            StatusCode::UNAUTHORIZED => {
                assert_eq!(answer.error_code(), "INVALID_SESSION_ID");
                saw_revoked = true;
                break;
            }
            other => panic!("unexpected {other}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(saw_ok && saw_revoked);
    let fresh = org.emulator.issue_access_token();
    assert_ne!(fresh, token);
    assert_eq!(
        org.send(org.client.get(&url).bearer_auth(&fresh))
            .await
            .status,
        StatusCode::OK
    );
}
