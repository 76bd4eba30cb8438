//! The one schema of leadwire's SQLite file: its connection settings and its versioned
//! migrations, recorded in one ledger (`leadwire_schema`).

use std::path::Path;

use chrono::Utc;
use rusqlite::{Connection, OpenFlags, params};

use crate::StoreError;

/// `(version, SQL)`. Never edit a released migration: add a new one.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
    -- profiles and what hangs off them
    CREATE TABLE profiles (
        id INTEGER PRIMARY KEY,
        braze_id TEXT NOT NULL UNIQUE,
        external_id TEXT UNIQUE,
        email TEXT,
        phone TEXT,
        data TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX profiles_email ON profiles(email) WHERE email IS NOT NULL;
    CREATE INDEX profiles_phone ON profiles(phone) WHERE phone IS NOT NULL;
    CREATE TABLE aliases (
        alias_label TEXT NOT NULL,
        alias_name TEXT NOT NULL,
        profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
        PRIMARY KEY (alias_label, alias_name)
    );
    CREATE INDEX aliases_profile ON aliases(profile_id);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        time TEXT NOT NULL,
        properties TEXT NOT NULL
    );
    CREATE INDEX events_profile ON events(profile_id, name);
    CREATE TABLE purchases (
        id INTEGER PRIMARY KEY,
        profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
        product_id TEXT NOT NULL,
        currency TEXT NOT NULL,
        price REAL NOT NULL,
        quantity INTEGER NOT NULL,
        time TEXT NOT NULL,
        properties TEXT NOT NULL
    );
    CREATE INDEX purchases_profile ON purchases(profile_id);
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        key_hash TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        permissions TEXT NOT NULL,
        created_at TEXT NOT NULL
    );

    -- the trigger feed and its consumers
    CREATE TABLE triggers (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        braze_id TEXT NOT NULL,
        external_id TEXT,
        source TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE feed_positions (consumer TEXT PRIMARY KEY, seq INTEGER NOT NULL);

    -- webhooks
    CREATE TABLE webhook_templates (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        definition TEXT NOT NULL,
        archived INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX webhook_templates_name ON webhook_templates(name) WHERE archived = 0;
    CREATE TABLE webhook_credentials (
        name TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('basic', 'token')),
        username TEXT,
        secret TEXT,
        headers TEXT NOT NULL DEFAULT '[]',
        allowed_domain TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE webhook_jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        -- 96 random bits, never looked up by: no index (a random unique index cost every
        -- enqueue a random page and a statement journal)
        delivery_id TEXT NOT NULL,
        template_id TEXT NOT NULL,
        user_identifier TEXT NOT NULL,
        user_id TEXT NOT NULL,
        campaign_id TEXT,
        step_id TEXT,
        properties TEXT NOT NULL DEFAULT '{}',
        state TEXT NOT NULL DEFAULT 'queued'
            CHECK (state IN ('queued', 'in_flight', 'delivered', 'aborted', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        previous_delay_ms INTEGER,
        claims INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        lease_until INTEGER,
        due_at INTEGER,
        last_status INTEGER,
        last_error TEXT,
        enqueued_at INTEGER NOT NULL,
        finished_at INTEGER
    );
    CREATE INDEX webhook_jobs_due ON webhook_jobs(due_at) WHERE due_at IS NOT NULL;
    CREATE INDEX webhook_jobs_campaign ON webhook_jobs(campaign_id, state);
    CREATE TABLE webhook_activity (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        campaign_id TEXT,
        step_id TEXT,
        user_id TEXT NOT NULL,
        delivery_id TEXT,
        template TEXT,
        attempt INTEGER,
        request TEXT,
        response TEXT,
        message TEXT NOT NULL
    );
    CREATE INDEX webhook_activity_at ON webhook_activity(at);
    CREATE INDEX webhook_activity_campaign ON webhook_activity(campaign_id, id);
    CREATE INDEX webhook_activity_user ON webhook_activity(user_id, id);

    -- campaigns
    CREATE TABLE campaigns (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        spec TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE campaign_sends (
        id INTEGER PRIMARY KEY,
        campaign_id TEXT NOT NULL,
        braze_id TEXT NOT NULL,
        job_id INTEGER NOT NULL,
        dispatch_id TEXT,
        trigger_seq INTEGER,
        sent_at INTEGER NOT NULL
    );
    CREATE INDEX campaign_sends_user ON campaign_sends(campaign_id, braze_id, sent_at);
    -- the delivery-speed limit's last slot, so a restart keeps the pace
    CREATE TABLE campaign_pace (campaign_id TEXT PRIMARY KEY, state TEXT NOT NULL);

    -- Canvases
    CREATE TABLE canvases (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        spec TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE canvas_journeys (
        id INTEGER PRIMARY KEY,
        canvas_id TEXT NOT NULL,
        braze_id TEXT NOT NULL,
        state TEXT NOT NULL,
        status TEXT NOT NULL,
        wake_at INTEGER,
        exit_reason TEXT,
        entered_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX canvas_journeys_user ON canvas_journeys(canvas_id, braze_id, status);
    CREATE INDEX canvas_journeys_due ON canvas_journeys(wake_at) WHERE status = 'active' AND wake_at IS NOT NULL;
    CREATE TABLE canvas_entries (
        canvas_id TEXT NOT NULL,
        braze_id TEXT NOT NULL,
        last_entered_at INTEGER NOT NULL,
        entries INTEGER NOT NULL,
        PRIMARY KEY (canvas_id, braze_id)
    );
    CREATE TABLE canvas_hourly_entries (
        canvas_id TEXT NOT NULL,
        hour INTEGER NOT NULL,
        entries INTEGER NOT NULL,
        PRIMARY KEY (canvas_id, hour)
    );
    CREATE TABLE canvas_step_counts (
        canvas_id TEXT NOT NULL,
        step_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (canvas_id, step_id, kind)
    );
    "#,
    ),
    (
        2,
        // The W3C traceparent of the request that caused a trigger or a job, so a send's spans
        // join the trace of the /users/track call behind it (NULL when traces are not exported).
        r#"
    ALTER TABLE triggers ADD COLUMN trace_context TEXT;
    ALTER TABLE webhook_jobs ADD COLUMN trace_context TEXT;
    "#,
    ),
    (
        3,
        r#"
    -- the web dashboard's sign-in: users (argon2 password hashes) and their sessions (the
    -- token's SHA-256 only)
    CREATE TABLE dashboard_users (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE dashboard_sessions (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES dashboard_users(id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions(expires_at);
    "#,
    ),
];

/// Opens a connection with the file's one set of settings. Read-only connections are for
/// snapshots; the writer's connection also creates the file and its directory.
pub(super) fn open(path: &Path, read_only: bool) -> Result<Connection, StoreError> {
    let failed = |reason: String| StoreError::Open {
        path: path.display().to_string(),
        reason,
    };
    if !read_only && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
    }
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI
    } else {
        OpenFlags::default()
    };
    let conn = Connection::open_with_flags(path, flags).map_err(|e| failed(e.to_string()))?;
    // Profiles, credentials and the activity log are nobody else's business: the file is the
    // owner's alone (SQLite gives its -wal and -shm files the same mode).
    #[cfg(unix)]
    if !read_only {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| failed(e.to_string()))?;
    }
    // WAL: readers never block the writer. NORMAL sync: a commit is durable at the next
    // checkpoint, which WAL makes safe against corruption. A large page cache and in-memory temp
    // store keep big group-commit transactions off the disk until commit.
    // Only a new, empty file takes this (it must precede the first table and the WAL switch);
    // free pages (pruned triggers) can then go back to the file system a batch at a time.
    if !read_only {
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL")
            .map_err(|e| failed(e.to_string()))?;
    }
    let settings = if read_only {
        "PRAGMA busy_timeout = 10000; PRAGMA cache_size = -8192;"
    } else {
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA busy_timeout = 10000; PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY; \
         PRAGMA wal_autocheckpoint = 0;"
    };
    conn.execute_batch(settings)
        .map_err(|e| failed(e.to_string()))?;
    // Every operation's statement stays prepared (rusqlite keeps 16 by default; the store has
    // some sixty, and re-preparing them cost the writer a tenth of its time).
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

/// Applies the migrations not yet in the ledger, each in its own IMMEDIATE transaction that
/// re-checks the ledger, so two processes starting on the same file cannot apply one twice.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // Files from before the store owned every table kept four ledgers; their layout differs
    // (pending-update outboxes, per-engine positions), so they are refused rather than guessed at.
    let legacy: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE type = 'table' AND name IN ('webhooks_schema_migrations', 'engine_schema_migrations', 'canvas_schema_migrations'))",
        [],
        |r| r.get(0),
    )?;
    if legacy {
        return Err(StoreError::Open {
            path: conn.path().unwrap_or_default().to_owned(),
            reason: "this data directory was written by an earlier leadwire (before one store owned every table) and cannot be upgraded in place; start with a fresh --data-dir and re-apply your config with `leadwire apply`".into(),
        });
    }
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS leadwire_schema (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    )?;
    for (version, sql) in MIGRATIONS {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let applied: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM leadwire_schema WHERE version = ?1)",
            [version],
            |r| r.get(0),
        )?;
        if !applied {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO leadwire_schema (version, applied_at) VALUES (?1, ?2)",
                params![version, Utc::now().to_rfc3339()],
            )?;
            tracing::info!(version, "applied migration");
        }
        tx.commit()?;
    }
    Ok(())
}
