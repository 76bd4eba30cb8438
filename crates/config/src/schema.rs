//! JSON Schemas (draft 2020-12) of the four config kinds, generated from the types that parse
//! them, so an editor's checks and `leadwire apply --check` agree with what loading accepts.
//!
//! The committed copies under `schemas/` are compared with these by a test; examples point at
//! them with `# yaml-language-server: $schema=...`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde_json::{Value as Json, json};

use crate::CredentialDoc;

/// A config document's `kind`: a closed set, listed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    WebhookTemplate,
    Credential,
    Campaign,
    Canvas,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::WebhookTemplate,
        Kind::Credential,
        Kind::Campaign,
        Kind::Canvas,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::WebhookTemplate => "webhook_template",
            Kind::Credential => "credential",
            Kind::Campaign => "campaign",
            Kind::Canvas => "canvas",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The file name of its published schema.
    pub fn file_name(self) -> String {
        format!("{}.schema.json", self.as_str().replace('_', "-"))
    }

    /// The schema of one document of this kind, `kind` included.
    pub fn schema(self) -> Json {
        let mut schema = match self {
            Kind::WebhookTemplate => schema_of::<TemplateDoc>(),
            Kind::Credential => schema_of::<CredentialDoc>(),
            Kind::Campaign => schema_of::<leadwire_campaigns::CampaignSpec>(),
            Kind::Canvas => schema_of::<leadwire_canvas::CanvasSpec>(),
        };
        add_kind(&mut schema, self.as_str());
        schema["$id"] = json!(format!("https://leadwire.dev/schemas/{}", self.file_name()));
        schema
    }
}

fn schema_of<T: JsonSchema>() -> Json {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Json::Null)
}

/// Adds the required `kind: NAME` property to the top object, or to each branch of a `oneOf`.
fn add_kind(schema: &mut Json, kind: &str) {
    let branches: Vec<&mut Json> = match schema.get_mut("oneOf") {
        Some(Json::Array(branches)) => branches.iter_mut().collect(),
        _ => vec![schema],
    };
    for branch in branches {
        if let Some(Json::Object(props)) = branch.get_mut("properties") {
            props.insert("kind".into(), json!({"const": kind}));
        }
        match branch.get_mut("required") {
            Some(Json::Array(required)) => required.insert(0, json!("kind")),
            _ => branch["required"] = json!(["kind"]),
        }
    }
}

/// Where a document breaks its kind's published schema: (path of keys, message). Loading parses
/// with the types the schemas come from, so this finds nothing unless the two drifted apart;
/// `leadwire apply --check` runs it on every document to prove they agree.
pub fn schema_errors(kind: Kind, document: &Json) -> Vec<(Vec<String>, String)> {
    let mut with_kind = document.clone();
    if let Json::Object(map) = &mut with_kind {
        map.insert("kind".into(), json!(kind.as_str()));
    }
    let validator = match jsonschema::validator_for(&kind.schema()) {
        Ok(v) => v,
        Err(e) => {
            return vec![(
                Vec::new(),
                format!("the {} schema is broken: {e}", kind.as_str()),
            )];
        }
    };
    validator
        .iter_errors(&with_kind)
        .map(|e| {
            let path = e
                .instance_path()
                .as_str()
                .split('/')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect();
            (path, format!("breaks schemas/{}: {e}", kind.file_name()))
        })
        .collect()
}

/// Every kind's schema by file name.
pub fn all() -> BTreeMap<String, Json> {
    Kind::ALL
        .into_iter()
        .map(|k| (k.file_name(), k.schema()))
        .collect()
}

/// A webhook template as written in YAML or sent to `/templates/webhook/create`. Only its
/// shape: `leadwire-webhooks` parses it (a test keeps the two field lists equal).
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct TemplateDoc {
    /// Unique; campaigns and Canvas steps name the template by it.
    name: String,
    #[serde(default)]
    description: Option<String>,
    /// Liquid; the request's URL.
    url: String,
    #[serde(default)]
    method: Option<HttpMethod>,
    /// Header name to Liquid value, or `[{name, value}]` rows.
    #[serde(default)]
    headers: Option<Rows>,
    /// Raw Liquid text, or key/value rows (`{key: Liquid}` or `[{key, value}]`) sent as JSON.
    #[serde(default)]
    body: Option<Body>,
    /// How key/value rows become JSON: every value a string, or literals kept (numbers, true).
    #[serde(default)]
    value_typing: Option<ValueTyping>,
    /// Response fields saved onto the profile (e.g. the created Lead's `id`).
    #[serde(default)]
    write_back: Option<Vec<WriteBack>>,
    /// The Salesforce field that finds a record this create may already have made (`Email`).
    #[serde(default)]
    lookup_field: Option<String>,
    /// Send with others to the same org in one sObject Collections call.
    #[serde(default)]
    batch: Option<bool>,
    /// Only in `/templates/webhook/update`: which template.
    #[serde(default)]
    template_id: Option<String>,
}

#[derive(JsonSchema)]
#[allow(dead_code)]
enum HttpMethod {
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "PUT")]
    Put,
    #[serde(rename = "PATCH")]
    Patch,
    #[serde(rename = "DELETE")]
    Delete,
}

#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum ValueTyping {
    Strings,
    JsonLiterals,
}

#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum Rows {
    Map(BTreeMap<String, String>),
    List(Vec<Row>),
}

#[derive(JsonSchema)]
#[allow(dead_code)]
struct Row {
    #[serde(alias = "key")]
    name: String,
    value: String,
}

#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum Body {
    Raw(String),
    Rows(Rows),
}

#[derive(JsonSchema)]
#[allow(dead_code)]
struct WriteBack {
    response_field: String,
    attribute: String,
}

/// The properties a template document may have (for the test against the parser's list).
pub fn template_fields() -> Vec<String> {
    let schema = schema_of::<TemplateDoc>();
    schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_requires_its_kind() {
        for kind in Kind::ALL {
            let schema = kind.schema();
            let text = schema.to_string();
            assert!(
                text.contains(&format!("{{\"const\":\"{}\"}}", kind.as_str())),
                "{text}"
            );
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
        }
    }

    /// The committed schemas are these; `UPDATE_SCHEMAS=1 cargo test -p leadwire-config`
    /// rewrites them after a change to the types.
    #[test]
    fn committed_schemas_are_up_to_date() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        for (file, schema) in all() {
            let text = serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n";
            let path = dir.join(&file);
            if std::env::var_os("UPDATE_SCHEMAS").is_some() {
                std::fs::create_dir_all(&dir).expect("schemas dir");
                std::fs::write(&path, &text).expect("write schema");
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == text,
                "schemas/{file} is out of date: run UPDATE_SCHEMAS=1 cargo test -p leadwire-config"
            );
        }
    }
}
