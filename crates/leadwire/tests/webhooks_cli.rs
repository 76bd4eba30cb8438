//! `leadwire templates test-send` and `leadwire activity tail` as a user runs them.

use std::process::Command;

fn leadwire() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leadwire"))
}

#[test]
fn test_send_refuses_loopback_and_activity_tail_shows_it() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let template = dir.path().join("t.json");
    std::fs::write(
        &template,
        r#"{"name": "t", "url": "http://127.0.0.1:9/x", "body": {"a": "{{${first_name}}}"}}"#,
    )
    .expect("write");
    let user = dir.path().join("u.json");
    std::fs::write(&user, r#"{"profile": {"first_name": "Ada"}}"#).expect("write");

    let out = leadwire()
        .args(["templates", "test-send", "--template-file"])
        .arg(&template)
        .arg("--user")
        .arg(&user)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(result["sent"], true);
    assert_eq!(result["request"]["body"], r#"{"a":"Ada"}"#);
    assert!(
        result["error"]
            .as_str()
            .expect("error")
            .contains("it is a loopback address; allowlist the host to permit it"),
        "{result}"
    );

    let out = leadwire()
        .args([
            "activity",
            "tail",
            "--no-follow",
            "--type",
            "test_send",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("[TEST SEND] POST http://127.0.0.1:9/x"),
        "{text}"
    );

    let out = leadwire()
        .args([
            "activity",
            "tail",
            "--no-follow",
            "--type",
            "bounces",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown activity type 'bounces'"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
