//! The harness every end-to-end test shares: the Salesforce emulator over HTTPS, leadwire started
//! through `App::start` on a fresh database, the seed's templates saved, the REST API on port 0.
#![allow(dead_code)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use leadwire_app::{App, AppConfig, DatabaseConfig};
use leadwire_delivery::ssrf::SsrfPolicy;
use leadwire_profiles::Identifier;
use leadwire_salesforce_emulator::schema::CustomFieldSpec;
use leadwire_salesforce_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, Emulator, EmulatorConfig, RunningEmulator,
};
use leadwire_store::{Consumer, JobState, StoreError};
use leadwire_webhooks::templates::TemplateDefinition;
use serde_json::{Value as Json, json};

pub struct Harness {
    pub dir: tempfile::TempDir,
    /// The database (a file under `dir`, or a schema on `LEADWIRE_TEST_DATABASE_URL`).
    pub database: DatabaseConfig,
    pub app: App,
    pub api: leadwire_api::RunningApi,
    pub key: String,
    pub emulator: RunningEmulator,
    pub http: reqwest::Client,
    /// How leadwire runs here (kept across [`Harness::restart`]).
    pub drive: Drive,
    /// Simulated time ahead of the wall clock, for Delays and windows (see [`Harness::now`]).
    pub offset: Mutex<chrono::Duration>,
}

/// What runs in the background of a harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drive {
    /// The feed runners and the delivery workers (`workers: true`).
    Background,
    /// Only delivery; the test drives the feed passes ([`Harness::settle_by_hand`]).
    DeliveryOnly,
    /// Nothing: the test drives passes and starts delivery itself if it needs it.
    Nothing,
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

/// The emulator's OAuth token, fetched (and cached 15 minutes) by Connected Content.
pub fn token_header(base: &str) -> String {
    format!(
        "{{% connected_content {base}/services/oauth2/token :method post :body client_id={DEFAULT_CLIENT_ID}&client_secret={DEFAULT_CLIENT_SECRET}&grant_type=client_credentials :cache_max_age 900 :save result %}}Bearer {{{{result.access_token}}}}"
    )
}

/// The URL of the lead whose id was written back to the profile.
pub fn lead_by_written_back_id(base: &str) -> String {
    format!(
        "{base}/services/data/v60.0/sobjects/Lead/{{{{custom_attribute.${{salesforce_lead_id}}}}}}"
    )
}

pub fn update_lead_template(base: &str) -> Json {
    json!({
        "name": UPDATE_LEAD,
        "url": lead_by_written_back_id(base),
        "method": "PATCH",
        "body": {"Lead_Stage__c": "{{api_trigger_properties.${stage} | default: 'MQL'}}"},
        "headers": {"Authorization": token_header(base), "Content-Type": "application/json"}
    })
}

/// Every permission, for tests that do not test permissions.
pub fn all_permissions() -> Vec<String> {
    leadwire_api::Permission::ALL
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect()
}

/// leadwire's configuration for a database, trusting the emulator.
pub fn config_for(
    database: &DatabaseConfig,
    emulator: &RunningEmulator,
    workers: bool,
) -> AppConfig {
    let mut config = AppConfig::with_database(database.clone());
    config.webhooks.ssrf = SsrfPolicy::strict()
        .allow_host("localhost")
        .allow_host("127.0.0.1");
    config.webhooks.extra_ca_pem = vec![emulator.ca_pem().expect("ca").as_bytes().to_vec()];
    // Braze's 2-second limit on a Connected Content call is a production setting: on a loaded
    // test machine a token fetch (a debug-build TLS handshake among a hundred) can take longer,
    // the token renders empty and the lead is refused (401). Tests must not depend on that speed.
    config.webhooks.connected_content.timeout = Duration::from_secs(60);
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
    harness_driven(if workers {
        Drive::Background
    } else {
        Drive::Nothing
    })
    .await
}

pub async fn harness_driven(drive: Drive) -> Harness {
    let emulator = emulator().await;
    let base = emulator.https_url().expect("https");
    let dir = tempfile::tempdir().expect("dir");
    let database = leadwire_store::testing::test_database(dir.path());
    let app = start_app(&database, &emulator, drive).await;
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
    let api = serve(&app).await;
    Harness {
        dir,
        database,
        app,
        api,
        key,
        emulator,
        http: reqwest::Client::new(),
        drive,
        offset: Mutex::new(chrono::Duration::zero()),
    }
}

async fn start_app(database: &DatabaseConfig, emulator: &RunningEmulator, drive: Drive) -> App {
    let app = App::start(config_for(database, emulator, drive == Drive::Background))
        .await
        .expect("leadwire starts");
    if drive == Drive::DeliveryOnly {
        app.webhooks.start();
    }
    app
}

async fn serve(app: &App) -> leadwire_api::RunningApi {
    app.serve_api("127.0.0.1:0".parse().expect("addr"), Default::default())
        .await
        .expect("api")
}

impl Harness {
    /// Stops leadwire (API, runners, workers; jobs in flight finish) and starts a new one on the
    /// same data directory, driven as before. The clock, the key and the emulator carry over.
    ///
    /// Restart with no job queued ([`Harness::settle_by_hand`], [`Harness::deliveries_done`]):
    /// stopping delivery while its worker is claiming jobs can leave the claimed jobs in flight,
    /// unsent, until their lease (5 minutes) runs out.
    pub async fn restart(self) -> Harness {
        let Harness {
            dir,
            database,
            app,
            api,
            key,
            emulator,
            http,
            drive,
            offset,
        } = self;
        api.shutdown().await;
        app.stop().await;
        let app = start_app(&database, &emulator, drive).await;
        let api = serve(&app).await;
        Harness {
            dir,
            database,
            app,
            api,
            key,
            emulator,
            http,
            drive,
            offset,
        }
    }

    /// The harness's clock: the wall clock plus the simulated offset.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + *self.offset.lock().expect("clock")
    }

    pub fn advance_clock(&self, by: chrono::Duration) {
        *self.offset.lock().expect("clock") += by;
    }

    /// An API key with exactly these permissions.
    pub async fn key_with(&self, permissions: &[leadwire_api::Permission]) -> String {
        self.app
            .store
            .create_api_key(
                "limited".into(),
                permissions.iter().map(|p| p.as_str().to_owned()).collect(),
            )
            .await
            .expect("key")
    }

    pub async fn post(&self, path: &str, body: Json) -> (u16, Json) {
        self.post_as(&self.key, path, body).await
    }

    pub async fn post_as(&self, key: &str, path: &str, body: Json) -> (u16, Json) {
        let r = self
            .http
            .post(format!("{}{path}", self.api.url()))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Json::Null))
    }

    pub async fn get_as(&self, key: &str, path_and_query: &str) -> (u16, Json) {
        let r = self
            .http
            .get(format!("{}{path_and_query}", self.api.url()))
            .bearer_auth(key)
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

    /// For [`Drive::DeliveryOnly`]: runs campaign passes (at the wall clock, like the background
    /// runner) and Canvas passes (at [`Harness::now`], so Delays and windows end when the test
    /// says) until [`Harness::idle_at`] holds. A generous bound only guards against hanging
    /// forever.
    pub async fn settle_by_hand(&self) {
        let campaigns = self.app.campaign_runner();
        let canvases = self.app.canvas_runner();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let now = self.now();
            let a = campaigns.pass().await.expect("campaign pass");
            let b = canvases.pass_at(now).await.expect("canvas pass");
            if self.idle_at(now).await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "did not settle: jobs {:?}; unfinished {:?}",
                self.app.webhooks.job_counts().await.expect("counts"),
                self.unfinished_jobs().await
            );
            if a.idle() && b.idle() {
                // Waiting for delivery.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// Like `App::idle`, at the harness's clock and stricter about jobs: from one snapshot, both
    /// consumers read the whole feed, no journey is due at `now` and no job is queued or in
    /// flight, even one due later (a retry, or one handed back for a moment because its host was
    /// saturated, which `App::idle` takes for a send scheduled later). The tests using this
    /// schedule no rate-limited sends.
    pub async fn idle_at(&self, now: DateTime<Utc>) -> bool {
        self.app
            .store
            .read(move |tx| {
                let end = tx.feed_end()?;
                let mut caught_up = true;
                for consumer in Consumer::ALL {
                    caught_up &= tx.feed_position(consumer)? >= end;
                }
                Ok::<_, StoreError>(
                    caught_up && tx.outstanding_jobs()? == 0 && tx.due_journey_count(now)? == 0,
                )
            })
            .await
            .expect("idle")
    }

    /// Waits until no job is queued or in flight (delivery in the background). The bound only
    /// guards against hanging forever.
    pub async fn deliveries_done(&self) {
        self.eventually("every job delivered", async || {
            self.job_count(JobState::Queued).await == 0
                && self.job_count(JobState::InFlight).await == 0
        })
        .await;
    }

    /// The jobs not yet finished, for failure messages.
    pub async fn unfinished_jobs(&self) -> Vec<leadwire_store::JobInfo> {
        self.app
            .webhooks
            .jobs(None, 1000)
            .await
            .expect("jobs")
            .into_iter()
            .filter(|j| matches!(j.state, JobState::Queued | JobState::InFlight))
            .collect()
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

    /// The `Lead_Stage__c` of the Salesforce lead whose id was written back to the user.
    pub async fn lead_stage(&self, external_id: &str) -> Json {
        let id = self
            .profile(external_id)
            .await
            .custom
            .get("salesforce_lead_id")
            .cloned()
            .unwrap_or_else(|| panic!("{external_id}'s lead id was not written back"));
        self.emulator
            .leads()
            .into_iter()
            .find(|l| l["Id"] == id)
            .map(|l| l["Lead_Stage__c"].clone())
            .expect("lead exists")
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
