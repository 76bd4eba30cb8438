//! `{% connected_content URL [options] %}`: Braze's HTTP call from inside a template.
//!
//! This module decides *what* to request and how the answer renders (Braze's rules: JSON becomes an
//! object with `__http_status_code__`, text is inserted verbatim, non-2xx renders empty, GETs are
//! cached for 5 minutes). It does no I/O itself: requests go through the [`Fetcher`] trait, so the
//! engine has no network dependency and tests can count calls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::ast::Block;
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
        }
    }
}

#[derive(Clone)]
struct CacheEntry {
    expires: Instant,
    response: Arc<FetchResponse>,
}

/// The connected_content client a [`Context`](crate::Context) uses: fetcher, credentials, cache.
/// Share one per workspace so the cache is shared like Braze's.
pub struct ConnectedContent {
    fetcher: Arc<dyn Fetcher>,
    credentials: Option<Arc<dyn CredentialStore>>,
    config: ConnectedContentConfig,
    cache: Mutex<HashMap<String, CacheEntry>>,
    clock: Box<dyn Fn() -> Instant + Send + Sync>,
}

impl ConnectedContent {
    pub fn new(fetcher: Arc<dyn Fetcher>, config: ConnectedContentConfig) -> ConnectedContent {
        ConnectedContent {
            fetcher,
            credentials: None,
            config,
            cache: Mutex::new(HashMap::new()),
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

    fn cached(&self, key: &str) -> Option<Arc<FetchResponse>> {
        let now = (self.clock)();
        let mut cache = self.cache.lock().ok()?;
        match cache.get(key) {
            Some(entry) if entry.expires > now => Some(entry.response.clone()),
            Some(_) => {
                cache.remove(key);
                None
            }
            None => None,
        }
    }

    fn store(&self, key: String, ttl: Duration, response: Arc<FetchResponse>) {
        let expires = (self.clock)() + ttl;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, CacheEntry { expires, response });
        }
    }
}

/// The parsed tag. URL, body and header values are Liquid, rendered at send time.
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
    cache_max_age: Option<u64>,
    no_cache: bool,
    retry: bool,
    offset: usize,
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
            cache_max_age: None,
            no_cache: false,
            retry: false,
            offset: base,
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
                    tag.save = Some(value_trim.into());
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
        Ok(tag)
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
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err(invalid()),
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
        Err(_) => true,
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
    let url = render_part(state, &tag.url)?
        .replace('\u{a0}', "")
        .trim()
        .to_string();
    let Some(client) = state.ctx.connected() else {
        return Err(conn_error(format!(
            "connected_content to {url} cannot run: no HTTP client is configured for this render"
        )));
    };
    validate_url(&url, client.config.allowed_ports.as_deref()).map_err(conn_error)?;

    let mut headers: Vec<(String, String)> = Vec::new();
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
    if let Some(name) = &tag.basic_auth {
        let Some((user, password)) = client.credentials.as_ref().and_then(|c| c.basic_auth(name))
        else {
            return Err(Stop::Abort(format!(
                "connected_content credential '{name}' does not exist"
            )));
        };
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        headers.push(("Authorization".into(), format!("Basic {token}")));
    }
    if let Some(name) = &tag.auth_credentials {
        let Some(cred) = client.credentials.as_ref().and_then(|c| c.token_auth(name)) else {
            return Err(Stop::Abort(format!(
                "connected_content credential '{name}' does not exist"
            )));
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
                return Err(conn_error(format!(
                    "credential '{name}' may only be sent to {domain}, not {host}"
                )));
            }
        }
        headers.extend(cred.headers);
    }
    if let Some(block) = &tag.headers {
        let text = render_part(state, block)?;
        let parsed: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
            .map_err(|e| {
                conn_error(format!(
                    "connected_content :headers must be a JSON object of strings ({e}): {text}"
                ))
            })?;
        for (k, v) in parsed {
            let value = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case(&k));
            headers.push((k, value));
        }
    }
    let mut body = match &tag.body {
        Some(block) => Some(render_part(state, block)?),
        None => None,
    };
    if tag
        .content_type
        .as_deref()
        .is_some_and(|ct| ct.starts_with("application/json"))
        && let Some(json) = body.as_deref().and_then(form_to_json)
    {
        body = Some(json);
    }

    let request = FetchRequest {
        method: tag.method,
        url,
        headers,
        body,
        timeout: client.config.timeout,
        max_response_bytes: client.config.max_response_bytes,
    };
    let ttl = match (tag.method, tag.cache_max_age, tag.no_cache) {
        (_, _, true) => None,
        (_, Some(secs), false) => Some(
            Duration::from_secs(secs)
                .clamp(client.config.min_cache_ttl, client.config.max_cache_ttl),
        ),
        (Method::Get, None, false) => Some(client.config.default_cache_ttl),
        (Method::Post, None, false) => None,
    };
    let key = cache_key(&request);
    let cached = ttl.and_then(|_| client.cached(&key));
    let from_cache = cached.is_some();
    let response = match cached {
        Some(hit) => Ok(hit.as_ref().clone()),
        None => {
            let mut attempt = 0;
            loop {
                let outcome = client.fetcher.fetch(&request);
                let ok = matches!(&outcome, Ok(r) if (200..300).contains(&r.status));
                if ok || !tag.retry || !is_retryable(&outcome) {
                    break outcome;
                }
                if attempt >= client.config.max_retries {
                    let why = match &outcome {
                        Ok(r) => format!("HTTP {}", r.status),
                        Err(e) => e.to_string(),
                    };
                    return Err(Stop::Abort(format!(
                        "connected_content to {} failed after {} retries: {why}",
                        request.url, client.config.max_retries
                    )));
                }
                std::thread::sleep(client.config.retry_base_delay * 2u32.saturating_pow(attempt));
                attempt += 1;
            }
        }
    };

    let save_name: Arc<str> = tag.save.clone().unwrap_or_else(|| "connected".into());
    match response {
        Ok(resp) if (200..300).contains(&resp.status) => {
            if let Some(ttl) = ttl.filter(|_| !from_cache)
                && resp.body.len() <= client.config.max_response_bytes
            {
                client.store(key, ttl, Arc::new(resp.clone()));
            }
            match serde_json::from_slice::<serde_json::Value>(&resp.body) {
                Ok(json @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
                    let mut value = Value::from(&json);
                    if let Value::Object(obj) = &mut value {
                        Arc::make_mut(obj).insert(
                            "__http_status_code__".into(),
                            Value::Int(i64::from(resp.status)),
                        );
                    }
                    state.assign(save_name, value);
                }
                _ => {
                    let text = String::from_utf8_lossy(&resp.body).into_owned();
                    if tag.save.is_some() {
                        state.assign(save_name, Value::str(text));
                    } else {
                        out.push_str(&text);
                    }
                }
            }
        }
        // Braze cannot consume a non-2xx answer: the saved value is empty and nothing is inserted.
        _ => state.assign(save_name, Value::Nil),
    }
    Ok(())
}

/// Cache key: method, URL, headers and body, so two different bodies never share an entry.
fn cache_key(request: &FetchRequest) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    hasher.update(request.method.as_str());
    hasher.update([0]);
    hasher.update(&request.url);
    for (k, v) in &request.headers {
        hasher.update([0]);
        hasher.update(k.to_ascii_lowercase());
        hasher.update([1]);
        hasher.update(v);
    }
    hasher.update([2]);
    if let Some(body) = &request.body {
        hasher.update(body);
    }
    let digest = hasher.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
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

    #[test]
    fn form_bodies_become_json() {
        assert_eq!(
            form_to_json("a=1&b=x%2By").as_deref(),
            Some(r#"{"a":"1","b":"x+y"}"#)
        );
        assert_eq!(form_to_json("{\"a\":1}"), None);
    }
}
