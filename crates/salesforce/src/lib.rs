//! What leadwire knows about Salesforce's REST API, as pure functions with no I/O:
//!
//! - [`target`]: whether a rendered webhook URL is a Salesforce sObject resource, and which
//!   (create, record, upsert by external id), so delivery can tell a create from a safe retry.
//! - [`limits`]: the `Sforce-Limit-Info` header and the API budget policy (slow down, pause).
//! - [`soql`]: the lookup query that tells whether a create whose outcome is unknown happened.
//! - [`collections`]: sObject Collections request bodies and their per-record results.
//! - [`lint`], [`schema`], [`translations`]: the Salesforce-aware template linter, the built-in
//!   Lead schema (used when the org's describe call cannot be made) and the field and header names
//!   as the seed page's translations wrote them.
//!
//! Must not know HTTP clients, templates, queues or storage: callers pass text in and get
//! decisions out, so every rule is a unit test.

pub mod collections;
pub mod limits;
pub mod lint;
pub mod schema;
pub mod soql;
pub mod target;
pub mod translations;
