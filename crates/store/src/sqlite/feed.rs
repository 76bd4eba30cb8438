//! The trigger feed (`triggers`, written by profile changes in the same transaction) and its
//! consumers' positions (`feed_positions`, one row per [`Consumer`]).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteTx;
use crate::{Consumer, StoreError, TriggerRecord};

pub(super) fn end(conn: &Connection) -> Result<i64, StoreError> {
    Ok(
        conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM triggers", [], |r| {
            r.get(0)
        })?,
    )
}

impl SqliteTx<'_> {
    /// Trigger feed entries after `position`, oldest first.
    pub fn triggers_after(
        &mut self,
        position: i64,
        limit: usize,
    ) -> Result<Vec<TriggerRecord>, StoreError> {
        read_triggers(self.conn, position, limit)
    }

    /// The newest trigger's position (0 for an empty feed).
    pub fn feed_end(&mut self) -> Result<i64, StoreError> {
        end(self.conn)
    }

    /// Where a consumer stands: every trigger up to here is consumed. 0 when it never ran.
    pub fn feed_position(&mut self, consumer: Consumer) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT seq FROM feed_positions WHERE consumer = ?1")?
            .query_row([consumer.as_str()], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }

    /// Moves a consumer's position; commit it with whatever consuming the triggers wrote.
    pub fn set_feed_position(&mut self, consumer: Consumer, seq: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO feed_positions (consumer, seq) VALUES (?1, ?2)
                 ON CONFLICT(consumer) DO UPDATE SET seq = max(seq, excluded.seq)",
            )?
            .execute(params![consumer.as_str(), seq])?;
        Ok(())
    }

    /// Deletes up to `max` triggers that every consumer has passed and that are older than
    /// `keep_after` (the `/triggers` feed and the activity log read recent history); returns
    /// how many went. A consumer that never ran holds everything.
    pub fn prune_feed(
        &mut self,
        keep_after: DateTime<Utc>,
        max: usize,
    ) -> Result<usize, StoreError> {
        let mut lowest = i64::MAX;
        for consumer in Consumer::ALL {
            lowest = lowest.min(self.feed_position(consumer)?);
        }
        if lowest <= 0 {
            return Ok(0);
        }
        let n = self
            .conn
            .prepare_cached(
                "DELETE FROM triggers WHERE seq IN (
                     SELECT seq FROM triggers WHERE seq <= ?1 AND created_at < ?2 ORDER BY seq LIMIT ?3)",
            )?
            .execute(params![
                lowest,
                keep_after.to_rfc3339(),
                i64::try_from(max).unwrap_or(i64::MAX)
            ])?;
        Ok(n)
    }
}

fn read_triggers(
    conn: &Connection,
    position: i64,
    limit: usize,
) -> Result<Vec<TriggerRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, braze_id, external_id, source, payload, created_at, trace_context FROM triggers WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![position, limit as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, Option<String>>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, braze_id, external_id, source, payload, created_at, trace_context) = row?;
        out.push(TriggerRecord::decode(
            seq,
            braze_id,
            external_id,
            &source,
            &payload,
            &created_at,
            trace_context,
        )?);
    }
    Ok(out)
}
