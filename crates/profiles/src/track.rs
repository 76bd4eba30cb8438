//! `/users/track` bodies parsed into typed objects. Each object is validated on its own: a bad one
//! becomes a [`MinorError`] (array, index, what is wrong) and the others still apply, as in Braze.

use serde::Serialize;
use serde_json::{Map, Value as Json};

use crate::identifier::{Identifier, UserAlias};
use crate::profile::is_standard_attribute;

/// Braze's per-request cap for each of attributes, events and purchases.
pub const MAX_OBJECTS_PER_KIND: usize = 75;
/// Custom attribute keys and string values are capped at 255 characters (longer strings truncated).
pub const MAX_STRING_CHARS: usize = 255;
/// Nested objects and arrays of objects are capped at 100 KB.
pub const MAX_NESTED_BYTES: usize = 100 * 1024;
/// Simple arrays keep at most this many values (Braze's default), dropping the oldest.
pub const MAX_ARRAY_ITEMS: usize = 25;

/// A request-level error: nothing in the request was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrackError {
    #[error(
        "the request body must be a JSON object with 'attributes', 'events' and/or 'purchases' arrays"
    )]
    NotAnObject,
    #[error("'{0}' must be an array of objects")]
    NotAnArray(&'static str),
    #[error("Max Input Length Exceeded")]
    TooMany { kind: &'static str, count: usize },
    #[error("the request has no attributes, events or purchases")]
    Empty,
}

/// A non-fatal error about one object: `{"type": message, "input_array": "attributes", "index": 0}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MinorError {
    #[serde(rename = "type")]
    pub message: String,
    pub input_array: &'static str,
    pub index: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AttrOp {
    Set(Json),
    /// `null`: remove the attribute.
    Remove,
    /// `{"inc": n}`.
    Inc(serde_json::Number),
    /// `{"add": [...], "remove": [...]}` on a simple array.
    ArrayEdit {
        add: Vec<Json>,
        remove: Vec<Json>,
    },
    /// `$add` / `$remove` / `$update` on an array of objects.
    ObjectArrayEdit {
        add: Vec<Json>,
        remove: Vec<(String, Json)>,
        update: Vec<(String, Json, Map<String, Json>)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttributeObject {
    pub index: usize,
    pub identifier: Identifier,
    pub update_existing_only: bool,
    pub merge_objects: bool,
    pub ops: Vec<(String, AttrOp)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventObject {
    pub index: usize,
    pub identifier: Identifier,
    pub update_existing_only: bool,
    pub name: String,
    pub time: chrono::DateTime<chrono::Utc>,
    pub properties: Map<String, Json>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PurchaseObject {
    pub index: usize,
    pub identifier: Identifier,
    pub update_existing_only: bool,
    pub product_id: String,
    pub currency: String,
    pub price: f64,
    pub quantity: i64,
    pub time: chrono::DateTime<chrono::Utc>,
    pub properties: Map<String, Json>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedTrack {
    pub attributes: Vec<AttributeObject>,
    pub events: Vec<EventObject>,
    pub purchases: Vec<PurchaseObject>,
    pub errors: Vec<MinorError>,
}

/// Keys of an object that identify or steer it rather than set an attribute.
const CONTROL_KEYS: [&str; 6] = [
    "external_id",
    "braze_id",
    "user_alias",
    "_update_existing_only",
    "_merge_objects",
    "app_id",
];

pub fn parse_track(body: &Json) -> Result<ParsedTrack, TrackError> {
    let Json::Object(root) = body else {
        return Err(TrackError::NotAnObject);
    };
    let mut parsed = ParsedTrack::default();
    let arrays = [
        ("attributes", root.get("attributes")),
        ("events", root.get("events")),
        ("purchases", root.get("purchases")),
    ];
    let mut total = 0;
    for (kind, value) in arrays {
        match value {
            None | Some(Json::Null) => {}
            Some(Json::Array(items)) => {
                if items.len() > MAX_OBJECTS_PER_KIND {
                    return Err(TrackError::TooMany {
                        kind,
                        count: items.len(),
                    });
                }
                total += items.len();
            }
            Some(_) => return Err(TrackError::NotAnArray(kind)),
        }
    }
    if total == 0 {
        return Err(TrackError::Empty);
    }
    let items = |key: &str| {
        root.get(key)
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut nested_invalid = false;
    for (index, item) in items("attributes").iter().enumerate() {
        match parse_attribute_object(index, item, &mut nested_invalid) {
            Ok(obj) => parsed.attributes.push(obj),
            Err(message) => parsed.errors.push(MinorError {
                message,
                input_array: "attributes",
                index,
            }),
        }
    }
    if nested_invalid {
        // Braze: one invalid nested value drops every nested-attribute update in the request.
        for obj in &mut parsed.attributes {
            obj.ops.retain(|(_, op)| !is_nested(op));
        }
    }
    for (index, item) in items("events").iter().enumerate() {
        match parse_event(index, item) {
            Ok(ev) => parsed.events.push(ev),
            Err(message) => parsed.errors.push(MinorError {
                message,
                input_array: "events",
                index,
            }),
        }
    }
    for (index, item) in items("purchases").iter().enumerate() {
        match parse_purchase(index, item) {
            Ok(p) => parsed.purchases.push(p),
            Err(message) => parsed.errors.push(MinorError {
                message,
                input_array: "purchases",
                index,
            }),
        }
    }
    Ok(parsed)
}

fn is_nested(op: &AttrOp) -> bool {
    match op {
        AttrOp::Set(Json::Object(_)) | AttrOp::ObjectArrayEdit { .. } => true,
        AttrOp::Set(Json::Array(items)) => items.iter().any(Json::is_object),
        _ => false,
    }
}

/// The identifier of an object and whether it may only update existing users.
fn identify(obj: &Map<String, Json>, with_email_phone: bool) -> Result<(Identifier, bool), String> {
    let text = |k: &str| -> Result<Option<String>, String> {
        match obj.get(k) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
            Some(_) => Err(format!("'{k}' must be a non-empty string")),
        }
    };
    let alias = match obj.get("user_alias") {
        None | Some(Json::Null) => None,
        Some(Json::Object(a)) => match (a.get("alias_name"), a.get("alias_label")) {
            (Some(Json::String(n)), Some(Json::String(l))) if !n.is_empty() && !l.is_empty() => {
                Some(UserAlias {
                    alias_name: n.clone(),
                    alias_label: l.clone(),
                })
            }
            _ => return Err("'user_alias' needs string 'alias_name' and 'alias_label'".into()),
        },
        Some(_) => {
            return Err(
                "'user_alias' must be an object with 'alias_name' and 'alias_label'".into(),
            );
        }
    };
    let identifier = if let Some(id) = text("external_id")? {
        Identifier::ExternalId(id)
    } else if let Some(id) = text("braze_id")? {
        Identifier::BrazeId(id)
    } else if let Some(a) = alias {
        Identifier::Alias(a)
    } else if let Some(e) = text("email")?.filter(|_| with_email_phone) {
        Identifier::Email(e.to_lowercase())
    } else if let Some(p) = text("phone")?.filter(|_| with_email_phone) {
        Identifier::Phone(p)
    } else {
        return Err(
            "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required".into(),
        );
    };
    let default_existing_only = matches!(identifier, Identifier::Alias(_));
    let existing_only = match obj.get("_update_existing_only") {
        None | Some(Json::Null) => default_existing_only,
        Some(Json::Bool(b)) => *b,
        Some(_) => return Err("'_update_existing_only' must be true or false".into()),
    };
    Ok((identifier, existing_only))
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("attribute names cannot be empty".into());
    }
    if key.starts_with('$') {
        return Err(format!("attribute '{key}' cannot start with '$'"));
    }
    if key.chars().count() > MAX_STRING_CHARS {
        return Err(format!(
            "attribute name '{}…' is longer than {MAX_STRING_CHARS} characters",
            key.chars().take(20).collect::<String>()
        ));
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    s.chars().take(MAX_STRING_CHARS).collect()
}

fn parse_attribute_object(
    index: usize,
    item: &Json,
    nested_invalid: &mut bool,
) -> Result<AttributeObject, String> {
    let Json::Object(obj) = item else {
        return Err("each attribute object must be a JSON object".into());
    };
    let (identifier, update_existing_only) = identify(obj, true)?;
    let merge_objects = matches!(obj.get("_merge_objects"), Some(Json::Bool(true)));
    let mut ops = Vec::new();
    for (key, value) in obj {
        if CONTROL_KEYS.contains(&key.as_str()) {
            continue;
        }
        // An email or phone that identifies the object is not also an update of it.
        if matches!(
            (&identifier, key.as_str()),
            (Identifier::Email(_), "email") | (Identifier::Phone(_), "phone")
        ) {
            continue;
        }
        check_key(key)?;
        let op = if is_standard_attribute(key) {
            parse_standard(key, value)?
        } else {
            match parse_custom(key, value) {
                Ok(op) => op,
                Err(e) if e.nested => {
                    *nested_invalid = true;
                    return Err(e.message);
                }
                Err(e) => return Err(e.message),
            }
        };
        ops.push((key.clone(), op));
    }
    let _ = index;
    Ok(AttributeObject {
        index,
        identifier,
        update_existing_only,
        merge_objects,
        ops,
    })
}

fn parse_standard(key: &str, value: &Json) -> Result<AttrOp, String> {
    if value.is_null() {
        return Ok(AttrOp::Remove);
    }
    let Json::String(s) = value else {
        if key == "subscription_groups" || key == "push_tokens" || key == "current_location" {
            return Ok(AttrOp::Set(value.clone()));
        }
        return Err(format!("'{key}' must be a string"));
    };
    let s = s.trim();
    let ok = match key {
        "email" => s.contains('@') && !s.contains(char::is_whitespace) && s.len() <= 255,
        "dob" => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
        "gender" => matches!(
            s.to_ascii_uppercase().as_str(),
            "M" | "F" | "O" | "N" | "P" | "MALE" | "FEMALE" | "OTHER"
        ),
        "email_subscribe" | "push_subscribe" => {
            matches!(s, "opted_in" | "subscribed" | "unsubscribed")
        }
        "country" => s.len() == 2 && s.chars().all(|c| c.is_ascii_alphabetic()),
        "language" => (2..=3).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphabetic()),
        _ => true,
    };
    if !ok {
        let hint = match key {
            "email" => "an email address",
            "dob" => "a date as YYYY-MM-DD",
            "gender" => "one of M, F, O, N, P",
            "email_subscribe" | "push_subscribe" => "one of opted_in, subscribed, unsubscribed",
            "country" => "an ISO-3166-1 alpha-2 code such as PT",
            "language" => "an ISO-639-1 code such as pt",
            _ => "valid",
        };
        return Err(format!("'{key}' must be {hint}, got '{s}'"));
    }
    let normalized = match key {
        "email" => s.to_lowercase(),
        "country" => s.to_ascii_uppercase(),
        "language" => s.to_ascii_lowercase(),
        "gender" => s
            .chars()
            .next()
            .map(|c| c.to_ascii_uppercase().to_string())
            .unwrap_or_default(),
        _ => truncate(s),
    };
    Ok(AttrOp::Set(Json::String(normalized)))
}

struct CustomError {
    message: String,
    nested: bool,
}

fn err(message: String) -> CustomError {
    CustomError {
        message,
        nested: false,
    }
}

fn nested_err(message: String) -> CustomError {
    CustomError {
        message,
        nested: true,
    }
}

fn parse_custom(key: &str, value: &Json) -> Result<AttrOp, CustomError> {
    match value {
        Json::Null => Ok(AttrOp::Remove),
        Json::String(s) => Ok(AttrOp::Set(Json::String(truncate(s)))),
        Json::Bool(_) | Json::Number(_) => Ok(AttrOp::Set(value.clone())),
        Json::Array(items) if items.iter().any(Json::is_object) => {
            if !items.iter().all(Json::is_object) {
                return Err(nested_err(format!(
                    "'{key}' mixes objects and other values; an array of objects must hold only objects"
                )));
            }
            check_nested(key, value)?;
            Ok(AttrOp::Set(value.clone()))
        }
        Json::Array(items) => {
            let mut unique: Vec<Json> = Vec::new();
            for item in items {
                let item = match item {
                    Json::String(s) => Json::String(truncate(s)),
                    Json::Array(_) => {
                        return Err(err(format!("'{key}' cannot hold nested arrays")));
                    }
                    other => other.clone(),
                };
                // Re-adding a value moves it to the end.
                unique.retain(|u| u != &item);
                unique.push(item);
            }
            let drop = unique.len().saturating_sub(MAX_ARRAY_ITEMS);
            Ok(AttrOp::Set(Json::Array(unique.split_off(drop))))
        }
        Json::Object(map) => {
            if let Some(inc) = map.get("inc") {
                if map.len() != 1 {
                    return Err(err(format!("'{key}': {{\"inc\": n}} takes no other keys")));
                }
                return match inc {
                    Json::Number(n) => Ok(AttrOp::Inc(n.clone())),
                    _ => Err(err(format!("'{key}': \"inc\" needs a number"))),
                };
            }
            if map.contains_key("add") || map.contains_key("remove") {
                let list = |k: &str| -> Result<Vec<Json>, CustomError> {
                    match map.get(k) {
                        None => Ok(Vec::new()),
                        Some(Json::Array(v)) => Ok(v
                            .iter()
                            .map(|x| {
                                if let Json::String(s) = x {
                                    Json::String(truncate(s))
                                } else {
                                    x.clone()
                                }
                            })
                            .collect()),
                        Some(_) => Err(err(format!("'{key}': \"{k}\" needs an array"))),
                    }
                };
                return Ok(AttrOp::ArrayEdit {
                    add: list("add")?,
                    remove: list("remove")?,
                });
            }
            if map.keys().any(|k| k.starts_with('$')) {
                return parse_object_array_edit(key, map);
            }
            check_nested(key, value)?;
            Ok(AttrOp::Set(convert_times(value)))
        }
    }
}

fn check_nested(key: &str, value: &Json) -> Result<(), CustomError> {
    let size = value.to_string().len();
    if size > MAX_NESTED_BYTES {
        return Err(nested_err(format!(
            "'{key}' is {size} bytes; nested values are limited to {MAX_NESTED_BYTES}"
        )));
    }
    fn walk(key: &str, v: &Json) -> Result<(), CustomError> {
        match v {
            Json::Object(m) => {
                for (k, v) in m {
                    if k.contains(' ') || k.contains('.') || (k.starts_with('$') && k != "$time") {
                        return Err(nested_err(format!(
                            "'{key}': nested key '{k}' cannot contain spaces, '.' or start with '$'"
                        )));
                    }
                    if k.chars().count() > MAX_STRING_CHARS {
                        return Err(nested_err(format!(
                            "'{key}': nested key is longer than {MAX_STRING_CHARS} characters"
                        )));
                    }
                    walk(key, v)?;
                }
                Ok(())
            }
            Json::Array(items) => items.iter().try_for_each(|i| walk(key, i)),
            Json::String(s) if s.chars().count() > MAX_STRING_CHARS => Err(nested_err(format!(
                "'{key}': nested string values are limited to {MAX_STRING_CHARS} characters"
            ))),
            _ => Ok(()),
        }
    }
    walk(key, value)
}

/// `{"$time": "2020-05-28"}` inside nested objects becomes the time string itself.
fn convert_times(value: &Json) -> Json {
    match value {
        Json::Object(m) if m.len() == 1 && m.contains_key("$time") => {
            m.get("$time").cloned().unwrap_or(Json::Null)
        }
        Json::Object(m) => Json::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), convert_times(v)))
                .collect(),
        ),
        Json::Array(items) => Json::Array(items.iter().map(convert_times).collect()),
        other => other.clone(),
    }
}

fn parse_object_array_edit(key: &str, map: &Map<String, Json>) -> Result<AttrOp, CustomError> {
    let mut add = Vec::new();
    let mut remove = Vec::new();
    let mut update = Vec::new();
    for (op, items) in map {
        let Json::Array(items) = items else {
            return Err(nested_err(format!("'{key}': '{op}' needs an array")));
        };
        for item in items {
            let Json::Object(o) = item else {
                return Err(nested_err(format!("'{key}': '{op}' items must be objects")));
            };
            let ident = || -> Result<(String, Json), CustomError> {
                match (o.get("$identifier_key"), o.get("$identifier_value")) {
                    (Some(Json::String(k)), Some(v)) => Ok((k.clone(), v.clone())),
                    _ => Err(nested_err(format!(
                        "'{key}': '{op}' items need '$identifier_key' and '$identifier_value'"
                    ))),
                }
            };
            match op.as_str() {
                "$add" => {
                    check_nested(key, item)?;
                    add.push(convert_times(item));
                }
                "$remove" => remove.push(ident()?),
                "$update" => {
                    let (k, v) = ident()?;
                    let Some(Json::Object(new)) = o.get("$new_object") else {
                        return Err(nested_err(format!(
                            "'{key}': '$update' items need '$new_object'"
                        )));
                    };
                    check_nested(key, &Json::Object(new.clone()))?;
                    let converted = match convert_times(&Json::Object(new.clone())) {
                        Json::Object(m) => m,
                        _ => Map::new(),
                    };
                    update.push((k, v, converted));
                }
                other => {
                    return Err(nested_err(format!(
                        "'{key}': unknown array-of-objects operation '{other}' (use $add, $remove or $update)"
                    )));
                }
            }
        }
    }
    Ok(AttrOp::ObjectArrayEdit {
        add,
        remove,
        update,
    })
}

fn parse_time(value: Option<&Json>, what: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let Some(Json::String(s)) = value else {
        return Err(format!("'{what}' needs 'time' as an ISO 8601 string"));
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        return Ok(t.and_utc());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .ok_or_else(|| format!("'time' {s} is not a valid date"));
    }
    Err(format!(
        "'time' must be ISO 8601 (e.g. 2024-05-28T10:00:00Z), got '{s}'"
    ))
}

fn parse_properties(value: Option<&Json>) -> Result<Map<String, Json>, String> {
    match value {
        None | Some(Json::Null) => Ok(Map::new()),
        Some(Json::Object(props)) => {
            for (k, v) in props {
                if k.is_empty() || k.starts_with('$') || k.chars().count() > MAX_STRING_CHARS {
                    return Err(format!(
                        "property name '{k}' must be 1 to 255 characters and not start with '$'"
                    ));
                }
                if k == "time" || k == "event_name" {
                    return Err(format!("property name '{k}' is reserved"));
                }
                match v {
                    Json::String(s) if s.chars().count() > MAX_STRING_CHARS => {
                        return Err(format!(
                            "property '{k}' is longer than {MAX_STRING_CHARS} characters"
                        ));
                    }
                    Json::Array(_) | Json::Object(_) if v.to_string().len() > MAX_NESTED_BYTES => {
                        return Err(format!(
                            "property '{k}' is larger than {MAX_NESTED_BYTES} bytes"
                        ));
                    }
                    _ => {}
                }
            }
            Ok(props.clone())
        }
        Some(_) => Err("'properties' must be an object".into()),
    }
}

fn parse_event(index: usize, item: &Json) -> Result<EventObject, String> {
    let Json::Object(obj) = item else {
        return Err("each event must be a JSON object".into());
    };
    let (identifier, update_existing_only) = identify(obj, true)?;
    let name = match obj.get("name") {
        Some(Json::String(n)) if !n.trim().is_empty() => n.clone(),
        _ => return Err("event needs a non-empty 'name'".into()),
    };
    let time = parse_time(obj.get("time"), "event")?;
    let properties = parse_properties(obj.get("properties"))?;
    Ok(EventObject {
        index,
        identifier,
        update_existing_only,
        name,
        time,
        properties,
    })
}

fn parse_purchase(index: usize, item: &Json) -> Result<PurchaseObject, String> {
    let Json::Object(obj) = item else {
        return Err("each purchase must be a JSON object".into());
    };
    let (identifier, update_existing_only) = identify(obj, true)?;
    let product_id = match obj.get("product_id") {
        Some(Json::String(p)) if !p.trim().is_empty() => p.clone(),
        _ => return Err("purchase needs a non-empty 'product_id'".into()),
    };
    let currency = match obj.get("currency") {
        Some(Json::String(c)) if c.len() == 3 && c.chars().all(|c| c.is_ascii_alphabetic()) => {
            c.to_ascii_uppercase()
        }
        _ => return Err("purchase needs 'currency' as a three-letter ISO 4217 code".into()),
    };
    let price = obj
        .get("price")
        .and_then(Json::as_f64)
        .ok_or("purchase needs a numeric 'price'")?;
    let quantity = match obj.get("quantity") {
        None => 1,
        Some(q) => q
            .as_i64()
            .filter(|q| (1..=100).contains(q))
            .ok_or("'quantity' must be an integer from 1 to 100")?,
    };
    let time = parse_time(obj.get("time"), "purchase")?;
    let properties = parse_properties(obj.get("properties"))?;
    Ok(PurchaseObject {
        index,
        identifier,
        update_existing_only,
        product_id,
        currency,
        price,
        quantity,
        time,
        properties,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bad_objects_are_minor_errors_and_the_rest_apply() {
        let parsed = parse_track(&json!({
            "attributes": [
                {"external_id": "u1", "first_name": "José"},
                {"first_name": "nobody"},
                {"external_id": "u2", "email": "not-an-email"}
            ]
        }))
        .expect("parses");
        assert_eq!(parsed.attributes.len(), 1);
        assert_eq!(parsed.errors.len(), 2);
        assert_eq!(parsed.errors[0].index, 1);
        assert!(
            parsed.errors[1]
                .message
                .contains("'email' must be an email address"),
            "{:?}",
            parsed.errors[1]
        );
    }

    #[test]
    fn more_than_75_objects_is_fatal() {
        let many: Vec<_> = (0..76)
            .map(|i| json!({"external_id": format!("u{i}")}))
            .collect();
        assert_eq!(
            parse_track(&json!({"attributes": many})),
            Err(TrackError::TooMany {
                kind: "attributes",
                count: 76
            })
        );
    }

    #[test]
    fn aliases_default_to_update_existing_only() {
        let parsed = parse_track(&json!({"attributes": [
            {"user_alias": {"alias_name": "a", "alias_label": "l"}, "x": 1},
            {"user_alias": {"alias_name": "a", "alias_label": "l"}, "_update_existing_only": false, "x": 1},
            {"external_id": "u", "x": 1}
        ]}))
        .expect("parses");
        let flags: Vec<bool> = parsed
            .attributes
            .iter()
            .map(|a| a.update_existing_only)
            .collect();
        assert_eq!(flags, [true, false, false]);
    }

    #[test]
    fn one_invalid_nested_value_drops_all_nested_updates() {
        let parsed = parse_track(&json!({"attributes": [
            {"external_id": "u1", "address": {"city": "Porto"}, "plan": "pro"},
            {"external_id": "u2", "bad": {"has space": 1}}
        ]}))
        .expect("parses");
        assert_eq!(parsed.attributes.len(), 1);
        assert_eq!(
            parsed.attributes[0].ops,
            vec![("plan".to_string(), AttrOp::Set(json!("pro")))]
        );
    }

    #[test]
    fn long_strings_are_truncated_and_arrays_deduplicated() {
        let long = "x".repeat(300);
        let parsed = parse_track(
            &json!({"attributes": [{"external_id": "u", "s": long, "tags": ["a", "b", "a"]}]}),
        )
        .expect("parses");
        let ops = &parsed.attributes[0].ops;
        assert!(matches!(&ops[0].1, AttrOp::Set(Json::String(s)) if s.chars().count() == 255));
        assert_eq!(ops[1].1, AttrOp::Set(json!(["b", "a"])));
    }
}
