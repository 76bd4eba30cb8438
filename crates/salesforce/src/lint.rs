//! The Salesforce-aware template linter: what in a webhook template Salesforce (or any server)
//! would refuse, said before the first send.
//!
//! Templates are Braze Liquid and this crate renders nothing: the caller passes the parts as
//! written and, when the preview rendered, the rendered URL and body. Every template gets two
//! checks, because they are wrong whatever the receiver: header names that a translated page
//! turned into another language (`Autorisierung`), and the documentation's `[insert_…]`
//! placeholders left in. A template whose URL is a Salesforce sObject resource also gets its body
//! keys checked against the object's fields (the org's describe result, else the built-in Lead
//! list): an unknown key rejects the whole record, and a create without LastName or Company fails.

use std::borrow::Cow;

use crate::schema::{FieldInfo, FieldList, SuggestionReason};
use crate::target::{self, Instances, Operation, Target};
use crate::translations;

/// A template's parts, as written, with what the preview rendered when it did.
#[derive(Debug, Clone, Copy)]
pub struct LintInput<'a> {
    /// `POST`, `PATCH`…
    pub method: &'a str,
    /// The URL as written; may contain Liquid.
    pub url_source: &'a str,
    /// The URL rendered for the preview user, when it rendered.
    pub rendered_url: Option<&'a str>,
    /// Header names, and their values as written (Liquid).
    pub headers: &'a [(String, String)],
    pub body: LintBody<'a>,
    pub instances: &'a Instances,
    /// The fields from the org's describe call; `None`, or a list for another object, means the
    /// built-in schema of the URL's object (Lead), or no field checks for an object without one.
    pub fields: Option<&'a FieldList>,
}

/// The request body as the template writes it.
#[derive(Debug, Clone, Copy)]
pub enum LintBody<'a> {
    None,
    /// Braze's "JSON key/value pairs" body: keys and value sources, in template order.
    KeyValue(&'a [(String, String)]),
    /// A raw body as written, and rendered for the preview user when it rendered.
    Raw {
        source: &'a str,
        rendered: Option<&'a str>,
    },
}

/// Where in the template a finding is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    Url,
    /// The header with this name.
    Header(String),
    /// The key/value pair with this key; for a missing field, the key that should be there; in a
    /// raw body, a key that the source does not show (Liquid wrote it).
    BodyKey(String),
    /// A place in the raw body's source: 1-based line, and column in characters.
    Body {
        line: u32,
        column: u32,
    },
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingKind {
    /// A body key (or an upsert's external-id field) the object does not have: `INVALID_FIELD`.
    UnknownField,
    /// A body key naming a field the request cannot set (`Name`, `CreatedDate`):
    /// `INVALID_FIELD_FOR_INSERT_UPDATE`.
    ReadOnlyField,
    /// A create without a required field, or with it empty: `REQUIRED_FIELD_MISSING`.
    MissingRequiredField,
    /// A header name in another language than HTTP's.
    TranslatedHeader,
    /// An `[insert_…]` placeholder from the documentation.
    Placeholder,
    /// The record id in the URL is empty: leadwire refuses to send.
    EmptyRecordId,
}

/// One thing to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub location: Location,
    pub kind: FindingKind,
    pub message: String,
    /// The text to write instead, when there is one (`FirstName`, `Authorization`).
    pub suggestion: Option<String>,
}

/// Every finding for the template: the URL's first, then the headers', then the body's, each in
/// template order.
///
/// A body key written in translation (`Nachname`) does not set the required field it means, but
/// it gets no second finding for that: renaming the key, which its UnknownField finding says,
/// fills the field. MissingRequiredField is for a required field no key names or means.
pub fn lint(input: &LintInput<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (_, text) in placeholders(input.url_source) {
        findings.push(placeholder_finding(Location::Url, text));
    }
    let salesforce = addressed(input);
    let checks = salesforce.as_ref().and_then(|addressed| {
        let object = addressed.target.object()?;
        Some(Checks {
            object,
            operation: &addressed.target.operation,
            fields: FieldList::for_object(object, input.fields),
        })
    });
    if let (Some(addressed), Some(checks)) = (&salesforce, &checks) {
        url_findings(addressed, checks, &mut findings);
    }
    for (name, value) in input.headers {
        if let Some(translation) = translations::translate_header(name) {
            findings.push(Finding {
                location: Location::Header(name.clone()),
                kind: FindingKind::TranslatedHeader,
                message: format!(
                    "'{name}' is {} for '{}'; servers only read the English name",
                    translation.languages_text(),
                    translation.means
                ),
                suggestion: Some(translation.means.to_owned()),
            });
        }
        for (_, text) in placeholders(name).into_iter().chain(placeholders(value)) {
            findings.push(placeholder_finding(Location::Header(name.clone()), text));
        }
    }
    body_findings(input.body, checks.as_ref(), &mut findings);
    findings
}

/// The `[insert_…]` placeholders in `text`: the byte offset and text of each, brackets included.
/// `[insert_` is matched in any case; the name runs to the next `]` and holds no whitespace
/// or `[` (so prose with a stray bracket is not one).
pub fn placeholders(text: &str) -> Vec<(usize, &str)> {
    const OPEN: &[u8] = b"[insert_";
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(relative) = bytes
        .get(at..)
        .and_then(|rest| rest.iter().position(|&b| b == b'['))
    {
        let start = at + relative;
        at = start + 1;
        let opens = bytes
            .get(start..start + OPEN.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(OPEN));
        if !opens {
            continue;
        }
        let name_start = start + OPEN.len();
        let Some(name_length) = bytes[name_start..]
            .iter()
            .position(|&b| b == b']' || b == b'[' || b.is_ascii_whitespace())
        else {
            break;
        };
        let end = name_start + name_length;
        if bytes[end] == b']'
            && let Some(placeholder) = text.get(start..=end)
        {
            found.push((start, placeholder));
            at = end + 1;
        }
    }
    found
}

/// A Salesforce resource the template addresses.
struct Addressed {
    target: Target,
    /// Read from the rendered URL.
    rendered: bool,
    /// Read from a source URL with Liquid after the object's name: what the Liquid renders to
    /// (an id, an external-id field) is unknown, so it is not judged.
    liquid: bool,
}

/// What the body is checked against.
struct Checks<'a> {
    object: &'a str,
    operation: &'a Operation,
    /// `None` for an object with neither a describe result nor a built-in list.
    fields: Option<Cow<'a, FieldList>>,
}

/// Stands for a Liquid block when the source URL is classified; the braces survive URL parsing
/// and decoding, so a segment holding them is known to be Liquid.
const LIQUID: &str = "{{}}";

/// The Salesforce resource: the rendered URL's when there is one; else the source's, if its
/// Liquid comes only after `/sobjects/{Object}`. Placeholders are read as a name so that an
/// unfilled `https://[insert_instance_name].my.salesforce.com` still counts as Salesforce.
fn addressed(input: &LintInput<'_>) -> Option<Addressed> {
    let classify = |url: &str| {
        let url = replace_placeholders(url, "placeholder");
        target::classify(input.method, &url, input.instances)
    };
    if let Some(rendered) = input.rendered_url {
        return Some(Addressed {
            target: classify(rendered)?,
            rendered: true,
            liquid: false,
        });
    }
    let source = input.url_source;
    let Some(first) = first_liquid(source) else {
        return Some(Addressed {
            target: classify(source)?,
            rendered: false,
            liquid: false,
        });
    };
    // The object's segment must be whole before the first Liquid: `…/sobjects/Lead/{{id}}`.
    let before = source.get(..first)?.to_ascii_lowercase();
    let object_starts = before.find("/sobjects/")? + "/sobjects/".len();
    if !before[object_starts..].contains(['/', '?', '#']) {
        return None;
    }
    Some(Addressed {
        target: classify(&replace_liquid(source, LIQUID))?,
        rendered: false,
        liquid: true,
    })
}

fn url_findings(addressed: &Addressed, checks: &Checks<'_>, findings: &mut Vec<Finding>) {
    match &addressed.target.operation {
        Operation::MissingRecordId { .. } if !addressed.liquid => {
            let what = if addressed.rendered {
                "the record id in the URL renders empty for a user without the attribute it reads (the preview user)"
            } else {
                "the URL has no record id"
            };
            findings.push(Finding {
                location: Location::Url,
                kind: FindingKind::EmptyRecordId,
                message: format!(
                    "{what}: for such a user leadwire does not send the request (Salesforce would answer 404 or 405) and logs an abort instead; send it only to users who have the id, or ignore this warning if that is the plan"
                ),
                suggestion: None,
            });
        }
        Operation::Upsert { field, .. } if !field.contains(LIQUID) => {
            let Some(fields) = checks.fields.as_deref() else {
                return;
            };
            if !fields.accepts(field) {
                findings.push(unknown_field(
                    Location::Url,
                    field,
                    checks.object,
                    fields,
                    "Salesforce answers 404 NOT_FOUND (Provided external ID field does not exist \
                     or is not accessible)",
                ));
            }
        }
        _ => {}
    }
}

/// A body key as the checks see it.
struct BodyKey {
    name: String,
    location: Location,
    /// Where it stands in a raw body's source; `usize::MAX` when unknown (orders it last).
    offset: usize,
    /// Its value is `""`, blank or `null`, which Salesforce counts as missing.
    empty: bool,
}

fn body_findings(body: LintBody<'_>, checks: Option<&Checks<'_>>, findings: &mut Vec<Finding>) {
    let keys: Option<Vec<BodyKey>> = match body {
        LintBody::None => Some(Vec::new()),
        LintBody::KeyValue(pairs) => Some(
            pairs
                .iter()
                .map(|(key, value)| BodyKey {
                    name: key.clone(),
                    location: Location::BodyKey(key.clone()),
                    offset: usize::MAX,
                    empty: value.trim().is_empty(),
                })
                .collect(),
        ),
        LintBody::Raw { source, rendered } => raw_keys(source, rendered),
    };
    // Findings with the offset that orders them (key/value pairs keep their own order).
    let mut located: Vec<(usize, Finding)> = Vec::new();
    match body {
        LintBody::None => {}
        LintBody::KeyValue(pairs) => {
            for (index, (key, value)) in pairs.iter().enumerate() {
                if let (Some(checks), Some(body_key)) =
                    (checks, keys.as_ref().and_then(|k| k.get(index)))
                {
                    located.extend(key_finding(body_key, checks).map(|f| (index, f)));
                }
                for (_, text) in placeholders(key).into_iter().chain(placeholders(value)) {
                    let finding = placeholder_finding(Location::BodyKey(key.clone()), text);
                    located.push((index, finding));
                }
            }
        }
        LintBody::Raw { source, .. } => {
            if let Some(checks) = checks {
                for body_key in keys.iter().flatten() {
                    located.extend(key_finding(body_key, checks).map(|f| (body_key.offset, f)));
                }
            }
            for (offset, text) in placeholders(source) {
                let (line, column) = line_column(source, offset);
                located.push((
                    offset,
                    placeholder_finding(Location::Body { line, column }, text),
                ));
            }
        }
    }
    // Stable: a key's own findings keep their order.
    located.sort_by_key(|(offset, _)| *offset);
    let suggested: Vec<String> = located
        .iter()
        .filter(|(_, f)| f.kind == FindingKind::UnknownField)
        .filter_map(|(_, f)| f.suggestion.clone())
        .collect();
    findings.extend(located.into_iter().map(|(_, f)| f));
    if let (Some(checks), Some(keys)) = (checks, keys) {
        missing_required(&keys, &suggested, checks, findings);
    }
}

/// The finding for one body key: unknown, read-only for this request, or a required field sent
/// empty to a create.
fn key_finding(key: &BodyKey, checks: &Checks<'_>) -> Option<Finding> {
    let name = key.name.as_str();
    // `attributes` is the sObject's type tag, which Salesforce allows in any record body; a key
    // that is Liquid, or blank, cannot be judged from the source.
    if name.eq_ignore_ascii_case("attributes") || name.trim().is_empty() || has_liquid(name) {
        return None;
    }
    let fields = checks.fields.as_deref()?;
    let Some(field) = fields.get(name) else {
        if fields.accepts(name) {
            return None;
        }
        return Some(unknown_field(
            key.location.clone(),
            name,
            checks.object,
            fields,
            "Salesforce rejects the whole record (INVALID_FIELD); use the field's API name",
        ));
    };
    if let Some(why) = not_writable(field, checks.object, checks.operation) {
        let instead = match field.name.as_str() {
            "Name" => "; send FirstName and LastName instead",
            "Address" => "; send Street, City, State, PostalCode and Country instead",
            _ => "",
        };
        return Some(Finding {
            location: key.location.clone(),
            kind: FindingKind::ReadOnlyField,
            message: format!(
                "'{name}' {why}: Salesforce rejects the whole record \
                 (INVALID_FIELD_FOR_INSERT_UPDATE){instead}"
            ),
            suggestion: None,
        });
    }
    let creates = matches!(checks.operation, Operation::Create { .. });
    if creates && field.required_on_create && key.empty {
        return Some(Finding {
            location: key.location.clone(),
            kind: FindingKind::MissingRequiredField,
            message: format!(
                "{} needs {} to be created, and the body sends it empty (REQUIRED_FIELD_MISSING)",
                checks.object, field.name
            ),
            suggestion: None,
        });
    }
    None
}

/// Why the request cannot set `field`, if it cannot. An upsert may create or update, so it needs
/// a field that both allow.
fn not_writable(field: &FieldInfo, object: &str, operation: &Operation) -> Option<String> {
    let read_only = || format!("is read-only on {object}");
    match operation {
        Operation::Create { .. } if !field.createable => Some(read_only()),
        Operation::Update { .. } | Operation::MissingRecordId { .. } if !field.updateable => {
            Some(if field.createable {
                format!("cannot be updated on {object}")
            } else {
                read_only()
            })
        }
        Operation::Upsert { .. } => match (field.createable, field.updateable) {
            (false, false) => Some(read_only()),
            (true, false) => Some(format!(
                "cannot be updated on {object}, so an upsert that finds the record fails"
            )),
            (false, true) => Some(format!(
                "cannot be set on a new {object}, so an upsert that creates one fails"
            )),
            (true, true) => None,
        },
        _ => None,
    }
}

/// A required field of a create that no key names (empty values were reported at their key),
/// unless a misnamed key's suggestion is that field.
fn missing_required(
    keys: &[BodyKey],
    suggested: &[String],
    checks: &Checks<'_>,
    findings: &mut Vec<Finding>,
) {
    if !matches!(checks.operation, Operation::Create { .. }) {
        return;
    }
    let Some(fields) = checks.fields.as_deref() else {
        return;
    };
    for field in fields.required_on_create() {
        let named = keys
            .iter()
            .any(|k| k.name.eq_ignore_ascii_case(&field.name));
        let meant = suggested
            .iter()
            .any(|s| s.eq_ignore_ascii_case(&field.name));
        if named || meant {
            continue;
        }
        findings.push(Finding {
            location: Location::BodyKey(field.name.clone()),
            kind: FindingKind::MissingRequiredField,
            message: format!(
                "{} needs {} to be created (REQUIRED_FIELD_MISSING)",
                checks.object, field.name
            ),
            suggestion: Some(field.name.clone()),
        });
    }
}

/// "Salesforce has no field 'X' on Lead: …", saying which field was meant when one was.
fn unknown_field(
    location: Location,
    name: &str,
    object: &str,
    fields: &FieldList,
    otherwise: &str,
) -> Finding {
    let head = format!("Salesforce has no field '{name}' on {object}");
    let (message, suggestion) = match fields.suggestion(name) {
        Some(found) => {
            let message = match &found.reason {
                SuggestionReason::Translation(translation) => format!(
                    "{head}: '{name}' is {} for '{}'",
                    translation.languages_text(),
                    found.field.name
                ),
                _ => format!("{head}: did you mean '{}'?", found.field.name),
            };
            (message, Some(found.field.name.clone()))
        }
        None => match single_underscore_custom(name, fields) {
            Some(fixed) => (
                format!(
                    "{head}: custom field names end in '__c', two underscores: did you mean '{fixed}'?"
                ),
                Some(fixed),
            ),
            None => (format!("{head}: {otherwise}"), None),
        },
    };
    Finding {
        location,
        kind: FindingKind::UnknownField,
        message,
        suggestion,
    }
}

/// `Lead_Stage_c` → `Lead_Stage__c`, when that is a name the list accepts.
fn single_underscore_custom(name: &str, fields: &FieldList) -> Option<String> {
    let split = name.len().checked_sub(2)?;
    let (stem, suffix) = (name.get(..split)?, name.get(split..)?);
    let fixed = format!("{stem}__c");
    (suffix.eq_ignore_ascii_case("_c") && !stem.ends_with('_') && fields.accepts(&fixed))
        .then_some(fixed)
}

fn placeholder_finding(location: Location, text: &str) -> Finding {
    let name = text
        .get("[insert_".len()..text.len().saturating_sub(1))
        .map(translations::fold)
        .unwrap_or_default();
    let what = match name.as_str() {
        "instancename" | "instance" | "mydomain" | "mydomainname" | "domain" => {
            "your My Domain name, as in https://acme.my.salesforce.com"
        }
        "clientid" | "consumerkey" => {
            "the connected app's consumer key (its client_id: Setup > App Manager > the app > \
             View > Manage Consumer Details)"
        }
        "clientsecret" | "consumersecret" => {
            "the connected app's consumer secret (its client_secret, on the same page as the key)"
        }
        _ => "your own value",
    };
    Finding {
        location,
        kind: FindingKind::Placeholder,
        message: format!("'{text}' is the documentation's placeholder: replace it with {what}"),
        suggestion: None,
    }
}

/// The raw body's top-level keys: from the rendered body when there is one (Liquid may write
/// keys), else from the source, parsed as JSON or, when Liquid stands where JSON cannot have it
/// (`"Score": {{score}}`), scanned. Located in the source when it shows them. `None` when the
/// body is not a JSON object: nothing to check.
fn raw_keys(source: &str, rendered: Option<&str>) -> Option<Vec<BodyKey>> {
    let scanned = scan_keys(source);
    let parsed = serde_json::from_str::<serde_json::Value>(rendered.unwrap_or(source))
        .ok()
        .and_then(|value| match value {
            serde_json::Value::Object(map) => Some(map),
            _ => None,
        });
    let located = |name: &str, offset: Option<usize>| match offset {
        Some(offset) => {
            let (line, column) = line_column(source, offset);
            (Location::Body { line, column }, offset)
        }
        None => (Location::BodyKey(name.to_owned()), usize::MAX),
    };
    let Some(map) = parsed else {
        if rendered.is_some() {
            return None;
        }
        return scanned.map(|keys| {
            keys.into_iter()
                .map(|(name, offset)| {
                    let (location, offset) = located(&name, Some(offset));
                    BodyKey {
                        name,
                        location,
                        offset,
                        empty: false,
                    }
                })
                .collect()
        });
    };
    let scanned = scanned.unwrap_or_default();
    let mut used = vec![false; scanned.len()];
    let keys = map
        .iter()
        .map(|(name, value)| {
            let index = scanned
                .iter()
                .enumerate()
                .position(|(i, (scanned_name, _))| !used[i] && scanned_name == name);
            if let Some(i) = index {
                used[i] = true;
            }
            let (location, offset) = located(name, index.map(|i| scanned[i].1));
            let empty = match value {
                serde_json::Value::Null => true,
                serde_json::Value::String(text) => text.trim().is_empty(),
                _ => false,
            };
            BodyKey {
                name: name.clone(),
                location,
                offset,
                empty,
            }
        })
        .collect();
    Some(keys)
}

/// The top-level keys of the JSON object `source` writes, with the byte offset of each key's
/// opening quote. Liquid blocks are skipped wherever they stand, strings included (`"{{ x |
/// default: "y" }}"`). `None` when the text outside Liquid is not one object.
fn scan_keys(source: &str) -> Option<Vec<(String, usize)>> {
    let bytes = source.as_bytes();
    let mut keys = Vec::new();
    let mut depth = 0usize;
    let mut objects = 0;
    let mut at = 0;
    while at < bytes.len() {
        if let Some(end) = liquid_end(source, at) {
            at = end;
            continue;
        }
        match bytes[at] {
            b'"' => {
                let end = string_end(source, at)?;
                let rest = &source[end..];
                let is_key = depth == 1 && rest.trim_start().starts_with(':');
                if is_key {
                    let written = &source[at..end];
                    let name = serde_json::from_str::<String>(written).unwrap_or_else(|_| {
                        written
                            .get(1..written.len() - 1)
                            .unwrap_or_default()
                            .to_owned()
                    });
                    keys.push((name, at));
                }
                at = end;
            }
            b'{' | b'[' => {
                if depth == 0 {
                    objects += 1;
                    if bytes[at] == b'[' || objects > 1 {
                        return None;
                    }
                }
                depth += 1;
                at += 1;
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                at += 1;
            }
            byte if byte.is_ascii_whitespace() => at += 1,
            _ if depth == 0 => return None,
            _ => at += 1,
        }
    }
    (objects == 1).then_some(keys)
}

/// The offset just after the Liquid block starting at `at`, if one starts there.
fn liquid_end(text: &str, at: usize) -> Option<usize> {
    let rest = text.get(at..)?;
    let close = if rest.starts_with("{{") {
        "}}"
    } else if rest.starts_with("{%") {
        "%}"
    } else {
        return None;
    };
    Some(match rest[2..].find(close) {
        Some(position) => at + 2 + position + 2,
        None => text.len(),
    })
}

/// The offset just after the JSON string opening at `at`; `None` when it never closes.
fn string_end(text: &str, at: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut position = at + 1;
    while position < bytes.len() {
        if let Some(end) = liquid_end(text, position) {
            position = end;
            continue;
        }
        match bytes[position] {
            b'\\' => position += 2,
            b'"' => return Some(position + 1),
            _ => position += 1,
        }
    }
    None
}

fn has_liquid(text: &str) -> bool {
    first_liquid(text).is_some()
}

fn first_liquid(text: &str) -> Option<usize> {
    [text.find("{{"), text.find("{%")]
        .into_iter()
        .flatten()
        .min()
}

/// `text` with every `[insert_…]` placeholder replaced by `with`.
fn replace_placeholders(text: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, found) in placeholders(text) {
        out.push_str(&text[at..start]);
        out.push_str(with);
        at = start + found.len();
    }
    out.push_str(&text[at..]);
    out
}

/// `text` with every Liquid block replaced by `with`.
fn replace_liquid(text: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(start) = text.get(at..).and_then(first_liquid).map(|p| at + p) {
        out.push_str(&text[at..start]);
        out.push_str(with);
        at = liquid_end(text, start).unwrap_or(text.len());
    }
    out.push_str(text.get(at..).unwrap_or_default());
    out
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    let column = before[line_start..].chars().count() + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::FieldList;

    const CREATE: &str = "https://acme.my.salesforce.com/services/data/v60.0/sobjects/Lead/";
    const RECORD: &str =
        "https://acme.my.salesforce.com/services/data/v60.0/sobjects/Lead/00Q5e00000AbCdEFGH";

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    struct Case<'a> {
        method: &'a str,
        url: &'a str,
        rendered: Option<&'a str>,
        headers: Vec<(String, String)>,
        fields: Option<&'a FieldList>,
    }

    fn case<'a>(method: &'a str, url: &'a str) -> Case<'a> {
        Case {
            method,
            url,
            rendered: Some(url),
            headers: Vec::new(),
            fields: None,
        }
    }

    impl Case<'_> {
        fn run(&self, body: LintBody<'_>) -> Vec<Finding> {
            let instances = Instances::default();
            lint(&LintInput {
                method: self.method,
                url_source: self.url,
                rendered_url: self.rendered,
                headers: &self.headers,
                body,
                instances: &instances,
                fields: self.fields,
            })
        }
    }

    /// (location, kind, suggestion) of each finding.
    fn summary(findings: &[Finding]) -> Vec<(Location, FindingKind, Option<&str>)> {
        findings
            .iter()
            .map(|f| (f.location.clone(), f.kind, f.suggestion.as_deref()))
            .collect()
    }

    fn key(name: &str) -> Location {
        Location::BodyKey(name.to_owned())
    }

    #[test]
    fn placeholder_offsets() {
        assert_eq!(
            placeholders("a[insert_x]b[INSERT_Client_ID]"),
            vec![(1, "[insert_x]"), (12, "[INSERT_Client_ID]")]
        );
        let text = "é [insert_instance_name].my";
        assert_eq!(placeholders(text), vec![(3, "[insert_instance_name]")]);
        assert_eq!(placeholders("[[insert_a]"), vec![(1, "[insert_a]")]);
        assert_eq!(placeholders("[insert_a b]"), vec![]);
        assert_eq!(placeholders("[insert_open"), vec![]);
        assert_eq!(placeholders("[insert a]"), vec![]);
        assert_eq!(placeholders("[insert_]"), vec![(0, "[insert_]")]);
        assert_eq!(placeholders(""), vec![]);
    }

    #[test]
    fn braze_english_template_is_clean() {
        let body = pairs(&[
            ("firstName", "{{${first_name}}}"),
            ("lastName", "{{${last_name}}}"),
            ("email", "{{${email_address}}}"),
            ("company", "{{custom_attribute.${company}}}"),
        ]);
        let mut c = case("POST", CREATE);
        c.headers = pairs(&[
            ("Authorization", "Bearer {{result.access_token}}"),
            ("Content-Type", "application/json"),
        ]);
        assert_eq!(c.run(LintBody::KeyValue(&body)), vec![]);
    }

    #[test]
    fn translated_keys_name_the_field_and_fill_the_required_one() {
        let body = pairs(&[("Vorname", "x"), ("Nachname", "y"), ("Compnay", "z")]);
        let findings = case("POST", CREATE).run(LintBody::KeyValue(&body));
        assert_eq!(
            summary(&findings),
            vec![
                (key("Vorname"), FindingKind::UnknownField, Some("FirstName")),
                (key("Nachname"), FindingKind::UnknownField, Some("LastName")),
                (key("Compnay"), FindingKind::UnknownField, Some("Company")),
            ]
        );
        assert_eq!(
            findings[0].message,
            "Salesforce has no field 'Vorname' on Lead: 'Vorname' is German for 'FirstName'"
        );
        assert_eq!(
            findings[2].message,
            "Salesforce has no field 'Compnay' on Lead: did you mean 'Company'?"
        );
    }

    #[test]
    fn unknown_field_without_a_suggestion() {
        let body = pairs(&[
            ("LastName", "x"),
            ("Company", "y"),
            ("favourite_colour", "z"),
        ]);
        let findings = case("POST", CREATE).run(LintBody::KeyValue(&body));
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].suggestion, None);
        assert_eq!(
            findings[0].message,
            "Salesforce has no field 'favourite_colour' on Lead: Salesforce rejects the whole \
             record (INVALID_FIELD); use the field's API name"
        );
    }

    #[test]
    fn required_fields_on_create_only() {
        let body = pairs(&[("FirstName", "x"), ("lastname", " ")]);
        let findings = case("POST", CREATE).run(LintBody::KeyValue(&body));
        assert_eq!(
            summary(&findings),
            vec![
                (key("lastname"), FindingKind::MissingRequiredField, None),
                (
                    key("Company"),
                    FindingKind::MissingRequiredField,
                    Some("Company")
                ),
            ]
        );
        assert_eq!(
            findings[1].message,
            "Lead needs Company to be created (REQUIRED_FIELD_MISSING)"
        );
        let none = case("POST", CREATE).run(LintBody::None);
        assert_eq!(
            summary(&none),
            vec![
                (
                    key("LastName"),
                    FindingKind::MissingRequiredField,
                    Some("LastName")
                ),
                (
                    key("Company"),
                    FindingKind::MissingRequiredField,
                    Some("Company")
                ),
            ]
        );
        assert_eq!(case("PATCH", RECORD).run(LintBody::KeyValue(&body)), vec![]);
    }

    #[test]
    fn custom_fields() {
        let lead_stage = pairs(&[("Lead_Stage__c", "MQL")]);
        assert_eq!(
            case("PATCH", RECORD).run(LintBody::KeyValue(&lead_stage)),
            vec![]
        );
        let one_underscore = pairs(&[("Lead_Stage_c", "MQL")]);
        let findings = case("PATCH", RECORD).run(LintBody::KeyValue(&one_underscore));
        assert_eq!(findings[0].suggestion.as_deref(), Some("Lead_Stage__c"));
        assert!(
            findings[0].message.contains("two underscores"),
            "{}",
            findings[0].message
        );

        // With the org's describe, only its custom fields exist.
        let org = FieldList::from_describe(&serde_json::json!({
            "name": "Lead",
            "fields": [
                {"name": "LastName", "createable": true, "updateable": true,
                 "nillable": false, "defaultedOnCreate": false},
                {"name": "Lead_Stage__c", "createable": true, "updateable": true, "nillable": true}
            ]
        }))
        .expect("describe");
        let mut c = case("PATCH", RECORD);
        c.fields = Some(&org);
        assert_eq!(c.run(LintBody::KeyValue(&lead_stage)), vec![]);
        let typo = pairs(&[("Lead_Stge__c", "MQL"), ("Score__c", "1")]);
        assert_eq!(
            summary(&c.run(LintBody::KeyValue(&typo))),
            vec![
                (
                    key("Lead_Stge__c"),
                    FindingKind::UnknownField,
                    Some("Lead_Stage__c")
                ),
                (key("Score__c"), FindingKind::UnknownField, None),
            ]
        );
        // A describe of another object is not used for Lead.
        let contact = FieldList::from_describe(&serde_json::json!({
            "name": "Contact", "fields": [{"name": "LastName"}]
        }))
        .expect("describe");
        c.fields = Some(&contact);
        assert_eq!(c.run(LintBody::KeyValue(&typo)), vec![]);
    }

    #[test]
    fn read_only_fields() {
        let body = pairs(&[
            ("Name", "Ada Lovelace"),
            ("LastName", "L"),
            ("Company", "C"),
        ]);
        let findings = case("POST", CREATE).run(LintBody::KeyValue(&body));
        assert_eq!(
            summary(&findings),
            vec![(key("Name"), FindingKind::ReadOnlyField, None)]
        );
        assert!(findings[0].message.contains("FirstName and LastName"));
    }

    #[test]
    fn headers_and_placeholders_apply_to_every_template() {
        let mut c = case("POST", "https://hooks.example.com/in?k=[insert_api_key]");
        c.headers = pairs(&[
            ("Autorisierung", "Bearer [insert_token]"),
            ("Content-Type", "application/json"),
        ]);
        // Not Salesforce: the German body key is somebody else's business.
        let body = pairs(&[("Vorname", "[insert_first_name]")]);
        let findings = c.run(LintBody::KeyValue(&body));
        assert_eq!(
            summary(&findings),
            vec![
                (Location::Url, FindingKind::Placeholder, None),
                (
                    Location::Header("Autorisierung".into()),
                    FindingKind::TranslatedHeader,
                    Some("Authorization")
                ),
                (
                    Location::Header("Autorisierung".into()),
                    FindingKind::Placeholder,
                    None
                ),
                (key("Vorname"), FindingKind::Placeholder, None),
            ]
        );
        assert_eq!(
            findings[1].message,
            "'Autorisierung' is German for 'Authorization'; servers only read the English name"
        );
        assert_eq!(
            findings[0].message,
            "'[insert_api_key]' is the documentation's placeholder: replace it with your own value"
        );
    }

    #[test]
    fn placeholder_messages_say_what_goes_there() {
        let url =
            "https://[insert_instance_name].my.salesforce.com/services/data/v60.0/sobjects/Lead/";
        let mut c = case("POST", url);
        c.rendered = None;
        c.headers = pairs(&[(
            "Authorization",
            "client_id=[insert_client_id]&client_secret=[insert_client_secret]",
        )]);
        let body = pairs(&[("LastName", "x"), ("Company", "y")]);
        let findings = c.run(LintBody::KeyValue(&body));
        let messages: Vec<&str> = findings.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(messages[0].ends_with("your My Domain name, as in https://acme.my.salesforce.com"));
        assert!(messages[1].contains("consumer key"));
        assert!(messages[2].contains("consumer secret"));
        // The unfilled host still counts as Salesforce: the body is checked.
        let body = pairs(&[("Nachname", "x")]);
        assert!(
            c.run(LintBody::KeyValue(&body))
                .iter()
                .any(|f| f.kind == FindingKind::UnknownField)
        );
    }

    #[test]
    fn empty_record_id() {
        let url = "https://acme.my.salesforce.com/services/data/v60.0/sobjects/Lead/{{${user_id}}}";
        let mut c = case("PATCH", url);
        c.rendered = Some(CREATE);
        let body = pairs(&[("Lead_Stage__c", "MQL")]);
        let findings = c.run(LintBody::KeyValue(&body));
        assert_eq!(
            summary(&findings),
            vec![(Location::Url, FindingKind::EmptyRecordId, None)]
        );
        assert_eq!(
            findings[0].message,
            "the record id in the URL renders empty for a user without the attribute it reads (the \
             preview user): for such a user leadwire does not send the request (Salesforce would \
             answer 404 or 405) and logs an abort instead; send it only to users who have the id, \
             or ignore this warning if that is the plan"
        );
        // Not rendered: Liquid in the id may render anything, so no finding, but the body is
        // still a Lead's.
        c.rendered = None;
        assert_eq!(c.run(LintBody::KeyValue(&body)), vec![]);
        let translated = pairs(&[("Nachname", "x")]);
        assert_eq!(
            summary(&c.run(LintBody::KeyValue(&translated))),
            vec![(key("Nachname"), FindingKind::UnknownField, Some("LastName"))]
        );
        // Written without an id at all.
        let mut c = case("PATCH", CREATE);
        c.rendered = None;
        let findings = c.run(LintBody::KeyValue(&body));
        assert_eq!(findings[0].kind, FindingKind::EmptyRecordId);
        assert!(findings[0].message.starts_with("the URL has no record id"));
    }

    #[test]
    fn liquid_before_the_object_means_no_salesforce_checks() {
        let body = pairs(&[("Nachname", "x")]);
        for url in [
            "https://{{instance}}.my.salesforce.com/services/data/v60.0/sobjects/Lead/",
            "{{base_url}}/sobjects/Lead/",
            "https://acme.my.salesforce.com/services/data/v60.0/sobjects/{{object}}/",
            "https://acme.my.salesforce.com/services/data/v60.0/sobjects/Le{{x}}/",
        ] {
            let mut c = case("POST", url);
            c.rendered = None;
            assert_eq!(c.run(LintBody::KeyValue(&body)), vec![], "{url}");
        }
        // The rendered URL decides when there is one.
        let mut c = case("POST", "{{base_url}}/sobjects/Lead/");
        c.rendered = Some(CREATE);
        assert_eq!(c.run(LintBody::KeyValue(&body)).len(), 2);
        c.rendered = Some("https://example.com/services/data/v60.0/sobjects/Lead/");
        assert_eq!(c.run(LintBody::KeyValue(&body)), vec![]);
    }

    #[test]
    fn upsert_field_in_the_url() {
        let base = "https://acme.my.salesforce.com/services/data/v60.0/sobjects/Lead";
        let body = pairs(&[("LastName", "x")]);
        let good = format!("{base}/Email/a@b.c");
        assert_eq!(case("PATCH", &good).run(LintBody::KeyValue(&body)), vec![]);
        let custom = format!("{base}/Leadwire_Key__c/k1");
        assert_eq!(
            case("PATCH", &custom).run(LintBody::KeyValue(&body)),
            vec![]
        );
        let typo = format!("{base}/Emial/a@b.c");
        let findings = case("PATCH", &typo).run(LintBody::KeyValue(&body));
        assert_eq!(
            summary(&findings),
            vec![(Location::Url, FindingKind::UnknownField, Some("Email"))]
        );
        let unknown = format!("{base}/Zzzzzz/1");
        let findings = case("PATCH", &unknown).run(LintBody::KeyValue(&body));
        assert!(
            findings[0].message.contains("404 NOT_FOUND"),
            "{}",
            findings[0].message
        );
        // The field from Liquid is not judged.
        let liquid = format!("{base}/{{{{key_field}}}}/{{{{key}}}}");
        let mut c = case("PATCH", &liquid);
        c.rendered = None;
        assert_eq!(c.run(LintBody::KeyValue(&body)), vec![]);
    }

    #[test]
    fn raw_json_body_keys_are_located() {
        let source = "{\n  \"Vorname\": \"{{${first_name}}}\",\n  \"LastName\": \"x\",\n  \
                      \"Company\": \"\",\n  \"attributes\": {\"type\": \"Lead\", \"Nachname\": 1}\n}";
        let findings = case("POST", CREATE).run(LintBody::Raw {
            source,
            rendered: None,
        });
        assert_eq!(
            summary(&findings),
            vec![
                (
                    Location::Body { line: 2, column: 3 },
                    FindingKind::UnknownField,
                    Some("FirstName")
                ),
                (
                    Location::Body { line: 4, column: 3 },
                    FindingKind::MissingRequiredField,
                    None
                ),
            ]
        );
    }

    #[test]
    fn raw_body_with_liquid_where_json_cannot_have_it() {
        let source = "{% assign n = 3 %}{\"Employees\": {{n}}, \"Titel\": \"{{ t | default: \"CEO\" }}\",\n\
                      \"LastName\": \"[insert_last_name]\", \"{{dyn}}\": 1, \"Company\": \"é\"}";
        let findings = case("POST", CREATE).run(LintBody::Raw {
            source,
            rendered: None,
        });
        assert_eq!(
            summary(&findings),
            vec![
                (
                    Location::Body {
                        line: 1,
                        column: 20
                    },
                    FindingKind::UnknownField,
                    Some("NumberOfEmployees")
                ),
                (
                    Location::Body {
                        line: 1,
                        column: 40
                    },
                    FindingKind::UnknownField,
                    Some("Title")
                ),
                (
                    Location::Body {
                        line: 2,
                        column: 14
                    },
                    FindingKind::Placeholder,
                    None
                ),
            ]
        );
    }

    #[test]
    fn rendered_raw_body_decides_the_keys() {
        // Liquid writes a key the source does not show.
        let source = "{\"LastName\": \"x\", {% if c %}\"Company\": \"{{c}}\"{% else %}\"Firma\": \"-\"{% endif %}}";
        let rendered = "{\"LastName\": \"x\", \"Firma\": \"-\"}";
        let findings = case("POST", CREATE).run(LintBody::Raw {
            source,
            rendered: Some(rendered),
        });
        assert_eq!(
            summary(&findings),
            vec![(
                Location::Body {
                    line: 1,
                    column: 57
                },
                FindingKind::UnknownField,
                Some("Company")
            )]
        );
        let generated = "{\"LastName\": \"x\", \"Company\": \"y\", \"Telefon\": \"1\"}";
        let findings = case("POST", CREATE).run(LintBody::Raw {
            source: "{{ body }}",
            rendered: Some(generated),
        });
        assert_eq!(
            summary(&findings),
            vec![(key("Telefon"), FindingKind::UnknownField, Some("Phone"))]
        );
        // Not an object: nothing to check.
        for rendered in ["[1]", "not json"] {
            let findings = case("POST", CREATE).run(LintBody::Raw {
                source: "{{ body }}",
                rendered: Some(rendered),
            });
            assert_eq!(findings, vec![], "{rendered}");
        }
    }

    #[test]
    fn scanning_keys() {
        assert_eq!(
            scan_keys(r#"{"a": {"b": 1}, "c\"d": [ "e", {"f": 2} ], "g" : "h"}"#),
            Some(vec![("a".into(), 1), ("c\"d".into(), 16), ("g".into(), 43)])
        );
        assert_eq!(scan_keys("[1]"), None);
        assert_eq!(scan_keys("{} {}"), None);
        assert_eq!(scan_keys("x {}"), None);
        assert_eq!(scan_keys("{\"a\": \"open}"), None);
        assert_eq!(scan_keys("{{ body }}"), None);
        assert_eq!(replace_liquid("a{{x}}b{% y %}c{{", "_"), "a_b_c_");
        assert_eq!(line_column("ab\r\ncé\nd", 8), (3, 1));
        assert_eq!(line_column("ab\ncéd", 6), (2, 3));
    }
}
