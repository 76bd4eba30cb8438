//! `leadwire serve` as an operator runs it: JSON log lines when stderr is a file, `/healthz`,
//! `/readyz` and `/metrics` without an API key, and a clean stop on SIGTERM.

use std::ffi::OsString;
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::{free_port, start_serve};

async fn get(port: u16, path: &str) -> (u16, String) {
    let r = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .expect("request");
    (r.status().as_u16(), r.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_json_answers_health_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("dir");
    let log = dir.path().join("serve.log");
    let port = free_port();
    let args: Vec<OsString> = vec!["--data-dir".into(), dir.path().join("data").into()];
    let mut child = start_serve(port, &args, &log);

    assert_eq!(get(port, "/healthz").await.0, 200);
    // The workers start with the server; allow them a moment on a busy machine.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ready = get(port, "/readyz").await;
    while ready.0 != 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        ready = get(port, "/readyz").await;
    }
    assert_eq!(ready.0, 200, "{}", ready.1);
    // A refused request: answered with its id, and its log line carries the same id.
    let refused = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/users/track"))
        .header("x-request-id", "ops-test-1")
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status().as_u16(), 401);
    assert_eq!(refused.headers()["x-request-id"], "ops-test-1");
    // The workers' claims are store transactions: they show up within a few polls.
    let mut metrics = get(port, "/metrics").await;
    while !metrics
        .1
        .contains("leadwire_store_transaction_seconds_count")
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        metrics = get(port, "/metrics").await;
    }
    assert_eq!(metrics.0, 200);
    assert!(
        metrics
            .1
            .contains("leadwire_store_transaction_seconds_count"),
        "{}",
        metrics.1
    );

    // The shell's own `kill`, so the test needs no procps on the machine.
    let killed = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status:?}");

    let text = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!lines.is_empty(), "nothing logged");
    assert!(
        !text.contains('\u{1b}'),
        "no colour codes in a file: {text}"
    );
    let said = |what: &str| {
        lines.iter().any(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(what))
        })
    };
    assert!(said("shutting down"), "{text}");
    assert!(
        lines.iter().any(|l| l["span"]["request_id"] == "ops-test-1"
            && l["fields"]["status"] == 401
            && l["span"]["path"] == "/users/track"),
        "the refused request's line carries its id: {text}"
    );
    assert!(said("stopped cleanly"), "{text}");
}
