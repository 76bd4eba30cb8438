//! Canvases (`canvases`), journeys (`canvas_journeys`), entries (`canvas_entries`,
//! `canvas_hourly_entries`) and step counts (`canvas_step_counts`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{SqliteTx, from_utc_millis, utc_millis};
use crate::{JourneyRow, JourneyStatus, JourneyWrite, SpecRow, SpecTable, StoreError};

const JOURNEY_COLUMNS: &str = "id, canvas_id, braze_id, state, status, wake_at, exit_reason";

fn journey_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JourneyRow> {
    Ok(JourneyRow {
        id: r.get(0)?,
        canvas_id: r.get(1)?,
        braze_id: r.get(2)?,
        state: r.get(3)?,
        status: JourneyStatus::parse(&r.get::<_, String>(4)?),
        wake_at: r.get::<_, Option<i64>>(5)?.map(from_utc_millis),
        exit_reason: r.get(6)?,
    })
}

impl SqliteTx<'_> {
    /// Creates or replaces (by name) a Canvas; returns its id.
    pub fn save_canvas(&mut self, name: &str, spec: &str) -> Result<String, StoreError> {
        self.save_spec(SpecTable::Canvases, name, spec)
    }

    /// Every Canvas, oldest first.
    pub fn canvases(&mut self) -> Result<Vec<SpecRow>, StoreError> {
        self.specs(SpecTable::Canvases)
    }

    /// A user's journeys in a Canvas that have not exited, oldest first.
    pub fn open_journeys(
        &mut self,
        canvas_id: &str,
        braze_id: &str,
    ) -> Result<Vec<JourneyRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {JOURNEY_COLUMNS} FROM canvas_journeys WHERE canvas_id = ?1 AND braze_id = ?2 AND status = 'active' ORDER BY id"
        ))?;
        let rows = stmt
            .query_map(params![canvas_id, braze_id], journey_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Journeys whose wake time has come, in the Canvases listed, earliest first.
    pub fn due_journeys(
        &mut self,
        canvas_ids: &[String],
        now: DateTime<Utc>,
        max: usize,
    ) -> Result<Vec<JourneyRow>, StoreError> {
        if canvas_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders = (0..canvas_ids.len())
            .map(|i| format!("?{}", i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {JOURNEY_COLUMNS} FROM canvas_journeys
             WHERE status = 'active' AND wake_at IS NOT NULL AND wake_at <= ?1 AND canvas_id IN ({placeholders})
             ORDER BY wake_at, id LIMIT ?2"
        ))?;
        let mut values: Vec<rusqlite::types::Value> = vec![
            utc_millis(now).into(),
            i64::try_from(max).unwrap_or(i64::MAX).into(),
        ];
        values.extend(canvas_ids.iter().map(|id| id.clone().into()));
        let rows = stmt
            .query_map(rusqlite::params_from_iter(values), journey_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// How many journeys are due at `now` in any Canvas (zero: nothing waits on time).
    pub fn due_journey_count(&mut self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM canvas_journeys WHERE status = 'active' AND wake_at IS NOT NULL AND wake_at <= ?1",
            [utc_millis(now)],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// When the earliest waiting journey in the Canvases listed wakes.
    pub fn next_journey_wake(
        &mut self,
        canvas_ids: &[String],
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        if canvas_ids.is_empty() {
            return Ok(None);
        }
        let placeholders = (0..canvas_ids.len())
            .map(|i| format!("?{}", i + 1))
            .collect::<Vec<_>>()
            .join(", ");
        let at: Option<i64> = self.conn.prepare_cached(&format!(
            "SELECT MIN(wake_at) FROM canvas_journeys WHERE status = 'active' AND wake_at IS NOT NULL AND canvas_id IN ({placeholders})"
        ))?
        .query_row(rusqlite::params_from_iter(canvas_ids.iter()), |r| r.get(0))?;
        Ok(at.map(from_utc_millis))
    }

    /// Every journey of a Canvas, oldest first.
    pub fn journeys(&mut self, canvas_id: &str) -> Result<Vec<JourneyRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {JOURNEY_COLUMNS} FROM canvas_journeys WHERE canvas_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt
            .query_map([canvas_id], journey_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Saves a journey: a new one when `id` is `None`. Returns its id.
    pub fn write_journey(
        &mut self,
        id: Option<i64>,
        canvas_id: &str,
        braze_id: &str,
        write: &JourneyWrite<'_>,
    ) -> Result<i64, StoreError> {
        let now = utc_millis(self.now);
        let wake = write.wake_at.map(utc_millis);
        match id {
            Some(id) => {
                self.conn
                    .prepare_cached(
                        "UPDATE canvas_journeys SET state = ?2, status = ?3, wake_at = ?4, exit_reason = ?5, updated_at = ?6 WHERE id = ?1",
                    )?
                    .execute(params![id, write.state, write.status.as_str(), wake, write.exit_reason, now])?;
                Ok(id)
            }
            None => Ok(self
                .conn
                .prepare_cached(
                    "INSERT INTO canvas_journeys (canvas_id, braze_id, state, status, wake_at, exit_reason, entered_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING id",
                )?
                .query_row(
                    params![canvas_id, braze_id, write.state, write.status.as_str(), wake, write.exit_reason, now],
                    |r| r.get(0),
                )?),
        }
    }

    /// Replaces only a journey's state (an exit request noted while it waits).
    pub fn set_journey_state(&mut self, id: i64, state: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE canvas_journeys SET state = ?2 WHERE id = ?1")?
            .execute(params![id, state])?;
        Ok(())
    }

    /// Ends a journey without advancing it (its user was deleted).
    pub fn exit_journey(&mut self, id: i64, reason: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE canvas_journeys SET status = 'exited', exit_reason = ?2, wake_at = NULL WHERE id = ?1",
            )?
            .execute(params![id, reason])?;
        Ok(())
    }

    /// When the user last entered the Canvas.
    pub fn last_entry(
        &mut self,
        canvas_id: &str,
        braze_id: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT last_entered_at FROM canvas_entries WHERE canvas_id = ?1 AND braze_id = ?2",
            )?
            .query_row(params![canvas_id, braze_id], |r| r.get(0))
            .optional()?;
        Ok(at.map(from_utc_millis))
    }

    pub fn record_entry(
        &mut self,
        canvas_id: &str,
        braze_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO canvas_entries (canvas_id, braze_id, last_entered_at, entries) VALUES (?1, ?2, ?3, 1)
                 ON CONFLICT(canvas_id, braze_id) DO UPDATE SET last_entered_at = excluded.last_entered_at, entries = entries + 1",
            )?
            .execute(params![canvas_id, braze_id, utc_millis(at)])?;
        Ok(())
    }

    /// Entries into the Canvas in the UTC hour `hour` (hours since the epoch).
    pub fn hourly_entries(&mut self, canvas_id: &str, hour: i64) -> Result<u64, StoreError> {
        let n: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT entries FROM canvas_hourly_entries WHERE canvas_id = ?1 AND hour = ?2",
            )?
            .query_row(params![canvas_id, hour], |r| r.get(0))
            .optional()?;
        Ok(u64::try_from(n.unwrap_or(0)).unwrap_or(0))
    }

    pub fn count_hourly_entry(&mut self, canvas_id: &str, hour: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO canvas_hourly_entries (canvas_id, hour, entries) VALUES (?1, ?2, 1)
                 ON CONFLICT(canvas_id, hour) DO UPDATE SET entries = entries + 1",
            )?
            .execute(params![canvas_id, hour])?;
        Ok(())
    }

    /// Counts one thing a step did (`entered`, `webhook`, `user_update`).
    pub fn count_step(
        &mut self,
        canvas_id: &str,
        step_id: &str,
        kind: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO canvas_step_counts (canvas_id, step_id, kind, count) VALUES (?1, ?2, ?3, 1)
                 ON CONFLICT(canvas_id, step_id, kind) DO UPDATE SET count = count + 1",
            )?
            .execute(params![canvas_id, step_id, kind])?;
        Ok(())
    }

    pub fn step_counts(
        &mut self,
        canvas_id: &str,
    ) -> Result<HashMap<(String, String), i64>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT step_id, kind, count FROM canvas_step_counts WHERE canvas_id = ?1",
        )?;
        let rows = stmt.query_map([canvas_id], |r| {
            Ok(((r.get::<_, String>(0)?, r.get::<_, String>(1)?), r.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
