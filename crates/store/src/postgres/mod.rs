//! The PostgreSQL backend: several leadwire nodes on one database.
//!
//! Each [`crate::Store::transact`] runs on a pooled connection, on a blocking thread, inside one
//! `READ COMMITTED` transaction; [`crate::Store::read`] inside a `REPEATABLE READ READ ONLY` one.
//! Work shared between nodes is made safe by the database, not by this process:
//!
//! - a profile is locked (`FOR UPDATE`) by the transaction that loads it to change it;
//! - a feed consumer's advisory lock is held for the whole pass that moves its position, so one
//!   node at a time consumes a consumer's triggers (and wakes its due journeys);
//! - jobs are claimed with `FOR UPDATE SKIP LOCKED` and leased, so a dead node's jobs go back to
//!   the others when the lease runs out;
//! - trigger positions are `transaction id << 24 | index`, and readers take only positions below
//!   the oldest transaction still running, so a trigger committed late is never skipped.
//!
//! Commits that add triggers or jobs `NOTIFY`; every node `LISTEN`s on one connection and wakes
//! its runners and workers. The driver is `postgres`, tokio-postgres' blocking facade by the same
//! authors: the store's transaction API is synchronous closures (a transaction never awaits
//! anything but its own statements), so a blocking client on a blocking thread is the fit.

mod activity;
mod campaigns;
mod canvas;
mod dashboard;
mod feed;
mod jobs;
mod profiles;
mod schema;
mod templates;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};

use crate::{Signals, StoreError, Tx};

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        match e.code() {
            Some(c) if *c == SqlState::READ_ONLY_SQL_TRANSACTION => StoreError::ReadOnly,
            // Class 08: connection exceptions; 57P0x: the server is shutting down or restarting.
            Some(c) if c.code().starts_with("08") || c.code().starts_with("57P0") => {
                StoreError::Unavailable(describe_error(&e))
            }
            _ if e.is_closed() => StoreError::Unavailable(describe_error(&e)),
            _ => StoreError::Database(describe_error(&e)),
        }
    }
}

/// The server's message and detail where there is one (`Display` says only "db error").
fn describe_error(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_string(),
        },
        None => e.to_string(),
    }
}

#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database` (libpq's URL or key=value form).
    pub url: String,
    /// The schema leadwire's tables live in (created if missing); `public` by default.
    pub schema: String,
    /// Most connections this node opens.
    pub max_connections: usize,
    /// Longest one statement may run before the server cancels it.
    pub statement_timeout: Duration,
    /// How long opening waits for a database that cannot be reached yet (refused, timed out,
    /// starting up), trying again every second and saying so; zero fails at once. Wrong
    /// credentials or a wrong database name fail at once either way.
    pub wait_for_database: Duration,
}

impl PostgresConfig {
    pub fn new(url: impl Into<String>) -> PostgresConfig {
        PostgresConfig {
            url: url.into(),
            schema: "public".into(),
            max_connections: 16,
            statement_timeout: Duration::from_secs(30),
            wait_for_database: Duration::ZERO,
        }
    }

    /// The URL with its password masked, for logs and messages.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    pub fn with_schema(mut self, schema: impl Into<String>) -> PostgresConfig {
        self.schema = schema.into();
        self
    }

    fn client_config(&self) -> Result<postgres::Config, StoreError> {
        let mut config: postgres::Config = self.url.parse().map_err(|e| StoreError::Open {
            path: redact_url(&self.url),
            reason: format!("not a PostgreSQL URL: {e}"),
        })?;
        // Idle-in-transaction sessions (a node stopped mid-transaction without its socket
        // closing) are ended by the server, which releases their locks.
        config.options(&format!(
            "-c statement_timeout={} -c lock_timeout={} -c idle_in_transaction_session_timeout=60000 -c search_path={}",
            self.statement_timeout.as_millis(),
            self.statement_timeout.as_millis(),
            quote_ident(&self.schema)
        ));
        config.application_name("leadwire");
        config.connect_timeout(Duration::from_secs(5));
        config.keepalives_idle(Duration::from_secs(30));
        Ok(config)
    }
}

/// The URL without its password, for messages.
pub(crate) fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A pooled connection and its prepared statements.
pub(crate) struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

/// A stable 64-bit FNV-1a hash: advisory lock keys are per database, so they include the
/// schema (two installations in one database must not share locks).
fn fnv(parts: &[&str]) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h as i64
}

pub(crate) struct PostgresBackend {
    pool: Arc<Pool>,
    /// Connections allowed out at once.
    permits: Arc<tokio::sync::Semaphore>,
    signals: Arc<Signals>,
    /// The listener thread runs while this lives.
    _alive: Arc<()>,
}

impl PostgresBackend {
    /// Connects, migrates and starts listening. Blocking: call off the async threads.
    pub(crate) fn open(
        config: PostgresConfig,
        signals: Arc<Signals>,
    ) -> Result<PostgresBackend, StoreError> {
        let client_config = config.client_config()?;
        let open_error = |e: postgres::Error| StoreError::Open {
            path: redact_url(&config.url),
            reason: describe_error(&e),
        };
        let mut client = connect_patiently(&client_config, &config).map_err(open_error)?;
        schema::migrate(&mut client, &config.schema)?;
        // Every consumer's position row exists from the start (0: nothing consumed yet), so
        // pruning always sees every consumer.
        for consumer in crate::Consumer::ALL {
            client.execute(
                "INSERT INTO feed_positions (consumer, seq) VALUES ($1, 0) ON CONFLICT DO NOTHING",
                &[&consumer.as_str()],
            )?;
        }
        let end = feed::end_of(&mut client)?;
        signals.committed(Some(end), true);
        let alive = Arc::new(());
        let listener_config = client_config.clone();
        let listener_signals = signals.clone();
        let token = Arc::downgrade(&alive);
        std::thread::Builder::new()
            .name("leadwire-store-listener".into())
            .spawn(move || listen(listener_config, listener_signals, token))
            .map_err(|e| StoreError::Database(format!("cannot start the listener: {e}")))?;
        Ok(PostgresBackend {
            pool: Arc::new(Pool {
                config: client_config,
                schema: config.schema.clone(),
                idle: Mutex::new(vec![Conn {
                    client,
                    statements: HashMap::new(),
                }]),
            }),
            permits: Arc::new(tokio::sync::Semaphore::new(config.max_connections.max(1))),
            signals,
            _alive: alive,
        })
    }

    pub(crate) async fn transact<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let _permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| E::from(StoreError::Closed))?;
        let pool = self.pool.clone();
        let signals = self.signals.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.checkout().map_err(E::from)?;
            let out = run_write(&mut conn, &pool.schema, &signals, f);
            pool.checkin(conn);
            out
        })
        .await
        .map_err(|e| {
            E::from(StoreError::Database(format!(
                "a transaction task stopped: {e}"
            )))
        })?
    }

    pub(crate) fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E>,
        E: From<StoreError>,
    {
        let mut conn = self.pool.checkout().map_err(E::from)?;
        let out = (|| {
            conn.client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .map_err(|e| E::from(e.into()))?;
            let mut tx = Tx::postgres(PgTx::new(&mut conn, &self.pool.schema, false));
            let out = f(&mut tx);
            drop(tx);
            let _ = conn.client.batch_execute("COMMIT");
            out
        })();
        self.pool.checkin(conn);
        out
    }
}

impl Drop for PostgresBackend {
    fn drop(&mut self) {
        // A client's drop blocks on its own runtime, which must not happen on an async thread.
        let idle = std::mem::take(&mut *self.pool.idle.lock().unwrap_or_else(|e| e.into_inner()));
        if !idle.is_empty() {
            let _ = std::thread::Builder::new()
                .name("leadwire-store-close".into())
                .spawn(move || drop(idle));
        }
    }
}

/// Idle connections. Touched only on blocking threads: the `postgres` client blocks.
struct Pool {
    config: postgres::Config,
    schema: String,
    idle: Mutex<Vec<Conn>>,
}

impl Pool {
    fn checkout(&self) -> Result<Conn, StoreError> {
        loop {
            let pooled = self.idle.lock().ok().and_then(|mut p| p.pop());
            match pooled {
                Some(conn) if conn.client.is_closed() => continue,
                Some(conn) => return Ok(conn),
                None => break,
            }
        }
        let client = self
            .config
            .connect(NoTls)
            .map_err(|e| StoreError::Unavailable(describe_error(&e)))?;
        Ok(Conn {
            client,
            statements: HashMap::new(),
        })
    }

    fn checkin(&self, conn: Conn) {
        if conn.client.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }
}

/// Connects, trying again every second while the server cannot be reached (up to
/// `config.wait_for_database`).
fn connect_patiently(
    client_config: &postgres::Config,
    config: &PostgresConfig,
) -> Result<Client, postgres::Error> {
    let started = std::time::Instant::now();
    let mut said = false;
    loop {
        match client_config.connect(NoTls) {
            Ok(client) => {
                if said {
                    tracing::info!(url = %redact_url(&config.url), "PostgreSQL is reachable");
                }
                return Ok(client);
            }
            // A server error other than "starting up" (bad password, no such database) will
            // not go away by waiting.
            Err(e)
                if e.as_db_error().is_some() && e.code() != Some(&SqlState::CANNOT_CONNECT_NOW) =>
            {
                return Err(e);
            }
            Err(e) if started.elapsed() < config.wait_for_database => {
                if !said {
                    tracing::warn!(url = %redact_url(&config.url), error = %describe_error(&e), "cannot reach PostgreSQL; trying again every second");
                    said = true;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(e) => return Err(e),
        }
    }
}

/// One write transaction on `conn`: commit on `Ok` (with the notifications its writes call
/// for), roll back on `Err`, answer after the commit.
fn run_write<T, E, F>(conn: &mut Conn, schema: &str, signals: &Signals, f: F) -> Result<T, E>
where
    F: FnOnce(&mut Tx<'_>) -> Result<T, E>,
    E: From<StoreError>,
{
    conn.client
        .batch_execute("BEGIN")
        .map_err(|e| E::from(e.into()))?;
    let mut tx = Tx::postgres(PgTx::new(conn, schema, true));
    let mut out = f(&mut tx);
    let mut pg = tx.into_postgres();
    // Triggers still queued go in before the commit; a failure there fails the transaction.
    if out.is_ok()
        && let Some(Err(e)) = pg.as_mut().map(PgTx::flush_triggers)
    {
        out = Err(E::from(e));
    }
    let effects = pg.map(|t| t.effects).unwrap_or_default();
    match out {
        Ok(value) => {
            let mut commit = String::new();
            if effects.feed_end.is_some() {
                commit.push_str("NOTIFY leadwire_feed; ");
            }
            if effects.jobs {
                commit.push_str("NOTIFY leadwire_jobs; ");
            }
            commit.push_str("COMMIT");
            match conn.client.batch_execute(&commit) {
                Ok(()) => {
                    signals.committed(effects.feed_end, effects.jobs);
                    Ok(value)
                }
                Err(e) => {
                    let _ = conn.client.batch_execute("ROLLBACK");
                    Err(E::from(e.into()))
                }
            }
        }
        Err(e) => {
            let _ = conn.client.batch_execute("ROLLBACK");
            Err(e)
        }
    }
}

/// Wakes this node's runners and workers when any node commits triggers or jobs. Reconnects
/// (every second, saying so) while the database is unreachable; in the meantime runners and
/// workers fall back to their idle ceilings.
fn listen(config: postgres::Config, signals: Arc<Signals>, alive: Weak<()>) {
    use postgres::fallible_iterator::FallibleIterator;
    let mut warned = false;
    while alive.upgrade().is_some() {
        let mut client = match config.connect(NoTls) {
            Ok(c) => c,
            Err(e) => {
                if !warned {
                    tracing::warn!(error = %describe_error(&e), "cannot reach PostgreSQL to listen for other nodes' work; retrying every second");
                    warned = true;
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if let Err(e) = client.batch_execute("LISTEN leadwire_feed; LISTEN leadwire_jobs") {
            tracing::warn!(error = %describe_error(&e), "LISTEN failed; retrying");
            std::thread::sleep(Duration::from_secs(1));
            continue;
        }
        if warned {
            tracing::info!("listening to PostgreSQL again");
            warned = false;
        }
        // Anything committed while we were not listening.
        signals.feed_changed();
        signals.wake_jobs();
        loop {
            if alive.upgrade().is_none() {
                return;
            }
            let next = client
                .notifications()
                .timeout_iter(Duration::from_secs(1))
                .next();
            match next {
                Ok(Some(n)) => match n.channel() {
                    "leadwire_feed" => signals.feed_changed(),
                    _ => signals.wake_jobs(),
                },
                Ok(None) if client.is_closed() => {
                    tracing::warn!("lost the PostgreSQL listener connection; reconnecting");
                    break;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %describe_error(&e), "lost the PostgreSQL listener connection; reconnecting");
                    break;
                }
            }
        }
    }
}

/// What a committed transaction wakes.
#[derive(Default, Clone, Copy)]
pub(crate) struct Effects {
    pub(crate) feed_end: Option<i64>,
    pub(crate) jobs: bool,
}

/// One PostgreSQL transaction's view: the connection, and the profiles it changed so far.
pub(crate) struct PgTx<'a> {
    conn: &'a mut Conn,
    schema: &'a str,
    /// A write transaction (rows it loads to change are locked).
    pub(crate) writable: bool,
    pub(crate) now: DateTime<Utc>,
    pub(crate) effects: Effects,
    pub(crate) local: HashMap<i64, Option<leadwire_profiles::Profile>>,
    /// Triggers this transaction appended (the low bits of their positions).
    pub(crate) appended: i64,
    pub(crate) queued_triggers: feed::QueuedTriggers,
    /// Profile rows read (and locked) by `resolve`, for `load` to take.
    pub(crate) prefetched: HashMap<i64, String>,
    /// Templates looked up in this transaction: by id (version, archived) and by name.
    pub(crate) template_versions: HashMap<String, Option<(i64, bool)>>,
    pub(crate) template_ids: HashMap<String, Option<String>>,
}

impl<'a> PgTx<'a> {
    fn new(conn: &'a mut Conn, schema: &'a str, writable: bool) -> PgTx<'a> {
        PgTx {
            conn,
            schema,
            writable,
            now: Utc::now(),
            effects: Effects::default(),
            local: HashMap::new(),
            appended: 0,
            queued_triggers: feed::QueuedTriggers::default(),
            prefetched: HashMap::new(),
            template_versions: HashMap::new(),
            template_ids: HashMap::new(),
        }
    }

    /// The advisory lock key for `name` in this installation.
    pub(crate) fn lock_key(&self, name: &str) -> i64 {
        fnv(&[self.schema, name])
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.conn.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.conn.client.prepare(sql)?;
        self.conn.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    pub(crate) fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let s = self.statement(sql)?;
        Ok(self.conn.client.query(&s, params)?)
    }

    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let s = self.statement(sql)?;
        Ok(self.conn.client.query_opt(&s, params)?)
    }

    pub(crate) fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, StoreError> {
        let s = self.statement(sql)?;
        Ok(self.conn.client.query_one(&s, params)?)
    }

    pub(crate) fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let s = self.statement(sql)?;
        Ok(self.conn.client.execute(&s, params)?)
    }

    /// Runs a statement that may break a uniqueness rule: then only the statement is undone,
    /// the transaction goes on (as on SQLite), and the error is `Conflict(message())`.
    pub(crate) fn query_unique(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        message: impl FnOnce() -> String,
    ) -> Result<Vec<Row>, StoreError> {
        let s = self.statement(sql)?;
        self.conn.client.batch_execute("SAVEPOINT unique_check")?;
        match self.conn.client.query(&s, params) {
            Ok(rows) => {
                self.conn
                    .client
                    .batch_execute("RELEASE SAVEPOINT unique_check")?;
                Ok(rows)
            }
            Err(e) => {
                self.conn.client.batch_execute(
                    "ROLLBACK TO SAVEPOINT unique_check; RELEASE SAVEPOINT unique_check",
                )?;
                if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                    Err(StoreError::Conflict(message()))
                } else {
                    Err(e.into())
                }
            }
        }
    }

    /// `(page size, pages, free pages)` of the database, for the size reports SQLite gives.
    pub fn file_pages(&mut self) -> Result<(u64, u64, u64), StoreError> {
        let row = self.query_one("SELECT pg_database_size(current_database())", &[])?;
        let bytes: i64 = row.get(0);
        Ok((8192, u64::try_from(bytes / 8192).unwrap_or(0), 0))
    }

    /// PostgreSQL's autovacuum reuses and returns space itself.
    pub fn release_free_pages(&mut self, _max: u32) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Nothing to do: PostgreSQL checkpoints on its own schedule.
    pub fn checkpoint_after_commit(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

pub(crate) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
