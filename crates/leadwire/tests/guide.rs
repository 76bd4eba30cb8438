//! `docs/guide.md`, run as a reader would: every `sh` block in order, in one shell, in a fresh
//! folder holding a copy of `examples/`, with this build's `leadwire` first on the `PATH`. The
//! guide's fixed ports are swapped for free ones so the test can run beside others. It needs bash,
//! curl and python3 (as the guide does); without them it says why and skips, except under
//! `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The guide's shell blocks, in order.
fn shell_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut rest = markdown;
    while let Some(start) = rest.find("```sh\n") {
        rest = &rest[start + "```sh\n".len()..];
        let Some(end) = rest.find("```") else { break };
        blocks.push(rest[..end].to_owned());
        rest = &rest[end + 3..];
    }
    blocks
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn missing_tools() -> Vec<&'static str> {
    ["bash", "curl", "python3"]
        .into_iter()
        .filter(|tool| {
            Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_or(true, |s| !s.success())
        })
        .collect()
}

#[test]
fn the_guide_runs_as_written() {
    let missing = missing_tools();
    if !missing.is_empty() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "the guide needs {missing:?} under CI=true"
        );
        eprintln!("SKIPPED: the guide needs {missing:?}");
        return;
    }
    let guide = std::fs::read_to_string(repo().join("docs/guide.md")).expect("docs/guide.md");
    let blocks = shell_blocks(&guide);
    assert!(
        blocks.len() >= 8,
        "the guide's commands were read: {blocks:?}"
    );

    let dir = tempfile::tempdir().expect("dir");
    copy_dir(&repo().join("examples"), &dir.path().join("examples")).expect("copy examples");
    let mut script = String::from(
        "set -euo pipefail\n\
         # Whatever happens, the guide's background processes end with it.\n\
         trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n",
    );
    for block in &blocks {
        script.push_str(block);
        script.push('\n');
    }
    for fixed in ["127.0.0.1:4000", "127.0.0.1:8080", "127.0.0.1:8443"] {
        script = script.replace(fixed, &format!("127.0.0.1:{}", free_port()));
    }
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_leadwire"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .expect("PATH");
    let stdout_file = dir.path().join("stdout.txt");
    let stderr_file = dir.path().join("stderr.txt");
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_file).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_file).expect("stderr file"))
        .spawn()
        .expect("bash runs");
    // A hang guard only: the guide waits for conditions, never for a time.
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the guide did not finish in 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = std::fs::read_to_string(&stdout_file).unwrap_or_default();
    let err = std::fs::read_to_string(&stderr_file).unwrap_or_default();
    assert!(status.success(), "the guide failed:\n{out}\n{err}");
    for expected in [
        "checked 7 document(s): no errors",
        "applied campaign 'New lead'",
        "'Vorname' is German for 'FirstName' (write 'FirstName')",
        "the linter found what to fix",
        "REQUIRED_FIELD_MISSING",
        "\"salesforce_lead_id\":\"00Q",
        "\"outcome\":\"rendered\"",
        "[TEST SEND] POST",
        "\"Lead_Stage__c\": \"MQL\"",
    ] {
        assert!(
            out.contains(expected),
            "the guide's output lacks {expected:?}:\n{out}\n{err}"
        );
    }
}
