//! `leadwire serve` as a child process, for the tests that kill it.

#![allow(dead_code)]

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use leadwire_app::DatabaseConfig;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The command-line options that name `db` (`data` is its directory on SQLite).
pub fn database_args(data: &Path, db: &DatabaseConfig) -> Vec<OsString> {
    let mut args = vec![OsString::from("--data-dir"), data.as_os_str().to_owned()];
    if let DatabaseConfig::Postgres(c) = db {
        args.extend(["--database-url", &c.url, "--database-schema", &c.schema].map(OsString::from));
    }
    args
}

/// Runs a `leadwire` command to completion; returns its standard output, or panics with its
/// standard error.
pub fn run_leadwire(args: &[OsString], env: &[(&str, String)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_leadwire"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("leadwire runs");
    assert!(
        out.status.success(),
        "leadwire {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Creates an API key through the CLI; returns it.
pub fn create_api_key(data: &Path, db: &DatabaseConfig, permissions: &[&str]) -> String {
    let mut args: Vec<OsString> = vec!["api-keys".into(), "create".into()];
    args.extend(database_args(data, db));
    for p in permissions {
        args.push("--permission".into());
        args.push((*p).into());
    }
    run_leadwire(&args, &[])
        .lines()
        .last()
        .expect("key line")
        .trim()
        .to_owned()
}

/// Starts `leadwire serve` with `args` (after `serve --listen`); returns the child once the API
/// answers. Its standard error goes to `log`.
pub fn start_serve(port: u16, args: &[OsString], log: &Path) -> Child {
    start_serve_with_env(port, args, &[], log)
}

/// [`start_serve`] with extra environment variables.
pub fn start_serve_with_env(
    port: u16,
    args: &[OsString],
    env: &[(&str, String)],
    log: &Path,
) -> Child {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_leadwire"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("leadwire serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "server did not start");
        match lines.next() {
            Some(Ok(line)) if line.contains("listening on") => break,
            Some(_) => continue,
            None => panic!(
                "server exited: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            ),
        }
    }
    std::thread::spawn(move || for _ in lines {});
    child
}
