//! Campaigns, their sends and their pace on PostgreSQL; the spec tables campaigns and Canvases
//! share.

use chrono::{DateTime, Utc};

use super::PgTx;
use crate::codec::{from_utc_millis, new_id, utc_millis};
use crate::{SpecRow, SpecTable, StoreError};

impl PgTx<'_> {
    /// Creates or replaces (by name) a spec; returns its id.
    pub(super) fn save_spec(
        &mut self,
        table: SpecTable,
        name: &str,
        spec: &str,
    ) -> Result<String, StoreError> {
        let now = utc_millis(self.now);
        let rows = self.query_unique(
            &format!(
                "INSERT INTO {} (id, name, spec, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
                 ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at
                 RETURNING id",
                table.table()
            ),
            &[&new_id(table.id_prefix()), &name, &spec, &now],
            || format!("a {} named '{name}' already exists", table.noun()),
        )?;
        rows.first()
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::Database("the spec upsert returned no id".into()))
    }

    /// Every spec of a table, oldest first.
    pub(super) fn specs(&mut self, table: SpecTable) -> Result<Vec<SpecRow>, StoreError> {
        let rows = self.query(
            &format!(
                "SELECT id, name, spec, created_at, updated_at FROM {} ORDER BY created_at, id",
                table.table()
            ),
            &[],
        )?;
        Ok(rows
            .iter()
            .map(|r| SpecRow {
                id: r.get(0),
                name: r.get(1),
                spec: r.get(2),
                created_at: from_utc_millis(r.get(3)),
                updated_at: from_utc_millis(r.get(4)),
            })
            .collect())
    }

    pub fn save_campaign(&mut self, name: &str, spec: &str) -> Result<String, StoreError> {
        self.save_spec(SpecTable::Campaigns, name, spec)
    }

    pub fn campaigns(&mut self) -> Result<Vec<SpecRow>, StoreError> {
        self.specs(SpecTable::Campaigns)
    }

    pub fn record_campaign_send(
        &mut self,
        campaign_id: &str,
        braze_id: &str,
        job_id: i64,
        dispatch_id: Option<&str>,
        trigger_seq: Option<i64>,
        sent_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO campaign_sends (campaign_id, braze_id, job_id, dispatch_id, trigger_seq, sent_at) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&campaign_id, &braze_id, &job_id, &dispatch_id, &trigger_seq, &utc_millis(sent_at)],
        )?;
        Ok(())
    }

    /// When the user last received this campaign (sends still queued count).
    pub fn last_received(
        &mut self,
        campaign_id: &str,
        braze_id: &str,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self
            .query_opt(
                "SELECT s.sent_at FROM campaign_sends s JOIN webhook_jobs j ON j.id = s.job_id
                 WHERE s.campaign_id = $1 AND s.braze_id = $2 AND j.state NOT IN ('aborted', 'failed')
                 ORDER BY s.sent_at DESC LIMIT 1",
                &[&campaign_id, &braze_id],
            )?
            .map(|r| from_utc_millis(r.get(0))))
    }

    /// A campaign's delivery-speed state. In a write transaction the row stays locked until
    /// commit, so nodes sending for one campaign take their turns and the pace holds across them.
    pub fn campaign_pace(&mut self, campaign_id: &str) -> Result<Option<String>, StoreError> {
        let sql = if self.writable {
            "SELECT state FROM campaign_pace WHERE campaign_id = $1 FOR UPDATE"
        } else {
            "SELECT state FROM campaign_pace WHERE campaign_id = $1"
        };
        Ok(self.query_opt(sql, &[&campaign_id])?.map(|r| r.get(0)))
    }

    pub fn set_campaign_pace(&mut self, campaign_id: &str, state: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO campaign_pace (campaign_id, state) VALUES ($1, $2)
             ON CONFLICT (campaign_id) DO UPDATE SET state = excluded.state",
            &[&campaign_id, &state],
        )?;
        Ok(())
    }
}
