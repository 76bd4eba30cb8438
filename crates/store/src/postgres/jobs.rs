//! Webhook jobs on PostgreSQL. Claims skip rows another node is claiming (`FOR UPDATE SKIP
//! LOCKED`) and lease what they take: a node that dies holds its jobs only until the lease ends.
//! Every settle is conditional on the claim number, as on SQLite.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use leadwire_profiles::Identifier;

use super::{PgTx, count};
use crate::codec::{JobColumns, enqueue_precondition, from_millis, millis, parse_json};
use crate::{
    ClaimedJob, DeliveryBucket, Enqueued, JobClaim, JobInfo, JobState, NewJob, Settlement,
    StoreError,
};

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2)
}

impl PgTx<'_> {
    /// Enqueues a job: it exists if and only if this transaction commits.
    pub fn enqueue_job(&mut self, job: &NewJob) -> Result<Enqueued, StoreError> {
        enqueue_precondition(&job.template_id, self.template_version(&job.template_id)?)?;
        let row = JobColumns::of(job)?;
        let job_id: i64 = self
            .query_one(
                "INSERT INTO webhook_jobs (delivery_id, template_id, user_identifier, user_id, campaign_id, step_id, properties, next_attempt_at, due_at, enqueued_at, trace_context)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10) RETURNING id",
                &[
                    &row.delivery_id,
                    &job.template_id,
                    &row.identifier,
                    &row.user_label,
                    &job.campaign_id,
                    &job.step_id,
                    &row.properties,
                    &row.due_at,
                    &row.enqueued_at,
                    &job.trace_context,
                ],
            )?
            .get(0);
        self.effects.jobs = true;
        Ok(Enqueued {
            job_id,
            delivery_id: row.delivery_id,
        })
    }

    /// Leases up to `max` due jobs for `lease`, skipping any another node is claiming.
    pub fn claim_jobs(
        &mut self,
        now: SystemTime,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let now = millis(now);
        let rows = self.query(
            "UPDATE webhook_jobs SET state = 'in_flight', claims = claims + 1, lease_until = $2, due_at = $2
             WHERE id IN (SELECT id FROM webhook_jobs WHERE due_at IS NOT NULL AND due_at <= $1
                          ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING id, claims, delivery_id, template_id, user_identifier, user_id, campaign_id, step_id, properties, attempts, previous_delay_ms, last_status, trace_context",
            &[
                &now,
                &now.saturating_add(ms(lease)),
                &i64::try_from(max.max(1)).unwrap_or(1),
            ],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.get(0);
            out.push(ClaimedJob {
                claim: JobClaim {
                    id,
                    claims: r.get(1),
                },
                delivery_id: r.get(2),
                template_id: r.get(3),
                user: serde_json::from_str::<Identifier>(r.get(4))
                    .map_err(|e| format!("stored user identifier is corrupt: {e}")),
                user_id: r.get(5),
                campaign_id: r.get(6),
                step_id: r.get(7),
                properties: parse_json(&format!("job {id}: properties"), r.get(8))?,
                attempts: u32::try_from(r.get::<_, i64>(9)).unwrap_or(u32::MAX),
                previous_delay: r
                    .get::<_, Option<i64>>(10)
                    .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))),
                last_status: r
                    .get::<_, Option<i64>>(11)
                    .and_then(|s| u16::try_from(s).ok()),
                trace_context: r.get(12),
            });
        }
        // The claim order is the due order; RETURNING does not promise it.
        out.sort_by_key(|j| j.claim.id);
        Ok(out)
    }

    /// Settles a claimed job; `false` when a newer claim owns it now.
    pub fn settle_job(
        &mut self,
        claim: JobClaim,
        settlement: &Settlement,
    ) -> Result<bool, StoreError> {
        let now = millis(SystemTime::now());
        let (id, claims) = (claim.id, claim.claims);
        let status = |s: &Option<u16>| s.map(i64::from);
        let changed = match settlement {
            Settlement::Delivered { attempts, status: st } => self.execute(
                "UPDATE webhook_jobs SET state = 'delivered', due_at = NULL, lease_until = NULL, finished_at = $3, attempts = $4, last_status = $5
                 WHERE id = $1 AND claims = $2 AND state = 'in_flight'",
                &[&id, &claims, &now, &i64::from(*attempts), &status(st)],
            )?,
            Settlement::Aborted { reason } => self.execute(
                "UPDATE webhook_jobs SET state = 'aborted', due_at = NULL, lease_until = NULL, finished_at = $3, last_error = $4
                 WHERE id = $1 AND claims = $2 AND state = 'in_flight'",
                &[&id, &claims, &now, reason],
            )?,
            Settlement::Retry { at, attempts, previous_delay, status: st, error } => {
                self.effects.jobs = true;
                self.execute(
                    "UPDATE webhook_jobs SET state = 'queued', next_attempt_at = $3, due_at = $3, lease_until = NULL, attempts = $4, previous_delay_ms = $5, last_status = $6, last_error = $7
                     WHERE id = $1 AND claims = $2 AND state = 'in_flight'",
                    &[&id, &claims, &millis(*at), &i64::from(*attempts), &previous_delay.map(ms), &status(st), error],
                )?
            }
            Settlement::Failed { attempts, status: st, error } => self.execute(
                "UPDATE webhook_jobs SET state = 'failed', due_at = NULL, lease_until = NULL, finished_at = $3, attempts = $4, last_status = $5, last_error = $6
                 WHERE id = $1 AND claims = $2 AND state = 'in_flight'",
                &[&id, &claims, &now, &i64::from(*attempts), &status(st), error],
            )?,
            Settlement::Release { at } => {
                self.effects.jobs = true;
                self.execute(
                    "UPDATE webhook_jobs SET state = 'queued', next_attempt_at = $3, due_at = $3, lease_until = NULL
                     WHERE id = $1 AND claims = $2 AND state = 'in_flight'",
                    &[&id, &claims, &millis(*at)],
                )?
            }
        };
        Ok(changed > 0)
    }

    pub fn job_user(&mut self, id: i64) -> Result<Option<Identifier>, StoreError> {
        Ok(self
            .query_opt(
                "SELECT user_identifier FROM webhook_jobs WHERE id = $1",
                &[&id],
            )?
            .and_then(|r| serde_json::from_str(r.get::<_, &str>(0)).ok()))
    }

    pub fn job_counts(&mut self) -> Result<HashMap<JobState, u64>, StoreError> {
        let rows = self.query(
            "SELECT state, count(*) FROM webhook_jobs GROUP BY state",
            &[],
        )?;
        let mut out = HashMap::new();
        for r in rows {
            out.insert(JobState::parse(r.get(0))?, count(r.get(1)));
        }
        Ok(out)
    }

    pub fn outstanding_jobs(&mut self) -> Result<u64, StoreError> {
        Ok(count(
            self.query_one(
                "SELECT count(*) FROM webhook_jobs WHERE due_at IS NOT NULL",
                &[],
            )?
            .get(0),
        ))
    }

    pub fn in_flight_jobs(&mut self) -> Result<u64, StoreError> {
        Ok(count(
            self.query_one(
                "SELECT count(*) FROM webhook_jobs WHERE state = 'in_flight'",
                &[],
            )?
            .get(0),
        ))
    }

    pub fn next_job_due(&mut self) -> Result<Option<SystemTime>, StoreError> {
        Ok(self
            .query_one(
                "SELECT MIN(due_at) FROM webhook_jobs WHERE due_at IS NOT NULL",
                &[],
            )?
            .get::<_, Option<i64>>(0)
            .map(from_millis))
    }

    /// When the oldest job still queued or in flight was enqueued (the queue's age).
    pub fn oldest_outstanding_job(&mut self) -> Result<Option<SystemTime>, StoreError> {
        Ok(self
            .query_one(
                "SELECT MIN(enqueued_at) FROM webhook_jobs WHERE due_at IS NOT NULL",
                &[],
            )?
            .get::<_, Option<i64>>(0)
            .map(from_millis))
    }

    /// Jobs, newest first, optionally of one campaign.
    pub fn jobs(
        &mut self,
        campaign_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JobInfo>, StoreError> {
        let rows = self.query(
            "SELECT id, delivery_id, template_id, user_id, campaign_id, state, attempts, last_status, last_error, due_at
             FROM webhook_jobs WHERE ($1::text IS NULL OR campaign_id = $1) ORDER BY id DESC LIMIT $2",
            &[&campaign_id, &i64::try_from(limit).unwrap_or(i64::MAX)],
        )?;
        rows.iter()
            .map(|r| {
                Ok(JobInfo {
                    id: r.get(0),
                    delivery_id: r.get(1),
                    template_id: r.get(2),
                    user_id: r.get(3),
                    campaign_id: r.get(4),
                    state: JobState::parse(r.get(5))?,
                    attempts: u32::try_from(r.get::<_, i64>(6)).unwrap_or(u32::MAX),
                    last_status: r
                        .get::<_, Option<i64>>(7)
                        .and_then(|s| u16::try_from(s).ok()),
                    last_error: r.get(8),
                    due_at: r.get::<_, Option<i64>>(9).map(from_millis),
                })
            })
            .collect()
    }

    /// Jobs enqueued since `since`, counted per `bucket` of time, campaign, step, template and
    /// state, oldest bucket first.
    pub fn delivery_buckets(
        &mut self,
        since: SystemTime,
        bucket: Duration,
    ) -> Result<Vec<DeliveryBucket>, StoreError> {
        let width = i64::try_from(bucket.as_millis()).unwrap_or(i64::MAX).max(1);
        let rows = self.query(
            "SELECT (enqueued_at / $1) * $1, campaign_id, step_id, template_id, state, COUNT(*)::BIGINT,
                    SUM(attempts)::BIGINT,
                    SUM(CASE WHEN finished_at IS NULL THEN 0 ELSE 1 END)::BIGINT,
                    SUM(CASE WHEN finished_at IS NULL THEN 0 ELSE finished_at - enqueued_at END)::BIGINT
             FROM webhook_jobs WHERE enqueued_at >= $2
             GROUP BY 1, campaign_id, step_id, template_id, state ORDER BY 1",
            &[&width, &millis(since)],
        )?;
        let mut out = Vec::new();
        for r in rows {
            let state: String = r.get(4);
            let n = |i: usize| u64::try_from(r.get::<_, i64>(i)).unwrap_or(0);
            out.push(DeliveryBucket {
                start: from_millis(r.get(0)),
                campaign_id: r.get(1),
                step_id: r.get(2),
                template_id: r.get(3),
                state: JobState::parse(&state)?,
                jobs: n(5),
                attempts: n(6),
                finished: n(7),
                latency_ms_total: n(8),
            });
        }
        Ok(out)
    }
}
