//! Campaigns (`campaigns`), their sends (`campaign_sends`) and their delivery pace
//! (`campaign_pace`).

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::{SqliteTx, conflict, from_utc_millis, new_id, utc_millis};
use crate::{SpecRow, SpecTable, StoreError};

impl SqliteTx<'_> {
    /// Creates or replaces (by name) a spec; returns its id.
    pub(super) fn save_spec(
        &mut self,
        table: SpecTable,
        name: &str,
        spec: &str,
    ) -> Result<String, StoreError> {
        let now = utc_millis(self.now);
        self.conn
            .prepare_cached(&format!(
                "INSERT INTO {} (id, name, spec, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at
                 RETURNING id",
                table.table()
            ))?
            .query_row(params![new_id(table.id_prefix()), name, spec, now], |r| {
                r.get(0)
            })
            .map_err(|e| conflict(e, || format!("a {} named '{name}' already exists", table.noun())))
    }

    /// Every spec of a table, oldest first.
    pub(super) fn specs(&mut self, table: SpecTable) -> Result<Vec<SpecRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT id, name, spec, created_at, updated_at FROM {} ORDER BY created_at, id",
            table.table()
        ))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(SpecRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    spec: r.get(2)?,
                    created_at: from_utc_millis(r.get(3)?),
                    updated_at: from_utc_millis(r.get(4)?),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}

impl SqliteTx<'_> {
    /// Creates or replaces (by name) a campaign; returns its id.
    pub fn save_campaign(&mut self, name: &str, spec: &str) -> Result<String, StoreError> {
        self.save_spec(SpecTable::Campaigns, name, spec)
    }

    /// Every campaign, oldest first.
    pub fn campaigns(&mut self) -> Result<Vec<SpecRow>, StoreError> {
        self.specs(SpecTable::Campaigns)
    }

    /// Records that a campaign sent to a user (the job that carries it).
    pub fn record_campaign_send(
        &mut self,
        campaign_id: &str,
        braze_id: &str,
        job_id: i64,
        dispatch_id: Option<&str>,
        trigger_seq: Option<i64>,
        sent_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO campaign_sends (campaign_id, braze_id, job_id, dispatch_id, trigger_seq, sent_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![campaign_id, braze_id, job_id, dispatch_id, trigger_seq, utc_millis(sent_at)])?;
        Ok(())
    }

    /// When the user last received this campaign: a send whose job did not end aborted or
    /// failed. Sends still queued count, so a second trigger in the meantime does not send twice.
    pub fn last_received(
        &mut self,
        campaign_id: &str,
        braze_id: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let at: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT s.sent_at FROM campaign_sends s JOIN webhook_jobs j ON j.id = s.job_id
                 WHERE s.campaign_id = ?1 AND s.braze_id = ?2 AND j.state NOT IN ('aborted', 'failed')
                 ORDER BY s.sent_at DESC LIMIT 1",
            )?
            .query_row(params![campaign_id, braze_id], |r| r.get(0))
            .optional()?;
        Ok(at.map(from_utc_millis))
    }

    /// A campaign's delivery-speed state as its owner encoded it.
    pub fn campaign_pace(&mut self, campaign_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT state FROM campaign_pace WHERE campaign_id = ?1")?
            .query_row([campaign_id], |r| r.get(0))
            .optional()?)
    }

    pub fn set_campaign_pace(&mut self, campaign_id: &str, state: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO campaign_pace (campaign_id, state) VALUES (?1, ?2)
                 ON CONFLICT(campaign_id) DO UPDATE SET state = excluded.state",
            )?
            .execute(params![campaign_id, state])?;
        Ok(())
    }
}
