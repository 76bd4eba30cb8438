//! Durable webhook delivery over the store:
//!
//! - [`templates`]: webhook templates as saved (definition JSON ⇄ `WebhookTemplate`), compiled
//!   and validated on every save.
//! - [`credentials`]: Braze's `:basic_auth` / `:auth_credentials` store; secrets are never read
//!   back out through any listing and are redacted from everything logged.
//! - [`queue`]: the durable job queue over the store's jobs (`leadwire_delivery::worker::JobQueue`):
//!   claims hydrate jobs into render contexts; a delivery's settle and its response write-back
//!   commit in one transaction.
//! - [`lint`]: the warnings a template gets when saved or linted (compiler and Salesforce-aware).
//! - [`activity`]: the message activity log (`ActivitySink`, queries, retention pruning).
//! - [`service`]: [`WebhookService`], which owns all of it plus the worker loop.
//!
//! Must not speak HTTP to users (that is `leadwire-api`), write SQL (that is `leadwire-store`) nor
//! know campaigns: a campaign enqueues a [`NewJob`] naming a template, a user and render
//! properties.

pub mod activity;
pub mod credentials;
pub mod lint;
pub mod queue;
pub mod sealed;
pub mod service;
pub mod templates;

pub use leadwire_store::{Enqueued, NewJob};
pub use queue::{RenderProperties, render_context};
pub use service::{WebhookConfig, WebhookService};

/// What went wrong, by kind; messages name the problem and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    #[error("database error: {0}")]
    Database(String),
    /// The database cannot be reached right now; nothing was changed.
    #[error("the database is unreachable: {0}")]
    Unavailable(String),
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
    #[error("cannot set up delivery: {0}")]
    Setup(String),
}

impl From<leadwire_store::StoreError> for WebhookError {
    fn from(e: leadwire_store::StoreError) -> Self {
        use leadwire_store::StoreError as S;
        match e {
            S::Conflict(m) => WebhookError::Conflict(m),
            S::NotFound { what, id } => WebhookError::NotFound { what, id },
            S::Unavailable(m) => WebhookError::Unavailable(m),
            other => WebhookError::Database(other.to_string()),
        }
    }
}
