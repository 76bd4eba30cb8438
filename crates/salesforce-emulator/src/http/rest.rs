//! The REST data API under `/services/data/`: versions, sObject Lead CRUD, describe, upsert by external
//! id, sObject Collections and the SOQL query endpoint. Each request is authenticated, counted against
//! the daily allocation, and answered with `Sforce-Limit-Info`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::Response;
use axum::routing::{any, get};
use serde_json::{Map, Value, json};

use super::respond;
use super::{AuthenticatedClient, Shared};
use crate::api_error::ApiError;
use crate::id::{IdError, SalesforceId};
use crate::lead::{
    LeadChanges, RenderContext, WriteKind, field_value, parse_changes, parse_json,
    parse_json_object, render_record, render_selected,
};
use crate::limits::UsageReport;
use crate::schema::FieldIndex;
use crate::store::{StoreError, UpsertOutcome};
use crate::timestamp::Millis;

/// Oldest version still served; 7.0–30.0 are retired (410).
const OLDEST_VERSION: u32 = 31;
const NEWEST_VERSION: u32 = 67;
/// Upsert answers 200 + body instead of 204 on update from this version on.
const UPSERT_BODY_SINCE: u32 = 46;
const COLLECTION_LIMIT: usize = 200;
const DUPLICATE_MESSAGE: &str =
    "You're creating a duplicate record. We recommend you use an existing record instead.";

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/services/data", get(versions))
        .route("/services/data/", get(versions))
        .route("/services/data/{*rest}", any(data_api))
}

pub async fn not_found() -> Response {
    respond::error(ApiError::resource_not_found(), None)
}

/// Releases come three a year; v31.0 was Summer '14.
fn version_label(major: u32) -> String {
    let index = major - OLDEST_VERSION;
    let season = ["Summer", "Winter", "Spring"][(index % 3) as usize];
    format!("{season} '{:02}", 14 + index.div_ceil(3))
}

/// `GET /services/data/`: no authentication, not counted, no `Sforce-Limit-Info`.
async fn versions() -> Response {
    let list: Vec<Value> = (OLDEST_VERSION..=NEWEST_VERSION)
        .map(|major| json!({"label": version_label(major), "url": format!("/services/data/v{major}.0"), "version": format!("{major}.0")}))
        .collect();
    respond::json(200, &list, None)
}

#[derive(Debug, Clone)]
struct ApiVersion {
    major: u32,
    text: String,
}

enum VersionError {
    Retired,
    Unknown,
}

fn parse_version(segment: &str) -> Result<ApiVersion, VersionError> {
    if segment.eq_ignore_ascii_case("latest") {
        return Ok(ApiVersion {
            major: NEWEST_VERSION,
            text: format!("{NEWEST_VERSION}.0"),
        });
    }
    let number = segment.strip_prefix('v').ok_or(VersionError::Unknown)?;
    let (major, minor) = number.split_once('.').ok_or(VersionError::Unknown)?;
    let major: u32 = major.parse().map_err(|_| VersionError::Unknown)?;
    if minor != "0" {
        return Err(VersionError::Unknown);
    }
    match major {
        7..OLDEST_VERSION => Err(VersionError::Retired),
        OLDEST_VERSION..=NEWEST_VERSION => Ok(ApiVersion {
            major,
            text: number.to_owned(),
        }),
        _ => Err(VersionError::Unknown),
    }
}

/// The bearer token, `Bearer` or the older `OAuth` scheme.
fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::invalid_session());
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::invalid_auth_header())?
        .trim();
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth") =>
        {
            let token = token.trim();
            if token.is_empty() {
                Err(ApiError::invalid_session())
            } else {
                Ok(token)
            }
        }
        _ => Err(ApiError::invalid_auth_header()),
    }
}

fn decode_segment(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// One authenticated, counted API call.
struct Call<'a> {
    shared: &'a Shared,
    version: ApiVersion,
    usage: UsageReport,
    method: Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    body: Bytes,
}

async fn data_api(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = Millis::now();
    let rest = uri
        .path()
        .strip_prefix("/services/data/")
        .unwrap_or_default();
    let mut segments: Vec<String> = rest.split('/').map(decode_segment).collect();
    // Salesforce accepts a trailing slash on every resource.
    if segments.len() > 1 && segments.last().is_some_and(String::is_empty) {
        segments.pop();
    }
    let (client_id, usage) = {
        let mut org = shared.org();
        let current_usage = org.usage.report();
        let token = match bearer_token(&headers) {
            Ok(token) => token,
            Err(error) => return respond::error(error, Some(current_usage)),
        };
        let client_id = match org.sessions.authenticate(token, now) {
            Ok(client_id) => client_id,
            Err(_) => return respond::error(ApiError::invalid_session(), Some(current_usage)),
        };
        match org.usage.try_consume(now) {
            Ok(usage) => (client_id, usage),
            Err(usage) => {
                return tag(
                    respond::error(ApiError::request_limit_exceeded(), Some(usage)),
                    client_id,
                );
            }
        }
    };
    let version = match parse_version(&segments[0]) {
        Ok(version) => version,
        Err(VersionError::Retired) => {
            return tag(
                respond::error(
                    ApiError {
                        status: 410,
                        ..ApiError::resource_not_found()
                    },
                    Some(usage),
                ),
                client_id,
            );
        }
        Err(VersionError::Unknown) => {
            return tag(
                respond::error(ApiError::resource_not_found(), Some(usage)),
                client_id,
            );
        }
    };
    let call = Call {
        shared: &shared,
        version,
        usage,
        method,
        uri: &uri,
        headers: &headers,
        body,
    };
    let path: Vec<&str> = segments[1..].iter().map(String::as_str).collect();
    tag(call.dispatch(&path), client_id)
}

fn tag(mut response: Response, client_id: String) -> Response {
    response
        .extensions_mut()
        .insert(AuthenticatedClient(client_id));
    response
}

fn is_lead(object: &str) -> bool {
    object.eq_ignore_ascii_case("Lead")
}

impl Call<'_> {
    fn dispatch(&self, path: &[&str]) -> Response {
        let method = &self.method;
        match path {
            [] | [""] if method == Method::GET => self.resources(),
            ["sobjects"] if method == Method::GET => self.describe_global(),
            ["sobjects", object, ..] if !is_lead(object) => {
                self.error(ApiError::resource_not_found())
            }
            ["sobjects", _] => match method.as_str() {
                "GET" | "HEAD" => self.basic_info(),
                "POST" => self.create(),
                other => self.error(ApiError::method_not_allowed(other, "HEAD,GET,POST")),
            },
            ["sobjects", _, describe]
                if describe.eq_ignore_ascii_case("describe") && method == Method::GET =>
            {
                self.describe()
            }
            ["sobjects", _, id_field]
                if id_field.eq_ignore_ascii_case("Id") && method == Method::POST =>
            {
                self.create()
            }
            ["sobjects", _, key] => {
                let method = match query_param(self.uri, "_HttpMethod") {
                    Some(overridden) if method == Method::POST => overridden.to_ascii_uppercase(),
                    _ => method.as_str().to_owned(),
                };
                match method.as_str() {
                    "GET" | "HEAD" => self.read(key),
                    "PATCH" => self.update(key),
                    "DELETE" => self.delete(key),
                    other => {
                        self.error(ApiError::method_not_allowed(other, "HEAD,GET,PATCH,DELETE"))
                    }
                }
            }
            ["sobjects", _, field, value] => match method.as_str() {
                "PATCH" => self.upsert(field, value),
                "GET" | "HEAD" => self.read_by_external_id(field, value),
                "DELETE" => self.delete_by_external_id(field, value),
                other => self.error(ApiError::method_not_allowed(other, "HEAD,GET,PATCH,DELETE")),
            },
            [query]
                if (query.eq_ignore_ascii_case("query")
                    || query.eq_ignore_ascii_case("queryAll"))
                    && method == Method::GET =>
            {
                self.query(query.eq_ignore_ascii_case("queryAll"))
            }
            ["composite", "sobjects"] => match method.as_str() {
                "POST" => self.collection_create(),
                "PATCH" => self.collection_update(),
                "DELETE" => self.collection_delete(),
                other => self.error(ApiError::method_not_allowed(other, "POST,PATCH,DELETE")),
            },
            ["limits"] if method == Method::GET => self.limits(),
            _ => self.error(ApiError::resource_not_found()),
        }
    }

    fn error(&self, error: ApiError) -> Response {
        respond::error(error, Some(self.usage))
    }

    fn json(&self, status: u16, body: &Value) -> Response {
        respond::json(status, body, Some(self.usage))
    }

    fn base(&self) -> String {
        format!("/services/data/v{}", self.version.text)
    }

    fn context(&self) -> RenderContext<'_> {
        RenderContext {
            api_version: &self.version.text,
            running_user: self.shared.user_id,
        }
    }

    /// `Sforce-Duplicate-Rule-Header: allowSave=true` saves despite the duplicate rule.
    fn allow_duplicates(&self) -> bool {
        self.headers
            .get("sforce-duplicate-rule-header")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                value
                    .to_ascii_lowercase()
                    .replace(' ', "")
                    .contains("allowsave=true")
            })
    }

    /// The request body as one JSON object, with the content-type rules Salesforce applies.
    fn body_object(&self) -> Result<(Map<String, Value>, String), ApiError> {
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if let Some(error) = self.content_type_error(content_type) {
            return Err(error);
        }
        let object = parse_json_object(&self.body)?;
        Ok((object, String::from_utf8_lossy(&self.body).into_owned()))
    }

    fn content_type_error(&self, content_type: Option<&str>) -> Option<ApiError> {
        match content_type {
            None if self.body.is_empty() && self.method == Method::PATCH => {
                Some(ApiError::request(
                    400,
                    "INVALID_CONTENT_TYPE",
                    "Content-Type header is required for a request with a body",
                ))
            }
            None if self.body.is_empty() => Some(ApiError::request(
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                "Content-Type header specified in HTTP request is not supported: null",
            )),
            Some(content_type) if !content_type.to_ascii_lowercase().contains("json") => {
                Some(ApiError::request(
                    415,
                    "UNSUPPORTED_MEDIA_TYPE",
                    format!(
                        "Content-Type header specified in HTTP request is not supported: {content_type}"
                    ),
                ))
            }
            _ => None,
        }
    }

    fn changes(&self, kind: WriteKind) -> Result<LeadChanges, ApiError> {
        let (object, raw) = self.body_object()?;
        parse_changes(self.shared.schema(), &object, Some(&raw), kind)
    }

    fn store_error(&self, error: StoreError, key_as_sent: &str) -> ApiError {
        match error {
            StoreError::NotFound => ApiError::external_id_not_found(key_as_sent),
            StoreError::Deleted => ApiError::entity_is_deleted(),
            StoreError::Duplicate(ids) => self.duplicate_error(&ids),
            StoreError::Rejected(error) => error,
        }
    }

    /// Salesforce's body, including its `duplicateResut` spelling.
    fn duplicate_error(&self, matches: &[SalesforceId]) -> ApiError {
        let context = self.context();
        let match_records: Vec<Value> = matches
            .iter()
            .map(|id| {
                json!({
                    "additionalInformation": [],
                    "fieldDiffs": [],
                    "matchConfidence": 100.0,
                    "record": {"attributes": context.attributes(id), "Id": id},
                })
            })
            .collect();
        let result = json!({
            "allowSave": true,
            "duplicateRule": "Standard_Lead_Duplicate_Rule",
            "duplicateRuleEntityType": "Lead",
            "errorMessage": DUPLICATE_MESSAGE,
            "matchResults": [{
                "entityType": "Lead",
                "errors": [],
                "matchEngine": "ExactMatchEngine",
                "matchRecords": match_records,
                "rule": "Standard_Lead_Match_Rule_v1_0",
                "size": matches.len(),
                "success": true,
            }],
        });
        let mut extra = Map::new();
        extra.insert("duplicateResut".to_owned(), result);
        ApiError {
            extra: Some(Box::new(extra)),
            ..ApiError::request(400, "DUPLICATES_DETECTED", DUPLICATE_MESSAGE)
        }
    }

    /// A URL key that should be a Lead id.
    fn lead_id(&self, key: &str) -> Result<SalesforceId, ApiError> {
        match SalesforceId::parse(key) {
            Ok(id) if id.key_prefix() == "00Q" => Ok(id),
            Err(IdError::BadChecksum) => Err(ApiError::malformed_id("Lead", key)),
            _ => Err(ApiError::external_id_not_found(key)),
        }
    }

    fn resources(&self) -> Response {
        let base = self.base();
        self.json(
            200,
            &json!({
                "sobjects": format!("{base}/sobjects"),
                "query": format!("{base}/query"),
                "queryAll": format!("{base}/queryAll"),
                "composite": format!("{base}/composite"),
                "limits": format!("{base}/limits"),
            }),
        )
    }

    fn object_summary(&self) -> Value {
        let base = self.base();
        json!({
            "name": "Lead",
            "label": "Lead",
            "labelPlural": "Leads",
            "keyPrefix": "00Q",
            "custom": false,
            "createable": true,
            "updateable": true,
            "deletable": true,
            "queryable": true,
            "retrieveable": true,
            "searchable": true,
            "layoutable": true,
            "urls": {
                "sobject": format!("{base}/sobjects/Lead"),
                "describe": format!("{base}/sobjects/Lead/describe"),
                "rowTemplate": format!("{base}/sobjects/Lead/{{ID}}"),
            },
        })
    }

    fn describe_global(&self) -> Response {
        self.json(200, &json!({"encoding": "UTF-8", "maxBatchSize": COLLECTION_LIMIT, "sobjects": [self.object_summary()]}))
    }

    fn basic_info(&self) -> Response {
        let org = self.shared.org();
        let context = self.context();
        let name = self.shared.schema().index_of("Name");
        let recent: Vec<Value> = org
            .store
            .live()
            .rev()
            .take(5)
            .map(|record| {
                let name = name.map_or(Value::Null, |index| {
                    field_value(self.shared.schema(), record, index, &context)
                });
                json!({"attributes": context.attributes(&record.id), "Id": record.id, "Name": name})
            })
            .collect();
        self.json(
            200,
            &json!({"objectDescribe": self.object_summary(), "recentItems": recent}),
        )
    }

    fn describe(&self) -> Response {
        let mut describe = self.object_summary();
        let fields: Vec<Value> = self
            .shared
            .schema()
            .fields()
            .map(|(_, field)| field.describe())
            .collect();
        if let Some(object) = describe.as_object_mut() {
            object.insert("fields".to_owned(), Value::Array(fields));
            object.insert("childRelationships".to_owned(), json!([]));
            object.insert("recordTypeInfos".to_owned(), json!([]));
        }
        self.json(200, &describe)
    }

    fn create(&self) -> Response {
        let changes = match self.changes(WriteKind::Create) {
            Ok(changes) => changes,
            Err(error) => return self.error(error),
        };
        let created = self.shared.org().store.create(
            &changes,
            self.shared.user_id,
            Millis::now(),
            self.allow_duplicates(),
        );
        match created {
            Ok(id) => {
                self.shared.state_changed();
                let mut response =
                    self.json(201, &json!({"id": id, "success": true, "errors": []}));
                if let Ok(location) = HeaderValue::from_str(&self.context().record_url(&id)) {
                    response.headers_mut().insert(header::LOCATION, location);
                }
                response
            }
            Err(error) => self.error(self.store_error(error, "")),
        }
    }

    fn read(&self, key: &str) -> Response {
        let id = match self.lead_id(key) {
            Ok(id) => id,
            Err(error) => return self.error(error),
        };
        let selected = match query_param(self.uri, "fields") {
            None => None,
            Some(list) => match self.field_list(&list) {
                Ok(selected) => Some(selected),
                Err(error) => return self.error(error),
            },
        };
        let org = self.shared.org();
        match org.store.get(&id) {
            Ok(record) => {
                let context = self.context();
                let body = match &selected {
                    Some(selected) => {
                        render_selected(self.shared.schema(), record, selected, &context)
                    }
                    None => render_record(self.shared.schema(), record, &context),
                };
                self.json(200, &body)
            }
            Err(error) => self.error(self.store_error(error, key)),
        }
    }

    fn field_list(&self, list: &str) -> Result<Vec<FieldIndex>, ApiError> {
        list.split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| {
                self.shared
                    .schema()
                    .lookup(name)
                    .ok_or_else(|| ApiError::no_such_column(name, "Lead"))
            })
            .collect()
    }

    fn update(&self, key: &str) -> Response {
        let id = match self.lead_id(key) {
            Ok(id) => id,
            Err(error) => return self.error(error),
        };
        let changes = match self.changes(WriteKind::Update) {
            Ok(changes) => changes,
            Err(error) => return self.error(error),
        };
        let updated =
            self.shared
                .org()
                .store
                .update(&id, &changes, Millis::now(), self.allow_duplicates());
        match updated {
            Ok(()) => {
                self.shared.state_changed();
                respond::no_content(Some(self.usage))
            }
            Err(error) => self.error(self.store_error(error, key)),
        }
    }

    fn delete(&self, key: &str) -> Response {
        let id = match self.lead_id(key) {
            Ok(id) => id,
            Err(error) => return self.error(error),
        };
        let deleted = self.shared.org().store.delete(&id, Millis::now());
        match deleted {
            Ok(()) => {
                self.shared.state_changed();
                respond::no_content(Some(self.usage))
            }
            Err(error) => self.error(self.store_error(error, key)),
        }
    }

    /// Resolves the field of `sobjects/Lead/{Field}/{value}`: it must be an external-id field.
    fn external_id_field(&self, name: &str) -> Result<FieldIndex, ApiError> {
        let schema = self.shared.schema();
        let Some(index) = schema.lookup(name) else {
            return Err(ApiError::external_id_not_found(name));
        };
        let field = schema.field(index);
        if field.external_id || field.name == "Id" {
            Ok(index)
        } else {
            Err(ApiError::invalid_field(format!(
                "Field name provided, {} is not an External ID or indexed field for Lead",
                field.name
            )))
        }
    }

    fn upsert(&self, field_name: &str, value: &str) -> Response {
        let field = match self.external_id_field(field_name) {
            Ok(field) => field,
            Err(error) => return self.error(error),
        };
        if self.shared.schema().field(field).name == "Id" {
            return self.update(value);
        }
        let changes = match self.changes(WriteKind::Create) {
            Ok(changes) => changes,
            Err(error) => return self.error(error),
        };
        let update_only =
            query_param(self.uri, "updateOnly").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let outcome = {
            let mut org = self.shared.org();
            if update_only && org.store.find_by(field, value).is_empty() {
                return self.error(ApiError::external_id_not_found(value));
            }
            org.store.upsert(
                field,
                value,
                changes,
                self.shared.user_id,
                Millis::now(),
                self.allow_duplicates(),
            )
        };
        let with_created = self.version.major >= UPSERT_BODY_SINCE;
        match outcome {
            Ok(UpsertOutcome::Created(id)) => {
                self.shared.state_changed();
                let mut body = json!({"id": id, "success": true, "errors": []});
                if with_created {
                    body["created"] = Value::Bool(true);
                }
                let mut response = self.json(201, &body);
                if let Ok(location) = HeaderValue::from_str(&self.context().record_url(&id)) {
                    response.headers_mut().insert(header::LOCATION, location);
                }
                response
            }
            Ok(UpsertOutcome::Updated(id)) => {
                self.shared.state_changed();
                if with_created {
                    self.json(
                        200,
                        &json!({"id": id, "success": true, "errors": [], "created": false}),
                    )
                } else {
                    respond::no_content(Some(self.usage))
                }
            }
            Ok(UpsertOutcome::Ambiguous(ids)) => self.ambiguous(&ids),
            Err(error) => self.error(self.store_error(error, value)),
        }
    }

    fn ambiguous(&self, ids: &[SalesforceId]) -> Response {
        let context = self.context();
        let urls: Vec<String> = ids.iter().map(|id| context.record_url(id)).collect();
        self.json(300, &json!(urls))
    }

    fn read_by_external_id(&self, field_name: &str, value: &str) -> Response {
        let field = match self.external_id_field(field_name) {
            Ok(field) => field,
            Err(error) => return self.error(error),
        };
        if self.shared.schema().field(field).name == "Id" {
            return self.read(value);
        }
        let org = self.shared.org();
        let matches = org.store.find_by(field, value);
        match matches.as_slice() {
            [] => self.error(ApiError::resource_not_found()),
            [id] => match org.store.get(id) {
                Ok(record) => self.json(
                    200,
                    &render_record(self.shared.schema(), record, &self.context()),
                ),
                Err(error) => self.error(self.store_error(error, value)),
            },
            _ => self.ambiguous(&matches),
        }
    }

    fn delete_by_external_id(&self, field_name: &str, value: &str) -> Response {
        let field = match self.external_id_field(field_name) {
            Ok(field) => field,
            Err(error) => return self.error(error),
        };
        let matches = self.shared.org().store.find_by(field, value);
        match matches.as_slice() {
            [] => self.error(ApiError::resource_not_found()),
            [id] => self.delete(id.as_str()),
            _ => self.ambiguous(&matches),
        }
    }

    fn query(&self, include_deleted: bool) -> Response {
        let Some(text) = query_param(self.uri, "q") else {
            return self.error(ApiError::request(
                400,
                "MALFORMED_QUERY",
                "A query string has to be specified",
            ));
        };
        let query = match crate::soql::parse(&text, self.shared.schema()) {
            Ok(query) => query,
            Err(error) => return self.error(error),
        };
        let schema = self.shared.schema();
        let context = self.context();
        let org = self.shared.org();
        let matches = |record: &crate::lead::LeadRecord| {
            query.conditions.iter().all(|condition| {
                condition.matches(&field_value(schema, record, condition.field, &context))
            })
        };
        let candidates: Box<dyn Iterator<Item = &crate::lead::LeadRecord>> = if include_deleted {
            Box::new(org.store.all())
        } else {
            Box::new(org.store.live())
        };
        let records: Vec<Value> = candidates
            .filter(|record| matches(record))
            .take(query.limit.unwrap_or(usize::MAX))
            .map(|record| {
                let mut object = Map::new();
                object.insert("attributes".to_owned(), context.attributes(&record.id));
                for index in &query.fields {
                    object.insert(
                        schema.field(*index).name.clone(),
                        field_value(schema, record, *index, &context),
                    );
                }
                Value::Object(object)
            })
            .collect();
        self.json(
            200,
            &json!({"totalSize": records.len(), "done": true, "records": records}),
        )
    }

    fn limits(&self) -> Response {
        let remaining = self.usage.max.saturating_sub(self.usage.used);
        self.json(
            200,
            &json!({"DailyApiRequests": {"Max": self.usage.max, "Remaining": remaining}}),
        )
    }

    /// `{"allOrNone": bool, "records": [...]}` for create and update.
    fn collection_body(&self) -> Result<(bool, Vec<Value>), ApiError> {
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if let Some(error) = self.content_type_error(content_type) {
            return Err(error);
        }
        let body = parse_json(&self.body)?;
        let all_or_none = body
            .get("allOrNone")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let Some(records) = body.get("records").and_then(Value::as_array) else {
            return Err(ApiError::json_parser(
                "Cannot deserialize instance of SObjectCollectionRequest: records is required",
            ));
        };
        if records.len() > COLLECTION_LIMIT {
            return Err(ApiError::request(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            ));
        }
        Ok((all_or_none, records.clone()))
    }

    /// Each record must say it is a Lead in `attributes.type`.
    fn collection_record(
        &self,
        record: &Value,
        kind: WriteKind,
    ) -> Result<(LeadChanges, Option<String>), ApiError> {
        let Some(object) = record.as_object() else {
            return Err(ApiError::json_parser(
                "Cannot deserialize instance of SObject from a non-object value",
            ));
        };
        match object
            .get("attributes")
            .and_then(|a| a.get("type"))
            .and_then(Value::as_str)
        {
            None => {
                return Err(ApiError::request(
                    400,
                    "INVALID_TYPE",
                    "Must send a concrete entity type.",
                ));
            }
            Some(object_type) if !is_lead(object_type) => {
                return Err(ApiError::request(
                    400,
                    "INVALID_TYPE",
                    format!("sObject type '{object_type}' is not supported."),
                ));
            }
            Some(_) => {}
        }
        let mut fields = object.clone();
        let id = match kind {
            WriteKind::Update => {
                let id = fields
                    .iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case("id"))
                    .and_then(|(_, v)| v.as_str().map(str::to_owned));
                fields.retain(|key, _| !key.eq_ignore_ascii_case("id"));
                Some(id.ok_or_else(|| {
                    ApiError::record(
                        "MISSING_ARGUMENT",
                        "Id not specified in an update call",
                        vec![],
                    )
                })?)
            }
            WriteKind::Create => None,
        };
        Ok((
            parse_changes(self.shared.schema(), &fields, None, kind)?,
            id,
        ))
    }

    fn collection_create(&self) -> Response {
        self.collection_write(WriteKind::Create)
    }

    fn collection_update(&self) -> Response {
        self.collection_write(WriteKind::Update)
    }

    fn collection_write(&self, kind: WriteKind) -> Response {
        let (all_or_none, records) = match self.collection_body() {
            Ok(parsed) => parsed,
            Err(error) => return self.error(error),
        };
        let parsed: Vec<Result<(LeadChanges, Option<String>), ApiError>> = records
            .iter()
            .map(|record| self.collection_record(record, kind))
            .collect();
        let mut org = self.shared.org();
        let outcomes: Vec<Result<SalesforceId, ApiError>> = if all_or_none {
            // Check every record first; commit only when all pass.
            let checks: Vec<Option<ApiError>> = parsed
                .iter()
                .map(|item| self.write_one(&mut org.store, item, kind, false).err())
                .collect();
            if checks.iter().any(Option::is_some) {
                drop(org);
                return self.collection_rolled_back(&checks);
            }
            let mut committed = Vec::new();
            for (position, item) in parsed.iter().enumerate() {
                match self.write_one(&mut org.store, item, kind, true) {
                    Ok(id) => committed.extend(id),
                    // Records of one batch can still clash with each other (duplicate rule): undo.
                    Err(error) => {
                        if kind == WriteKind::Create {
                            committed.iter().for_each(|id| org.store.purge(id));
                        }
                        drop(org);
                        let mut errors = vec![None; parsed.len()];
                        errors[position] = Some(error);
                        return self.collection_rolled_back(&errors);
                    }
                }
            }
            committed.into_iter().map(Ok).collect()
        } else {
            parsed
                .iter()
                .map(|item| {
                    self.write_one(&mut org.store, item, kind, true)
                        .and_then(|id| id.ok_or_else(ApiError::resource_not_found))
                })
                .collect()
        };
        drop(org);
        if outcomes.iter().any(Result::is_ok) {
            self.shared.state_changed();
        }
        let results: Vec<Value> = outcomes
            .iter()
            .map(|outcome| match outcome {
                Ok(id) => json!({"id": id, "success": true, "errors": []}),
                Err(error) => json!({"success": false, "errors": [error.to_collection_error()]}),
            })
            .collect();
        self.json(200, &Value::Array(results))
    }

    /// Checks (`commit == false`, returns `None`) or performs one collection record's write.
    fn write_one(
        &self,
        store: &mut crate::store::LeadStore,
        item: &Result<(LeadChanges, Option<String>), ApiError>,
        kind: WriteKind,
        commit: bool,
    ) -> Result<Option<SalesforceId>, ApiError> {
        let (changes, id_text) = item.as_ref().map_err(Clone::clone)?;
        let allow_duplicates = self.allow_duplicates();
        match (kind, id_text) {
            (WriteKind::Create, _) if commit => store
                .create(
                    changes,
                    self.shared.user_id,
                    Millis::now(),
                    allow_duplicates,
                )
                .map(Some)
                .map_err(|error| self.store_error(error, "")),
            (WriteKind::Create, _) => store
                .check_create(changes, allow_duplicates)
                .map(|()| None)
                .map_err(|error| self.store_error(error, "")),
            (WriteKind::Update, Some(id_text)) => {
                let id = self.lead_id(id_text)?;
                let result = if commit {
                    store.update(&id, changes, Millis::now(), allow_duplicates)
                } else {
                    store.check_update(&id, changes, allow_duplicates)
                };
                result
                    .map(|()| Some(id))
                    .map_err(|error| self.store_error(error, id_text))
            }
            (WriteKind::Update, None) => Err(ApiError::record(
                "MISSING_ARGUMENT",
                "Id not specified in an update call",
                vec![],
            )),
        }
    }

    /// All-or-none failure: each record gets its own error, or "rolled back" when it had none.
    fn collection_rolled_back(&self, errors: &[Option<ApiError>]) -> Response {
        let rolled_back = ApiError::record(
            "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "Record rolled back because not all records were valid and the request was using AllOrNone header",
            vec![],
        );
        let results: Vec<Value> = errors
            .iter()
            .map(|error| {
                let error = error.as_ref().unwrap_or(&rolled_back);
                json!({"success": false, "errors": [error.to_collection_error()]})
            })
            .collect();
        self.json(200, &Value::Array(results))
    }

    fn collection_delete(&self) -> Response {
        let ids: Vec<String> = query_param(self.uri, "ids")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .collect();
        if ids.len() > COLLECTION_LIMIT {
            return self.error(ApiError::request(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            ));
        }
        let all_or_none =
            query_param(self.uri, "allOrNone").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let now = Millis::now();
        let mut org = self.shared.org();
        let checks: Vec<Result<SalesforceId, ApiError>> = ids
            .iter()
            .map(|text| {
                self.lead_id(text).and_then(|id| {
                    org.store
                        .get(&id)
                        .map(|_| id)
                        .map_err(|error| self.store_error(error, text))
                })
            })
            .collect();
        if all_or_none && checks.iter().any(Result::is_err) {
            drop(org);
            let errors: Vec<Option<ApiError>> = checks
                .iter()
                .map(|check| check.as_ref().err().cloned())
                .collect();
            return self.collection_rolled_back(&errors);
        }
        let mut any_deleted = false;
        let results: Vec<Value> = checks
            .iter()
            .zip(&ids)
            .map(|(check, text)| {
                match check.as_ref().map_err(Clone::clone).and_then(|id| {
                    org.store
                        .delete(id, now)
                        .map(|()| *id)
                        .map_err(|error| self.store_error(error, text))
                }) {
                    Ok(id) => {
                        any_deleted = true;
                        json!({"id": id, "success": true, "errors": []})
                    }
                    Err(error) => {
                        json!({"success": false, "errors": [error.to_collection_error()]})
                    }
                }
            })
            .collect();
        drop(org);
        if any_deleted {
            self.shared.state_changed();
        }
        self.json(200, &Value::Array(results))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_versions_like_salesforce() {
        assert_eq!(version_label(31), "Summer '14");
        assert_eq!(version_label(60), "Spring '24");
        assert_eq!(version_label(62), "Winter '25");
        assert_eq!(version_label(67), "Summer '26");
    }

    #[test]
    fn parses_versions() {
        assert!(matches!(
            parse_version("v60.0"),
            Ok(ApiVersion { major: 60, .. })
        ));
        assert!(matches!(
            parse_version("latest"),
            Ok(ApiVersion {
                major: NEWEST_VERSION,
                ..
            })
        ));
        assert!(matches!(parse_version("v20.0"), Err(VersionError::Retired)));
        assert!(matches!(parse_version("v99.0"), Err(VersionError::Unknown)));
        assert!(matches!(parse_version("60.0"), Err(VersionError::Unknown)));
    }
}
