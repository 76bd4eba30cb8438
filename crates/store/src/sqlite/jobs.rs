//! Webhook jobs (`webhook_jobs`): the one writer of a job's state.
//!
//! A row holds ids (template, user identifier, campaign/step) and the render properties; the
//! worker hydrates it when it claims it. `due_at` is when the row next needs a worker: the next
//! attempt for a queued job, the lease's end for an in-flight one (so a crashed worker's jobs are
//! claimed again once their lease runs out), NULL when final. Every settle is conditional on the
//! claim number, so a worker whose lease was taken over cannot overwrite the newer claim's result.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use leadwire_profiles::Identifier;
use rusqlite::{OptionalExtension, params};

use super::{SqliteTx, millis, parse_json};
use crate::codec::{JobColumns, enqueue_precondition};
use crate::{
    ClaimedJob, DeliveryBucket, Enqueued, JobClaim, JobInfo, JobState, NewJob, Settlement,
    StoreError,
};

const CLAIM_SQL: &str = "UPDATE webhook_jobs
    SET state = 'in_flight', claims = claims + 1, lease_until = ?2, due_at = ?2
    WHERE id IN (SELECT id FROM webhook_jobs WHERE due_at IS NOT NULL AND due_at <= ?1 ORDER BY due_at LIMIT ?3)
    RETURNING id, claims, delivery_id, template_id, user_identifier, user_id, campaign_id, step_id, properties, attempts, previous_delay_ms, last_status, trace_context";

impl SqliteTx<'_> {
    /// Enqueues a job: it exists if and only if this transaction commits (the outbox pattern).
    /// Fails if the template does not exist or is archived.
    pub fn enqueue_job(&mut self, job: &NewJob) -> Result<Enqueued, StoreError> {
        enqueue_precondition(&job.template_id, self.template_version(&job.template_id)?)?;
        let row = JobColumns::of(job)?;
        self.conn
            .prepare_cached(
                "INSERT INTO webhook_jobs (delivery_id, template_id, user_identifier, user_id, campaign_id, step_id, properties, next_attempt_at, due_at, enqueued_at, trace_context)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10)",
            )?
            .execute(params![
                row.delivery_id,
                job.template_id,
                row.identifier,
                row.user_label,
                job.campaign_id,
                job.step_id,
                row.properties,
                row.due_at,
                row.enqueued_at,
                job.trace_context
            ])?;
        let job_id = self.conn.last_insert_rowid();
        self.effects.jobs = true;
        Ok(Enqueued {
            job_id,
            delivery_id: row.delivery_id,
        })
    }

    /// Leases up to `max` due jobs for `lease`.
    pub fn claim_jobs(
        &mut self,
        now: SystemTime,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let now = millis(now);
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let max = i64::try_from(max.max(1)).unwrap_or(1);
        let mut stmt = self.conn.prepare_cached(CLAIM_SQL)?;
        type Row = (
            i64,
            i64,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            String,
            u32,
            Option<i64>,
            Option<i64>,
            Option<String>,
        );
        let rows: Vec<Row> = stmt
            .query_map(params![now, now.saturating_add(lease_ms), max], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                    r.get(12)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for (
            id,
            claims,
            delivery_id,
            template_id,
            identifier,
            user_id,
            campaign_id,
            step_id,
            properties,
            attempts,
            previous,
            last_status,
            trace_context,
        ) in rows
        {
            out.push(ClaimedJob {
                claim: JobClaim { id, claims },
                delivery_id,
                template_id,
                user: serde_json::from_str::<Identifier>(&identifier)
                    .map_err(|e| format!("stored user identifier is corrupt: {e}")),
                user_id,
                campaign_id,
                step_id,
                properties: parse_json(&format!("job {id}: properties"), &properties)?,
                attempts,
                previous_delay: previous
                    .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
                last_status: last_status.and_then(|s| u16::try_from(s).ok()),
                trace_context,
            });
        }
        Ok(out)
    }

    /// Settles a claimed job; `false` when a newer claim owns it now (its lease had run out),
    /// in which case nothing changed.
    pub fn settle_job(
        &mut self,
        claim: JobClaim,
        settlement: &Settlement,
    ) -> Result<bool, StoreError> {
        let now = millis(SystemTime::now());
        let (id, claims) = (claim.id, claim.claims);
        let status = |s: &Option<u16>| s.map(i64::from);
        let changed = match settlement {
            Settlement::Delivered { attempts, status: st } => self
                .conn
                .prepare_cached(
                    "UPDATE webhook_jobs SET state = 'delivered', due_at = NULL, lease_until = NULL, finished_at = ?3, attempts = ?4, last_status = ?5
                     WHERE id = ?1 AND claims = ?2 AND state = 'in_flight'",
                )?
                .execute(params![id, claims, now, attempts, status(st)])?,
            Settlement::Aborted { reason } => self
                .conn
                .prepare_cached(
                    "UPDATE webhook_jobs SET state = 'aborted', due_at = NULL, lease_until = NULL, finished_at = ?3, last_error = ?4
                     WHERE id = ?1 AND claims = ?2 AND state = 'in_flight'",
                )?
                .execute(params![id, claims, now, reason])?,
            Settlement::Retry { at, attempts, previous_delay, status: st, error } => {
                self.effects.jobs = true;
                self.conn
                    .prepare_cached(
                        "UPDATE webhook_jobs SET state = 'queued', next_attempt_at = ?3, due_at = ?3, lease_until = NULL, attempts = ?4, previous_delay_ms = ?5, last_status = ?6, last_error = ?7
                         WHERE id = ?1 AND claims = ?2 AND state = 'in_flight'",
                    )?
                    .execute(params![
                        id,
                        claims,
                        millis(*at),
                        attempts,
                        previous_delay.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
                        status(st),
                        error
                    ])?
            }
            Settlement::Failed { attempts, status: st, error } => self
                .conn
                .prepare_cached(
                    "UPDATE webhook_jobs SET state = 'failed', due_at = NULL, lease_until = NULL, finished_at = ?3, attempts = ?4, last_status = ?5, last_error = ?6
                     WHERE id = ?1 AND claims = ?2 AND state = 'in_flight'",
                )?
                .execute(params![id, claims, now, attempts, status(st), error])?,
            Settlement::Release { at } => {
                self.effects.jobs = true;
                self.conn
                    .prepare_cached(
                        "UPDATE webhook_jobs SET state = 'queued', next_attempt_at = ?3, due_at = ?3, lease_until = NULL
                         WHERE id = ?1 AND claims = ?2 AND state = 'in_flight'",
                    )?
                    .execute(params![id, claims, millis(*at)])?
            }
        };
        Ok(changed > 0)
    }

    /// The user a job is for (`None` when the stored identifier no longer parses).
    pub fn job_user(&mut self, id: i64) -> Result<Option<Identifier>, StoreError> {
        let text: Option<String> = self
            .conn
            .prepare_cached("SELECT user_identifier FROM webhook_jobs WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// Counts of jobs by state.
    pub fn job_counts(&mut self) -> Result<HashMap<JobState, u64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT state, count(*) FROM webhook_jobs GROUP BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = HashMap::new();
        for row in rows {
            let (s, n) = row?;
            out.insert(JobState::parse(&s)?, u64::try_from(n).unwrap_or(0));
        }
        Ok(out)
    }

    /// Jobs queued or in flight.
    pub fn outstanding_jobs(&mut self) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM webhook_jobs WHERE due_at IS NOT NULL",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Jobs a worker holds right now.
    pub fn in_flight_jobs(&mut self) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM webhook_jobs WHERE state = 'in_flight'",
            [],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// When the next queued job falls due (for a worker deciding how long to sleep).
    pub fn next_job_due(&mut self) -> Result<Option<SystemTime>, StoreError> {
        let at: Option<i64> = self.conn.query_row(
            "SELECT MIN(due_at) FROM webhook_jobs WHERE due_at IS NOT NULL",
            [],
            |r| r.get(0),
        )?;
        Ok(at.map(super::from_millis))
    }

    /// When the oldest job still queued or in flight was enqueued (the queue's age).
    pub fn oldest_outstanding_job(&mut self) -> Result<Option<SystemTime>, StoreError> {
        let at: Option<i64> = self.conn.query_row(
            "SELECT MIN(enqueued_at) FROM webhook_jobs WHERE due_at IS NOT NULL",
            [],
            |r| r.get(0),
        )?;
        Ok(at.map(super::from_millis))
    }

    /// Jobs, newest first, optionally of one campaign.
    pub fn jobs(
        &mut self,
        campaign_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JobInfo>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, delivery_id, template_id, user_id, campaign_id, state, attempts, last_status, last_error, due_at
             FROM webhook_jobs WHERE (?1 IS NULL OR campaign_id = ?1) ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            params![campaign_id, i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, u32>(6)?,
                    r.get::<_, Option<u16>>(7)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, Option<i64>>(9)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (
                id,
                delivery_id,
                template_id,
                user_id,
                campaign_id,
                state,
                attempts,
                last_status,
                last_error,
                due_at,
            ) = row?;
            out.push(JobInfo {
                id,
                delivery_id,
                template_id,
                user_id,
                campaign_id,
                state: JobState::parse(&state)?,
                attempts,
                last_status,
                last_error,
                due_at: due_at.map(super::from_millis),
            });
        }
        Ok(out)
    }

    /// Jobs enqueued since `since`, counted per `bucket` of time, campaign, step, template and
    /// state, oldest bucket first.
    pub fn delivery_buckets(
        &mut self,
        since: SystemTime,
        bucket: Duration,
    ) -> Result<Vec<DeliveryBucket>, StoreError> {
        let width = i64::try_from(bucket.as_millis()).unwrap_or(i64::MAX).max(1);
        let mut stmt = self.conn.prepare_cached(
            "SELECT (enqueued_at / ?1) * ?1, campaign_id, step_id, template_id, state, COUNT(*),
                    SUM(attempts),
                    SUM(CASE WHEN finished_at IS NULL THEN 0 ELSE 1 END),
                    SUM(CASE WHEN finished_at IS NULL THEN 0 ELSE finished_at - enqueued_at END)
             FROM webhook_jobs WHERE enqueued_at >= ?2
             GROUP BY 1, campaign_id, step_id, template_id, state ORDER BY 1",
        )?;
        let rows = stmt.query_map(params![width, super::millis(since)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                [
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, i64>(8)?,
                ],
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (
                start,
                campaign_id,
                step_id,
                template_id,
                state,
                [jobs, attempts, finished, latency],
            ) = row?;
            out.push(DeliveryBucket {
                start: super::from_millis(start),
                campaign_id,
                step_id,
                template_id,
                state: JobState::parse(&state)?,
                jobs: u64::try_from(jobs).unwrap_or(0),
                attempts: u64::try_from(attempts).unwrap_or(0),
                finished: u64::try_from(finished).unwrap_or(0),
                latency_ms_total: u64::try_from(latency).unwrap_or(0),
            });
        }
        Ok(out)
    }
}
