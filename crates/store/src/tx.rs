//! [`Tx`]: the transaction API every crate uses, the same on every backend.
//!
//! `Tx` wraps one backend's transaction and forwards each operation to it. The list of
//! operations below is the store's whole typed interface; a backend that lacks one does not
//! compile.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use leadwire_profiles::{Identifier, ParsedTrack, Profile};

use crate::postgres::PgTx;
use crate::profiles;
use crate::sqlite::SqliteTx;
use crate::{
    ActivityQuery, ActivityRecord, ActivityRow, ApiKeyInfo, ClaimedJob, Consumer, CredentialRow,
    DashboardSessionRow, DashboardUserRow, DeliveryBucket, Enqueued, EventRow, IdentifyRequest,
    JobClaim, JobInfo, JobState, JourneyRow, JourneyWrite, NewAlias, NewJob, Origin, Settlement,
    SpecRow, StoreError, TemplateRow, TrackResult, TriggerRecord,
};

/// One transaction: a write transaction from [`crate::Store::transact`] or a read-only snapshot
/// from [`crate::Store::read`].
pub struct Tx<'a>(Inner<'a>);

enum Inner<'a> {
    Sqlite(SqliteTx<'a>),
    // Boxed: a PostgreSQL transaction carries its per-transaction memos (one allocation per
    // transaction, next to a network round trip per statement).
    Postgres(Box<PgTx<'a>>),
}

impl<'a> Tx<'a> {
    pub(crate) fn sqlite(tx: SqliteTx<'a>) -> Tx<'a> {
        Tx(Inner::Sqlite(tx))
    }

    pub(crate) fn postgres(tx: PgTx<'a>) -> Tx<'a> {
        Tx(Inner::Postgres(Box::new(tx)))
    }

    pub(crate) fn into_sqlite(self) -> Option<SqliteTx<'a>> {
        match self.0 {
            Inner::Sqlite(tx) => Some(tx),
            Inner::Postgres(_) => None,
        }
    }

    pub(crate) fn into_postgres(self) -> Option<PgTx<'a>> {
        match self.0 {
            Inner::Postgres(tx) => Some(*tx),
            Inner::Sqlite(_) => None,
        }
    }

    /// The time this transaction started (what it stamps on the rows it writes).
    pub fn now(&self) -> DateTime<Utc> {
        match &self.0 {
            Inner::Sqlite(tx) => tx.now,
            Inner::Postgres(tx) => tx.now,
        }
    }
}

/// Runs one of `crate::profiles`' rules over the backend's row access.
macro_rules! with_rows {
    ($tx:expr, $rule:path, $($arg:expr),*) => {
        match &mut $tx.0 {
            Inner::Sqlite(rows) => $rule(rows, $($arg),*),
            Inner::Postgres(rows) => $rule(&mut **rows, $($arg),*),
        }
    };
}

impl Tx<'_> {
    /// The profile an identifier names (Braze's precedence for email and phone), as of this
    /// transaction.
    pub fn profile(&mut self, id: &Identifier) -> Result<Option<Profile>, StoreError> {
        with_rows!(self, profiles::profile, id)
    }

    /// The profile with its custom events and purchases summed (Braze's export fields).
    pub fn profile_with_history(
        &mut self,
        id: &Identifier,
    ) -> Result<Option<(Profile, leadwire_profiles::History)>, StoreError> {
        with_rows!(self, profiles::profile_with_history, id)
    }

    pub fn profile_by_braze_id(&mut self, braze_id: &str) -> Result<Option<Profile>, StoreError> {
        self.profile(&Identifier::BrazeId(braze_id.to_owned()))
    }

    /// `/users/track`: applies every object, writes each touched profile once, appends the
    /// triggers the changes raise.
    pub fn track(
        &mut self,
        req: &ParsedTrack,
        origin: impl Into<Origin>,
    ) -> Result<TrackResult, StoreError> {
        let origin = origin.into();
        with_rows!(self, profiles::track, req, &origin)
    }

    pub fn delete_users(&mut self, ids: &[Identifier]) -> Result<usize, StoreError> {
        with_rows!(self, profiles::delete_users, ids)
    }

    pub fn add_aliases(
        &mut self,
        aliases: &[NewAlias],
    ) -> Result<Vec<(usize, String)>, StoreError> {
        with_rows!(self, profiles::add_aliases, aliases)
    }

    pub fn identify(
        &mut self,
        reqs: &[IdentifyRequest],
    ) -> Result<Vec<(usize, String)>, StoreError> {
        with_rows!(self, profiles::identify, reqs)
    }
}

macro_rules! forward {
    ($( $(#[$meta:meta])* fn $name:ident($($arg:ident : $ty:ty),*) -> $ret:ty; )*) => {
        impl Tx<'_> {
            $(
                $(#[$meta])*
                pub fn $name(&mut self, $($arg: $ty),*) -> $ret {
                    match &mut self.0 {
                        Inner::Sqlite(tx) => tx.$name($($arg),*),
                        Inner::Postgres(tx) => tx.$name($($arg),*),
                    }
                }
            )*
        }
    };
}

forward! {

    // activity
    /// Appends an entry; returns its id.
    fn record_activity(row: &ActivityRow) -> Result<i64, StoreError>;
    /// Entries matching `query`: newest first, or oldest first after `after_id`.
    fn activity(query: &ActivityQuery) -> Result<Vec<ActivityRecord>, StoreError>;
    /// Deletes entries from before `cutoff`; returns how many.
    fn prune_activity(cutoff: SystemTime) -> Result<usize, StoreError>;

    // campaigns
    /// Creates or replaces (by name) a campaign; returns its id.
    fn save_campaign(name: &str, spec: &str) -> Result<String, StoreError>;
    /// Every campaign, oldest first.
    fn campaigns() -> Result<Vec<SpecRow>, StoreError>;
    /// Records that a campaign sent to a user (the job that carries it).
    fn record_campaign_send(campaign_id: &str, braze_id: &str, job_id: i64, dispatch_id: Option<&str>, trigger_seq: Option<i64>, sent_at: DateTime<Utc>) -> Result<(), StoreError>;
    /// When the user last received this campaign: a send whose job did not end aborted or
    /// failed. Sends still queued count, so a second trigger in the meantime does not send twice.
    fn last_received(campaign_id: &str, braze_id: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// A campaign's delivery-speed state as its owner encoded it.
    fn campaign_pace(campaign_id: &str) -> Result<Option<String>, StoreError>;
    fn set_campaign_pace(campaign_id: &str, state: &str) -> Result<(), StoreError>;

    // canvas
    /// Creates or replaces (by name) a Canvas; returns its id.
    fn save_canvas(name: &str, spec: &str) -> Result<String, StoreError>;
    /// Every Canvas, oldest first.
    fn canvases() -> Result<Vec<SpecRow>, StoreError>;
    /// A user's journeys in a Canvas that have not exited, oldest first.
    fn open_journeys(canvas_id: &str, braze_id: &str) -> Result<Vec<JourneyRow>, StoreError>;
    /// Journeys whose wake time has come, in the Canvases listed, earliest first.
    fn due_journeys(canvas_ids: &[String], now: DateTime<Utc>, max: usize) -> Result<Vec<JourneyRow>, StoreError>;
    /// How many journeys are due at `now` in any Canvas (zero: nothing waits on time).
    fn due_journey_count(now: DateTime<Utc>) -> Result<u64, StoreError>;
    /// When the earliest waiting journey in the Canvases listed wakes.
    fn next_journey_wake(canvas_ids: &[String]) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Every journey of a Canvas, oldest first.
    fn journeys(canvas_id: &str) -> Result<Vec<JourneyRow>, StoreError>;
    /// Saves a journey: a new one when `id` is `None`. Returns its id.
    fn write_journey(id: Option<i64>, canvas_id: &str, braze_id: &str, write: &JourneyWrite<'_>) -> Result<i64, StoreError>;
    /// Replaces only a journey's state (an exit request noted while it waits).
    fn set_journey_state(id: i64, state: &str) -> Result<(), StoreError>;
    /// Ends a journey without advancing it (its user was deleted).
    fn exit_journey(id: i64, reason: &str) -> Result<(), StoreError>;
    /// When the user last entered the Canvas.
    fn last_entry(canvas_id: &str, braze_id: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
    fn record_entry(canvas_id: &str, braze_id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Entries into the Canvas in the UTC hour `hour` (hours since the epoch).
    fn hourly_entries(canvas_id: &str, hour: i64) -> Result<u64, StoreError>;
    fn count_hourly_entry(canvas_id: &str, hour: i64) -> Result<(), StoreError>;
    /// Counts one thing a step did (`entered`, `webhook`, `user_update`).
    fn count_step(canvas_id: &str, step_id: &str, kind: &str) -> Result<(), StoreError>;
    fn step_counts(canvas_id: &str) -> Result<HashMap<(String, String), i64>, StoreError>;

    // dashboard
    /// Adds a dashboard user (`Conflict` when the email is taken); returns the user's id.
    fn create_dashboard_user(email: &str, password_hash: &str, role: &str) -> Result<String, StoreError>;
    fn dashboard_user_by_email(email: &str) -> Result<Option<DashboardUserRow>, StoreError>;
    /// Every dashboard user, by email.
    fn dashboard_users() -> Result<Vec<DashboardUserRow>, StoreError>;
    /// Saves a session under its token's SHA-256 (the token itself is never stored) and
    /// deletes sessions that have expired.
    fn create_dashboard_session(token_hash: &str, user_id: &str, expires_at: DateTime<Utc>) -> Result<(), StoreError>;
    /// The session under this hash and its user, unless it has expired by `now`.
    fn dashboard_session(token_hash: &str, now: DateTime<Utc>) -> Result<Option<DashboardSessionRow>, StoreError>;
    /// Ends a session; `false` when there was none.
    fn delete_dashboard_session(token_hash: &str) -> Result<bool, StoreError>;
    /// A user's custom events, newest first (the dashboard's user page).
    fn recent_events(braze_id: &str, limit: usize) -> Result<Vec<EventRow>, StoreError>;

    // feed
    /// Trigger feed entries after `position`, oldest first.
    fn triggers_after(position: i64, limit: usize) -> Result<Vec<TriggerRecord>, StoreError>;
    /// The newest trigger's position (0 for an empty feed).
    fn feed_end() -> Result<i64, StoreError>;
    /// Where a consumer stands: every trigger up to here is consumed. 0 when it never ran.
    fn feed_position(consumer: Consumer) -> Result<i64, StoreError>;
    /// Moves a consumer's position; commit it with whatever consuming the triggers wrote.
    fn set_feed_position(consumer: Consumer, seq: i64) -> Result<(), StoreError>;
    /// Deletes up to `max` triggers that every consumer has passed and that are older than
    /// `keep_after` (the `/triggers` feed and the activity log read recent history); returns
    /// how many went. A consumer that never ran holds everything.
    fn prune_feed(keep_after: DateTime<Utc>, max: usize) -> Result<usize, StoreError>;

    // jobs
    /// Enqueues a job: it exists if and only if this transaction commits (the outbox pattern).
    /// Fails if the template does not exist or is archived.
    fn enqueue_job(job: &NewJob) -> Result<Enqueued, StoreError>;
    /// Leases up to `max` due jobs for `lease`.
    fn claim_jobs(now: SystemTime, lease: Duration, max: usize) -> Result<Vec<ClaimedJob>, StoreError>;
    /// Settles a claimed job; `false` when a newer claim owns it now (its lease had run out),
    /// in which case nothing changed.
    fn settle_job(claim: JobClaim, settlement: &Settlement) -> Result<bool, StoreError>;
    /// The user a job is for (`None` when the stored identifier no longer parses).
    fn job_user(id: i64) -> Result<Option<Identifier>, StoreError>;
    /// Counts of jobs by state.
    fn job_counts() -> Result<HashMap<JobState, u64>, StoreError>;
    /// Jobs queued or in flight.
    fn outstanding_jobs() -> Result<u64, StoreError>;
    /// Jobs a worker holds right now.
    fn in_flight_jobs() -> Result<u64, StoreError>;
    /// When the next queued job falls due (for a worker deciding how long to sleep).
    fn next_job_due() -> Result<Option<SystemTime>, StoreError>;
    /// When the oldest job still queued or in flight was enqueued.
    fn oldest_outstanding_job() -> Result<Option<SystemTime>, StoreError>;
    /// Jobs enqueued since `since`, counted per `bucket` of time, campaign, step, template and
    /// state (the dashboard's delivery charts).
    fn delivery_buckets(since: SystemTime, bucket: Duration) -> Result<Vec<DeliveryBucket>, StoreError>;
    /// Jobs, newest first, optionally of one campaign.
    fn jobs(campaign_id: Option<&str>, limit: usize) -> Result<Vec<JobInfo>, StoreError>;

    // maintenance
    /// The database file's pages: `(page size, pages, free pages)` (free pages are reused before
    /// the file grows).
    fn file_pages() -> Result<(u64, u64, u64), StoreError>;
    /// Gives up to `max` free pages back to the file system (the file shrinks); returns how many
    /// free pages are left.
    fn release_free_pages(max: u32) -> Result<u64, StoreError>;
    /// Asks for a full WAL checkpoint once this transaction's batch has committed (a checkpoint
    /// cannot run inside a transaction).
    fn checkpoint_after_commit() -> Result<(), StoreError>;

    // profiles (the rules are in `crate::profiles`, below)
    /// Every user's braze id (a broadcast's audience).
    fn braze_ids() -> Result<Vec<String>, StoreError>;
    fn profile_count() -> Result<u64, StoreError>;
    fn api_key_by_hash(hash: &str) -> Result<Option<ApiKeyInfo>, StoreError>;
    fn create_api_key(name: &str, permissions: &[String]) -> Result<String, StoreError>;

    // templates
    /// Saves a new template (its name must not be taken by an active one); returns its id.
    fn insert_template(name: &str, description: &str, definition: &str) -> Result<String, StoreError>;
    /// Replaces a template's definition; `false` when no template has this id.
    fn update_template(id: &str, name: &str, description: &str, definition: &str) -> Result<bool, StoreError>;
    /// Archives a template; `false` when no template has this id.
    fn archive_template(id: &str) -> Result<bool, StoreError>;
    fn template(id: &str) -> Result<Option<TemplateRow>, StoreError>;
    /// Templates, oldest first.
    fn templates(include_archived: bool, limit: usize, offset: usize) -> Result<Vec<TemplateRow>, StoreError>;
    /// The template's version (its `updated_at` in ms, to key a compile cache) and whether it
    /// is archived.
    fn template_version(id: &str) -> Result<Option<(i64, bool)>, StoreError>;
    /// The id of the active template with this name (or id).
    fn template_id_by_name(name: &str) -> Result<Option<String>, StoreError>;
    /// Creates or replaces a credential (by name).
    fn put_credential(c: &CredentialRow) -> Result<(), StoreError>;
    /// Every credential, secrets included, by name.
    fn credentials() -> Result<Vec<CredentialRow>, StoreError>;
    fn credential(name: &str) -> Result<Option<CredentialRow>, StoreError>;
    /// Deletes a credential; `false` when there was none by that name.
    fn delete_credential(name: &str) -> Result<bool, StoreError>;
}
