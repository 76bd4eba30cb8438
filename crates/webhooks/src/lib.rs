//! Durable webhook delivery on leadwire's one SQLite file (`DATA_DIR/leadwire.db`, shared with the
//! store through separate connections and separate migrations):
//!
//! - [`templates`]: webhook templates as saved (definition JSON ⇄ `WebhookTemplate`), compiled
//!   and validated on every save.
//! - [`credentials`]: Braze's `:basic_auth` / `:auth_credentials` store; secrets are never read
//!   back out through any listing and are redacted from everything logged.
//! - [`queue`]: the durable job queue ([`queue::enqueue`] inside a caller's transaction, leases so
//!   a crashed worker's jobs come back) implementing `leadwire_delivery::worker::JobQueue`.
//! - [`activity`]: the message activity log (`ActivitySink`, queries, retention pruning).
//! - [`writeback`]: response write-back through `Store::track` with `ChangeSource::WriteBack`,
//!   recorded on the job first so a crash between delivery and write-back loses nothing.
//! - [`service`]: [`WebhookService`], which owns all of it plus the worker loop.
//!
//! Must not speak HTTP to users (that is `leadwire-api`) nor know campaigns: a campaign enqueues
//! a [`queue::NewJob`] naming a template, a user and render properties.

mod db;

pub mod activity;
pub mod credentials;
pub mod queue;
pub mod service;
pub mod templates;
pub mod writeback;

pub use db::migrate;
pub use queue::{Enqueued, NewJob, RenderProperties, enqueue};
pub use service::{WebhookConfig, WebhookService};

/// What went wrong, by kind; messages name the problem and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    #[error("cannot open the database at {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("database error: {0}")]
    Database(String),
    /// The request is malformed (a JSON path and what is wrong with it).
    #[error("{0}")]
    Invalid(String),
    /// The template does not compile; one entry per problem.
    #[error("the template does not compile: {}", .0.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("; "))]
    Compile(Vec<templates::CompileIssue>),
    #[error("{what} '{id}' does not exist")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error("store error: {0}")]
    Store(#[from] leadwire_store::StoreError),
    #[error("cannot set up delivery: {0}")]
    Setup(String),
}

impl From<rusqlite::Error> for WebhookError {
    fn from(e: rusqlite::Error) -> Self {
        WebhookError::Database(e.to_string())
    }
}
