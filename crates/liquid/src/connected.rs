//! `{% connected_content URL [options] %}`: Braze's HTTP call from inside a template.
//!
//! This module decides *what* to request and how the answer renders (Braze's rules: JSON becomes an
//! object with `__http_status_code__`, text is inserted verbatim, non-2xx renders empty, GETs are
//! cached for 5 minutes). It does no I/O itself: requests go through the [`Fetcher`] trait, so the
//! engine has no network dependency and tests can count calls.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::hash::{BuildHasher as _, Hash, Hasher, RandomState};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::ast::{Block, Node};
use crate::error::{ErrorKind, RawError};
use crate::render::{State, Stop};
use crate::value::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A fully rendered request, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub timeout: Duration,
    pub max_response_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("response is larger than {0} bytes")]
    TooLarge(usize),
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("request refused: {0}")]
    Refused(String),
}

/// Performs connected_content requests. Implementations must not follow redirects.
pub trait Fetcher: Send + Sync {
    fn fetch(&self, request: &FetchRequest) -> Result<FetchResponse, FetchError>;
}

/// Stored credentials for `:basic_auth` and `:auth_credentials` (Braze: Settings > Connected Content).
pub trait CredentialStore: Send + Sync {
    fn basic_auth(&self, name: &str) -> Option<(String, String)>;
    /// Header name/value pairs of a token credential and the domain it may be sent to.
    fn token_auth(&self, name: &str) -> Option<TokenCredential>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCredential {
    pub headers: Vec<(String, String)>,
    pub allowed_domain: Option<String>,
}

/// Settings for connected_content calls. Defaults are Braze's.
#[derive(Debug, Clone)]
pub struct ConnectedContentConfig {
    /// Braze: "the server response time must be less than two seconds".
    pub timeout: Duration,
    pub max_response_bytes: usize,
    pub default_cache_ttl: Duration,
    pub min_cache_ttl: Duration,
    pub max_cache_ttl: Duration,
    /// `:retry` makes up to this many further attempts before aborting.
    pub max_retries: u32,
    pub retry_base_delay: Duration,
    /// Braze allows only ports 80 and 443; `None` allows any port (self-hosted tests use others).
    pub allowed_ports: Option<Vec<u16>>,
    pub user_agent: String,
    /// How long a token from an OAuth token endpoint is reused when its answer carries no
    /// `expires_in` (Salesforce's never does). Salesforce's default session timeout is 2 hours;
    /// a token revoked or expired sooner is dropped when the API answers 401 (see
    /// [`ConnectedContent::forget_token`]).
    pub token_lifetime: Duration,
}

impl Default for ConnectedContentConfig {
    fn default() -> Self {
        ConnectedContentConfig {
            timeout: Duration::from_secs(2),
            max_response_bytes: 1024 * 1024,
            default_cache_ttl: Duration::from_secs(300),
            min_cache_ttl: Duration::from_secs(300),
            max_cache_ttl: Duration::from_secs(4 * 3600),
            max_retries: 5,
            retry_base_delay: Duration::from_millis(200),
            allowed_ports: None,
            user_agent: concat!("Braze Sender (leadwire/", env!("CARGO_PKG_VERSION"), ")")
                .to_string(),
            token_lifetime: Duration::from_secs(2 * 3600),
        }
    }
}

/// A 2xx answer as templates see it, parsed once when it arrives: a JSON object or array (with
/// `__http_status_code__`), or text. Cache hits reuse it instead of re-parsing the body.
#[derive(Debug)]
enum Answer {
    Json(Value),
    Text(Arc<str>),
}

impl Answer {
    /// The `access_token` of an OAuth answer.
    fn access_token(&self) -> Option<&str> {
        match self {
            Answer::Json(Value::Object(obj)) => match obj.get("access_token") {
                Some(Value::Str(token)) => Some(token),
                _ => None,
            },
            _ => None,
        }
    }

    /// `expires_in` (seconds) of an OAuth answer that has one.
    fn expires_in(&self) -> Option<Duration> {
        match self {
            Answer::Json(Value::Object(obj)) => match obj.get("expires_in") {
                Some(Value::Int(secs)) if *secs > 0 => Some(Duration::from_secs(*secs as u64)),
                Some(Value::Str(text)) => text.parse::<u64>().ok().map(Duration::from_secs),
                _ => None,
            },
            _ => None,
        }
    }

    fn of(response: &FetchResponse) -> Answer {
        match serde_json::from_slice::<serde_json::Value>(&response.body) {
            Ok(json @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
                let mut value = Value::from(&json);
                if let Value::Object(obj) = &mut value {
                    Arc::make_mut(obj).insert(
                        "__http_status_code__".into(),
                        Value::Int(i64::from(response.status)),
                    );
                }
                Answer::Json(value)
            }
            _ => Answer::Text(String::from_utf8_lossy(&response.body).into()),
        }
    }
}

/// What one request came to, after any retries: a 2xx answer, or why there is none.
#[derive(Debug, Clone)]
enum Fetched {
    Answer(Arc<Answer>),
    /// A non-2xx status or a transport error; `retryable` as `:retry` sees it. `response` is
    /// the non-2xx answer, kept for the activity log of a failed token call.
    Failed {
        why: String,
        retryable: bool,
        response: Option<Arc<FetchResponse>>,
        timed_out: bool,
        /// Refused before it went out (the SSRF guard): an error, not an empty answer.
        refused: bool,
    },
}

impl Fetched {
    fn failed(why: impl Into<String>) -> Fetched {
        Fetched::Failed {
            why: why.into(),
            retryable: true,
            response: None,
            timed_out: false,
            refused: false,
        }
    }
}

/// A failed call to an OAuth token endpoint, as the activity log shows it (the caller redacts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFailure {
    pub method: Method,
    pub url: String,
    pub request_headers: Vec<(String, String)>,
    pub request_body: Option<String>,
    /// The endpoint's answer, when there was one.
    pub status: Option<u16>,
    pub response_headers: Vec<(String, String)>,
    pub response_body: String,
    /// Why there is no usable answer, in a sentence.
    pub reason: String,
    /// No answer arrived in time.
    pub timed_out: bool,
}

/// Whether a connected_content request asks an OAuth token endpoint for a token: a POST to
/// `…/oauth2/token` (Salesforce, most providers) or with a `grant_type` in its body.
pub fn is_token_request(request: &FetchRequest) -> bool {
    token_endpoint(request.method, &request.url, request.body.as_deref())
}

/// [`is_token_request`] on a request's parts, so a render can tell before building the request.
fn token_endpoint(method: Method, url: &str, body: Option<&str>) -> bool {
    if method != Method::Post {
        return false;
    }
    let path = url
        .split_once("://")
        .map_or("", |(_, rest)| rest)
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_end_matches('/');
    let ends_with = |suffix: &str| {
        path.len() >= suffix.len()
            && path.as_bytes()[path.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
    };
    ends_with("/oauth2/token")
        || ends_with("/oauth/token")
        || body.is_some_and(|b| b.contains("grant_type=") || b.contains("\"grant_type\""))
}

/// One request in flight that later renders for the same key wait for (single flight).
#[derive(Default)]
struct Flight {
    done: Mutex<Option<Fetched>>,
    ready: std::sync::Condvar,
}

impl Flight {
    fn wait(&self) -> Fetched {
        let Ok(mut done) = self.done.lock() else {
            return Fetched::failed("the request this render waited for was abandoned");
        };
        loop {
            if let Some(result) = done.as_ref() {
                return result.clone();
            }
            done = match self.ready.wait(done) {
                Ok(d) => d,
                Err(_) => {
                    return Fetched::failed("the request this render waited for was abandoned");
                }
            };
        }
    }

    fn finish(&self, result: Fetched) {
        if let Ok(mut done) = self.done.lock() {
            *done = Some(result);
        }
        self.ready.notify_all();
    }
}

/// Identifies a request in the cache: the text of everything that decides it (see
/// [`CacheKey::of`]) and that text's hash. A tag whose URL, body and headers are literal computes
/// both once at parse time, so a cache hit hashes nothing per render.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CacheKey {
    hash: u64,
    text: Arc<str>,
}

/// Keyed by a random seed per process, so keys made of user data cannot be chosen to collide.
/// One seed for every cache, so a key hashed at parse time is valid in any client's cache.
static KEY_HASHER: LazyLock<RandomState> = LazyLock::new(RandomState::new);

impl Hash for CacheKey {
    /// The stored hash only: the map's own hasher then costs one multiply, not a pass over the text.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl CacheKey {
    /// Everything that decides the request but the client's own settings (user agent, timeout),
    /// which are the same for every entry of one client's cache. Each part is length-prefixed, so
    /// two different requests never share a key. (Two spellings of one request, say header names
    /// in another case, may get two keys: that costs a request, never a wrong answer.)
    fn of(
        method: Method,
        url: &str,
        content_type: Option<&str>,
        auth: &[(String, String)],
        headers: &[(String, String)],
        body: Option<&str>,
    ) -> CacheKey {
        use std::fmt::Write as _;
        let pairs_len = |pairs: &[(String, String)]| -> usize {
            pairs.iter().map(|(k, v)| k.len() + v.len() + 8).sum()
        };
        let mut text = String::with_capacity(
            40 + url.len()
                + content_type.map_or(0, str::len)
                + pairs_len(auth)
                + pairs_len(headers)
                + body.map_or(0, str::len),
        );
        // Each part as `<length>:<text>`.
        fn part(text: &mut String, s: &str) {
            let _ = write!(text, "{}:", s.len());
            text.push_str(s);
        }
        fn optional(text: &mut String, s: Option<&str>) {
            part(text, if s.is_some() { "+" } else { "-" });
            part(text, s.unwrap_or(""));
        }
        fn pairs(text: &mut String, pairs: &[(String, String)]) {
            let _ = write!(text, "{}:", pairs.len());
            for (k, v) in pairs {
                part(text, k);
                part(text, v);
            }
        }
        part(&mut text, method.as_str());
        part(&mut text, url);
        optional(&mut text, content_type);
        pairs(&mut text, auth);
        pairs(&mut text, headers);
        optional(&mut text, body);
        let text: Arc<str> = text.into();
        CacheKey {
            hash: KEY_HASHER.hash_one(&*text),
            text,
        }
    }
}

enum Slot {
    Ready {
        expires: Instant,
        answer: Arc<Answer>,
    },
    Pending(Arc<Flight>),
}

/// How a cacheable request starts: from the cache, by waiting for the same request already in
/// flight, or by making it (the leader, who must call [`Lead::finish`]).
enum Begin<'a> {
    Hit(Arc<Answer>),
    Wait(Arc<Flight>),
    Lead(Lead<'a>),
}

/// The render that makes a request others wait for. Dropping it unfinished (a panicking
/// fetcher) releases the waiters with a failure, so nobody waits forever.
struct Lead<'a> {
    client: &'a ConnectedContent,
    key: CacheKey,
    flight: Arc<Flight>,
    finished: bool,
}

impl Lead<'_> {
    fn finish(mut self, result: &Fetched, ttl: Duration) {
        self.finished = true;
        self.client
            .settle(&self.key, &self.flight, result, Some(ttl));
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        if !self.finished {
            let abandoned = Fetched::failed("the request was abandoned");
            self.client
                .settle(&self.key, &self.flight, &abandoned, None);
        }
    }
}

/// The connected_content client a [`Context`](crate::Context) uses: fetcher, credentials, cache.
/// Share one per workspace so the cache is shared like Braze's.
pub struct ConnectedContent {
    fetcher: Arc<dyn Fetcher>,
    credentials: Option<Arc<dyn CredentialStore>>,
    config: ConnectedContentConfig,
    cache: Mutex<HashMap<CacheKey, Slot, rustc_hash::FxBuildHasher>>,
    clock: Box<dyn Fn() -> Instant + Send + Sync>,
}

impl ConnectedContent {
    pub fn new(fetcher: Arc<dyn Fetcher>, config: ConnectedContentConfig) -> ConnectedContent {
        ConnectedContent {
            fetcher,
            credentials: None,
            config,
            cache: Mutex::new(HashMap::default()),
            clock: Box::new(Instant::now),
        }
    }

    pub fn with_credentials(mut self, credentials: Arc<dyn CredentialStore>) -> ConnectedContent {
        self.credentials = Some(credentials);
        self
    }

    /// Replaces the clock that cache expiry reads (tests move time forward with it).
    pub fn with_clock(
        mut self,
        clock: impl Fn() -> Instant + Send + Sync + 'static,
    ) -> ConnectedContent {
        self.clock = Box::new(clock);
        self
    }

    pub fn config(&self) -> &ConnectedContentConfig {
        &self.config
    }

    /// A cached answer, the flight to wait for, or the lead on a new request for `key`.
    fn begin(&self, key: &CacheKey) -> Begin<'_> {
        let now = (self.clock)();
        let mut cache = self.cache.lock();
        if let Ok(cache) = cache.as_mut() {
            match cache.get(key) {
                Some(Slot::Ready { expires, answer }) if *expires > now => {
                    return Begin::Hit(answer.clone());
                }
                Some(Slot::Pending(f)) => return Begin::Wait(f.clone()),
                _ => {}
            }
        }
        // A miss: this render leads the request; later renders for the key wait for it.
        let flight = Arc::new(Flight::default());
        if let Ok(cache) = cache.as_mut() {
            cache.insert(key.clone(), Slot::Pending(flight.clone()));
        }
        drop(cache);
        Begin::Lead(Lead {
            client: self,
            key: key.clone(),
            flight,
            finished: false,
        })
    }

    /// Ends a flight: a 2xx answer is cached for `ttl`, anything else leaves no entry behind.
    fn settle(
        &self,
        key: &CacheKey,
        flight: &Arc<Flight>,
        result: &Fetched,
        ttl: Option<Duration>,
    ) {
        if let Ok(mut cache) = self.cache.lock() {
            let ours = matches!(cache.get(key), Some(Slot::Pending(f)) if Arc::ptr_eq(f, flight));
            if ours {
                match (result, ttl) {
                    (Fetched::Answer(answer), Some(ttl)) => {
                        // A token that says when it expires is dropped a minute before.
                        let ttl = answer
                            .expires_in()
                            .map_or(ttl, |e| ttl.min(e.saturating_sub(Duration::from_secs(60))));
                        let expires = (self.clock)() + ttl;
                        cache.insert(
                            key.clone(),
                            Slot::Ready {
                                expires,
                                answer: answer.clone(),
                            },
                        );
                    }
                    _ => {
                        cache.remove(key);
                    }
                }
            }
        }
        flight.finish(result.clone());
    }

    /// Makes the request, with `:retry`'s attempts. `Err` is the last failure when they ran out.
    fn fetch(&self, request: &FetchRequest, retry: bool) -> Result<Fetched, Fetched> {
        let mut attempt = 0;
        loop {
            let outcome = self.fetcher.fetch(request);
            let ok = matches!(&outcome, Ok(r) if (200..300).contains(&r.status));
            let retryable = is_retryable(&outcome);
            let fetched = match outcome {
                Ok(r) if ok => {
                    if r.body.len() > self.config.max_response_bytes {
                        Fetched::Failed {
                            why: format!(
                                "response is larger than {} bytes",
                                self.config.max_response_bytes
                            ),
                            retryable: false,
                            response: None,
                            timed_out: false,
                            refused: false,
                        }
                    } else {
                        Fetched::Answer(Arc::new(Answer::of(&r)))
                    }
                }
                Ok(r) => Fetched::Failed {
                    why: format!("HTTP {}", r.status),
                    retryable,
                    response: Some(Arc::new(r)),
                    timed_out: false,
                    refused: false,
                },
                Err(e) => Fetched::Failed {
                    why: e.to_string(),
                    retryable,
                    response: None,
                    timed_out: matches!(e, FetchError::Timeout(_)),
                    refused: matches!(e, FetchError::Refused(_)),
                },
            };
            if ok || !retry || !retryable {
                return Ok(fetched);
            }
            if attempt >= self.config.max_retries {
                return Err(fetched);
            }
            std::thread::sleep(self.config.retry_base_delay * 2u32.saturating_pow(attempt));
            attempt += 1;
        }
    }

    /// Drops every cached OAuth answer whose `access_token` is `token`, so the next render asks
    /// for a new one. Called when the API answered 401 for a request that carried it. Returns
    /// whether one was cached.
    pub fn forget_token(&self, token: &str) -> bool {
        let token = token.trim();
        if token.is_empty() {
            return false;
        }
        let Ok(mut cache) = self.cache.lock() else {
            return false;
        };
        let before = cache.len();
        cache.retain(|_, slot| match slot {
            Slot::Ready { answer, .. } => answer.access_token() != Some(token),
            Slot::Pending(_) => true,
        });
        cache.len() != before
    }
}

/// The parsed tag. URL, body and header values are Liquid, rendered at send time (unless they are
/// literal text: see [`Fixed`]).
#[derive(Debug)]
pub struct ConnectedContentTag {
    url: Block,
    method: Method,
    body: Option<Block>,
    headers: Option<Block>,
    content_type: Option<String>,
    basic_auth: Option<String>,
    auth_credentials: Option<String>,
    save: Option<Arc<str>>,
    /// `save`, or `connected` when the tag has no `:save`.
    save_as: Arc<str>,
    cache_max_age: Option<u64>,
    no_cache: bool,
    retry: bool,
    offset: usize,
    fixed: Option<Fixed>,
}

/// The request parts of a tag whose URL, body and headers are literal text (the seed's token
/// call is one), worked out at parse time: a render then renders none of them, and a render
/// served from the cache builds no request and hashes no key.
#[derive(Debug)]
struct Fixed {
    /// Valid but for the client's port rule, which is checked per render.
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    token_request: bool,
    key: CacheKey,
}

impl Fixed {
    /// `None` when a part depends on the render, when the tag names a stored credential (read
    /// from the store at each render), or when a part is invalid: the rendering path then reports
    /// it at render time, as before.
    fn of(tag: &ConnectedContentTag) -> Option<Fixed> {
        if tag.basic_auth.is_some() || tag.auth_credentials.is_some() {
            return None;
        }
        let url = clean_url(literal(&tag.url)?);
        validate_url(&url, None).ok()?;
        let headers = match &tag.headers {
            Some(block) => parse_headers(&literal(block)?).ok()?,
            None => Vec::new(),
        };
        let body = match &tag.body {
            Some(block) => Some(tag.encode_body(literal(block)?)),
            None => None,
        };
        Some(Fixed {
            token_request: token_endpoint(tag.method, &url, body.as_deref()),
            key: CacheKey::of(
                tag.method,
                &url,
                tag.content_type.as_deref(),
                &[],
                &headers,
                body.as_deref(),
            ),
            url,
            headers,
            body,
        })
    }
}

/// The text of a block that holds nothing but text.
fn literal(block: &Block) -> Option<String> {
    let mut text = String::new();
    for node in &block.nodes {
        match node {
            Node::Text(t) => text.push_str(t),
            _ => return None,
        }
    }
    Some(text)
}

const OPTIONS: [&str; 11] = [
    "method",
    "body",
    "headers",
    "content_type",
    "basic_auth",
    "auth_credentials",
    "save",
    "cache_max_age",
    "cache",
    "no_cache",
    "retry",
];

impl ConnectedContentTag {
    pub(crate) fn parse(markup: &str, base: usize) -> Result<ConnectedContentTag, RawError> {
        let parts = split_options(markup);
        let (url_text, url_at) = parts.first().map(|(_, v, at)| (*v, *at)).unwrap_or(("", 0));
        if url_text.trim().is_empty() {
            return Err(RawError::syntax(
                "connected_content needs a URL: {% connected_content https://... %}",
                base,
            ));
        }
        let sub = |text: &str, at: usize| -> Result<Block, RawError> {
            crate::parser::parse_document(text).map_err(|mut e| {
                e.offset += base + at;
                e
            })
        };
        let mut tag = ConnectedContentTag {
            url: sub(
                url_text.trim(),
                url_at + (url_text.len() - url_text.trim_start().len()),
            )?,
            method: Method::Get,
            body: None,
            headers: None,
            content_type: None,
            basic_auth: None,
            auth_credentials: None,
            save: None,
            save_as: "connected".into(),
            cache_max_age: None,
            no_cache: false,
            retry: false,
            offset: base,
            fixed: None,
        };
        for (name, value, at) in parts.into_iter().skip(1) {
            let value_trim = value.trim();
            let need_value = |v: &str| -> Result<(), RawError> {
                if v.is_empty() {
                    Err(RawError::syntax(
                        format!("connected_content option ':{name}' needs a value"),
                        base + at,
                    ))
                } else {
                    Ok(())
                }
            };
            match name {
                "method" => {
                    tag.method = match value_trim.to_ascii_lowercase().as_str() {
                        "get" => Method::Get,
                        "post" => Method::Post,
                        other => {
                            return Err(RawError::syntax(
                                format!(
                                    "connected_content supports only GET and POST, not '{other}'"
                                ),
                                base + at,
                            ));
                        }
                    }
                }
                "body" => {
                    need_value(value_trim)?;
                    tag.body = Some(sub(
                        value_trim,
                        at + value.len() - value.trim_start().len(),
                    )?);
                }
                "headers" => {
                    need_value(value_trim)?;
                    tag.headers = Some(sub(
                        value_trim,
                        at + value.len() - value.trim_start().len(),
                    )?);
                }
                "content_type" => {
                    need_value(value_trim)?;
                    tag.content_type = Some(value_trim.to_string());
                }
                "basic_auth" => {
                    need_value(value_trim)?;
                    tag.basic_auth = Some(value_trim.to_string());
                }
                "auth_credentials" => {
                    need_value(value_trim)?;
                    tag.auth_credentials = Some(value_trim.to_string());
                }
                "save" => {
                    need_value(value_trim)?;
                    let name: Arc<str> = value_trim.into();
                    tag.save_as = name.clone();
                    tag.save = Some(name);
                }
                "cache_max_age" | "cache" => {
                    let seconds = value_trim.parse::<u64>().map_err(|_| {
                        RawError::syntax(
                            format!("':{name}' needs a number of seconds, got '{value_trim}'"),
                            base + at,
                        )
                    })?;
                    tag.cache_max_age = Some(seconds);
                }
                "no_cache" => tag.no_cache = true,
                "retry" => tag.retry = true,
                _ => unreachable!("split_options only yields known options"),
            }
        }
        tag.fixed = Fixed::of(&tag);
        Ok(tag)
    }

    /// The body as sent: with `:content_type application/json`, a form body becomes JSON.
    fn encode_body(&self, body: String) -> String {
        if self
            .content_type
            .as_deref()
            .is_some_and(|ct| ct.starts_with("application/json"))
            && let Some(json) = form_to_json(&body)
        {
            return json;
        }
        body
    }
}

/// Splits `URL :opt value :opt value` into (option, value text, offset) triples, the URL first
/// under the name "". An option starts at whitespace followed by `:known_name`, outside `{{ }}`,
/// `{% %}` and JSON braces.
fn split_options(markup: &str) -> Vec<(&'static str, &str, usize)> {
    let bytes = markup.as_bytes();
    let mut parts: Vec<(&'static str, usize, usize)> = Vec::new();
    let mut current: (&'static str, usize) = ("", 0);
    let mut depth = 0i32;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => depth += 1,
            b'}' => depth -= 1,
            b':' if depth <= 0 && (i == 0 || bytes[i - 1].is_ascii_whitespace()) => {
                let rest = &markup[i + 1..];
                let name_len = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                if let Some(name) = OPTIONS.iter().find(|o| **o == &rest[..name_len]) {
                    parts.push((current.0, current.1, i));
                    current = (name, i + 1 + name_len);
                    i += 1 + name_len;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    parts.push((current.0, current.1, markup.len()));
    parts
        .into_iter()
        .map(|(name, start, end)| (name, &markup[start..end], start))
        .collect()
}

/// Validates a rendered URL the way Braze reports it: `<url> is not a valid URL`.
pub fn validate_url(url: &str, allowed_ports: Option<&[u16]>) -> Result<(), String> {
    let invalid = || format!("{url} is not a valid URL");
    let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
    let default_port = if scheme.eq_ignore_ascii_case("http") {
        80
    } else if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        return Err(invalid());
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or_else(invalid)?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid());
        }
        (addr, after.strip_prefix(':'))
    } else {
        match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':')
        });
    if !host_ok {
        return Err(invalid());
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| invalid())?,
        None => default_port,
    };
    if let Some(allowed) = allowed_ports
        && !allowed.contains(&port)
    {
        return Err(format!(
            "{url} uses port {port}; connected_content may only use ports {allowed:?}"
        ));
    }
    if rest[authority_end..]
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid());
    }
    Ok(())
}

fn render_part(state: &mut State<'_>, block: &Block) -> Result<String, Stop> {
    let mut out = String::new();
    state.render_block(block, &mut out)?;
    Ok(out)
}

/// A rendered URL as it is requested: no non-breaking spaces (editors paste them), trimmed.
fn clean_url(mut url: String) -> String {
    if url.contains('\u{a0}') {
        url = url.replace('\u{a0}', "");
    }
    url.truncate(url.trim_end().len());
    url.drain(..url.len() - url.trim_start().len());
    url
}

/// The `:headers` JSON object as name/value pairs (a value that is not a string is sent as JSON).
fn parse_headers(text: &str) -> Result<Vec<(String, String)>, String> {
    let parsed: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| {
            format!("connected_content :headers must be a JSON object of strings ({e}): {text}")
        })?;
    Ok(parsed
        .into_iter()
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (k, value)
        })
        .collect())
}

/// `a=1&b=2` as a JSON object of strings, for `:content_type application/json` with a form body.
fn form_to_json(body: &str) -> Option<String> {
    if body.trim_start().starts_with(['{', '[']) || !body.contains('=') {
        return None;
    }
    let mut map = serde_json::Map::new();
    for pair in body.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=')?;
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        map.insert(decode(k), serde_json::Value::String(decode(v)));
    }
    Some(serde_json::Value::Object(map).to_string())
}

fn is_retryable(outcome: &Result<FetchResponse, FetchError>) -> bool {
    match outcome {
        Ok(r) => r.status == 408 || r.status == 429 || r.status >= 500,
        Err(FetchError::Refused(_) | FetchError::TooLarge(_)) => false,
        Err(_) => true,
    }
}

/// What one render requests, before the client's own headers are added: borrowed from the tag's
/// [`Fixed`] parts, or rendered.
struct Parts<'t> {
    url: Cow<'t, str>,
    /// `Authorization` and other headers from `:basic_auth` and `:auth_credentials`.
    auth: Vec<(String, String)>,
    /// The `:headers` object.
    headers: Cow<'t, [(String, String)]>,
    body: Option<Cow<'t, str>>,
    token_request: bool,
}

impl Parts<'_> {
    fn key(&self, tag: &ConnectedContentTag) -> CacheKey {
        CacheKey::of(
            tag.method,
            &self.url,
            tag.content_type.as_deref(),
            &self.auth,
            &self.headers,
            self.body.as_deref(),
        )
    }

    /// The request as sent: the content type's headers, the user agent, credentials, then
    /// `:headers`, each of which replaces any header of its name.
    fn request(&self, tag: &ConnectedContentTag, client: &ConnectedContent) -> FetchRequest {
        let mut headers: Vec<(String, String)> =
            Vec::with_capacity(3 + self.auth.len() + self.headers.len());
        match &tag.content_type {
            Some(ct) => {
                headers.push(("Content-Type".into(), ct.clone()));
                headers.push(("Accept".into(), ct.clone()));
            }
            None if tag.method == Method::Post => headers.push((
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            )),
            None => {
                headers.push(("Content-Type".into(), "application/json".into()));
                headers.push(("Accept".into(), "*/*".into()));
            }
        }
        headers.push(("User-Agent".into(), client.config.user_agent.clone()));
        headers.extend(self.auth.iter().cloned());
        for (k, v) in self.headers.iter() {
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
            headers.push((k.clone(), v.clone()));
        }
        FetchRequest {
            method: tag.method,
            url: self.url.to_string(),
            headers,
            body: self.body.as_deref().map(str::to_owned),
            timeout: client.config.timeout,
            max_response_bytes: client.config.max_response_bytes,
        }
    }
}

pub(crate) fn render_tag(
    tag: &ConnectedContentTag,
    state: &mut State<'_>,
    out: &mut String,
) -> Result<(), Stop> {
    let conn_error = |message: String| {
        Stop::Error(RawError {
            kind: ErrorKind::ConnectedContent,
            message,
            offset: tag.offset,
        })
    };
    let no_client = |url: &str| {
        conn_error(format!(
            "connected_content to {url} cannot run: no HTTP client is configured for this render"
        ))
    };
    let (parts, client) = match &tag.fixed {
        Some(fixed) => {
            let Some(client) = state.ctx.connected() else {
                return Err(no_client(&fixed.url));
            };
            // The URL was validated at parse time but for the client's ports.
            if let Some(ports) = client.config.allowed_ports.as_deref() {
                validate_url(&fixed.url, Some(ports)).map_err(conn_error)?;
            }
            let parts = Parts {
                url: Cow::Borrowed(&fixed.url),
                auth: Vec::new(),
                headers: Cow::Borrowed(&fixed.headers),
                body: fixed.body.as_deref().map(Cow::Borrowed),
                token_request: fixed.token_request,
            };
            (parts, client)
        }
        None => {
            let url = clean_url(render_part(state, &tag.url)?);
            let Some(client) = state.ctx.connected() else {
                return Err(no_client(&url));
            };
            validate_url(&url, client.config.allowed_ports.as_deref()).map_err(conn_error)?;
            let auth = credential_headers(tag, client, &url).map_err(|e| match e {
                CredentialError::Missing(message) => Stop::Abort(message),
                CredentialError::Domain(message) => conn_error(message),
            })?;
            let headers = match &tag.headers {
                Some(block) => parse_headers(&render_part(state, block)?).map_err(conn_error)?,
                None => Vec::new(),
            };
            let body = match &tag.body {
                Some(block) => Some(tag.encode_body(render_part(state, block)?)),
                None => None,
            };
            let parts = Parts {
                token_request: token_endpoint(tag.method, &url, body.as_deref()),
                url: Cow::Owned(url),
                auth,
                headers: Cow::Owned(headers),
                body: body.map(Cow::Owned),
            };
            (parts, client)
        }
    };

    let token_request = parts.token_request;
    let ttl = match (tag.method, tag.cache_max_age, tag.no_cache) {
        (_, _, true) => None,
        (_, Some(secs), false) => Some(
            Duration::from_secs(secs)
                .clamp(client.config.min_cache_ttl, client.config.max_cache_ttl),
        ),
        // A token is reused across sends and users while it is valid, without the template
        // asking (Braze fetches one per send): see `ConnectedContentConfig::token_lifetime`.
        (Method::Post, None, false) if token_request => Some(client.config.token_lifetime),
        (Method::Get, None, false) => Some(client.config.default_cache_ttl),
        (Method::Post, None, false) => None,
    };
    // Built only when it is sent or a failure reports it: a cache hit needs none.
    let request = OnceCell::new();
    let request = || request.get_or_init(|| parts.request(tag, client));
    let fetched = match ttl {
        None => match client.fetch(request(), tag.retry) {
            Ok(fetched) => fetched,
            Err(last) => return Err(retries_ran_out(client, request(), token_request, last)),
        },
        Some(ttl) => {
            let key = match &tag.fixed {
                Some(fixed) => Cow::Borrowed(&fixed.key),
                None => Cow::Owned(parts.key(tag)),
            };
            match client.begin(&key) {
                Begin::Hit(answer) => Fetched::Answer(answer),
                Begin::Wait(flight) => match flight.wait() {
                    // The request this render waited for failed after its own retries.
                    last @ Fetched::Failed {
                        retryable: true, ..
                    } if tag.retry => {
                        return Err(retries_ran_out(client, request(), token_request, last));
                    }
                    other => other,
                },
                Begin::Lead(lead) => match client.fetch(request(), tag.retry) {
                    Ok(fetched) => {
                        lead.finish(&fetched, ttl);
                        fetched
                    }
                    Err(last) => {
                        lead.finish(&last, ttl);
                        return Err(retries_ran_out(client, request(), token_request, last));
                    }
                },
            }
        }
    };
    // A call leadwire refused to make (a non-public address) is the template's error, never an
    // empty answer: the send stops with a render error that names the address.
    if let Fetched::Failed {
        refused: true, why, ..
    } = &fetched
    {
        return Err(conn_error(format!(
            "connected_content to {} was not sent: {why}",
            request().url
        )));
    }
    if token_request && let Fetched::Failed { .. } = &fetched {
        return Err(Stop::TokenFailed(Box::new(token_failure(
            request(),
            &fetched,
        ))));
    }

    match fetched {
        Fetched::Answer(answer) => match answer.as_ref() {
            // An Arc clone: the parsed answer is shared, not copied.
            Answer::Json(value) => state.assign(tag.save_as.clone(), value.clone()),
            Answer::Text(text) => {
                if tag.save.is_some() {
                    state.assign(tag.save_as.clone(), Value::Str(text.clone()));
                } else {
                    out.push_str(text);
                }
            }
        },
        // Braze cannot consume a non-2xx answer: the saved value is empty and nothing is inserted.
        Fetched::Failed { .. } => state.assign(tag.save_as.clone(), Value::Nil),
    }
    Ok(())
}

enum CredentialError {
    /// Not in the store: Braze aborts the message.
    Missing(String),
    /// A token credential that may not go to this URL's host.
    Domain(String),
}

/// The headers of the tag's `:basic_auth` and `:auth_credentials`, read from the store.
fn credential_headers(
    tag: &ConnectedContentTag,
    client: &ConnectedContent,
    url: &str,
) -> Result<Vec<(String, String)>, CredentialError> {
    let mut headers = Vec::new();
    let missing = |name: &str| {
        CredentialError::Missing(format!(
            "connected_content credential '{name}' does not exist"
        ))
    };
    if let Some(name) = &tag.basic_auth {
        let Some((user, password)) = client.credentials.as_ref().and_then(|c| c.basic_auth(name))
        else {
            return Err(missing(name));
        };
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        headers.push(("Authorization".into(), format!("Basic {token}")));
    }
    if let Some(name) = &tag.auth_credentials {
        let Some(cred) = client.credentials.as_ref().and_then(|c| c.token_auth(name)) else {
            return Err(missing(name));
        };
        if let Some(domain) = &cred.allowed_domain {
            let host = url
                .split_once("://")
                .map(|(_, r)| r)
                .unwrap_or("")
                .split(['/', ':', '?'])
                .next()
                .unwrap_or("");
            if !host.eq_ignore_ascii_case(domain)
                && !host
                    .to_ascii_lowercase()
                    .ends_with(&format!(".{}", domain.to_ascii_lowercase()))
            {
                return Err(CredentialError::Domain(format!(
                    "credential '{name}' may only be sent to {domain}, not {host}"
                )));
            }
        }
        headers.extend(cred.headers);
    }
    Ok(headers)
}

/// `:retry`'s attempts ran out: Braze aborts the message; a token call fails the attempt instead.
fn retries_ran_out(
    client: &ConnectedContent,
    request: &FetchRequest,
    token_request: bool,
    last: Fetched,
) -> Stop {
    if token_request {
        return Stop::TokenFailed(Box::new(token_failure(request, &last)));
    }
    let why = match last {
        Fetched::Failed { why, .. } => why,
        Fetched::Answer(_) => "no answer".to_owned(),
    };
    Stop::Abort(format!(
        "connected_content to {} failed after {} retries: {why}",
        request.url, client.config.max_retries
    ))
}

fn token_failure(request: &FetchRequest, fetched: &Fetched) -> TokenFailure {
    let (why, response, timed_out) = match fetched {
        Fetched::Failed {
            why,
            response,
            timed_out,
            ..
        } => (why.as_str(), response.as_deref(), *timed_out),
        Fetched::Answer(_) => ("no answer", None, false),
    };
    TokenFailure {
        method: request.method,
        url: request.url.clone(),
        request_headers: request.headers.clone(),
        request_body: request.body.clone(),
        status: response.map(|r| r.status),
        response_headers: response.map(|r| r.headers.clone()).unwrap_or_default(),
        response_body: response
            .map(|r| {
                let end = r.body.len().min(4096);
                String::from_utf8_lossy(&r.body[..end]).into_owned()
            })
            .unwrap_or_default(),
        reason: match response {
            Some(r) => format!("the token endpoint {} answered {}", request.url, r.status),
            None => format!(
                "the token endpoint {} could not be reached: {why}",
                request.url
            ),
        },
        timed_out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_placeholder_url_is_not_valid() {
        let url = "https://[insert_instance_name].my.salesforce.com/services/oauth2/token";
        assert_eq!(
            validate_url(url, None),
            Err(format!("{url} is not a valid URL"))
        );
        assert!(validate_url("https://acme.my.salesforce.com/services/oauth2/token", None).is_ok());
        assert!(validate_url("http://127.0.0.1:8080/x", None).is_ok());
        assert!(validate_url("http://127.0.0.1:8080/x", Some(&[80, 443])).is_err());
        assert!(validate_url("ftp://example.com/", None).is_err());
    }

    #[test]
    fn options_split_outside_braces() {
        let parts = split_options(
            "https://x.my.salesforce.com/token :method post :headers {\"a\": \"{{ t }}\"} :body a=1&b={{x}} :save result",
        );
        let names: Vec<_> = parts.iter().map(|p| p.0).collect();
        assert_eq!(names, ["", "method", "headers", "body", "save"]);
        assert_eq!(parts[2].1.trim(), "{\"a\": \"{{ t }}\"}");
    }

    /// Answers once released, counting calls.
    struct Gate {
        calls: std::sync::atomic::AtomicUsize,
        open: std::sync::Mutex<bool>,
        opened: std::sync::Condvar,
    }

    impl Fetcher for Gate {
        fn fetch(&self, _: &FetchRequest) -> Result<FetchResponse, FetchError> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut open = self.open.lock().expect("gate lock");
            while !*open {
                open = self.opened.wait(open).expect("gate wait");
            }
            Ok(FetchResponse {
                status: 200,
                headers: Vec::new(),
                body: br#"{"access_token":"t0k"}"#.to_vec(),
            })
        }
    }

    #[test]
    fn concurrent_misses_for_one_key_make_one_request() {
        let gate = Arc::new(Gate {
            calls: Default::default(),
            open: std::sync::Mutex::new(false),
            opened: Default::default(),
        });
        let client = Arc::new(ConnectedContent::new(
            gate.clone(),
            ConnectedContentConfig::default(),
        ));
        let template = Arc::new(
            crate::Template::parse(
                "{% connected_content https://x.example.com/token :save r %}{{ r.access_token }}",
            )
            .expect("valid"),
        );
        let context = Arc::new(crate::Context::new().with_connected_content(client.clone()));
        let renders: Vec<_> = (0..4)
            .map(|_| {
                let (t, c) = (template.clone(), context.clone());
                std::thread::spawn(move || t.render(&c))
            })
            .collect();
        // Wait (bounded) until one render leads the request and the other three wait for it:
        // the pending flight is then held by the cache, the leader and three waiters.
        let mut all_waiting = false;
        for _ in 0..10_000_000 {
            let holders = client.cache.lock().ok().and_then(|c| {
                c.values().find_map(|slot| match slot {
                    Slot::Pending(f) => Some(Arc::strong_count(f)),
                    Slot::Ready { .. } => None,
                })
            });
            if holders == Some(5) {
                all_waiting = true;
                break;
            }
            std::thread::yield_now();
        }
        *gate.open.lock().expect("gate lock") = true;
        gate.opened.notify_all();
        for r in renders {
            let outcome = r.join().expect("render thread");
            assert_eq!(outcome, Ok(crate::Outcome::Rendered("t0k".into())));
        }
        assert!(all_waiting, "the renders never all reached the request");
        assert_eq!(gate.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        // A later render is served from the cache, parsed once.
        assert_eq!(
            template.render(&context),
            Ok(crate::Outcome::Rendered("t0k".into()))
        );
        assert_eq!(gate.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    /// Records every request and answers with a token.
    #[derive(Default)]
    struct Recorder {
        requests: Mutex<Vec<FetchRequest>>,
    }

    impl Fetcher for Recorder {
        fn fetch(&self, request: &FetchRequest) -> Result<FetchResponse, FetchError> {
            self.requests
                .lock()
                .expect("recorder")
                .push(request.clone());
            Ok(FetchResponse {
                status: 200,
                headers: Vec::new(),
                body: br#"{"access_token":"t0k"}"#.to_vec(),
            })
        }
    }

    fn tag_of(template: &crate::Template) -> &ConnectedContentTag {
        match template.root.nodes.first() {
            Some(Node::ConnectedContent(tag)) => tag,
            other => panic!("not a connected_content tag: {other:?}"),
        }
    }

    #[test]
    fn literal_parts_are_worked_out_at_parse_time() {
        let token = crate::Template::parse(
            "{% connected_content https://x.example.com/services/oauth2/token :method post :body grant_type=password :headers {\"X-A\": \"1\"} :save r %}",
        )
        .expect("valid");
        let fixed = tag_of(&token)
            .fixed
            .as_ref()
            .expect("literal parts are fixed");
        assert!(fixed.token_request);
        assert_eq!(fixed.headers, [("X-A".to_string(), "1".to_string())]);
        assert_eq!(fixed.body.as_deref(), Some("grant_type=password"));
        for rendered in [
            "{% connected_content https://x.example.com/{{ p }} %}",
            "{% connected_content https://x.example.com/ :method post :body a={{ p }} %}",
            "{% connected_content https://x.example.com/ :headers {\"X-A\": \"{{ p }}\"} %}",
            "{% connected_content https://x.example.com/ :basic_auth sf %}",
            "{% connected_content https://x.example.com/ :headers not-json %}",
            "{% connected_content https://[insert_instance_name].example.com/ %}",
        ] {
            let t = crate::Template::parse(rendered).expect("valid");
            assert!(tag_of(&t).fixed.is_none(), "{rendered}");
        }
    }

    #[test]
    fn fixed_and_rendered_tags_send_the_same_request_and_share_its_cache_entry() {
        let recorder = Arc::new(Recorder::default());
        let client = Arc::new(ConnectedContent::new(
            recorder.clone(),
            ConnectedContentConfig::default(),
        ));
        let context = crate::Context::new()
            .with_globals(&serde_json::json!({"p": "oauth2/token"}))
            .with_connected_content(client);
        let tail = ":method post :content_type application/json :body a=1 :headers {\"Accept\": \"text/plain\"} :save r %}{{ r.access_token }}";
        let fixed = crate::Template::parse(&format!(
            "{{% connected_content https://x.example.com/oauth2/token {tail}"
        ))
        .expect("valid");
        let rendered = crate::Template::parse(&format!(
            "{{% connected_content https://x.example.com/{{{{ p }}}} {tail}"
        ))
        .expect("valid");
        assert!(tag_of(&fixed).fixed.is_some() && tag_of(&rendered).fixed.is_none());
        // A token request: cached without :cache_max_age, so the second render makes no call.
        for t in [&fixed, &rendered] {
            assert_eq!(
                t.render(&context),
                Ok(crate::Outcome::Rendered("t0k".into()))
            );
        }
        let requests = recorder.requests.lock().expect("recorder").clone();
        assert_eq!(requests.len(), 1, "one request for both spellings");
        let headers: Vec<_> = requests[0]
            .headers
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        assert_eq!(
            headers,
            [
                "Content-Type: application/json".to_string(),
                format!(
                    "User-Agent: {}",
                    ConnectedContentConfig::default().user_agent
                ),
                "Accept: text/plain".to_string(),
            ]
        );
        assert_eq!(requests[0].body.as_deref(), Some(r#"{"a":"1"}"#));
        assert!(is_token_request(&requests[0]));
    }

    #[test]
    fn a_fixed_url_still_obeys_the_clients_ports_and_invalid_headers_fail_at_render() {
        let config = ConnectedContentConfig {
            allowed_ports: Some(vec![80, 443]),
            ..ConnectedContentConfig::default()
        };
        let context = crate::Context::new().with_connected_content(Arc::new(
            ConnectedContent::new(Arc::new(Recorder::default()), config),
        ));
        let t = crate::Template::parse("{% connected_content http://x.example.com:8080/a %}")
            .expect("valid");
        let err = t.render(&context).expect_err("port 8080 is not allowed");
        assert!(err.message.contains("uses port 8080"), "{err}");

        let t =
            crate::Template::parse("{% connected_content https://x.example.com/ :headers [1] %}")
                .expect("parses; the headers are checked when rendered");
        let err = t.render(&context).expect_err("headers are not an object");
        assert!(
            err.message.contains(":headers must be a JSON object"),
            "{err}"
        );
    }

    #[test]
    fn form_bodies_become_json() {
        assert_eq!(
            form_to_json("a=1&b=x%2By").as_deref(),
            Some(r#"{"a":"1","b":"x+y"}"#)
        );
        assert_eq!(form_to_json("{\"a\":1}"), None);
    }
}
