//! Profiles, aliases, events, purchases and API keys: `/users/track` and friends.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use leadwire_profiles::{Identifier, MinorError, ParsedTrack, Profile, Trigger};
use rusqlite::{Connection, OptionalExtension, params};

use super::Tx;
use crate::model::hash_key;
use crate::{ApiKeyInfo, ChangeSource, IdentifyRequest, NewAlias, StoreError, TrackResult};

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

/// A profile's indexed columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    external_id: Option<String>,
    email: Option<String>,
    phone: Option<String>,
}

impl Identity {
    fn of(p: &Profile) -> Identity {
        let text = |k: &str| {
            p.standard
                .get(k)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        Identity {
            external_id: p.external_id.clone(),
            email: text("email"),
            phone: text("phone"),
        }
    }
}

fn array_order(name: &str) -> u8 {
    match name {
        "attributes" => 0,
        "events" => 1,
        _ => 2,
    }
}

impl Tx<'_> {
    /// The profile an identifier names (Braze's precedence for email and phone), as of this
    /// transaction.
    pub fn profile(&mut self, id: &Identifier) -> Result<Option<Profile>, StoreError> {
        let Some(row) = self.resolve(id)? else {
            return Ok(None);
        };
        let found = self.load(row)?;
        // `load` moves the profile out of wherever it was; put it back, unchanged.
        if let Some(p) = &found {
            self.local.profiles.insert(row, Some(p.clone()));
        }
        Ok(found)
    }

    pub fn profile_by_braze_id(&mut self, braze_id: &str) -> Result<Option<Profile>, StoreError> {
        self.profile(&Identifier::BrazeId(braze_id.to_owned()))
    }

    /// Every user's braze id (a broadcast's audience).
    pub fn braze_ids(&mut self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT braze_id FROM profiles ORDER BY id")?;
        let ids = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(ids)
    }

    pub fn profile_count(&mut self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM profiles", [], |r| r.get::<_, i64>(0))?
            .max(0) as u64)
    }

    pub fn api_key_by_hash(&mut self, hash: &str) -> Result<Option<ApiKeyInfo>, StoreError> {
        let row = self
            .conn
            .prepare_cached("SELECT id, name, permissions FROM api_keys WHERE key_hash = ?1")?
            .query_row([hash], |r| {
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
    }

    /// The profile's row id for an identifier: written in this batch, cached, or stored.
    fn resolve(&self, id: &Identifier) -> Result<Option<i64>, StoreError> {
        if let Identifier::ExternalId(ext) = id
            && let Some(row) = self.cache.and_then(|c| c.borrow().external(ext))
        {
            return Ok(Some(row));
        }
        lookup_id(self.conn, id)
    }

    fn load(&mut self, row: i64) -> Result<Option<Profile>, StoreError> {
        let found = self.load_latest(row)?;
        // What the row's indexed columns hold now, so a save that leaves them alone can skip
        // rewriting three indexes.
        if let Some(p) = &found {
            self.identities
                .entry(row)
                .or_insert_with(|| Identity::of(p));
        }
        Ok(found)
    }

    fn load_latest(&mut self, row: i64) -> Result<Option<Profile>, StoreError> {
        // The latest version moves out of whichever map holds it; the caller puts it back into
        // `local` (changed or not), and anything not put back is simply read again from the
        // transaction, which always has the latest version.
        if let Some(p) = self.local.profiles.remove(&row) {
            return Ok(p);
        }
        if let Some(p) = self.pending.profiles.remove(&row) {
            return Ok(p);
        }
        if let Some(p) = self.cache.and_then(|c| c.borrow_mut().take(row)) {
            return Ok(Some(p));
        }
        let data: Option<String> = self
            .conn
            .prepare_cached("SELECT data FROM profiles WHERE id = ?1")?
            .query_row([row], |r| r.get(0))
            .optional()?;
        data.map(|d| profile_from_row(&d)).transpose()
    }

    fn save(&mut self, row: Option<i64>, profile: &Profile) -> Result<i64, StoreError> {
        let data =
            serde_json::to_string(profile).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let email = profile.standard.get("email").and_then(|v| v.as_str());
        let phone = profile.standard.get("phone").and_then(|v| v.as_str());
        let identity = Identity::of(profile);
        match row {
            Some(id) if self.identities.get(&id) == Some(&identity) => {
                self.conn
                    .prepare_cached("UPDATE profiles SET data = ?2, updated_at = ?3 WHERE id = ?1")?
                    .execute(params![id, data, profile.updated_at.to_rfc3339()])?;
                Ok(id)
            }
            Some(id) => {
                self.identities.insert(id, identity);
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
        &mut self,
        profile: &Profile,
        source: ChangeSource,
        triggers: &[Trigger],
    ) -> Result<(), StoreError> {
        let now = self.now;
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
            self.effects.feed_end = Some(self.conn.last_insert_rowid());
        }
        Ok(())
    }

    /// Finds or (unless update-only) creates the profile an object is about.
    fn profile_for(
        &mut self,
        id: &Identifier,
        update_existing_only: bool,
        source: ChangeSource,
    ) -> Result<Result<(i64, Profile), String>, StoreError> {
        let now = self.now;
        if let Some(row) = self.resolve(id)?
            && let Some(p) = self.load(row)?
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
        self.emit(&profile, source, &triggers)?;
        self.local.profiles.insert(row, Some(profile.clone()));
        Ok(Ok((row, profile)))
    }

    pub fn track(
        &mut self,
        req: &ParsedTrack,
        source: ChangeSource,
    ) -> Result<TrackResult, StoreError> {
        let now = self.now;
        let mut result = TrackResult {
            errors: req.errors.clone(),
            ..TrackResult::default()
        };
        let mut dirty: HashSet<i64> = HashSet::new();
        for obj in &req.attributes {
            let (row, mut profile) =
                match self.profile_for(&obj.identifier, obj.update_existing_only, source)? {
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
                    self.emit(&profile, source, &triggers)?;
                    self.local.profiles.insert(row, Some(profile));
                    dirty.insert(row);
                    result.attributes_processed += 1;
                }
                Err(message) => {
                    // Unchanged, but it may carry this command's earlier, not yet saved changes.
                    self.local.profiles.insert(row, Some(profile));
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
            if let Some(Some(p)) = self.local.profiles.remove(row) {
                self.save(Some(*row), &p)?;
                self.local.profiles.insert(*row, Some(p));
            }
        }
        for ev in &req.events {
            let (row, profile) =
                match self.profile_for(&ev.identifier, ev.update_existing_only, source)? {
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
            self.emit(&profile, source, &[Profile::event_trigger(ev)])?;
            self.local.profiles.insert(row, Some(profile));
            result.events_processed += 1;
        }
        for p in &req.purchases {
            let (row, profile) =
                match self.profile_for(&p.identifier, p.update_existing_only, source)? {
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
            self.emit(&profile, source, &[Profile::purchase_trigger(p)])?;
            self.local.profiles.insert(row, Some(profile));
            result.purchases_processed += 1;
        }
        result
            .errors
            .sort_by_key(|e| (array_order(e.input_array), e.index));
        Ok(result)
    }

    pub fn delete_users(&mut self, ids: &[Identifier]) -> Result<usize, StoreError> {
        let mut deleted = 0;
        for id in ids {
            let Some(row) = self.resolve(id)? else {
                continue;
            };
            if self.load(row)?.is_none() {
                continue;
            }
            deleted += self
                .conn
                .prepare_cached("DELETE FROM profiles WHERE id = ?1")?
                .execute([row])?;
            self.local.profiles.insert(row, None);
        }
        Ok(deleted)
    }

    pub fn add_aliases(
        &mut self,
        aliases: &[NewAlias],
    ) -> Result<Vec<(usize, String)>, StoreError> {
        let now = self.now;
        let mut errors = Vec::new();
        for (i, new) in aliases.iter().enumerate() {
            if lookup_id(self.conn, &Identifier::Alias(new.alias.clone()))?.is_some() {
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
                    let Some(mut profile) = self.load(row)? else {
                        errors.push((i, format!("no user with external_id '{ext}'")));
                        continue;
                    };
                    profile.aliases.push(new.alias.clone());
                    profile.updated_at = now;
                    self.conn
                        .prepare_cached("INSERT INTO aliases (alias_label, alias_name, profile_id) VALUES (?1, ?2, ?3)")?
                        .execute(params![new.alias.alias_label, new.alias.alias_name, row])?;
                    self.save(Some(row), &profile)?;
                    self.local.profiles.insert(row, Some(profile));
                }
                None => {
                    let created = self.profile_for(
                        &Identifier::Alias(new.alias.clone()),
                        false,
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

    pub fn identify(
        &mut self,
        reqs: &[IdentifyRequest],
    ) -> Result<Vec<(usize, String)>, StoreError> {
        let now = self.now;
        let mut errors = Vec::new();
        for (i, req) in reqs.iter().enumerate() {
            let alias_id = Identifier::Alias(req.alias.clone());
            let Some(alias_row) = self.resolve(&alias_id)? else {
                errors.push((i, format!("no user with {}", alias_id.describe())));
                continue;
            };
            let Some(mut alias_profile) = self.load(alias_row)? else {
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
                    self.local.profiles.insert(alias_row, Some(alias_profile));
                }
                Some(target_row) => {
                    let Some(mut target) = self.load(target_row)? else {
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
                    self.local.profiles.insert(alias_row, None);
                    self.local.profiles.insert(target_row, Some(target));
                }
            }
        }
        Ok(errors)
    }

    pub fn create_api_key(
        &mut self,
        name: &str,
        permissions: &[String],
    ) -> Result<String, StoreError> {
        let now = self.now;
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
