//! In-memory implementations of the worker's traits, for this crate's tests, the benchmark and
//! embedding without a store: [`MemoryQueue`] (leases, due times, final states, queue-to-done
//! latencies) and [`MemoryActivity`]. The queue's due times and leases follow
//! its [`Clock`], so tests share one [`ManualClock`](crate::clock::ManualClock) with the sender.
//!
//! Not durable by design; must not be used where a crash must lose nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;

use crate::clock::{self, Clock};

use crate::sender::AttemptReport;
use crate::worker::{
    ActivityEntry, ActivitySink, Completion, Failure, FailureKind, Job, JobQueue, QueueError,
};

/// Where a job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Pending { attempts_made: u32 },
    Leased,
    Delivered { status: u16, attempts: u32 },
    Aborted { reason: String },
    Failed { kind: FailureKind, message: String },
}

impl JobState {
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            JobState::Delivered { .. } | JobState::Aborted { .. } | JobState::Failed { .. }
        )
    }
}

#[derive(Default)]
struct State {
    seq: u64,
    /// Due time → job.
    pending: BTreeMap<(Instant, u64), Job>,
    leased: HashMap<String, (Job, Instant)>,
    states: HashMap<String, JobState>,
    enqueued: HashMap<String, Instant>,
    latencies: Vec<Duration>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub struct MemoryQueue {
    state: Mutex<State>,
    notify: Notify,
    clock: Arc<dyn Clock>,
    /// `(user_id, attribute, value)` written back by deliveries, in order.
    written_back: Mutex<Vec<(String, String, serde_json::Value)>>,
}

impl Default for MemoryQueue {
    fn default() -> Self {
        MemoryQueue {
            state: Mutex::default(),
            notify: Notify::new(),
            clock: clock::system(),
            written_back: Mutex::default(),
        }
    }
}

impl MemoryQueue {
    pub fn new() -> MemoryQueue {
        MemoryQueue::default()
    }

    /// `(user_id, attribute, value)` saved by deliveries' write-back rules, in order.
    pub fn written_back(&self) -> Vec<(String, String, serde_json::Value)> {
        lock(&self.written_back).clone()
    }

    /// Due times and leases follow `clock` (give the worker's sender the same one).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> MemoryQueue {
        self.clock = clock;
        self
    }

    /// The worker hands over calendar times; they become instants on the same clock.
    fn instant_at(&self, when: SystemTime) -> Instant {
        let now = self.clock.now();
        match when.duration_since(self.clock.system_now()) {
            Ok(ahead) => now + ahead,
            Err(_) => now,
        }
    }

    pub fn push(&self, job: Job) {
        let now = self.clock.now();
        let mut s = lock(&self.state);
        s.seq += 1;
        let seq = s.seq;
        s.states.insert(
            job.id.clone(),
            JobState::Pending {
                attempts_made: job.attempts_made,
            },
        );
        s.enqueued.insert(job.id.clone(), now);
        s.pending.insert((now, seq), job);
        drop(s);
        self.notify.notify_one();
    }

    pub fn state(&self, id: &str) -> Option<JobState> {
        lock(&self.state).states.get(id).cloned()
    }

    /// Jobs not yet in a final state.
    pub fn unfinished(&self) -> usize {
        lock(&self.state)
            .states
            .values()
            .filter(|s| !s.is_final())
            .count()
    }

    /// Enqueue-to-final-state times of finished jobs, in completion order.
    pub fn latencies(&self) -> Vec<Duration> {
        lock(&self.state).latencies.clone()
    }

    /// When the next pending job is due, if any.
    pub fn next_due(&self) -> Option<Instant> {
        lock(&self.state).pending.keys().next().map(|(at, _)| *at)
    }

    fn settle(&self, job: &Job, state: JobState) -> Result<(), QueueError> {
        let mut s = lock(&self.state);
        if s.leased.remove(&job.id).is_none() {
            return Err(QueueError(format!("job {} is not leased", job.id)));
        }
        if state.is_final()
            && let Some(at) = s.enqueued.remove(&job.id)
        {
            let now = self.clock.now();
            s.latencies.push(now.saturating_duration_since(at));
        }
        s.states.insert(job.id.clone(), state);
        Ok(())
    }

    fn reschedule(&self, job: Job, at: Instant) -> Result<(), QueueError> {
        let mut s = lock(&self.state);
        if s.leased.remove(&job.id).is_none() {
            return Err(QueueError(format!("job {} is not leased", job.id)));
        }
        s.seq += 1;
        let seq = s.seq;
        s.states.insert(
            job.id.clone(),
            JobState::Pending {
                attempts_made: job.attempts_made,
            },
        );
        s.pending.insert((at, seq), job);
        drop(s);
        self.notify.notify_one();
        Ok(())
    }
}

impl JobQueue for MemoryQueue {
    async fn claim(&self, max: usize, lease: Duration) -> Result<Vec<Job>, QueueError> {
        let now = self.clock.now();
        let mut s = lock(&self.state);
        // Expired leases come back (a crashed or stuck worker).
        let expired: Vec<String> = s
            .leased
            .iter()
            .filter(|(_, (_, until))| *until <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some((job, _)) = s.leased.remove(&id) {
                s.seq += 1;
                let seq = s.seq;
                s.pending.insert((now, seq), job);
            }
        }
        let mut out = Vec::new();
        while out.len() < max {
            let Some(entry) = s.pending.first_entry() else {
                break;
            };
            if entry.key().0 > now {
                break;
            }
            let job = entry.remove();
            s.states.insert(job.id.clone(), JobState::Leased);
            s.leased.insert(job.id.clone(), (job.clone(), now + lease));
            out.push(job);
        }
        Ok(out)
    }

    async fn complete(&self, job: &Job, completion: Completion<'_>) -> Result<(), QueueError> {
        let state = match completion {
            Completion::Delivered { report, write_back } => {
                let mut saved = lock(&self.written_back);
                for (name, value) in write_back {
                    saved.push((job.user_id.clone(), name, value));
                }
                JobState::Delivered {
                    status: report.response.as_ref().map_or(0, |r| r.status),
                    attempts: report.attempt,
                }
            }
            Completion::Aborted { reason } => JobState::Aborted {
                reason: reason.to_owned(),
            },
        };
        self.settle(job, state)
    }

    async fn retry_at(
        &self,
        job: &Job,
        when: SystemTime,
        report: &AttemptReport,
    ) -> Result<(), QueueError> {
        let mut next = job.clone();
        next.attempts_made = report.attempt;
        next.previous_delay = report.next_delay;
        next.previous_status = report.response.as_ref().map(|r| r.status);
        self.reschedule(next, self.instant_at(when))
    }

    async fn fail(&self, job: &Job, failure: &Failure) -> Result<(), QueueError> {
        self.settle(
            job,
            JobState::Failed {
                kind: failure.kind,
                message: failure.message.clone(),
            },
        )
    }

    async fn release(&self, job: &Job, not_before: SystemTime) -> Result<(), QueueError> {
        self.reschedule(job.clone(), self.instant_at(not_before))
    }

    async fn wait_for_work(&self, max: Duration) {
        let wait = match self.next_due() {
            Some(at) => at.saturating_duration_since(self.clock.now()).min(max),
            None => max,
        };
        let _ = tokio::time::timeout(wait, self.notify.notified()).await;
    }
}

/// Keeps every activity entry.
#[derive(Default)]
pub struct MemoryActivity {
    entries: Mutex<Vec<ActivityEntry>>,
}

impl MemoryActivity {
    pub fn new() -> MemoryActivity {
        MemoryActivity::default()
    }
    pub fn entries(&self) -> Vec<ActivityEntry> {
        lock(&self.entries).clone()
    }
}

impl ActivitySink for MemoryActivity {
    async fn record(&self, entry: ActivityEntry) {
        lock(&self.entries).push(entry);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualClock;
    use crate::webhook::{Body, Method, ValueTyping, WebhookTemplate};

    fn queue() -> (MemoryQueue, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new());
        (MemoryQueue::new().with_clock(clock.clone()), clock)
    }

    fn job(id: &str) -> Job {
        let template = WebhookTemplate {
            name: "t".into(),
            url: "https://x.example/".into(),
            method: Method::Post,
            body: Body::None,
            headers: vec![],
            value_typing: ValueTyping::Strings,
            write_back: vec![],
            lookup_field: None,
            batch: false,
        }
        .compile()
        .expect("compiles");
        Job::new(
            id,
            "u1",
            Arc::new(template),
            Arc::new(serde_json::json!({})),
        )
    }

    #[tokio::test]
    async fn claims_due_jobs_once_and_reclaims_expired_leases() {
        let (q, clock) = queue();
        q.push(job("a"));
        q.push(job("b"));
        let first = q.claim(1, Duration::from_millis(30)).await.expect("claim");
        assert_eq!(first.len(), 1);
        let second = q.claim(10, Duration::from_secs(60)).await.expect("claim");
        assert_eq!(second.len(), 1);
        assert!(
            q.claim(10, Duration::from_secs(60))
                .await
                .expect("claim")
                .is_empty()
        );
        clock.advance(Duration::from_millis(29));
        assert!(
            q.claim(10, Duration::from_secs(60))
                .await
                .expect("claim")
                .is_empty(),
            "the lease still holds"
        );
        clock.advance(Duration::from_millis(1));
        let again = q.claim(10, Duration::from_secs(60)).await.expect("claim");
        assert_eq!(again.len(), 1, "the expired lease comes back");
        assert_eq!(again[0].id, first[0].id);
        assert_eq!(q.unfinished(), 2);
    }

    #[tokio::test]
    async fn release_delays_and_settling_needs_a_lease() {
        let (q, clock) = queue();
        q.push(job("a"));
        let j = q
            .claim(1, Duration::from_secs(60))
            .await
            .expect("claim")
            .remove(0);
        q.release(&j, clock.system_now() + Duration::from_millis(50))
            .await
            .expect("release");
        assert!(
            q.claim(1, Duration::from_secs(60))
                .await
                .expect("claim")
                .is_empty()
        );
        assert!(
            q.complete(&j, Completion::Aborted { reason: "x" })
                .await
                .is_err(),
            "not leased any more"
        );
        clock.advance(Duration::from_millis(50));
        let j = q
            .claim(1, Duration::from_secs(60))
            .await
            .expect("claim")
            .remove(0);
        q.complete(&j, Completion::Aborted { reason: "x" })
            .await
            .expect("complete");
        assert_eq!(q.state("a"), Some(JobState::Aborted { reason: "x".into() }));
        assert_eq!(q.unfinished(), 0);
        assert_eq!(q.latencies(), vec![Duration::from_millis(50)]);
    }
}
