//! The web dashboard's users and sessions on PostgreSQL.

use chrono::{DateTime, Utc};
use postgres::Row;

use super::PgTx;
use crate::codec::{from_utc_millis, new_id, utc_millis};
use crate::{DashboardSessionRow, DashboardUserRow, EventRow, StoreError};

const USER_COLUMNS: &str = "u.id, u.email, u.password_hash, u.role, u.created_at";

fn user_row(r: &Row) -> DashboardUserRow {
    DashboardUserRow {
        id: r.get(0),
        email: r.get(1),
        password_hash: r.get(2),
        role: r.get(3),
        created_at: from_utc_millis(r.get(4)),
    }
}

impl PgTx<'_> {
    /// Adds a dashboard user; the email must not be taken. Returns the user's id.
    pub fn create_dashboard_user(
        &mut self,
        email: &str,
        password_hash: &str,
        role: &str,
    ) -> Result<String, StoreError> {
        let id = new_id("du_");
        let now = utc_millis(self.now);
        self.query_unique(
            "INSERT INTO dashboard_users (id, email, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&id, &email, &password_hash, &role, &now],
            || format!("a dashboard user with email '{email}' exists"),
        )?;
        Ok(id)
    }

    pub fn dashboard_user_by_email(
        &mut self,
        email: &str,
    ) -> Result<Option<DashboardUserRow>, StoreError> {
        Ok(self
            .query_opt(
                &format!("SELECT {USER_COLUMNS} FROM dashboard_users u WHERE u.email = $1"),
                &[&email],
            )?
            .map(|r| user_row(&r)))
    }

    /// Every dashboard user, by email.
    pub fn dashboard_users(&mut self) -> Result<Vec<DashboardUserRow>, StoreError> {
        Ok(self
            .query(
                &format!("SELECT {USER_COLUMNS} FROM dashboard_users u ORDER BY u.email"),
                &[],
            )?
            .iter()
            .map(user_row)
            .collect())
    }

    /// Saves a session under its token's hash, and deletes sessions that have expired.
    pub fn create_dashboard_session(
        &mut self,
        token_hash: &str,
        user_id: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let now = utc_millis(self.now);
        self.execute(
            "DELETE FROM dashboard_sessions WHERE expires_at <= $1",
            &[&now],
        )?;
        self.execute(
            "INSERT INTO dashboard_sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            &[&token_hash, &user_id, &now, &utc_millis(expires_at)],
        )?;
        Ok(())
    }

    /// The session stored under this hash and its user, unless it expired by `now`.
    pub fn dashboard_session(
        &mut self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DashboardSessionRow>, StoreError> {
        Ok(self
            .query_opt(
                &format!(
                    "SELECT {USER_COLUMNS}, s.expires_at FROM dashboard_sessions s JOIN dashboard_users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > $2"
                ),
                &[&token_hash, &utc_millis(now)],
            )?
            .map(|r| DashboardSessionRow {
                user: user_row(&r),
                expires_at: from_utc_millis(r.get(5)),
            }))
    }

    /// Ends a session (signing out); `false` when there was none.
    pub fn delete_dashboard_session(&mut self, token_hash: &str) -> Result<bool, StoreError> {
        Ok(self.execute(
            "DELETE FROM dashboard_sessions WHERE token_hash = $1",
            &[&token_hash],
        )? > 0)
    }

    /// A user's custom events, newest first.
    pub fn recent_events(
        &mut self,
        braze_id: &str,
        limit: usize,
    ) -> Result<Vec<EventRow>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query(
            "SELECT e.name, e.time, e.properties FROM events e JOIN profiles p ON p.id = e.profile_id WHERE p.braze_id = $1 ORDER BY e.id DESC LIMIT $2",
            &[&braze_id, &limit],
        )?
        .iter()
        .map(|r| {
            Ok(EventRow {
                name: r.get(0),
                time: r.get(1),
                properties: crate::codec::parse_json("event properties", r.get(2))?,
            })
        })
        .collect()
    }
}
