//! The harness every end-to-end test shares: the Salesforce emulator over HTTPS, leadwire started
//! through `App::start` on a fresh database, the seed's templates saved, the REST API on port 0.
#![allow(dead_code)]

use std::time::Duration;

use leadwire_app::{App, AppConfig};
use leadwire_delivery::ssrf::SsrfPolicy;
use leadwire_profiles::Identifier;
use leadwire_salesforce_emulator::schema::CustomFieldSpec;
use leadwire_salesforce_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig, RunningEmulator,
};
use leadwire_store::JobState;
use leadwire_webhooks::templates::TemplateDefinition;
use serde_json::{Value as Json, json};

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub app: App,
    pub api: leadwire_api::RunningApi,
    pub key: String,
    pub emulator: RunningEmulator,
    pub http: reqwest::Client,
}

pub const CREATE_LEAD: &str = "Salesforce Sales Cloud > Create Lead";
pub const UPDATE_LEAD: &str = "Salesforce Sales Cloud > Update Lead to MQL";

pub fn create_lead_template(base: &str) -> Json {
    // The seed's Create Lead template, verbatim but for the instance and the credentials.
    json!({
        "name": CREATE_LEAD,
        "url": format!("{base}/services/data/v60.0/sobjects/Lead/"),
        "method": "POST",
        "body": {"firstName": "{{${first_name}}}", "lastName": "{{${last_name}}}", "email": "{{${email_address}}}", "company": "{{custom_attribute.${company}}}"},
        "headers": {
            "Authorization": format!("{{% connected_content {base}/services/oauth2/token     :method post     :body client_id={DEFAULT_CLIENT_ID}&client_secret={DEFAULT_CLIENT_SECRET}&grant_type=client_credentials     :save result %}}Bearer {{{{result.access_token}}}}"),
            "Content-Type": "application/json"
        },
        "write_back": [{"response_field": "id", "attribute": "salesforce_lead_id"}]
    })
}

pub fn update_lead_template(base: &str) -> Json {
    json!({
        "name": UPDATE_LEAD,
        "url": format!("{base}/services/data/v60.0/sobjects/Lead/{{{{custom_attribute.${{salesforce_lead_id}}}}}}"),
        "method": "PATCH",
        "body": {"Lead_Stage__c": "{{api_trigger_properties.${stage} | default: 'MQL'}}"},
        "headers": {
            "Authorization": format!("{{% connected_content {base}/services/oauth2/token :method post :body client_id={DEFAULT_CLIENT_ID}&client_secret={DEFAULT_CLIENT_SECRET}&grant_type=client_credentials :cache_max_age 900 :save result %}}Bearer {{{{result.access_token}}}}"),
            "Content-Type": "application/json"
        }
    })
}

/// Every permission, for tests that do not test permissions.
pub fn all_permissions() -> Vec<String> {
    leadwire_api::Permission::ALL
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect()
}

/// leadwire's configuration for a data directory, trusting the emulator.
pub fn config_for(dir: &std::path::Path, emulator: &RunningEmulator, workers: bool) -> AppConfig {
    let mut config = AppConfig::new(dir);
    config.webhooks.ssrf = SsrfPolicy::strict()
        .allow_host("localhost")
        .allow_host("127.0.0.1");
    config.webhooks.extra_ca_pem = vec![emulator.ca_pem().expect("ca").as_bytes().to_vec()];
    config.workers = workers;
    config
}

pub async fn emulator() -> RunningEmulator {
    let mut config = EmulatorConfig::loopback_with_https();
    config
        .custom_fields
        .push(CustomFieldSpec::parse("Lead_Stage__c:string:255").expect("field"));
    config
        .custom_fields
        .push(CustomFieldSpec::parse("Lead_Score__c:double").expect("field"));
    Emulator::start(config).await.expect("emulator")
}

pub async fn harness() -> Harness {
    harness_with(true).await
}

/// `workers: false` starts no feed runner and no delivery worker (tests drive passes by hand).
pub async fn harness_with(workers: bool) -> Harness {
    let emulator = emulator().await;
    let base = emulator.https_url().expect("https");
    let dir = tempfile::tempdir().expect("dir");
    let app = App::start(config_for(dir.path(), &emulator, workers))
        .await
        .expect("leadwire starts");
    for t in [create_lead_template(&base), update_lead_template(&base)] {
        app.webhooks
            .create_template(TemplateDefinition::from_json(&t).expect("definition"))
            .await
            .expect("template saves");
    }
    let key = app
        .store
        .create_api_key("t".into(), all_permissions())
        .await
        .expect("key");
    let api = app
        .serve_api("127.0.0.1:0".parse().expect("addr"), Default::default())
        .await
        .expect("api");
    Harness {
        dir,
        app,
        api,
        key,
        emulator,
        http: reqwest::Client::new(),
    }
}

impl Harness {
    pub async fn post(&self, path: &str, body: Json) -> (u16, Json) {
        let r = self
            .http
            .post(format!("{}{path}", self.api.url()))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Json::Null))
    }

    pub async fn track(&self, body: Json) {
        let (status, answer) = self.post("/users/track", body).await;
        assert_eq!(status, 201, "{answer}");
    }

    /// Waits until both engines consumed the whole feed and no job is queued (due) or in
    /// flight. A generous bound only guards against hanging forever.
    pub async fn settle(&self) {
        if !self
            .app
            .settle(Duration::from_secs(60))
            .await
            .expect("settle")
        {
            panic!(
                "did not settle: jobs {:?}",
                self.app.webhooks.job_counts().await.expect("counts")
            );
        }
    }

    pub async fn job_count(&self, state: JobState) -> u64 {
        self.app
            .webhooks
            .job_counts()
            .await
            .expect("counts")
            .get(&state)
            .copied()
            .unwrap_or(0)
    }

    pub fn leads_with_email(&self, email: &str) -> Vec<Json> {
        self.emulator
            .leads()
            .into_iter()
            .filter(|l| l["Email"] == email)
            .collect()
    }

    pub async fn profile(&self, external_id: &str) -> leadwire_profiles::Profile {
        let found = self
            .app
            .store
            .find_profiles(vec![Identifier::ExternalId(external_id.into())])
            .await
            .expect("find");
        found.found.into_iter().next().expect("profile exists")
    }

    /// Polls `check` until it holds; the bound only guards against hanging forever.
    pub async fn eventually(&self, what: &str, mut check: impl AsyncFnMut() -> bool) {
        for _ in 0..3000 {
            if check().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{what} never happened");
    }
}
