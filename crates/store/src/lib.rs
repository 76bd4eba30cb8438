//! leadwire's storage, and the only crate that opens the database or writes SQL.
//!
//! Everything leadwire keeps — profiles, aliases, events, purchases, the trigger feed and the feed
//! consumers' positions, API keys, webhook templates, credentials, jobs and the activity log,
//! campaigns and their sends, Canvases and their journeys — is reached through [`Store`]:
//!
//! - [`Store::transact`] runs a closure over a [`Tx`] of typed operations and commits it as a
//!   whole, or rolls it back when the closure returns an error. A job's settle and the write-back
//!   it causes, a journey step and the User Update it makes, a trigger's consumption and the sends
//!   it decides: each is one `transact`.
//! - [`Store::read`] runs a closure over a consistent read-only snapshot.
//!
//! Two backends live beneath, chosen by [`DatabaseConfig`]: `sqlite` (the embedded default; one
//! writer thread group-commits every write transaction, a savepoint each) and `postgres`
//! (several nodes on one database; see `postgres/mod.rs` for how they share work). [`Tx`]
//! forwards each operation to the backend's transaction, so no other crate names a backend.
//!
//! This crate knows profiles (from `leadwire-profiles`) and SQL; it must not know HTTP, request
//! JSON shapes, Liquid, delivery rules, campaign or Canvas rules: specs, journey states and render
//! properties are stored as the JSON their owners give it.

mod codec;
mod model;
mod postgres;
mod profiles;
mod sqlite;
pub mod testing;
mod tx;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use leadwire_profiles::{Identifier, ParsedTrack};

pub use model::*;
pub use postgres::PostgresConfig;
pub use sqlite::SqliteConfig;
pub use tx::Tx;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("the store is shutting down")]
    Closed,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("cannot open the database at {path}: {reason}")]
    Open { path: String, reason: String },
    /// A uniqueness rule was broken (a name already taken); the message says which.
    #[error("{0}")]
    Conflict(String),
    #[error("{what} '{id}' does not exist")]
    NotFound { what: &'static str, id: String },
    /// The database cannot be reached right now (connection refused or lost, server
    /// restarting); the operation changed nothing and may be retried.
    #[error("the database is unreachable: {0}")]
    Unavailable(String),
    /// The transaction is read-only (from [`Store::read`]) and the operation writes.
    #[error("this operation writes, but the transaction is read-only")]
    ReadOnly,
}

/// What wakes whoever waits for new work: the trigger feed's end and new or rescheduled jobs.
/// Fired by the backend after the commit that caused it, never before.
pub struct Signals {
    feed: tokio::sync::watch::Sender<i64>,
    jobs: tokio::sync::Notify,
}

impl Signals {
    fn new() -> Signals {
        Signals {
            feed: tokio::sync::watch::Sender::new(0),
            jobs: tokio::sync::Notify::new(),
        }
    }

    /// A receiver that changes whenever triggers are committed (its value: the feed's end).
    pub fn feed(&self) -> tokio::sync::watch::Receiver<i64> {
        self.feed.subscribe()
    }

    /// Waits until jobs were enqueued or rescheduled, or `max` passed.
    pub async fn jobs_ready(&self, max: std::time::Duration) {
        let _ = tokio::time::timeout(max, self.jobs.notified()).await;
    }

    /// Wakes the feed's readers without a new end (another node committed triggers).
    pub(crate) fn feed_changed(&self) {
        self.feed.send_modify(|_| {});
    }

    /// Wakes a job waiter (after work became due by time rather than by a write).
    pub fn wake_jobs(&self) {
        self.jobs.notify_one();
    }

    pub(crate) fn committed(&self, feed_end: Option<i64>, jobs: bool) {
        if let Some(end) = feed_end {
            self.feed.send_if_modified(|v| {
                let grew = end > *v;
                *v = (*v).max(end);
                grew
            });
        }
        if jobs {
            self.jobs.notify_one();
        }
    }
}

/// Which database, and how to reach it.
#[derive(Debug, Clone)]
pub enum DatabaseConfig {
    /// The embedded default: one file, one node.
    Sqlite(SqliteConfig),
    /// A PostgreSQL server: several nodes may share it.
    Postgres(PostgresConfig),
}

enum Backend {
    Sqlite(sqlite::SqliteBackend),
    Postgres(postgres::PostgresBackend),
}

/// leadwire's database. Cheap to clone; every clone shares one backend.
#[derive(Clone)]
pub struct Store {
    backend: Arc<Backend>,
    signals: Arc<Signals>,
    /// API keys never change after creation (as in Braze), so hits are cached.
    keys: Arc<Mutex<HashMap<String, ApiKeyInfo>>>,
}

impl Store {
    /// Opens (creating and migrating as needed) the database `config` names.
    pub fn open(config: DatabaseConfig) -> Result<Store, StoreError> {
        match config {
            DatabaseConfig::Sqlite(c) => Store::open_sqlite(c),
            DatabaseConfig::Postgres(c) => Store::open_postgres(c),
        }
    }

    /// Opens (creating and migrating as needed) the embedded SQLite database.
    pub fn open_sqlite(config: SqliteConfig) -> Result<Store, StoreError> {
        let signals = Arc::new(Signals::new());
        let backend = sqlite::SqliteBackend::open(config, signals.clone())?;
        Ok(Store::with_backend(Backend::Sqlite(backend), signals))
    }

    /// Connects to PostgreSQL, creating the schema and applying migrations as needed. Blocks
    /// the calling thread while it connects (on a thread of its own, so it may be called from
    /// anywhere, an async task included).
    pub fn open_postgres(config: PostgresConfig) -> Result<Store, StoreError> {
        let signals = Arc::new(Signals::new());
        let for_backend = signals.clone();
        let backend = std::thread::scope(|s| {
            s.spawn(move || postgres::PostgresBackend::open(config, for_backend))
                .join()
                .map_err(|_| StoreError::Database("opening PostgreSQL panicked".into()))?
        })?;
        Ok(Store::with_backend(Backend::Postgres(backend), signals))
    }

    fn with_backend(backend: Backend, signals: Arc<Signals>) -> Store {
        Store {
            backend: Arc::new(backend),
            signals,
            keys: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Which backend this is (`sqlite` or `postgres`), for logs and reports.
    pub fn backend_name(&self) -> &'static str {
        match &*self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    pub fn signals(&self) -> &Arc<Signals> {
        &self.signals
    }

    /// Runs `f` in one write transaction: committed when it returns `Ok`, rolled back (its
    /// changes only) when it returns `Err`. The answer arrives after the commit.
    pub async fn transact<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let started = std::time::Instant::now();
        // The closure runs on the store's own thread: it runs in the caller's span there, so
        // its log lines and the work it records (a job's trace) belong to the caller.
        let span = tracing::Span::current();
        let f = move |tx: &mut Tx<'_>| span.in_scope(|| f(tx));
        let result = match &*self.backend {
            Backend::Sqlite(b) => b.transact(f).await,
            Backend::Postgres(b) => b.transact(f).await,
        };
        metrics::histogram!("leadwire_store_transaction_seconds", "backend" => self.backend_name())
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// Runs `f` over a consistent read-only snapshot, off the async threads.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_blocking(f))
            .await
            .map_err(|e| E::from(StoreError::Database(format!("a read task stopped: {e}"))))?
    }

    /// [`Store::read`] on the calling thread, for synchronous callers already off the async
    /// threads (the renderer's credential lookups). Never call it on an async worker thread:
    /// it blocks, and PostgreSQL's blocking client refuses to run there.
    pub fn read_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E>,
        E: From<StoreError>,
    {
        match &*self.backend {
            Backend::Sqlite(b) => b.read(f),
            Backend::Postgres(b) => b.read(f),
        }
    }

    // Conveniences over `transact`/`read` for the REST API's one-shot calls.

    pub async fn track(
        &self,
        request: ParsedTrack,
        origin: impl Into<Origin>,
    ) -> Result<TrackResult, StoreError> {
        let origin = origin.into();
        self.transact(move |tx| tx.track(&request, origin)).await
    }

    pub async fn find_profiles(&self, ids: Vec<Identifier>) -> Result<FoundProfiles, StoreError> {
        self.read(move |tx| {
            let mut out = FoundProfiles::default();
            for id in ids {
                match tx.profile(&id)? {
                    Some(p) => out.found.push(p),
                    None => out.missing.push(id),
                }
            }
            Ok(out)
        })
        .await
    }

    /// Profiles with their events and purchases summed, for `/users/export/ids`.
    pub async fn export_profiles(
        &self,
        ids: Vec<Identifier>,
    ) -> Result<ExportedProfiles, StoreError> {
        self.read(move |tx| {
            let mut out = ExportedProfiles::default();
            for id in ids {
                match tx.profile_with_history(&id)? {
                    Some(found) => out.found.push(found),
                    None => out.missing.push(id),
                }
            }
            Ok(out)
        })
        .await
    }

    pub async fn delete_users(&self, ids: Vec<Identifier>) -> Result<usize, StoreError> {
        self.transact(move |tx| tx.delete_users(&ids)).await
    }

    pub async fn add_aliases(
        &self,
        aliases: Vec<NewAlias>,
    ) -> Result<Vec<(usize, String)>, StoreError> {
        self.transact(move |tx| tx.add_aliases(&aliases)).await
    }

    pub async fn identify(
        &self,
        requests: Vec<IdentifyRequest>,
    ) -> Result<Vec<(usize, String)>, StoreError> {
        self.transact(move |tx| tx.identify(&requests)).await
    }

    /// Up to `limit` triggers after `position`: everything committed before the call (on
    /// PostgreSQL a read may stop short at a trigger an older transaction holds back; this asks
    /// again until nothing more comes).
    pub async fn triggers_after(
        &self,
        position: i64,
        limit: usize,
    ) -> Result<Vec<TriggerRecord>, StoreError> {
        let mut out: Vec<TriggerRecord> = Vec::new();
        let mut after = position;
        while out.len() < limit {
            let want = limit - out.len();
            // A write transaction, though it writes nothing: on PostgreSQL it may wait for an
            // older transaction that holds newer triggers back, which a fixed snapshot cannot.
            let batch = self
                .transact(move |tx| tx.triggers_after(after, want))
                .await?;
            let Some(last) = batch.last() else { break };
            after = last.seq;
            out.extend(batch);
        }
        Ok(out)
    }

    pub async fn create_api_key(
        &self,
        name: String,
        permissions: Vec<String>,
    ) -> Result<String, StoreError> {
        self.transact(move |tx| tx.create_api_key(&name, &permissions))
            .await
    }

    /// The key's metadata; keys never change after creation (as in Braze), so hits are cached.
    pub async fn api_key(&self, key: String) -> Result<Option<ApiKeyInfo>, StoreError> {
        let hash = model::hash_key(&key);
        let cached = self.keys.lock().ok().and_then(|k| k.get(&hash).cloned());
        if let Some(hit) = cached {
            return Ok(Some(hit));
        }
        let h = hash.clone();
        let info = self.read(move |tx| tx.api_key_by_hash(&h)).await?;
        if let Some(info) = &info
            && let Ok(mut keys) = self.keys.lock()
        {
            keys.insert(hash, info.clone());
        }
        Ok(info)
    }

    /// Copies the write-ahead log into the database file and truncates it (maintenance, and
    /// before measuring the file's size).
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        self.transact(|tx| tx.checkpoint_after_commit()).await
    }

    pub async fn profile_count(&self) -> Result<u64, StoreError> {
        self.read(|tx| tx.profile_count()).await
    }
}
