//! The dashboard in a real browser: leadwire and the Salesforce emulator started here (fresh
//! database, port 0), then `crates/dashboard/tests/browser/e2e.cjs` drives headless Chromium
//! through the seed page with playwright-core, takes a screenshot of each screen into
//! `target/dashboard-screenshots/` and runs axe-core on each.
//!
//! Needs Node.js, Chromium (`/usr/bin/chromium`, or `LEADWIRE_CHROMIUM`) and the npm packages
//! `playwright-core` and `axe-core` under `target/browser-tests/node_modules` (`.ci/run`
//! installs all three). Without them it prints SKIPPED and passes, except under `CI=true`,
//! where it fails.

mod common;

use std::path::PathBuf;
use std::process::Command;

use leadwire_dashboard::Role;

const PASSWORD: &str = "correct horse battery staple";

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    }
}

struct Tools {
    node: PathBuf,
    chromium: PathBuf,
    modules: PathBuf,
}

/// What the browser test needs, or why it cannot run.
fn tools() -> Result<Tools, String> {
    let node = PathBuf::from("node");
    let works = Command::new(&node)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !works {
        return Err("node is not installed".into());
    }
    let chromium = std::env::var_os("LEADWIRE_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if !chromium.exists() {
        return Err(format!("{} does not exist", chromium.display()));
    }
    let modules = target_dir().join("browser-tests/node_modules");
    for package in ["playwright-core", "axe-core"] {
        if !modules.join(package).join("package.json").exists() {
            return Err(format!(
                "{package} is not installed under {}",
                modules.display()
            ));
        }
    }
    Ok(Tools {
        node,
        chromium,
        modules,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_page_in_headless_chromium() {
    let tools = match tools() {
        Ok(t) => t,
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("the browser test cannot run: {why} (.ci/run installs what it needs)")
        }
        Err(why) => {
            eprintln!("SKIPPED: the dashboard browser test: {why} (.ci/run installs it)");
            return;
        }
    };
    let h = common::harness().await;
    leadwire_dashboard::auth::create_user(
        &h.app.store,
        "editor@example.com",
        Role::Editor,
        PASSWORD,
    )
    .await
    .expect("dashboard user");
    let base = h.emulator.https_url().expect("https");
    let shots = target_dir().join("dashboard-screenshots");
    // Screenshots from an earlier run must not stand in for this run's.
    let _ = std::fs::remove_dir_all(&shots);
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dashboard/tests/browser/e2e.cjs");
    let mut command = Command::new(&tools.node);
    command
        .arg(script)
        .env("NODE_PATH", &tools.modules)
        .env("LW_BASE", h.api.url())
        .env("LW_EMAIL", "editor@example.com")
        .env("LW_PASSWORD", PASSWORD)
        .env("LW_API_KEY", &h.key)
        .env(
            "LW_LEAD_URL",
            format!("{base}/services/data/v60.0/sobjects/Lead/"),
        )
        .env("LW_TOKEN_HEADER", common::token_header(&base))
        .env("LW_SHOTS", &shots)
        .env("LW_CHROMIUM", &tools.chromium);
    // The servers keep running on the runtime's threads while this one waits for the browser.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("joins")
        .expect("node starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the browser run failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("every step passed"), "{stdout}");

    // What the browser did is in leadwire: the template it saved, the lead it saw delivered.
    let templates = h
        .app
        .webhooks
        .list_templates(false, 100, 0)
        .await
        .expect("templates");
    assert!(
        templates
            .iter()
            .any(|t| t.definition.template.name == "Create Lead (browser)")
    );
    for name in [
        "01-sign-in",
        "03-compose",
        "04-preview",
        "05-test-send",
        "07-campaigns",
        "09-activity-live",
        "09b-deliveries",
        "10-canvas",
        "11-german-lint",
        "12-korean-templates",
        "13-korean-activity",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "{name}.png");
    }
}
