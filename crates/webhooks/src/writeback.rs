//! Response write-back through the store: the fields a template's rules pick out of a
//! successful response are set on the user's profile with `Store::track` and
//! `ChangeSource::WriteBack`, so the usual attribute-changed triggers are raised.
//!
//! Crash safety: the store's writes go through its own writer, so they cannot share a
//! transaction with the job row. Instead the job is first marked `delivered` with the attributes
//! in `write_back_pending` (one transaction), then the profile is updated, then the pending
//! column is cleared. A crash in between leaves the pending attributes, which
//! [`SqliteWriteBack::recover`] applies at start-up; setting the same value twice changes
//! nothing and raises no second trigger. The webhook is never sent again for it.

use std::sync::Arc;
use std::time::SystemTime;

use leadwire_delivery::worker::{Job, WriteBack, WriteBackError};
use leadwire_profiles::track::{AttrOp, AttributeObject};
use leadwire_profiles::{Identifier, ParsedTrack};
use leadwire_store::{ChangeSource, Store};
use rusqlite::{OptionalExtension, params};
use serde_json::Value as Json;

use crate::WebhookError;
use crate::db::{Db, blocking, millis};
use crate::queue::parse_job_key;

pub struct SqliteWriteBack {
    db: Arc<Db>,
    store: Arc<dyn Store>,
}

/// Sets `attributes` on the user (existing users only).
pub async fn apply(
    store: &dyn Store,
    user: Identifier,
    attributes: Vec<(String, Json)>,
) -> Result<(), WebhookError> {
    let request = ParsedTrack {
        attributes: vec![AttributeObject {
            index: 0,
            identifier: user,
            update_existing_only: true,
            merge_objects: false,
            ops: attributes
                .into_iter()
                .map(|(k, v)| (k, AttrOp::Set(v)))
                .collect(),
        }],
        ..ParsedTrack::default()
    };
    let result = store.track(request, ChangeSource::WriteBack).await?;
    match result.errors.first() {
        Some(e) => Err(WebhookError::Invalid(e.message.clone())),
        None if result.attributes_processed == 0 => Err(WebhookError::Invalid(
            "the user no longer exists, so nothing was saved".into(),
        )),
        None => Ok(()),
    }
}

fn encode(attributes: &[(String, Json)]) -> String {
    Json::Array(
        attributes
            .iter()
            .map(|(k, v)| Json::Array(vec![Json::String(k.clone()), v.clone()]))
            .collect(),
    )
    .to_string()
}

fn decode(text: &str) -> Vec<(String, Json)> {
    match serde_json::from_str::<Json>(text) {
        Ok(Json::Array(items)) => items
            .into_iter()
            .filter_map(|p| match p {
                Json::Array(mut kv) if kv.len() == 2 => {
                    let v = kv.pop()?;
                    Some((kv.pop()?.as_str()?.to_owned(), v))
                }
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

impl SqliteWriteBack {
    pub(crate) fn new(db: Arc<Db>, store: Arc<dyn Store>) -> SqliteWriteBack {
        SqliteWriteBack { db, store }
    }

    async fn clear(&self, id: i64) -> Result<(), WebhookError> {
        blocking(&self.db, move |conn| {
            conn.execute(
                "UPDATE webhook_jobs SET write_back_pending = NULL WHERE id = ?1",
                [id],
            )?;
            Ok(())
        })
        .await
    }

    /// Applies write-backs left pending by a crash; returns how many jobs were finished.
    pub async fn recover(&self) -> Result<usize, WebhookError> {
        let pending: Vec<(i64, String, String)> = blocking(&self.db, |conn| {
            let mut stmt = conn.prepare(
                "SELECT id, user_identifier, write_back_pending FROM webhook_jobs WHERE write_back_pending IS NOT NULL",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
        let n = pending.len();
        for (id, identifier, attributes) in pending {
            if let Ok(user) = serde_json::from_str::<Identifier>(&identifier)
                && let Err(e) = apply(self.store.as_ref(), user, decode(&attributes)).await
            {
                tracing::warn!(job = id, error = %e, "a pending write-back could not be applied");
            }
            self.clear(id).await?;
        }
        Ok(n)
    }
}

impl WriteBack for SqliteWriteBack {
    async fn write_back(
        &self,
        job: &Job,
        attributes: Vec<(String, Json)>,
    ) -> Result<(), WriteBackError> {
        let (id, claims) = parse_job_key(&job.id).map_err(|e| WriteBackError(e.0))?;
        let pending = encode(&attributes);
        let attempt = job.attempts_made + 1;
        let identifier: Option<String> = blocking(&self.db, move |conn| {
            Ok(conn
                .query_row(
                    "UPDATE webhook_jobs SET state = 'delivered', due_at = NULL, lease_until = NULL, finished_at = ?3, attempts = ?4, write_back_pending = ?5
                     WHERE id = ?1 AND claims = ?2 AND state = 'in_flight' RETURNING user_identifier",
                    params![id, claims, millis(SystemTime::now()), attempt, pending],
                    |r| r.get(0),
                )
                .optional()?)
        })
        .await
        .map_err(|e| WriteBackError(e.to_string()))?;
        let Some(identifier) = identifier else {
            return Err(WriteBackError(
                "the job's lease ran out before the response could be saved".into(),
            ));
        };
        let user = serde_json::from_str::<Identifier>(&identifier)
            .map_err(|e| WriteBackError(format!("stored user identifier is corrupt: {e}")))?;
        let applied = apply(self.store.as_ref(), user, attributes).await;
        self.clear(id)
            .await
            .map_err(|e| WriteBackError(e.to_string()))?;
        applied.map_err(|e| WriteBackError(e.to_string()))
    }
}
