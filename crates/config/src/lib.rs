//! `leadwire apply DIR`: webhook templates, credential references, campaigns and Canvases as YAML
//! files.
//!
//! Every `*.yaml` / `*.yml` file in the directory (sorted by name) holds one or more documents
//! separated by `---`, each with a `kind`:
//!
//! ```yaml
//! kind: credential            # Braze's :basic_auth / :auth_credentials store
//! name: salesforce_app
//! type: basic
//! username: ${env:SALESFORCE_CLIENT_ID}
//! password: ${env:SALESFORCE_CLIENT_SECRET}
//! ---
//! kind: webhook_template      # the REST API's template definition
//! name: Salesforce Sales Cloud > Create Lead
//! url: ${env:SALESFORCE_INSTANCE_URL}/services/data/v60.0/sobjects/Lead/
//! ...
//! ---
//! kind: campaign              # leadwire_campaigns::CampaignSpec
//! name: New lead
//! ...
//! ---
//! kind: canvas                # leadwire_canvas::CanvasSpec (graph checked on load)
//! name: Lead Scoring Canvas
//! ...
//! ```
//!
//! `${env:NAME}` is replaced by the environment variable before parsing, so the same files work
//! against the emulator and a real org, and secrets stay out of the files. Loading reports every
//! error at once, each with file, line and field. This crate parses and checks; it stores nothing.

use std::path::{Path, PathBuf};

pub mod schema;

use leadwire_campaigns::CampaignSpec;
use leadwire_canvas::CanvasSpec;
use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field '{field}'")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A credential reference, resolved from the environment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum CredentialDoc {
    Basic {
        name: String,
        username: String,
        password: String,
    },
    Token {
        name: String,
        headers: std::collections::BTreeMap<String, String>,
        allowed_domain: Option<String>,
    },
}

impl CredentialDoc {
    pub fn name(&self) -> &str {
        match self {
            CredentialDoc::Basic { name, .. } | CredentialDoc::Token { name, .. } => name,
        }
    }
}

/// Everything a directory declares, in file order.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    pub credentials: Vec<(PathBuf, CredentialDoc)>,
    /// Template definitions in the REST API's JSON shape (checked when saved).
    pub templates: Vec<(PathBuf, Json)>,
    pub campaigns: Vec<(PathBuf, CampaignSpec)>,
    pub canvases: Vec<(PathBuf, CanvasSpec)>,
}

/// Replaces `${env:NAME}` using `env`; an unset variable is an error naming its line.
pub fn substitute_env(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${env:") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 6..];
        let Some(end) = after.find('}') else {
            let line = text.len() - rest.len() + start;
            return Err((
                line_of(text, line),
                "'${env:' is not closed with '}'".into(),
            ));
        };
        let name = after[..end].trim();
        match env(name) {
            Some(v) => out.push_str(&v),
            None => {
                let at = text.len() - rest.len() + start;
                return Err((
                    line_of(text, at),
                    format!("environment variable {name} is not set"),
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line in `text` where `key` is written (`key:`, `"key":` or `- name: key`) after the line
/// that names `after` (a template's name), to point a warning about that key at its file line.
pub fn line_of_key_after(text: &str, after: &str, key: &str) -> Option<usize> {
    let start = text.lines().position(|l| l.contains(after)).unwrap_or(0);
    text.lines()
        .enumerate()
        .skip(start)
        .find(|(_, l)| {
            let t = l.trim_start().trim_start_matches("- ").trim_start();
            let t = t.trim_start_matches(['"', '\'']);
            t.starts_with(&format!("{key}:"))
                || t.starts_with(&format!("{key}\":"))
                || t.starts_with(&format!("{key}':"))
                || t == format!("name: {key}")
        })
        .map(|(i, _)| i + 1)
}

/// The line of `key:` in the file, to point a field error at it.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    line_of_key_from(text, 0, key)
}

/// The first line at or after `from` (0-based) that writes `key:`, as a 1-based line number.
fn line_of_key_from(text: &str, from: usize, key: &str) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(from)
        .find(|(_, l)| {
            let t = l.trim_start().trim_start_matches("- ");
            let t = t.trim_start_matches(['"', '\'']);
            t.starts_with(&format!("{key}:"))
                || t.starts_with(&format!("{key}\":"))
                || t.starts_with(&format!("{key}':"))
        })
        .map(|(i, _)| i + 1)
}

/// The line of the value a path such as `trigger.type` or `steps[2].wait` leads to, following
/// each key in turn; list indexes are skipped (the next key is searched after the list's key).
fn line_of_path(text: &str, path: &[String]) -> Option<usize> {
    let mut line = None;
    for key in path {
        let from = line.unwrap_or(0);
        match line_of_key_from(text, from, key) {
            Some(found) => line = Some(found),
            None => break,
        }
    }
    line
}

/// serde's messages name the field in backticks (`unknown field `x``, `missing field `y``).
fn field_in(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

/// Deserializes `value` as `T`, reporting the path of the field at fault (`trigger.type`,
/// `audience.all[1]`) so the error can name it and point at its line.
fn typed<T: serde::de::DeserializeOwned>(value: Json) -> Result<T, (Vec<String>, String)> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let mut path: Vec<String> = Vec::new();
        for segment in e.path().iter() {
            match segment {
                serde_path_to_error::Segment::Map { key } => path.push(key.clone()),
                serde_path_to_error::Segment::Seq { index } => {
                    if let Some(last) = path.last_mut() {
                        last.push_str(&format!("[{index}]"));
                    } else {
                        path.push(format!("[{index}]"));
                    }
                }
                _ => {}
            }
        }
        let message = e.into_inner().to_string();
        // An unknown or missing field is named in the message: it is the field at fault.
        if message.starts_with("unknown field") || message.starts_with("missing field") {
            let field = field_in(&message);
            if field.is_some() && path.last() != field.as_ref() {
                path.extend(field);
            }
        }
        // A bad `type` of a tagged enum is reported on the enum itself.
        if message.starts_with("unknown variant") && path.last().is_none_or(|p| p != "type") {
            path.push("type".into());
        }
        (path, message)
    })
}

/// Splits a YAML file into its `---`-separated documents, each with the 0-based line it starts on.
fn documents(text: &str) -> Vec<(usize, String)> {
    let mut out = vec![(0, String::new())];
    for (i, line) in text.lines().enumerate() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            out.push((i + 1, String::new()));
            continue;
        }
        if let Some((_, doc)) = out.last_mut() {
            doc.push_str(line);
            doc.push('\n');
        }
    }
    out
}

/// Loads every YAML file in `dir`.
pub fn load_dir(
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Bundle, Vec<ConfigError>> {
    load_dir_with(dir, env, Validation::Types)
}

/// How thoroughly documents are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    /// Parsed by the types that read them (what loading needs).
    Types,
    /// Also validated against the published JSON Schemas (`apply --check`).
    TypesAndSchemas,
}

/// Loads every YAML file in `dir`, checked as `validation` says.
pub fn load_dir_with(
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    validation: Validation,
) -> Result<Bundle, Vec<ConfigError>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        vec![ConfigError {
            file: dir.to_path_buf(),
            line: None,
            field: None,
            message: format!("cannot read the directory: {e}"),
        }]
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut bundle = Bundle::default();
    let mut errors = Vec::new();
    for file in files {
        if let Err(mut e) = load_file_with(&file, env, &mut bundle, validation) {
            errors.append(&mut e);
        }
    }
    if files_empty(&bundle) && errors.is_empty() {
        errors.push(ConfigError {
            file: dir.to_path_buf(),
            line: None,
            field: None,
            message: "no .yaml or .yml file here declares anything: write documents with \
                      'kind: webhook_template', 'credential', 'campaign' or 'canvas'"
                .into(),
        });
    }
    if errors.is_empty() {
        Ok(bundle)
    } else {
        Err(errors)
    }
}

fn files_empty(b: &Bundle) -> bool {
    b.credentials.is_empty()
        && b.templates.is_empty()
        && b.campaigns.is_empty()
        && b.canvases.is_empty()
}

pub fn load_file(
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    bundle: &mut Bundle,
) -> Result<(), Vec<ConfigError>> {
    load_file_with(file, env, bundle, Validation::Types)
}

pub fn load_file_with(
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    bundle: &mut Bundle,
    validation: Validation,
) -> Result<(), Vec<ConfigError>> {
    let raw = std::fs::read_to_string(file).map_err(|e| {
        vec![ConfigError {
            file: file.to_path_buf(),
            line: None,
            field: None,
            message: format!("cannot read: {e}"),
        }]
    })?;
    load_text(file, &raw, env, bundle, validation)
}

/// Loads the documents of one file's text (`file` names it in errors). Pure: the fuzz target
/// `config_yaml` calls it.
pub fn load_text(
    file: &Path,
    raw: &str,
    env: &dyn Fn(&str) -> Option<String>,
    bundle: &mut Bundle,
    validation: Validation,
) -> Result<(), Vec<ConfigError>> {
    let err = |line, field, message: String| ConfigError {
        file: file.to_path_buf(),
        line,
        field,
        message,
    };
    let text = substitute_env(raw, env).map_err(|(line, m)| vec![err(Some(line), None, m)])?;
    let mut errors = Vec::new();
    for (first_line, document) in documents(&text) {
        let value: Json = match serde_norway::from_str(&document) {
            Ok(v) => v,
            Err(e) => {
                let line = e.location().map(|l| first_line + l.line());
                errors.push(err(line, None, e.to_string()));
                continue;
            }
        };
        if value.is_null() {
            continue;
        }
        let Json::Object(mut map) = value else {
            errors.push(err(
                Some(first_line + 1),
                None,
                "each document must be a mapping with a 'kind'".into(),
            ));
            continue;
        };
        let kind = map.remove("kind");
        let name = map
            .get("name")
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string();
        let at = |line: Option<usize>| line.map(|l| first_line + l);
        let name_line = at(line_of_key(&document, "name"));
        // Point at the line of the field at fault, else the document's name.
        let field_error = |kind: &str, (path, message): (Vec<String>, String)| {
            let line = at(line_of_path(&document, &path)).or(name_line);
            let field = (!path.is_empty()).then(|| path.join("."));
            err(line, field, format!("{kind} '{name}': {message}"))
        };
        if validation == Validation::TypesAndSchemas
            && let Some(kind) = kind
                .as_ref()
                .and_then(Json::as_str)
                .and_then(schema::Kind::parse)
        {
            let document = Json::Object(map.clone());
            for (path, message) in schema::schema_errors(kind, &document) {
                errors.push(field_error(kind.as_str(), (path, message)));
            }
        }
        match kind.as_ref().and_then(Json::as_str) {
            Some("webhook_template") => bundle
                .templates
                .push((file.to_path_buf(), Json::Object(map))),
            Some("credential") => match typed::<CredentialDoc>(Json::Object(map)) {
                Ok(c) => bundle.credentials.push((file.to_path_buf(), c)),
                Err(e) => errors.push(field_error("credential", e)),
            },
            Some("campaign") => match typed::<CampaignSpec>(Json::Object(map)) {
                Ok(spec) => match spec.compile() {
                    Ok(_) => bundle.campaigns.push((file.to_path_buf(), spec)),
                    Err(e) => errors.push(err(name_line, None, e.to_string())),
                },
                Err(e) => errors.push(field_error("campaign", e)),
            },
            Some("canvas") => match typed::<CanvasSpec>(Json::Object(map)) {
                Ok(spec) => match spec.compile() {
                    Ok(_) => bundle.canvases.push((file.to_path_buf(), spec)),
                    Err(e) => errors.push(err(name_line, None, e.to_string())),
                },
                Err(e) => errors.push(field_error("canvas", e)),
            },
            Some(other) => errors.push(err(
                at(line_of_key(&document, "kind")),
                Some("kind".into()),
                format!(
                    "unknown kind '{other}'; use webhook_template, credential, campaign or canvas"
                ),
            )),
            None => errors.push(err(
                name_line.or(Some(first_line + 1)),
                Some("kind".into()),
                "every document needs a 'kind': webhook_template, credential, campaign or canvas"
                    .into(),
            )),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SF" => Some("https://acme.my.salesforce.com".into()),
            "ID" => Some("client-id".into()),
            _ => None,
        }
    }

    #[test]
    fn env_substitution_names_the_line_of_a_missing_variable() {
        assert_eq!(
            substitute_env("a: ${env:SF}/x", &env).as_deref(),
            Ok("a: https://acme.my.salesforce.com/x")
        );
        assert_eq!(
            substitute_env("a: 1\nb: ${env:NOPE}", &env),
            Err((2, "environment variable NOPE is not set".into()))
        );
    }

    #[test]
    fn loads_documents_and_reports_every_error_with_file_line_and_field() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(
            dir.path().join("a.yaml"),
            "kind: credential\nname: sf\ntype: basic\nusername: ${env:ID}\npassword: p\n---\nkind: webhook_template\nname: T\nurl: ${env:SF}/x\nmethod: POST\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("b.yaml"),
            "kind: campaign\nname: New lead\ntemplate: T\ntrigger:\n  type: email_added\nstatuss: active\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("c.yml"),
            "kind: campaign\nname: [unclosed\n",
        )
        .expect("write");
        let errors = load_dir(dir.path(), &env).expect_err("b and c are wrong");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(
            (errors[0].line, errors[0].field.as_deref()),
            (Some(6), Some("statuss"))
        );
        assert!(
            errors[0].to_string().contains("b.yaml:6: field 'statuss'"),
            "{}",
            errors[0]
        );
        assert!(errors[1].file.ends_with("c.yml") && errors[1].line.is_some());
        std::fs::remove_file(dir.path().join("b.yaml")).expect("rm");
        std::fs::remove_file(dir.path().join("c.yml")).expect("rm");
        let bundle = load_dir(dir.path(), &env).expect("loads");
        assert_eq!(
            bundle.credentials[0].1,
            CredentialDoc::Basic {
                name: "sf".into(),
                username: "client-id".into(),
                password: "p".into()
            }
        );
        assert_eq!(
            bundle.templates[0].1["url"],
            "https://acme.my.salesforce.com/x"
        );
    }

    fn one_error(yaml: &str) -> String {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(dir.path().join("x.yaml"), yaml).expect("write");
        let errors = load_dir(dir.path(), &env).expect_err("wrong on purpose");
        assert_eq!(errors.len(), 1, "{errors:?}");
        let text = errors[0].to_string();
        let file = dir.path().join("x.yaml");
        text.replace(&file.display().to_string(), "x.yaml")
    }

    #[test]
    fn a_folder_with_only_a_canvas_loads() {
        let dir = tempfile::tempdir().expect("dir");
        let canvas =
            include_str!("../../../examples/salesforce-sales-cloud/lead-score-points-canvas.yaml");
        std::fs::write(dir.path().join("canvas.yaml"), canvas).expect("write");
        let bundle = load_dir(dir.path(), &env).expect("a Canvas alone is a config");
        assert_eq!(bundle.canvases.len(), 1);
        let empty = tempfile::tempdir().expect("dir");
        let errors = load_dir(empty.path(), &env).expect_err("nothing declared");
        assert!(
            errors[0]
                .message
                .contains("'kind: webhook_template', 'credential', 'campaign' or 'canvas'")
        );
    }

    #[test]
    fn an_unknown_trigger_type_lists_the_valid_ones_at_its_line() {
        assert_eq!(
            one_error(
                "kind: campaign\nname: New lead\ntemplate: T\ntrigger:\n  type: email_addedd\n"
            ),
            "x.yaml:5: field 'trigger.type': campaign 'New lead': unknown variant `email_addedd`, \
             expected one of `email_added`, `attribute_changed`, `custom_event`, `purchase`, `api_triggered`"
        );
    }

    #[test]
    fn a_filter_typo_names_the_operator_and_the_valid_ones() {
        assert_eq!(
            one_error(
                "kind: campaign\nname: New lead\ntemplate: T\ntrigger:\n  type: email_added\naudience:\n  attribute: lead_stage\n  equal: Lead\n"
            ),
            "x.yaml:6: field 'audience': campaign 'New lead': filter: unknown operator 'equal' on \
             'lead_stage'; did you mean 'equals'? use one of equals, not_equal, greater_than, \
             less_than, is_blank, exists, is_none_of, contains, matches_regex, before, after"
        );
    }

    #[test]
    fn errors_in_a_later_document_point_at_its_own_lines() {
        assert_eq!(
            one_error(
                "kind: credential\nname: a\ntype: basic\nusername: u\npassword: p\n---\nkind: canvas\nname: C\nentry:\n  trigger:\n    type: email_added\nsteps: []\n"
            ),
            "x.yaml:10: field 'entry.trigger': canvas 'C': unknown field `trigger`, expected one of \
             `triggers`, `audience`, `reentry_seconds`, `max_entries_per_hour`"
        );
    }
}
