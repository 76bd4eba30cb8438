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
    let file = repo().join("testdata/conformance/braze-liquid/braze_liquid.visible.json");
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

#[test]
fn demo_runs_the_worked_example_against_the_emulator() {
    let out = leadwire()
        .args(["demo", "--exit", "--listen", "127.0.0.1:0"])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("campaign 'New lead'"), "{stdout}");
    assert!(
        stdout.contains("leads created in Salesforce       2"),
        "two users with an email and a company become leads:\n{stdout}"
    );
    assert!(
        stdout.contains("José Müller <jose@example.com>") && stdout.contains("민준 김"),
        "{stdout}"
    );
    assert!(
        stdout.contains("failures                          1")
            && stdout.contains("REQUIRED_FIELD_MISSING"),
        "{stdout}"
    );
    assert!(
        stdout.contains("canvas 'Lead Scoring Canvas'")
            && stdout.contains("leads moved to MQL                1"),
        "events raise demo-2's score past 50; only that lead becomes an MQL:\n{stdout}"
    );
}

#[test]
fn apply_reports_errors_with_file_line_and_field() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("c.yaml"), "kind: campaign\nname: New lead\ntemplate: T\ntrigger:\n  type: email_added\nstatuss: active\n").expect("write");
    let out = leadwire()
        .arg("apply")
        .arg(dir.path())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("c.yaml:6: field 'statuss'") && err.contains("nothing was applied"),
        "{err}"
    );
}

#[test]
fn user_errors_print_no_backtrace_even_with_rust_backtrace_set() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("c.yaml"),
        "kind: campaign\nname: New lead\ntemplate: T\ntrigger:\n  type: email_addedd\n",
    )
    .expect("write");
    let out = leadwire()
        .arg("apply")
        .arg(dir.path())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LIB_BACKTRACE", "1")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = dir.path().join("c.yaml");
    assert_eq!(
        err.replace(&file.display().to_string(), "c.yaml"),
        "error: c.yaml:5: field 'trigger.type': campaign 'New lead': unknown variant \
         `email_addedd`, expected one of `email_added`, `attribute_changed`, `custom_event`, \
         `purchase`, `api_triggered`\n"
            .to_owned()
            + &format!(
                "error: 1 error(s) in {}; nothing was applied\n",
                dir.path().display()
            )
    );
}

#[test]
fn apply_check_validates_against_the_schemas_and_writes_nothing() {
    let data = tempfile::tempdir().expect("dir");
    let out = leadwire()
        .args(["apply", "--check"])
        .arg(repo().join("examples/salesforce-sales-cloud"))
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("checked 7 document(s): no errors"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        !data.path().join("data").exists(),
        "--check opens no database"
    );

    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("c.yaml"),
        "kind: credential\nname: sf\ntype: basic\nusername: u\n",
    )
    .expect("write");
    let out = leadwire()
        .args(["apply", "--check"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("breaks schemas/credential.schema.json")
            && err.contains("missing field `password`"),
        "{err}"
    );
}

#[test]
fn apply_loads_the_worked_example() {
    let dir = tempfile::tempdir().expect("dir");
    let out = leadwire()
        .arg("apply")
        .arg(repo().join("examples/salesforce-sales-cloud"))
        .arg("--data-dir")
        .arg(dir.path())
        .env("SALESFORCE_INSTANCE_URL", "https://acme.my.salesforce.com")
        .env("SALESFORCE_CLIENT_ID", "id")
        .env("SALESFORCE_CLIENT_SECRET", "secret")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("applied campaign 'New lead'"), "{stdout}");
    // Applying again updates in place rather than failing on duplicate names.
    let again = leadwire()
        .arg("apply")
        .arg(repo().join("examples/salesforce-sales-cloud"))
        .arg("--data-dir")
        .arg(dir.path())
        .env("SALESFORCE_INSTANCE_URL", "https://acme.my.salesforce.com")
        .env("SALESFORCE_CLIENT_ID", "id")
        .env("SALESFORCE_CLIENT_SECRET", "secret")
        .output()
        .expect("runs");
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(
        String::from_utf8_lossy(&again.stdout)
            .contains("template 'Salesforce Sales Cloud > Create Lead' updated")
    );
}

#[test]
fn api_keys_create_grants_canvas_permissions() {
    let dir = tempfile::tempdir().expect("dir");
    let out = leadwire()
        .args(["api-keys", "create", "--data-dir"])
        .arg(dir.path())
        .args([
            "--permission",
            "canvas.write",
            "--permission",
            "canvas.read",
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("with canvas.write, canvas.read"),
        "{stdout}"
    );
    let key = stdout.lines().last().expect("key line").trim().to_owned();

    // Stored under Braze's names, as the API reads them.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let store = runtime
        .block_on(async {
            leadwire_app::open_store(&leadwire_app::DatabaseConfig::Sqlite(
                leadwire_store::SqliteConfig::new(dir.path().join("leadwire.db")),
            ))
        })
        .expect("store");
    let info = runtime
        .block_on(store.api_key(key))
        .expect("store reads")
        .expect("the printed key exists");
    assert_eq!(info.permissions, ["canvas.write", "canvas.read"]);
}

#[test]
fn api_keys_create_help_lists_every_permission_and_typos_are_refused() {
    let out = leadwire()
        .args(["api-keys", "create", "--help"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("canvas.write"), "{help}");
    for permission in leadwire_api::Permission::ALL {
        assert!(help.contains(permission.as_str()), "{permission}: {help}");
    }

    let dir = tempfile::tempdir().expect("dir");
    let out = leadwire()
        .args(["api-keys", "create", "--data-dir"])
        .arg(dir.path())
        .args(["--permission", "canvas.wirte"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid value 'canvas.wirte'") && err.contains("canvas.write"),
        "{err}"
    );
}

/// A seed page's Create Lead template as a YAML config file, its tables copied as written (the
/// instance and credentials filled in): the translated names are what the linter is about.
fn seed_yaml(prefix: &str) -> String {
    let file = std::fs::read_dir(repo().join("testdata/seeds"))
        .expect("testdata/seeds")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .expect("the seed page");
    let text = std::fs::read_to_string(file).expect("seed");
    let rows: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let raw = cells.get(2)?;
            let value = raw
                .strip_prefix("{% raw %}`")
                .and_then(|v| v.strip_suffix("`{% endraw %}"))
                .or_else(|| raw.strip_prefix('`').and_then(|v| v.strip_suffix('`')))?;
            Some((cells[1].to_owned(), value.to_owned()))
        })
        .collect();
    let instance = "https://acme.my.salesforce.com";
    let mut yaml = format!(
        "kind: webhook_template\nname: seed {prefix}\nurl: {instance}/services/data/v60.0/sobjects/Lead/\nmethod: POST\nbody:\n"
    );
    for (k, v) in rows.iter().filter(|(_, v)| v.starts_with("{{")).take(4) {
        yaml.push_str(&format!("  {k}: {v:?}\n"));
    }
    yaml.push_str("headers:\n");
    for (k, v) in rows
        .iter()
        .filter(|(_, v)| v.starts_with("{% connected_content") || *v == "application/json")
        .take(2)
    {
        let v = v.replace("https://[insert_instance_name].my.salesforce.com", instance);
        yaml.push_str(&format!("  {k}: {v:?}\n"));
    }
    yaml
}

#[test]
fn templates_lint_names_file_line_and_the_field_meant() {
    let dir = tempfile::tempdir().expect("dir");
    let german = dir.path().join("de.yaml");
    let yaml = seed_yaml("003_");
    std::fs::write(&german, &yaml).expect("write");
    let out = leadwire()
        .args(["templates", "lint"])
        .arg(&german)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "problems exit 1");
    let text = String::from_utf8_lossy(&out.stdout);
    let line_of = |key: &str| {
        yaml.lines()
            .position(|l| l.trim_start().starts_with(&format!("{key}:")))
            .expect("key in the file")
            + 1
    };
    for (key, meant) in [
        ("Vorname", "FirstName"),
        ("Nachname", "LastName"),
        ("E-Mail", "Email"),
        ("Unternehmen", "Company"),
    ] {
        let want = format!(
            "{}:{}: template 'seed 003_': body key '{key}'",
            german.display(),
            line_of(key)
        );
        let line = text
            .lines()
            .find(|l| l.contains(&want))
            .unwrap_or_else(|| panic!("no warning for {key} in:\n{text}"));
        assert!(line.ends_with(&format!("(write '{meant}')")), "{line}");
    }
    assert!(
        text.contains(&format!(
            "{}:{}: template 'seed 003_': header 'Autorisierung': 'Autorisierung' is German for 'Authorization'",
            german.display(),
            line_of("Autorisierung")
        )),
        "{text}"
    );
    assert!(text.contains("[insert_client_id]"), "placeholders: {text}");

    // Korean header names cannot be sent at all: an error that says which names were meant.
    let korean = dir.path().join("ko.yaml");
    std::fs::write(&korean, seed_yaml("004_")).expect("write");
    let out = leadwire()
        .args(["templates", "lint"])
        .arg(&korean)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("'승인' is Korean for 'Authorization'"),
        "{text}"
    );
    assert!(
        text.contains("'콘텐츠-유형' is Korean for 'Content-Type'"),
        "{text}"
    );

    // The worked example is clean but for the update templates' record id, which is empty for
    // a user without one.
    let out = leadwire()
        .args(["templates", "lint"])
        .arg(repo().join("examples/salesforce-sales-cloud"))
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .filter(|l| l.starts_with("warning:"))
            .all(|l| l.contains("record id")),
        "{text}"
    );
}

#[test]
fn apply_prints_the_linters_warnings_with_file_and_line() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("config");
    std::fs::create_dir(&config).expect("dir");
    let german = config.join("de.yaml");
    std::fs::write(&german, seed_yaml("003_")).expect("write");
    let out = leadwire()
        .args(["apply"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("applied template 'seed 003_' created"),
        "saved despite the warnings"
    );
    assert!(
        stderr.lines().any(
            |l| l.starts_with(&format!("warning: {}:", german.display()))
                && l.contains("body key 'Vorname'")
                && l.ends_with("(write 'FirstName')")
        ),
        "{stderr}"
    );
}

/// Credential secrets are encrypted at rest, and the data files are the owner's alone.
#[test]
fn credential_secrets_are_sealed_and_data_files_private() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).expect("dir");
    std::fs::write(
        config.join("credentials.yaml"),
        "kind: credential\nname: sf\ntype: basic\nusername: client-id\npassword: Very-Secret-Client-Password-42\n",
    )
    .expect("write");
    let data = dir.path().join("data");
    let out = leadwire()
        .arg("apply")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every byte leadwire wrote: the database, its WAL, the key file.
    let mut written = Vec::new();
    for entry in std::fs::read_dir(&data).expect("data dir") {
        let path = entry.expect("entry").path();
        written.extend(std::fs::read(&path).expect("read"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(
                mode & 0o077,
                0,
                "{} is readable by others: {mode:o}",
                path.display()
            );
        }
    }
    let haystack = String::from_utf8_lossy(&written);
    assert!(
        haystack.contains("client-id"),
        "the username is not secret, and is stored"
    );
    assert!(
        !haystack.contains("Very-Secret-Client-Password-42"),
        "the password is stored in clear"
    );
    assert!(data.join("secret.key").exists());
    // A malformed key is refused at start, saying what a key looks like.
    let other = leadwire()
        .arg("apply")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .env("LEADWIRE_SECRET_KEY", "not a key")
        .output()
        .expect("runs");
    assert_eq!(other.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&other.stderr).contains("LEADWIRE_SECRET_KEY is not a key"),
        "{}",
        String::from_utf8_lossy(&other.stderr)
    );
}

#[test]
fn dashboard_users_create_reads_the_password_and_stores_only_its_hash() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().expect("dir");
    // From stdin.
    let mut child = leadwire()
        .args([
            "dashboard-users",
            "create",
            "--email",
            "Ana@Example.com",
            "--role",
            "editor",
            "--data-dir",
        ])
        .arg(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"correct horse battery staple\n")
        .expect("writes");
    let out = child.wait_with_output().expect("waits");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("created dashboard user ana@example.com (editor)")
    );
    // From a file; a short password and an unknown role are refused.
    let file = dir.path().join("password");
    std::fs::write(&file, "short\n").expect("writes");
    let weak = leadwire()
        .args([
            "dashboard-users",
            "create",
            "--email",
            "b@example.com",
            "--role",
            "viewer",
            "--password-file",
        ])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(weak.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&weak.stderr).contains("at least 12 characters"));
    let role = leadwire()
        .args([
            "dashboard-users",
            "create",
            "--email",
            "b@example.com",
            "--role",
            "owner",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert_eq!(
        role.status.code(),
        Some(2),
        "a usage error naming the roles"
    );

    // The password signs in; the store has its argon2 hash, not the password.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let store = leadwire_app::open_store(&leadwire_app::DatabaseConfig::Sqlite(
        leadwire_store::SqliteConfig::new(dir.path().join("leadwire.db")),
    ))
    .expect("store");
    let row = runtime
        .block_on(store.read(|tx| tx.dashboard_user_by_email("ana@example.com")))
        .expect("reads")
        .expect("created");
    assert!(row.password_hash.starts_with("$argon2id$") && !row.password_hash.contains("horse"));
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    let signed_in = runtime
        .block_on(leadwire_dashboard::auth::sign_in(
            &store,
            "ana@example.com",
            "correct horse battery staple",
            expires,
        ))
        .expect("signs in");
    assert_eq!(
        signed_in.map(|(_, user)| user.role),
        Some(leadwire_dashboard::Role::Editor)
    );
}
