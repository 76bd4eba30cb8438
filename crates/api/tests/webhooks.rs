//! Webhooks end to end over real HTTP: the API on port 0 with a fresh database and a
//! WebhookService, the Salesforce emulator over HTTPS, templates and credentials created through
//! the REST API, users through /users/track, jobs through the durable queue.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use leadwire_api::{ApiConfig, Permission, RunningApi};
use leadwire_delivery::retry::{Jitter, RetrySchedule};
use leadwire_delivery::ssrf::SsrfPolicy;
use leadwire_delivery::worker::ExecutionOutcome;
use leadwire_profiles::Identifier;
use leadwire_salesforce_emulator::schema::CustomFieldSpec;
use leadwire_salesforce_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig, FaultSettings,
    RunningEmulator, Share,
};
use leadwire_store::JobState;
use leadwire_webhooks::{NewJob, RenderProperties, WebhookConfig, WebhookService};
use serde_json::{Value as Json, json};

const PERMISSIONS: [Permission; 10] = [
    Permission::UsersTrack,
    Permission::UsersExportIds,
    Permission::TriggersRead,
    Permission::TemplatesRead,
    Permission::TemplatesWrite,
    Permission::CredentialsRead,
    Permission::CredentialsWrite,
    Permission::ActivityRead,
    Permission::UsersDelete,
    Permission::UsersIdentify,
];

struct App {
    api: RunningApi,
    service: Arc<WebhookService>,
    emulator: RunningEmulator,
    instance: String,
    key: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn spawn_app() -> App {
    spawn_app_with(3).await
}

/// The app with `attempts` attempts a send (answered or not).
async fn spawn_app_with(attempts: u32) -> App {
    let mut config = EmulatorConfig::loopback_with_https();
    config
        .custom_fields
        .push(CustomFieldSpec::parse("Lead_Stage__c:string:255").expect("field"));
    let emulator = Emulator::start(config).await.expect("emulator starts");
    let instance = emulator.https_url().expect("https");
    let dir = tempfile::tempdir().expect("dir");
    let store = leadwire_store::testing::test_store(dir.path()).expect("store");
    let key = store
        .create_api_key(
            "test".into(),
            PERMISSIONS.iter().map(|p| p.as_str().to_owned()).collect(),
        )
        .await
        .expect("key");
    let mut config = WebhookConfig::new();
    config.ssrf = SsrfPolicy::strict().allow_host("localhost");
    config.extra_ca_pem = vec![emulator.ca_pem().expect("CA").as_bytes().to_vec()];
    config.sender.timeout = Duration::from_secs(5);
    config.salesforce_instances = vec![instance.clone()];
    config.sender.schedule = RetrySchedule {
        max_attempts: attempts,
        max_attempts_unreachable: attempts,
        base_delay: Duration::from_millis(10),
        multiplier: 2.0,
        max_delay: Duration::from_millis(100),
        max_delay_unreachable: Duration::from_millis(100),
        max_retry_after: Duration::from_secs(2),
        jitter: Jitter::None,
    };
    let service = WebhookService::open(config, store.clone())
        .await
        .expect("webhooks open");
    let api = leadwire_api::serve_with_services(
        "127.0.0.1:0".parse().expect("addr"),
        store,
        ApiConfig::default(),
        leadwire_api::Services {
            webhooks: Some(service.clone()),
            metrics: leadwire_api::health::install_metrics(),
            ..leadwire_api::Services::default()
        },
    )
    .await
    .expect("serve");
    App {
        api,
        service,
        emulator,
        instance,
        key,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl App {
    async fn post(&self, path: &str, body: Json) -> (u16, Json) {
        let r = self
            .http
            .post(format!("{}{path}", self.api.url()))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        self.no_secret(&text);
        (status, serde_json::from_str(&text).unwrap_or(Json::Null))
    }

    async fn get(&self, path: &str) -> (u16, Json) {
        let r = self
            .http
            .get(format!("{}{path}", self.api.url()))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        self.no_secret(&text);
        (status, serde_json::from_str(&text).unwrap_or(Json::Null))
    }

    /// No response carries the client secret or a bearer token value.
    fn no_secret(&self, text: &str) {
        assert!(
            !text.contains(DEFAULT_CLIENT_SECRET),
            "client secret in a response: {text}"
        );
        for (i, _) in text.match_indices("Bearer ") {
            let rest = &text[i + 7..];
            assert!(
                rest.starts_with("[REDACTED]") || rest.starts_with("{{"),
                "a bearer token in a response: {text}"
            );
        }
    }

    async fn track_ada(&self) {
        let (status, body) = self
            .post(
                "/users/track",
                json!({"attributes": [{
                    "external_id": "u-ada", "first_name": "Ada", "last_name": "Lovelace",
                    "email": "ada@example.com", "company": "Analytical Engines Ltd"
                }]}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    async fn credential(&self) {
        let (status, body) = self
            .post(
                "/credentials/create",
                json!({"name": "salesforce", "type": "basic", "username": DEFAULT_CLIENT_ID, "password": DEFAULT_CLIENT_SECRET}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    async fn create_template(&self, definition: Json) -> String {
        let (status, body) = self.post("/templates/webhook/create", definition).await;
        assert_eq!(status, 201, "{body}");
        body["template_id"].as_str().expect("id").to_owned()
    }

    async fn enqueue(&self, template_id: &str, campaign: &str) -> String {
        self.service
            .enqueue(NewJob {
                template_id: template_id.to_owned(),
                user: Identifier::ExternalId("u-ada".into()),
                campaign_id: Some(campaign.to_owned()),
                step_id: None,
                properties: RenderProperties::default().to_json(),
                not_before: None,
                trace_context: None,
            })
            .await
            .expect("enqueue")
            .delivery_id
    }

    /// Runs due jobs until the queue has none left unfinished.
    async fn drain(&self) -> Vec<ExecutionOutcome> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut outcomes = Vec::new();
        loop {
            assert!(
                Instant::now() < deadline,
                "queue did not drain: {outcomes:?}"
            );
            match self
                .service
                .worker()
                .try_execute_job()
                .await
                .expect("queue")
            {
                ExecutionOutcome::EmptyQueue => {
                    let counts = self.service.job_counts().await.expect("counts");
                    let open = counts.get(&JobState::Queued).copied().unwrap_or(0)
                        + counts.get(&JobState::InFlight).copied().unwrap_or(0);
                    if open == 0 {
                        return outcomes;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                other => outcomes.push(other),
            }
        }
    }

    async fn activity(&self, query: &str) -> Vec<Json> {
        let (status, body) = self.get(&format!("/activity?{query}")).await;
        assert_eq!(status, 200, "{body}");
        body["entries"].as_array().expect("entries").clone()
    }
}

/// The seed's Authorization header, verbatim but for the instance and the credentials: the
/// client id and secret come from the credentials store (`:basic_auth salesforce`).
fn token_header(instance: &str) -> String {
    "{% connected_content https://[insert_instance_name].my.salesforce.com/services/oauth2/token     :method post     :basic_auth salesforce     :body grant_type=client_credentials     :save result %}Bearer {{result.access_token}}"
        .replace("https://[insert_instance_name].my.salesforce.com", instance)
}

fn create_lead(instance: &str, name: &str, body: Json) -> Json {
    json!({
        "name": name,
        "description": "Salesforce Sales Cloud > Create Lead (seed)",
        "url": format!("{instance}/services/data/v60.0/sobjects/Lead/"),
        "method": "POST",
        "headers": {"Authorization": token_header(instance), "Content-Type": "application/json"},
        "body": body,
        "write_back": [{"response_field": "id", "attribute": "salesforce_lead_id"}]
    })
}

fn english_body() -> Json {
    json!({
        "firstName": "{{${first_name}}}",
        "lastName": "{{${last_name}}}",
        "email": "{{${email_address}}}",
        "company": "{{custom_attribute.${company}}}"
    })
}

/// A seed page's Create Lead tables as written: the body's key/value rows and the header rows,
/// with the instance and credentials filled in (the linter's subject is the names).
fn seed_create_lead(prefix: &str, instance: &str) -> Json {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/seeds");
    let file = std::fs::read_dir(&dir)
        .expect("testdata/seeds")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .expect("the seed page");
    let text = std::fs::read_to_string(file).expect("seed");
    let rows: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let raw = cells.get(2)?;
            let value = raw
                .strip_prefix("{% raw %}`")
                .and_then(|v| v.strip_suffix("`{% endraw %}"))
                .or_else(|| raw.strip_prefix('`').and_then(|v| v.strip_suffix('`')))?;
            Some((cells[1].to_owned(), value.to_owned()))
        })
        .collect();
    let body: serde_json::Map<String, Json> = rows
        .iter()
        .filter(|(_, v)| v.starts_with("{{"))
        .take(4)
        .map(|(k, v)| (k.clone(), Json::String(v.clone())))
        .collect();
    let headers: serde_json::Map<String, Json> = rows
        .iter()
        .filter(|(_, v)| v.starts_with("{% connected_content") || *v == "application/json")
        .take(2)
        .map(|(k, v)| {
            let v = if v.starts_with("{%") {
                token_header(instance)
            } else {
                v.clone()
            };
            (k.clone(), Json::String(v))
        })
        .collect();
    json!({
        "name": format!("seed {prefix}"),
        "url": format!("{instance}/services/data/v60.0/sobjects/Lead/"),
        "method": "POST",
        "headers": headers,
        "body": body,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_translated_seed_templates_are_answered_with_the_names_meant() {
    let app = spawn_app().await;
    app.credential().await;
    // German: saved, with a warning per translated header and body key.
    let (status, body) = app
        .post(
            "/templates/webhook/create",
            seed_create_lead("003_", &app.instance),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let said: Vec<(String, String, String)> = body["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| {
            (
                w["field"].as_str().unwrap_or("").to_owned(),
                w["code"].as_str().unwrap_or("").to_owned(),
                w["suggestion"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expect = |field: &str, code: &str, suggestion: &str| {
        assert!(
            said.contains(&(field.into(), code.into(), suggestion.into())),
            "{field} → {suggestion} in {said:#?}"
        );
    };
    expect("body key 'Vorname'", "unknown_field", "FirstName");
    expect("body key 'Nachname'", "unknown_field", "LastName");
    expect("body key 'E-Mail'", "unknown_field", "Email");
    expect("body key 'Unternehmen'", "unknown_field", "Company");
    let text = body["warnings"].to_string();
    assert!(
        text.contains("'Autorisierung' is German for 'Authorization'"),
        "{text}"
    );
    assert!(
        text.contains("'Content-Typ' is German for 'Content-Type'"),
        "{text}"
    );
    // The describe call answered (the org's custom field is known), not the built-in schema.
    assert!(
        app.emulator
            .request_log()
            .iter()
            .any(|e| e.path.ends_with("/describe")),
        "the org was asked for its fields"
    );

    // Korean: the header names cannot be sent at all; the refusal says which were meant.
    let (status, body) = app
        .post(
            "/templates/webhook/create",
            seed_create_lead("004_", &app.instance),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let text = body.to_string();
    assert!(
        text.contains("'승인' is Korean for 'Authorization'"),
        "{text}"
    );
    assert!(
        text.contains("'콘텐츠-유형' is Korean for 'Content-Type'"),
        "{text}"
    );
}

/// The German seed's key/value rows (Create Lead table), read from the seed file itself.
fn german_body() -> Option<Json> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/seeds");
    let file = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("003_"))
        })?;
    let text = std::fs::read_to_string(file).ok()?;
    let rows: serde_json::Map<String, Json> = text
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let value = cells
                .get(2)?
                .strip_prefix("{% raw %}`")?
                .strip_suffix("`{% endraw %}")?;
            value
                .starts_with("{{")
                .then(|| (cells[1].to_owned(), Json::String(value.to_owned())))
        })
        .take(4)
        .collect();
    Some(Json::Object(rows))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_create_lead_writes_back_and_update_sets_stage() {
    let app = spawn_app().await;
    app.credential().await;
    app.track_ada().await;
    let create = app
        .create_template(create_lead(&app.instance, "Create Lead", english_body()))
        .await;

    app.enqueue(&create, "camp-create").await;
    assert_eq!(app.drain().await, vec![ExecutionOutcome::Delivered]);
    let leads = app.emulator.leads();
    assert_eq!(leads.len(), 1, "exactly one lead: {leads:?}");
    let lead = &leads[0];
    assert_eq!(lead["FirstName"], "Ada");
    assert_eq!(lead["LastName"], "Lovelace");
    assert_eq!(lead["Email"], "ada@example.com");
    assert_eq!(lead["Company"], "Analytical Engines Ltd");
    let lead_id = lead["Id"].as_str().expect("id").to_owned();

    // Written back onto the profile…
    let (status, export) = app
        .post("/users/export/ids", json!({"external_ids": ["u-ada"]}))
        .await;
    assert_eq!(status, 200, "{export}");
    assert_eq!(
        export["users"][0]["custom_attributes"]["salesforce_lead_id"],
        json!(lead_id)
    );
    // …raising the usual attribute-changed trigger, marked as a write-back.
    let (_, feed) = app.get("/triggers?after=0").await;
    let changed: Vec<&Json> = feed["triggers"]
        .as_array()
        .expect("feed")
        .iter()
        .filter(|t| {
            t["trigger"]["type"] == "attribute_changed"
                && t["trigger"]["name"] == "salesforce_lead_id"
        })
        .collect();
    assert_eq!(changed.len(), 1, "{feed}");
    assert_eq!(changed[0]["source"], "write_back");
    assert_eq!(changed[0]["trigger"]["new"], json!(lead_id));
    let jobs = app
        .service
        .jobs(Some("camp-create".into()), 10)
        .await
        .expect("jobs");
    assert_eq!(jobs[0].state, JobState::Delivered);
    assert_eq!(jobs[0].last_status, Some(201));

    // The Update template addresses the lead through the written-back attribute.
    let update = app
        .create_template(json!({
            "name": "Update Lead to MQL",
            "url": format!("{}/services/data/v60.0/sobjects/Lead/{{{{custom_attribute.${{salesforce_lead_id}}}}}}", app.instance),
            "method": "PATCH",
            "headers": {"Authorization": token_header(&app.instance), "Content-Type": "application/json"},
            "body": {"Lead_Stage__c": "MQL"}
        }))
        .await;
    app.enqueue(&update, "camp-update").await;
    assert_eq!(app.drain().await, vec![ExecutionOutcome::Delivered]);
    let leads = app.emulator.leads();
    assert_eq!(leads.len(), 1);
    assert_eq!(leads[0]["Lead_Stage__c"], "MQL");
    assert!(app.activity("").await.is_empty(), "no errors logged");

    // Preview for the stored user renders the PATCH without sending it.
    let before = app.emulator.request_log().len();
    let (status, preview) = app
        .post(
            "/templates/webhook/preview",
            json!({"template_id": update, "external_id": "u-ada"}),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["outcome"], "rendered");
    assert!(
        preview["request"]["url"]
            .as_str()
            .expect("url")
            .ends_with(&lead_id)
    );
    assert_eq!(
        preview["request"]["headers"][0],
        json!(["Authorization", "[REDACTED]"])
    );
    let patches = app
        .emulator
        .request_log()
        .iter()
        .skip(before)
        .filter(|e| e.method == "PATCH")
        .count();
    assert_eq!(patches, 0, "preview sent nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_log_shows_abort_placeholder_url_and_invalid_field_without_secrets() {
    let app = spawn_app().await;
    app.credential().await;
    app.track_ada().await;

    // An abort.
    let abort = app
        .create_template(json!({
            "name": "Abort without company",
            "url": format!("{}/services/data/v60.0/sobjects/Lead/", app.instance),
            "body": {"company": "{% if custom_attribute.${plan} == blank %}{% abort_message('no plan') %}{% endif %}x"}
        }))
        .await;
    app.enqueue(&abort, "camp-abort").await;
    // The seed's placeholder token URL.
    let mut placeholder = create_lead(&app.instance, "Placeholder", english_body());
    placeholder["headers"]["Authorization"] = json!(token_header(
        "https://[insert_instance_name].my.salesforce.com"
    ));
    let placeholder = app.create_template(placeholder).await;
    app.enqueue(&placeholder, "camp-placeholder").await;
    let german = german_body();
    if let Some(body) = &german {
        let de = app
            .create_template(create_lead(&app.instance, "Lead erstellen", body.clone()))
            .await;
        app.enqueue(&de, "camp-de").await;
    } else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "seed 003 missing under CI=true"
        );
        eprintln!("SKIPPED (German part): seed 003 is missing");
    }
    let outcomes = app.drain().await;
    assert!(
        outcomes.contains(&ExecutionOutcome::Aborted),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&ExecutionOutcome::RenderFailed),
        "{outcomes:?}"
    );
    assert_eq!(app.emulator.lead_count(), 0);

    let aborted = app.activity("type=aborted").await;
    assert_eq!(aborted.len(), 1, "{aborted:?}");
    assert_eq!(aborted[0]["message"], "no plan");
    assert_eq!(aborted[0]["campaign_id"], "camp-abort");
    assert_eq!(aborted[0]["user_id"], "u-ada");

    let render = app.activity("campaign_id=camp-placeholder").await;
    assert_eq!(render.len(), 1, "{render:?}");
    assert_eq!(render[0]["type"], "render_error");
    assert!(
        render[0]["message"]
            .as_str()
            .expect("message")
            .contains("https://[insert_instance_name].my.salesforce.com/services/oauth2/token is not a valid URL"),
        "{}",
        render[0]["message"]
    );

    if german.is_some() {
        let failed = app.activity("type=failed&campaign_id=camp-de").await;
        assert_eq!(failed.len(), 1, "{failed:?}");
        let entry = &failed[0];
        assert_eq!(entry["response"]["status"], 400);
        let message = entry["message"].as_str().expect("message");
        assert!(message.contains("INVALID_FIELD"), "{message}");
        assert!(
            message.contains("No such column 'Vorname' on sobject of type Lead"),
            "{message}"
        );
        assert!(
            entry["request"]["headers"]
                .as_array()
                .expect("headers")
                .contains(&json!(["Authorization", "[REDACTED]"]))
        );
        let jobs = app
            .service
            .jobs(Some("camp-de".into()), 1)
            .await
            .expect("jobs");
        assert_eq!(jobs[0].state, JobState::Failed);
    }

    // Filters by user and tailing after an id.
    let all = app.activity("user_id=u-ada").await;
    assert_eq!(all.len(), if german.is_some() { 3 } else { 2 });
    let first = all
        .iter()
        .filter_map(|e| e["id"].as_i64())
        .min()
        .expect("ids");
    let after = app.activity(&format!("after_id={first}")).await;
    assert_eq!(after.len(), all.len() - 1);
    assert!(app.activity("user_id=nobody").await.is_empty());
    let (status, bad) = app.get("/activity?type=bounces").await;
    assert_eq!(status, 400, "{bad}");

    // Credentials are listed without their secrets (App::get checks every response).
    let (status, creds) = app.get("/credentials/list").await;
    assert_eq!(status, 200);
    assert_eq!(creds["credentials"][0]["name"], "salesforce");
    assert_eq!(creds["credentials"][0]["username"], DEFAULT_CLIENT_ID);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_crud_errors_and_test_send() {
    let app = spawn_app().await;
    app.credential().await;
    app.track_ada().await;

    // A Liquid error is reported with field, line and column.
    let (status, body) = app
        .post(
            "/templates/webhook/create",
            json!({"name": "broken", "url": "https://example.com/x", "body": {"a": "ok", "b": "one\n{% if %}"}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["field"], "body key 'b'");
    assert_eq!(body["errors"][0]["line"], 2);
    assert!(body["errors"][0]["column"].is_u64(), "{body}");
    let (status, body) = app
        .post(
            "/templates/webhook/create",
            json!({"name": "bad url", "url": "ftp://example.com/x"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errors"][0]["field"], "URL");

    let id = app
        .create_template(create_lead(&app.instance, "Create Lead", english_body()))
        .await;
    let (status, dup) = app
        .post(
            "/templates/webhook/create",
            create_lead(&app.instance, "Create Lead", english_body()),
        )
        .await;
    assert_eq!(status, 409, "{dup}");
    let (status, info) = app
        .get(&format!("/templates/webhook/info?template_id={id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(info["method"], "POST");
    assert_eq!(info["write_back"][0]["attribute"], "salesforce_lead_id");
    let mut changed = create_lead(&app.instance, "Create Lead v2", english_body());
    changed["template_id"] = json!(id);
    let (status, updated) = app.post("/templates/webhook/update", changed).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["template"]["name"], "Create Lead v2");
    let (_, list) = app.get("/templates/webhook/list").await;
    assert_eq!(list["count"], 1);

    // A custom user in Braze's export shape renders the same as in the render context's.
    let (status, preview) = app
        .post(
            "/templates/webhook/preview",
            json!({"template_id": id, "user": {"external_id": "grace", "email": "grace@example.com", "first_name": "Grace", "last_name": "Hopper", "custom_attributes": {"company": "Navy"}}}),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    let body: Json = serde_json::from_str(preview["request"]["body"].as_str().expect("body"))
        .expect("JSON body");
    assert_eq!(body["email"], "grace@example.com", "{preview}");
    assert_eq!(body["company"], "Navy", "{preview}");

    // Test send for a custom user: one real request, its answer shown, logged as a test send.
    let (status, sent) = app
        .post(
            "/templates/webhook/test_send",
            json!({"template_id": id, "user": {"profile": {"first_name": "Grace", "last_name": "Hopper", "email_address": "grace@example.com"}, "custom_attributes": {"company": "Navy"}}}),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["sent"], true);
    assert_eq!(sent["response"]["status"], 201, "{sent}");
    assert!(
        sent["response"]["body"]
            .as_str()
            .expect("body")
            .contains("\"success\":true")
    );
    assert_eq!(app.emulator.lead_count(), 1);
    let logged = app.activity("type=test_send").await;
    assert_eq!(logged.len(), 1);
    assert!(
        logged[0]["message"]
            .as_str()
            .expect("m")
            .starts_with("[TEST SEND]")
    );

    let (status, _) = app
        .post("/templates/webhook/archive", json!({"template_id": id}))
        .await;
    assert_eq!(status, 200);
    let (_, list) = app.get("/templates/webhook/list").await;
    assert_eq!(list["count"], 0);
    let (_, list) = app
        .get("/templates/webhook/list?include_archived=true")
        .await;
    assert_eq!(list["templates"][0]["archived"], true);
    let (status, missing) = app.get("/templates/webhook/info?template_id=wt_nope").await;
    assert_eq!(status, 404, "{missing}");
}

#[tokio::test]
async fn webhook_endpoints_need_permissions_and_a_service() {
    let dir = tempfile::tempdir().expect("dir");
    let store = leadwire_store::testing::test_store(dir.path()).expect("store");
    let key = store
        .create_api_key("t".into(), vec![Permission::TemplatesRead.as_str().into()])
        .await
        .expect("key");
    let api = leadwire_api::serve(
        "127.0.0.1:0".parse().expect("addr"),
        store,
        ApiConfig::default(),
    )
    .await
    .expect("serve");
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/templates/webhook/list", api.url()))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 503);
    let r = http
        .get(format!("{}/activity", api.url()))
        .bearer_auth(&key)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_store_a_faulty_salesforce_and_a_revocation_lose_and_double_nothing() {
    let app = spawn_app_with(12).await;
    app.credential().await;
    let mut definition = create_lead(&app.instance, "Create Lead", english_body());
    definition["lookup_field"] = json!("Email");
    let template = app.create_template(definition).await;
    let users: Vec<String> = (0..40).map(|i| format!("u-{i}")).collect();
    let attributes: Vec<Json> = users
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({"external_id": id, "first_name": format!("P{i}"), "last_name": "Lovelace",
                   "email": format!("p{i}@example.com"), "company": "Analytical Engines Ltd"})
        })
        .collect();
    let (status, body) = app
        .post("/users/track", json!({"attributes": attributes}))
        .await;
    assert_eq!(status, 201, "{body}");
    app.emulator
        .set_faults(FaultSettings {
            seed: 7,
            internal_error: Share::try_from(0.1).expect("share"),
            too_many_requests: Share::try_from(0.05).expect("share"),
            drop_before_write: Share::try_from(0.1).expect("share"),
            drop_after_write: Share::try_from(0.1).expect("share"),
            retry_after_secs: 0,
            ..FaultSettings::default()
        })
        .expect("faults");
    let enqueue = |user: String| {
        let service = app.service.clone();
        let template = template.clone();
        async move {
            service
                .enqueue(NewJob {
                    template_id: template,
                    user: Identifier::ExternalId(user),
                    campaign_id: Some("camp-faults".into()),
                    step_id: None,
                    properties: RenderProperties::default().to_json(),
                    not_before: None,
                    trace_context: None,
                })
                .await
                .expect("enqueue");
        }
    };
    for user in &users[..20] {
        enqueue(user.clone()).await;
    }
    app.drain().await;
    // Salesforce revokes every session between the two halves.
    app.emulator.revoke_all_tokens();
    for user in &users[20..] {
        enqueue(user.clone()).await;
    }
    app.drain().await;
    let counts = app.service.job_counts().await.expect("counts");
    assert_eq!(
        counts.get(&JobState::Delivered).copied(),
        Some(40),
        "every send delivered: {counts:?} {:#?}",
        app.activity("type=failed").await
    );
    let mut per_email: std::collections::HashMap<String, usize> = Default::default();
    for lead in app.emulator.leads() {
        *per_email
            .entry(lead["Email"].as_str().unwrap_or("").to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_email.len(), 40, "a lead for every user");
    assert!(
        per_email.values().all(|n| *n == 1),
        "no lead twice: {per_email:?}"
    );
    // The faults did happen and were settled by lookups, not by luck.
    let faults = app
        .emulator
        .request_log()
        .iter()
        .filter(|e| e.fault.is_some())
        .count();
    assert!(faults > 5, "only {faults} faults");
    assert!(
        !app.activity("type=token_refreshed").await.is_empty(),
        "the revoked token was replaced"
    );
}

/// The value of the `/metrics` sample whose name and labels include every pair in `labels`,
/// summed over the samples that match.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_that_match_the_activity_log() {
    let app = spawn_app().await;
    let plain = reqwest::Client::new();
    let get = |path: &'static str| {
        let plain = plain.clone();
        let url = format!("{}{path}", app.api.url());
        async move {
            let r = plain.get(url).send().await.expect("request");
            let status = r.status().as_u16();
            (status, r.text().await.expect("body"))
        }
    };
    // No API key needed for any of the three.
    let (status, body) = get("/healthz").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, body) = get("/readyz").await;
    assert_eq!(status, 503, "workers not started yet: {body}");
    assert!(
        body.contains("the webhook workers are not running"),
        "{body}"
    );

    app.credential().await;
    app.track_ada().await;
    let create = app
        .create_template(create_lead(&app.instance, "Create Lead", english_body()))
        .await;
    let mut no_company = create_lead(&app.instance, "No company", english_body());
    no_company["body"]["company"] = json!("");
    let refused = app.create_template(no_company).await;
    app.enqueue(&create, "camp-metrics").await;
    app.enqueue(&refused, "camp-metrics").await;
    app.enqueue(&create, "camp-metrics").await;
    app.drain().await;

    let (status, text) = get("/metrics").await;
    assert_eq!(status, 200, "{text}");
    let counted = |outcome: &str| {
        sample(
            &text,
            "leadwire_webhook_sends_total",
            &[("campaign", "camp-metrics"), ("outcome", outcome)],
        )
    };
    let failed = app.activity("type=failed&campaign_id=camp-metrics").await;
    assert_eq!(counted("delivered"), 2.0, "{text}");
    assert_eq!(counted("failed"), failed.len() as f64, "{text}");
    assert_eq!(
        failed.len(),
        1,
        "Salesforce refused the lead without a company"
    );
    assert_eq!(
        sample(
            &text,
            "leadwire_webhook_sends_total",
            &[
                ("campaign", "camp-metrics"),
                ("outcome", "failed"),
                ("status_class", "4xx")
            ]
        ),
        1.0
    );
    assert!(
        sample(
            &text,
            "leadwire_connected_content_requests_total",
            &[("kind", "token")]
        ) >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "leadwire_store_transaction_seconds_count", &[]) > 0.0,
        "{text}"
    );
    assert!(
        text.contains("leadwire_webhook_jobs{state=\"delivered\"}"),
        "{text}"
    );
    assert!(
        sample(&text, "leadwire_salesforce_api_calls_used", &[]) >= 3.0,
        "the org's usage from Sforce-Limit-Info: {text}"
    );
    // Nothing consumes the feed in this test: both consumers are behind by Ada's triggers.
    for consumer in ["campaigns", "canvases"] {
        assert!(
            sample(
                &text,
                "leadwire_feed_lag_triggers",
                &[("consumer", consumer)]
            ) >= 1.0,
            "{text}"
        );
    }
    assert_eq!(
        sample(&text, "leadwire_webhook_oldest_job_age_seconds", &[]),
        0.0,
        "every job settled: {text}"
    );
    assert!(
        text.contains("leadwire_circuit_state{host=\"")
            && !text.contains("leadwire_circuit_state{host=\"127.0.0.1\"} 2"),
        "the emulator's circuit is known and not open: {text}"
    );

    app.service.start();
    let (status, body) = get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"database\":\"ok\""), "{body}");
    app.service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_cannot_build_a_huge_string() {
    let app = spawn_app().await;
    app.track_ada().await;
    // 28 doublings of 8 bytes would be 2 GB; the render stops at the output cap instead.
    let body = format!(
        "{{% assign s = 'xxxxxxxx' %}}{}{{{{ s | size }}}}",
        "{% assign s = s | append: s %}".repeat(28)
    );
    let template = app
        .create_template(json!({
            "name": "Doubling", "url": "https://example.com/hook", "method": "POST",
            "body": body,
        }))
        .await;
    let (status, preview) = app
        .post(
            "/templates/webhook/preview",
            json!({"template_id": template, "external_id": "u-ada"}),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["outcome"], "render_error", "{preview}");
    assert!(
        preview["message"]
            .as_str()
            .is_some_and(|m| m.contains("assign or capture")),
        "{preview}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_basic_credential_echoed_in_base64_is_redacted_in_preview() {
    let app = spawn_app().await;
    app.credential().await;
    // What `:basic_auth salesforce` sends, copied into a header the redactor does not know.
    let echoed = format!("{DEFAULT_CLIENT_ID}:{DEFAULT_CLIENT_SECRET}");
    let (status, preview) = app
        .post(
            "/templates/webhook/preview",
            json!({
                "template": {"name": "Echo", "url": "https://example.com/hook", "method": "POST",
                             "headers": {"X-Echo": format!("Basic {{{{ '{echoed}' | base64_encode }}}}")},
                             "body": format!("copy={{{{ '{echoed}' | base64_encode }}}}")},
                "user": {"external_id": "echo"}
            }),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["outcome"], "rendered", "{preview}");
    assert_eq!(
        preview["request"]["headers"][0],
        json!(["X-Echo", "Basic [REDACTED]"]),
        "{preview}"
    );
    assert_eq!(preview["request"]["body"], "copy=[REDACTED]", "{preview}");
}
