//! Profiles, aliases, events, purchases and API keys on PostgreSQL. The rules are in
//! `crate::profiles`; this is row access. Nodes share no cache: a write transaction locks each
//! profile it loads (`FOR UPDATE`) until it commits.

use chrono::{DateTime, Utc};
use leadwire_profiles::{
    ActionSummary, EventObject, History, Identifier, Profile, PurchaseObject, Trigger, UserAlias,
};

use super::{PgTx, count};
use crate::codec::{decode_permissions, encode_permissions, new_api_key};
use crate::profiles::ProfileRows;
use crate::{ApiKeyInfo, Origin, StoreError};

fn text<'p>(p: &'p Profile, key: &str) -> Option<&'p str> {
    p.standard.get(key).and_then(|v| v.as_str())
}

fn encode(p: &Profile) -> Result<String, StoreError> {
    serde_json::to_string(p).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl PgTx<'_> {
    /// Every user's braze id (a broadcast's audience).
    pub fn braze_ids(&mut self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .query("SELECT braze_id FROM profiles ORDER BY id", &[])?
            .into_iter()
            .map(|r| r.get(0))
            .collect())
    }

    pub fn profile_count(&mut self) -> Result<u64, StoreError> {
        Ok(count(
            self.query_one("SELECT COUNT(*) FROM profiles", &[])?.get(0),
        ))
    }

    pub fn api_key_by_hash(&mut self, hash: &str) -> Result<Option<ApiKeyInfo>, StoreError> {
        let row = self.query_opt(
            "SELECT id, name, permissions FROM api_keys WHERE key_hash = $1",
            &[&hash],
        )?;
        Ok(row.map(|r| ApiKeyInfo {
            id: r.get(0),
            name: r.get(1),
            permissions: decode_permissions(r.get(2)),
        }))
    }

    pub fn create_api_key(
        &mut self,
        name: &str,
        permissions: &[String],
    ) -> Result<String, StoreError> {
        let (id, key, hash) = new_api_key();
        self.execute(
            "INSERT INTO api_keys (id, key_hash, name, permissions, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&id, &hash, &name, &encode_permissions(permissions), &self.now.to_rfc3339()],
        )?;
        Ok(key)
    }
}

impl PgTx<'_> {
    /// Runs a lookup that returns `(id, data)` and keeps the data for `load`.
    fn resolve_fetching(&mut self, sql: &str, key: &str) -> Result<Option<i64>, StoreError> {
        let Some(r) = self.query_opt(sql, &[&key])? else {
            return Ok(None);
        };
        let row: i64 = r.get(0);
        if !self.local.contains_key(&row) {
            self.prefetched.insert(row, r.get::<_, String>(1));
        }
        Ok(Some(row))
    }
}

impl ProfileRows for PgTx<'_> {
    fn now(&self) -> DateTime<Utc> {
        self.now
    }

    fn resolve(&mut self, id: &Identifier) -> Result<Option<i64>, StoreError> {
        let row = match id {
            // Lookups by external id and braze id fetch (and lock) the row in the same round
            // trip; `load` takes it from there.
            Identifier::ExternalId(x) => {
                let sql = if self.writable {
                    "SELECT id, data FROM profiles WHERE external_id = $1 FOR UPDATE"
                } else {
                    "SELECT id, data FROM profiles WHERE external_id = $1"
                };
                return self.resolve_fetching(sql, x);
            }
            Identifier::BrazeId(x) => {
                let sql = if self.writable {
                    "SELECT id, data FROM profiles WHERE braze_id = $1 FOR UPDATE"
                } else {
                    "SELECT id, data FROM profiles WHERE braze_id = $1"
                };
                return self.resolve_fetching(sql, x);
            }
            Identifier::Alias(a) => self.query_opt(
                "SELECT profile_id FROM aliases WHERE alias_label = $1 AND alias_name = $2",
                &[&a.alias_label, &a.alias_name],
            )?,
            // Braze: the most recently updated profile with an external_id wins, else the most
            // recent.
            Identifier::Email(e) => self.query_opt(
                "SELECT id FROM profiles WHERE email = $1 ORDER BY external_id IS NULL, updated_at DESC LIMIT 1",
                &[e],
            )?,
            Identifier::Phone(p) => self.query_opt(
                "SELECT id FROM profiles WHERE phone = $1 ORDER BY external_id IS NULL, updated_at DESC LIMIT 1",
                &[p],
            )?,
        };
        Ok(row.map(|r| r.get(0)))
    }

    fn load(&mut self, row: i64) -> Result<Option<Profile>, StoreError> {
        if let Some(p) = self.local.remove(&row) {
            return Ok(p);
        }
        let data = match self.prefetched.remove(&row) {
            Some(data) => Some(data),
            None => {
                let sql = if self.writable {
                    "SELECT data FROM profiles WHERE id = $1 FOR UPDATE"
                } else {
                    "SELECT data FROM profiles WHERE id = $1"
                };
                self.query_opt(sql, &[&row])?.map(|r| r.get::<_, String>(0))
            }
        };
        data.map(|d| {
            serde_json::from_str(&d).map_err(|e| StoreError::Corrupt(format!("profile {row}: {e}")))
        })
        .transpose()
    }

    fn keep(&mut self, row: i64, profile: Option<Profile>) {
        self.local.insert(row, profile);
    }

    fn kept(&mut self, row: i64) -> Option<Option<Profile>> {
        self.local.remove(&row)
    }

    fn save(&mut self, row: i64, p: &Profile) -> Result<(), StoreError> {
        self.prefetched.remove(&row);
        self.execute(
            "UPDATE profiles SET external_id = $2, email = $3, phone = $4, data = $5, updated_at = $6 WHERE id = $1",
            &[
                &row,
                &p.external_id,
                &text(p, "email"),
                &text(p, "phone"),
                &encode(p)?,
                &p.updated_at.to_rfc3339(),
            ],
        )?;
        Ok(())
    }

    fn insert(&mut self, p: &Profile) -> Result<Option<i64>, StoreError> {
        // Another node may create the same external id between our lookup and this insert:
        // then nothing is inserted, and the caller finds theirs.
        let row = self.query_opt(
            "INSERT INTO profiles (braze_id, external_id, email, phone, data, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (external_id) DO NOTHING RETURNING id",
            &[
                &p.braze_id,
                &p.external_id,
                &text(p, "email"),
                &text(p, "phone"),
                &encode(p)?,
                &p.created_at.to_rfc3339(),
                &p.updated_at.to_rfc3339(),
            ],
        )?;
        Ok(row.map(|r| r.get(0)))
    }

    fn insert_alias(&mut self, alias: &UserAlias, row: i64) -> Result<(), StoreError> {
        self.query_unique(
            "INSERT INTO aliases (alias_label, alias_name, profile_id) VALUES ($1, $2, $3)",
            &[&alias.alias_label, &alias.alias_name, &row],
            || {
                format!(
                    "alias '{}' with label '{}' already exists",
                    alias.alias_name, alias.alias_label
                )
            },
        )?;
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
        self.execute(
            "INSERT INTO events (profile_id, name, time, properties) VALUES ($1, $2, $3, $4)",
            &[&row, &event.name, &time.to_rfc3339(), &props],
        )?;
        Ok(())
    }

    fn history(&mut self, row: i64) -> Result<History, StoreError> {
        let mut history = History::default();
        let summary = |r: &postgres::Row| ActionSummary {
            name: r.get(0),
            first: r.get(1),
            last: r.get(2),
            count: r.get::<_, i64>(3).max(0) as u64,
        };
        for r in self.query("SELECT name, MIN(time), MAX(time), COUNT(*) FROM events WHERE profile_id = $1 GROUP BY name ORDER BY name", &[&row])? {
            history.custom_events.push(summary(&r));
        }
        for r in self.query("SELECT product_id, MIN(time), MAX(time), COUNT(*), SUM(price * quantity) FROM purchases WHERE profile_id = $1 GROUP BY product_id ORDER BY product_id", &[&row])? {
            history.total_revenue += r.get::<_, f64>(4);
            history.purchases.push(summary(&r));
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
        self.execute(
            "INSERT INTO purchases (profile_id, product_id, currency, price, quantity, time, properties) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&row, &p.product_id, &p.currency, &p.price, &p.quantity, &time.to_rfc3339(), &props],
        )?;
        Ok(())
    }

    fn emit(
        &mut self,
        profile: &Profile,
        origin: &Origin,
        triggers: &[Trigger],
    ) -> Result<(), StoreError> {
        for t in triggers {
            let payload =
                serde_json::to_string(t).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            self.append_trigger(
                &profile.braze_id,
                profile.external_id.as_deref(),
                origin.source.as_str(),
                t.kind(),
                payload,
                origin.trace_context.as_deref(),
            )?;
        }
        Ok(())
    }

    fn merge_rows(&mut self, from: i64, into: i64) -> Result<(), StoreError> {
        for sql in [
            "UPDATE aliases SET profile_id = $1 WHERE profile_id = $2",
            "UPDATE events SET profile_id = $1 WHERE profile_id = $2",
            "UPDATE purchases SET profile_id = $1 WHERE profile_id = $2",
        ] {
            self.execute(sql, &[&into, &from])?;
        }
        self.delete_row(from)?;
        Ok(())
    }

    fn delete_row(&mut self, row: i64) -> Result<usize, StoreError> {
        self.prefetched.remove(&row);
        Ok(
            usize::try_from(self.execute("DELETE FROM profiles WHERE id = $1", &[&row])?)
                .unwrap_or(0),
        )
    }
}
