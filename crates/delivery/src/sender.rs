//! One delivery attempt: SSRF check, per-host permit, circuit admission, the HTTP request (with
//! the stable `X-Leadwire-Delivery-Id` and Braze's `User-Agent`), the response read up to a cap,
//! and an [`AttemptReport`] with secrets already redacted, the classification and the next delay.
//!
//! This is the impure shell around `retry`, `circuit`, `ssrf`, `hostlimit` and `redact`: it reads
//! the [`Clock`] and does the I/O. Must not know templates' syntax, queues or storage.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::budget::{BudgetAdmission, BudgetChange, Budgets};
use crate::circuit::{Admission, CircuitBreakers};
use crate::clock::{self, Clock};
use crate::hostlimit::HostLimits;
use crate::redact::Redactor;
use crate::retry::{
    AttemptResult, Classification, RetryAfter, RetryInput, RetryReason, RetrySchedule, classify,
    next_delay, parse_retry_after,
};
use crate::ssrf::{GuardedResolver, SsrfPolicy, find_blocked};
use crate::webhook::{Method, RenderedRequest};

/// Sent on every attempt of one delivery, with the same value, so a receiver can deduplicate.
pub const DELIVERY_ID_HEADER: &str = "X-Leadwire-Delivery-Id";
pub(crate) const DELIVERY_ID_HEADER_LOWER: &str = "x-leadwire-delivery-id";
/// Braze's sender identity, with ours in parentheses.
pub const USER_AGENT: &str = concat!("Braze Sender (leadwire/", env!("CARGO_PKG_VERSION"), ")");

#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Whole-request time limit (Braze: 90 s).
    pub timeout: Duration,
    /// Response bodies are read up to this many bytes (for the log and write-back).
    pub max_body_bytes: usize,
    /// How long to wait for a saturated host's permit before giving the job back.
    pub host_wait: Duration,
    pub schedule: RetrySchedule,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            timeout: Duration::from_secs(90),
            max_body_bytes: 64 * 1024,
            host_wait: Duration::from_millis(50),
            schedule: RetrySchedule::default(),
        }
    }
}

/// Settings for [`guarded_client`].
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    /// PEM certificates to trust besides the public roots (the emulator's CA).
    pub extra_ca_pem: Vec<Vec<u8>>,
    pub pool_max_idle_per_host: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("extra CA certificate is not valid PEM: {0}")]
    BadCertificate(String),
    #[error("could not build the HTTP client: {0}")]
    Build(String),
}

/// The pooled client for deliveries: like `leadwire_http_client::build_client` (rustls,
/// HTTP/1.1 and 2, keep-alive, no redirects) plus the SSRF guard as its DNS resolver, so the
/// address checked is the address connected to.
pub fn guarded_client(
    settings: &ClientSettings,
    policy: Arc<SsrfPolicy>,
) -> Result<reqwest::Client, ClientError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(settings.pool_max_idle_per_host.unwrap_or(64))
        .dns_resolver(Arc::new(GuardedResolver::new(policy)))
        .use_rustls_tls();
    for pem in &settings.extra_ca_pem {
        let cert = reqwest::Certificate::from_pem(pem)
            .map_err(|e| ClientError::BadCertificate(e.to_string()))?;
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build()
        .map_err(|e| ClientError::Build(e.to_string()))
}

/// The request as the activity log shows it (secrets redacted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

/// The response as the activity log shows it (secrets redacted, body truncated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub truncated: bool,
}

/// What one attempt did.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptReport {
    pub delivery_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub started_at: SystemTime,
    pub duration: Duration,
    pub request: LoggedRequest,
    pub response: Option<LoggedResponse>,
    pub result: AttemptResult,
    pub classification: Classification,
    /// Why there is no usable response (connection error, timeout, refusal, open circuit).
    pub error: Option<String>,
    pub retry_after: Option<RetryAfter>,
    /// Set when the attempt will be retried: the wait before the next one.
    pub next_delay: Option<Duration>,
}

impl AttemptReport {
    /// A one-line account a person can act on.
    pub fn summary(&self) -> String {
        let what = match (&self.response, &self.error) {
            (Some(r), _) => {
                let body: String = r.body.chars().take(500).collect();
                format!(
                    "{} {} answered {}: {}",
                    self.request.method, self.request.url, r.status, body
                )
            }
            (None, Some(e)) => format!("{} {}: {}", self.request.method, self.request.url, e),
            (None, None) => format!("{} {}", self.request.method, self.request.url),
        };
        match (self.classification, self.next_delay) {
            (Classification::Retry(_), Some(d)) => {
                format!(
                    "{what} (attempt {}; retrying in {:.1} s)",
                    self.attempt,
                    d.as_secs_f64()
                )
            }
            (Classification::Retry(_), None) => {
                format!("{what} (attempt {}; no retries left)", self.attempt)
            }
            (Classification::Terminal, _) => {
                format!("{what} (attempt {}; not retried)", self.attempt)
            }
            (Classification::Success, _) => what,
        }
    }
}

/// An attempt plus the raw (capped, unredacted) response body, for write-back only.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub report: AttemptReport,
    pub response_body: Vec<u8>,
    /// The answer paused or resumed sends to its org (API budget).
    pub budget_change: Option<BudgetChange>,
}

/// What [`Sender::send`] did.
#[derive(Debug, Clone)]
pub enum Dispatch {
    Attempted(Box<Attempt>),
    /// The host's concurrency limit stayed full: nothing was sent and no attempt is used.
    HostBusy,
    /// The org's API budget holds sends back until then: nothing was sent, no attempt is used.
    Held {
        wait: Duration,
        reason: String,
    },
}

/// Everything an attempt needs, shared by all workers.
pub struct Sender {
    client: reqwest::Client,
    config: SenderConfig,
    policy: Arc<SsrfPolicy>,
    limits: Arc<HostLimits>,
    circuits: Arc<CircuitBreakers>,
    redactor: Arc<Redactor>,
    budgets: Arc<Budgets>,
    clock: Arc<dyn Clock>,
}

fn reqwest_method(method: Method) -> reqwest::Method {
    match method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}

impl Sender {
    /// `client` should come from [`guarded_client`]; any other client gets only the literal-IP
    /// SSRF check.
    pub fn new(
        client: reqwest::Client,
        config: SenderConfig,
        policy: Arc<SsrfPolicy>,
        limits: Arc<HostLimits>,
        circuits: Arc<CircuitBreakers>,
        redactor: Arc<Redactor>,
    ) -> Sender {
        Sender {
            client,
            config,
            policy,
            limits,
            circuits,
            redactor,
            budgets: Arc::new(Budgets::new(Default::default())),
            clock: clock::system(),
        }
    }

    /// Spends each org's API allowance by `budgets`' policy (the default keeps 5% back).
    pub fn with_budgets(mut self, budgets: Arc<Budgets>) -> Self {
        self.budgets = budgets;
        self
    }

    pub fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    /// Reads the time from `clock` instead of the system clocks (tests move a
    /// [`ManualClock`](crate::clock::ManualClock)). The worker uses its sender's clock too.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn config(&self) -> &SenderConfig {
        &self.config
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub fn circuits(&self) -> &CircuitBreakers {
        &self.circuits
    }

    /// The headers as sent: the template's, then the delivery id, then the user agent (unless
    /// the template sets its own).
    fn headers_as_sent(
        &self,
        request: &RenderedRequest,
        delivery_id: &str,
    ) -> Vec<(String, String)> {
        let mut headers = request.headers.clone();
        headers.push((DELIVERY_ID_HEADER.to_owned(), delivery_id.to_owned()));
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("user-agent"))
        {
            headers.push(("User-Agent".to_owned(), USER_AGENT.to_owned()));
        }
        headers
    }

    fn logged_request(
        &self,
        request: &RenderedRequest,
        headers: &[(String, String)],
    ) -> LoggedRequest {
        LoggedRequest {
            method: request.method.as_str().to_owned(),
            url: self.redactor.text(&request.url),
            headers: self.redactor.headers(headers),
            body: request.body.as_ref().map(|b| {
                let capped = truncate(b, self.config.max_body_bytes);
                self.redactor.text(capped)
            }),
        }
    }

    /// Makes one attempt. `attempt` counts from 1; `previous_delay` and `random` (in `[0, 1)`)
    /// feed the backoff.
    pub async fn send(
        &self,
        request: &RenderedRequest,
        delivery_id: &str,
        attempt: u32,
        previous_delay: Option<Duration>,
        random: f64,
    ) -> Dispatch {
        let started_at = self.clock.system_now();
        let started = self.clock.now();
        let headers = self.headers_as_sent(request, delivery_id);
        let logged = self.logged_request(request, &headers);
        let report = |result: AttemptResult, error: Option<String>| {
            let classification = classify(result);
            let next = self.next_delay(classification, attempt, None, previous_delay, random);
            AttemptReport {
                delivery_id: delivery_id.to_owned(),
                attempt,
                started_at,
                duration: self.clock.now().saturating_duration_since(started),
                request: logged.clone(),
                response: None,
                result,
                classification,
                error: error.map(|e| self.redactor.text(&e)),
                retry_after: None,
                next_delay: next,
            }
        };
        let attempted = |report: AttemptReport| {
            Dispatch::Attempted(Box::new(Attempt {
                report,
                response_body: Vec::new(),
                budget_change: None,
            }))
        };

        let url = match reqwest::Url::parse(&request.url) {
            Ok(u) => u,
            Err(e) => {
                return attempted(report(
                    AttemptResult::Refused,
                    Some(format!("{} is not a valid URL ({e})", request.url)),
                ));
            }
        };
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if let Err(blocked) = self.policy.check_url_host(&host) {
            return attempted(report(AttemptResult::Refused, Some(blocked.to_string())));
        }

        let Some(_permit) = self.limits.acquire(&host, self.config.host_wait).await else {
            return Dispatch::HostBusy;
        };

        if let Admission::Rejected { until } = self.circuits.admit(&host, self.clock.now()) {
            let mut r = report(
                AttemptResult::CircuitOpen,
                Some(format!(
                    "598 Host Unhealthy: too many recent failures at {host}; requests are paused"
                )),
            );
            let wait = until.saturating_duration_since(self.clock.now());
            r.next_delay = r.next_delay.map(|d| d.max(wait));
            return attempted(r);
        }

        let origin = url.origin().ascii_serialization();
        if let BudgetAdmission::Hold { until, reason } =
            self.budgets.admit(&origin, self.clock.now())
        {
            return Dispatch::Held {
                wait: until.saturating_duration_since(self.clock.now()),
                reason,
            };
        }

        let mut builder = self
            .client
            .request(reqwest_method(request.method), url)
            .timeout(self.config.timeout);
        for (name, value) in &headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }

        let outcome = builder.send().await;
        let mut response = match outcome {
            Ok(r) => r,
            Err(e) => {
                let result = if find_blocked(&e).is_some() {
                    AttemptResult::Refused
                } else if e.is_connect() {
                    // No connection, so nothing was received.
                    AttemptResult::ConnectError
                } else if e.is_timeout() {
                    AttemptResult::Timeout
                } else if e.is_builder() {
                    // The request itself cannot be built (e.g. an invalid header): retrying cannot help.
                    AttemptResult::Refused
                } else {
                    // Connected and sent (in part or whole), then the connection closed.
                    AttemptResult::NoAnswer
                };
                let message = match (result, find_blocked(&e)) {
                    (_, Some(blocked)) => blocked.to_string(),
                    (AttemptResult::Timeout, _) => format!(
                        "no complete answer within {} s",
                        self.config.timeout.as_secs_f64()
                    ),
                    _ => error_chain(&e),
                };
                let r = report(result, Some(message));
                if result != AttemptResult::Refused {
                    self.circuits.record(&host, self.clock.now(), true);
                }
                return attempted(r);
            }
        };

        let status = response.status().as_u16();
        let response_headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let mut body = Vec::new();
        let mut truncated = false;
        let mut read_error = None;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = self.config.max_body_bytes.saturating_sub(body.len());
                    if chunk.len() > room {
                        body.extend_from_slice(&chunk[..room]);
                        truncated = true;
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    read_error = Some(if e.is_timeout() {
                        format!(
                            "the response body did not arrive within {} s",
                            self.config.timeout.as_secs_f64()
                        )
                    } else {
                        format!("the response body broke off: {}", error_chain(&e))
                    });
                    break;
                }
            }
        }
        let result = AttemptResult::Status(status);
        let mut classification = classify(result);
        self.circuits
            .record(&host, self.clock.now(), classification.is_host_failure());
        let mut next =
            self.next_delay(classification, attempt, retry_after, previous_delay, random);
        let text = String::from_utf8_lossy(&body);
        let mut budget_change = response_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("sforce-limit-info"))
            .and_then(|(_, v)| leadwire_salesforce::limits::parse_limit_info(v))
            .and_then(|usage| self.budgets.observe(&origin, usage, self.clock.now()));
        if status == 403 && text.contains("REQUEST_LIMIT_EXCEEDED") {
            // The daily allowance is spent (by us or anyone): not this request's fault, so it
            // waits for the window instead of failing for good.
            budget_change = self
                .budgets
                .exhausted(&origin, self.clock.now())
                .or(budget_change);
            classification = Classification::Retry(RetryReason::Status(403));
            next = Some(self.budgets.probe_every());
        }
        let report = AttemptReport {
            delivery_id: delivery_id.to_owned(),
            attempt,
            started_at,
            duration: self.clock.now().saturating_duration_since(started),
            request: logged,
            response: Some(LoggedResponse {
                status,
                headers: self.redactor.headers(&response_headers),
                body: self.redactor.text(&text),
                truncated,
            }),
            result,
            classification,
            error: read_error,
            retry_after,
            next_delay: next,
        };
        Dispatch::Attempted(Box::new(Attempt {
            report,
            response_body: body,
            budget_change,
        }))
    }

    /// Braze's retry rules for a failure found before the request went out (a failed token
    /// call): the classification and, when it is retried, the wait.
    pub fn plan_retry(
        &self,
        result: AttemptResult,
        attempts_made: u32,
        retry_after: Option<RetryAfter>,
        previous_delay: Option<Duration>,
        random: f64,
    ) -> (Classification, Option<Duration>) {
        let classification = classify(result);
        let next = self.next_delay(
            classification,
            attempts_made,
            retry_after,
            previous_delay,
            random,
        );
        (classification, next)
    }

    fn next_delay(
        &self,
        classification: Classification,
        attempts_made: u32,
        retry_after: Option<RetryAfter>,
        previous_delay: Option<Duration>,
        random: f64,
    ) -> Option<Duration> {
        let reason: RetryReason = match classification {
            Classification::Retry(reason) => reason,
            _ => return None,
        };
        next_delay(
            &self.config.schedule,
            RetryInput {
                attempts_made,
                reason,
                retry_after,
                previous_delay,
                now: self.clock.system_now(),
                random,
            },
        )
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("Müller", 2), "M");
        assert_eq!(truncate("Müller", 3), "Mü");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn user_agent_names_braze_and_leadwire() {
        assert!(USER_AGENT.starts_with("Braze Sender (leadwire/"));
    }
}
