//! The web dashboard's users and sessions (`dashboard_users`, `dashboard_sessions`).

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{SqliteTx, conflict};
use crate::codec::{from_utc_millis, new_id, utc_millis};
use crate::{DashboardSessionRow, DashboardUserRow, EventRow, StoreError};

const USER_COLUMNS: &str = "u.id, u.email, u.password_hash, u.role, u.created_at";

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DashboardUserRow> {
    Ok(DashboardUserRow {
        id: r.get(0)?,
        email: r.get(1)?,
        password_hash: r.get(2)?,
        role: r.get(3)?,
        created_at: from_utc_millis(r.get(4)?),
    })
}

impl SqliteTx<'_> {
    /// Adds a dashboard user; the email must not be taken. Returns the user's id.
    pub fn create_dashboard_user(
        &mut self,
        email: &str,
        password_hash: &str,
        role: &str,
    ) -> Result<String, StoreError> {
        let id = new_id("du_");
        self.conn
            .prepare_cached(
                "INSERT INTO dashboard_users (id, email, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![id, email, password_hash, role, utc_millis(self.now)])
            .map_err(|e| conflict(e, || format!("a dashboard user with email '{email}' exists")))?;
        Ok(id)
    }

    pub fn dashboard_user_by_email(
        &mut self,
        email: &str,
    ) -> Result<Option<DashboardUserRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM dashboard_users u WHERE u.email = ?1"
            ))?
            .query_row([email], user_row)
            .optional()?)
    }

    /// Every dashboard user, by email.
    pub fn dashboard_users(&mut self) -> Result<Vec<DashboardUserRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {USER_COLUMNS} FROM dashboard_users u ORDER BY u.email"
        ))?;
        let rows = stmt.query_map([], user_row)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Saves a session under its token's hash, and deletes sessions that have expired.
    pub fn create_dashboard_session(
        &mut self,
        token_hash: &str,
        user_id: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = utc_millis(self.now);
        self.conn
            .prepare_cached("DELETE FROM dashboard_sessions WHERE expires_at <= ?1")?
            .execute([now])?;
        self.conn
            .prepare_cached(
                "INSERT INTO dashboard_sessions (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![token_hash, user_id, now, utc_millis(expires_at)])?;
        Ok(())
    }

    /// The session stored under this hash and its user, unless it expired by `now`.
    pub fn dashboard_session(
        &mut self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DashboardSessionRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {USER_COLUMNS}, s.expires_at FROM dashboard_sessions s JOIN dashboard_users u ON u.id = s.user_id WHERE s.token_hash = ?1 AND s.expires_at > ?2"
            ))?
            .query_row(params![token_hash, utc_millis(now)], |r| {
                Ok(DashboardSessionRow {
                    user: user_row(r)?,
                    expires_at: from_utc_millis(r.get(5)?),
                })
            })
            .optional()?)
    }

    /// Ends a session (signing out); `false` when there was none.
    pub fn delete_dashboard_session(&mut self, token_hash: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("DELETE FROM dashboard_sessions WHERE token_hash = ?1")?
            .execute([token_hash])?
            > 0)
    }

    /// A user's custom events, newest first.
    pub fn recent_events(
        &mut self,
        braze_id: &str,
        limit: usize,
    ) -> Result<Vec<EventRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.name, e.time, e.properties FROM events e JOIN profiles p ON p.id = e.profile_id WHERE p.braze_id = ?1 ORDER BY e.id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            params![braze_id, i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (name, time, properties) = row?;
            out.push(EventRow {
                name,
                time,
                properties: crate::codec::parse_json("event properties", &properties)?,
            });
        }
        Ok(out)
    }
}
