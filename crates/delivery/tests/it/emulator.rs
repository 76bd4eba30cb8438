//! The seed's Salesforce templates against the in-process emulator over HTTPS: Create Lead with
//! the connected_content token call and write-back, Update Lead to MQL, the German body rejected
//! with INVALID_FIELD, the placeholder token URL reported, and no secret in any activity entry.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use leadwire_delivery::memory::JobState;
use leadwire_delivery::redact::Redactor;
use leadwire_delivery::sender::{ClientSettings, guarded_client};
use leadwire_delivery::ssrf::{GuardedFetcher, SsrfPolicy};
use leadwire_delivery::webhook::{Body, Method, ValueTyping, WebhookTemplate, WriteBackRule};
use leadwire_delivery::worker::{ActivityKind, ExecutionOutcome, FailureKind, Job};
use leadwire_http_client::HttpFetcher;
use leadwire_liquid::{ConnectedContent, ConnectedContentConfig};
use leadwire_salesforce_emulator::schema::CustomFieldSpec;
use leadwire_salesforce_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig, RunningEmulator,
};

use leadwire_delivery::batch::BatchConfig;
use leadwire_salesforce::limits::BudgetPolicy;
use leadwire_salesforce::target::Instances;

use crate::helpers::*;

/// The seed's Authorization header value, verbatim but for instance and credentials.
pub(crate) fn token_header(instance: &str) -> String {
    "{% connected_content https://[insert_instance_name].my.salesforce.com/services/oauth2/token     :method post     :body client_id=[insert_client_id]&client_secret=[insert_client_secret]&grant_type=client_credentials     :save result %}Bearer {{result.access_token}}"
        .replace("https://[insert_instance_name].my.salesforce.com", instance)
        .replace("[insert_client_id]", DEFAULT_CLIENT_ID)
        .replace("[insert_client_secret]", DEFAULT_CLIENT_SECRET)
}

pub(crate) fn create_lead(instance: &str, body: Vec<(String, String)>) -> WebhookTemplate {
    WebhookTemplate {
        name: "Salesforce Sales Cloud > Create Lead".into(),
        url: format!("{instance}/services/data/v60.0/sobjects/Lead/"),
        method: Method::Post,
        body: Body::KeyValue(body),
        headers: vec![
            ("Authorization".into(), token_header(instance)),
            ("Content-Type".into(), "application/json".into()),
        ],
        value_typing: ValueTyping::Strings,
        write_back: vec![WriteBackRule {
            response_field: "id".into(),
            attribute: "salesforce_lead_id".into(),
        }],
        lookup_field: None,
        batch: false,
    }
}

pub(crate) fn english_body() -> Vec<(String, String)> {
    [
        ("firstName", "{{${first_name}}}"),
        ("lastName", "{{${last_name}}}"),
        ("email", "{{${email_address}}}"),
        ("company", "{{custom_attribute.${company}}}"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The German seed's key/value rows (Create Lead table), read from the seed file itself.
fn german_body() -> Option<Vec<(String, String)>> {
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
    let rows: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let value = cells
                .get(2)?
                .strip_prefix("{% raw %}`")?
                .strip_suffix("`{% endraw %}")?;
            value
                .starts_with("{{")
                .then(|| (cells[1].to_owned(), value.to_owned()))
        })
        .take(4)
        .collect();
    Some(rows)
}

pub(crate) struct Salesforce {
    pub emulator: RunningEmulator,
    pub instance: String,
    pub rig: Rig,
}

pub(crate) async fn salesforce() -> Salesforce {
    salesforce_with(|_| {}, BudgetPolicy::default(), None).await
}

/// The emulator as `configure` leaves it, and a rig spending its API allowance by `budget`.
pub(crate) async fn salesforce_with(
    configure: impl FnOnce(&mut EmulatorConfig),
    budget: BudgetPolicy,
    batch: Option<BatchConfig>,
) -> Salesforce {
    let mut config = EmulatorConfig::loopback_with_https();
    config
        .custom_fields
        .push(CustomFieldSpec::parse("Lead_Stage__c:string:255").expect("field"));
    configure(&mut config);
    let emulator = Emulator::start(config).await.expect("emulator starts");
    let instance = emulator.https_url().expect("https");
    let ca = emulator.ca_pem().expect("CA").as_bytes().to_vec();
    let policy = SsrfPolicy::strict().allow_host("localhost");
    let rig = rig(RigOptions {
        policy: policy.clone(),
        extra_ca_pem: vec![ca.clone()],
        redactor: Redactor::new().with_secret(DEFAULT_CLIENT_SECRET),
        budget,
        ..RigOptions::default()
    });
    // connected_content goes through the same guard and trusts the same CA.
    let policy = Arc::new(policy);
    let fetch_client = guarded_client(
        &ClientSettings {
            extra_ca_pem: vec![ca],
            pool_max_idle_per_host: None,
        },
        policy.clone(),
    )
    .expect("client");
    let fetcher = GuardedFetcher::new(
        Arc::new(HttpFetcher::new(
            fetch_client,
            tokio::runtime::Handle::current(),
        )),
        policy,
    );
    let connected = Arc::new(ConnectedContent::new(
        Arc::new(fetcher),
        ConnectedContentConfig {
            // Braze's 2 s limit is a real-time race on a busy machine (a debug-build TLS
            // handshake); here the limit only guards against a hang.
            timeout: Duration::from_secs(20),
            ..ConnectedContentConfig::default()
        },
    ));
    let Rig {
        worker,
        queue,
        activity,
        circuits,
        clock,
    } = rig;
    let worker = worker
        .with_connected_content(connected)
        .with_salesforce_instances(Instances::new([&instance]));
    let rig = Rig {
        worker: match batch {
            Some(config) => worker.with_batching(config),
            None => worker,
        },
        queue,
        activity,
        circuits,
        clock,
    };
    Salesforce {
        emulator,
        instance,
        rig,
    }
}

pub(crate) fn assert_no_secrets(sf: &Salesforce) {
    let token = sf.emulator.issue_access_token();
    let entries = format!("{:?}", sf.rig.activity.entries());
    assert!(
        !entries.contains(DEFAULT_CLIENT_SECRET),
        "client secret in the activity log: {entries}"
    );
    assert!(
        !entries.contains(&token),
        "access token in the activity log: {entries}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_create_lead_then_update_to_mql() {
    let sf = salesforce().await;
    let create = compiled(&create_lead(&sf.instance, english_body()));
    sf.rig.queue.push(job("create-1", &create));
    assert_eq!(drain(&sf.rig).await, vec![ExecutionOutcome::Delivered]);

    let leads = sf.emulator.leads();
    assert_eq!(leads.len(), 1, "exactly one lead");
    let lead = &leads[0];
    assert_eq!(lead["FirstName"], "Ada");
    assert_eq!(lead["LastName"], "Lovelace");
    assert_eq!(lead["Email"], "ada@example.com");
    assert_eq!(lead["Company"], "Analytical Engines Ltd");
    let id = lead["Id"].as_str().expect("id").to_owned();
    assert_eq!(
        sf.rig.queue.written_back(),
        vec![(
            "u-ada".to_owned(),
            "salesforce_lead_id".to_owned(),
            serde_json::json!(id)
        )]
    );
    assert_eq!(
        sf.rig.queue.state("create-1"),
        Some(JobState::Delivered {
            status: 201,
            attempts: 1
        })
    );

    // The Update template addresses the lead through the written-back attribute.
    let update = WebhookTemplate {
        name: "Salesforce Sales Cloud > Update Lead to MQL".into(),
        url: format!(
            "{}/services/data/v60.0/sobjects/Lead/{{{{custom_attribute.${{salesforce_lead_id}}}}}}",
            sf.instance
        ),
        method: Method::Patch,
        body: Body::KeyValue(vec![("Lead_Stage__c".into(), "MQL".into())]),
        headers: vec![
            ("Authorization".into(), token_header(&sf.instance)),
            ("Content-Type".into(), "application/json".into()),
        ],
        value_typing: ValueTyping::Strings,
        write_back: vec![],
        lookup_field: None,
        batch: false,
    };
    let context = serde_json::json!({
        "profile": {"user_id": "u-ada", "first_name": "Ada"},
        "custom_attributes": {"salesforce_lead_id": id}
    });
    sf.rig.queue.push(Job::new(
        "update-1",
        "u-ada",
        compiled(&update),
        Arc::new(context),
    ));
    assert_eq!(drain(&sf.rig).await, vec![ExecutionOutcome::Delivered]);
    assert_eq!(
        sf.rig.queue.state("update-1"),
        Some(JobState::Delivered {
            status: 204,
            attempts: 1
        })
    );
    let leads = sf.emulator.leads();
    assert_eq!(leads.len(), 1);
    assert_eq!(leads[0]["Lead_Stage__c"], "MQL");
    assert!(
        sf.rig.activity.entries().is_empty(),
        "{:?}",
        sf.rig.activity.entries()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn german_body_is_rejected_with_invalid_field() {
    let Some(body) = german_body() else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "seed 003 missing under CI=true"
        );
        eprintln!("SKIPPED: seed 003 is missing");
        return;
    };
    let keys: Vec<&str> = body.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["Vorname", "Nachname", "E-Mail", "Unternehmen"]);
    let sf = salesforce().await;
    sf.rig
        .queue
        .push(job("de-1", &compiled(&create_lead(&sf.instance, body))));
    assert_eq!(drain(&sf.rig).await, vec![ExecutionOutcome::Failed]);
    assert_eq!(sf.emulator.lead_count(), 0);
    assert!(matches!(
        sf.rig.queue.state("de-1"),
        Some(JobState::Failed {
            kind: FailureKind::Terminal,
            ..
        })
    ));
    let entries = sf.rig.activity.entries();
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry.kind, ActivityKind::Failed);
    let response = entry.response.as_ref().expect("response logged");
    assert_eq!(response.status, 400);
    assert!(response.body.contains("INVALID_FIELD"), "{}", response.body);
    assert!(entry.message.contains("INVALID_FIELD"), "{}", entry.message);
    assert!(
        entry
            .message
            .contains("No such column 'Vorname' on sobject of type Lead"),
        "{}",
        entry.message
    );
    let request = entry.request.as_ref().expect("request logged");
    assert!(
        request
            .headers
            .iter()
            .any(|(n, v)| n == "Authorization" && v == "[REDACTED]")
    );
    assert_no_secrets(&sf);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn placeholder_token_url_reaches_the_activity_log() {
    let sf = salesforce().await;
    let mut template = create_lead(&sf.instance, english_body());
    template.headers[0].1 = token_header("https://[insert_instance_name].my.salesforce.com");
    sf.rig.queue.push(job("ph-1", &compiled(&template)));
    assert_eq!(drain(&sf.rig).await, vec![ExecutionOutcome::RenderFailed]);
    assert!(sf.emulator.request_log().is_empty(), "nothing was sent");
    let entries = sf.rig.activity.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].kind, ActivityKind::RenderError);
    assert!(
        entries[0].message.contains("header 'Authorization': https://[insert_instance_name].my.salesforce.com/services/oauth2/token is not a valid URL"),
        "{}",
        entries[0].message
    );
    assert_no_secrets(&sf);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_attempts_with_bearer_tokens_log_no_secret() {
    // The token comes from the emulator; the webhook goes to a server that fails and echoes.
    let sf = salesforce().await;
    let (base, script) = script_server().await;
    let token = sf.emulator.issue_access_token();
    script.push(Reply::status(503).body(&format!(r#"{{"seen":"Bearer {token}"}}"#)));
    let mut template = create_lead(&sf.instance, english_body());
    template.url = format!("{}/hook", base.replace("127.0.0.1", "localhost"));
    sf.rig.queue.push(job("r-1", &compiled(&template)));
    assert_eq!(
        drain(&sf.rig).await.last(),
        Some(&ExecutionOutcome::Delivered)
    );
    let seen = script.seen();
    assert_eq!(
        seen[0].headers["authorization"],
        format!("Bearer {token}"),
        "the token was really sent"
    );
    assert_eq!(sf.rig.activity.entries()[0].kind, ActivityKind::Retrying);
    assert_no_secrets(&sf);
}
