//! Profiles, aliases, events, purchases and API keys: `/users/track` and friends.

use chrono::{DateTime, Utc};
use leadwire_profiles::{
    ActionSummary, EventObject, History, Identifier, Profile, PurchaseObject, Trigger, UserAlias,
};
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteTx;
use crate::codec::{decode_permissions, encode_permissions, new_api_key};
use crate::profiles::ProfileRows;
use crate::{ApiKeyInfo, Origin, StoreError};

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

impl SqliteTx<'_> {
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
            permissions: decode_permissions(&perms),
        }))
    }

    pub fn create_api_key(
        &mut self,
        name: &str,
        permissions: &[String],
    ) -> Result<String, StoreError> {
        let now = self.now;
        let (id, key, hash) = new_api_key();
        self.conn
            .prepare_cached("INSERT INTO api_keys (id, key_hash, name, permissions, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![id, hash, name, encode_permissions(permissions), now.to_rfc3339()])?;
        Ok(key)
    }
}

impl ProfileRows for SqliteTx<'_> {
    fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Written in this batch, cached, or stored.
    fn resolve(&mut self, id: &Identifier) -> Result<Option<i64>, StoreError> {
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

    fn keep(&mut self, row: i64, profile: Option<Profile>) {
        self.local.profiles.insert(row, profile);
    }

    fn kept(&mut self, row: i64) -> Option<Option<Profile>> {
        self.local.profiles.remove(&row)
    }

    fn save(&mut self, id: i64, profile: &Profile) -> Result<(), StoreError> {
        let data =
            serde_json::to_string(profile).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let identity = Identity::of(profile);
        let updated_at = profile.updated_at.to_rfc3339();
        if self.identities.get(&id) == Some(&identity) {
            self.conn
                .prepare_cached("UPDATE profiles SET data = ?2, updated_at = ?3 WHERE id = ?1")?
                .execute(params![id, data, updated_at])?;
        } else {
            self.conn
                .prepare_cached("UPDATE profiles SET external_id = ?2, email = ?3, phone = ?4, data = ?5, updated_at = ?6 WHERE id = ?1")?
                .execute(params![id, identity.external_id, identity.email, identity.phone, data, updated_at])?;
            self.identities.insert(id, identity);
        }
        Ok(())
    }

    fn insert(&mut self, profile: &Profile) -> Result<Option<i64>, StoreError> {
        let data =
            serde_json::to_string(profile).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let identity = Identity::of(profile);
        // One writer: nobody can have created the same external id since `resolve`.
        self.conn
            .prepare_cached(
                "INSERT INTO profiles (braze_id, external_id, email, phone, data, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                profile.braze_id,
                identity.external_id,
                identity.email,
                identity.phone,
                data,
                profile.created_at.to_rfc3339(),
                profile.updated_at.to_rfc3339()
            ])?;
        Ok(Some(self.conn.last_insert_rowid()))
    }

    fn insert_alias(&mut self, alias: &UserAlias, row: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO aliases (alias_label, alias_name, profile_id) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![alias.alias_label, alias.alias_name, row])?;
        Ok(())
    }

    fn insert_event(
        &mut self,
        row: i64,
        event: &EventObject,
        time: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let props = serde_json::to_string(&event.properties)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.conn
            .prepare_cached(
                "INSERT INTO events (profile_id, name, time, properties) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![row, event.name, time.to_rfc3339(), props])?;
        Ok(())
    }

    fn history(&mut self, row: i64) -> Result<History, StoreError> {
        let mut history = History::default();
        let mut events = self.conn.prepare_cached("SELECT name, MIN(time), MAX(time), COUNT(*) FROM events WHERE profile_id = ?1 GROUP BY name ORDER BY name")?;
        let rows = events.query_map(params![row], |r| {
            Ok(ActionSummary {
                name: r.get(0)?,
                first: r.get(1)?,
                last: r.get(2)?,
                count: r.get::<_, i64>(3)?.max(0) as u64,
            })
        })?;
        for summary in rows {
            history.custom_events.push(summary?);
        }
        let mut purchases = self.conn.prepare_cached("SELECT product_id, MIN(time), MAX(time), COUNT(*), SUM(price * quantity) FROM purchases WHERE profile_id = ?1 GROUP BY product_id ORDER BY product_id")?;
        let rows = purchases.query_map(params![row], |r| {
            Ok((
                ActionSummary {
                    name: r.get(0)?,
                    first: r.get(1)?,
                    last: r.get(2)?,
                    count: r.get::<_, i64>(3)?.max(0) as u64,
                },
                r.get::<_, f64>(4)?,
            ))
        })?;
        for summary in rows {
            let (summary, revenue) = summary?;
            history.total_revenue += revenue;
            history.purchases.push(summary);
        }
        Ok(history)
    }

    fn insert_purchase(
        &mut self,
        row: i64,
        p: &PurchaseObject,
        time: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let props =
            serde_json::to_string(&p.properties).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.conn
            .prepare_cached(
                "INSERT INTO purchases (profile_id, product_id, currency, price, quantity, time, properties) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![row, p.product_id, p.currency, p.price, p.quantity, time.to_rfc3339(), props])?;
        Ok(())
    }

    fn emit(
        &mut self,
        profile: &Profile,
        origin: &Origin,
        triggers: &[Trigger],
    ) -> Result<(), StoreError> {
        let now = self.now.to_rfc3339();
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO triggers (braze_id, external_id, source, kind, payload, created_at, trace_context) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for t in triggers {
            let payload =
                serde_json::to_string(t).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            stmt.execute(params![
                profile.braze_id,
                profile.external_id,
                origin.source.as_str(),
                t.kind(),
                payload,
                now,
                origin.trace_context
            ])?;
            self.effects.feed_end = Some(self.conn.last_insert_rowid());
        }
        Ok(())
    }

    fn merge_rows(&mut self, from: i64, into: i64) -> Result<(), StoreError> {
        for sql in [
            "UPDATE aliases SET profile_id = ?1 WHERE profile_id = ?2",
            "UPDATE events SET profile_id = ?1 WHERE profile_id = ?2",
            "UPDATE purchases SET profile_id = ?1 WHERE profile_id = ?2",
        ] {
            self.conn
                .prepare_cached(sql)?
                .execute(params![into, from])?;
        }
        self.delete_row(from)?;
        Ok(())
    }

    fn delete_row(&mut self, row: i64) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .prepare_cached("DELETE FROM profiles WHERE id = ?1")?
            .execute([row])?)
    }
}

impl SqliteTx<'_> {
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
}
