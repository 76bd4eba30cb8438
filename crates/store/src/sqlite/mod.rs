//! The embedded SQLite backend: one file in WAL mode, one writer thread with group commit, a
//! small pool of read-only connections.
//!
//! Every write transaction ([`crate::Store::transact`]) is a closure sent to the writer thread,
//! which takes every closure waiting in its queue, runs each in a savepoint of one transaction
//! (so one closure's failure undoes only its own changes) and commits once; answers go out after
//! the commit. Profiles the writer has written stay in its cache, moved (not copied) through each
//! transaction, so an update does not re-read what the writer already knows. Reads
//! ([`crate::Store::read`]) run on a pooled read-only connection inside a deferred transaction,
//! so everything one closure reads is from the same instant.

mod activity;
mod campaigns;
mod canvas;
mod dashboard;
mod feed;
mod jobs;
mod profiles;
mod schema;
mod templates;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use chrono::{DateTime, Utc};
use leadwire_profiles::Profile;
use rusqlite::Connection;
use tokio::sync::oneshot;

pub(crate) use crate::codec::{
    from_millis, from_utc_millis, millis, new_id, parse_json, utc_millis,
};
use crate::{Signals, StoreError, Tx};

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ReadOnly => {
                StoreError::ReadOnly
            }
            _ => StoreError::Database(e.to_string()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// The database file; created with its directory on first start.
    pub path: PathBuf,
    /// Most transactions committed together.
    pub max_batch: usize,
    /// Profiles kept in the writer's cache; past it the cache starts over.
    pub cache_capacity: usize,
}

impl SqliteConfig {
    pub fn new(path: impl Into<PathBuf>) -> SqliteConfig {
        SqliteConfig {
            path: path.into(),
            max_batch: 256,
            cache_capacity: 50_000,
        }
    }
}

/// What a closure's run leaves for after the commit: the answer to send (given the commit's
/// outcome), and whether to keep (release) or undo (roll back) its savepoint.
type Deliver = Box<dyn FnOnce(Option<StoreError>) + Send>;
type WriteJob = Box<dyn FnOnce(&mut Tx<'_>) -> (bool, Deliver) + Send>;

pub(crate) struct SqliteBackend {
    /// The checkpointer runs while this lives.
    _alive: Arc<()>,
    jobs: mpsc::Sender<WriteJob>,
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
}

impl SqliteBackend {
    pub(crate) fn open(
        config: SqliteConfig,
        signals: Arc<Signals>,
    ) -> Result<SqliteBackend, StoreError> {
        let mut conn = schema::open(&config.path, false)?;
        schema::migrate(&mut conn)?;
        let feed_end = feed::end(&conn)?;
        signals.committed(Some(feed_end), false);
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            conn,
            cache: RefCell::new(Cache::new(config.cache_capacity)),
            max_batch: config.max_batch.max(1),
            signals,
        };
        std::thread::Builder::new()
            .name("leadwire-store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;
        let path = config.path.clone();
        let alive = Arc::new(());
        let token = Arc::downgrade(&alive);
        std::thread::Builder::new()
            .name("leadwire-store-checkpointer".into())
            .spawn(move || checkpointer(path, token))
            .map_err(|e| StoreError::Database(format!("cannot start the checkpointer: {e}")))?;
        Ok(SqliteBackend {
            _alive: alive,
            jobs: tx,
            path: config.path,
            readers: Mutex::new(Vec::new()),
        })
    }

    pub(crate) async fn transact<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, E>>();
        let job: WriteJob = Box::new(move |tx: &mut Tx<'_>| match f(tx) {
            Ok(value) => {
                let deliver: Deliver = Box::new(move |commit_error| {
                    let _ = reply.send(match commit_error {
                        None => Ok(value),
                        Some(e) => Err(E::from(e)),
                    });
                });
                (true, deliver)
            }
            Err(e) => {
                let deliver: Deliver = Box::new(move |_| {
                    let _ = reply.send(Err(e));
                });
                (false, deliver)
            }
        });
        self.jobs
            .send(job)
            .map_err(|_| E::from(StoreError::Closed))?;
        answer.await.map_err(|_| E::from(StoreError::Closed))?
    }

    pub(crate) fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E>,
        E: From<StoreError>,
    {
        let pooled = self.readers.lock().ok().and_then(|mut r| r.pop());
        let conn = match pooled {
            Some(c) => c,
            None => schema::open(&self.path, true).map_err(E::from)?,
        };
        conn.execute_batch("BEGIN DEFERRED")
            .map_err(|e| E::from(e.into()))?;
        let mut pending = Pending::default();
        let mut tx = Tx::sqlite(SqliteTx {
            conn: &conn,
            cache: None,
            pending: &mut pending,
            local: Pending::default(),
            now: Utc::now(),
            effects: Effects::default(),
            identities: HashMap::new(),
        });
        let out = f(&mut tx);
        let _ = conn.execute_batch("COMMIT");
        if let Ok(mut readers) = self.readers.lock()
            && readers.len() < 8
        {
            readers.push(conn);
        }
        out
    }
}

/// One transaction's view: the connection, the writer's profile cache (none on a read
/// snapshot), the profiles changed so far in this batch and in this transaction.
pub(crate) struct SqliteTx<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) cache: Option<&'a RefCell<Cache>>,
    pub(crate) pending: &'a mut Pending,
    pub(crate) local: Pending,
    /// The transaction's time: every row it writes carries it.
    pub(crate) now: DateTime<Utc>,
    pub(crate) effects: Effects,
    /// Indexed columns of the profile rows as this transaction found them.
    pub(crate) identities: HashMap<i64, profiles::Identity>,
}

/// What a committed transaction wakes.
#[derive(Default, Clone, Copy)]
pub(crate) struct Effects {
    pub(crate) feed_end: Option<i64>,
    pub(crate) jobs: bool,
    /// Checkpoint the WAL once this batch has committed.
    pub(crate) checkpoint: bool,
}

impl Effects {
    fn absorb(&mut self, other: Effects) {
        self.feed_end = self.feed_end.max(other.feed_end);
        self.jobs |= other.jobs;
        self.checkpoint |= other.checkpoint;
    }
}

impl SqliteTx<'_> {
    /// The database file's pages: `(page size, pages, free pages)` (free pages are reused before
    /// the file grows).
    pub fn file_pages(&mut self) -> Result<(u64, u64, u64), StoreError> {
        let get = |pragma: &str| -> Result<u64, StoreError> {
            let n: i64 = self
                .conn
                .query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))?;
            Ok(u64::try_from(n).unwrap_or(0))
        };
        Ok((
            get("page_size")?,
            get("page_count")?,
            get("freelist_count")?,
        ))
    }

    /// Gives up to `max` free pages back to the file system (the file shrinks); returns how many
    /// free pages are left.
    pub fn release_free_pages(&mut self, max: u32) -> Result<u64, StoreError> {
        self.conn
            .execute_batch(&format!("PRAGMA incremental_vacuum({max})"))?;
        Ok(self.file_pages()?.2)
    }

    /// Asks for a full WAL checkpoint once this transaction's batch has committed (a checkpoint
    /// cannot run inside a transaction).
    pub fn checkpoint_after_commit(&mut self) -> Result<(), StoreError> {
        self.effects.checkpoint = true;
        Ok(())
    }
}

/// Profiles the writer knows, and the external-id index into them.
pub(crate) struct Cache {
    profiles: HashMap<i64, Profile>,
    external: HashMap<String, i64>,
    capacity: usize,
}

impl Cache {
    fn new(capacity: usize) -> Cache {
        Cache {
            profiles: HashMap::new(),
            external: HashMap::new(),
            capacity,
        }
    }

    fn put(&mut self, id: i64, profile: Profile) {
        if self.profiles.len() >= self.capacity && !self.profiles.contains_key(&id) {
            // Bounded without tracking recency: drop an eighth (hash order is arbitrary, so this
            // is a random sample), so a working set larger than the cache still mostly hits.
            let drop: Vec<i64> = self
                .profiles
                .keys()
                .take((self.capacity / 8).max(1))
                .copied()
                .collect();
            for id in drop {
                self.remove(id);
            }
        }
        if let Some(ext) = &profile.external_id {
            self.external.insert(ext.clone(), id);
        }
        self.profiles.insert(id, profile);
    }

    /// Moves a profile out; its external-id index entry stays valid (ids do not move).
    pub(crate) fn take(&mut self, id: i64) -> Option<Profile> {
        self.profiles.remove(&id)
    }

    pub(crate) fn external(&self, ext: &str) -> Option<i64> {
        self.external.get(ext).copied()
    }

    fn remove(&mut self, id: i64) {
        if let Some(p) = self.profiles.remove(&id)
            && let Some(ext) = p.external_id
        {
            self.external.remove(&ext);
        }
    }
}

/// Profiles changed inside the current transaction, applied to the cache only after commit.
#[derive(Default)]
pub(crate) struct Pending {
    pub(crate) profiles: HashMap<i64, Option<Profile>>,
}

impl Pending {
    fn absorb(&mut self, other: Pending) {
        self.profiles.extend(other.profiles);
    }
}

/// How long a busy writer waits to fill a batch (well under the 20 ms trigger-to-delivery goal).
const LINGER: Duration = Duration::from_micros(500);

/// Checkpoints the WAL into the database file from a thread of its own, so the writer never
/// pays for it (the writer's connection has automatic checkpoints off).
fn checkpointer(path: PathBuf, alive: std::sync::Weak<()>) {
    let conn = match schema::open(&path, false) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the checkpointer cannot open the database; the WAL will grow");
            return;
        }
    };
    let wal = {
        let mut p = path.clone().into_os_string();
        p.push("-wal");
        PathBuf::from(p)
    };
    loop {
        std::thread::sleep(Duration::from_millis(100));
        if alive.upgrade().is_none() {
            return;
        }
        let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        if size == 0 {
            continue;
        }
        // PASSIVE never blocks the writer; past 256 MB, RESTART makes the writer start the log
        // over once readers let go, so it cannot grow without bound.
        let mode = if size > 256 << 20 {
            "RESTART"
        } else {
            "PASSIVE"
        };
        if let Err(e) = conn.execute_batch(&format!("PRAGMA wal_checkpoint({mode})")) {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

struct Writer {
    conn: Connection,
    cache: RefCell<Cache>,
    max_batch: usize,
    signals: Arc<Signals>,
}

impl Writer {
    fn run(self, rx: mpsc::Receiver<WriteJob>) {
        let mut busy = false;
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            // Under load (the last batch held more than one transaction) wait a moment for
            // more: a commit's cost (WAL frames for every dirty page, the page cache's
            // bookkeeping) is paid once for the whole batch, and pages several transactions
            // touch are written once. A lone transaction is never held back.
            let linger_until = busy.then(|| std::time::Instant::now() + LINGER);
            while batch.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(mpsc::TryRecvError::Disconnected) => break,
                    Err(mpsc::TryRecvError::Empty) => {
                        let Some(until) = linger_until else { break };
                        let left = until.saturating_duration_since(std::time::Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        match rx.recv_timeout(left) {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                }
            }
            busy = batch.len() > 1;
            self.apply_batch(batch);
        }
    }

    fn apply_batch(&self, batch: Vec<WriteJob>) {
        if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
            let msg = e.to_string();
            tracing::error!(error = %msg, "cannot begin a write transaction");
            // Run nothing: each closure's answer is an error.
            for job in batch {
                drop(job);
            }
            return;
        }
        let mut pending = Pending::default();
        let mut effects = Effects::default();
        let mut delivers: Vec<Deliver> = Vec::with_capacity(batch.len());
        for job in batch {
            if let Err(e) = self.conn.execute_batch("SAVEPOINT tx") {
                tracing::error!(error = %e, "cannot open a savepoint");
                drop(job);
                continue;
            }
            let mut tx = Tx::sqlite(SqliteTx {
                conn: &self.conn,
                cache: Some(&self.cache),
                pending: &mut pending,
                local: Pending::default(),
                now: Utc::now(),
                effects: Effects::default(),
                identities: HashMap::new(),
            });
            let (keep, deliver) = job(&mut tx);
            let Some(SqliteTx {
                local,
                effects: own,
                ..
            }) = tx.into_sqlite()
            else {
                unreachable!("the SQLite writer builds SQLite transactions")
            };
            if keep {
                let _ = self.conn.execute_batch("RELEASE tx");
                pending.absorb(local);
                effects.absorb(own);
                delivers.push(deliver);
            } else {
                let _ = self.conn.execute_batch("ROLLBACK TO tx; RELEASE tx");
                deliver(None);
            }
        }
        match self.conn.execute_batch("COMMIT") {
            Ok(()) => {
                let mut cache = self.cache.borrow_mut();
                for (id, p) in pending.profiles {
                    match p {
                        Some(p) => cache.put(id, p),
                        None => cache.remove(id),
                    }
                }
                drop(cache);
                if effects.checkpoint
                    && let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
                {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
                self.signals.committed(effects.feed_end, effects.jobs);
                delivers.into_iter().for_each(|d| d(None));
            }
            Err(e) => {
                tracing::error!(error = %e, "commit failed; the batch is rolled back");
                let _ = self.conn.execute_batch("ROLLBACK");
                let msg = e.to_string();
                delivers
                    .into_iter()
                    .for_each(|d| d(Some(StoreError::Database(msg.clone()))));
            }
        }
    }
}

/// `Some(StoreError::Conflict(message))` when `e` broke a uniqueness rule.
pub(crate) fn conflict(e: rusqlite::Error, message: impl FnOnce() -> String) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Conflict(message())
        }
        _ => e.into(),
    }
}
