//! The message activity log: every abort, render error, failed attempt, retry, terminal
//! failure, failed write-back and test send, with the request (secrets redacted) and the response
//! (truncated), queryable by campaign, user, kind and time, and pruned after the retention period
//! (Braze: 60 hours). Stored by the store (`webhook_activity`).
//!
//! Entries arrive redacted by the sender; [`Activity`] redacts them once more with every secret in
//! the credentials store, so a credential saved after the worker started is covered.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use leadwire_delivery::redact::Redactor;
use leadwire_delivery::sender::{LoggedRequest, LoggedResponse};
use leadwire_delivery::worker::{ActivityEntry, ActivityKind, ActivitySink};
use leadwire_store::{ActivityQuery, ActivityRecord, ActivityRow, ActivityType, Store};
use serde_json::{Value as Json, json};

use crate::WebhookError;
use crate::credentials::Credentials;

pub fn kind_of(kind: ActivityKind) -> ActivityType {
    match kind {
        ActivityKind::Aborted => ActivityType::Aborted,
        ActivityKind::RenderError => ActivityType::RenderError,
        ActivityKind::Retrying => ActivityType::Retrying,
        ActivityKind::Failed => ActivityType::Failed,
        ActivityKind::WriteBackFailed => ActivityType::WriteBackFailed,
        ActivityKind::ConnectedContentError => ActivityType::ConnectedContentError,
        ActivityKind::TokenRefreshed => ActivityType::TokenRefreshed,
        ActivityKind::Deduplicated => ActivityType::Deduplicated,
        ActivityKind::OutcomeUnknown => ActivityType::OutcomeUnknown,
        ActivityKind::ApiBudget => ActivityType::ApiBudget,
    }
}

/// An entry as the REST API and `leadwire activity tail --json` show it.
pub fn record_json(record: &ActivityRecord) -> Json {
    let r = &record.row;
    json!({
        "id": record.id,
        "time": crate::templates::rfc3339(r.at),
        "type": r.kind.as_str(),
        "campaign_id": r.campaign_id,
        "step_id": r.step_id,
        "user_id": r.user_id,
        "delivery_id": r.delivery_id,
        "template": r.template,
        "attempt": r.attempt,
        "request": r.request,
        "response": r.response,
        "message": r.message,
    })
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

/// The activity log.
pub struct Activity {
    store: Store,
    credentials: Arc<Credentials>,
    base: Redactor,
}

impl Activity {
    pub(crate) fn new(store: Store, credentials: Arc<Credentials>, base: Redactor) -> Activity {
        Activity {
            store,
            credentials,
            base,
        }
    }

    /// The sender's rules plus every stored credential secret.
    pub async fn redactor(&self) -> Redactor {
        let mut r = self.base.clone();
        match self.credentials.secrets().await {
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
        Ok(self
            .store
            .transact(move |tx| tx.record_activity(&row))
            .await?)
    }

    /// Entries matching `query`: newest first, or oldest first after `after_id`.
    pub async fn query(&self, query: ActivityQuery) -> Result<Vec<ActivityRecord>, WebhookError> {
        Ok(self.store.read(move |tx| tx.activity(&query)).await?)
    }

    /// Deletes entries older than `retention`; returns how many.
    pub async fn prune(&self, retention: Duration) -> Result<usize, WebhookError> {
        let cutoff = SystemTime::now()
            .checked_sub(retention)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        Ok(self
            .store
            .transact(move |tx| tx.prune_activity(cutoff))
            .await?)
    }

    /// An entry from the worker, redacted with every stored secret.
    pub(crate) async fn row(&self, entry: ActivityEntry) -> ActivityRow {
        let redactor = self.redactor().await;
        ActivityRow {
            at: entry.at,
            kind: kind_of(entry.kind),
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
        }
    }
}

impl ActivitySink for Activity {
    async fn record(&self, entry: ActivityEntry) {
        let row = self.row(entry).await;
        if let Err(e) = self.insert(row).await {
            tracing::error!(error = %e, "could not write an activity log entry");
        }
    }
}
