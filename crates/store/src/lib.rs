//! leadwire's storage, behind one interface: profiles, aliases, events, purchases, the trigger feed
//! and API keys. The embedded default is SQLite in one file ([`SqliteStore`]); a PostgreSQL backend
//! implements the same [`Store`] trait, so callers never name a backend.
//!
//! Every applied change writes its triggers in the same transaction as the change, so a trigger
//! never fires for a change that was rolled back and no change loses its trigger.
//!
//! This crate knows profiles (from `leadwire-profiles`) and SQL; it must not know HTTP, JSON request
//! shapes, templates or campaigns.

mod migrations;
mod sqlite;

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use leadwire_profiles::{Identifier, MinorError, ParsedTrack, Profile, Trigger, UserAlias};
use serde::Serialize;

pub use sqlite::{SqliteConfig, SqliteStore, shared};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("the store is shutting down")]
    Closed,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("cannot open the database at {path}: {reason}")]
    Open { path: String, reason: String },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// What `/users/track` did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TrackResult {
    pub attributes_processed: usize,
    pub events_processed: usize,
    pub purchases_processed: usize,
    pub errors: Vec<MinorError>,
}

/// Who changed a profile: the API, a CSV import, a canvas User Update step.
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
    fn as_str(self) -> &'static str {
        match self {
            ChangeSource::Api => "api",
            ChangeSource::Import => "import",
            ChangeSource::CanvasUserUpdate => "canvas_user_update",
            ChangeSource::WriteBack => "write_back",
        }
    }

    fn parse(s: &str) -> ChangeSource {
        match s {
            "import" => ChangeSource::Import,
            "canvas_user_update" => ChangeSource::CanvasUserUpdate,
            "write_back" => ChangeSource::WriteBack,
            _ => ChangeSource::Api,
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

/// A stored API key's metadata. The key itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKeyInfo {
    pub id: String,
    pub name: String,
    pub permissions: Vec<String>,
}

/// Storage for everything leadwire keeps. Implementations apply each request's objects atomically
/// per object, in Braze's order (attributes, then events, then purchases).
pub trait Store: Send + Sync + 'static {
    fn track(
        &self,
        request: ParsedTrack,
        source: ChangeSource,
    ) -> BoxFuture<'_, Result<TrackResult, StoreError>>;
    /// Profiles for identifiers; identifiers that match nobody are returned in the second list.
    fn find_profiles(
        &self,
        ids: Vec<Identifier>,
    ) -> BoxFuture<'_, Result<FoundProfiles, StoreError>>;
    /// Deletes the users; returns how many were deleted.
    fn delete_users(&self, ids: Vec<Identifier>) -> BoxFuture<'_, Result<usize, StoreError>>;
    /// Adds aliases; returns one error message per alias that could not be added, by index.
    fn add_aliases(
        &self,
        aliases: Vec<NewAlias>,
    ) -> BoxFuture<'_, Result<Vec<(usize, String)>, StoreError>>;
    /// Identifies alias-only users as `external_id` (merging them into an existing user if any).
    fn identify(
        &self,
        requests: Vec<IdentifyRequest>,
    ) -> BoxFuture<'_, Result<Vec<(usize, String)>, StoreError>>;
    fn triggers_after(
        &self,
        position: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<TriggerRecord>, StoreError>>;
    fn create_api_key(
        &self,
        name: String,
        permissions: Vec<String>,
    ) -> BoxFuture<'_, Result<String, StoreError>>;
    fn api_key(&self, key: String) -> BoxFuture<'_, Result<Option<ApiKeyInfo>, StoreError>>;
    fn profile_count(&self) -> BoxFuture<'_, Result<u64, StoreError>>;
}
