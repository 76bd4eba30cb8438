//! How values are stored, the same on every backend: times as milliseconds since the epoch
//! (or RFC 3339 text where the column says so), JSON as text, ids with a type prefix.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde_json::{Value as Json, json};

use crate::StoreError;

/// Milliseconds since the Unix epoch (how times are stored).
pub(crate) fn millis(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn from_millis(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

pub(crate) fn utc_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_utc_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A random id with a prefix (`wt_…`, `cmp_…`), 16 hex digits.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}{:016x}", rand::random::<u64>())
}

pub(crate) fn parse_json(what: &str, text: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// A credential's extra headers as stored: a JSON array of `[name, value]` pairs.
pub(crate) fn encode_headers(headers: &[(String, String)]) -> String {
    Json::Array(headers.iter().map(|(k, v)| json!([k, v])).collect()).to_string()
}

pub(crate) fn decode_headers(text: &str) -> Vec<(String, String)> {
    let Ok(Json::Array(items)) = serde_json::from_str::<Json>(text) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|p| {
            Some((
                p.get(0)?.as_str()?.to_owned(),
                p.get(1)?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// How a job names its user in logs and the activity log: the external id, else a description.
pub(crate) fn identifier_label(id: &leadwire_profiles::Identifier) -> String {
    match id {
        leadwire_profiles::Identifier::ExternalId(x) => x.clone(),
        other => other.describe(),
    }
}

/// A delivery's id: 96 random bits.
pub(crate) fn new_delivery_id() -> String {
    format!(
        "dlv_{:016x}{:08x}",
        rand::random::<u64>(),
        rand::random::<u32>()
    )
}

/// A job may be enqueued only for a template that exists and is not archived
/// (`version`: the template's `(version, archived)`).
pub(crate) fn enqueue_precondition(
    template_id: &str,
    version: Option<(i64, bool)>,
) -> Result<(), StoreError> {
    match version {
        None => Err(StoreError::NotFound {
            what: "template",
            id: template_id.to_owned(),
        }),
        Some((_, true)) => Err(StoreError::Conflict(format!(
            "template '{template_id}' is archived; unarchive or pick another template"
        ))),
        Some((_, false)) => Ok(()),
    }
}

/// A new API key as stored: `(id, key, key's hash)`. The key itself is shown once and never
/// stored.
pub(crate) fn new_api_key() -> (String, String, String) {
    let key = format!(
        "lw-{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    );
    let id = format!("key-{:08x}", rand::random::<u32>());
    let hash = crate::model::hash_key(&key);
    (id, key, hash)
}

/// An API key's permissions as stored: Braze's names, comma-separated.
pub(crate) fn encode_permissions(permissions: &[String]) -> String {
    permissions.join(",")
}

pub(crate) fn decode_permissions(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// A new job's columns as stored, the same on every backend.
pub(crate) struct JobColumns {
    pub(crate) delivery_id: String,
    /// The user identifier as JSON, and as people read it.
    pub(crate) identifier: String,
    pub(crate) user_label: String,
    pub(crate) properties: String,
    /// When it is first due, and when it was enqueued (ms).
    pub(crate) due_at: i64,
    pub(crate) enqueued_at: i64,
}

impl JobColumns {
    pub(crate) fn of(job: &crate::NewJob) -> Result<JobColumns, StoreError> {
        let now = millis(SystemTime::now());
        Ok(JobColumns {
            delivery_id: new_delivery_id(),
            identifier: serde_json::to_string(&job.user)
                .map_err(|e| StoreError::Corrupt(format!("user identifier: {e}")))?,
            user_label: identifier_label(&job.user),
            properties: job.properties.to_string(),
            due_at: job.not_before.map_or(now, millis),
            enqueued_at: now,
        })
    }
}
