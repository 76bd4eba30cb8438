//! The REST API over real HTTP: the server on port 0, a fresh database per test.

use leadwire_api::{ApiConfig, Permission, RunningApi};
use leadwire_store::Store;
use serde_json::{Value as Json, json};

struct App {
    api: RunningApi,
    store: Store,
    key: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

const ALL: [Permission; 6] = [
    Permission::UsersTrack,
    Permission::UsersExportIds,
    Permission::UsersDelete,
    Permission::UsersAliasNew,
    Permission::UsersIdentify,
    Permission::TriggersRead,
];

async fn spawn_app_with(config: ApiConfig) -> App {
    let dir = tempfile::tempdir().expect("dir");
    let store = leadwire_store::testing::test_store(dir.path()).expect("store");
    let key = store
        .create_api_key(
            "test".into(),
            ALL.iter().map(|p| p.as_str().to_owned()).collect(),
        )
        .await
        .expect("key");
    let api = leadwire_api::serve("127.0.0.1:0".parse().expect("addr"), store.clone(), config)
        .await
        .expect("serve");
    App {
        api,
        store,
        key,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

async fn spawn_app() -> App {
    spawn_app_with(ApiConfig::default()).await
}

impl App {
    async fn post_as(
        &self,
        key: &str,
        path: &str,
        body: Json,
    ) -> (u16, reqwest::header::HeaderMap, Json) {
        let r = self
            .http
            .post(format!("{}{path}", self.api.url()))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.json().await.unwrap_or(Json::Null))
    }

    async fn post(&self, path: &str, body: Json) -> (u16, Json) {
        let (s, _, b) = self.post_as(&self.key, path, body).await;
        (s, b)
    }

    async fn feed(&self, after: i64) -> Vec<Json> {
        let r = self
            .http
            .get(format!("{}/triggers?after={after}", self.api.url()))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("feed");
        let body: Json = r.json().await.expect("json");
        body["triggers"].as_array().cloned().unwrap_or_default()
    }

    async fn export(&self, ids: &[&str]) -> Json {
        self.post("/users/export/ids", json!({"external_ids": ids}))
            .await
            .1
    }
}

#[tokio::test]
async fn keys_and_permissions_are_enforced() {
    let app = spawn_app().await;
    let r = app
        .http
        .post(format!("{}/users/track", app.api.url()))
        .json(&json!({}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 401);
    let (status, _, body) = app.post_as("lw-wrong", "/users/track", json!({})).await;
    assert_eq!(status, 401);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("Invalid API key")
    );
    let limited = app
        .store
        .create_api_key(
            "ro".into(),
            vec![Permission::UsersExportIds.as_str().into()],
        )
        .await
        .expect("key");
    let (status, _, body) = app
        .post_as(
            &limited,
            "/users/track",
            json!({"attributes": [{"external_id": "u", "x": 1}]}),
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        body["message"],
        "Access Denied: this API key lacks the 'users.track' permission"
    );

    // A stored name this version does not know grants nothing and breaks nothing.
    let odd = app
        .store
        .create_api_key(
            "odd".into(),
            vec![
                "reports.read".into(),
                Permission::UsersTrack.as_str().into(),
            ],
        )
        .await
        .expect("key");
    let track = json!({"attributes": [{"external_id": "u", "x": 1}]});
    let (status, _, body) = app.post_as(&odd, "/users/track", track).await;
    assert_eq!(status, 201, "{body}");
    let (status, _, _) = app
        .post_as(&odd, "/users/export/ids", json!({"external_ids": ["u"]}))
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn rate_limit_headers_and_429() {
    let app = spawn_app_with(ApiConfig {
        rate_limit: 2,
        ..ApiConfig::default()
    })
    .await;
    let body = json!({"attributes": [{"external_id": "u", "x": 1}]});
    let (s1, h1, _) = app.post_as(&app.key, "/users/track", body.clone()).await;
    assert_eq!(
        (
            s1,
            h1["x-ratelimit-limit"].to_str().ok(),
            h1["x-ratelimit-remaining"].to_str().ok()
        ),
        (201, Some("2"), Some("1"))
    );
    let reset: u64 = h1["x-ratelimit-reset"]
        .to_str()
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("reset is epoch seconds");
    assert!(reset > 1_700_000_000);
    app.post_as(&app.key, "/users/track", body.clone()).await;
    let (s3, h3, b3) = app.post_as(&app.key, "/users/track", body).await;
    assert_eq!(
        (s3, h3["x-ratelimit-remaining"].to_str().ok()),
        (429, Some("0"))
    );
    assert!(
        b3["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("Rate Limited")
    );
}

#[tokio::test]
async fn track_answers_in_braze_shapes() {
    let app = spawn_app().await;
    let (status, body) = app
        .post("/users/track", json!({
            "attributes": [{"external_id": "u1", "first_name": "José", "email": "jose@example.com"}, {"first_name": "nobody"}],
            "events": [{"external_id": "u1", "name": "webinar_registered", "time": "2024-05-28T10:00:00Z"}],
            "purchases": [{"external_id": "u1", "product_id": "plan", "currency": "EUR", "price": 9.5, "time": "2024-05-28T10:00:00Z"}]
        }))
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["message"], "success");
    assert_eq!(
        (
            body["attributes_processed"].as_u64(),
            body["events_processed"].as_u64(),
            body["purchases_processed"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(
        body["errors"],
        json!([{"type": "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required", "input_array": "attributes", "index": 1}])
    );

    let (status, body) = app
        .post(
            "/users/track",
            json!({"attributes": [{"external_id": "u2", "email": "nope"}]}),
        )
        .await;
    assert_eq!(status, 400, "nothing valid is a fatal error");
    assert_eq!(body["errors"][0]["index"], 0);
    assert!(
        body["errors"][0]["type"]
            .as_str()
            .unwrap_or("")
            .contains("'email' must be an email address")
    );

    let many: Vec<Json> = (0..76)
        .map(|i| json!({"external_id": format!("u{i}"), "x": i}))
        .collect();
    let (status, body) = app.post("/users/track", json!({"attributes": many})).await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("Max Input Length Exceeded"),
        "{body}"
    );
}

#[tokio::test]
async fn malformed_and_oversize_bodies_are_rejected_clearly() {
    let app = spawn_app_with(ApiConfig {
        max_body_bytes: 2048,
        ..ApiConfig::default()
    })
    .await;
    let r = app
        .http
        .post(format!("{}/users/track", app.api.url()))
        .bearer_auth(&app.key)
        .body("{\"attributes\": [\n  {\"external_id\": }]}")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 400);
    let body: Json = r.json().await.expect("json");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("Invalid JSON at line 2, column"),
        "{body}"
    );
    let big = json!({"attributes": [{"external_id": "u", "blob": "x".repeat(4096)}]});
    let (status, body) = app.post("/users/track", big).await;
    assert_eq!(status, 413);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("larger than 2048 bytes")
    );
    let (status, body) = app
        .post("/users/track", json!({"attributes": {"external_id": "u"}}))
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("'attributes' must be an array of objects"))
    );
}

#[tokio::test]
async fn attribute_semantics_and_atomic_objects() {
    let app = spawn_app().await;
    app.post("/users/track", json!({"attributes": [{"external_id": "u1", "score": 1, "tags": ["a"], "pets": [{"id": 1, "name": "Rex"}], "address": {"city": "Porto"}}]})).await;
    app.post("/users/track", json!({"attributes": [{"external_id": "u1", "score": {"inc": 4}, "tags": {"add": ["b"], "remove": ["a"]}, "_merge_objects": true,
        "pets": {"$update": [{"$identifier_key": "id", "$identifier_value": 1, "$new_object": {"age": 3}}]}, "address": {"zip": "4000"}}]})).await;
    // An object with one bad attribute changes nothing: here "score" is a number, "inc" on a string fails.
    app.post(
        "/users/track",
        json!({"attributes": [{"external_id": "u1", "nick": "x"}]}),
    )
    .await;
    let (status, body) = app.post("/users/track", json!({"attributes": [{"external_id": "u1", "first_name": "Should not stick", "nick": {"inc": 1}}]})).await;
    assert_eq!(status, 400, "{body}");
    let user = &app.export(&["u1"]).await["users"][0];
    assert_eq!(user["custom_attributes"]["score"], 5);
    assert_eq!(user["custom_attributes"]["tags"], json!(["b"]));
    assert_eq!(
        user["custom_attributes"]["pets"],
        json!([{"id": 1, "name": "Rex", "age": 3}])
    );
    assert_eq!(
        user["custom_attributes"]["address"],
        json!({"city": "Porto", "zip": "4000"})
    );
    assert!(
        user.get("first_name").is_none(),
        "the rejected object did not half-apply"
    );
    app.post(
        "/users/track",
        json!({"attributes": [{"external_id": "u1", "score": null}]}),
    )
    .await;
    assert!(
        app.export(&["u1"]).await["users"][0]["custom_attributes"]
            .get("score")
            .is_none(),
        "null removes"
    );
}

#[tokio::test]
async fn export_delete_alias_and_identify() {
    let app = spawn_app().await;
    app.post("/users/track", json!({"attributes": [{"external_id": "u1", "first_name": "Ann", "email": "ann@example.com", "company": "Acme"}]})).await;
    let (status, body) = app.post("/users/export/ids", json!({"external_ids": ["u1", "ghost"], "fields_to_export": ["external_id", "first_name", "custom_attributes"]})).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["users"],
        json!([{"external_id": "u1", "first_name": "Ann", "custom_attributes": {"company": "Acme"}}])
    );
    assert_eq!(body["invalid_user_ids"], json!(["ghost"]));
    let (_, body) = app
        .post(
            "/users/export/ids",
            json!({"email_address": "ANN@example.com"}),
        )
        .await;
    assert_eq!(body["users"][0]["external_id"], "u1");

    let (status, body) = app
        .post(
            "/users/alias/new",
            json!({"user_aliases": [{"alias_name": "anon-1", "alias_label": "web"}]}),
        )
        .await;
    assert_eq!((status, body["message"].as_str()), (201, Some("success")));
    app.post("/users/track", json!({"attributes": [{"user_alias": {"alias_name": "anon-1", "alias_label": "web"}, "plan": "trial"}]})).await;
    let (status, _) = app.post("/users/identify", json!({"aliases_to_identify": [{"external_id": "u1", "user_alias": {"alias_name": "anon-1", "alias_label": "web"}}]})).await;
    assert_eq!(status, 201);
    let user = &app.export(&["u1"]).await["users"][0];
    assert_eq!(user["custom_attributes"]["plan"], "trial");
    assert_eq!(
        user["user_aliases"],
        json!([{"alias_name": "anon-1", "alias_label": "web"}])
    );

    let too_many: Vec<String> = (0..51).map(|i| format!("u{i}")).collect();
    let (status, body) = app
        .post("/users/delete", json!({"external_ids": too_many}))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("The max number of external_ids and aliases per request was exceeded")
    );
    let (status, body) = app
        .post("/users/delete", json!({"external_ids": ["u1", "ghost"]}))
        .await;
    assert_eq!((status, body["deleted"].as_u64()), (201, Some(1)));
    assert_eq!(app.export(&["u1"]).await["users"], json!([]));
}

#[tokio::test]
async fn trigger_feed_is_ordered_and_follows_braze_rules() {
    let app = spawn_app().await;
    app.post(
        "/users/track",
        json!({"attributes": [{"external_id": "new", "lead_score": 10}]}),
    )
    .await;
    app.post(
        "/users/track",
        json!({"attributes": [{"external_id": "new", "lead_score": 10}]}),
    )
    .await;
    app.post(
        "/users/track",
        json!({"attributes": [{"external_id": "new", "lead_score": null}]}),
    )
    .await;
    app.post(
        "/users/track",
        json!({"attributes": [{"external_id": "new", "email": "a@x.io"}]}),
    )
    .await;
    app.post(
        "/users/track",
        json!({"attributes": [{"external_id": "new", "email": "b@x.io"}]}),
    )
    .await;
    app.post("/users/track", json!({"events": [{"external_id": "new", "name": "demo_requested", "time": "2024-01-01T00:00:00Z", "properties": {"source": "web"}}]})).await;
    app.post("/users/track", json!({"purchases": [{"external_id": "new", "product_id": "pro", "currency": "USD", "price": 10, "time": "2024-01-01T00:00:00Z"}]})).await;
    let feed = app.feed(0).await;
    let kinds: Vec<&str> = feed
        .iter()
        .map(|t| t["trigger"]["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        [
            "attribute_changed",
            "email_added",
            "custom_event",
            "purchase"
        ]
    );
    assert_eq!(
        feed[0]["trigger"],
        json!({"type": "attribute_changed", "name": "lead_score", "old": null, "new": 10})
    );
    assert_eq!(feed[1]["trigger"]["email"], "a@x.io");
    assert_eq!(feed[2]["trigger"]["properties"], json!({"source": "web"}));
    let after_two = app.feed(feed[1]["seq"].as_i64().unwrap_or(0)).await;
    assert_eq!(after_two.len(), 2);
    // A rejected request leaves no trigger behind.
    app.post(
        "/users/track",
        json!({"attributes": [{"external_id": "new", "lead_score": 99, "bad": {"inc": "x"}}]}),
    )
    .await;
    assert_eq!(app.feed(0).await.len(), 4);
}

/// Reads until the server closes the connection (or `bound` passes); true when it closed.
async fn closed_by_server(stream: &mut tokio::net::TcpStream, bound: std::time::Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_and_idle_connections_are_closed() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(ApiConfig {
        header_read_timeout: std::time::Duration::from_millis(200),
        ..ApiConfig::default()
    })
    .await;
    // A request head that never ends (slowloris).
    let mut stalled = tokio::net::TcpStream::connect(app.api.addr)
        .await
        .expect("connect");
    stalled
        .write_all(b"POST /users/track HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    // The bound only guards against hanging; the server closes it after 200 ms.
    assert!(
        closed_by_server(&mut stalled, std::time::Duration::from_secs(30)).await,
        "a half-sent request head is not kept open"
    );
    // A connection that sent nothing at all.
    let mut silent = tokio::net::TcpStream::connect(app.api.addr)
        .await
        .expect("connect");
    assert!(
        closed_by_server(&mut silent, std::time::Duration::from_secs(30)).await,
        "an idle connection is not kept open"
    );
    // A keep-alive connection left idle after its request.
    let mut idle = tokio::net::TcpStream::connect(app.api.addr)
        .await
        .expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    assert!(
        closed_by_server(&mut idle, std::time::Duration::from_secs(30)).await,
        "an idle keep-alive connection is not kept open"
    );
    // The server still answers.
    let (status, _, _) = app.post_as(&app.key, "/users/track", json!({})).await;
    assert_eq!(status, 400);
}
