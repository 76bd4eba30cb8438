//! Webhook templates: the model Braze's composer edits (URL, method, key/value or raw body,
//! headers, all Liquid), compiled once ([`WebhookTemplate::compile`]) and rendered per user
//! ([`CompiledWebhook::render`]) into a [`RenderedRequest`].
//!
//! **Key/value body typing.** Braze does not document how key/value values are typed. By default
//! ([`ValueTyping::Strings`]) every value is emitted as a JSON *string*, whatever it renders to, so
//! `{"Score__c": "42"}` (Salesforce accepts numeric strings for number fields). With
//! [`ValueTyping::JsonLiterals`] a value that renders, after trimming, to exactly `true`, `false`,
//! `null` or a JSON number is emitted as that literal instead. Keys are literal text, not Liquid.
//! For nested or typed JSON use a raw body with `json_escape`. The object keeps the keys' order.
//!
//! **Content-Type.** With no `Content-Type` header, a key/value body is sent as
//! `application/json`; a raw body as `application/json` when it parses as JSON, otherwise
//! `text/plain; charset=utf-8` (Braze infers one too, and recommends setting it).
//!
//! Must not know HTTP clients, retries, queues or storage: compile and render are pure but for
//! connected_content, which goes through the Liquid context's fetcher.

use std::fmt;

use leadwire_liquid::{Context, Outcome, Template, TokenFailure, validate_url};

/// The HTTP methods a webhook may use (Braze documents POST, GET, PUT, DELETE; its Salesforce
/// guides use PATCH).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a webhook method (GET, POST, PUT, PATCH or DELETE)")]
pub struct BadMethod(String);

impl std::str::FromStr for Method {
    type Err = BadMethod;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "GET" => Ok(Method::Get),
            "POST" => Ok(Method::Post),
            "PUT" => Ok(Method::Put),
            "PATCH" => Ok(Method::Patch),
            "DELETE" => Ok(Method::Delete),
            _ => Err(BadMethod(s.to_owned())),
        }
    }
}

/// The request body as the composer holds it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Body {
    #[default]
    None,
    /// JSON key/value pairs: literal keys, Liquid values, serialized as one JSON object.
    KeyValue(Vec<(String, String)>),
    /// Raw text (JSON, XML, a form), all Liquid.
    Raw(String),
}

/// How key/value values become JSON (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueTyping {
    #[default]
    Strings,
    JsonLiterals,
}

/// Saves a field of a successful JSON response onto the user's profile (Braze cannot do this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteBackRule {
    /// Dotted path into the response JSON, e.g. `id` or `result.id`.
    pub response_field: String,
    /// The custom attribute to set, e.g. `salesforce_lead_id`.
    pub attribute: String,
}

/// A webhook template as saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookTemplate {
    pub name: String,
    pub url: String,
    pub method: Method,
    pub body: Body,
    /// Header name → Liquid value, in the order sent.
    pub headers: Vec<(String, String)>,
    pub value_typing: ValueTyping,
    pub write_back: Vec<WriteBackRule>,
    /// For a Salesforce create (`POST …/sobjects/Lead/`): the field (e.g. `Email`) whose value in
    /// the rendered body finds a lead already there. Before a create is retried, leadwire looks
    /// it up, so a create that reached Salesforce without an answer is not made twice. Without
    /// it, a create whose outcome is unknown is not retried.
    pub lookup_field: Option<String>,
    /// Salesforce record writes of this template may share one sObject Collections call with
    /// others to the same org (see `crate::batch`).
    pub batch: bool,
}

/// Which part of a template a message is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Url,
    BodyKey(String),
    RawBody,
    Header(String),
    WriteBack(String),
    LookupField,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Url => f.write_str("URL"),
            Field::BodyKey(k) => write!(f, "body key '{k}'"),
            Field::RawBody => f.write_str("body"),
            Field::Header(h) => write!(f, "header '{h}'"),
            Field::WriteBack(a) => write!(f, "write-back '{a}'"),
            Field::LookupField => f.write_str("lookup field"),
        }
    }
}

/// One reason a template does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// Liquid syntax; the Liquid error carries line and column.
    #[error("{field}: {error}")]
    Liquid {
        field: Field,
        error: leadwire_liquid::Error,
    },
    #[error("{field}: {message}")]
    Invalid { field: Field, message: String },
}

impl CompileError {
    pub fn field(&self) -> &Field {
        match self {
            CompileError::Liquid { field, .. } | CompileError::Invalid { field, .. } => field,
        }
    }
}

/// Every reason a template does not compile (all are reported at once, for the editor).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct CompileErrors(pub Vec<CompileError>);

impl fmt::Display for CompileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Something that compiles but is probably a mistake (a linter reports these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub field: Field,
    pub message: String,
}

#[derive(Debug)]
enum CompiledBody {
    None,
    KeyValue(Vec<(String, Template)>),
    Raw(Template),
}

/// A template with every Liquid part parsed once; immutable, `Send + Sync`, render many times.
#[derive(Debug)]
pub struct CompiledWebhook {
    name: String,
    method: Method,
    url: Template,
    headers: Vec<(String, Template)>,
    body: CompiledBody,
    value_typing: ValueTyping,
    write_back: Vec<WriteBackRule>,
    lookup_field: Option<String>,
    batch: bool,
    warnings: Vec<Warning>,
    uses_connected_content: bool,
}

/// A request ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

/// A render failure, naming the part of the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RenderError {
    pub field: Field,
    pub message: String,
}

/// How rendering for one user ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderOutcome {
    Rendered(RenderedRequest),
    /// `abort_message` ran: nothing is sent; the reason goes to the activity log.
    Aborted {
        reason: String,
    },
    Error(RenderError),
    /// The OAuth token call a header or body makes failed: nothing is sent, and the attempt
    /// counts as failed with the token endpoint's answer (Braze would send `Bearer `).
    TokenFailed {
        field: Field,
        failure: Box<TokenFailure>,
    },
}

/// Headers leadwire sets itself; a template may not.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    crate::sender::DELIVERY_ID_HEADER_LOWER,
];

/// Well-known headers that misspellings are checked against.
const WELL_KNOWN_HEADERS: &[&str] = &["Content-Type", "Authorization", "Accept", "User-Agent"];

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Checks a header name: an error if it cannot be sent, a warning if it is probably misspelled.
fn check_header_name(name: &str) -> Result<Option<String>, String> {
    if name.is_empty() {
        return Err("a header needs a name".into());
    }
    // A name translated with the documentation (`Autorisierung`, `승인`) is never what a
    // server reads: say which English name was meant.
    let translated = leadwire_salesforce::translations::translate_header(name).map(|t| {
        format!(
            "'{name}' is {} for '{}'; use '{}'",
            t.languages_text(),
            t.means,
            t.means
        )
    });
    if let Some(bad) = name
        .chars()
        .find(|c| !c.is_ascii() || !is_token_byte(*c as u8))
    {
        return Err(match translated {
            Some(hint) => hint,
            None => format!(
                "'{bad}' is not allowed in a header name (letters, digits and !#$%&'*+-.^_`|~ only)"
            ),
        });
    }
    if translated.is_some() {
        return Ok(translated);
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED_HEADERS.contains(&lower.as_str()) {
        return Err("leadwire sets this header itself".into());
    }
    for known in WELL_KNOWN_HEADERS {
        let known_lower = known.to_ascii_lowercase();
        if lower == known_lower {
            return Ok(None);
        }
        if lower.replace('_', "-") == known_lower {
            return Ok(Some(format!(
                "'{name}' is not '{known}': servers will not read an underscore as a hyphen"
            )));
        }
        if edit_distance(&lower, &known_lower) <= 2 {
            return Ok(Some(format!("did you mean '{known}'?")));
        }
    }
    Ok(None)
}

/// The literal text before the first Liquid tag or output.
fn literal_prefix(source: &str) -> &str {
    let end = [source.find("{{"), source.find("{%")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(source.len());
    &source[..end]
}

/// What can be checked of a URL template before rendering.
fn check_url_shape(source: &str) -> Result<(), String> {
    let trimmed = source.trim();
    if trimmed.is_empty() {
        return Err("a webhook needs a URL".into());
    }
    let prefix = literal_prefix(trimmed);
    if prefix.len() == trimmed.len() {
        return validate_url(trimmed, None);
    }
    if prefix.is_empty() {
        return Ok(()); // `{{base_url}}/…`: only the rendered URL can tell.
    }
    let lower = prefix.to_ascii_lowercase();
    let scheme_ok = ["http://", "https://"]
        .iter()
        .any(|s| lower.starts_with(s) || s.starts_with(lower.as_str()));
    if !scheme_ok {
        return Err(format!(
            "{trimmed} is not a valid URL: it must start with http:// or https://"
        ));
    }
    // When the host is literal (a '/' follows it before any Liquid), check scheme and host now.
    if let Some(rest_at) = lower.find("://").map(|i| i + 3)
        && let Some(slash) = prefix[rest_at..].find('/')
    {
        let origin = &prefix[..rest_at + slash + 1];
        validate_url(origin, None).map_err(|_| format!("{trimmed} is not a valid URL"))?;
    }
    Ok(())
}

fn parse_part(field: Field, source: &str, errors: &mut Vec<CompileError>) -> Option<Template> {
    match Template::parse(source) {
        Ok(t) => Some(t),
        Err(error) => {
            errors.push(CompileError::Liquid { field, error });
            None
        }
    }
}

impl WebhookTemplate {
    /// Parses every Liquid part and validates the URL shape, header names, body keys and
    /// write-back rules, reporting every problem at once.
    pub fn compile(&self) -> Result<CompiledWebhook, CompileErrors> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();

        if let Err(message) = check_url_shape(&self.url) {
            errors.push(CompileError::Invalid {
                field: Field::Url,
                message,
            });
        }
        let url = parse_part(Field::Url, self.url.trim(), &mut errors);

        let mut headers = Vec::with_capacity(self.headers.len());
        let mut seen_headers: Vec<String> = Vec::new();
        for (name, value) in &self.headers {
            let field = Field::Header(name.clone());
            match check_header_name(name) {
                Err(message) => errors.push(CompileError::Invalid {
                    field: field.clone(),
                    message,
                }),
                Ok(Some(message)) => warnings.push(Warning {
                    field: field.clone(),
                    message,
                }),
                Ok(None) => {}
            }
            let lower = name.to_ascii_lowercase();
            if seen_headers.contains(&lower) {
                warnings.push(Warning {
                    field: field.clone(),
                    message: "set more than once; every value is sent".into(),
                });
            }
            seen_headers.push(lower);
            if let Some(t) = parse_part(field, value, &mut errors) {
                headers.push((name.clone(), t));
            }
        }

        let body = match &self.body {
            Body::None => CompiledBody::None,
            Body::KeyValue(pairs) => {
                let mut compiled = Vec::with_capacity(pairs.len());
                for (i, (key, value)) in pairs.iter().enumerate() {
                    let field = Field::BodyKey(key.clone());
                    if key.trim().is_empty() {
                        errors.push(CompileError::Invalid {
                            field: field.clone(),
                            message: "a body key cannot be empty".into(),
                        });
                    }
                    if pairs[..i].iter().any(|(k, _)| k == key) {
                        errors.push(CompileError::Invalid {
                            field: field.clone(),
                            message: "appears more than once".into(),
                        });
                    }
                    if let Some(t) = parse_part(field, value, &mut errors) {
                        compiled.push((key.clone(), t));
                    }
                }
                CompiledBody::KeyValue(compiled)
            }
            Body::Raw(text) => match parse_part(Field::RawBody, text, &mut errors) {
                Some(t) => CompiledBody::Raw(t),
                None => CompiledBody::None,
            },
        };
        if self.method == Method::Get && !matches!(self.body, Body::None) {
            errors.push(CompileError::Invalid {
                field: Field::RawBody,
                message: "a GET request cannot have a body".into(),
            });
        }
        if matches!(self.body, Body::KeyValue(_))
            && let Some((name, value)) = self
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            && !value.contains("{{")
            && !value.contains("json")
        {
            warnings.push(Warning {
                field: Field::Header(name.clone()),
                message: format!("a key/value body is JSON but the content type is '{value}'"),
            });
        }
        for rule in &self.write_back {
            if rule.response_field.trim().is_empty() || rule.attribute.trim().is_empty() {
                errors.push(CompileError::Invalid {
                    field: Field::WriteBack(rule.attribute.clone()),
                    message: "needs a response field and an attribute name".into(),
                });
            }
        }

        if let Some(field) = &self.lookup_field
            && !leadwire_salesforce::soql::is_identifier(field)
        {
            errors.push(CompileError::Invalid {
                field: Field::LookupField,
                message: format!(
                    "'{field}' is not a Salesforce field name (letters, digits and _, such as Email)"
                ),
            });
        }

        match url {
            Some(url) if errors.is_empty() => {
                let uses_connected_content = url.uses_connected_content()
                    || headers.iter().any(|(_, t)| t.uses_connected_content())
                    || match &body {
                        CompiledBody::None => false,
                        CompiledBody::KeyValue(kv) => {
                            kv.iter().any(|(_, t)| t.uses_connected_content())
                        }
                        CompiledBody::Raw(t) => t.uses_connected_content(),
                    };
                Ok(CompiledWebhook {
                    name: self.name.clone(),
                    method: self.method,
                    url,
                    headers,
                    body,
                    value_typing: self.value_typing,
                    write_back: self.write_back.clone(),
                    lookup_field: self.lookup_field.clone(),
                    batch: self.batch,
                    warnings,
                    uses_connected_content,
                })
            }
            _ => Err(CompileErrors(errors)),
        }
    }
}

enum Part {
    Text(String),
    Stop(RenderOutcome),
}

fn render_part(field: impl FnOnce() -> Field, template: &Template, context: &Context) -> Part {
    match template.render(context) {
        Ok(Outcome::Rendered(text)) => Part::Text(text),
        Ok(Outcome::Aborted { reason }) => Part::Stop(RenderOutcome::Aborted { reason }),
        Ok(Outcome::TokenFailed(failure)) => Part::Stop(RenderOutcome::TokenFailed {
            field: field(),
            failure,
        }),
        Err(e) => Part::Stop(RenderOutcome::Error(RenderError {
            field: field(),
            message: e.to_string(),
        })),
    }
}

macro_rules! part {
    ($field:expr, $template:expr, $context:expr) => {
        match render_part(|| $field, $template, $context) {
            Part::Text(t) => t,
            Part::Stop(outcome) => return outcome,
        }
    };
}

fn typed_value(text: String, typing: ValueTyping) -> serde_json::Value {
    if typing == ValueTyping::JsonLiterals {
        let trimmed = text.trim();
        match trimmed {
            "true" => return serde_json::Value::Bool(true),
            "false" => return serde_json::Value::Bool(false),
            "null" => return serde_json::Value::Null,
            _ => {
                if let Ok(n) = serde_json::from_str::<serde_json::Number>(trimmed) {
                    return serde_json::Value::Number(n);
                }
            }
        }
    }
    serde_json::Value::String(text)
}

impl RenderedRequest {
    /// The value of a top-level field of a JSON object body, matched case-insensitively as
    /// Salesforce matches field names (`email` is `Email`); strings as they are, other scalars
    /// as JSON text.
    pub fn body_field(&self, field: &str) -> Option<String> {
        let body = self.body.as_deref()?;
        let json: serde_json::Value = serde_json::from_str(body).ok()?;
        let (_, value) = json
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(field))?;
        match value {
            serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// The token of an `Authorization: Bearer …` (or Salesforce's older `OAuth …`) header.
    pub fn bearer_token(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .and_then(|(_, v)| {
                let (scheme, token) = v.trim().split_once(' ')?;
                (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
                    .then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
    }
}

impl CompiledWebhook {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn method(&self) -> Method {
        self.method
    }
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }
    pub fn write_back(&self) -> &[WriteBackRule] {
        &self.write_back
    }
    pub fn lookup_field(&self) -> Option<&str> {
        self.lookup_field.as_deref()
    }
    pub fn batched(&self) -> bool {
        self.batch
    }
    /// Rendering may make HTTP calls: run it on a blocking thread.
    pub fn uses_connected_content(&self) -> bool {
        self.uses_connected_content
    }

    /// Renders for one user: URL, then headers, then body; the first abort or error ends it.
    pub fn render(&self, context: &Context) -> RenderOutcome {
        let url = part!(Field::Url, &self.url, context).trim().to_owned();
        if let Err(message) = validate_url(&url, None) {
            return RenderOutcome::Error(RenderError {
                field: Field::Url,
                message,
            });
        }
        if let Err(e) = reqwest::Url::parse(&url) {
            return RenderOutcome::Error(RenderError {
                field: Field::Url,
                message: format!("{url} is not a valid URL ({e})"),
            });
        }

        let mut headers = Vec::with_capacity(self.headers.len() + 1);
        for (name, template) in &self.headers {
            let value = part!(Field::Header(name.clone()), template, context)
                .trim()
                .to_owned();
            if reqwest::header::HeaderValue::from_bytes(value.as_bytes()).is_err() {
                return RenderOutcome::Error(RenderError {
                    field: Field::Header(name.clone()),
                    message: "rendered to a value with a line break or control character".into(),
                });
            }
            headers.push((name.clone(), value));
        }

        let body = match &self.body {
            CompiledBody::None => None,
            CompiledBody::KeyValue(pairs) => {
                let mut object = serde_json::Map::with_capacity(pairs.len());
                for (key, template) in pairs {
                    let text = part!(Field::BodyKey(key.clone()), template, context);
                    object.insert(key.clone(), typed_value(text, self.value_typing));
                }
                Some(serde_json::Value::Object(object).to_string())
            }
            CompiledBody::Raw(template) => Some(part!(Field::RawBody, template, context)),
        };

        let has_content_type = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
        if let Some(body) = &body
            && !has_content_type
        {
            let json = matches!(self.body, CompiledBody::KeyValue(_))
                || serde_json::from_str::<serde_json::Value>(body).is_ok();
            let content_type = if json {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            headers.push(("Content-Type".to_owned(), content_type.to_owned()));
        }

        RenderOutcome::Rendered(RenderedRequest {
            method: self.method,
            url,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN_HEADER: &str = "{% connected_content https://[insert_instance_name].my.salesforce.com/services/oauth2/token     :method post     :body client_id=[insert_client_id]&client_secret=[insert_client_secret]&grant_type=client_credentials     :save result %}Bearer {{result.access_token}}";

    fn create_lead(url: &str) -> WebhookTemplate {
        WebhookTemplate {
            name: "Salesforce Sales Cloud > Create Lead".into(),
            url: url.into(),
            method: Method::Post,
            body: Body::KeyValue(vec![
                ("firstName".into(), "{{${first_name}}}".into()),
                ("lastName".into(), "{{${last_name}}}".into()),
                ("email".into(), "{{${email_address}}}".into()),
                ("company".into(), "{{custom_attribute.${company}}}".into()),
            ]),
            headers: vec![("Content-Type".into(), "application/json".into())],
            value_typing: ValueTyping::Strings,
            write_back: vec![],
            lookup_field: None,
            batch: false,
        }
    }

    fn jose() -> Context {
        Context::new().with_braze(&serde_json::json!({
            "profile": {"user_id": "00Q5e00000AbCdEFGH", "first_name": "José", "last_name": "Müller", "email_address": "jose@example.com"},
            "custom_attributes": {"company": "Acme 주식회사", "score": 42}
        }))
    }

    fn rendered(outcome: RenderOutcome) -> RenderedRequest {
        match outcome {
            RenderOutcome::Rendered(r) => r,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn key_value_body_renders_to_ordered_json_strings() {
        let compiled =
            create_lead("https://example.my.salesforce.com/services/data/v60.0/sobjects/Lead/")
                .compile()
                .expect("compiles");
        assert!(compiled.warnings().is_empty());
        assert!(!compiled.uses_connected_content());
        let request = rendered(compiled.render(&jose()));
        assert_eq!(request.method, Method::Post);
        assert_eq!(
            request.body.as_deref(),
            Some(
                r#"{"firstName":"José","lastName":"Müller","email":"jose@example.com","company":"Acme 주식회사"}"#
            )
        );
        assert_eq!(
            request.headers,
            vec![("Content-Type".to_owned(), "application/json".to_owned())]
        );
    }

    #[test]
    fn json_literal_typing_is_opt_in() {
        let mut t = create_lead("https://x.example/");
        t.headers.clear();
        t.body = Body::KeyValue(vec![
            ("score".into(), "{{custom_attribute.${score}}}".into()),
            ("flag".into(), " true ".into()),
            ("none".into(), "null".into()),
            ("zip".into(), "01234".into()),
            ("name".into(), "x".into()),
        ]);
        let strings = rendered(t.compile().expect("compiles").render(&jose()));
        assert_eq!(
            strings.body.as_deref(),
            Some(r#"{"score":"42","flag":" true ","none":"null","zip":"01234","name":"x"}"#)
        );
        assert_eq!(
            strings.headers,
            vec![("Content-Type".to_owned(), "application/json".to_owned())],
            "inferred for key/value bodies"
        );
        t.value_typing = ValueTyping::JsonLiterals;
        let typed = rendered(t.compile().expect("compiles").render(&jose()));
        // `01234` is not a JSON number (leading zero), so it stays a string.
        assert_eq!(
            typed.body.as_deref(),
            Some(r#"{"score":42,"flag":true,"none":null,"zip":"01234","name":"x"}"#)
        );
    }

    #[test]
    fn liquid_errors_name_the_field_with_line_and_column() {
        let mut t = create_lead("https://x.example/{{ ${user_id} | nosuchfilter }}");
        t.body = Body::KeyValue(vec![("firstName".into(), "{{ first_name ".into())]);
        let errors = t.compile().expect_err("two errors").0;
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].field(), &Field::Url);
        let text = CompileErrors(errors).to_string();
        assert!(
            text.contains("URL: unknown filter 'nosuchfilter'"),
            "{text}"
        );
        assert!(text.contains("body key 'firstName': "), "{text}");
        assert!(text.contains("line 1, column"), "{text}");
    }

    #[test]
    fn url_shape_is_checked_when_compiled() {
        let bad = |url: &str| {
            create_lead(url)
                .compile()
                .expect_err(url)
                .0
                .into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        };
        assert_eq!(
            bad(
                "https://[insert_instance_name].my.salesforce.com/services/data/v60.0/sobjects/Lead/"
            ),
            "URL: https://[insert_instance_name].my.salesforce.com/services/data/v60.0/sobjects/Lead/ is not a valid URL"
        );
        assert!(bad("ftp://x.example/{{a}}").contains("http:// or https://"));
        assert!(bad("https://bad host/{{a}}").contains("not a valid URL"));
        assert!(bad("  ").contains("needs a URL"));
        for ok in [
            "{{base}}/services/data",
            "https://{{instance}}.my.salesforce.com/x",
            "https://x.example/Lead/{{${user_id}}}",
            "http{{s}}://x",
        ] {
            assert!(create_lead(ok).compile().is_ok(), "{ok}");
        }
    }

    #[test]
    fn rendered_url_is_validated() {
        let t = create_lead("{{custom_attribute.${company}}}/x");
        match t.compile().expect("compiles").render(&jose()) {
            RenderOutcome::Error(e) => {
                assert_eq!(e.field, Field::Url);
                assert_eq!(e.message, "Acme 주식회사/x is not a valid URL");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn header_names() {
        let mut t = create_lead("https://x.example/");
        t.headers = vec![
            ("Content_Type".into(), "application/json".into()),
            ("Autorisierung".into(), "x".into()),
            ("Content-Typ".into(), "application/json".into()),
        ];
        let compiled = t.compile().expect("warnings only");
        let warnings: Vec<String> = compiled
            .warnings()
            .iter()
            .map(|w| format!("{}: {}", w.field, w.message))
            .collect();
        assert_eq!(
            warnings,
            vec![
                "header 'Content_Type': 'Content_Type' is not 'Content-Type': servers will not read an underscore as a hyphen",
                "header 'Autorisierung': 'Autorisierung' is German for 'Authorization'; use 'Authorization'",
                "header 'Content-Typ': 'Content-Typ' is German for 'Content-Type'; use 'Content-Type'",
            ]
        );
        // Names that cannot be sent at all still say which one was meant.
        for (bad, meant) in [
            ("승인", "Authorization"),
            ("Tipo de contenido", "Content-Type"),
        ] {
            t.headers = vec![(bad.into(), "x".into())];
            let errors = t.compile().expect_err(bad).0;
            assert!(
                errors[0]
                    .to_string()
                    .contains(&format!("for '{meant}'; use '{meant}'")),
                "{errors:?}"
            );
        }
        for bad in [
            "Tipo de contenido",
            "Autorização",
            "",
            "Host",
            "X-Leadwire-Delivery-Id",
            "a:b",
        ] {
            t.headers = vec![(bad.into(), "x".into())];
            let errors = t.compile().expect_err(bad).0;
            assert!(
                matches!(errors[0].field(), Field::Header(h) if h == bad),
                "{errors:?}"
            );
        }
    }

    #[test]
    fn header_values_and_connected_content() {
        let mut t = create_lead("https://x.example/");
        t.headers = vec![("Authorization".into(), TOKEN_HEADER.into())];
        let compiled = t.compile().expect("compiles");
        assert!(compiled.uses_connected_content());
        // No connected_content client in this context: a render error naming the header.
        match compiled.render(&jose()) {
            RenderOutcome::Error(e) => {
                assert_eq!(e.field, Field::Header("Authorization".into()));
                assert!(e.message.contains("connected_content"), "{}", e.message);
            }
            other => panic!("{other:?}"),
        }
        t.headers = vec![("X-Name".into(), "a{{ 'x' | newline_to_br }}\nb".into())];
        match t.compile().expect("compiles").render(&jose()) {
            RenderOutcome::Error(e) => assert!(e.message.contains("line break"), "{}", e.message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn aborts_stop_rendering() {
        let mut t = create_lead("https://x.example/");
        t.body = Body::Raw(
            "{% if ${first_name} == 'José' %}{% abort_message('not at threshold') %}{% endif %}x"
                .into(),
        );
        assert_eq!(
            t.compile().expect("compiles").render(&jose()),
            RenderOutcome::Aborted {
                reason: "not at threshold".into()
            }
        );
    }

    #[test]
    fn raw_bodies_and_methods() {
        let mut t = create_lead("https://x.example/");
        t.headers.clear();
        t.body = Body::Raw("to={{${first_name} | url_param_escape}}&text=hi".into());
        let r = rendered(t.compile().expect("compiles").render(&jose()));
        assert_eq!(r.body.as_deref(), Some("to=Jos%C3%A9&text=hi"));
        assert_eq!(r.headers[0].1, "text/plain; charset=utf-8");
        t.body = Body::Raw(r#"{"a": "{{${first_name}}}"}"#.into());
        let r = rendered(t.compile().expect("compiles").render(&jose()));
        assert_eq!(r.headers[0].1, "application/json");
        t.method = Method::Get;
        assert!(t.compile().is_err(), "GET with a body");
        t.body = Body::None;
        let r = rendered(t.compile().expect("compiles").render(&jose()));
        assert_eq!((r.method, r.body, r.headers.len()), (Method::Get, None, 0));
        assert_eq!("patch".parse::<Method>(), Ok(Method::Patch));
        assert!("TRACE".parse::<Method>().is_err());
    }

    #[test]
    fn duplicate_and_empty_keys() {
        let mut t = create_lead("https://x.example/");
        t.body = Body::KeyValue(vec![
            ("a".into(), "1".into()),
            ("a".into(), "2".into()),
            (" ".into(), "3".into()),
        ]);
        let errors = t.compile().expect_err("invalid").0;
        assert_eq!(errors.len(), 2, "{errors:?}");
    }
}
