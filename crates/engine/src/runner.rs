//! The feed runner: one loop per consumer, one transaction per pass.
//!
//! Each pass reads the consumer's triggers after its stored position, lets the consumer act on
//! them (and on any work due by time, such as a Canvas Delay ending), and moves the position past
//! them, all in one `Store::transact`. Between passes the runner sleeps until the store signals
//! new triggers, the consumer's next timed wake-up comes, or shutdown; nothing polls.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use leadwire_store::{Consumer, Store, StoreError, TriggerRecord, Tx};

/// What went wrong in an engine, by kind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A spec or request is wrong; the message names what and where.
    #[error("{0}")]
    Invalid(String),
    /// `what` (a campaign, a Canvas) with this id or name does not exist.
    #[error("{what} '{id}' does not exist")]
    NotFound { what: &'static str, id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Webhooks(#[from] leadwire_webhooks::WebhookError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// What one pass did. Each consumer fills the fields that apply to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Triggers consumed.
    pub triggers: usize,
    /// Webhook sends enqueued.
    pub sends: usize,
    /// Users who entered a Canvas.
    pub entries: usize,
    /// Journeys woken because their Delay or window ended.
    pub woken: usize,
    /// Steps users moved into.
    pub steps: usize,
    /// Canvas User Updates applied.
    pub updates: usize,
    pub exits: usize,
    /// Entries dropped by a Canvas's hourly entry limit.
    pub limited: usize,
}

impl PassReport {
    /// Whether the pass found nothing to do (so the runner may sleep).
    pub fn idle(&self) -> bool {
        self.triggers == 0 && self.woken == 0 && self.entries == 0
    }
}

/// A reader of the trigger feed.
pub trait FeedConsumer: Send + Sync + 'static {
    /// Its row in the store's feed positions.
    fn consumer(&self) -> Consumer;

    /// Acts on `triggers` (the ones after the stored position, oldest first) and on work due at
    /// `now`, inside the pass's transaction. The runner moves the position past `triggers` in
    /// the same transaction.
    fn pass(
        &self,
        tx: &mut Tx<'_>,
        triggers: &[TriggerRecord],
        now: DateTime<Utc>,
    ) -> Result<PassReport, EngineError>;

    /// When work not driven by the feed is next due (a Delay ending); `None` when only new
    /// triggers can make work.
    fn next_wake(&self, _tx: &mut Tx<'_>) -> Result<Option<DateTime<Utc>>, EngineError> {
        Ok(None)
    }
}

/// Runs one consumer over the store's feed.
pub struct FeedRunner<C> {
    store: Store,
    consumer: Arc<C>,
    batch: usize,
}

impl<C> Clone for FeedRunner<C> {
    fn clone(&self) -> Self {
        FeedRunner {
            store: self.store.clone(),
            consumer: self.consumer.clone(),
            batch: self.batch,
        }
    }
}

/// Longest sleep between passes when nothing signals: a safety net, not the mechanism.
const IDLE_CEILING: Duration = Duration::from_secs(5);

impl<C: FeedConsumer> FeedRunner<C> {
    pub fn new(store: Store, consumer: Arc<C>) -> FeedRunner<C> {
        FeedRunner {
            store,
            consumer,
            batch: 1000,
        }
    }

    /// Most triggers one pass consumes.
    pub fn with_batch(mut self, batch: usize) -> FeedRunner<C> {
        self.batch = batch.max(1);
        self
    }

    pub fn consumer(&self) -> &Arc<C> {
        &self.consumer
    }

    /// One pass at `now`.
    pub async fn pass_at(&self, now: DateTime<Utc>) -> Result<PassReport, EngineError> {
        let consumer = self.consumer.clone();
        let max = self.batch;
        self.store
            .transact(move |tx| {
                let position = tx.feed_position(consumer.consumer())?;
                let triggers = tx.triggers_after(position, max)?;
                let mut report = consumer.pass(tx, &triggers, now)?;
                if let Some(last) = triggers.last() {
                    tx.set_feed_position(consumer.consumer(), last.seq)?;
                }
                report.triggers = triggers.len();
                Ok(report)
            })
            .await
    }

    /// One pass now.
    pub async fn pass(&self) -> Result<PassReport, EngineError> {
        self.pass_at(Utc::now()).await
    }

    /// Where the consumer stands in the feed.
    pub async fn position(&self) -> Result<i64, EngineError> {
        let consumer = self.consumer.consumer();
        Ok(self
            .store
            .read(move |tx| tx.feed_position(consumer))
            .await?)
    }

    /// Runs passes until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut feed = self.store.signals().feed();
        loop {
            // Marks the current feed end as seen before the pass, so a trigger committed during
            // the pass wakes the next wait.
            feed.borrow_and_update();
            let busy = match self.pass().await {
                Ok(report) => !report.idle(),
                Err(e) => {
                    tracing::error!(consumer = self.consumer.consumer().as_str(), error = %e, "feed pass failed; retrying");
                    false
                }
            };
            if busy {
                continue;
            }
            let consumer = self.consumer.clone();
            let wake = self
                .store
                .read(move |tx| consumer.next_wake(tx))
                .await
                .unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "reading the next wake-up failed");
                    None
                });
            // A wake-up already past that the idle pass did not take (its Canvas is paused)
            // must not spin: a short floor.
            let sleep = wake.map_or(IDLE_CEILING, |at| {
                (at - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .clamp(Duration::from_millis(20), IDLE_CEILING)
            });
            tokio::select! {
                _ = &mut shutdown => return,
                _ = feed.changed() => {}
                _ = tokio::time::sleep(sleep) => {}
            }
        }
    }
}
