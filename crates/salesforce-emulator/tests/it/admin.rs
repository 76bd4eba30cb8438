use clap::Parser;
use leadwire_salesforce_emulator::cli::{EmulatorArgs, run};
use leadwire_salesforce_emulator::{FaultKind, RequestLogEntry};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestOrg;

async fn admin(
    org: &TestOrg,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> crate::helpers::Answer {
    let mut request = org
        .client
        .request(method, format!("{}/__admin/{path}", org.base));
    if let Some(body) = body {
        request = request.json(&body);
    }
    org.send(request).await
}

#[tokio::test]
async fn admin_api_lists_counts_dumps_logs_and_resets() {
    let org = TestOrg::start().await;
    let kept = org.create_lead("Kept").await;
    let gone = org.create_lead("Gone").await;
    org.call(Method::DELETE, &format!("sobjects/Lead/{gone}"), None)
        .await;

    let leads = admin(&org, Method::GET, "leads", None).await;
    assert_eq!(leads.status, StatusCode::OK);
    assert_eq!(leads.body.as_array().map(Vec::len), Some(1));
    assert_eq!(leads.body[0]["Id"], kept.as_str());
    let with_deleted = admin(&org, Method::GET, "leads?include_deleted=true", None).await;
    assert_eq!(with_deleted.body.as_array().map(Vec::len), Some(2));
    assert_eq!(
        admin(&org, Method::GET, "leads/count", None).await.body,
        json!({"live": 1, "deleted": 1})
    );
    let dump = admin(&org, Method::GET, "state", None).await;
    assert_eq!(dump.body["api_usage"], json!({"used": 3, "max": 100000}));
    assert_eq!(dump.body["leads"].as_array().map(Vec::len), Some(2));

    let log: Vec<RequestLogEntry> =
        serde_json::from_value(admin(&org, Method::GET, "requests", None).await.body)
            .expect("log entries");
    assert_eq!(log.len(), 3, "admin calls are not in the request log");
    assert_eq!(log[0].method, "POST");
    assert_eq!(log[0].path, "/services/data/v60.0/sobjects/Lead/");
    assert_eq!(log[0].status, Some(201));
    assert_eq!(log[2].status, Some(204));
    let since: Vec<RequestLogEntry> = serde_json::from_value(
        admin(
            &org,
            Method::GET,
            &format!("requests?since={}", log[2].seq),
            None,
        )
        .await
        .body,
    )
    .expect("log");
    assert_eq!(since.len(), 1);

    let noop = admin(&org, Method::GET, "noop", None).await;
    assert_eq!(noop.status, StatusCode::NO_CONTENT);
    assert_eq!(
        admin(&org, Method::POST, "reset", None).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        admin(&org, Method::GET, "leads/count", None).await.body,
        json!({"live": 0, "deleted": 0})
    );
    let after_reset = org.call(Method::GET, "limits", None).await;
    assert_eq!(
        after_reset.status,
        StatusCode::UNAUTHORIZED,
        "reset ends sessions"
    );
}

#[tokio::test]
async fn faults_can_be_changed_at_run_time_and_bad_settings_are_refused() {
    let org = TestOrg::start().await;
    let set = admin(
        &org,
        Method::PUT,
        "faults",
        Some(json!({"seed": 5, "unavailable": 1.0})),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK);
    assert_eq!(set.body["unavailable"], 1.0);
    assert_eq!(
        org.call(Method::GET, "limits", None).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let current = admin(&org, Method::GET, "faults", None).await;
    assert_eq!(current.body["seed"], 5);
    for bad in [
        json!({"unavailable": 1.5}),
        json!({"unavailable": 0.6, "internal_error": 0.6}),
        json!({"nonsense": 1}),
    ] {
        let refused = admin(&org, Method::PUT, "faults", Some(bad.clone())).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(refused.body["error"].is_string());
    }
    admin(&org, Method::PUT, "faults", Some(json!({}))).await;
    assert_eq!(
        org.call(Method::GET, "limits", None).await.status,
        StatusCode::OK
    );
    let revoked = admin(&org, Method::POST, "revoke-tokens", None).await;
    assert_eq!(revoked.body["revoked"], 1);
    assert_eq!(
        org.call(Method::GET, "limits", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let log = org.emulator.request_log();
    assert_eq!(log[0].fault, Some(FaultKind::Unavailable));
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: EmulatorArgs,
}

#[tokio::test]
async fn the_admin_cli_talks_to_a_running_emulator() {
    let org = TestOrg::start().await;
    org.create_lead("Cli").await;
    for action in [
        vec!["count"],
        vec!["leads", "--include-deleted"],
        vec!["dump"],
        vec!["requests", "--since", "0"],
        vec!["faults"],
    ] {
        let mut argv = vec!["salesforce-emulator", "admin", "--url", org.base.as_str()];
        argv.extend(action.iter().copied());
        let cli = Cli::try_parse_from(&argv).expect("arguments parse");
        run(cli.args)
            .await
            .unwrap_or_else(|error| panic!("{action:?}: {error:#}"));
    }
    let set = Cli::try_parse_from([
        "salesforce-emulator",
        "admin",
        "--url",
        org.base.as_str(),
        "set-faults",
        r#"{"seed":3,"internal_error":1.0}"#,
    ])
    .expect("parse");
    run(set.args).await.expect("faults set");
    assert_eq!(
        org.call(Method::GET, "limits", None).await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let reset = Cli::try_parse_from([
        "salesforce-emulator",
        "admin",
        "--url",
        org.base.as_str(),
        "reset",
    ])
    .expect("parse");
    run(reset.args).await.expect("reset");
    assert_eq!(org.emulator.lead_count(), 0);
    // An unreachable emulator is an error, not a panic.
    let nowhere = Cli::try_parse_from([
        "salesforce-emulator",
        "admin",
        "--url",
        "http://127.0.0.1:1",
        "count",
    ])
    .expect("parse");
    assert!(run(nowhere.args).await.is_err());
}

#[test]
fn serve_flags_resolve_into_a_configuration() {
    let cli = Cli::try_parse_from([
        "salesforce-emulator",
        "--listen",
        "127.0.0.1:0",
        "--client-id",
        "a",
        "--client-secret",
        "s",
        "--custom-field",
        "Lead_Stage__c:string:255",
        "--external-id-field",
        "Ext_Id__c",
        "--fault-500",
        "0.25",
        "--fault-seed",
        "9",
        "--duplicate-rule-email",
    ])
    .expect("parse");
    let config =
        leadwire_salesforce_emulator::cli::config_from_args(&cli.args.serve).expect("config");
    assert_eq!(config.connected_apps[0].client_id, "a");
    assert_eq!(f64::from(config.faults.internal_error), 0.25);
    assert_eq!(config.faults.seed, 9);
    assert!(config.duplicate_rule_on_email);
    assert!(
        Cli::try_parse_from(["salesforce-emulator", "--fault-500", "2"]).is_err(),
        "shares above 1 are refused"
    );
    let unpaired = Cli::try_parse_from(["salesforce-emulator", "--client-id", "a"]).expect("parse");
    assert!(leadwire_salesforce_emulator::cli::config_from_args(&unpaired.args.serve).is_err());
}
