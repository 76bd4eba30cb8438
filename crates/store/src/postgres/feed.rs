//! The trigger feed on PostgreSQL.
//!
//! A trigger's position is `(inserting transaction's id << 24) + its index in that transaction`.
//! Transaction ids are handed out when a transaction first writes, not when it commits, so a
//! plain sequence would let a trigger appear below a position a consumer already passed. Readers
//! therefore take only positions below the oldest transaction still running
//! (`pg_snapshot_xmin`): everything there is final, and anything committed later has a larger
//! position. Transaction ids stay below 2^39 for 128 wraparound epochs, so positions fit in i64.

use chrono::{DateTime, Utc};
use postgres::Client;

use super::PgTx;
use crate::{Consumer, StoreError, TriggerRecord};

/// Longest a consumer's read waits for an older transaction that holds later triggers back.
const HOLD_BACK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Most triggers one transaction may append (the index's bits).
pub(super) const PER_TRANSACTION: i64 = 1 << 24;

pub(super) fn end_of(client: &mut Client) -> Result<i64, StoreError> {
    Ok(client
        .query_one("SELECT COALESCE(MAX(seq), 0) FROM triggers", &[])?
        .get(0))
}

impl PgTx<'_> {
    /// Trigger feed entries after `position`, oldest first. In a write transaction (a consumer
    /// that will move its position) only ones no running transaction can precede: when some
    /// committed triggers are held back by older transactions still running, waits (up to
    /// [`HOLD_BACK_WAIT`]) for those to end, so a pass sees what was committed before it.
    pub fn triggers_after(
        &mut self,
        position: i64,
        limit: usize,
    ) -> Result<Vec<TriggerRecord>, StoreError> {
        self.flush_triggers()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let started = std::time::Instant::now();
        let mut waited = false;
        loop {
            let rows = self.query(
                "SELECT seq, braze_id, external_id, source, payload, created_at,
                        pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 24, trace_context
                 FROM triggers WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&position, &limit],
            )?;
            // Only a reader that moves a position needs the bound (what it skips now it would
            // skip for good); a read-only snapshot reports what it sees.
            let bound = match rows.first() {
                Some(r) if self.writable => r.get::<_, i64>(6),
                _ => i64::MAX,
            };
            let ready: Vec<_> = rows
                .iter()
                .take_while(|r| r.get::<_, i64>(0) < bound)
                .collect();
            // Something committed but held back by older transactions still running: wait for
            // those (polling only the bound, which is cheap), then read again. Transactions that
            // start writing after this read get later ids than every row read, so the wait ends
            // when the transactions running now do, however busy the database stays.
            let held_back = ready.len() < rows.len();
            if held_back && !waited {
                waited = true;
                let last: i64 = rows[rows.len() - 1].get(0);
                while started.elapsed() < HOLD_BACK_WAIT {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    let bound: i64 = self
                        .query_one(
                            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint << 24",
                            &[],
                        )?
                        .get(0);
                    if bound > last {
                        break;
                    }
                }
                continue;
            }
            return ready
                .into_iter()
                .map(|r| {
                    TriggerRecord::decode(
                        r.get(0),
                        r.get(1),
                        r.get(2),
                        r.get::<_, &str>(3),
                        r.get::<_, &str>(4),
                        r.get::<_, &str>(5),
                        r.get(7),
                    )
                })
                .collect();
        }
    }

    /// The newest trigger's position (0 for an empty feed).
    pub fn feed_end(&mut self) -> Result<i64, StoreError> {
        self.flush_triggers()?;
        Ok(self
            .query_one("SELECT COALESCE(MAX(seq), 0) FROM triggers", &[])?
            .get(0))
    }

    /// Where a consumer stands. A write transaction takes the consumer's lock first and holds
    /// it until commit: one node at a time runs a consumer's pass, the others wait their turn.
    /// (An advisory lock, not a row lock: a row lock would give this transaction an id before
    /// it reads the feed, and the read's bound would then stop at that id.)
    pub fn feed_position(&mut self, consumer: Consumer) -> Result<i64, StoreError> {
        if self.writable {
            let key = self.lock_key(consumer.as_str());
            self.execute("SELECT pg_advisory_xact_lock($1)", &[&key])?;
        }
        Ok(self
            .query_opt(
                "SELECT seq FROM feed_positions WHERE consumer = $1",
                &[&consumer.as_str()],
            )?
            .map_or(0, |r| r.get(0)))
    }

    pub fn set_feed_position(&mut self, consumer: Consumer, seq: i64) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO feed_positions (consumer, seq) VALUES ($1, $2)
             ON CONFLICT (consumer) DO UPDATE SET seq = GREATEST(feed_positions.seq, excluded.seq)",
            &[&consumer.as_str(), &seq],
        )?;
        Ok(())
    }

    /// Deletes up to `max` triggers every consumer has passed and older than `keep_after`.
    pub fn prune_feed(
        &mut self,
        keep_after: DateTime<Utc>,
        max: usize,
    ) -> Result<usize, StoreError> {
        self.flush_triggers()?;
        // Unlocked reads: pruning must not wait for (or hold up) a consumer's pass.
        let mut lowest = i64::MAX;
        for consumer in Consumer::ALL {
            let at = self
                .query_opt(
                    "SELECT seq FROM feed_positions WHERE consumer = $1",
                    &[&consumer.as_str()],
                )?
                .map_or(0, |r| r.get(0));
            lowest = lowest.min(at);
        }
        if lowest <= 0 {
            return Ok(0);
        }
        let n = self.execute(
            "DELETE FROM triggers WHERE seq IN (
                 SELECT seq FROM triggers WHERE seq <= $1 AND created_at < $2 ORDER BY seq LIMIT $3)",
            &[
                &lowest,
                &keep_after.to_rfc3339(),
                &i64::try_from(max).unwrap_or(i64::MAX),
            ],
        )?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// Queues one trigger row; rows go to the table together ([`PgTx::flush_triggers`]) before
    /// the transaction reads the feed or commits.
    pub(super) fn append_trigger(
        &mut self,
        braze_id: &str,
        external_id: Option<&str>,
        source: &str,
        kind: &str,
        payload: String,
        trace_context: Option<&str>,
    ) -> Result<(), StoreError> {
        if self.appended + 1 >= PER_TRANSACTION {
            return Err(StoreError::Database(format!(
                "one transaction may append at most {} triggers; split the import",
                PER_TRANSACTION - 1
            )));
        }
        self.appended += 1;
        let queued = &mut self.queued_triggers;
        queued.index.push(self.appended);
        queued.braze_id.push(braze_id.to_owned());
        queued.external_id.push(external_id.map(str::to_owned));
        queued.source.push(source.to_owned());
        queued.kind.push(kind.to_owned());
        queued.payload.push(payload);
        queued.trace_context.push(trace_context.map(str::to_owned));
        Ok(())
    }

    /// Writes the queued triggers in one statement (a statement per trigger was most of a
    /// `/users/track` transaction's round trips).
    pub(crate) fn flush_triggers(&mut self) -> Result<(), StoreError> {
        if self.queued_triggers.index.is_empty() {
            return Ok(());
        }
        let q = std::mem::take(&mut self.queued_triggers);
        let end: Option<i64> = self
            .query_one(
                "WITH added AS (
                     INSERT INTO triggers (seq, braze_id, external_id, source, kind, payload, created_at, trace_context)
                     SELECT (pg_current_xact_id()::text::bigint << 24) + i, b, e, s, k, p, $7, c
                     FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $8::text[]) AS t(i, b, e, s, k, p, c)
                     RETURNING seq)
                 SELECT max(seq) FROM added",
                &[
                    &q.index,
                    &q.braze_id,
                    &q.external_id,
                    &q.source,
                    &q.kind,
                    &q.payload,
                    &self.now.to_rfc3339(),
                    &q.trace_context,
                ],
            )?
            .get(0);
        self.effects.feed_end = self.effects.feed_end.max(end);
        Ok(())
    }
}

/// Triggers a transaction appended and has not written yet, column by column.
#[derive(Default)]
pub(crate) struct QueuedTriggers {
    index: Vec<i64>,
    braze_id: Vec<String>,
    external_id: Vec<Option<String>>,
    source: Vec<String>,
    kind: Vec<String>,
    payload: Vec<String>,
    trace_context: Vec<Option<String>>,
}
