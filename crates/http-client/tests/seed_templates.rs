//! Every template in the seed pages (`testdata/seeds/`, the same Braze page in five languages)
//! renders as Braze would: the Create Lead body and Authorization header, the Update Lead URL and
//! body. Templates are read from the seed files themselves (the `{% raw %}` spans in their tables).

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::post;
use leadwire_http_client::{ClientConfig, HttpFetcher, build_client};
use leadwire_liquid::{ConnectedContent, ConnectedContentConfig, Context, Outcome, Template};

fn seed_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/seeds");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "seed folder {} is missing under CI=true",
            dir.display()
        );
        eprintln!("SKIPPED: seed folder {} is missing", dir.display());
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    files
}

/// `(key, template)` rows of the seed's tables: `| key | {% raw %}`template`{% endraw %} |`.
fn table_templates(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let cell = cells.iter().find(|c| c.starts_with("{% raw %}`"))?;
            let template = cell
                .strip_prefix("{% raw %}`")?
                .strip_suffix("`{% endraw %}")?;
            let key = cells.get(1).copied().unwrap_or_default();
            Some((key.to_string(), template.to_string()))
        })
        .collect()
}

fn jose() -> serde_json::Value {
    serde_json::json!({
        "profile": {"user_id": "00Q5e00000AbCdEFGH", "first_name": "José", "last_name": "Müller", "email_address": "jose@example.com"},
        "custom_attributes": {"company": "Acme 주식회사"}
    })
}

async fn token_server() -> String {
    let app = Router::new().route(
        "/services/oauth2/token",
        post(|body: String| async move {
            let ok = body.contains("grant_type=client_credentials");
            axum::Json(serde_json::json!({"access_token": if ok { "00Dxx!token" } else { "" }, "token_type": "Bearer"}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_templates_render_as_braze_would() {
    let files = seed_files();
    if files.is_empty() {
        return;
    }
    let base = token_server().await;
    let fetcher = HttpFetcher::new(
        build_client(&ClientConfig::default()).expect("client"),
        tokio::runtime::Handle::current(),
    );
    let client = Arc::new(ConnectedContent::new(
        Arc::new(fetcher),
        ConnectedContentConfig::default(),
    ));
    for file in files {
        let text = std::fs::read_to_string(&file).expect("seed readable");
        let rows = table_templates(&text);
        assert!(
            rows.len() >= 8,
            "{}: expected the Create and Update tables, found {} templates",
            file.display(),
            rows.len()
        );
        for (key, source) in rows {
            let client = client.clone();
            let base = base.clone();
            let file_name = file.display().to_string();
            tokio::task::spawn_blocking(move || {
                let template = Template::parse(&source).unwrap_or_else(|e| panic!("{file_name} {key}: {e}"));
                let context = Context::new().with_braze(&jose()).with_connected_content(client.clone());
                let rendered = template.render(&context);
                if source.contains("connected_content") {
                    // Verbatim, the placeholder instance is reported the way Braze's activity log does.
                    let err = rendered.expect_err("placeholder URL must fail");
                    assert_eq!(err.message, "https://[insert_instance_name].my.salesforce.com/services/oauth2/token is not a valid URL");
                    // With a real instance (here a local token endpoint) it becomes a bearer header.
                    let local = source.replace("https://[insert_instance_name].my.salesforce.com", &base);
                    let out = Template::parse(&local).and_then(|t| t.render(&context)).expect("renders");
                    assert_eq!(out, Outcome::Rendered("Bearer 00Dxx!token".into()), "{file_name} {key}");
                } else if source.starts_with("https://") {
                    let out = rendered.expect("URL renders").into_rendered().unwrap_or_default();
                    assert!(
                        out == "https://[insert_instance_name].my.salesforce.com/services/data/v60.0/sobjects/Lead/"
                            || out == "https://[insert_instance_name].my.salesforce.com/services/data/v60.0/sobjects/Lead/00Q5e00000AbCdEFGH",
                        "{file_name} {key}: {out}"
                    );
                } else {
                    let out = rendered.expect("renders").into_rendered().unwrap_or_default();
                    let expected = ["José", "Müller", "jose@example.com", "Acme 주식회사", "application/json", "MQL"];
                    assert!(expected.contains(&out.as_str()), "{file_name} {key}: {out:?}");
                }
            })
            .await
            .expect("render thread");
        }
    }
}
