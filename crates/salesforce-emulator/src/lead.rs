//! Lead records and the rules a write must pass: body parsing (unknown fields, JSON types), read-only
//! fields, required fields (blank counts as missing, on update too), lengths, e-mail, restricted picklists,
//! numeric ranges; and rendering a record the way the REST API returns it.
//!
//! Pure: knows nothing of HTTP, locks, persistence or the API usage limit. Errors are Salesforce's
//! [`ApiError`]s with their exact texts.

use serde_json::{Map, Value};

use crate::api_error::ApiError;
use crate::id::SalesforceId;
use crate::schema::{Computed, FieldDef, FieldIndex, FieldType, LeadSchema};
use crate::timestamp::{Millis, is_salesforce_date, is_salesforce_datetime};

/// A stored Lead. `values` is indexed by [`FieldIndex`]; computed fields stay `Null` there.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadRecord {
    pub id: SalesforceId,
    pub values: Vec<Value>,
    pub created: Millis,
    pub modified: Millis,
    pub deleted: bool,
}

/// Whether a body creates a record or changes an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    Create,
    Update,
}

/// Field values from one request body that passed parsing: known fields, right JSON types, values
/// normalised (blank text is null, numbers parsed, ids in 18-character form).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadChanges {
    entries: Vec<(FieldIndex, Value)>,
}

impl LeadChanges {
    pub fn entries(&self) -> &[(FieldIndex, Value)] {
        &self.entries
    }

    pub fn set(&mut self, field: FieldIndex, value: Value) {
        match self
            .entries
            .iter_mut()
            .find(|(existing, _)| *existing == field)
        {
            Some(entry) => entry.1 = value,
            None => self.entries.push((field, value)),
        }
    }

    pub fn get(&self, field: FieldIndex) -> Option<&Value> {
        self.entries
            .iter()
            .find(|(existing, _)| *existing == field)
            .map(|(_, value)| value)
    }
}

/// Parses a request body as one JSON object, with Salesforce's JSON_PARSER_ERROR texts.
pub fn parse_json_object(raw: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match parse_json(raw)? {
        Value::Object(object) => Ok(object),
        other => Err(ApiError::json_parser(format!(
            "Cannot deserialize instance of Lead from {} value {} or request may be missing a required field at [line:1, column:1]",
            jackson_token(&other),
            jackson_token_text(&other)
        ))),
    }
}

/// Parses any JSON body; an empty body gets Salesforce's "entity body is required" error.
pub fn parse_json(raw: &[u8]) -> Result<Value, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::json_parser(
            "The HTTP entity body is required, but this request has no entity body.",
        ));
    }
    serde_json::from_slice(raw).map_err(|error| {
        let (line, column) = (error.line(), error.column());
        let text = String::from_utf8_lossy(raw);
        let found = text.lines().nth(line.saturating_sub(1)).and_then(|l| l.chars().nth(column.saturating_sub(1)));
        let message = match (error.classify(), found) {
            (serde_json::error::Category::Eof, _) | (_, None) => {
                format!("Unexpected end-of-input: expected close marker for OBJECT at [line:{line}, column:{column}]")
            }
            (_, Some(character)) => format!(
                "Unexpected character ('{character}' (code {})): {} at [line:{line}, column:{column}]",
                u32::from(character),
                jackson_expectation(&error)
            ),
        };
        ApiError::json_parser(message)
    })
}

fn jackson_expectation(error: &serde_json::Error) -> &'static str {
    let text = error.to_string();
    if text.contains("expected `:`") {
        "was expecting a colon to separate field name and value"
    } else if text.contains("expected `,` or `}`") {
        "was expecting comma to separate Object entries"
    } else if text.contains("expected `,` or `]`") {
        "was expecting comma to separate Array entries"
    } else if text.contains("key must be a string") {
        "was expecting double-quote to start field name"
    } else {
        "expected a valid value (number, String, array, object, 'true', 'false' or 'null')"
    }
}

fn jackson_token(value: &Value) -> &'static str {
    match value {
        Value::Null => "VALUE_NULL",
        Value::Bool(true) => "VALUE_TRUE",
        Value::Bool(false) => "VALUE_FALSE",
        Value::Number(number) if number.is_f64() => "VALUE_NUMBER_FLOAT",
        Value::Number(_) => "VALUE_NUMBER_INT",
        Value::String(_) => "VALUE_STRING",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

fn jackson_token_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(_) => "[".to_owned(),
        Value::Object(_) => "{".to_owned(),
        other => other.to_string(),
    }
}

/// 1-based line and column of the value of `key` in the raw body, for Jackson-style messages.
fn value_position(raw: Option<&str>, key: &str) -> (usize, usize) {
    let Some(raw) = raw else { return (1, 1) };
    let quoted = serde_json::to_string(key).unwrap_or_default();
    let Some(key_at) = raw.find(&quoted) else {
        return (1, 1);
    };
    let after_key = &raw[key_at + quoted.len()..];
    let skipped = after_key.len()
        - after_key
            .trim_start_matches(|c: char| c.is_whitespace() || c == ':')
            .len();
    let offset = key_at + quoted.len() + skipped;
    let before = &raw[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Turns a JSON object into changes: the first unknown field, in body order, is `INVALID_FIELD` with the
/// name as sent; a value of the wrong JSON type is `JSON_PARSER_ERROR`; read-only fields are
/// `INVALID_FIELD_FOR_INSERT_UPDATE`. `attributes` is ignored, as Salesforce does.
pub fn parse_changes(
    schema: &LeadSchema,
    body: &Map<String, Value>,
    raw: Option<&str>,
    kind: WriteKind,
) -> Result<LeadChanges, ApiError> {
    let mut changes = LeadChanges::default();
    let mut read_only = Vec::new();
    for (key, value) in body {
        if key == "attributes" {
            continue;
        }
        let Some(index) = schema.lookup(key) else {
            return Err(ApiError::no_such_column(key, "Lead"));
        };
        let field = schema.field(index);
        if field.computed == Some(Computed::Id) {
            if kind == WriteKind::Create {
                return Err(ApiError::invalid_field(
                    "The Id field should not be specified in the sobject data.",
                ));
            }
            // On update the URL names the record; an Id in the body is ignored, as simple clients echo it.
            continue;
        }
        let normalised = normalise_value(field, value).map_err(|expected| {
            let (line, column) = value_position(raw, key);
            ApiError::json_parser(format!(
                "Cannot deserialize instance of {expected} from {} value {} or request may be missing a required field at [line:{line}, column:{column}]",
                jackson_token(value),
                jackson_token_text(value)
            ))
        })?;
        if !field.writable {
            read_only.push(field.name.clone());
            continue;
        }
        changes.set(index, normalised);
    }
    if !read_only.is_empty() {
        return Err(ApiError::record(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            format!(
                "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                read_only.join(", ")
            ),
            read_only,
        ));
    }
    Ok(changes)
}

/// Coerces a JSON value to the field's type the way Salesforce's reader does; `Err` names the type for
/// the JSON_PARSER_ERROR text.
fn normalise_value(field: &FieldDef, value: &Value) -> Result<Value, &'static str> {
    let type_name = field.field_type.describe_name();
    match (field.field_type, value) {
        (_, Value::Null) if field.field_type == FieldType::Boolean => Ok(Value::Bool(false)),
        (_, Value::Null) => Ok(Value::Null),
        (FieldType::Boolean, Value::Bool(_)) => Ok(value.clone()),
        (FieldType::Boolean, _) => Err(type_name),
        (FieldType::Double | FieldType::Currency | FieldType::Int, Value::Number(number)) => {
            if field.field_type == FieldType::Int && !(number.is_i64() || number.is_u64()) {
                return Err(type_name);
            }
            Ok(value.clone())
        }
        (FieldType::Double | FieldType::Currency | FieldType::Int, Value::String(text)) => {
            let trimmed = text.trim();
            if trimmed.is_empty() {
                return Ok(Value::Null);
            }
            if field.field_type == FieldType::Int {
                trimmed
                    .parse::<i64>()
                    .map(Value::from)
                    .map_err(|_| type_name)
            } else {
                let parsed: f64 = trimmed.parse().map_err(|_| type_name)?;
                serde_json::Number::from_f64(parsed)
                    .map(Value::Number)
                    .ok_or(type_name)
            }
        }
        (FieldType::Date, Value::String(text)) if is_salesforce_date(text) => Ok(value.clone()),
        (FieldType::DateTime, Value::String(text)) if is_salesforce_datetime(text) => {
            Ok(value.clone())
        }
        (FieldType::Date | FieldType::DateTime, Value::String(text)) if text.is_empty() => {
            Ok(Value::Null)
        }
        (FieldType::Date | FieldType::DateTime, _) => Err(type_name),
        (_, Value::String(text)) if text.is_empty() => Ok(Value::Null),
        (_, Value::String(_)) => Ok(value.clone()),
        // Salesforce's reader turns scalars into text for text fields.
        (_, Value::Number(number)) => Ok(Value::String(number.to_string())),
        (_, Value::Bool(flag)) => Ok(Value::String(flag.to_string())),
        (_, Value::Array(_) | Value::Object(_)) => Err(type_name),
    }
}

/// Checks the values a write sets, then the record it would produce. `existing` is the record before
/// an update (`None` on create).
pub fn validate_write(
    schema: &LeadSchema,
    changes: &LeadChanges,
    existing: Option<&LeadRecord>,
) -> Result<(), ApiError> {
    // Required fields: blank ("" or whitespace) is missing, on create and on update; all missing ones
    // are listed in schema order.
    let missing: Vec<String> = schema
        .fields()
        .filter(|(_, field)| field.required)
        .filter(|(index, _)| {
            let value = match changes.get(*index) {
                Some(value) => Some(value),
                None => existing.map(|record| &record.values[index.0]),
            };
            value
                .and_then(Value::as_str)
                .is_none_or(|text| text.trim().is_empty())
        })
        .map(|(_, field)| field.name.clone())
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::record(
            "REQUIRED_FIELD_MISSING",
            format!("Required fields are missing: [{}]", missing.join(", ")),
            missing,
        ));
    }
    for (index, value) in changes.entries() {
        check_value(schema.field(*index), value)?;
    }
    check_coordinates(schema, changes, existing)
}

fn check_value(field: &FieldDef, value: &Value) -> Result<(), ApiError> {
    let one_field = || vec![field.name.clone()];
    match value {
        Value::String(text) => {
            let length = text.chars().count();
            if field.field_type.is_text() && field.length > 0 && length > field.length as usize {
                return Err(ApiError::record(
                    "STRING_TOO_LONG",
                    format!(
                        "{}: data value too large: {text} (max length={})",
                        field.label, field.length
                    ),
                    one_field(),
                ));
            }
            match field.field_type {
                FieldType::Email if !is_plausible_email(text) => Err(ApiError::record(
                    "INVALID_EMAIL_ADDRESS",
                    format!("{}: invalid email address: {text}", field.label),
                    one_field(),
                )),
                FieldType::Picklist
                    if field.restricted_picklist
                        && !field.picklist_values.iter().any(|v| v == text) =>
                {
                    Err(restricted_picklist_error(field, text))
                }
                FieldType::Reference => match SalesforceId::parse(text) {
                    Ok(_) => Ok(()),
                    Err(_) => Err(ApiError::record(
                        "MALFORMED_ID",
                        format!("{}: id value of incorrect type: {text}", field.label),
                        one_field(),
                    )),
                },
                _ => Ok(()),
            }
        }
        Value::Number(number) => {
            let as_float = number.as_f64().unwrap_or(f64::NAN);
            let in_range = match (field.name.as_str(), field.field_type) {
                ("Latitude", _) => (-90.0..=90.0).contains(&as_float),
                ("Longitude", _) => (-180.0..=180.0).contains(&as_float),
                (_, FieldType::Int) => as_float.abs() < 10f64.powi(field.length as i32),
                (_, FieldType::Double | FieldType::Currency) => {
                    as_float.abs() < 10f64.powi((field.precision.max(1) - field.scale) as i32)
                }
                _ => true,
            };
            if in_range {
                Ok(())
            } else {
                Err(ApiError::record(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    format!(
                        "{}: value outside of valid range on numeric field: {number}",
                        field.label
                    ),
                    one_field(),
                ))
            }
        }
        Value::Null if field.field_type == FieldType::Picklist && field.restricted_picklist => {
            Ok(())
        }
        _ => Ok(()),
    }
}

fn restricted_picklist_error(field: &FieldDef, value: &str) -> ApiError {
    ApiError::record(
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        format!(
            "{}: bad value for restricted picklist field: {value}",
            field.label
        ),
        vec![field.name.clone()],
    )
}

/// Latitude and Longitude only make sense together.
fn check_coordinates(
    schema: &LeadSchema,
    changes: &LeadChanges,
    existing: Option<&LeadRecord>,
) -> Result<(), ApiError> {
    let (Some(latitude), Some(longitude)) =
        (schema.index_of("Latitude"), schema.index_of("Longitude"))
    else {
        return Ok(());
    };
    if changes.get(latitude).is_none() && changes.get(longitude).is_none() {
        return Ok(());
    }
    let after = |index: FieldIndex| {
        changes
            .get(index)
            .or_else(|| existing.map(|record| &record.values[index.0]))
            .is_some_and(|v| !v.is_null())
    };
    match (after(latitude), after(longitude)) {
        (true, false) => Err(ApiError::record(
            "FIELD_INTEGRITY_EXCEPTION",
            "Longitude value is missing : Longitude",
            vec!["Longitude".into()],
        )),
        (false, true) => Err(ApiError::record(
            "FIELD_INTEGRITY_EXCEPTION",
            "Latitude value is missing : Latitude",
            vec!["Latitude".into()],
        )),
        _ => Ok(()),
    }
}

/// Salesforce's exact rule is not published; this rejects what real orgs were seen to reject
/// (`test@testcom`, `@bc.com`).
pub fn is_plausible_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    let labels: Vec<&str> = domain.split('.').collect();
    !local.is_empty()
        && !local.contains('@')
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        && labels.len() >= 2
        && labels
            .iter()
            .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'))
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(char::is_alphabetic))
}

impl LeadRecord {
    /// A new record: defaults first, then the body's values.
    pub fn create(
        schema: &LeadSchema,
        id: SalesforceId,
        changes: &LeadChanges,
        owner: SalesforceId,
        now: Millis,
    ) -> Self {
        let mut values: Vec<Value> = schema
            .fields()
            .map(|(_, field)| {
                if field.is_stored() {
                    field.default_value.clone().unwrap_or(Value::Null)
                } else {
                    Value::Null
                }
            })
            .collect();
        if let Some(owner_index) = schema.index_of("OwnerId") {
            values[owner_index.0] = Value::String(owner.to_string());
        }
        let mut record = LeadRecord {
            id,
            values,
            created: now,
            modified: now,
            deleted: false,
        };
        record.apply(changes, now);
        record
    }

    pub fn apply(&mut self, changes: &LeadChanges, now: Millis) {
        for (index, value) in changes.entries() {
            self.values[index.0] = canonical_reference(value);
        }
        self.modified = now;
    }

    pub fn value(&self, index: FieldIndex) -> &Value {
        &self.values[index.0]
    }
}

/// Reference values are kept in the 18-character form.
fn canonical_reference(value: &Value) -> Value {
    match value.as_str().map(SalesforceId::parse) {
        Some(Ok(id)) if value.as_str().is_some_and(|text| text.len() == 15) => {
            Value::String(id.to_string())
        }
        _ => value.clone(),
    }
}

/// How to render records: which API version the URLs carry and who the running user is.
#[derive(Debug, Clone, Copy)]
pub struct RenderContext<'a> {
    pub api_version: &'a str,
    pub running_user: SalesforceId,
}

impl RenderContext<'_> {
    pub fn record_url(&self, id: &SalesforceId) -> String {
        format!("/services/data/v{}/sobjects/Lead/{id}", self.api_version)
    }

    pub fn attributes(&self, id: &SalesforceId) -> Value {
        serde_json::json!({"type": "Lead", "url": self.record_url(id)})
    }
}

/// The value of one field as the API shows it, computed fields included.
pub fn field_value(
    schema: &LeadSchema,
    record: &LeadRecord,
    index: FieldIndex,
    context: &RenderContext<'_>,
) -> Value {
    let field = schema.field(index);
    let text = |name: &str| {
        schema
            .index_of(name)
            .and_then(|i| record.values[i.0].as_str().map(str::to_owned))
    };
    match field.computed {
        None => record.values[index.0].clone(),
        Some(Computed::Id) => Value::String(record.id.to_string()),
        Some(Computed::IsDeleted) => Value::Bool(record.deleted),
        Some(Computed::Name) => {
            let name = [text("FirstName"), text("LastName")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            if name.is_empty() {
                Value::Null
            } else {
                Value::String(name)
            }
        }
        Some(Computed::Address) => address_value(schema, record),
        Some(Computed::PhotoUrl) => Value::String(format!("/services/images/photo/{}", record.id)),
        Some(Computed::CreatedDate) => Value::String(record.created.to_salesforce_datetime()),
        Some(Computed::LastModifiedDate | Computed::SystemModstamp) => {
            Value::String(record.modified.to_salesforce_datetime())
        }
        Some(Computed::RunningUser) => Value::String(context.running_user.to_string()),
        Some(Computed::AlwaysNull) if field.field_type == FieldType::Boolean => Value::Bool(false),
        Some(Computed::AlwaysNull) => Value::Null,
    }
}

fn address_value(schema: &LeadSchema, record: &LeadRecord) -> Value {
    let parts = [
        ("city", "City"),
        ("country", "Country"),
        ("geocodeAccuracy", "GeocodeAccuracy"),
        ("latitude", "Latitude"),
        ("longitude", "Longitude"),
        ("postalCode", "PostalCode"),
        ("state", "State"),
        ("street", "Street"),
    ];
    let mut address = Map::new();
    let mut any = false;
    for (key, field_name) in parts {
        let value = schema
            .index_of(field_name)
            .map_or(Value::Null, |i| record.values[i.0].clone());
        any |= !value.is_null();
        address.insert(key.to_owned(), value);
    }
    if any {
        Value::Object(address)
    } else {
        Value::Null
    }
}

/// The whole record as `GET sobjects/Lead/{id}` returns it: attributes, then every field, nulls included.
pub fn render_record(
    schema: &LeadSchema,
    record: &LeadRecord,
    context: &RenderContext<'_>,
) -> Value {
    let mut object = Map::with_capacity(schema.len() + 1);
    object.insert("attributes".to_owned(), context.attributes(&record.id));
    for (index, field) in schema.fields() {
        object.insert(
            field.name.clone(),
            field_value(schema, record, index, context),
        );
    }
    Value::Object(object)
}

/// `?fields=A,B`: attributes, the requested fields in canonical case, then `Id`.
pub fn render_selected(
    schema: &LeadSchema,
    record: &LeadRecord,
    selected: &[FieldIndex],
    context: &RenderContext<'_>,
) -> Value {
    let mut object = Map::with_capacity(selected.len() + 2);
    object.insert("attributes".to_owned(), context.attributes(&record.id));
    for index in selected {
        object.insert(
            schema.field(*index).name.clone(),
            field_value(schema, record, *index, context),
        );
    }
    object
        .entry("Id")
        .or_insert_with(|| Value::String(record.id.to_string()));
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::KeyPrefix;

    fn schema() -> LeadSchema {
        LeadSchema::new(&[]).expect("standard schema")
    }

    fn changes(body: Value, kind: WriteKind) -> Result<LeadChanges, ApiError> {
        let object = body.as_object().cloned().unwrap_or_default();
        parse_changes(&schema(), &object, None, kind)
    }

    fn some_id() -> SalesforceId {
        SalesforceId::generate(KeyPrefix::LEAD, *b"8e", 7)
    }

    #[test]
    fn unknown_field_is_reported_as_sent() {
        let error = changes(
            serde_json::json!({"firstName": "Ada", "Vorname": "Ada"}),
            WriteKind::Create,
        )
        .expect_err("must be rejected");
        assert_eq!(error.error_code, "INVALID_FIELD");
        assert_eq!(
            error.message,
            "No such column 'Vorname' on sobject of type Lead"
        );
        assert_eq!(error.fields, None);
    }

    #[test]
    fn required_fields_are_listed_in_order_and_blank_counts_as_missing() {
        let schema = schema();
        let parsed = changes(
            serde_json::json!({"lastName": "  ", "Email": "a@b.co"}),
            WriteKind::Create,
        )
        .expect("parses");
        let error = validate_write(&schema, &parsed, None).expect_err("must be rejected");
        assert_eq!(
            error.message,
            "Required fields are missing: [LastName, Company]"
        );
        assert_eq!(
            error.fields,
            Some(vec!["LastName".to_owned(), "Company".to_owned()])
        );

        let ok = changes(
            serde_json::json!({"LastName": "L", "Company": "C"}),
            WriteKind::Create,
        )
        .expect("parses");
        let record = LeadRecord::create(&schema, some_id(), &ok, some_id(), Millis(0));
        let blank_company =
            changes(serde_json::json!({"company": ""}), WriteKind::Update).expect("parses");
        let error =
            validate_write(&schema, &blank_company, Some(&record)).expect_err("must be rejected");
        assert_eq!(error.message, "Required fields are missing: [Company]");
    }

    #[test]
    fn too_long_values_fail_with_the_label() {
        let schema = schema();
        let long = "x".repeat(81);
        let parsed = changes(
            serde_json::json!({"LastName": long, "Company": "C"}),
            WriteKind::Create,
        )
        .expect("parses");
        let error = validate_write(&schema, &parsed, None).expect_err("must be rejected");
        assert_eq!(error.error_code, "STRING_TOO_LONG");
        assert_eq!(
            error.message,
            format!("Last Name: data value too large: {long} (max length=80)")
        );
        let exact = changes(
            serde_json::json!({"LastName": "x".repeat(80), "Company": "C"}),
            WriteKind::Create,
        )
        .expect("parses");
        assert!(validate_write(&schema, &exact, None).is_ok());
    }

    #[test]
    fn type_mismatches_are_json_parser_errors() {
        let error = changes(
            serde_json::json!({"IsUnreadByOwner": "True"}),
            WriteKind::Update,
        )
        .expect_err("must be rejected");
        assert_eq!(error.error_code, "JSON_PARSER_ERROR");
        assert!(
            error
                .message
                .starts_with("Cannot deserialize instance of boolean from VALUE_STRING value True")
        );
        let error = changes(
            serde_json::json!({"AnnualRevenue": "RevenueTest"}),
            WriteKind::Update,
        )
        .expect_err("must be rejected");
        assert_eq!(error.error_code, "JSON_PARSER_ERROR");
        assert!(
            changes(
                serde_json::json!({"AnnualRevenue": "123123123"}),
                WriteKind::Update
            )
            .is_ok()
        );
    }

    #[test]
    fn read_only_fields_and_id_are_refused() {
        let error = changes(
            serde_json::json!({"Name": "x", "IsConverted": true}),
            WriteKind::Create,
        )
        .expect_err("must be rejected");
        assert_eq!(error.error_code, "INVALID_FIELD_FOR_INSERT_UPDATE");
        assert_eq!(
            error.fields,
            Some(vec!["Name".to_owned(), "IsConverted".to_owned()])
        );
        let error = changes(
            serde_json::json!({"Id": "00Q5f000008AsnDEAS"}),
            WriteKind::Create,
        )
        .expect_err("must be rejected");
        assert_eq!(
            error.message,
            "The Id field should not be specified in the sobject data."
        );
    }

    #[test]
    fn emails_picklists_and_coordinates() {
        let schema = schema();
        let base = serde_json::json!({"LastName": "L", "Company": "C"});
        let with = |key: &str, value: Value| {
            let mut body = base.clone();
            body[key] = value;
            let parsed = changes(body, WriteKind::Create).expect("parses");
            validate_write(&schema, &parsed, None)
        };
        assert_eq!(
            with("Email", "test@testcom".into())
                .expect_err("must be rejected")
                .message,
            "Email: invalid email address: test@testcom"
        );
        assert!(with("Email", "test@test.com".into()).is_ok());
        assert_eq!(
            with("GeocodeAccuracy", "Province".into())
                .expect_err("must be rejected")
                .message,
            "Geocode Accuracy: bad value for restricted picklist field: Province"
        );
        assert!(
            with("Status", "TestStatus".into()).is_ok(),
            "standard Status is not restricted"
        );
        assert_eq!(
            with("Latitude", (-17.3).into())
                .expect_err("must be rejected")
                .message,
            "Longitude value is missing : Longitude"
        );
        assert_eq!(
            with("OwnerId", "0053i000001OtatAA1".into())
                .expect_err("must be rejected")
                .error_code,
            "MALFORMED_ID"
        );
    }

    #[test]
    fn renders_all_fields_with_computed_values() {
        let schema = schema();
        let parsed = changes(serde_json::json!({"firstName": "Ada", "LASTNAME": "Lovelace", "company": "Analytical"}), WriteKind::Create)
            .expect("parses");
        let record = LeadRecord::create(&schema, some_id(), &parsed, some_id(), Millis(0));
        let context = RenderContext {
            api_version: "60.0",
            running_user: some_id(),
        };
        let rendered = render_record(&schema, &record, &context);
        assert_eq!(rendered["Name"], "Ada Lovelace");
        assert_eq!(rendered["FirstName"], "Ada");
        assert_eq!(rendered["Status"], "Open - Not Contacted");
        assert_eq!(rendered["Address"], Value::Null);
        assert_eq!(rendered["IsDeleted"], false);
        assert_eq!(rendered["CreatedDate"], "1970-01-01T00:00:00.000+0000");
        assert_eq!(
            rendered["attributes"]["url"],
            format!("/services/data/v60.0/sobjects/Lead/{}", record.id)
        );
        let first_key = rendered.as_object().and_then(|o| o.keys().next().cloned());
        assert_eq!(first_key.as_deref(), Some("attributes"));
    }

    #[test]
    fn json_syntax_errors_carry_positions() {
        let error =
            parse_json_object(b"{\n  \"Company\": \"TestCompany\"\n  \"LastName\": \"x\"\n}")
                .expect_err("must be rejected");
        assert_eq!(error.error_code, "JSON_PARSER_ERROR");
        assert!(error.message.contains("[line:3"), "{}", error.message);
        let error = parse_json_object(b"").expect_err("must be rejected");
        assert_eq!(
            error.message,
            "The HTTP entity body is required, but this request has no entity body."
        );
    }
}
