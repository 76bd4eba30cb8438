//! The records the store's operations take and give. Plain data: no SQL types, no backend names.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use leadwire_profiles::{Identifier, MinorError, Profile, Trigger, UserAlias};
use serde::Serialize;
use sha2::Digest as _;

use crate::StoreError;

// ---- profiles -------------------------------------------------------------------------------

/// What `/users/track` did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TrackResult {
    pub attributes_processed: usize,
    pub events_processed: usize,
    pub purchases_processed: usize,
    pub errors: Vec<MinorError>,
    /// Update-only objects about users that do not exist: accepted and left alone, as Braze
    /// does (not errors, so Braze's clients see plain success).
    pub skipped: Vec<MinorError>,
}

/// Who changed a profile: the API, a CSV import, a canvas User Update step, a write-back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeSource {
    Api,
    Import,
    CanvasUserUpdate,
    /// Fields of a webhook's response saved onto the profile (e.g. the created Lead's id).
    WriteBack,
}

impl ChangeSource {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ChangeSource::Api => "api",
            ChangeSource::Import => "import",
            ChangeSource::CanvasUserUpdate => "canvas_user_update",
            ChangeSource::WriteBack => "write_back",
        }
    }

    pub(crate) fn parse(s: &str) -> ChangeSource {
        match s {
            "import" => ChangeSource::Import,
            "canvas_user_update" => ChangeSource::CanvasUserUpdate,
            "write_back" => ChangeSource::WriteBack,
            _ => ChangeSource::Api,
        }
    }
}

/// Who changed a profile and, when traces are exported, the trace the change belongs to (a W3C
/// `traceparent`), so the sends the change causes join that trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub source: ChangeSource,
    pub trace_context: Option<String>,
}

impl Origin {
    pub fn traced(source: ChangeSource, trace_context: Option<String>) -> Origin {
        Origin {
            source,
            trace_context,
        }
    }
}

impl From<ChangeSource> for Origin {
    fn from(source: ChangeSource) -> Origin {
        Origin {
            source,
            trace_context: None,
        }
    }
}

/// One entry of the trigger feed, in the order changes were applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriggerRecord {
    /// Position in the feed; strictly increasing. Read the next page with `triggers_after(seq)`.
    pub seq: i64,
    pub braze_id: String,
    pub external_id: Option<String>,
    pub source: ChangeSource,
    pub trigger: Trigger,
    pub created_at: DateTime<Utc>,
    /// The `traceparent` of the change that raised it (see [`Origin`]).
    pub trace_context: Option<String>,
}

impl TriggerRecord {
    /// A stored feed row, as every backend stores it (payload JSON, RFC 3339 time).
    pub(crate) fn decode(
        seq: i64,
        braze_id: String,
        external_id: Option<String>,
        source: &str,
        payload: &str,
        created_at: &str,
        trace_context: Option<String>,
    ) -> Result<TriggerRecord, StoreError> {
        let trigger: Trigger = serde_json::from_str(payload)
            .map_err(|e| StoreError::Corrupt(format!("trigger {seq}: {e}")))?;
        let created_at = DateTime::parse_from_rfc3339(created_at)
            .map_err(|e| StoreError::Corrupt(format!("trigger {seq} time: {e}")))?
            .with_timezone(&Utc);
        Ok(TriggerRecord {
            seq,
            braze_id,
            external_id,
            source: ChangeSource::parse(source),
            trigger,
            created_at,
            trace_context,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewAlias {
    /// The identified user to attach the alias to; `None` creates an alias-only user.
    pub external_id: Option<String>,
    pub alias: UserAlias,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IdentifyRequest {
    pub external_id: String,
    pub alias: UserAlias,
}

/// Profiles found for a list of identifiers, and the identifiers that matched nobody.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FoundProfiles {
    pub found: Vec<Profile>,
    pub missing: Vec<Identifier>,
}

/// Profiles with their events and purchases summed, and the identifiers that matched nobody.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportedProfiles {
    pub found: Vec<(Profile, leadwire_profiles::History)>,
    pub missing: Vec<Identifier>,
}

/// A stored API key's metadata. The key itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKeyInfo {
    pub id: String,
    pub name: String,
    pub permissions: Vec<String>,
}

/// One custom event a user performed, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    pub name: String,
    /// RFC 3339, as the event gave it.
    pub time: String,
    pub properties: serde_json::Value,
}

/// A dashboard user as stored: the password only as its argon2 PHC string, the role as its
/// owner (`leadwire-dashboard`) names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardUserRow {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

/// A dashboard session found by its token's hash: whose it is and when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardSessionRow {
    pub user: DashboardUserRow,
    pub expires_at: DateTime<Utc>,
}

/// The SHA-256 (hex) under which a secret token is stored: API keys and dashboard session
/// tokens are never stored in clear.
pub fn token_hash(token: &str) -> String {
    hash_key(token)
}

pub(crate) fn hash_key(key: &str) -> String {
    sha2::Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---- the trigger feed's consumers ------------------------------------------------------------

/// A reader of the trigger feed with a stored position. One row per consumer in
/// `feed_positions`; triggers every consumer has passed may be pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Consumer {
    Campaigns,
    Canvases,
}

impl Consumer {
    pub const ALL: [Consumer; 2] = [Consumer::Campaigns, Consumer::Canvases];

    pub fn as_str(self) -> &'static str {
        match self {
            Consumer::Campaigns => "campaigns",
            Consumer::Canvases => "canvases",
        }
    }
}

// ---- webhook jobs ---------------------------------------------------------------------------

/// Where a job is in its life. `Queued` → `InFlight` (claimed, leased) → `Delivered` |
/// `Aborted` | `Failed`, or back to `Queued` (retry, host busy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    InFlight,
    Delivered,
    Aborted,
    Failed,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::InFlight,
        JobState::Delivered,
        JobState::Aborted,
        JobState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::InFlight => "in_flight",
            JobState::Delivered => "delivered",
            JobState::Aborted => "aborted",
            JobState::Failed => "failed",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<JobState, StoreError> {
        JobState::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown job state '{s}'")))
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub template_id: String,
    pub user: Identifier,
    pub campaign_id: Option<String>,
    /// Canvas step (or campaign message variation) id.
    pub step_id: Option<String>,
    /// The render properties (Braze's trigger and campaign namespaces), as their owner encodes
    /// them.
    pub properties: serde_json::Value,
    /// Not sent before this time (now when `None`).
    pub not_before: Option<SystemTime>,
    /// The `traceparent` of the work that decided the send, which its delivery span continues.
    pub trace_context: Option<String>,
}

/// An enqueued job's ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub job_id: i64,
    /// Sent as `X-Leadwire-Delivery-Id` on every attempt.
    pub delivery_id: String,
}

/// One claim of a job: settles are conditional on it, so a worker whose lease was taken over
/// cannot overwrite the newer claim's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobClaim {
    pub id: i64,
    pub claims: i64,
}

/// A job as claimed: ids to hydrate from.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedJob {
    pub claim: JobClaim,
    pub delivery_id: String,
    pub template_id: String,
    /// The stored identifier; `Err` with the reason when it no longer parses.
    pub user: Result<Identifier, String>,
    pub user_id: String,
    pub campaign_id: Option<String>,
    pub step_id: Option<String>,
    pub properties: serde_json::Value,
    pub attempts: u32,
    pub previous_delay: Option<Duration>,
    /// The HTTP status the previous attempt got; `None` when it got none (or there was none).
    pub last_status: Option<u16>,
    /// See [`NewJob::trace_context`].
    pub trace_context: Option<String>,
}

/// How a claimed job ends its attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement {
    Delivered {
        attempts: u32,
        status: Option<u16>,
    },
    Aborted {
        reason: String,
    },
    /// Retried at `at`; `attempts` made so far, the backoff used.
    Retry {
        at: SystemTime,
        attempts: u32,
        previous_delay: Option<Duration>,
        status: Option<u16>,
        error: String,
    },
    Failed {
        attempts: u32,
        status: Option<u16>,
        error: String,
    },
    /// Given back without using an attempt (its host is saturated).
    Release {
        at: SystemTime,
    },
}

/// A job's row as shown to people and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    pub id: i64,
    pub delivery_id: String,
    pub template_id: String,
    pub user_id: String,
    pub campaign_id: Option<String>,
    pub state: JobState,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    /// When a worker next takes it (its next attempt, or its lease's end); `None` once final.
    pub due_at: Option<SystemTime>,
}

/// Jobs enqueued in one time bucket, for one campaign (or Canvas), step, template and state: what
/// the dashboard's delivery charts are drawn from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryBucket {
    /// The bucket's start.
    pub start: SystemTime,
    pub campaign_id: Option<String>,
    pub step_id: Option<String>,
    pub template_id: String,
    pub state: JobState,
    /// Jobs enqueued in the bucket.
    pub jobs: u64,
    /// Their attempts, summed (attempts beyond the first are retries).
    pub attempts: u64,
    /// How many of them finished, and their enqueued-to-finished times summed.
    pub finished: u64,
    pub latency_ms_total: u64,
}

// ---- templates and credentials --------------------------------------------------------------

/// A stored webhook template; `definition` is the JSON its owner (`leadwire-webhooks`) wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub definition: String,
    pub archived: bool,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// `:basic_auth NAME`: username and password.
    Basic,
    /// `:auth_credentials NAME`: headers, optionally only for one domain.
    Token,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Basic => "basic",
            CredentialKind::Token => "token",
        }
    }
}

/// A stored credential, secret included: only the renderer and the redactor read this.
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialRow {
    pub name: String,
    pub kind: CredentialKind,
    pub username: Option<String>,
    pub secret: Option<String>,
    pub headers: Vec<(String, String)>,
    pub allowed_domain: Option<String>,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

impl std::fmt::Debug for CredentialRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialRow")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

// ---- the message activity log ---------------------------------------------------------------

/// Kinds of activity entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityType {
    Aborted,
    RenderError,
    Retrying,
    Failed,
    WriteBackFailed,
    TestSend,
    /// A token call (connected_content to an OAuth endpoint) failed; Braze's "Connected Content error".
    ConnectedContentError,
    TokenRefreshed,
    Deduplicated,
    OutcomeUnknown,
    ApiBudget,
}

impl ActivityType {
    pub const ALL: [ActivityType; 11] = [
        ActivityType::Aborted,
        ActivityType::RenderError,
        ActivityType::Retrying,
        ActivityType::Failed,
        ActivityType::WriteBackFailed,
        ActivityType::TestSend,
        ActivityType::ConnectedContentError,
        ActivityType::TokenRefreshed,
        ActivityType::Deduplicated,
        ActivityType::OutcomeUnknown,
        ActivityType::ApiBudget,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActivityType::Aborted => "aborted",
            ActivityType::RenderError => "render_error",
            ActivityType::Retrying => "retrying",
            ActivityType::Failed => "failed",
            ActivityType::WriteBackFailed => "write_back_failed",
            ActivityType::TestSend => "test_send",
            ActivityType::ConnectedContentError => "connected_content_error",
            ActivityType::TokenRefreshed => "token_refreshed",
            ActivityType::Deduplicated => "deduplicated",
            ActivityType::OutcomeUnknown => "outcome_unknown",
            ActivityType::ApiBudget => "api_budget",
        }
    }
}

impl std::str::FromStr for ActivityType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ActivityType::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown activity type '{s}'; known: {}",
                    ActivityType::ALL.map(ActivityType::as_str).join(", ")
                )
            })
    }
}

/// An activity entry to write (already redacted).
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRow {
    pub at: SystemTime,
    pub kind: ActivityType,
    pub campaign_id: Option<String>,
    pub step_id: Option<String>,
    pub user_id: String,
    pub delivery_id: Option<String>,
    pub template: Option<String>,
    pub attempt: Option<u32>,
    pub request: Option<serde_json::Value>,
    pub response: Option<serde_json::Value>,
    pub message: String,
}

/// One stored entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRecord {
    /// Increasing; tail with `after_id`.
    pub id: i64,
    pub row: ActivityRow,
}

/// Filters for the activity log; all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityQuery {
    pub campaign_id: Option<String>,
    pub user_id: Option<String>,
    pub kind: Option<ActivityType>,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    /// Only entries with a larger id (for tailing), oldest first.
    pub after_id: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

// ---- campaigns and Canvases -----------------------------------------------------------------

/// The two spec tables, campaigns and Canvases, share one shape (id, unique name, the owner's
/// spec JSON, times); these run the same statements on either.
#[derive(Clone, Copy)]
pub(crate) enum SpecTable {
    Campaigns,
    Canvases,
}

impl SpecTable {
    pub(crate) fn table(self) -> &'static str {
        match self {
            SpecTable::Campaigns => "campaigns",
            SpecTable::Canvases => "canvases",
        }
    }

    pub(crate) fn id_prefix(self) -> &'static str {
        match self {
            SpecTable::Campaigns => "cmp_",
            SpecTable::Canvases => "cnv_",
        }
    }

    pub(crate) fn noun(self) -> &'static str {
        match self {
            SpecTable::Campaigns => "campaign",
            SpecTable::Canvases => "canvas",
        }
    }
}

/// A stored campaign or Canvas: its spec as the JSON its owner wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecRow {
    pub id: String,
    pub name: String,
    pub spec: String,
    pub created_at: DateTime<Utc>,
    /// When it was last saved (Braze's `last_edited`).
    pub updated_at: DateTime<Utc>,
}

/// Where a user's journey through a Canvas stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JourneyStatus {
    /// In a step; `wake_at` says when a Delay or window ends.
    Active,
    Exited,
}

impl JourneyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JourneyStatus::Active => "active",
            JourneyStatus::Exited => "exited",
        }
    }

    pub(crate) fn parse(s: &str) -> JourneyStatus {
        match s {
            "exited" => JourneyStatus::Exited,
            _ => JourneyStatus::Active,
        }
    }
}

/// A journey as stored; `state` is the JSON the Canvas engine wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct JourneyRow {
    pub id: i64,
    pub canvas_id: String,
    pub braze_id: String,
    pub state: String,
    pub status: JourneyStatus,
    pub wake_at: Option<DateTime<Utc>>,
    pub exit_reason: Option<String>,
}

/// A journey's new state, to insert or update.
#[derive(Debug, Clone, PartialEq)]
pub struct JourneyWrite<'a> {
    pub state: &'a str,
    pub status: JourneyStatus,
    pub wake_at: Option<DateTime<Utc>>,
    pub exit_reason: Option<&'a str>,
}
