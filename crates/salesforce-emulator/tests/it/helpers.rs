//! A typed test client around a running emulator.

use leadwire_salesforce_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub const VERSION: &str = "v60.0";

pub struct TestOrg {
    pub emulator: RunningEmulator,
    pub client: reqwest::Client,
    pub base: String,
    pub token: String,
}

/// One answer: status, headers and the body parsed as JSON (`Null` when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The single error of a Salesforce error array.
    pub fn error_code(&self) -> &str {
        self.body[0]["errorCode"].as_str().unwrap_or("<none>")
    }

    pub fn message(&self) -> &str {
        self.body[0]["message"].as_str().unwrap_or("<none>")
    }
}

pub fn standard_config() -> EmulatorConfig {
    EmulatorConfig {
        custom_fields: vec![
            leadwire_salesforce_emulator::schema::CustomFieldSpec::parse(
                "Lead_Stage__c:string:255",
            )
            .expect("valid spec"),
        ],
        external_id_fields: vec!["Ext_Id__c".to_owned()],
        ..EmulatorConfig::default()
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client builds")
}

impl TestOrg {
    pub async fn start() -> Self {
        Self::with(standard_config()).await
    }

    pub async fn with(config: EmulatorConfig) -> Self {
        let emulator = Emulator::start(config).await.expect("emulator starts");
        let base = emulator.http_url().expect("http listener");
        let token = emulator.issue_access_token();
        TestOrg {
            emulator,
            client: http_client(),
            base,
            token,
        }
    }

    pub fn data_url(&self, path: &str) -> String {
        format!("{}/services/data/{VERSION}/{path}", self.base)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("request answered");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body read");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text.clone()))
        };
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    pub fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        self.client.request(method, url).bearer_auth(&self.token)
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self.request(method, &self.data_url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(request).await
    }

    pub async fn create(&self, body: Value) -> Answer {
        self.call(Method::POST, "sobjects/Lead/", Some(body)).await
    }

    /// Creates a valid lead and returns its id.
    pub async fn create_lead(&self, last_name: &str) -> String {
        let answer = self
            .create(serde_json::json!({"LastName": last_name, "Company": "Acme"}))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        answer.body["id"].as_str().expect("id").to_owned()
    }
}
