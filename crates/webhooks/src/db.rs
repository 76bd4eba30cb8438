//! Connections to the shared database file and this crate's own versioned migrations (tracked in
//! `webhooks_schema_migrations`, apart from the store's `schema_migrations`).

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use rusqlite::Connection;

use crate::WebhookError;

/// `(version, SQL)`. Never edit a released migration: add a new one.
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    r#"
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
        delivery_id TEXT NOT NULL UNIQUE,
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
        write_back_pending TEXT,
        enqueued_at INTEGER NOT NULL,
        finished_at INTEGER
    );
    CREATE INDEX webhook_jobs_due ON webhook_jobs(due_at) WHERE due_at IS NOT NULL;
    CREATE INDEX webhook_jobs_write_back ON webhook_jobs(id) WHERE write_back_pending IS NOT NULL;
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
    "#,
)];

/// Opens a connection to the shared file: WAL, a busy timeout (the store's writer shares the
/// file), foreign keys on.
pub(crate) fn open(path: &Path) -> Result<Connection, WebhookError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| WebhookError::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    let conn = Connection::open(path).map_err(|e| WebhookError::Open {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(conn)
}

/// Applies the migrations not yet applied, each in its own transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), WebhookError> {
    leadwire_store::shared::apply_migrations(conn, "webhooks_schema_migrations", MIGRATIONS)?;
    Ok(())
}

/// Milliseconds since the Unix epoch (how this crate stores times).
pub(crate) fn millis(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn from_millis(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// One connection behind a mutex, used from blocking threads.
pub(crate) struct Db {
    conn: Mutex<Connection>,
}

impl Db {
    pub(crate) fn new(conn: Connection) -> Db {
        Db {
            conn: Mutex::new(conn),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Runs `f` on a connection on a blocking thread.
pub(crate) async fn blocking<T: Send + 'static>(
    db: &std::sync::Arc<Db>,
    f: impl FnOnce(&mut Connection) -> Result<T, WebhookError> + Send + 'static,
) -> Result<T, WebhookError> {
    let db = db.clone();
    tokio::task::spawn_blocking(move || f(&mut db.lock()))
        .await
        .map_err(|e| WebhookError::Database(format!("a database task stopped: {e}")))?
}
