//! Batching, opt-in per template: Salesforce record writes for one org and one token that come
//! within a short window go out as one sObject Collections call of up to 200 records
//! (`POST composite/sobjects` for creates, `PATCH composite/sobjects` for updates,
//! `PATCH composite/sobjects/{Object}/{ExternalIdField}` for upserts), and the lookups before
//! retried creates go out as one `IN (…)` query.
//!
//! Each member gets back an [`Attempt`] of its own, made from its record's result (or the whole
//! call's failure), so settling, Braze's retry rules, write-back, token refresh and the
//! activity log treat it as they treat a single send.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leadwire_salesforce::collections;
use leadwire_salesforce::soql::{self, Lookup};
use leadwire_salesforce::target::{Operation, Target};
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use crate::retry::{AttemptResult, Classification};
use crate::sender::{Attempt, AttemptReport, Dispatch, LoggedResponse, Sender};
use crate::webhook::{Method, RenderedRequest};

#[derive(Debug, Clone)]
pub struct BatchConfig {
    /// How long the first record of a batch waits for others.
    pub window: Duration,
    /// Records per call at most (Salesforce: 200).
    pub max_records: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            window: Duration::from_millis(200),
            max_records: collections::MAX_RECORDS,
        }
    }
}

/// What kind of call a batch becomes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Shape {
    Create,
    Update,
    Upsert { field: String },
    Lookup { field: String },
}

/// Requests that can share a call: same instance, API version, object, kind and token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BatchKey {
    origin: String,
    api_version: String,
    object: String,
    shape: Shape,
    authorization: String,
}

/// One member's part of a call: a record to write, or a value to look up.
#[derive(Debug, Clone)]
pub enum BatchItem {
    Record(Map<String, Value>),
    Lookup(String),
}

/// Who a member is, for its own report and retry schedule.
#[derive(Debug, Clone)]
pub struct Member {
    pub delivery_id: String,
    pub attempt: u32,
    pub previous_delay: Option<Duration>,
}

/// What a member gets back.
#[derive(Debug)]
pub enum BatchReply {
    Attempted(Box<Attempt>),
    HostBusy,
    Held { wait: Duration },
}

struct Waiting {
    member: Member,
    item: BatchItem,
    reply: oneshot::Sender<BatchReply>,
}

#[derive(Default)]
struct Open {
    waiting: Vec<Waiting>,
    /// Bumped at every flush, so a window timer set for an earlier batch flushes nothing.
    generation: u64,
}

pub struct Batcher {
    config: BatchConfig,
    sender: Arc<Sender>,
    open: Mutex<HashMap<BatchKey, Open>>,
    rng: AtomicU64,
}

fn authorization(request: &RenderedRequest) -> Option<String> {
    request
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.clone())
}

/// The key and record a rendered write becomes in a batch; `None` when it cannot be batched
/// (not a single-record write with a JSON object body and an Authorization header).
pub fn record_of(request: &RenderedRequest, target: &Target) -> Option<(BatchKey, BatchItem)> {
    let authorization = authorization(request)?;
    let body: Value = serde_json::from_str(request.body.as_deref()?).ok()?;
    let Value::Object(mut record) = body else {
        return None;
    };
    let (object, shape) = match (&target.operation, request.method) {
        (Operation::Create { object }, Method::Post) => (object.clone(), Shape::Create),
        (Operation::Update { object, id }, Method::Patch) => {
            record.insert("id".into(), Value::String(id.clone()));
            (object.clone(), Shape::Update)
        }
        (
            Operation::Upsert {
                object,
                field,
                value,
            },
            Method::Patch,
        ) => {
            record.insert(field.clone(), Value::String(value.clone()));
            (
                object.clone(),
                Shape::Upsert {
                    field: field.clone(),
                },
            )
        }
        _ => return None,
    };
    Some((
        BatchKey {
            origin: target.origin.clone(),
            api_version: target.api_version.clone(),
            object,
            shape,
            authorization,
        },
        BatchItem::Record(record),
    ))
}

/// The key and value of a lookup before a retried create.
pub fn lookup_of(
    request: &RenderedRequest,
    target: &Target,
    object: &str,
    field: &str,
    value: &str,
) -> Option<(BatchKey, BatchItem)> {
    Some((
        BatchKey {
            origin: target.origin.clone(),
            api_version: target.api_version.clone(),
            object: object.to_owned(),
            shape: Shape::Lookup {
                field: field.to_owned(),
            },
            authorization: authorization(request)?,
        },
        BatchItem::Lookup(value.to_owned()),
    ))
}

/// How one record fared in a call that was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Saved,
    /// An error a later try can get past (a locked row, a busy server, the daily limit).
    Transient,
    Refused,
}

fn verdict(result: &collections::RecordResult) -> Verdict {
    if result.success {
        return Verdict::Saved;
    }
    let code = result
        .raw
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
        .and_then(|e| e.get("statusCode"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match code {
        "UNABLE_TO_LOCK_ROW" | "SERVER_UNAVAILABLE" | "REQUEST_LIMIT_EXCEEDED" => {
            Verdict::Transient
        }
        _ => Verdict::Refused,
    }
}

impl Batcher {
    pub fn new(config: BatchConfig, sender: Arc<Sender>) -> Batcher {
        Batcher {
            config,
            sender,
            open: Mutex::new(HashMap::new()),
            rng: AtomicU64::new(0x5EED),
        }
    }

    /// Adds a member to its batch and waits for its part of the call's outcome.
    pub async fn submit(
        self: &Arc<Self>,
        key: BatchKey,
        item: BatchItem,
        member: Member,
    ) -> BatchReply {
        let (reply, answer) = oneshot::channel();
        let (first, full, generation) = {
            let Ok(mut open) = self.open.lock() else {
                return BatchReply::HostBusy;
            };
            let batch = open.entry(key.clone()).or_default();
            batch.waiting.push(Waiting {
                member,
                item,
                reply,
            });
            (
                batch.waiting.len() == 1,
                batch.waiting.len() >= self.config.max_records.max(1),
                batch.generation,
            )
        };
        if full {
            if let Some(waiting) = self.take(&key, generation) {
                let me = self.clone();
                tokio::spawn(async move { me.send(key, waiting).await });
            }
        } else if first {
            let me = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(me.config.window).await;
                if let Some(waiting) = me.take(&key, generation) {
                    me.send(key, waiting).await;
                }
            });
        }
        // A dropped reply means the call's task ended without answering: give the job back.
        answer.await.unwrap_or(BatchReply::HostBusy)
    }

    fn take(&self, key: &BatchKey, generation: u64) -> Option<Vec<Waiting>> {
        let mut open = self.open.lock().ok()?;
        let batch = open.get_mut(key)?;
        if batch.generation != generation || batch.waiting.is_empty() {
            return None;
        }
        batch.generation += 1;
        Some(std::mem::take(&mut batch.waiting))
    }

    fn random(&self) -> f64 {
        crate::worker::splitmix(&self.rng)
    }

    /// The collection call (or query) for a batch.
    fn request(&self, key: &BatchKey, waiting: &[Waiting]) -> RenderedRequest {
        let base = format!("{}/services/data/v{}", key.origin, key.api_version);
        let records = || -> Vec<Map<String, Value>> {
            waiting
                .iter()
                .filter_map(|w| match &w.item {
                    BatchItem::Record(r) => Some(r.clone()),
                    BatchItem::Lookup(_) => None,
                })
                .collect()
        };
        let mut headers = vec![
            ("Authorization".to_owned(), key.authorization.clone()),
            ("Accept".to_owned(), "application/json".to_owned()),
        ];
        let (method, url, body) = match &key.shape {
            Shape::Create => (
                Method::Post,
                format!("{base}/composite/sobjects"),
                Some(collections::request_body(&key.object, &records())),
            ),
            Shape::Update => (
                Method::Patch,
                format!("{base}/composite/sobjects"),
                Some(collections::request_body(&key.object, &records())),
            ),
            Shape::Upsert { field } => (
                Method::Patch,
                format!("{base}/composite/sobjects/{}/{field}", key.object),
                Some(collections::request_body(&key.object, &records())),
            ),
            Shape::Lookup { field } => {
                let values = lookup_values(waiting);
                let query =
                    soql::lookup_many_query(&key.object, field, &values).unwrap_or_default();
                let target = Target {
                    origin: key.origin.clone(),
                    api_version: key.api_version.clone(),
                    operation: Operation::Other,
                };
                (Method::Get, soql::query_url(&target, &query), None)
            }
        };
        if body.is_some() {
            headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
        }
        RenderedRequest {
            method,
            url,
            headers,
            body,
        }
    }

    async fn send(self: Arc<Self>, key: BatchKey, waiting: Vec<Waiting>) {
        let request = self.request(&key, &waiting);
        let call_id = format!(
            "batch-{}",
            waiting
                .first()
                .map_or("", |w| w.member.delivery_id.as_str())
        );
        let dispatch = self.sender.send(&request, &call_id, 1, None, 0.5).await;
        let attempt = match dispatch {
            Dispatch::HostBusy => {
                for w in waiting {
                    let _ = w.reply.send(BatchReply::HostBusy);
                }
                return;
            }
            Dispatch::Held { wait, .. } => {
                for w in waiting {
                    let _ = w.reply.send(BatchReply::Held { wait });
                }
                return;
            }
            Dispatch::Attempted(a) => a,
        };
        let call = &attempt.report;
        // Each member's answer when the call was answered and read; `Err` when it failed as a
        // whole (empty) or its answer could not be read (the reason).
        let parts: Result<Vec<(Vec<u8>, Verdict)>, String> = if call.classification.is_success() {
            self.split(&key, &waiting, &attempt.response_body)
        } else {
            Err(String::new())
        };
        let mut budget_change = attempt.budget_change.clone();
        for (i, w) in waiting.into_iter().enumerate() {
            let mut report = AttemptReport {
                delivery_id: w.member.delivery_id.clone(),
                attempt: w.member.attempt,
                ..call.clone()
            };
            report.request.body = match &w.item {
                BatchItem::Record(r) => Some(
                    self.sender
                        .redactor()
                        .text(&Value::Object(r.clone()).to_string()),
                ),
                BatchItem::Lookup(_) => None,
            };
            let plan = |result: AttemptResult, retry_after| {
                self.sender.plan_retry(
                    result,
                    w.member.attempt,
                    retry_after,
                    w.member.previous_delay,
                    self.random(),
                )
            };
            let response_body = match &parts {
                Ok(parts) => {
                    let (body, verdict) = parts[i].clone();
                    let text = String::from_utf8_lossy(&body).into_owned();
                    report.response = call.response.as_ref().map(|r| LoggedResponse {
                        body: self.sender.redactor().text(&text),
                        truncated: false,
                        ..r.clone()
                    });
                    (report.classification, report.next_delay) = match verdict {
                        Verdict::Saved => (Classification::Success, None),
                        Verdict::Transient => plan(AttemptResult::Status(503), None),
                        Verdict::Refused => (Classification::Terminal, None),
                    };
                    body
                }
                // The call failed as a whole: every member fails this attempt, each on its own
                // schedule.
                Err(why) if why.is_empty() => {
                    (report.classification, report.next_delay) =
                        plan(call.result, call.retry_after);
                    attempt.response_body.clone()
                }
                Err(why) => {
                    report.error = Some(why.clone());
                    report.classification = Classification::Terminal;
                    report.next_delay = None;
                    attempt.response_body.clone()
                }
            };
            let _ = w.reply.send(BatchReply::Attempted(Box::new(Attempt {
                report,
                response_body,
                budget_change: budget_change.take(),
            })));
        }
    }

    /// Each member's answer from a call that succeeded: its result (or lookup answer) and how
    /// its record fared.
    fn split(
        &self,
        key: &BatchKey,
        waiting: &[Waiting],
        body: &[u8],
    ) -> Result<Vec<(Vec<u8>, Verdict)>, String> {
        if let Shape::Lookup { field } = &key.shape {
            let values = lookup_values(waiting);
            let found = soql::split_lookup_many(body, field, &values)?;
            return Ok(found
                .iter()
                .map(|l: &Lookup| (soql::lookup_answer(l).into_bytes(), Verdict::Saved))
                .collect());
        }
        let results = collections::parse_results(body, waiting.len())?;
        Ok(results
            .iter()
            .map(|r| (r.raw.to_string().into_bytes(), verdict(r)))
            .collect())
    }
}

fn lookup_values(waiting: &[Waiting]) -> Vec<String> {
    waiting
        .iter()
        .filter_map(|w| match &w.item {
            BatchItem::Lookup(v) => Some(v.clone()),
            BatchItem::Record(_) => None,
        })
        .collect()
}
