//! PostgreSQL goes away and comes back: leadwire answers 503 (changing nothing) while it is gone,
//! and afterwards carries on with nothing lost. The database sits behind a TCP proxy in this test
//! that can drop every connection and refuse new ones.
//!
//! Needs `LEADWIRE_TEST_DATABASE_URL` (PostgreSQL); prints SKIPPED without it.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use leadwire_app::{App, DatabaseConfig, PostgresConfig};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP proxy that forwards to `upstream` while up; `cut` drops every open connection and
/// refuses new ones until `restore`.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let (flag, gen_tx) = (up.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let upstream = upstream.clone();
                let mut cut = gen_tx.subscribe();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            port,
            up,
            generation,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// `url` with its host and port replaced by the proxy's.
fn through(url: &str, port: u16) -> (String, String) {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (userinfo, after) = rest.rsplit_once('@').map_or(("", rest), |(u, a)| (u, a));
    let (hostport, path) = after.split_once('/').unwrap_or((after, ""));
    let at = if userinfo.is_empty() { "" } else { "@" };
    (
        format!("{scheme}://{userinfo}{at}127.0.0.1:{port}/{path}"),
        hostport.to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_get_503_while_the_database_is_gone_and_nothing_is_lost() {
    let Ok(url) = std::env::var(leadwire_store::testing::TEST_DATABASE_URL) else {
        println!("SKIPPED: set LEADWIRE_TEST_DATABASE_URL to a PostgreSQL server");
        return;
    };
    let (_, upstream) = through(&url, 0);
    let proxy = Proxy::start(upstream).await;
    let (proxied, _) = through(&url, proxy.port);
    let dir = tempfile::tempdir().expect("dir");
    let DatabaseConfig::Postgres(fresh) = leadwire_store::testing::test_database(dir.path()) else {
        unreachable!("LEADWIRE_TEST_DATABASE_URL is set")
    };
    let database = DatabaseConfig::Postgres(PostgresConfig::new(proxied).with_schema(fresh.schema));
    let emulator = common::emulator().await;
    let app = App::start(common::config_for(&database, &emulator, true))
        .await
        .expect("starts");
    let key = app
        .store
        .create_api_key("t".into(), common::all_permissions())
        .await
        .expect("key");
    let api = app
        .serve_api("127.0.0.1:0".parse().expect("addr"), Default::default())
        .await
        .expect("api");
    let http = reqwest::Client::new();
    let track = |external_id: &'static str| {
        let (http, url, key) = (
            http.clone(),
            format!("{}/users/track", api.url()),
            key.clone(),
        );
        async move {
            let r = http
                .post(url)
                .bearer_auth(key)
                .json(&json!({"attributes": [{"external_id": external_id, "lead_score": 1}]}))
                .send()
                .await
                .expect("request");
            let status = r.status().as_u16();
            let retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap_or_default().to_owned());
            (status, retry_after, r.text().await.unwrap_or_default())
        }
    };

    assert_eq!(track("before").await.0, 201);
    proxy.cut();
    let (status, retry_after, body) = track("during").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry_after.as_deref(), Some("5"));
    assert!(body.contains("database is unreachable"), "{body}");
    proxy.restore();
    // The pool's connections were cut; the next transactions open new ones.
    let mut after = track("after").await;
    for _ in 0..50 {
        if after.0 == 201 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = track("after").await;
    }
    assert_eq!(after.0, 201, "{}", after.2);

    let found = app
        .store
        .find_profiles(vec![
            leadwire_profiles::Identifier::ExternalId("before".into()),
            leadwire_profiles::Identifier::ExternalId("during".into()),
            leadwire_profiles::Identifier::ExternalId("after".into()),
        ])
        .await
        .expect("reads");
    let ids: Vec<_> = found
        .found
        .iter()
        .filter_map(|p| p.external_id.clone())
        .collect();
    assert_eq!(
        ids,
        ["before", "after"],
        "the refused request changed nothing"
    );
    api.shutdown().await;
    app.stop().await;
}
