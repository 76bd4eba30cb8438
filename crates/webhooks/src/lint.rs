//! Template warnings as an editor, `leadwire apply` and `leadwire templates lint` show them: the
//! compiler's (misspelled or translated header names…) and the Salesforce-aware linter's
//! (`leadwire_salesforce::lint`: translated or unknown fields with the field meant, required
//! fields missing, `[insert_…]` placeholders, a record id that renders empty).
//!
//! [`findings`] is pure; the service adds the I/O (the org's describe call) around it.

use leadwire_delivery::webhook::{Body, Field, WebhookTemplate};
use leadwire_liquid::{Context, Outcome, Template};
use leadwire_salesforce::lint::{self, FindingKind, LintBody, LintInput, Location};
use leadwire_salesforce::schema::FieldList;
use leadwire_salesforce::target::Instances;
use serde_json::{Value as Json, json};

/// One warning: where (the template's field, and a line and column in it when known), what, and
/// the text to write instead when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintWarning {
    /// `URL`, `header 'Autorisierung'`, `body key 'Vorname'`, `body`.
    pub field: String,
    /// The header name or body key the warning is about, to find it in a file.
    pub key: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// `unknown_field`, `missing_required_field`, `translated_header`, `placeholder`,
    /// `empty_record_id`, `read_only_field`, or `template` for the compiler's own.
    pub code: &'static str,
    pub message: String,
    pub suggestion: Option<String>,
}

impl LintWarning {
    pub fn to_json(&self) -> Json {
        let mut out = json!({"field": self.field, "code": self.code, "message": self.message});
        if let Some(s) = &self.suggestion {
            out["suggestion"] = json!(s);
        }
        if let (Some(l), Some(c)) = (self.line, self.column) {
            out["line"] = json!(l);
            out["column"] = json!(c);
        }
        out
    }
}

impl std::fmt::Display for LintWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => {
                write!(f, "{} (line {l}, column {c}): {}", self.field, self.message)
            }
            _ => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

fn code(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::UnknownField => "unknown_field",
        FindingKind::ReadOnlyField => "read_only_field",
        FindingKind::MissingRequiredField => "missing_required_field",
        FindingKind::TranslatedHeader => "translated_header",
        FindingKind::Placeholder => "placeholder",
        FindingKind::EmptyRecordId => "empty_record_id",
    }
}

fn field_key(field: &Field) -> Option<String> {
    match field {
        Field::Header(h) => Some(h.clone()),
        Field::BodyKey(k) => Some(k.clone()),
        _ => None,
    }
}

/// The URL as it renders for a user with no attributes, when it renders without I/O: the
/// preview user for which an empty record id shows.
pub fn rendered_url(template: &WebhookTemplate, preview_user: &Json) -> Option<String> {
    let parsed = Template::parse(template.url.trim()).ok()?;
    if parsed.uses_connected_content() {
        return None;
    }
    match parsed.render(&Context::new().with_braze(preview_user)) {
        Ok(Outcome::Rendered(url)) => Some(url.trim().to_owned()),
        _ => None,
    }
}

/// Every warning for a template that compiles: the compiler's, then the linter's (a translated
/// header the compiler already named is not named twice).
pub fn findings(
    template: &WebhookTemplate,
    compiler: &[leadwire_delivery::webhook::Warning],
    rendered_url: Option<&str>,
    instances: &Instances,
    describe: Option<&FieldList>,
) -> Vec<LintWarning> {
    let mut out: Vec<LintWarning> = compiler
        .iter()
        .map(|w| LintWarning {
            field: w.field.to_string(),
            key: field_key(&w.field),
            line: None,
            column: None,
            code: "template",
            message: w.message.clone(),
            suggestion: None,
        })
        .collect();
    let body = match &template.body {
        Body::None => LintBody::None,
        Body::KeyValue(pairs) => LintBody::KeyValue(pairs),
        Body::Raw(source) => LintBody::Raw {
            source,
            rendered: None,
        },
    };
    let input = LintInput {
        method: template.method.as_str(),
        url_source: &template.url,
        rendered_url,
        headers: &template.headers,
        body,
        instances,
        fields: describe,
    };
    for finding in lint::lint(&input) {
        if finding.kind == FindingKind::TranslatedHeader {
            continue;
        }
        let (field, key, line, column) = match &finding.location {
            Location::Url => (Field::Url, None, None, None),
            Location::Header(h) => (Field::Header(h.clone()), Some(h.clone()), None, None),
            Location::BodyKey(k) => (Field::BodyKey(k.clone()), Some(k.clone()), None, None),
            Location::Body { line, column } => (Field::RawBody, None, Some(*line), Some(*column)),
        };
        out.push(LintWarning {
            field: field.to_string(),
            key,
            line,
            column,
            code: code(finding.kind),
            message: finding.message,
            suggestion: finding.suggestion,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadwire_delivery::webhook::{Method, ValueTyping};

    #[test]
    fn a_translated_body_and_an_empty_record_id() {
        let template = WebhookTemplate {
            name: "Update".into(),
            url: "https://acme.my.salesforce.com/services/data/v60.0/sobjects/Lead/{{custom_attribute.${salesforce_lead_id}}}".into(),
            method: Method::Patch,
            body: Body::KeyValue(vec![("Vorname".into(), "x".into())]),
            headers: vec![("Autorisierung".into(), "Bearer x".into())],
            value_typing: ValueTyping::Strings,
            write_back: vec![],
            lookup_field: None,
            batch: false,
        };
        let compiled = template.compile().expect("compiles");
        let url = rendered_url(&template, &json!({"profile": {}, "custom_attributes": {}}));
        assert_eq!(
            url.as_deref(),
            Some("https://acme.my.salesforce.com/services/data/v60.0/sobjects/Lead/")
        );
        let warnings = findings(
            &template,
            compiled.warnings(),
            url.as_deref(),
            &Instances::default(),
            None,
        );
        let codes: Vec<(&str, Option<&str>)> = warnings
            .iter()
            .map(|w| (w.code, w.suggestion.as_deref()))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("template", None),
                ("empty_record_id", None),
                ("unknown_field", Some("FirstName")),
            ],
            "{warnings:#?}"
        );
        assert_eq!(warnings[0].key.as_deref(), Some("Autorisierung"));
        assert!(warnings[0].message.contains("German for 'Authorization'"));
    }
}
