//! OpenTelemetry export: `leadwire serve` with `OTEL_EXPORTER_OTLP_ENDPOINT` set sends its spans
//! to a collector over OTLP/HTTP, and a lead's send can be followed in one trace from the
//! caller's `/users/track` request, through the campaign that picked up its trigger, to the
//! delivery that got Salesforce's 201, across the store's queue in between.
//!
//! The collector is a stand-in that keeps every OTLP/JSON body it is sent.

mod common;

use std::collections::HashMap;
use std::ffi::OsString;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, start_serve_with_env};
use leadwire_salesforce_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig,
};
use serde_json::{Value as Json, json};

/// A collector's `/v1/traces`, keeping the bodies.
async fn collector() -> (String, Arc<Mutex<Vec<Json>>>) {
    let bodies: Arc<Mutex<Vec<Json>>> = Arc::default();
    let kept = bodies.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let kept = kept.clone();
            async move {
                let parsed: Json = serde_json::from_slice(&body).expect("OTLP/JSON body");
                kept.lock().expect("lock").push(parsed);
                ([("content-type", "application/json")], "{}")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, bodies)
}

/// One exported span, flattened.
#[derive(Debug, Clone)]
struct Span {
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: HashMap<String, Json>,
    service: String,
}

fn spans(bodies: &[Json]) -> Vec<Span> {
    let mut out = Vec::new();
    for body in bodies {
        for resource in body["resourceSpans"].as_array().into_iter().flatten() {
            let service = resource["resource"]["attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["key"] == "service.name")
                .and_then(|a| a["value"]["stringValue"].as_str())
                .unwrap_or_default()
                .to_owned();
            for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                for s in scope["spans"].as_array().into_iter().flatten() {
                    let attributes = s["attributes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|a| {
                            let v = &a["value"];
                            // OTLP/JSON writes 64-bit integers as strings.
                            let value = v
                                .get("stringValue")
                                .or_else(|| v.get("intValue"))
                                .or_else(|| v.get("boolValue"))
                                .cloned()
                                .unwrap_or(Json::Null);
                            (a["key"].as_str().unwrap_or_default().to_owned(), value)
                        })
                        .collect();
                    let text = |k: &str| s[k].as_str().unwrap_or_default().to_lowercase();
                    out.push(Span {
                        name: s["name"].as_str().unwrap_or_default().to_owned(),
                        trace_id: text("traceId"),
                        span_id: text("spanId"),
                        parent_span_id: text("parentSpanId"),
                        attributes,
                        service: service.clone(),
                    });
                }
            }
        }
    }
    out
}

fn attribute(span: &Span, key: &str) -> String {
    match span.attributes.get(key) {
        Some(Json::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lead_is_one_trace_from_users_track_to_salesforces_answer() {
    let (collector_url, bodies) = collector().await;
    let emulator = Emulator::start(EmulatorConfig::loopback_with_https())
        .await
        .expect("emulator");
    let instance = emulator.https_url().expect("https");
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let db = leadwire_store::testing::test_database(&data);
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, emulator.ca_pem().expect("ca")).expect("write ca");
    let examples = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/salesforce-sales-cloud"
    );
    let mut apply: Vec<OsString> = vec!["apply".into(), examples.into()];
    apply.extend(common::database_args(&data, &db));
    common::run_leadwire(
        &apply,
        &[
            ("SALESFORCE_INSTANCE_URL", instance.clone()),
            ("SALESFORCE_CLIENT_ID", DEFAULT_CLIENT_ID.into()),
            ("SALESFORCE_CLIENT_SECRET", DEFAULT_CLIENT_SECRET.into()),
        ],
    );
    let key = common::create_api_key(&data, &db, &["users.track"]);

    let port = free_port();
    let mut args = common::database_args(&data, &db);
    args.extend(
        ["--ca-cert".into(), ca.into_os_string()]
            .into_iter()
            .chain(["--allow-host", "localhost"].map(OsString::from)),
    );
    let mut child = start_serve_with_env(
        port,
        &args,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector_url),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".into()),
            ("OTEL_SERVICE_NAME", "leadwire-trace-test".into()),
        ],
        &dir.path().join("serve.log"),
    );

    // The caller traces its own work and hands leadwire its context (W3C Trace Context).
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let tracked = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/users/track"))
        .bearer_auth(&key)
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .json(&json!({"attributes": [{
            "external_id": "traced-1", "first_name": "Ana", "last_name": "Silva",
            "email": "ana@example.com", "company": "Acme"
        }]}))
        .send()
        .await
        .expect("track");
    assert_eq!(tracked.status().as_u16(), 201);

    let deadline = Instant::now() + Duration::from_secs(120);
    while emulator.lead_count() < 1 {
        assert!(Instant::now() < deadline, "no lead was created");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SIGTERM: leadwire exports the spans it still holds before it exits.
    let killed = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let spans = spans(&bodies.lock().expect("lock"));
    let in_trace: Vec<&Span> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
    let names: Vec<&str> = in_trace.iter().map(|s| s.name.as_str()).collect();
    let find = |name: &str| {
        in_trace.iter().find(|s| s.name == name).unwrap_or_else(|| {
            panic!(
                "no '{name}' span in the caller's trace; spans in it: {names:?}; all: {:?}",
                spans
                    .iter()
                    .map(|s| (&s.name, &s.trace_id))
                    .collect::<Vec<_>>()
            )
        })
    };
    let request = find("request");
    let delivery = find("delivery");
    let chain: Vec<(&str, &str, &str)> = in_trace
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.span_id.as_str(),
                s.parent_span_id.as_str(),
            )
        })
        .collect();
    // One chain: the caller's span -> the request -> the campaign's pass over one of the
    // request's triggers (the new email) -> the delivery, each the parent of the next.
    assert_eq!(request.parent_span_id, caller_span);
    assert_eq!(attribute(request, "path"), "/users/track");
    assert_eq!(attribute(request, "http.response.status_code"), "201");
    let trigger = in_trace
        .iter()
        .find(|s| s.span_id == delivery.parent_span_id)
        .unwrap_or_else(|| panic!("the delivery's parent is not in the trace: {chain:?}"));
    assert_eq!(trigger.name, "campaign trigger", "{chain:?}");
    assert_eq!(trigger.parent_span_id, request.span_id, "{chain:?}");
    assert!(
        !attribute(delivery, "campaign").is_empty(),
        "{:?}",
        delivery.attributes
    );
    assert_eq!(attribute(delivery, "outcome"), "delivered");
    assert_eq!(attribute(delivery, "http.response.status_code"), "201");
    assert!(
        attribute(delivery, "url.full").ends_with("/services/data/v60.0/sobjects/Lead/"),
        "{:?}",
        delivery.attributes
    );
    assert_eq!(delivery.service, "leadwire-trace-test");
}
