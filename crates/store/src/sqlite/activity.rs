//! The message activity log (`webhook_activity`).

use std::time::SystemTime;

use rusqlite::params;

use super::{SqliteTx, from_millis, millis};
use crate::{ActivityQuery, ActivityRecord, ActivityRow, ActivityType, StoreError};

impl SqliteTx<'_> {
    /// Appends an entry; returns its id.
    pub fn record_activity(&mut self, row: &ActivityRow) -> Result<i64, StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO webhook_activity (at, kind, campaign_id, step_id, user_id, delivery_id, template, attempt, request, response, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                millis(row.at),
                row.kind.as_str(),
                row.campaign_id,
                row.step_id,
                row.user_id,
                row.delivery_id,
                row.template,
                row.attempt,
                row.request.as_ref().map(serde_json::Value::to_string),
                row.response.as_ref().map(serde_json::Value::to_string),
                row.message,
            ])?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Entries matching `query`: newest first, or oldest first after `after_id`.
    pub fn activity(&mut self, query: &ActivityQuery) -> Result<Vec<ActivityRecord>, StoreError> {
        let limit = i64::try_from(query.limit.unwrap_or(100).clamp(1, 1000)).unwrap_or(100);
        let order = if query.after_id.is_some() {
            "ASC"
        } else {
            "DESC"
        };
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT id, at, kind, campaign_id, step_id, user_id, delivery_id, template, attempt, request, response, message
             FROM webhook_activity
             WHERE (?1 IS NULL OR campaign_id = ?1) AND (?2 IS NULL OR user_id = ?2) AND (?3 IS NULL OR kind = ?3)
               AND (?4 IS NULL OR at >= ?4) AND (?5 IS NULL OR at < ?5) AND (?6 IS NULL OR id > ?6)
             ORDER BY id {order} LIMIT ?7"
        ))?;
        let rows = stmt.query_map(
            params![
                query.campaign_id,
                query.user_id,
                query.kind.map(ActivityType::as_str),
                query.since.map(millis),
                query.until.map(millis),
                query.after_id,
                limit
            ],
            |r| {
                let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
                let kind: String = r.get(2)?;
                Ok((
                    r.get::<_, i64>(0)?,
                    kind,
                    ActivityRow {
                        at: from_millis(r.get(1)?),
                        kind: ActivityType::Failed,
                        campaign_id: r.get(3)?,
                        step_id: r.get(4)?,
                        user_id: r.get(5)?,
                        delivery_id: r.get(6)?,
                        template: r.get(7)?,
                        attempt: r.get(8)?,
                        request: parse(r.get(9)?),
                        response: parse(r.get(10)?),
                        message: r.get(11)?,
                    },
                ))
            },
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, mut row) = row?;
            row.kind = kind
                .parse()
                .map_err(|e: String| StoreError::Corrupt(format!("activity {id}: {e}")))?;
            out.push(ActivityRecord { id, row });
        }
        Ok(out)
    }

    /// Deletes entries from before `cutoff`; returns how many.
    pub fn prune_activity(&mut self, cutoff: SystemTime) -> Result<usize, StoreError> {
        Ok(self
            .conn
            .prepare_cached("DELETE FROM webhook_activity WHERE at < ?1")?
            .execute([millis(cutoff)])?)
    }
}
