//! The REST API described as OpenAPI 3.1, served at `/openapi.json`, with a browsable page at
//! `/docs`. Request bodies of the config kinds (templates, credentials, campaigns, Canvases)
//! are the JSON Schemas generated from the types that parse them (`leadwire-config`); the rest
//! are written beside each operation here. A test checks this table against the router's
//! routes, so an endpoint cannot be added undocumented.

use axum::Router;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use leadwire_config::schema::Kind;
use serde_json::{Map, Value as Json, json};

use crate::Permission;

/// One documented endpoint.
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    /// `None`: answered without a key.
    pub permission: Option<Permission>,
    pub summary: &'static str,
    pub request: Request,
}

/// What an operation takes.
pub enum Request {
    None,
    /// Query parameters: (name, description).
    Query(&'static [(&'static str, &'static str)]),
    /// A JSON body of this schema.
    Body(fn() -> Json),
}

use Permission as P;
use Request::{Body, Query};

fn obj(properties: Json, required: &[&str]) -> Json {
    json!({"type": "object", "properties": properties, "required": required})
}

fn list_of(item: Json) -> Json {
    json!({"type": "array", "items": item})
}

fn user_alias() -> Json {
    obj(
        json!({"alias_name": {"type": "string"}, "alias_label": {"type": "string"}}),
        &["alias_name", "alias_label"],
    )
}

fn identified(extra: Json) -> Json {
    let mut properties = json!({
        "external_id": {"type": "string"}, "braze_id": {"type": "string"},
        "user_alias": user_alias(), "email": {"type": "string"}, "phone": {"type": "string"},
        "_update_existing_only": {"type": "boolean"}
    });
    if let (Some(p), Json::Object(extra)) = (properties.as_object_mut(), extra) {
        p.extend(extra);
    }
    json!({"type": "object", "properties": properties, "additionalProperties": true})
}

fn track() -> Json {
    obj(
        json!({
            "attributes": list_of(identified(json!({}))),
            "events": list_of(identified(json!({"name": {"type": "string"}, "time": {"type": "string", "format": "date-time"}, "properties": {"type": "object"}}))),
            "purchases": list_of(identified(json!({"product_id": {"type": "string"}, "currency": {"type": "string"}, "price": {"type": "number"}, "quantity": {"type": "integer"}, "time": {"type": "string", "format": "date-time"}, "properties": {"type": "object"}}))),
        }),
        &[],
    )
}

fn ids() -> Json {
    obj(
        json!({
            "external_ids": list_of(json!({"type": "string"})),
            "user_aliases": list_of(user_alias()),
            "braze_ids": list_of(json!({"type": "string"})),
            "braze_id": {"type": "string"}, "email_address": {"type": "string"}, "phone": {"type": "string"},
            "fields_to_export": list_of(json!({"type": "string"})),
        }),
        &[],
    )
}

fn alias_new() -> Json {
    obj(
        json!({"user_aliases": list_of(identified(json!({"alias_name": {"type": "string"}, "alias_label": {"type": "string"}})))}),
        &["user_aliases"],
    )
}

fn identify() -> Json {
    obj(
        json!({"aliases_to_identify": list_of(obj(json!({"external_id": {"type": "string"}, "user_alias": user_alias()}), &["external_id", "user_alias"]))}),
        &["aliases_to_identify"],
    )
}

fn recipients(properties_key: &str) -> Json {
    list_of(identified(json!({
        "external_user_id": {"type": "string"},
        properties_key: {"type": "object"},
        "send_to_existing_only": {"type": "boolean"},
        "attributes": {"type": "object"},
    })))
}

fn campaign_send() -> Json {
    obj(
        json!({"campaign_id": {"type": "string"}, "send_id": {"type": "string"}, "trigger_properties": {"type": "object"},
               "broadcast": {"type": "boolean"}, "recipients": recipients("trigger_properties")}),
        &["campaign_id"],
    )
}

fn canvas_send() -> Json {
    obj(
        json!({"canvas_id": {"type": "string"}, "canvas_entry_properties": {"type": "object"}, "context": {"type": "object"},
               "broadcast": {"type": "boolean"}, "recipients": recipients("canvas_entry_properties")}),
        &["canvas_id"],
    )
}

/// A config kind's schema as a request body (its `kind` is YAML's, not the API's).
fn kind_body(kind: Kind) -> Json {
    let mut schema = kind.schema();
    strip_kind(&mut schema);
    if let Some(m) = schema.as_object_mut() {
        m.remove("$schema");
        m.remove("$id");
    }
    schema
}

fn strip_kind(schema: &mut Json) {
    let Json::Object(m) = schema else {
        return;
    };
    if let Some(Json::Object(props)) = m.get_mut("properties") {
        props.remove("kind");
    }
    if let Some(Json::Array(required)) = m.get_mut("required") {
        required.retain(|r| r != "kind");
    }
    if let Some(Json::Array(branches)) = m.get_mut("oneOf") {
        branches.iter_mut().for_each(strip_kind);
    }
}

fn template() -> Json {
    kind_body(Kind::WebhookTemplate)
}

fn credential() -> Json {
    kind_body(Kind::Credential)
}

fn campaign() -> Json {
    kind_body(Kind::Campaign)
}

fn campaign_update() -> Json {
    with_id(kind_body(Kind::Campaign), "campaign_id")
}

fn canvas() -> Json {
    kind_body(Kind::Canvas)
}

fn canvas_update() -> Json {
    with_id(kind_body(Kind::Canvas), "canvas_id")
}

fn with_id(mut schema: Json, id: &str) -> Json {
    if let Some(Json::Object(props)) = schema.get_mut("properties") {
        props.insert(id.into(), json!({"type": "string"}));
    }
    if let Some(Json::Array(required)) = schema.get_mut("required") {
        required.push(json!(id));
    }
    schema
}

/// `{ID_FIELD: string}`, the body of pause, resume and archive.
fn by_id(field: &str) -> Json {
    obj(json!({field: {"type": "string"}}), &[field])
}

fn render() -> Json {
    obj(
        json!({
            "template_id": {"type": "string", "description": "a saved template"},
            "template": {"description": "an unsaved definition", "type": "object"},
            "external_id": {"type": "string", "description": "render for this stored user"},
            "user": {"type": "object", "description": "a test user: Braze's export shape ({external_id, email, first_name, custom_attributes}) or the render context ({profile, custom_attributes})"},
            "properties": {"type": "object"},
            "campaign_id": {"type": "string"},
        }),
        &[],
    )
}

/// Every endpoint leadwire serves.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "post",
        path: "/users/track",
        permission: Some(P::UsersTrack),
        summary: "Create and update users, and record custom events and purchases (Braze's /users/track).",
        request: Body(track),
    },
    Operation {
        method: "post",
        path: "/users/export/ids",
        permission: Some(P::UsersExportIds),
        summary: "Export users by identifier, with their custom_events, purchases and total_revenue.",
        request: Body(ids),
    },
    Operation {
        method: "post",
        path: "/users/delete",
        permission: Some(P::UsersDelete),
        summary: "Delete users by identifier.",
        request: Body(ids),
    },
    Operation {
        method: "post",
        path: "/users/alias/new",
        permission: Some(P::UsersAliasNew),
        summary: "Add aliases to users, or create alias-only users.",
        request: Body(alias_new),
    },
    Operation {
        method: "post",
        path: "/users/identify",
        permission: Some(P::UsersIdentify),
        summary: "Identify alias-only users with an external id (merging their profiles).",
        request: Body(identify),
    },
    Operation {
        method: "get",
        path: "/triggers",
        permission: Some(P::TriggersRead),
        summary: "The trigger feed: what changed on profiles, in commit order.",
        request: Query(&[
            ("after", "the last sequence number read"),
            ("limit", "at most this many"),
        ]),
    },
    Operation {
        method: "post",
        path: "/campaigns/trigger/send",
        permission: Some(P::CampaignsTriggerSend),
        summary: "Send an API-triggered campaign to recipients (Braze's shape).",
        request: Body(campaign_send),
    },
    Operation {
        method: "post",
        path: "/campaigns/create",
        permission: Some(P::CampaignsWrite),
        summary: "Create a campaign.",
        request: Body(campaign),
    },
    Operation {
        method: "post",
        path: "/campaigns/update",
        permission: Some(P::CampaignsWrite),
        summary: "Replace a campaign's definition (its name stays).",
        request: Body(campaign_update),
    },
    Operation {
        method: "get",
        path: "/campaigns/details",
        permission: Some(P::CampaignsRead),
        summary: "One campaign: Braze's details fields and the whole definition under 'campaign'.",
        request: Query(&[("campaign_id", "the campaign's id or name")]),
    },
    Operation {
        method: "get",
        path: "/campaigns/list",
        permission: Some(P::CampaignsRead),
        summary: "Every campaign as Braze lists them: {id, name, last_edited, is_api_campaign, tags}.",
        request: None_,
    },
    Operation {
        method: "post",
        path: "/campaigns/pause",
        permission: Some(P::CampaignsWrite),
        summary: "Pause a campaign.",
        request: Body(by_campaign),
    },
    Operation {
        method: "post",
        path: "/campaigns/resume",
        permission: Some(P::CampaignsWrite),
        summary: "Resume (activate) a campaign.",
        request: Body(by_campaign),
    },
    Operation {
        method: "post",
        path: "/canvas/trigger/send",
        permission: Some(P::CanvasTriggerSend),
        summary: "Enter recipients into an API-triggered Canvas (Braze's shape).",
        request: Body(canvas_send),
    },
    Operation {
        method: "post",
        path: "/canvas/create",
        permission: Some(P::CanvasWrite),
        summary: "Create a Canvas (its step graph is checked).",
        request: Body(canvas),
    },
    Operation {
        method: "post",
        path: "/canvas/update",
        permission: Some(P::CanvasWrite),
        summary: "Replace a Canvas's definition (its name stays).",
        request: Body(canvas_update),
    },
    Operation {
        method: "get",
        path: "/canvas/details",
        permission: Some(P::CanvasRead),
        summary: "One Canvas: Braze's details fields and the whole definition under 'canvas'.",
        request: Query(&[("canvas_id", "the Canvas's id or name")]),
    },
    Operation {
        method: "get",
        path: "/canvas/list",
        permission: Some(P::CanvasRead),
        summary: "Every Canvas as Braze lists them: {id, name, last_edited, tags}.",
        request: None_,
    },
    Operation {
        method: "post",
        path: "/canvas/pause",
        permission: Some(P::CanvasWrite),
        summary: "Pause a Canvas.",
        request: Body(by_canvas),
    },
    Operation {
        method: "post",
        path: "/canvas/resume",
        permission: Some(P::CanvasWrite),
        summary: "Resume (activate) a Canvas.",
        request: Body(by_canvas),
    },
    Operation {
        method: "post",
        path: "/templates/webhook/create",
        permission: Some(P::TemplatesWrite),
        summary: "Create a webhook template; answers the linter's warnings.",
        request: Body(template),
    },
    Operation {
        method: "get",
        path: "/templates/webhook/info",
        permission: Some(P::TemplatesRead),
        summary: "One webhook template.",
        request: Query(&[("template_id", "the template's id")]),
    },
    Operation {
        method: "get",
        path: "/templates/webhook/list",
        permission: Some(P::TemplatesRead),
        summary: "Webhook templates.",
        request: Query(&[
            ("include_archived", "true to list archived ones too"),
            ("limit", "page size"),
            ("offset", "page start"),
        ]),
    },
    Operation {
        method: "post",
        path: "/templates/webhook/update",
        permission: Some(P::TemplatesWrite),
        summary: "Replace a webhook template (give template_id).",
        request: Body(template),
    },
    Operation {
        method: "post",
        path: "/templates/webhook/archive",
        permission: Some(P::TemplatesWrite),
        summary: "Archive a webhook template.",
        request: Body(by_template),
    },
    Operation {
        method: "post",
        path: "/templates/webhook/preview",
        permission: Some(P::TemplatesRead),
        summary: "Render a template's request for a user without sending it (secrets redacted).",
        request: Body(render),
    },
    Operation {
        method: "post",
        path: "/templates/webhook/test_send",
        permission: Some(P::TemplatesWrite),
        summary: "Render and send one request; answers the response, or 422 with the render error's field, line and column.",
        request: Body(render),
    },
    Operation {
        method: "post",
        path: "/credentials/create",
        permission: Some(P::CredentialsWrite),
        summary: "Create or replace a Connected Content credential (the secret is never shown again).",
        request: Body(credential),
    },
    Operation {
        method: "get",
        path: "/credentials/list",
        permission: Some(P::CredentialsRead),
        summary: "Credentials, without their secrets.",
        request: None_,
    },
    Operation {
        method: "get",
        path: "/activity",
        permission: Some(P::ActivityRead),
        summary: "The message activity log.",
        request: Query(&[
            ("campaign_id", "one campaign or Canvas"),
            ("user_id", "one user's external id"),
            ("type", "one entry type"),
            ("since", "RFC 3339"),
            ("until", "RFC 3339"),
            ("after_id", "the last id read"),
            ("limit", "page size"),
        ]),
    },
    Operation {
        method: "get",
        path: "/healthz",
        permission: None,
        summary: "Alive.",
        request: None_,
    },
    Operation {
        method: "get",
        path: "/readyz",
        permission: None,
        summary: "Ready: database reachable with leadwire's schema, workers running.",
        request: None_,
    },
    Operation {
        method: "get",
        path: "/metrics",
        permission: None,
        summary: "Prometheus metrics.",
        request: None_,
    },
    Operation {
        method: "get",
        path: "/openapi.json",
        permission: None,
        summary: "This document.",
        request: None_,
    },
    Operation {
        method: "get",
        path: "/docs",
        permission: None,
        summary: "This document as a page.",
        request: None_,
    },
];

#[allow(non_upper_case_globals)]
const None_: Request = Request::None;

fn by_campaign() -> Json {
    by_id("campaign_id")
}

fn by_canvas() -> Json {
    by_id("canvas_id")
}

fn by_template() -> Json {
    by_id("template_id")
}

/// The whole document.
pub fn document() -> Json {
    let mut paths = Map::new();
    for op in OPERATIONS {
        let mut operation = json!({
            "summary": op.summary,
            "responses": {
                "200": {"description": "Success: `{\"message\": \"success\", ...}`"},
                "400": {"description": "The request is wrong: `message` says what, where and what to do"},
                "401": {"description": "No API key, or an unknown one"},
                "403": {"description": "The key lacks the permission"},
                "429": {"description": "Rate limited (X-RateLimit-* headers)"}
            }
        });
        match op.permission {
            Some(p) => {
                operation["security"] = json!([{"bearer": []}]);
                operation["x-permission"] = json!(p.as_str());
                operation["description"] = json!(format!("Needs the `{}` permission.", p.as_str()));
            }
            None => {
                operation["security"] = json!([]);
            }
        }
        match &op.request {
            Request::None => {}
            Request::Query(params) => {
                operation["parameters"] = params
                    .iter()
                    .map(|(name, description)| json!({"name": name, "in": "query", "description": description, "schema": {"type": "string"}}))
                    .collect();
            }
            Request::Body(schema) => {
                operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": schema()}}});
            }
        }
        let entry = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "leadwire REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Braze-compatible endpoints (users, campaigns, Canvases, webhook templates) served by a self-hosted leadwire. Send `Authorization: Bearer API_KEY`; keys are made with `leadwire api-keys create`."
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    })
}

pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(docs_page))
}

async fn openapi_json() -> Response {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        axum::Json(document()),
    )
        .into_response()
}

/// A page that lists the operations of `/openapi.json` with their schemas; served by the binary
/// itself (no CDN), so it works offline.
async fn docs_page() -> Html<&'static str> {
    Html(include_str!("openapi.html"))
}
