//! The message activity log on `webhook_activity`: every abort, render error, failed attempt,
//! retry, terminal failure, failed write-back and test send, with the request (secrets
//! redacted) and the response (truncated), queryable by campaign, user, kind and time, and
//! pruned after the retention period (Braze: 60 hours).
//!
//! Entries arrive redacted by the sender; [`SqliteActivity`] redacts them once more with every
//! secret in the credentials table, so a credential saved after the worker started is covered.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use leadwire_delivery::redact::Redactor;
use leadwire_delivery::sender::{LoggedRequest, LoggedResponse};
use leadwire_delivery::worker::{ActivityEntry, ActivityKind, ActivitySink};
use rusqlite::{Connection, params};
use serde_json::{Value as Json, json};

use crate::WebhookError;
use crate::credentials::SqliteCredentials;
use crate::db::{Db, blocking, from_millis, millis};

/// Kinds as stored and filtered on.
pub const KINDS: [&str; 6] = [
    "aborted",
    "render_error",
    "retrying",
    "failed",
    "write_back_failed",
    "test_send",
];

pub fn kind_name(kind: ActivityKind) -> &'static str {
    match kind {
        ActivityKind::Aborted => "aborted",
        ActivityKind::RenderError => "render_error",
        ActivityKind::Retrying => "retrying",
        ActivityKind::Failed => "failed",
        ActivityKind::WriteBackFailed => "write_back_failed",
    }
}

/// A row to insert.
#[derive(Debug, Clone)]
pub(crate) struct ActivityRow {
    pub at: SystemTime,
    pub kind: String,
    pub campaign_id: Option<String>,
    pub step_id: Option<String>,
    pub user_id: String,
    pub delivery_id: Option<String>,
    pub template: Option<String>,
    pub attempt: Option<u32>,
    pub request: Option<Json>,
    pub response: Option<Json>,
    pub message: String,
}

pub(crate) fn request_json(r: &LoggedRequest) -> Json {
    json!({
        "method": r.method,
        "url": r.url,
        "headers": r.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "body": r.body,
    })
}

pub(crate) fn response_json(r: &LoggedResponse) -> Json {
    json!({
        "status": r.status,
        "headers": r.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "body": r.body,
        "truncated": r.truncated,
    })
}

pub(crate) fn redact_request(redactor: &Redactor, r: &LoggedRequest) -> LoggedRequest {
    LoggedRequest {
        method: r.method.clone(),
        url: redactor.text(&r.url),
        headers: redactor.headers(&r.headers),
        body: r.body.as_deref().map(|b| redactor.text(b)),
    }
}

pub(crate) fn redact_response(redactor: &Redactor, r: &LoggedResponse) -> LoggedResponse {
    LoggedResponse {
        status: r.status,
        headers: redactor.headers(&r.headers),
        body: redactor.text(&r.body),
        truncated: r.truncated,
    }
}

pub(crate) fn insert_row(conn: &Connection, row: &ActivityRow) -> Result<i64, WebhookError> {
    conn.prepare_cached(
        "INSERT INTO webhook_activity (at, kind, campaign_id, step_id, user_id, delivery_id, template, attempt, request, response, message)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        millis(row.at),
        row.kind,
        row.campaign_id,
        row.step_id,
        row.user_id,
        row.delivery_id,
        row.template,
        row.attempt,
        row.request.as_ref().map(Json::to_string),
        row.response.as_ref().map(Json::to_string),
        row.message,
    ])?;
    Ok(conn.last_insert_rowid())
}

/// One stored entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRecord {
    /// Increasing; tail with `after_id`.
    pub id: i64,
    pub at: SystemTime,
    pub kind: String,
    pub campaign_id: Option<String>,
    pub step_id: Option<String>,
    pub user_id: String,
    pub delivery_id: Option<String>,
    pub template: Option<String>,
    pub attempt: Option<u32>,
    pub request: Option<Json>,
    pub response: Option<Json>,
    pub message: String,
}

impl ActivityRecord {
    pub fn to_json(&self) -> Json {
        json!({
            "id": self.id,
            "time": crate::templates::rfc3339(self.at),
            "type": self.kind,
            "campaign_id": self.campaign_id,
            "step_id": self.step_id,
            "user_id": self.user_id,
            "delivery_id": self.delivery_id,
            "template": self.template,
            "attempt": self.attempt,
            "request": self.request,
            "response": self.response,
            "message": self.message,
        })
    }
}

/// Filters for [`SqliteActivity::query`]; all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityQuery {
    pub campaign_id: Option<String>,
    pub user_id: Option<String>,
    /// One of [`KINDS`].
    pub kind: Option<String>,
    pub since: Option<SystemTime>,
    pub until: Option<SystemTime>,
    /// Only entries with a larger id (for tailing), oldest first.
    pub after_id: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// The activity log.
pub struct SqliteActivity {
    db: Arc<Db>,
    credentials: Arc<SqliteCredentials>,
    base: Redactor,
}

impl SqliteActivity {
    pub(crate) fn new(
        db: Arc<Db>,
        credentials: Arc<SqliteCredentials>,
        base: Redactor,
    ) -> SqliteActivity {
        SqliteActivity {
            db,
            credentials,
            base,
        }
    }

    /// The sender's rules plus every stored credential secret.
    pub fn redactor(&self) -> Redactor {
        let mut r = self.base.clone();
        match self.credentials.secrets() {
            Ok(secrets) => {
                for s in secrets {
                    r = r.with_secret(s);
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read credential secrets for redaction"),
        }
        r
    }

    pub(crate) async fn insert(&self, row: ActivityRow) -> Result<i64, WebhookError> {
        blocking(&self.db, move |conn| insert_row(conn, &row)).await
    }

    /// Entries matching `query`: newest first, or oldest first after `after_id`.
    pub async fn query(&self, query: ActivityQuery) -> Result<Vec<ActivityRecord>, WebhookError> {
        if let Some(k) = &query.kind
            && !KINDS.contains(&k.as_str())
        {
            return Err(WebhookError::Invalid(format!(
                "unknown activity type '{k}'; known: {}",
                KINDS.join(", ")
            )));
        }
        let limit = i64::try_from(query.limit.unwrap_or(100).clamp(1, 1000)).unwrap_or(100);
        blocking(&self.db, move |conn| {
            let order = if query.after_id.is_some() { "ASC" } else { "DESC" };
            let mut stmt = conn.prepare(&format!(
                "SELECT id, at, kind, campaign_id, step_id, user_id, delivery_id, template, attempt, request, response, message
                 FROM webhook_activity
                 WHERE (?1 IS NULL OR campaign_id = ?1) AND (?2 IS NULL OR user_id = ?2) AND (?3 IS NULL OR kind = ?3)
                   AND (?4 IS NULL OR at >= ?4) AND (?5 IS NULL OR at < ?5) AND (?6 IS NULL OR id > ?6)
                 ORDER BY id {order} LIMIT ?7"
            ))?;
            let rows = stmt.query_map(
                params![
                    query.campaign_id,
                    query.user_id,
                    query.kind,
                    query.since.map(millis),
                    query.until.map(millis),
                    query.after_id,
                    limit
                ],
                |r| {
                    let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
                    Ok(ActivityRecord {
                        id: r.get(0)?,
                        at: from_millis(r.get(1)?),
                        kind: r.get(2)?,
                        campaign_id: r.get(3)?,
                        step_id: r.get(4)?,
                        user_id: r.get(5)?,
                        delivery_id: r.get(6)?,
                        template: r.get(7)?,
                        attempt: r.get(8)?,
                        request: parse(r.get(9)?),
                        response: parse(r.get(10)?),
                        message: r.get(11)?,
                    })
                },
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Deletes entries older than `retention`; returns how many.
    pub async fn prune(&self, retention: Duration) -> Result<usize, WebhookError> {
        let cutoff = millis(
            SystemTime::now()
                .checked_sub(retention)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        );
        blocking(&self.db, move |conn| {
            Ok(conn.execute("DELETE FROM webhook_activity WHERE at < ?1", [cutoff])?)
        })
        .await
    }
}

impl ActivitySink for SqliteActivity {
    async fn record(&self, entry: ActivityEntry) {
        let redactor = self.redactor();
        let row = ActivityRow {
            at: entry.at,
            kind: kind_name(entry.kind).to_owned(),
            campaign_id: entry.campaign_id,
            step_id: entry.step_id,
            user_id: entry.user_id,
            delivery_id: Some(entry.delivery_id),
            template: Some(entry.template),
            attempt: Some(entry.attempt),
            request: entry
                .request
                .as_ref()
                .map(|r| request_json(&redact_request(&redactor, r))),
            response: entry
                .response
                .as_ref()
                .map(|r| response_json(&redact_response(&redactor, r))),
            message: redactor.text(&entry.message),
        };
        if let Err(e) = self.insert(row).await {
            tracing::error!(error = %e, "could not write an activity log entry");
        }
    }
}
