//! Canvases, journeys, entries and step counts on PostgreSQL.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use postgres::Row;

use super::{PgTx, count};
use crate::codec::{from_utc_millis, utc_millis};
use crate::{JourneyRow, JourneyStatus, JourneyWrite, SpecRow, SpecTable, StoreError};

const JOURNEY_COLUMNS: &str = "id, canvas_id, braze_id, state, status, wake_at, exit_reason";

fn journey_row(r: &Row) -> JourneyRow {
    JourneyRow {
        id: r.get(0),
        canvas_id: r.get(1),
        braze_id: r.get(2),
        state: r.get(3),
        status: JourneyStatus::parse(r.get::<_, &str>(4)),
        wake_at: r.get::<_, Option<i64>>(5).map(from_utc_millis),
        exit_reason: r.get(6),
    }
}

impl PgTx<'_> {
    pub fn save_canvas(&mut self, name: &str, spec: &str) -> Result<String, StoreError> {
        self.save_spec(SpecTable::Canvases, name, spec)
    }

    pub fn canvases(&mut self) -> Result<Vec<SpecRow>, StoreError> {
        self.specs(SpecTable::Canvases)
    }

    /// A user's journeys in a Canvas that have not exited, oldest first.
    pub fn open_journeys(
        &mut self,
        canvas_id: &str,
        braze_id: &str,
    ) -> Result<Vec<JourneyRow>, StoreError> {
        let rows = self.query(
            &format!("SELECT {JOURNEY_COLUMNS} FROM canvas_journeys WHERE canvas_id = $1 AND braze_id = $2 AND status = 'active' ORDER BY id"),
            &[&canvas_id, &braze_id],
        )?;
        Ok(rows.iter().map(journey_row).collect())
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
        let rows = self.query(
            &format!(
                "SELECT {JOURNEY_COLUMNS} FROM canvas_journeys
                 WHERE status = 'active' AND wake_at IS NOT NULL AND wake_at <= $1 AND canvas_id = ANY($3)
                 ORDER BY wake_at, id LIMIT $2"
            ),
            &[
                &utc_millis(now),
                &i64::try_from(max).unwrap_or(i64::MAX),
                &canvas_ids,
            ],
        )?;
        Ok(rows.iter().map(journey_row).collect())
    }

    pub fn due_journey_count(&mut self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(count(
            self.query_one(
                "SELECT COUNT(*) FROM canvas_journeys WHERE status = 'active' AND wake_at IS NOT NULL AND wake_at <= $1",
                &[&utc_millis(now)],
            )?
            .get(0),
        ))
    }

    /// When the earliest waiting journey in the Canvases listed wakes.
    pub fn next_journey_wake(
        &mut self,
        canvas_ids: &[String],
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        if canvas_ids.is_empty() {
            return Ok(None);
        }
        let at: Option<i64> = self
            .query_one(
                "SELECT MIN(wake_at) FROM canvas_journeys WHERE status = 'active' AND wake_at IS NOT NULL AND canvas_id = ANY($1)",
                &[&canvas_ids],
            )?
            .get(0);
        Ok(at.map(from_utc_millis))
    }

    pub fn journeys(&mut self, canvas_id: &str) -> Result<Vec<JourneyRow>, StoreError> {
        let rows = self.query(
            &format!(
                "SELECT {JOURNEY_COLUMNS} FROM canvas_journeys WHERE canvas_id = $1 ORDER BY id"
            ),
            &[&canvas_id],
        )?;
        Ok(rows.iter().map(journey_row).collect())
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
                self.execute(
                    "UPDATE canvas_journeys SET state = $2, status = $3, wake_at = $4, exit_reason = $5, updated_at = $6 WHERE id = $1",
                    &[&id, &write.state, &write.status.as_str(), &wake, &write.exit_reason, &now],
                )?;
                Ok(id)
            }
            None => Ok(self
                .query_one(
                    "INSERT INTO canvas_journeys (canvas_id, braze_id, state, status, wake_at, exit_reason, entered_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
                    &[&canvas_id, &braze_id, &write.state, &write.status.as_str(), &wake, &write.exit_reason, &now],
                )?
                .get(0)),
        }
    }

    pub fn set_journey_state(&mut self, id: i64, state: &str) -> Result<(), StoreError> {
        self.execute(
            "UPDATE canvas_journeys SET state = $2 WHERE id = $1",
            &[&id, &state],
        )?;
        Ok(())
    }

    pub fn exit_journey(&mut self, id: i64, reason: &str) -> Result<(), StoreError> {
        self.execute(
            "UPDATE canvas_journeys SET status = 'exited', exit_reason = $2, wake_at = NULL WHERE id = $1",
            &[&id, &reason],
        )?;
        Ok(())
    }

    pub fn last_entry(
        &mut self,
        canvas_id: &str,
        braze_id: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self
            .query_opt(
                "SELECT last_entered_at FROM canvas_entries WHERE canvas_id = $1 AND braze_id = $2",
                &[&canvas_id, &braze_id],
            )?
            .map(|r| from_utc_millis(r.get(0))))
    }

    pub fn record_entry(
        &mut self,
        canvas_id: &str,
        braze_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO canvas_entries (canvas_id, braze_id, last_entered_at, entries) VALUES ($1, $2, $3, 1)
             ON CONFLICT (canvas_id, braze_id) DO UPDATE SET last_entered_at = excluded.last_entered_at, entries = canvas_entries.entries + 1",
            &[&canvas_id, &braze_id, &utc_millis(at)],
        )?;
        Ok(())
    }

    pub fn hourly_entries(&mut self, canvas_id: &str, hour: i64) -> Result<u64, StoreError> {
        Ok(self
            .query_opt(
                "SELECT entries FROM canvas_hourly_entries WHERE canvas_id = $1 AND hour = $2",
                &[&canvas_id, &hour],
            )?
            .map_or(0, |r| count(r.get(0))))
    }

    pub fn count_hourly_entry(&mut self, canvas_id: &str, hour: i64) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO canvas_hourly_entries (canvas_id, hour, entries) VALUES ($1, $2, 1)
             ON CONFLICT (canvas_id, hour) DO UPDATE SET entries = canvas_hourly_entries.entries + 1",
            &[&canvas_id, &hour],
        )?;
        Ok(())
    }

    pub fn count_step(
        &mut self,
        canvas_id: &str,
        step_id: &str,
        kind: &str,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO canvas_step_counts (canvas_id, step_id, kind, count) VALUES ($1, $2, $3, 1)
             ON CONFLICT (canvas_id, step_id, kind) DO UPDATE SET count = canvas_step_counts.count + 1",
            &[&canvas_id, &step_id, &kind],
        )?;
        Ok(())
    }

    pub fn step_counts(
        &mut self,
        canvas_id: &str,
    ) -> Result<HashMap<(String, String), i64>, StoreError> {
        let rows = self.query(
            "SELECT step_id, kind, count FROM canvas_step_counts WHERE canvas_id = $1",
            &[&canvas_id],
        )?;
        Ok(rows
            .iter()
            .map(|r| ((r.get(0), r.get(1)), r.get(2)))
            .collect())
    }
}
