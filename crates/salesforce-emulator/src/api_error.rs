//! Salesforce's REST error model: an HTTP status plus `[{"message","errorCode"[,"fields"]}]`.
//! Pure data: the HTTP shell turns it into a response; the core builds it with Salesforce's exact texts.

use serde::Serialize;

/// One REST error as Salesforce reports it. `fields` is present only on record-level (DML) errors.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: u16,
    pub message: String,
    #[serde(rename = "errorCode")]
    pub error_code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
    /// Extra top-level members some errors carry (the duplicate rule's `duplicateResut`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Box<serde_json::Map<String, serde_json::Value>>>,
}

impl ApiError {
    pub fn request(status: u16, error_code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            error_code,
            fields: None,
            extra: None,
        }
    }

    pub fn record(
        error_code: &'static str,
        message: impl Into<String>,
        fields: Vec<String>,
    ) -> Self {
        ApiError {
            status: 400,
            message: message.into(),
            error_code,
            fields: Some(fields),
            extra: None,
        }
    }

    pub fn invalid_session() -> Self {
        Self::request(401, "INVALID_SESSION_ID", "Session expired or invalid")
    }

    pub fn invalid_auth_header() -> Self {
        Self::request(401, "INVALID_AUTH_HEADER", "INVALID_HEADER_TYPE")
    }

    pub fn request_limit_exceeded() -> Self {
        Self::request(
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        )
    }

    pub fn resource_not_found() -> Self {
        Self::request(404, "NOT_FOUND", "The requested resource does not exist")
    }

    /// What Salesforce says for a record URL whose key is neither an id nor an external-id field.
    pub fn external_id_not_found(key: &str) -> Self {
        Self::request(
            404,
            "NOT_FOUND",
            format!("Provided external ID field does not exist or is not accessible: {key}"),
        )
    }

    pub fn entity_is_deleted() -> Self {
        ApiError {
            status: 404,
            ..Self::record("ENTITY_IS_DELETED", "entity is deleted", Vec::new())
        }
    }

    pub fn malformed_id(object_label: &str, value: &str) -> Self {
        Self::record(
            "MALFORMED_ID",
            format!("{object_label} ID: id value of incorrect type: {value}"),
            vec!["Id".to_owned()],
        )
    }

    pub fn method_not_allowed(method: &str, allowed: &str) -> Self {
        Self::request(
            405,
            "METHOD_NOT_ALLOWED",
            format!("HTTP Method '{method}' not allowed. Allowed are {allowed}"),
        )
    }

    pub fn json_parser(message: impl Into<String>) -> Self {
        Self::request(400, "JSON_PARSER_ERROR", message)
    }

    pub fn invalid_field(message: impl Into<String>) -> Self {
        Self::request(400, "INVALID_FIELD", message)
    }

    pub fn no_such_column(field_as_sent: &str, object: &str) -> Self {
        Self::invalid_field(format!(
            "No such column '{field_as_sent}' on sobject of type {object}"
        ))
    }

    /// Inside sObject Collections results the same error is written with `statusCode`.
    pub fn to_collection_error(&self) -> serde_json::Value {
        serde_json::json!({
            "statusCode": self.error_code,
            "message": self.message,
            "fields": self.fields.clone().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_request_errors_without_fields_and_record_errors_with() {
        let session = serde_json::to_value([ApiError::invalid_session()]).expect("serialisable");
        assert_eq!(
            session,
            serde_json::json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
        );
        let deleted = serde_json::to_value([ApiError::entity_is_deleted()]).expect("serialisable");
        assert_eq!(
            deleted,
            serde_json::json!([{"message": "entity is deleted", "errorCode": "ENTITY_IS_DELETED", "fields": []}])
        );
    }
}
