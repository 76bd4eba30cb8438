//! Webhook templates as saved: the definition JSON (the shape the REST API takes and returns),
//! its conversion to `leadwire_delivery::webhook::WebhookTemplate`, and the table's queries.
//!
//! Definition JSON:
//!
//! ```json
//! {"name": "Create Lead", "description": "…", "url": "https://…/Lead/", "method": "POST",
//!  "headers": {"Authorization": "Bearer …", "Content-Type": "application/json"},
//!  "body": {"firstName": "{{${first_name}}}"},          // key/value pairs (values are Liquid)
//!  "value_typing": "strings",                            // or "json_literals"
//!  "write_back": [{"response_field": "id", "attribute": "salesforce_lead_id"}],
//!  "lookup_field": "Email"}                              // Salesforce creates: see below
//! ```
//!
//! `batch: true` lets the template's Salesforce record writes share sObject Collections calls
//! (up to 200 records) with others to the same org.
//!
//! `lookup_field` names the body field (e.g. `Email`) by which a Salesforce create is looked up
//! before it is retried, so a create that reached Salesforce without an answer is not made twice.
//!
//! ```json
//! ```
//!
//! `body` is an object (key/value pairs, values typed as `value_typing` says), a string (raw
//! text) or absent/null (no body). `headers` is an object or a list of `{"name", "value"}`.

use std::fmt;
use std::time::SystemTime;

use leadwire_delivery::webhook::{
    Body, CompileError, Method, ValueTyping, WebhookTemplate, WriteBackRule,
};
use leadwire_store::TemplateRow;
use serde_json::{Map, Value as Json, json};

use crate::WebhookError;

/// One reason a template does not compile, for an editor: the field, and where in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileIssue {
    pub field: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub message: String,
}

impl fmt::Display for CompileIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => {
                write!(f, "{} (line {l}, column {c}): {}", self.field, self.message)
            }
            _ => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

impl CompileIssue {
    pub fn to_json(&self) -> Json {
        let mut out = json!({"field": self.field, "message": self.message});
        if let (Some(l), Some(c)) = (self.line, self.column) {
            out["line"] = json!(l);
            out["column"] = json!(c);
        }
        out
    }
}

fn issue(e: &CompileError) -> CompileIssue {
    match e {
        CompileError::Liquid { field, error } => CompileIssue {
            field: field.to_string(),
            line: Some(error.location.line),
            column: Some(error.location.column),
            message: error.message.clone(),
        },
        other => CompileIssue {
            field: other.field().to_string(),
            line: None,
            column: None,
            message: match other {
                CompileError::Invalid { message, .. } => message.clone(),
                e => e.to_string(),
            },
        },
    }
}

/// A template's saved content, parsed and checked (it compiles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateDefinition {
    pub description: String,
    pub template: WebhookTemplate,
}

fn invalid(msg: impl Into<String>) -> WebhookError {
    WebhookError::Invalid(msg.into())
}

fn string_field(
    obj: &Map<String, Json>,
    key: &str,
    required: bool,
) -> Result<String, WebhookError> {
    match obj.get(key) {
        Some(Json::String(s)) => Ok(s.clone()),
        None | Some(Json::Null) if !required => Ok(String::new()),
        None | Some(Json::Null) => Err(invalid(format!("'{key}' is required"))),
        Some(_) => Err(invalid(format!("'{key}' must be a string"))),
    }
}

fn pairs(value: &Json, what: &str, key_name: &str) -> Result<Vec<(String, String)>, WebhookError> {
    match value {
        Json::Null => Ok(Vec::new()),
        Json::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                Json::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(invalid(format!(
                    "'{what}.{k}' must be a string (Liquid text)"
                ))),
            })
            .collect(),
        Json::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let k = item.get(key_name).and_then(Json::as_str);
                let v = item.get("value").and_then(Json::as_str);
                match (k, v) {
                    (Some(k), Some(v)) => Ok((k.to_owned(), v.to_owned())),
                    _ => Err(invalid(format!(
                        "'{what}[{i}]' needs string '{key_name}' and 'value'"
                    ))),
                }
            })
            .collect(),
        _ => Err(invalid(format!("'{what}' must be an object or a list"))),
    }
}

impl TemplateDefinition {
    /// Every field a definition may have (`leadwire-config`'s schema lists the same).
    pub const FIELDS: [&'static str; 11] = [
        "name",
        "description",
        "url",
        "method",
        "headers",
        "body",
        "value_typing",
        "write_back",
        "lookup_field",
        "batch",
        "template_id",
    ];

    /// Parses a definition (see the module docs), naming the JSON path of any problem. Does not
    /// compile it: [`TemplateDefinition::compile_checked`] does.
    pub fn from_json(value: &Json) -> Result<TemplateDefinition, WebhookError> {
        let Json::Object(obj) = value else {
            return Err(invalid("the template must be a JSON object"));
        };
        let known = TemplateDefinition::FIELDS;
        if let Some(k) = obj.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(invalid(format!(
                "unknown field '{k}'; known: {}",
                known.join(", ")
            )));
        }
        let name = string_field(obj, "name", true)?;
        if name.trim().is_empty() {
            return Err(invalid("'name' cannot be empty"));
        }
        let method: Method = match obj.get("method") {
            None | Some(Json::Null) => Method::Post,
            Some(Json::String(s)) => s.parse().map_err(|e| invalid(format!("'method': {e}")))?,
            Some(_) => return Err(invalid("'method' must be a string")),
        };
        let body = match obj.get("body") {
            None | Some(Json::Null) => Body::None,
            Some(Json::String(s)) => Body::Raw(s.clone()),
            Some(other) => Body::KeyValue(pairs(other, "body", "key")?),
        };
        let headers = pairs(obj.get("headers").unwrap_or(&Json::Null), "headers", "name")?;
        let value_typing = match obj.get("value_typing").and_then(Json::as_str) {
            None | Some("strings") => ValueTyping::Strings,
            Some("json_literals") => ValueTyping::JsonLiterals,
            Some(other) => {
                return Err(invalid(format!(
                    "'value_typing' is '{other}'; use 'strings' or 'json_literals'"
                )));
            }
        };
        let write_back = match obj.get("write_back") {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    match (
                        r.get("response_field").and_then(Json::as_str),
                        r.get("attribute").and_then(Json::as_str),
                    ) {
                        (Some(f), Some(a)) => Ok(WriteBackRule {
                            response_field: f.to_owned(),
                            attribute: a.to_owned(),
                        }),
                        _ => Err(invalid(format!(
                            "'write_back[{i}]' needs string 'response_field' and 'attribute'"
                        ))),
                    }
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("'write_back' must be a list")),
        };
        Ok(TemplateDefinition {
            description: string_field(obj, "description", false)?,
            template: WebhookTemplate {
                name,
                url: string_field(obj, "url", true)?,
                method,
                body,
                headers,
                value_typing,
                write_back,
                batch: match obj.get("batch") {
                    None | Some(Json::Null) => false,
                    Some(Json::Bool(b)) => *b,
                    Some(_) => return Err(invalid("'batch' must be true or false")),
                },
                lookup_field: match obj.get("lookup_field") {
                    None | Some(Json::Null) => None,
                    Some(Json::String(s)) if s.trim().is_empty() => None,
                    Some(Json::String(s)) => Some(s.trim().to_owned()),
                    Some(_) => {
                        return Err(invalid(
                            "'lookup_field' must be a Salesforce field name, such as \"Email\"",
                        ));
                    }
                },
            },
        })
    }

    /// The definition JSON (without ids or timestamps).
    pub fn to_json(&self) -> Json {
        let t = &self.template;
        let headers: Map<String, Json> = t
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect();
        let body = match &t.body {
            Body::None => Json::Null,
            Body::Raw(s) => Json::String(s.clone()),
            Body::KeyValue(kv) => Json::Object(
                kv.iter()
                    .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                    .collect(),
            ),
        };
        json!({
            "name": t.name,
            "description": self.description,
            "url": t.url,
            "method": t.method.as_str(),
            "headers": headers,
            "body": body,
            "value_typing": match t.value_typing {
                ValueTyping::Strings => "strings",
                ValueTyping::JsonLiterals => "json_literals",
            },
            "write_back": t.write_back.iter().map(|r| json!({"response_field": r.response_field, "attribute": r.attribute})).collect::<Vec<_>>(),
            "lookup_field": t.lookup_field,
            "batch": t.batch,
        })
    }

    /// Compiles the template; every problem is reported with its field and line/column.
    pub fn compile_checked(
        &self,
    ) -> Result<leadwire_delivery::webhook::CompiledWebhook, WebhookError> {
        self.template
            .compile()
            .map_err(|errors| WebhookError::Compile(errors.0.iter().map(issue).collect()))
    }
}

/// A stored template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRecord {
    pub id: String,
    pub definition: TemplateDefinition,
    pub archived: bool,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
}

impl TemplateRecord {
    /// The definition plus `template_id`, `archived`, `created_at`, `updated_at` (RFC 3339).
    pub fn to_json(&self) -> Json {
        let mut out = json!({"template_id": self.id});
        if let (Json::Object(o), Json::Object(d)) = (&mut out, self.definition.to_json()) {
            o.extend(d);
        }
        out["archived"] = json!(self.archived);
        out["created_at"] = json!(rfc3339(self.created_at));
        out["updated_at"] = json!(rfc3339(self.updated_at));
        out
    }
}

/// RFC 3339 in UTC with milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A stored row as a template record (its definition parsed again).
pub(crate) fn record(row: TemplateRow) -> Result<TemplateRecord, WebhookError> {
    let json: Json = serde_json::from_str(&row.definition).map_err(|e| {
        WebhookError::Database(format!(
            "template {}: stored definition is not JSON: {e}",
            row.id
        ))
    })?;
    Ok(TemplateRecord {
        definition: TemplateDefinition::from_json(&json)
            .map_err(|e| WebhookError::Database(format!("template {}: {e}", row.id)))?,
        id: row.id,
        archived: row.archived,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definition_round_trips_and_names_paths() {
        let json = json!({
            "name": "Create Lead", "url": "https://x.example/Lead/", "method": "post",
            "headers": [{"name": "Content-Type", "value": "application/json"}],
            "body": {"firstName": "{{${first_name}}}"},
            "write_back": [{"response_field": "id", "attribute": "salesforce_lead_id"}]
        });
        let d = TemplateDefinition::from_json(&json).expect("parses");
        assert_eq!(d.template.method, Method::Post);
        let again = TemplateDefinition::from_json(&d.to_json()).expect("round trip");
        assert_eq!(again, d);
        let e = TemplateDefinition::from_json(
            &json!({"name": "x", "url": "https://a/", "body": {"k": 1}}),
        )
        .expect_err("non-string value");
        assert_eq!(e.to_string(), "'body.k' must be a string (Liquid text)");
        let e = TemplateDefinition::from_json(
            &json!({"name": "x", "url": "https://a/", "verb": "GET"}),
        )
        .expect_err("unknown");
        assert!(e.to_string().starts_with("unknown field 'verb'"));
    }

    #[test]
    fn compile_errors_carry_field_line_and_column() {
        let d = TemplateDefinition::from_json(&json!({
            "name": "x", "url": "https://a.example/",
            "body": {"a": "ok", "b": "line one\n{% if %}"}
        }))
        .expect("parses");
        let Err(WebhookError::Compile(issues)) = d.compile_checked() else {
            panic!("should not compile");
        };
        assert_eq!(issues[0].field, "body key 'b'");
        assert_eq!(issues[0].line, Some(2));
        assert!(issues[0].column.is_some());
    }

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_795_000_000_123)),
            "2026-11-18T11:06:40.123Z"
        );
    }
}
