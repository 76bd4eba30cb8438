//! The binary end to end: `templates render` and `liquid golden` as a user runs them.

use std::path::PathBuf;
use std::process::Command;

fn leadwire() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leadwire"))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn templates_render_prints_the_body() {
    let out = leadwire()
        .args(["templates", "render", "--template"])
        .arg(repo().join("examples/templates/create_lead_body.liquid"))
        .arg("--user")
        .arg(repo().join("examples/templates/jose.json"))
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the rendered body is JSON");
    assert_eq!(body["firstName"], "José");
    assert_eq!(body["company"], "Acme \"Global\" 주식회사");
}

#[test]
fn abort_exits_3_with_the_reason() {
    let out = leadwire()
        .args([
            "templates",
            "render",
            "--inline",
            "{% abort_message('not at threshold') %}",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "aborted: not at threshold"
    );
}

#[test]
fn syntax_errors_name_line_and_column() {
    let out = leadwire()
        .args([
            "templates",
            "render",
            "--inline",
            "ok\n{% if x %}never closed",
        ])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'if' is never closed") && err.contains("line 2, column 1"),
        "{err}"
    );
}

#[test]
fn golden_runner_ends_with_the_counts() {
    let file = repo().join("../shared/conformance/braze-liquid/braze_liquid.visible.json");
    if !file.exists() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "conformance data missing under CI=true"
        );
        eprintln!("SKIPPED: {} is missing", file.display());
        return;
    }
    let out = leadwire()
        .args(["liquid", "golden"])
        .arg(&file)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().last(),
        Some("32 passed, 0 failed"),
        "{stdout}"
    );
    assert!(out.status.success());
}
