//! The message activity log on PostgreSQL.

use std::time::SystemTime;

use super::PgTx;
use crate::codec::{from_millis, millis};
use crate::{ActivityQuery, ActivityRecord, ActivityRow, StoreError};

impl PgTx<'_> {
    /// Appends an entry; returns its id.
    pub fn record_activity(&mut self, row: &ActivityRow) -> Result<i64, StoreError> {
        Ok(self
            .query_one(
                "INSERT INTO webhook_activity (at, kind, campaign_id, step_id, user_id, delivery_id, template, attempt, request, response, message)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                &[
                    &millis(row.at),
                    &row.kind.as_str(),
                    &row.campaign_id,
                    &row.step_id,
                    &row.user_id,
                    &row.delivery_id,
                    &row.template,
                    &row.attempt.map(i64::from),
                    &row.request.as_ref().map(serde_json::Value::to_string),
                    &row.response.as_ref().map(serde_json::Value::to_string),
                    &row.message,
                ],
            )?
            .get(0))
    }

    /// Entries matching `query`: newest first, or oldest first after `after_id`.
    pub fn activity(&mut self, query: &ActivityQuery) -> Result<Vec<ActivityRecord>, StoreError> {
        let limit = i64::try_from(query.limit.unwrap_or(100).clamp(1, 1000)).unwrap_or(100);
        let order = if query.after_id.is_some() {
            "ASC"
        } else {
            "DESC"
        };
        let rows = self.query(
            &format!(
                "SELECT id, at, kind, campaign_id, step_id, user_id, delivery_id, template, attempt, request, response, message
                 FROM webhook_activity
                 WHERE ($1::text IS NULL OR campaign_id = $1) AND ($2::text IS NULL OR user_id = $2) AND ($3::text IS NULL OR kind = $3)
                   AND ($4::bigint IS NULL OR at >= $4) AND ($5::bigint IS NULL OR at < $5) AND ($6::bigint IS NULL OR id > $6)
                 ORDER BY id {order} LIMIT $7"
            ),
            &[
                &query.campaign_id,
                &query.user_id,
                &query.kind.map(|k| k.as_str()),
                &query.since.map(millis),
                &query.until.map(millis),
                &query.after_id,
                &limit,
            ],
        )?;
        let parse = |s: Option<&str>| s.and_then(|s| serde_json::from_str(s).ok());
        rows.iter()
            .map(|r| {
                let id: i64 = r.get(0);
                let kind = r
                    .get::<_, &str>(2)
                    .parse()
                    .map_err(|e: String| StoreError::Corrupt(format!("activity {id}: {e}")))?;
                Ok(ActivityRecord {
                    id,
                    row: ActivityRow {
                        at: from_millis(r.get(1)),
                        kind,
                        campaign_id: r.get(3),
                        step_id: r.get(4),
                        user_id: r.get(5),
                        delivery_id: r.get(6),
                        template: r.get(7),
                        attempt: r
                            .get::<_, Option<i64>>(8)
                            .and_then(|a| u32::try_from(a).ok()),
                        request: parse(r.get(9)),
                        response: parse(r.get(10)),
                        message: r.get(11),
                    },
                })
            })
            .collect()
    }

    /// Deletes entries from before `cutoff`; returns how many.
    pub fn prune_activity(&mut self, cutoff: SystemTime) -> Result<usize, StoreError> {
        let n = self.execute(
            "DELETE FROM webhook_activity WHERE at < $1",
            &[&millis(cutoff)],
        )?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }
}
