//! connected_content against a real local HTTP server: caching rules, POST vs GET, `:save`,
//! `:retry`, the time limit, non-JSON and non-2xx answers, the 1 MB cap, credentials.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use leadwire_http_client::{ClientConfig, HttpFetcher, build_client};
use leadwire_liquid::{
    ConnectedContent, ConnectedContentConfig, Context, CredentialStore, Outcome, Template,
    TokenCredential,
};

#[derive(Clone, Default)]
struct Hits(Arc<Mutex<HashMap<String, usize>>>);

impl Hits {
    fn bump(&self, route: &str) -> usize {
        let mut map = self.0.lock().expect("lock");
        let n = map.entry(route.to_string()).or_default();
        *n += 1;
        *n
    }
    fn get(&self, route: &str) -> usize {
        self.0
            .lock()
            .expect("lock")
            .get(route)
            .copied()
            .unwrap_or(0)
    }
}

async fn spawn_server() -> (String, Hits) {
    let hits = Hits::default();
    let app = Router::new()
        .route("/json", get(|State(h): State<Hits>| async move {
            let n = h.bump("json");
            axum::Json(serde_json::json!({"token": "abc", "n": n, "name": "José 김민준"}))
        }))
        .route("/array", get(|| async { axum::Json(serde_json::json!([1, 2, 3])) }))
        .route("/token", post(|State(h): State<Hits>, headers: HeaderMap, body: String| async move {
            let n = h.bump("token");
            let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            axum::Json(serde_json::json!({"access_token": format!("tok-{n}"), "body": body, "content_type": ct}))
        }))
        .route("/services/oauth2/token", post(|State(h): State<Hits>| async move {
            // Every third call fails like Salesforce under load.
            let n = h.bump("oauth");
            if n % 3 == 0 {
                (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "7")], "{\"error\":\"unavailable\"}").into_response()
            } else {
                axum::Json(serde_json::json!({"access_token": format!("00D!sf-{n}"), "token_type": "Bearer", "instance_url": "x"})).into_response()
            }
        }))
        .route("/text", get(|State(h): State<Hits>| async move {
            h.bump("text");
            "plain <b>text</b>"
        }))
        .route("/status/{code}", get(|Path(code): Path<u16>| async move {
            (StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT), axum::Json(serde_json::json!({"x": 1})))
        }))
        .route("/slow", get(|| async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            axum::Json(serde_json::json!({"late": true}))
        }))
        .route("/big", get(|| async { "x".repeat(1024 * 1024 + 10) }))
        .route("/flaky", get(|State(h): State<Hits>| async move {
            let n = h.bump("flaky");
            if n <= 2 { (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response() } else { axum::Json(serde_json::json!({"ok": true})).into_response() }
        }))
        .route("/down", get(|State(h): State<Hits>| async move {
            h.bump("down");
            StatusCode::INTERNAL_SERVER_ERROR
        }))
        .route("/redirect", get(|| async { (StatusCode::FOUND, [("location", "/json")]) }))
        .route("/headers", get(|headers: HeaderMap| async move {
            let map: serde_json::Map<String, serde_json::Value> = headers
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), serde_json::Value::String(v.to_str().unwrap_or("").to_string())))
                .collect();
            axum::Json(serde_json::Value::Object(map))
        }))
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), hits)
}

struct Creds;
impl CredentialStore for Creds {
    fn basic_auth(&self, name: &str) -> Option<(String, String)> {
        (name == "sf").then(|| ("user".to_string(), "p@ss".to_string()))
    }
    fn token_auth(&self, name: &str) -> Option<TokenCredential> {
        (name == "tok").then(|| TokenCredential {
            headers: vec![("X-Api-Key".into(), "k-123".into())],
            allowed_domain: Some("127.0.0.1".into()),
        })
    }
}

struct Harness {
    base: String,
    hits: Hits,
    client: Arc<ConnectedContent>,
    clock: Arc<Mutex<Duration>>,
}

async fn harness() -> Harness {
    let (base, hits) = spawn_server().await;
    let fetcher = HttpFetcher::new(
        build_client(&ClientConfig::default()).expect("client"),
        tokio::runtime::Handle::current(),
    );
    let config = ConnectedContentConfig {
        retry_base_delay: Duration::from_millis(5),
        ..ConnectedContentConfig::default()
    };
    let clock = Arc::new(Mutex::new(Duration::ZERO));
    let start = Instant::now();
    let c2 = clock.clone();
    let client = ConnectedContent::new(Arc::new(fetcher), config)
        .with_credentials(Arc::new(Creds))
        .with_clock(move || start + *c2.lock().expect("lock"));
    Harness {
        base,
        hits,
        client: Arc::new(client),
        clock,
    }
}

impl Harness {
    async fn render(&self, source: &str) -> Result<Outcome, leadwire_liquid::Error> {
        let source = source.replace("BASE", &self.base);
        let client = self.client.clone();
        tokio::task::spawn_blocking(move || {
            let template = Template::parse(&source)?;
            template.render(&Context::new().with_connected_content(client))
        })
        .await
        .expect("render thread")
    }

    async fn text(&self, source: &str) -> String {
        match self.render(source).await {
            Ok(Outcome::Rendered(s)) => s,
            other => panic!("expected text, got {other:?}"),
        }
    }

    fn advance(&self, by: Duration) {
        *self.clock.lock().expect("lock") += by;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_response_becomes_an_object_with_status_code() {
    let h = harness().await;
    let out = h.text("{% connected_content BASE/json :save r %}{{ r.token }} {{ r.__http_status_code__ }} {{ r.name }}").await;
    assert_eq!(out, "abc 200 José 김민준");
    // Without :save the response lands in `connected`; an array gets no status code.
    assert_eq!(
        h.text("{% connected_content BASE/json %}{{ connected.token }}")
            .await,
        "abc"
    );
    assert_eq!(h.text("{% connected_content BASE/array :save a %}{{ a | join: ',' }}|{{ a.__http_status_code__ }}").await, "1,2,3|");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_is_cached_for_five_minutes_and_no_cache_bypasses() {
    let h = harness().await;
    let t = "{% connected_content BASE/json :save r %}{{ r.n }}";
    assert_eq!(h.text(t).await, "1");
    assert_eq!(
        h.text(t).await,
        "1",
        "second GET within 5 minutes is served from cache"
    );
    assert_eq!(h.hits.get("json"), 1);
    h.advance(Duration::from_secs(299));
    assert_eq!(h.text(t).await, "1");
    h.advance(Duration::from_secs(2));
    assert_eq!(h.text(t).await, "2", "after 300 s the entry expired");
    assert_eq!(
        h.text("{% connected_content BASE/json :save r :no_cache %}{{ r.n }}")
            .await,
        "3"
    );
    assert_eq!(h.hits.get("json"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_is_not_cached_unless_cache_max_age_and_bodies_never_share() {
    let h = harness().await;
    let t = "{% connected_content BASE/token :method post :body client_id=a :save r %}{{ r.access_token }}";
    assert_eq!(h.text(t).await, "tok-1");
    assert_eq!(
        h.text(t).await,
        "tok-2",
        "POST without :cache_max_age is never cached (Braze)"
    );
    let cached = "{% connected_content BASE/token :method post :body id={{ x }} :cache_max_age 900 :save r %}{{ r.access_token }}|{{ r.body }}";
    assert_eq!(h.text(&cached.replace("{{ x }}", "1")).await, "tok-3|id=1");
    assert_eq!(
        h.text(&cached.replace("{{ x }}", "1")).await,
        "tok-3|id=1",
        "same body reuses the cached token"
    );
    assert_eq!(
        h.text(&cached.replace("{{ x }}", "2")).await,
        "tok-4|id=2",
        "a different body is a different entry"
    );
    assert_eq!(h.hits.get("token"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_tokens_are_reused_dropped_on_request_and_failures_are_outcomes() {
    let h = harness().await;
    let t = "{% connected_content BASE/services/oauth2/token :method post :body client_id=a&client_secret=s&grant_type=client_credentials :save result %}Bearer {{result.access_token}}";
    for _ in 0..5 {
        assert_eq!(
            h.text(t).await,
            "Bearer 00D!sf-1",
            "reused without :cache_max_age"
        );
    }
    assert_eq!(h.hits.get("oauth"), 1);
    h.advance(Duration::from_secs(2 * 3600 + 1));
    assert_eq!(
        h.text(t).await,
        "Bearer 00D!sf-2",
        "a new token after its lifetime"
    );
    assert!(
        h.client.forget_token("00D!sf-2"),
        "the cached token is dropped"
    );
    assert!(!h.client.forget_token("00D!sf-2"), "only once");
    // The third call fails: an outcome with the endpoint's answer, not `Bearer `.
    match h.render(t).await {
        Ok(Outcome::TokenFailed(f)) => {
            assert_eq!(f.status, Some(503));
            assert_eq!(f.response_body, "{\"error\":\"unavailable\"}");
            assert!(
                f.response_headers
                    .iter()
                    .any(|(k, v)| k == "retry-after" && v == "7")
            );
            assert!(f.url.ends_with("/services/oauth2/token"));
            assert!(
                f.request_body
                    .as_deref()
                    .is_some_and(|b| b.contains("grant_type"))
            );
        }
        other => panic!("expected a failed token call, got {other:?}"),
    }
    assert_eq!(
        h.text(t).await,
        "Bearer 00D!sf-4",
        "a failure is not cached"
    );
    assert_eq!(h.hits.get("oauth"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_type_sets_headers_and_json_encodes_form_bodies() {
    let h = harness().await;
    let out = h
        .text("{% connected_content BASE/token :method post :content_type application/json :body a=1&b=x%2By :save r %}{{ r.content_type }} {{ r.body }}")
        .await;
    assert_eq!(out, r#"application/json {"a":"1","b":"x+y"}"#);
    let out = h
        .text(
            "{% connected_content BASE/token :method post :body a=1 :save r %}{{ r.content_type }}",
        )
        .await;
    assert_eq!(out, "application/x-www-form-urlencoded");
    let out = h
        .text(r#"{% assign t = "s3cr3t" %}{% connected_content BASE/headers :headers {"X-Token": "{{ t }}", "X-Other": "v"} :save r %}{{ r.x-token }}|{{ r.x-other }}|{{ r.accept }}|{{ r.user-agent | slice: 0, 12 }}"#)
        .await;
    assert_eq!(out, "s3cr3t|v|*/*|Braze Sender");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_come_from_the_store() {
    let h = harness().await;
    let out = h
        .text("{% connected_content BASE/headers :basic_auth sf :save r %}{{ r.authorization }}")
        .await;
    assert_eq!(out, "Basic dXNlcjpwQHNz");
    let out = h
        .text("{% connected_content BASE/headers :auth_credentials tok :save r %}{{ r.x-api-key }}")
        .await;
    assert_eq!(out, "k-123");
    let missing = h
        .render("{% connected_content BASE/headers :basic_auth nope %}")
        .await;
    assert_eq!(
        missing,
        Ok(Outcome::Aborted {
            reason: "connected_content credential 'nope' does not exist".into()
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_json_is_inserted_verbatim_and_non_2xx_renders_empty() {
    let h = harness().await;
    assert_eq!(
        h.text("[{% connected_content BASE/text %}]").await,
        "[plain <b>text</b>]"
    );
    assert_eq!(
        h.text("[{% connected_content BASE/status/404 :save r %}{{ r.x }}]")
            .await,
        "[]"
    );
    assert_eq!(
        h.text("{% connected_content BASE/status/500 :save r %}{% if r == nil %}nil{% endif %}")
            .await,
        "nil"
    );
    assert_eq!(
        h.text("[{% connected_content BASE/redirect :save r %}{{ r.token }}]")
            .await,
        "[]",
        "redirects are not followed"
    );
    assert_eq!(h.hits.get("json"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_limit_and_size_cap_render_empty() {
    let h = harness().await;
    let started = Instant::now();
    assert_eq!(
        h.text("[{% connected_content BASE/slow :save r %}{{ r.late }}]")
            .await,
        "[]"
    );
    assert!(
        started.elapsed() < Duration::from_millis(2900),
        "the 2 s limit cut the 3 s answer short"
    );
    assert_eq!(
        h.text("[{% connected_content BASE/big %}]").await,
        "[]",
        "a body over 1 MB is not inserted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_recovers_or_aborts_after_five() {
    let h = harness().await;
    assert_eq!(
        h.text("{% connected_content BASE/flaky :retry :save r %}{{ r.ok }}")
            .await,
        "true"
    );
    assert_eq!(h.hits.get("flaky"), 3);
    let out = h.render("{% connected_content BASE/down :retry %}").await;
    match out {
        Ok(Outcome::Aborted { reason }) => {
            assert!(reason.contains("failed after 5 retries"), "{reason}")
        }
        other => panic!("expected an abort, got {other:?}"),
    }
    assert_eq!(h.hits.get("down"), 6, "one attempt and five retries");
    // Without :retry a failure is soft: one call, empty value.
    assert_eq!(
        h.text("[{% connected_content BASE/down :no_cache %}]")
            .await,
        "[]"
    );
    assert_eq!(h.hits.get("down"), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_url_reports_braze_message() {
    let h = harness().await;
    let err = h
        .render("{% connected_content https://[insert_instance_name].my.salesforce.com/services/oauth2/token :method post :save result %}")
        .await
        .expect_err("invalid URL is an error");
    assert_eq!(
        err.message,
        "https://[insert_instance_name].my.salesforce.com/services/oauth2/token is not a valid URL"
    );
    assert_eq!(err.location.line, 1);
}
