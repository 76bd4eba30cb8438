//! Every endpoint requires a permission: a key with none is refused (403) on every route the
//! API declares, and a key with all of them is never refused. The route list is read from the
//! API's own source, so an endpoint added without a permission check fails this test. The
//! operational endpoints (`/healthz`, `/readyz`, `/metrics`) are the documented exception: they
//! answer without a key.

mod common;

use common::harness;
use leadwire_api::Permission;
use serde_json::json;

/// `(method, path)` of every `.route("path", method(…))` in `source`.
fn routes(source: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let Some(start) = rest.find('"') else { break };
        let Some(len) = rest[start + 1..].find('"') else {
            break;
        };
        let path = rest[start + 1..start + 1 + len].to_owned();
        let after = rest[start + 1 + len..].trim_start_matches(['"', ',', ' ', '\n', '\r', '\t']);
        let method = after
            .split(['(', ':', '.'])
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        out.push((method, path));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_requires_a_permission() {
    let h = harness().await;
    let declared: Vec<(String, String)> = [
        include_str!("../../api/src/routes.rs"),
        include_str!("../../api/src/webhooks.rs"),
    ]
    .into_iter()
    .flat_map(routes)
    .collect();
    assert!(
        declared.len() >= 30,
        "the route list was read: {declared:?}"
    );
    let none = h.key_with(&[]).await;
    let all = h.key_with(Permission::ALL).await;
    let http = reqwest::Client::new();
    for (method, path) in &declared {
        assert!(
            matches!(method.as_str(), "get" | "post"),
            "{path}: method '{method}' not understood by this test"
        );
        for (key, refused) in [(&none, true), (&all, false)] {
            let url = format!("{}{path}", h.api.url());
            let request = if method == "get" {
                http.get(url)
            } else {
                http.post(url).json(&json!({}))
            };
            let status = request
                .bearer_auth(key)
                .send()
                .await
                .expect("request")
                .status()
                .as_u16();
            if refused {
                assert_eq!(
                    status, 403,
                    "{method} {path} answered a key without permissions"
                );
            } else {
                assert_ne!(
                    status, 403,
                    "{method} {path} refused a key with every permission"
                );
            }
        }
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        let status = http
            .get(format!("{}{path}", h.api.url()))
            .send()
            .await
            .expect("request")
            .status()
            .as_u16();
        assert!(
            status == 200 || status == 503,
            "{path} answers without a key: {status}"
        );
    }
}

/// The OpenAPI document lists exactly the routes the router serves, each with the permission
/// its handler checks (a key with only that permission is let through).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_covers_every_route_with_its_permission() {
    let mut declared: Vec<(String, String)> = [
        include_str!("../../api/src/routes.rs"),
        include_str!("../../api/src/webhooks.rs"),
        include_str!("../../api/src/health.rs"),
        include_str!("../../api/src/openapi.rs"),
    ]
    .into_iter()
    .flat_map(routes)
    .collect();
    declared.sort();
    let mut documented: Vec<(String, String)> = leadwire_api::openapi::OPERATIONS
        .iter()
        .map(|op| (op.method.to_owned(), op.path.to_owned()))
        .collect();
    documented.sort();
    assert_eq!(declared, documented, "routes and /openapi.json differ");

    let h = harness().await;
    let http = reqwest::Client::new();
    let doc: serde_json::Value = http
        .get(format!("{}/openapi.json", h.api.url()))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let page = http
        .get(format!("{}/docs", h.api.url()))
        .send()
        .await
        .expect("request");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("text").contains("/openapi.json"));
    for op in leadwire_api::openapi::OPERATIONS {
        let operation = &doc["paths"][op.path][op.method];
        assert!(
            operation.is_object(),
            "{} {} is in the document",
            op.method,
            op.path
        );
        let Some(permission) = op.permission else {
            continue;
        };
        assert_eq!(operation["x-permission"], permission.as_str());
        let key = h.key_with(&[permission]).await;
        let url = format!("{}{}", h.api.url(), op.path);
        let request = if op.method == "get" {
            http.get(url)
        } else {
            http.post(url).json(&json!({}))
        };
        let status = request
            .bearer_auth(&key)
            .send()
            .await
            .expect("request")
            .status()
            .as_u16();
        assert_ne!(
            status,
            403,
            "{} {}: the documented permission {} is refused",
            op.method,
            op.path,
            permission.as_str()
        );
    }
}
