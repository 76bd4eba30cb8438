//! The real `leadwire` binary as a child process: finding (or building) it, running its
//! commands, starting `leadwire serve` and reading what `/proc` says about it.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};

/// Which build of `leadwire` to use: the one next to this executable (same profile) when it is
/// newer than every source file of the workspace (as after `cargo test --workspace`, which builds
/// it), else a fresh `cargo build` of it into `target/bench-leadwire`. `LEADWIRE_BIN` names one
/// explicitly.
pub fn leadwire_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("LEADWIRE_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("finding this executable")?;
    // target/<profile>/leadwire-bench, or target/<profile>/deps/<test> for integration tests.
    let profile_dir = exe
        .ancestors()
        .skip(1)
        .find(|d| d.file_name().is_some_and(|n| n != "deps"))
        .map(Path::to_path_buf)
        .context("this executable has no profile directory")?;
    let release = profile_dir.file_name().is_some_and(|n| n != "debug");
    let sibling = profile_dir.join("leadwire");
    let newest_source = newest_mtime(&crate::workspace_root().join("crates"));
    let fresh = std::fs::metadata(&sibling)
        .and_then(|m| m.modified())
        .is_ok_and(|built| newest_source.is_none_or(|src| built >= src));
    if fresh {
        return Ok(sibling);
    }
    build_leadwire(release)
}

/// The newest modification time of a `.rs` or `Cargo.toml` file below `dir` (outside `target`).
fn newest_mtime(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                // This crate's own sources do not make the leadwire binary stale.
                if path
                    .file_name()
                    .is_some_and(|n| n != "target" && n != "bench")
                {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") || path.ends_with("Cargo.toml") {
                let modified = meta.modified().ok();
                if modified > newest {
                    newest = modified;
                }
            }
        }
    }
    newest
}

/// `cargo build -p leadwire`, returning the executable cargo reports.
fn build_leadwire(release: bool) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = crate::workspace_root().join("Cargo.toml");
    let mut command = Command::new(cargo);
    command
        // With this crate selected too, features resolve as for `cargo build -p leadwire-bench
        // -p leadwire`, so the two commands share their artifacts.
        .args(["build", "-p", "leadwire", "-p", "leadwire-bench"])
        .args(["--message-format", "json-render-diagnostics"])
        .arg("--manifest-path")
        .arg(&manifest)
        .stderr(Stdio::inherit());
    if release {
        command.arg("--release");
    }
    eprintln!(
        "building the leadwire binary (cargo build -p leadwire{})",
        { if release { " --release" } else { "" } }
    );
    // A target directory of its own: a `cargo test` or `cargo run` that started us still holds
    // the lock on the usual one, and would wait for us forever.
    command.env(
        "CARGO_TARGET_DIR",
        crate::target_dir().join("bench-leadwire"),
    );
    let out = command.output().context("running cargo build")?;
    if !out.status.success() {
        bail!("cargo build -p leadwire failed ({})", out.status);
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "leadwire")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .context("cargo build did not report the leadwire executable")
}

/// Runs a `leadwire` command to completion; its standard output, or an error with its
/// standard error.
pub fn run(bin: &Path, args: &[OsString], env: &[(&str, String)]) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "leadwire {args:?} exited {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Creates an API key with `permissions` through `leadwire api-keys create`; returns it.
pub fn create_api_key(bin: &Path, data: &Path, permissions: &[&str]) -> anyhow::Result<String> {
    let mut args: Vec<OsString> = vec![
        "api-keys".into(),
        "create".into(),
        "--data-dir".into(),
        data.into(),
    ];
    for p in permissions {
        args.push("--permission".into());
        args.push((*p).into());
    }
    let out = run(bin, &args, &[])?;
    out.lines()
        .last()
        .map(|l| l.trim().to_owned())
        .filter(|k| !k.is_empty())
        .context("leadwire api-keys create printed no key")
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A running `leadwire serve`.
pub struct Serve {
    pub child: Child,
    pub port: u16,
    /// From spawning to the "listening on" line.
    pub started_in: Duration,
}

impl Serve {
    /// Starts `leadwire serve --listen 127.0.0.1:PORT ARGS`, standard error appended to `log`;
    /// returns once it says it is listening (at most `limit`).
    pub fn start(
        bin: &Path,
        port: u16,
        args: &[OsString],
        log: &Path,
        limit: Duration,
    ) -> anyhow::Result<Serve> {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let spawned = Instant::now();
        let mut child = Command::new(bin)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .context("starting leadwire serve")?;
        let stdout = child.stdout.take().context("no stdout")?;
        // Read the lines on a thread, so a server that never prints cannot hang us.
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = spawned + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("listening on") => break,
                Ok(_) => continue,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!(
                        "leadwire serve did not start: {}",
                        tail(&std::fs::read_to_string(log).unwrap_or_default(), 2000)
                    );
                }
            }
        }
        Ok(Serve {
            child,
            port,
            started_in: spawned.elapsed(),
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, as `kill -9` sends it; waits for the process to be gone.
    pub fn kill_9(mut self) -> anyhow::Result<()> {
        self.child.kill().context("SIGKILL")?;
        self.child.wait().context("waiting for the killed server")?;
        Ok(())
    }

    /// SIGTERM (through the shell's `kill`), then waits up to `limit` for a clean exit; kills it
    /// if it has not gone by then.
    pub fn stop(mut self, limit: Duration) -> anyhow::Result<()> {
        let _ = Command::new("sh")
            .args(["-c", &format!("kill -TERM {}", self.child.id())])
            .status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Serve {
    /// A server left running by an error on the way is killed, never orphaned.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last `n` characters of a text (for error messages quoting a log).
pub fn tail(text: &str, n: usize) -> &str {
    let start = text.len().saturating_sub(n);
    let start = (start..=text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    &text[start..]
}

/// A `/proc/PID/status` field in KiB (`VmHWM:` is the peak resident set, `VmRSS:` the current).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Bytes in the files directly in `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}
