//! The embedded SQLite store: one file in WAL mode, one writer thread, group commit.
//!
//! Writes from all callers go to a single writer thread, which takes every command waiting in its
//! queue, applies them in one transaction (a savepoint each, so one command's failure does not undo
//! another's) and commits once. Profiles it has written stay in a cache, so an update does not
//! re-read and re-parse what the writer already knows. Reads use their own connection.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};

use chrono::{DateTime, Utc};
use leadwire_profiles::{Identifier, MinorError, ParsedTrack, Profile, Trigger};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::Digest as _;
use tokio::sync::oneshot;

use crate::{
    ApiKeyInfo, BoxFuture, ChangeSource, FoundProfiles, IdentifyRequest, NewAlias, Store,
    StoreError, TrackResult, TriggerRecord,
};

#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// The database file; created with its directory on first start.
    pub path: PathBuf,
    /// Most commands applied in one transaction.
    pub max_batch: usize,
    /// Profiles kept in the writer's cache; past it the cache starts over.
    pub cache_capacity: usize,
}

impl SqliteConfig {
    pub fn new(path: impl Into<PathBuf>) -> SqliteConfig {
        SqliteConfig {
            path: path.into(),
            max_batch: 256,
            cache_capacity: 200_000,
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Command {
    Track(ParsedTrack, ChangeSource, Reply<TrackResult>),
    Delete(Vec<Identifier>, Reply<usize>),
    Aliases(Vec<NewAlias>, Reply<Vec<(usize, String)>>),
    Identify(Vec<IdentifyRequest>, Reply<Vec<(usize, String)>>),
    CreateKey(String, Vec<String>, Reply<String>),
}

impl Command {
    fn fail(self, error: StoreError) {
        let msg = error.to_string();
        match self {
            Command::Track(_, _, r) => drop(r.send(Err(StoreError::Database(msg)))),
            Command::Delete(_, r) => drop(r.send(Err(StoreError::Database(msg)))),
            Command::Aliases(_, r) => drop(r.send(Err(StoreError::Database(msg)))),
            Command::Identify(_, r) => drop(r.send(Err(StoreError::Database(msg)))),
            Command::CreateKey(_, _, r) => drop(r.send(Err(StoreError::Database(msg)))),
        }
    }
}

pub struct SqliteStore {
    commands: mpsc::Sender<Command>,
    reader: Arc<Mutex<Connection>>,
    /// API keys never change after creation (as in Braze), so lookups are cached by hash.
    keys: Mutex<HashMap<String, Option<ApiKeyInfo>>>,
}

fn open(path: &PathBuf) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    let conn = Connection::open(path).map_err(|e| StoreError::Open {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    conn.execute_batch(
        // A large page cache and in-memory temp store keep big group-commit transactions (and the
        // per-command savepoint journals) off the disk until commit.
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
         PRAGMA cache_size = -131072; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 8000;",
    )?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating and migrating as needed) the database and starts the writer thread.
    pub fn open(config: SqliteConfig) -> Result<SqliteStore, StoreError> {
        let mut writer_conn = open(&config.path)?;
        crate::migrations::migrate(&mut writer_conn)?;
        let reader = open(&config.path)?;
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            conn: writer_conn,
            cache: std::cell::RefCell::new(Cache::new(config.cache_capacity)),
            max_batch: config.max_batch.max(1),
        };
        std::thread::Builder::new()
            .name("leadwire-store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::Database(format!("cannot start the writer thread: {e}")))?;
        Ok(SqliteStore {
            commands: tx,
            reader: Arc::new(Mutex::new(reader)),
            keys: Mutex::new(HashMap::new()),
        })
    }

    async fn send<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader
                .lock()
                .map_err(|_| StoreError::Database("reader connection poisoned".into()))?;
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Database(format!("read task failed: {e}")))?
    }
}

fn hash_key(key: &str) -> String {
    sha2::Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn new_braze_id(now: DateTime<Utc>) -> String {
    // Like Braze's ids (Mongo ObjectIds): 4 bytes of time, 8 random bytes, as 24 hex characters.
    format!(
        "{:08x}{:016x}",
        now.timestamp() as u32,
        rand::random::<u64>()
    )
}

fn profile_from_row(data: &str) -> Result<Profile, StoreError> {
    serde_json::from_str(data).map_err(|e| StoreError::Corrupt(format!("profile row: {e}")))
}

fn lookup_id(conn: &Connection, id: &Identifier) -> Result<Option<i64>, StoreError> {
    Ok(match id {
        Identifier::ExternalId(x) => conn.prepare_cached("SELECT id FROM profiles WHERE external_id = ?1")?.query_row([x], |r| r.get(0)).optional()?,
        Identifier::BrazeId(x) => conn.prepare_cached("SELECT id FROM profiles WHERE braze_id = ?1")?.query_row([x], |r| r.get(0)).optional()?,
        Identifier::Alias(a) => conn
            .prepare_cached("SELECT profile_id FROM aliases WHERE alias_label = ?1 AND alias_name = ?2")?
            .query_row([&a.alias_label, &a.alias_name], |r| r.get(0))
            .optional()?,
        // Braze: the most recently updated profile with an external_id wins, else the most recent.
        Identifier::Email(e) => conn
            .prepare_cached("SELECT id FROM profiles WHERE email = ?1 ORDER BY external_id IS NULL, updated_at DESC LIMIT 1")?
            .query_row([e], |r| r.get(0))
            .optional()?,
        Identifier::Phone(p) => conn
            .prepare_cached("SELECT id FROM profiles WHERE phone = ?1 ORDER BY external_id IS NULL, updated_at DESC LIMIT 1")?
            .query_row([p], |r| r.get(0))
            .optional()?,
    })
}

impl Store for SqliteStore {
    fn track(
        &self,
        request: ParsedTrack,
        source: ChangeSource,
    ) -> BoxFuture<'_, Result<TrackResult, StoreError>> {
        Box::pin(self.send(move |r| Command::Track(request, source, r)))
    }

    fn find_profiles(
        &self,
        ids: Vec<Identifier>,
    ) -> BoxFuture<'_, Result<FoundProfiles, StoreError>> {
        Box::pin(self.read(move |conn| {
            let mut found = Vec::new();
            let mut missing = Vec::new();
            for id in ids {
                match lookup_id(conn, &id)? {
                    Some(row) => {
                        let data: String = conn
                            .prepare_cached("SELECT data FROM profiles WHERE id = ?1")?
                            .query_row([row], |r| r.get(0))?;
                        found.push(profile_from_row(&data)?);
                    }
                    None => missing.push(id),
                }
            }
            Ok(FoundProfiles { found, missing })
        }))
    }

    fn delete_users(&self, ids: Vec<Identifier>) -> BoxFuture<'_, Result<usize, StoreError>> {
        Box::pin(self.send(move |r| Command::Delete(ids, r)))
    }

    fn add_aliases(
        &self,
        aliases: Vec<NewAlias>,
    ) -> BoxFuture<'_, Result<Vec<(usize, String)>, StoreError>> {
        Box::pin(self.send(move |r| Command::Aliases(aliases, r)))
    }

    fn identify(
        &self,
        requests: Vec<IdentifyRequest>,
    ) -> BoxFuture<'_, Result<Vec<(usize, String)>, StoreError>> {
        Box::pin(self.send(move |r| Command::Identify(requests, r)))
    }

    fn triggers_after(
        &self,
        position: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<TriggerRecord>, StoreError>> {
        Box::pin(self.read(move |conn| read_triggers(conn, position, limit)))
    }

    fn create_api_key(
        &self,
        name: String,
        permissions: Vec<String>,
    ) -> BoxFuture<'_, Result<String, StoreError>> {
        Box::pin(self.send(move |r| Command::CreateKey(name, permissions, r)))
    }

    fn api_key(&self, key: String) -> BoxFuture<'_, Result<Option<ApiKeyInfo>, StoreError>> {
        Box::pin(async move {
            let hash = hash_key(&key);
            if let Some(hit) = self.keys.lock().ok().and_then(|k| k.get(&hash).cloned()) {
                return Ok(hit);
            }
            let h = hash.clone();
            let info = self
                .read(move |conn| {
                    let row = conn
                        .prepare_cached(
                            "SELECT id, name, permissions FROM api_keys WHERE key_hash = ?1",
                        )?
                        .query_row([&h], |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, String>(2)?,
                            ))
                        })
                        .optional()?;
                    Ok(row.map(|(id, name, perms)| ApiKeyInfo {
                        id,
                        name,
                        permissions: perms
                            .split(',')
                            .filter(|p| !p.is_empty())
                            .map(str::to_string)
                            .collect(),
                    }))
                })
                .await?;
            // Only positive answers are cached: a key created later must be found.
            if info.is_some()
                && let Ok(mut keys) = self.keys.lock()
            {
                keys.insert(hash, info.clone());
            }
            Ok(info)
        })
    }

    fn profile_count(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(self.read(|conn| {
            Ok(conn.query_row("SELECT COUNT(*) FROM profiles", [], |r| r.get::<_, i64>(0))? as u64)
        }))
    }
}

/// Profiles the writer knows, and the external/braze id indexes into them.
struct Cache {
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
            // Simple and bounded: start over rather than track recency.
            self.profiles.clear();
            self.external.clear();
        }
        if let Some(ext) = &profile.external_id {
            self.external.insert(ext.clone(), id);
        }
        self.profiles.insert(id, profile);
    }

    /// Moves a profile out; its external-id index entry stays valid (ids do not move).
    fn take(&mut self, id: i64) -> Option<Profile> {
        self.profiles.remove(&id)
    }

    fn remove(&mut self, id: i64) {
        if let Some(p) = self.profiles.remove(&id)
            && let Some(ext) = p.external_id
        {
            self.external.remove(&ext);
        }
    }
}

/// Changes made inside the current transaction, applied to the cache only after commit.
#[derive(Default)]
struct Pending {
    profiles: HashMap<i64, Option<Profile>>,
}

impl Pending {
    fn absorb(&mut self, other: Pending) {
        self.profiles.extend(other.profiles);
    }
}

struct Writer {
    conn: Connection,
    /// Interior mutability: loads move profiles out of the cache (no copy) while `self` is shared.
    cache: std::cell::RefCell<Cache>,
    max_batch: usize,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Command>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            self.apply_batch(batch);
        }
    }

    fn apply_batch(&mut self, batch: Vec<Command>) {
        if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
            let msg = e.to_string();
            batch
                .into_iter()
                .for_each(|c| c.fail(StoreError::Database(msg.clone())));
            return;
        }
        let mut pending = Pending::default();
        let mut replies: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
        for cmd in batch {
            if let Err(e) = self.conn.execute_batch("SAVEPOINT cmd") {
                cmd.fail(StoreError::Database(e.to_string()));
                continue;
            }
            let mut local = Pending::default();
            let now = Utc::now();
            // Each arm computes its result; replies are sent only after the commit.
            macro_rules! finish {
                ($result:expr, $reply:expr) => {
                    match $result {
                        Ok(value) => {
                            let _ = self.conn.execute_batch("RELEASE cmd");
                            pending.absorb(local);
                            let reply = $reply;
                            replies.push(Box::new(move || drop(reply.send(Ok(value)))));
                        }
                        Err(e) => {
                            let _ = self.conn.execute_batch("ROLLBACK TO cmd; RELEASE cmd");
                            let _ = $reply.send(Err(e));
                        }
                    }
                };
            }
            match cmd {
                Command::Track(req, source, reply) => {
                    let result = self.track(&req, source, now, &mut pending, &mut local);
                    finish!(result, reply);
                }
                Command::Delete(ids, reply) => {
                    let result = self.delete(&ids, &mut pending, &mut local);
                    finish!(result, reply);
                }
                Command::Aliases(aliases, reply) => {
                    let result = self.add_aliases(&aliases, now, &mut pending, &mut local);
                    finish!(result, reply);
                }
                Command::Identify(reqs, reply) => {
                    let result = self.identify(&reqs, now, &mut pending, &mut local);
                    finish!(result, reply);
                }
                Command::CreateKey(name, perms, reply) => {
                    let result = self.create_key(&name, &perms, now);
                    finish!(result, reply);
                }
            }
        }
        match self.conn.execute_batch("COMMIT") {
            Ok(()) => {
                for (id, p) in pending.profiles {
                    match p {
                        Some(p) => self.cache.borrow_mut().put(id, p),
                        None => self.cache.borrow_mut().remove(id),
                    }
                }
                replies.into_iter().for_each(|r| r());
            }
            Err(e) => {
                tracing::error!(error = %e, "commit failed; the batch is rolled back");
                let _ = self.conn.execute_batch("ROLLBACK");
                // Dropping the reply closures drops their senders: callers get StoreError::Closed.
                drop(replies);
            }
        }
    }

    /// The profile's row id for an identifier: written in this batch, cached, or stored.
    fn resolve(&self, id: &Identifier) -> Result<Option<i64>, StoreError> {
        if let Identifier::ExternalId(ext) = id
            && let Some(row) = self.cache.borrow().external.get(ext).copied()
        {
            return Ok(Some(row));
        }
        lookup_id(&self.conn, id)
    }

    fn load(
        &self,
        row: i64,
        pending: &mut Pending,
        local: &mut Pending,
    ) -> Result<Option<Profile>, StoreError> {
        // The latest version moves out of whichever map holds it; the caller puts it back into
        // `local` (changed or not), and anything not put back is simply read again from the
        // transaction, which always has the latest version.
        if let Some(p) = local.profiles.remove(&row) {
            return Ok(p);
        }
        if let Some(p) = pending.profiles.remove(&row) {
            return Ok(p);
        }
        if let Some(p) = self.cache.borrow_mut().take(row) {
            return Ok(Some(p));
        }
        let data: Option<String> = self
            .conn
            .prepare_cached("SELECT data FROM profiles WHERE id = ?1")?
            .query_row([row], |r| r.get(0))
            .optional()?;
        data.map(|d| profile_from_row(&d)).transpose()
    }

    fn save(&self, row: Option<i64>, profile: &Profile) -> Result<i64, StoreError> {
        let data =
            serde_json::to_string(profile).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let email = profile.standard.get("email").and_then(|v| v.as_str());
        let phone = profile.standard.get("phone").and_then(|v| v.as_str());
        match row {
            Some(id) => {
                self.conn
                    .prepare_cached("UPDATE profiles SET external_id = ?2, email = ?3, phone = ?4, data = ?5, updated_at = ?6 WHERE id = ?1")?
                    .execute(params![id, profile.external_id, email, phone, data, profile.updated_at.to_rfc3339()])?;
                Ok(id)
            }
            None => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO profiles (braze_id, external_id, email, phone, data, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )?
                    .execute(params![
                        profile.braze_id,
                        profile.external_id,
                        email,
                        phone,
                        data,
                        profile.created_at.to_rfc3339(),
                        profile.updated_at.to_rfc3339()
                    ])?;
                Ok(self.conn.last_insert_rowid())
            }
        }
    }

    fn emit(
        &self,
        profile: &Profile,
        source: ChangeSource,
        triggers: &[Trigger],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO triggers (braze_id, external_id, source, kind, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for t in triggers {
            let payload =
                serde_json::to_string(t).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            stmt.execute(params![
                profile.braze_id,
                profile.external_id,
                source.as_str(),
                t.kind(),
                payload,
                now.to_rfc3339()
            ])?;
        }
        Ok(())
    }

    /// Finds or (unless update-only) creates the profile an object is about.
    fn profile_for(
        &self,
        id: &Identifier,
        update_existing_only: bool,
        now: DateTime<Utc>,
        pending: &mut Pending,
        local: &mut Pending,
        source: ChangeSource,
    ) -> Result<Result<(i64, Profile), String>, StoreError> {
        if let Some(row) = self.resolve(id)?
            && let Some(p) = self.load(row, pending, local)?
        {
            return Ok(Ok((row, p)));
        }
        if update_existing_only {
            return Ok(Err(format!(
                "no user with {} (the object is update-only)",
                id.describe()
            )));
        }
        let mut profile = Profile::new(new_braze_id(now), now);
        let mut triggers = Vec::new();
        match id {
            Identifier::ExternalId(x) => profile.external_id = Some(x.clone()),
            Identifier::BrazeId(x) => return Ok(Err(format!("no user with braze_id '{x}'"))),
            Identifier::Alias(a) => profile.aliases.push(a.clone()),
            Identifier::Email(e) => triggers = profile.set_identifying_email(e, now),
            Identifier::Phone(p) => {
                profile
                    .standard
                    .insert("phone".into(), serde_json::Value::String(p.clone()));
            }
        }
        let row = self.save(None, &profile)?;
        if let Identifier::Alias(a) = id {
            self.conn
                .prepare_cached(
                    "INSERT INTO aliases (alias_label, alias_name, profile_id) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![a.alias_label, a.alias_name, row])?;
        }
        self.emit(&profile, source, &triggers, now)?;
        local.profiles.insert(row, Some(profile.clone()));
        Ok(Ok((row, profile)))
    }

    fn track(
        &self,
        req: &ParsedTrack,
        source: ChangeSource,
        now: DateTime<Utc>,
        pending: &mut Pending,
        local: &mut Pending,
    ) -> Result<TrackResult, StoreError> {
        let mut result = TrackResult {
            errors: req.errors.clone(),
            ..TrackResult::default()
        };
        let mut dirty: HashSet<i64> = HashSet::new();
        for obj in &req.attributes {
            let (row, mut profile) = match self.profile_for(
                &obj.identifier,
                obj.update_existing_only,
                now,
                pending,
                local,
                source,
            )? {
                Ok(found) => found,
                Err(message) => {
                    result.errors.push(MinorError {
                        message,
                        input_array: "attributes",
                        index: obj.index,
                    });
                    continue;
                }
            };
            match profile.apply_attributes(obj, now) {
                Ok(triggers) => {
                    self.emit(&profile, source, &triggers, now)?;
                    local.profiles.insert(row, Some(profile));
                    dirty.insert(row);
                    result.attributes_processed += 1;
                }
                Err(message) => {
                    // Unchanged, but it may carry this command's earlier, not yet saved changes.
                    local.profiles.insert(row, Some(profile));
                    result.errors.push(MinorError {
                        message,
                        input_array: "attributes",
                        index: obj.index,
                    })
                }
            }
        }
        // Write each touched profile once, however many objects changed it.
        for row in &dirty {
            if let Some(Some(p)) = local.profiles.get(row) {
                self.save(Some(*row), p)?;
            }
        }
        for ev in &req.events {
            let (row, profile) = match self.profile_for(
                &ev.identifier,
                ev.update_existing_only,
                now,
                pending,
                local,
                source,
            )? {
                Ok(found) => found,
                Err(message) => {
                    result.errors.push(MinorError {
                        message,
                        input_array: "events",
                        index: ev.index,
                    });
                    continue;
                }
            };
            let time = ev.time.min(now);
            let props = serde_json::to_string(&ev.properties)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            self.conn
                .prepare_cached("INSERT INTO events (profile_id, name, time, properties) VALUES (?1, ?2, ?3, ?4)")?
                .execute(params![row, ev.name, time.to_rfc3339(), props])?;
            self.emit(&profile, source, &[Profile::event_trigger(ev)], now)?;
            local.profiles.insert(row, Some(profile));
            result.events_processed += 1;
        }
        for p in &req.purchases {
            let (row, profile) = match self.profile_for(
                &p.identifier,
                p.update_existing_only,
                now,
                pending,
                local,
                source,
            )? {
                Ok(found) => found,
                Err(message) => {
                    result.errors.push(MinorError {
                        message,
                        input_array: "purchases",
                        index: p.index,
                    });
                    continue;
                }
            };
            let props = serde_json::to_string(&p.properties)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            self.conn
                .prepare_cached(
                    "INSERT INTO purchases (profile_id, product_id, currency, price, quantity, time, properties) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![row, p.product_id, p.currency, p.price, p.quantity, p.time.min(now).to_rfc3339(), props])?;
            self.emit(&profile, source, &[Profile::purchase_trigger(p)], now)?;
            local.profiles.insert(row, Some(profile));
            result.purchases_processed += 1;
        }
        result
            .errors
            .sort_by_key(|e| (array_order(e.input_array), e.index));
        Ok(result)
    }

    fn delete(
        &self,
        ids: &[Identifier],
        pending: &mut Pending,
        local: &mut Pending,
    ) -> Result<usize, StoreError> {
        let mut deleted = 0;
        for id in ids {
            let Some(row) = self.resolve(id)? else {
                continue;
            };
            if self.load(row, pending, local)?.is_none() {
                continue;
            }
            deleted += self
                .conn
                .prepare_cached("DELETE FROM profiles WHERE id = ?1")?
                .execute([row])?;
            local.profiles.insert(row, None);
        }
        Ok(deleted)
    }

    fn add_aliases(
        &self,
        aliases: &[NewAlias],
        now: DateTime<Utc>,
        pending: &mut Pending,
        local: &mut Pending,
    ) -> Result<Vec<(usize, String)>, StoreError> {
        let mut errors = Vec::new();
        for (i, new) in aliases.iter().enumerate() {
            if lookup_id(&self.conn, &Identifier::Alias(new.alias.clone()))?.is_some() {
                errors.push((
                    i,
                    format!(
                        "alias '{}' with label '{}' already exists",
                        new.alias.alias_name, new.alias.alias_label
                    ),
                ));
                continue;
            }
            match &new.external_id {
                Some(ext) => {
                    let id = Identifier::ExternalId(ext.clone());
                    let Some(row) = self.resolve(&id)? else {
                        errors.push((i, format!("no user with external_id '{ext}'")));
                        continue;
                    };
                    let Some(mut profile) = self.load(row, pending, local)? else {
                        errors.push((i, format!("no user with external_id '{ext}'")));
                        continue;
                    };
                    profile.aliases.push(new.alias.clone());
                    profile.updated_at = now;
                    self.conn
                        .prepare_cached("INSERT INTO aliases (alias_label, alias_name, profile_id) VALUES (?1, ?2, ?3)")?
                        .execute(params![new.alias.alias_label, new.alias.alias_name, row])?;
                    self.save(Some(row), &profile)?;
                    local.profiles.insert(row, Some(profile));
                }
                None => {
                    let created = self.profile_for(
                        &Identifier::Alias(new.alias.clone()),
                        false,
                        now,
                        pending,
                        local,
                        ChangeSource::Api,
                    )?;
                    if let Err(message) = created {
                        errors.push((i, message));
                    }
                }
            }
        }
        Ok(errors)
    }

    fn identify(
        &self,
        reqs: &[IdentifyRequest],
        now: DateTime<Utc>,
        pending: &mut Pending,
        local: &mut Pending,
    ) -> Result<Vec<(usize, String)>, StoreError> {
        let mut errors = Vec::new();
        for (i, req) in reqs.iter().enumerate() {
            let alias_id = Identifier::Alias(req.alias.clone());
            let Some(alias_row) = self.resolve(&alias_id)? else {
                errors.push((i, format!("no user with {}", alias_id.describe())));
                continue;
            };
            let Some(mut alias_profile) = self.load(alias_row, pending, local)? else {
                errors.push((i, format!("no user with {}", alias_id.describe())));
                continue;
            };
            if alias_profile.external_id.is_some() {
                errors.push((i, format!("{} is already identified", alias_id.describe())));
                continue;
            }
            match self.resolve(&Identifier::ExternalId(req.external_id.clone()))? {
                None => {
                    alias_profile.external_id = Some(req.external_id.clone());
                    alias_profile.updated_at = now;
                    self.save(Some(alias_row), &alias_profile)?;
                    local.profiles.insert(alias_row, Some(alias_profile));
                }
                Some(target_row) => {
                    let Some(mut target) = self.load(target_row, pending, local)? else {
                        continue;
                    };
                    // The identified profile keeps its values; the alias profile fills only gaps.
                    for (k, v) in &alias_profile.custom {
                        target.custom.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                    for (k, v) in &alias_profile.standard {
                        target
                            .standard
                            .entry(k.clone())
                            .or_insert_with(|| v.clone());
                    }
                    for a in &alias_profile.aliases {
                        if !target.aliases.contains(a) {
                            target.aliases.push(a.clone());
                        }
                    }
                    target.updated_at = now;
                    self.conn
                        .prepare_cached("UPDATE aliases SET profile_id = ?1 WHERE profile_id = ?2")?
                        .execute(params![target_row, alias_row])?;
                    self.conn
                        .prepare_cached("UPDATE events SET profile_id = ?1 WHERE profile_id = ?2")?
                        .execute(params![target_row, alias_row])?;
                    self.conn
                        .prepare_cached(
                            "UPDATE purchases SET profile_id = ?1 WHERE profile_id = ?2",
                        )?
                        .execute(params![target_row, alias_row])?;
                    self.conn
                        .prepare_cached("DELETE FROM profiles WHERE id = ?1")?
                        .execute([alias_row])?;
                    self.save(Some(target_row), &target)?;
                    local.profiles.insert(alias_row, None);
                    local.profiles.insert(target_row, Some(target));
                }
            }
        }
        Ok(errors)
    }

    fn create_key(
        &self,
        name: &str,
        permissions: &[String],
        now: DateTime<Utc>,
    ) -> Result<String, StoreError> {
        let key = format!(
            "lw-{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        let id = format!("key-{:08x}", rand::random::<u32>());
        self.conn
            .prepare_cached("INSERT INTO api_keys (id, key_hash, name, permissions, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![id, hash_key(&key), name, permissions.join(","), now.to_rfc3339()])?;
        Ok(key)
    }
}

fn array_order(name: &str) -> u8 {
    match name {
        "attributes" => 0,
        "events" => 1,
        _ => 2,
    }
}

/// Reads for other components that share leadwire's SQLite file and need the store's data inside
/// their own transactions (the campaign engine reads the feed and profiles in the same transaction
/// as it enqueues sends). They read committed data only; all writes stay with [`SqliteStore`].
pub mod shared {
    use super::*;

    /// Applies the `(version, SQL)` migrations not yet recorded in the `ledger` table, each in its
    /// own IMMEDIATE transaction that re-checks the ledger, so two processes starting on the same
    /// file cannot apply one twice. Every component keeps its own ledger on the shared file.
    pub fn apply_migrations(
        conn: &mut Connection,
        ledger: &str,
        migrations: &[(i64, &str)],
    ) -> Result<(), StoreError> {
        if ledger.is_empty() || !ledger.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
            return Err(StoreError::Database(format!(
                "'{ledger}' is not a valid migrations table name"
            )));
        }
        conn.execute_batch(&format!("CREATE TABLE IF NOT EXISTS {ledger} (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"))?;
        for (version, sql) in migrations {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let applied: bool = tx.query_row(
                &format!("SELECT EXISTS(SELECT 1 FROM {ledger} WHERE version = ?1)"),
                [version],
                |r| r.get(0),
            )?;
            if !applied {
                tx.execute_batch(sql)?;
                tx.execute(
                    &format!("INSERT INTO {ledger} (version, applied_at) VALUES (?1, ?2)"),
                    params![version, Utc::now().to_rfc3339()],
                )?;
                tracing::info!(ledger, version, "applied migration");
            }
            tx.commit()?;
        }
        Ok(())
    }

    /// The profile with this braze id, as of the caller's transaction.
    pub fn profile_by_braze_id(
        conn: &Connection,
        braze_id: &str,
    ) -> Result<Option<Profile>, StoreError> {
        let data: Option<String> = conn
            .prepare_cached("SELECT data FROM profiles WHERE braze_id = ?1")?
            .query_row([braze_id], |r| r.get(0))
            .optional()?;
        data.map(|d| profile_from_row(&d)).transpose()
    }

    /// The profile an identifier names (Braze's precedence for email and phone).
    pub fn profile_by_identifier(
        conn: &Connection,
        id: &Identifier,
    ) -> Result<Option<Profile>, StoreError> {
        let Some(row) = lookup_id(conn, id)? else {
            return Ok(None);
        };
        let data: String = conn
            .prepare_cached("SELECT data FROM profiles WHERE id = ?1")?
            .query_row([row], |r| r.get(0))?;
        profile_from_row(&data).map(Some)
    }

    /// Trigger feed entries after `position`, oldest first.
    pub fn triggers_after(
        conn: &Connection,
        position: i64,
        limit: usize,
    ) -> Result<Vec<TriggerRecord>, StoreError> {
        read_triggers(conn, position, limit)
    }
}

fn read_triggers(
    conn: &Connection,
    position: i64,
    limit: usize,
) -> Result<Vec<TriggerRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, braze_id, external_id, source, payload, created_at FROM triggers WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![position, limit as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, braze_id, external_id, source, payload, created_at) = row?;
        let trigger: Trigger = serde_json::from_str(&payload)
            .map_err(|e| StoreError::Corrupt(format!("trigger {seq}: {e}")))?;
        let created_at = DateTime::parse_from_rfc3339(&created_at)
            .map_err(|e| StoreError::Corrupt(format!("trigger {seq} time: {e}")))?
            .with_timezone(&Utc);
        out.push(TriggerRecord {
            seq,
            braze_id,
            external_id,
            source: ChangeSource::parse(&source),
            trigger,
            created_at,
        });
    }
    Ok(out)
}
