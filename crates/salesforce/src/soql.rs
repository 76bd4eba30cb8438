//! The lookup that settles a create whose outcome is unknown: `SELECT Id FROM Lead WHERE
//! Email = '…' LIMIT 2`, sent with the create's own authorization before it is retried.
//!
//! SOQL is Salesforce's query language, sent to the org over its REST API (`…/query?q=`);
//! leadwire's own database is reached only through `leadwire-store`.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::target::Target;

/// Whether `name` can stand in a query as an object or field name (no injection through it).
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The object and field a query names must be plain names, so no query text comes in through them.
fn check_names(object: &str, field: &str) -> Result<(), String> {
    match [object, field].into_iter().find(|n| !is_identifier(n)) {
        Some(name) => Err(format!(
            "'{name}' is not a Salesforce object or field name (letters, digits and _)"
        )),
        None => Ok(()),
    }
}

/// A SOQL string literal's content: backslash escapes as Salesforce documents them.
pub fn escape_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

/// `SELECT Id FROM {object} WHERE {field} = '{value}' LIMIT 2`, or why not.
pub fn lookup_query(object: &str, field: &str, value: &str) -> Result<String, String> {
    check_names(object, field)?;
    Ok(format!(
        "SELECT Id FROM {object} WHERE {field} = '{}' LIMIT 2",
        escape_literal(value)
    ))
}

/// One query for many lookups: `SELECT Id, {field} FROM {object} WHERE {field} IN (…)`. The
/// limit leaves room for two matches per value, so a value matched twice is seen as such.
pub fn lookup_many_query(object: &str, field: &str, values: &[String]) -> Result<String, String> {
    check_names(object, field)?;
    let list: Vec<String> = values
        .iter()
        .map(|v| format!("'{}'", escape_literal(v)))
        .collect();
    Ok(format!(
        "SELECT Id, {field} FROM {object} WHERE {field} IN ({}) LIMIT {}",
        list.join(", "),
        values.len().max(1) * 2
    ))
}

/// Splits a many-lookup answer by value (matched case-insensitively, as SOQL's `=` on text is).
pub fn split_lookup_many(
    body: &[u8],
    field: &str,
    values: &[String],
) -> Result<Vec<Lookup>, String> {
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the query answer is not JSON: {e}"))?;
    let records = json
        .get("records")
        .and_then(serde_json::Value::as_array)
        .ok_or("the query answer has no 'records'")?;
    Ok(values
        .iter()
        .map(|value| {
            let wanted = value.to_lowercase();
            let ids: Vec<String> = records
                .iter()
                .filter(|r| {
                    r.as_object().is_some_and(|o| {
                        o.iter().any(|(k, v)| {
                            k.eq_ignore_ascii_case(field)
                                && v.as_str().is_some_and(|s| s.to_lowercase() == wanted)
                        })
                    })
                })
                .filter_map(|r| r.get("Id").and_then(serde_json::Value::as_str))
                .map(str::to_owned)
                .collect();
            match ids.len() {
                0 => Lookup::NotFound,
                1 => Lookup::Found(ids.into_iter().next().unwrap_or_default()),
                _ => Lookup::Several(ids),
            }
        })
        .collect())
}

/// A lookup answer for one value, in the shape a single lookup gets.
pub fn lookup_answer(lookup: &Lookup) -> String {
    let ids: Vec<&str> = match lookup {
        Lookup::NotFound => vec![],
        Lookup::Found(id) => vec![id.as_str()],
        Lookup::Several(ids) => ids.iter().map(String::as_str).collect(),
    };
    serde_json::json!({
        "totalSize": ids.len(),
        "done": true,
        "records": ids.iter().map(|id| serde_json::json!({"Id": id})).collect::<Vec<_>>(),
    })
    .to_string()
}

const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// The query resource URL on the target's instance and API version.
pub fn query_url(target: &Target, soql: &str) -> String {
    target.data_url(&format!(
        "query?q={}",
        utf8_percent_encode(soql, QUERY_VALUE)
    ))
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    NotFound,
    Found(String),
    /// More than one record has the key: which one the create made cannot be told.
    Several(Vec<String>),
}

/// Reads a query response (`{"totalSize":1,"done":true,"records":[{"Id":"00Q…"}]}`).
pub fn parse_lookup(body: &[u8]) -> Result<Lookup, String> {
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the query answer is not JSON: {e}"))?;
    let records = json
        .get("records")
        .and_then(serde_json::Value::as_array)
        .ok_or("the query answer has no 'records'")?;
    let ids: Vec<String> = records
        .iter()
        .filter_map(|r| r.get("Id").and_then(serde_json::Value::as_str))
        .map(str::to_owned)
        .collect();
    Ok(match ids.len() {
        0 => Lookup::NotFound,
        1 => Lookup::Found(ids.into_iter().next().unwrap_or_default()),
        _ => Lookup::Several(ids),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Instances, classify};

    #[test]
    fn queries_escape_values_and_refuse_odd_names() {
        assert_eq!(
            lookup_query("Lead", "Email", "o'brien@x.example").as_deref(),
            Ok("SELECT Id FROM Lead WHERE Email = 'o\\'brien@x.example' LIMIT 2")
        );
        assert_eq!(escape_literal("a\\b\n"), "a\\\\b\\n");
        assert!(lookup_query("Lead", "Email = '' OR Id", "x").is_err());
        assert!(lookup_query("Lead;", "Email", "x").is_err());
        assert!(is_identifier("Leadwire_Key__c"));
        assert!(!is_identifier("_x"));
    }

    #[test]
    fn query_url_is_on_the_targets_instance() {
        let t = classify(
            "POST",
            "https://acme.my.salesforce.com/services/data/v60.0/sobjects/Lead/",
            &Instances::default(),
        )
        .expect("salesforce");
        assert_eq!(
            query_url(&t, "SELECT Id FROM Lead WHERE Email = 'a@b.c' LIMIT 2"),
            "https://acme.my.salesforce.com/services/data/v60.0/query?q=SELECT%20Id%20FROM%20Lead%20WHERE%20Email%20%3D%20%27a%40b.c%27%20LIMIT%202"
        );
    }

    #[test]
    fn many_lookups_in_one_query() {
        let values = vec![
            "a@x.co".to_owned(),
            "b'c@x.co".to_owned(),
            "d@x.co".to_owned(),
        ];
        assert_eq!(
            lookup_many_query("Lead", "Email", &values).as_deref(),
            Ok(
                "SELECT Id, Email FROM Lead WHERE Email IN ('a@x.co', 'b\\'c@x.co', 'd@x.co') LIMIT 6"
            )
        );
        let body = br#"{"records":[{"Id":"1","Email":"A@x.co"},{"Id":"2","Email":"d@x.co"},{"Id":"3","Email":"d@x.co"}]}"#;
        let found = split_lookup_many(body, "Email", &values).expect("parses");
        assert_eq!(
            found,
            vec![
                Lookup::Found("1".into()),
                Lookup::NotFound,
                Lookup::Several(vec!["2".into(), "3".into()])
            ]
        );
        assert_eq!(
            parse_lookup(lookup_answer(&found[0]).as_bytes()),
            Ok(found[0].clone())
        );
        assert_eq!(
            parse_lookup(lookup_answer(&found[1]).as_bytes()),
            Ok(Lookup::NotFound)
        );
    }

    #[test]
    fn lookup_answers() {
        assert_eq!(
            parse_lookup(br#"{"totalSize":0,"done":true,"records":[]}"#),
            Ok(Lookup::NotFound)
        );
        assert_eq!(
            parse_lookup(br#"{"records":[{"attributes":{"type":"Lead"},"Id":"00Q1"}]}"#),
            Ok(Lookup::Found("00Q1".into()))
        );
        assert_eq!(
            parse_lookup(br#"{"records":[{"Id":"a"},{"Id":"b"}]}"#),
            Ok(Lookup::Several(vec!["a".into(), "b".into()]))
        );
        assert!(parse_lookup(b"[]").is_err());
    }
}
