//! sObject Collections: up to 200 records in one call (`POST composite/sobjects`, or
//! `PATCH composite/sobjects/{Object}/{ExternalIdField}` for upserts), answered with one
//! SaveResult per record, in order.

use serde_json::{Map, Value};

/// Salesforce's cap on records per collection call.
pub const MAX_RECORDS: usize = 200;

/// The request body: `{"allOrNone": false, "records": [{"attributes": {"type": …}, …}]}`.
/// Each record is the JSON object a single create or upsert would have sent.
pub fn request_body(object: &str, records: &[Map<String, Value>]) -> String {
    let records: Vec<Value> = records
        .iter()
        .map(|fields| {
            let mut record = Map::with_capacity(fields.len() + 1);
            record.insert("attributes".into(), serde_json::json!({ "type": object }));
            for (k, v) in fields {
                if k != "attributes" {
                    record.insert(k.clone(), v.clone());
                }
            }
            Value::Object(record)
        })
        .collect();
    serde_json::json!({"allOrNone": false, "records": records}).to_string()
}

/// One record's SaveResult.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordResult {
    pub success: bool,
    pub id: Option<String>,
    /// `created` on upserts.
    pub created: Option<bool>,
    /// The result as Salesforce sent it (for the activity log and write-back).
    pub raw: Value,
}

impl RecordResult {
    /// The errors as one line: `REQUIRED_FIELD_MISSING: Required fields are missing: [LastName] (LastName)`.
    pub fn error_text(&self) -> String {
        let errors = self.raw.get("errors").and_then(Value::as_array);
        errors
            .map(|list| {
                list.iter()
                    .map(|e| {
                        let code = e.get("statusCode").and_then(Value::as_str).unwrap_or("");
                        let message = e.get("message").and_then(Value::as_str).unwrap_or("");
                        let fields = e
                            .get("fields")
                            .and_then(Value::as_array)
                            .map(|f| {
                                f.iter()
                                    .filter_map(Value::as_str)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            })
                            .unwrap_or_default();
                        if fields.is_empty() {
                            format!("{code}: {message}")
                        } else {
                            format!("{code}: {message} ({fields})")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }
}

/// Reads the answer to a collection call of `expected` records.
pub fn parse_results(body: &[u8], expected: usize) -> Result<Vec<RecordResult>, String> {
    let json: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the collection answer is not JSON: {e}"))?;
    let items = json
        .as_array()
        .ok_or("the collection answer is not a list of results")?;
    if items.len() != expected {
        return Err(format!(
            "the collection answer has {} results for {expected} records",
            items.len()
        ));
    }
    Ok(items
        .iter()
        .map(|item| RecordResult {
            success: item.get("success").and_then(Value::as_bool) == Some(true),
            id: item.get("id").and_then(Value::as_str).map(str::to_owned),
            created: item.get("created").and_then(Value::as_bool),
            raw: item.clone(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_adds_the_type_to_each_record() {
        let mut a = Map::new();
        a.insert("LastName".into(), "Müller".into());
        let body = request_body("Lead", &[a]);
        assert_eq!(
            body,
            r#"{"allOrNone":false,"records":[{"attributes":{"type":"Lead"},"LastName":"Müller"}]}"#
        );
    }

    #[test]
    fn results_map_in_order() {
        let body = br#"[{"id":"00Q1","success":true,"errors":[]},{"success":false,"errors":[{"statusCode":"REQUIRED_FIELD_MISSING","message":"Required fields are missing: [Company]","fields":["Company"]}]}]"#;
        let results = parse_results(body, 2).expect("parses");
        assert!(results[0].success);
        assert_eq!(results[0].id.as_deref(), Some("00Q1"));
        assert!(!results[1].success);
        assert_eq!(
            results[1].error_text(),
            "REQUIRED_FIELD_MISSING: Required fields are missing: [Company] (Company)"
        );
        assert!(parse_results(body, 3).is_err());
        assert!(parse_results(b"{}", 0).is_err());
    }
}
