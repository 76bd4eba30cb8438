//! The web dashboard over real HTTP, served by `App::serve_api` beside the REST API, against the
//! bundled Salesforce emulator: sign-in, sessions and CSRF, roles, the template screens (compose,
//! Liquid errors and lint findings by field and line, preview, test send), the activity log and
//! its live stream, and the language negotiation.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{CREATE_LEAD, Harness, create_lead_template};
use leadwire_dashboard::Role;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT_LANGUAGE, COOKIE, LOCATION, SET_COOKIE};

const PASSWORD: &str = "correct horse battery staple";

/// A client that keeps cookies by hand and does not follow redirects (to see them).
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: HashMap<String, String>,
    language: Option<&'static str>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    set_cookies: Vec<String>,
    body: String,
}

impl Browser {
    fn new(base: &str) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: base.to_owned(),
            cookies: HashMap::new(),
            language: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let mut request = request.header(COOKIE, self.cookie_header());
        if let Some(lang) = self.language {
            request = request.header(ACCEPT_LANGUAGE, lang);
        }
        let response = request.send().await.expect("dashboard answers");
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let set_cookies: Vec<String> = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        for c in &set_cookies {
            let pair = c.split(';').next().unwrap_or("");
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        let body = response.text().await.expect("body");
        Page {
            status,
            location,
            set_cookies,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }

    /// Signs in through the form; panics unless it lands on `/dashboard`.
    async fn sign_in(&mut self, email: &str, password: &str) {
        let page = self.get("/dashboard/login").await;
        let csrf = hidden(&page.body, "csrf");
        let page = self
            .post(
                "/dashboard/login",
                &[
                    ("csrf", &csrf),
                    ("next", "/dashboard"),
                    ("email", email),
                    ("password", password),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert_eq!(page.location.as_deref(), Some("/dashboard"));
    }
}

/// The value of a hidden input named `name` (the first one).
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("the field is there") + marker.len();
    html[start..].split('"').next().expect("value").to_owned()
}

async fn dashboard_user(h: &Harness, email: &str, role: Role) {
    leadwire_dashboard::auth::create_user(&h.app.store, email, role, PASSWORD)
        .await
        .expect("dashboard user");
}

/// The compose form of the seed's Create Lead template, as a person fills it in.
fn create_lead_form<'a>(template: &'a serde_json::Value, csrf: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("csrf", csrf),
        ("name", "Create Lead (dashboard)"),
        ("url", template["url"].as_str().expect("url")),
        ("method", "POST"),
        ("body_mode", "kv"),
        ("value_typing", "strings"),
    ];
    for (k, v) in template["body"].as_object().expect("body") {
        form.push(("body_key", k));
        form.push(("body_value", v.as_str().expect("text")));
    }
    for (k, v) in template["headers"].as_object().expect("headers") {
        form.push(("header_name", k));
        form.push(("header_value", v.as_str().expect("text")));
    }
    form.push(("wb_field", "id"));
    form.push(("wb_attribute", "salesforce_lead_id"));
    form
}

#[tokio::test]
async fn sign_in_sessions_csrf_and_roles() {
    let h = common::harness().await;
    dashboard_user(&h, "ana@example.com", Role::Editor).await;
    dashboard_user(&h, "vic@example.com", Role::Viewer).await;
    dashboard_user(&h, "eve@example.com", Role::Viewer).await;
    let mut b = Browser::new(&h.api.url());

    // Signed out, every page sends you to sign in, and back afterwards.
    let page = b.get("/dashboard/templates").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(
        page.location.as_deref(),
        Some("/dashboard/login?next=%2Fdashboard%2Ftemplates")
    );
    assert_eq!(b.get("/").await.location.as_deref(), Some("/dashboard"));

    // Every page forbids framing and other origins' scripts.
    let response = h
        .http
        .get(format!("{}/dashboard/login", h.api.url()))
        .send()
        .await
        .expect("answers");
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .expect("ascii");
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");

    // The sign-in form refuses a post without its token, and a wrong password.
    let login = b.get("/dashboard/login").await;
    let csrf = hidden(&login.body, "csrf");
    assert!(
        login.body.contains("<label for=\"password\">"),
        "labelled fields"
    );
    let no_token = b
        .post(
            "/dashboard/login",
            &[("email", "ana@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let wrong = b
        .post(
            "/dashboard/login",
            &[
                ("csrf", &csrf),
                ("email", "ana@example.com"),
                ("password", "not the password at all"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::SEE_OTHER);
    assert!(
        wrong
            .location
            .as_deref()
            .is_some_and(|l| l.contains("failed=1"))
    );
    assert!(!b.cookies.contains_key("lw_session"));

    // Signed in: the session cookie is HttpOnly and SameSite=Strict, not Secure over plain
    // HTTP; the database holds only its hash.
    let page = b
        .post(
            "/dashboard/login",
            &[
                ("csrf", &csrf),
                ("next", "/dashboard/templates"),
                ("email", "Ana@Example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.location.as_deref(), Some("/dashboard/templates"));
    let session = page
        .set_cookies
        .iter()
        .find(|c| c.starts_with("lw_session="))
        .expect("session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    assert!(!session.contains("Secure"), "{session}");
    let token = b.cookies["lw_session"].clone();
    let stored = h
        .app
        .store
        .read(move |tx| tx.dashboard_session(&token, chrono::Utc::now()))
        .await
        .expect("reads");
    assert!(
        stored.is_none(),
        "the token itself is not a key in the database"
    );

    let list = b.get("/dashboard/templates").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(
        list.body.contains(&CREATE_LEAD.replace('>', "&gt;")),
        "the seeded templates are listed (HTML-escaped)"
    );

    // A form post without the session's CSRF token changes nothing.
    let before = h
        .app
        .webhooks
        .list_templates(true, 100, 0)
        .await
        .expect("list")
        .len();
    let base = h.emulator.https_url().expect("https");
    let template = create_lead_template(&base);
    let mut form = create_lead_form(&template, "forged");
    form.push(("action", "save"));
    let forged = b.post("/dashboard/templates/new", &form).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(
        h.app
            .webhooks
            .list_templates(true, 100, 0)
            .await
            .expect("list")
            .len(),
        before
    );

    // Repeated wrong passwords lock the email out, the right one included, on this node.
    let mut guesser = Browser::new(&h.api.url());
    let login = guesser.get("/dashboard/login").await;
    let gcsrf = hidden(&login.body, "csrf");
    for _ in 0..leadwire_dashboard::auth::MAX_FAILURES {
        let wrong = guesser
            .post(
                "/dashboard/login",
                &[
                    ("csrf", &gcsrf),
                    ("email", "eve@example.com"),
                    ("password", "guess guess guess"),
                ],
            )
            .await;
        assert!(
            wrong
                .location
                .as_deref()
                .is_some_and(|l| l.contains("failed=1"))
        );
    }
    let locked = guesser
        .post(
            "/dashboard/login",
            &[
                ("csrf", &gcsrf),
                ("email", "eve@example.com"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert!(
        locked
            .location
            .as_deref()
            .is_some_and(|l| l.contains("throttled=1"))
    );
    assert!(!guesser.cookies.contains_key("lw_session"));

    // Over HTTPS (a proxy saying so) the cookie is Secure too.
    let mut secure = Browser::new(&h.api.url());
    let login = secure
        .send(
            secure
                .http
                .get(format!("{}/dashboard/login", h.api.url()))
                .header("x-forwarded-proto", "https"),
        )
        .await;
    assert!(login.set_cookies.iter().all(|c| c.contains("; Secure")));

    // A viewer sees templates but may not save or test-send: the REST API's permissions.
    let mut viewer = Browser::new(&h.api.url());
    viewer.sign_in("vic@example.com", PASSWORD).await;
    let page = viewer.get("/dashboard/templates").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.body.contains("/dashboard/templates/new"),
        "no create button"
    );
    let csrf = hidden(&page.body, "csrf");
    let mut form = create_lead_form(&template, &csrf);
    form.push(("action", "save"));
    let refused = viewer.post("/dashboard/templates/new", &form).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.body.contains("templates.write"),
        "names the permission"
    );

    // Signing out ends the session on the server, not just in the browser.
    let token = b.cookies["lw_session"].clone();
    let page = b.get("/dashboard").await;
    let csrf = hidden(&page.body, "csrf");
    let out = b.post("/dashboard/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.location.as_deref(), Some("/dashboard/login"));
    b.cookies.insert("lw_session".into(), token);
    assert_eq!(b.get("/dashboard").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn compose_preview_test_send_and_the_activity_log() {
    let h = common::harness().await;
    dashboard_user(&h, "ana@example.com", Role::Editor).await;
    let mut b = Browser::new(&h.api.url());
    b.sign_in("ana@example.com", PASSWORD).await;
    let base = h.emulator.https_url().expect("https");
    let template = create_lead_template(&base);
    let page = b.get("/dashboard/templates/new").await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = hidden(&page.body, "csrf");

    // Preview for a custom user, unsaved.
    let mut form = create_lead_form(&template, &csrf);
    form.push((
        "preview_user",
        r#"{"external_id": "jose", "first_name": "José", "last_name": "Silva", "email": "jose@example.com", "custom_attributes": {"company": "Acme"}}"#,
    ));
    form.push(("action", "preview"));
    let preview = b.post("/dashboard/templates/new", &form).await;
    assert_eq!(preview.status, StatusCode::OK);
    assert!(
        preview.body.contains("id=\"preview\""),
        "the preview section"
    );
    assert!(preview.body.contains("José") && preview.body.contains("Acme"));
    assert!(
        !preview.body.contains(common::token_header(&base).as_str()),
        "the Authorization header is rendered, not shown as Liquid"
    );

    // Test send to the emulator: Salesforce's 201 comes back and is shown.
    let mut form = create_lead_form(&template, &csrf);
    form.push((
        "preview_user",
        r#"{"external_id": "jose", "first_name": "José", "last_name": "Silva", "email": "jose@example.com", "custom_attributes": {"company": "Acme"}}"#,
    ));
    form.push(("action", "test-send"));
    let sent = b.post("/dashboard/templates/new", &form).await;
    assert!(
        sent.body
            .contains("<output id=\"response-status\">201</output>"),
        "{}",
        sent.body
    );
    assert!(
        sent.body.contains("success"),
        "Salesforce's answer is shown"
    );

    // Save: the template is the same definition the REST API would have saved.
    let mut form = create_lead_form(&template, &csrf);
    form.push(("action", "save"));
    let saved = b.post("/dashboard/templates/new", &form).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let location = saved.location.expect("to the edit page");
    let id = location
        .trim_start_matches("/dashboard/templates/")
        .trim_end_matches("?saved=1")
        .to_owned();
    let record = h.app.webhooks.template(&id).await.expect("saved");
    assert_eq!(record.definition.template.name, "Create Lead (dashboard)");
    assert_eq!(record.definition.to_json()["body"], template["body"]);
    let edit = b.get(&location).await;
    assert!(edit.body.contains("id=\"saved\""));
    assert!(
        edit.body
            .contains("value=\"{{custom_attribute.${company}}}\"")
    );

    // Duplicate and archive from the list.
    let list = b.get("/dashboard/templates").await;
    let csrf = hidden(&list.body, "csrf");
    let dup = b
        .post(
            &format!("/dashboard/templates/{id}/duplicate"),
            &[("csrf", &csrf)],
        )
        .await;
    let copy_id = dup
        .location
        .expect("to the copy")
        .trim_start_matches("/dashboard/templates/")
        .to_owned();
    let copy = h.app.webhooks.template(&copy_id).await.expect("copy saved");
    assert_eq!(
        copy.definition.template.name,
        "Create Lead (dashboard) (copy)"
    );
    b.post(
        &format!("/dashboard/templates/{copy_id}/archive"),
        &[("csrf", &csrf)],
    )
    .await;
    assert!(
        h.app
            .webhooks
            .template(&copy_id)
            .await
            .expect("kept")
            .archived
    );

    // The test send is in the activity log, with its request and response.
    let log = b.get("/dashboard/activity?type=test_send").await;
    assert_eq!(log.status, StatusCode::OK);
    let entry_id = log
        .body
        .split("href=\"/dashboard/activity/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("an entry links to its details")
        .to_owned();
    let detail = b.get(&format!("/dashboard/activity/{entry_id}")).await;
    assert!(detail.body.contains("[TEST SEND]"));
    assert!(detail.body.contains("201"));
    assert!(
        !detail
            .body
            .contains(leadwire_salesforce_emulator::DEFAULT_CLIENT_SECRET),
        "the client secret in the token call is never shown"
    );
    let none = b.get("/dashboard/activity?type=failed").await;
    assert!(none.body.contains("id=\"activity-empty\""));

    // The live stream sends entries after the one given, as server-sent events.
    let mut stream = h
        .http
        .get(format!(
            "{}/dashboard/activity/stream?after_id=0",
            h.api.url()
        ))
        .header(COOKIE, b.cookie_header())
        .send()
        .await
        .expect("stream");
    assert_eq!(
        stream.headers()["content-type"].to_str().expect("type"),
        "text/event-stream"
    );
    let first = tokio::time::timeout(Duration::from_secs(60), stream.chunk())
        .await
        .expect("an event within the guard")
        .expect("reads")
        .expect("a chunk");
    let text = String::from_utf8_lossy(&first);
    assert!(text.contains("event: entry"), "{text}");
    assert!(text.contains(&format!("entry-{entry_id}")), "{text}");
}

#[tokio::test]
async fn liquid_errors_and_lint_findings_stand_next_to_their_field() {
    let h = common::harness().await;
    dashboard_user(&h, "ana@example.com", Role::Editor).await;
    let mut b = Browser::new(&h.api.url());
    b.sign_in("ana@example.com", PASSWORD).await;
    let base = h.emulator.https_url().expect("https");
    let page = b.get("/dashboard/templates/new").await;
    let csrf = hidden(&page.body, "csrf");
    let url = format!("{base}/services/data/v60.0/sobjects/Lead/");

    // An unclosed tag in one body value: the error names its line and column, beside that row.
    let broken = b
        .post(
            "/dashboard/templates/new",
            &[
                ("csrf", &csrf),
                ("name", "Broken"),
                ("url", &url),
                ("body_mode", "kv"),
                ("body_key", "LastName"),
                ("body_value", "{% if ${last_name} %}x"),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(broken.status, StatusCode::OK, "the form comes back");
    assert!(broken.body.contains("id=\"problems\""));
    let row = broken
        .body
        .split("id=\"body-0-notes\"")
        .nth(1)
        .expect("notes under the row");
    assert!(row.contains("line 1, column"), "{row}");
    assert!(
        broken.body.contains("aria-describedby=\"body-0-notes\""),
        "the field points at its notes"
    );
    assert!(
        h.app
            .webhooks
            .list_templates(true, 100, 0)
            .await
            .expect("list")
            .iter()
            .all(|t| t.definition.template.name != "Broken")
    );

    // The German seed's body: the linter says which Salesforce field each key means.
    b.language = Some("de-DE,de;q=0.9");
    let salesforce = "https://acme.my.salesforce.com/services/data/v60.0/sobjects/Lead/";
    let german = b
        .post(
            "/dashboard/templates/new",
            &[
                ("csrf", &csrf),
                ("name", "Lead erstellen"),
                ("url", salesforce),
                ("body_mode", "kv"),
                ("body_key", "Vorname"),
                ("body_value", "{{${first_name}}}"),
                ("body_key", "Nachname"),
                ("body_value", "{{${last_name}}}"),
                ("body_key", "E-Mail"),
                ("body_value", "{{${email_address}}}"),
                ("body_key", "Unternehmen"),
                ("body_value", "{{custom_attribute.${company}}}"),
                ("action", "preview"),
            ],
        )
        .await;
    assert_eq!(german.status, StatusCode::OK);
    let notes = german
        .body
        .split("id=\"body-0-notes\"")
        .nth(1)
        .expect("a note under Vorname");
    assert!(notes.contains("„FirstName“"), "{notes}");
    assert!(german.body.contains("<html lang=\"de\">"));
    assert!(german.body.contains("Webhook-Vorlage erstellen"));

    // Korean by the switcher: a cookie that wins over Accept-Language.
    let switched = b.get("/dashboard/lang?to=ko").await;
    assert!(
        switched
            .set_cookies
            .iter()
            .any(|c| c.starts_with("lw_lang=ko"))
    );
    let korean = b.get("/dashboard/templates").await;
    assert!(korean.body.contains("<html lang=\"ko\">"));
    assert!(korean.body.contains("메시지 활동 로그"));
    assert!(korean.body.contains("웹훅 템플릿"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_add_an_email_address_campaign_is_built_started_and_paused() {
    let h = common::harness().await;
    dashboard_user(&h, "ana@example.com", Role::Editor).await;
    dashboard_user(&h, "vic@example.com", Role::Viewer).await;
    let mut b = Browser::new(&h.api.url());
    b.sign_in("ana@example.com", PASSWORD).await;
    let page = b.get("/dashboard/campaigns/new").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(&CREATE_LEAD.replace('>', "&gt;")),
        "templates to pick from"
    );
    let csrf = hidden(&page.body, "csrf");
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "New lead"),
        ("trigger", "email_added"),
        ("template", CREATE_LEAD),
        ("rate_limit", "100"),
    ];
    let saved = b.post("/dashboard/campaigns/new", &form).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER);
    let id = saved
        .location
        .expect("to the campaign")
        .trim_start_matches("/dashboard/campaigns/")
        .to_owned();
    let record = h.app.campaigns.campaign(&id).await.expect("saved");
    assert_eq!(
        record.spec.status,
        leadwire_campaigns::CampaignStatus::Draft
    );
    assert_eq!(record.spec.rate_limit_per_minute, Some(100));
    // The same name again is refused, as /campaigns/create refuses it.
    let again = b.post("/dashboard/campaigns/new", &form).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.body.contains("id=\"problems\""));
    // The engine's own checks come back as they are: a rate limit outside Braze's range.
    let mut bad = form;
    bad[1] = ("name", "Too slow");
    bad[4] = ("rate_limit", "1");
    let refused = b.post("/dashboard/campaigns/new", &bad).await;
    assert!(
        refused.body.contains("rate_limit_per_minute"),
        "{}",
        refused.body
    );

    // A viewer cannot start it.
    let mut viewer = Browser::new(&h.api.url());
    viewer.sign_in("vic@example.com", PASSWORD).await;
    let vpage = viewer.get("/dashboard/campaigns").await;
    assert!(vpage.body.contains("New lead"));
    let vcsrf = hidden(&vpage.body, "csrf");
    let refused = viewer
        .post(
            &format!("/dashboard/campaigns/{id}/status"),
            &[("csrf", &vcsrf), ("to", "active")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // Started, it sends the Create Lead template to a user who adds an email address.
    let started = b
        .post(
            &format!("/dashboard/campaigns/{id}/status"),
            &[("csrf", &csrf), ("to", "active")],
        )
        .await;
    assert_eq!(started.location.as_deref(), Some("/dashboard/campaigns"));
    let list = b.get("/dashboard/campaigns").await;
    assert!(list.body.contains("data-status=\"active\""));
    h.track(serde_json::json!({"attributes": [{"external_id": "lead-1", "first_name": "Ana", "last_name": "Lima", "email": "ana.lima@example.com", "company": "Acme"}]}))
        .await;
    h.settle().await;
    assert_eq!(h.leads_with_email("ana.lima@example.com").len(), 1);
    let log = b
        .get(&format!("/dashboard/activity?campaign_id={id}"))
        .await;
    let delivered = log
        .body
        .split("<tr data-state=\"delivered\">")
        .nth(1)
        .expect("a delivered row");
    assert!(
        delivered.contains("lead-1") && delivered.contains("201") && delivered.contains("New lead"),
        "{delivered}"
    );

    // The user, looked up by email: attributes (the lead id written back among them), the
    // campaign received, the webhook and its outcome.
    let user = b
        .get("/dashboard/users?by=email&q=Ana.Lima@example.com")
        .await;
    assert_eq!(user.status, StatusCode::OK);
    assert!(
        user.body
            .contains("<tr data-attribute=\"company\"><th scope=\"row\">company</th><td>Acme</td>"),
        "{}",
        user.body
    );
    assert!(
        user.body.contains("data-attribute=\"salesforce_lead_id\""),
        "written back"
    );
    assert!(
        user.body.contains("Campaign New lead: last received"),
        "{}",
        user.body
    );
    let delivered = user
        .body
        .split("id=\"user-deliveries\"")
        .nth(1)
        .expect("the user's deliveries");
    assert!(delivered.contains("data-state=\"delivered\"") && delivered.contains("201"));
    h.track(serde_json::json!({"events": [{"external_id": "lead-1", "name": "webinar_attended", "time": "2026-01-31T12:00:00Z", "properties": {"topic": "AI"}}]}))
        .await;
    let by_id = b.get("/dashboard/users?by=external_id&q=lead-1").await;
    assert!(by_id.body.contains("id=\"profile\""));
    assert!(
        by_id
            .body
            .contains("<tr data-event=\"webinar_attended\"><td>2026-01-31T12:00:00+00:00</td>"),
        "{}",
        by_id.body
    );
    let nobody = b.get("/dashboard/users?by=external_id&q=nobody").await;
    assert!(nobody.body.contains("id=\"user-not-found\""));

    // The charts count the send, per campaign and per destination host.
    let charts = b.get("/dashboard/deliveries?hours=1").await;
    assert_eq!(charts.status, StatusCode::OK);
    assert!(
        charts
            .body
            .contains("id=\"totals\" data-sends=\"1\" data-delivered=\"1\" data-failed=\"0\""),
        "{}",
        charts.body
    );
    assert!(
        charts
            .body
            .contains("data-row=\"New lead\" data-sends=\"1\" data-delivered=\"1\"")
    );
    let base = h.emulator.https_url().expect("https");
    let host = base.split("://").nth(1).unwrap_or("").trim_end_matches('/');
    assert!(
        charts
            .body
            .contains(&format!("data-row=\"{host}\" data-sends=\"1\"")),
        "by host {host}"
    );
    assert!(charts.body.contains("id=\"chart-outcomes-title\""));
    // The org's API allowance, as the emulator reported it with its answer (Sforce-Limit-Info).
    let origin = base.trim_end_matches('/');
    assert!(
        charts
            .body
            .contains(&format!("<tr data-org=\"{origin}\" data-used=\"")),
        "API budget for {origin}: {}",
        charts.body
    );

    // Paused, it shows so.
    b.post(
        &format!("/dashboard/campaigns/{id}/status"),
        &[("csrf", &csrf), ("to", "paused")],
    )
    .await;
    assert_eq!(
        h.app
            .campaigns
            .campaign(&id)
            .await
            .expect("kept")
            .spec
            .status,
        leadwire_campaigns::CampaignStatus::Paused
    );
}

/// The seed's lead-scoring Canvas (as `examples/salesforce-sales-cloud/lead-scoring-canvas.yaml`,
/// with the harness's Update Lead template).
fn lead_scoring_canvas() -> serde_json::Value {
    serde_json::json!({
        "name": "Lead Scoring Canvas",
        "status": "active",
        "entry": {"triggers": [{"type": "attribute_changed", "attribute": "lead_score"}], "reentry_seconds": 0},
        "steps": [
            {"id": "threshold", "name": "MQL Threshold check", "type": "audience_paths",
             "groups": [{"name": "MQL Threshold", "filter": {"all": [
                 {"attribute": "lead_stage", "equals": "Lead"},
                 {"attribute": "lead_score", "greater_than": 50}]}, "next": "mark_mql"}],
             "everyone_else": null},
            {"id": "mark_mql", "name": "Mark MQL", "type": "user_update", "attributes": {"lead_stage": "MQL"}, "next": "update_lead"},
            {"id": "update_lead", "name": "Update Lead", "type": "webhook", "template": common::UPDATE_LEAD}
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lead_scoring_canvas_is_drawn_with_users_passing_its_steps() {
    let h = common::harness().await;
    dashboard_user(&h, "ana@example.com", Role::Editor).await;
    let (status, body) = h.post("/canvas/create", lead_scoring_canvas()).await;
    assert_eq!(status, 201, "{body}");
    let id = body["canvas_id"].as_str().expect("id").to_owned();
    h.track(serde_json::json!({"attributes": [
        {"external_id": "hot", "lead_stage": "Lead", "lead_score": 60},
        {"external_id": "cold", "lead_stage": "Lead", "lead_score": 10}
    ]}))
    .await;
    h.settle().await;
    assert_eq!(h.profile("hot").await.custom["lead_stage"], "MQL");

    let mut b = Browser::new(&h.api.url());
    b.sign_in("ana@example.com", PASSWORD).await;
    let list = b.get("/dashboard/canvases").await;
    assert!(
        list.body.contains("Lead Scoring Canvas") && list.body.contains("data-status=\"active\"")
    );
    let page = b.get(&format!("/dashboard/canvases/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<svg") && page.body.contains("role=\"img\""));
    // Both users entered the threshold check and left it; only the hot one went on.
    for (step, entered, waiting, passed) in [
        ("threshold", 2, 0, 2),
        ("mark_mql", 1, 0, 1),
        ("update_lead", 1, 0, 1),
    ] {
        let node = format!(
            "data-step=\"{step}\" data-entered=\"{entered}\" data-waiting=\"{waiting}\" data-passed=\"{passed}\""
        );
        assert!(page.body.contains(&node), "{node} in {}", page.body);
    }
    // Paused from the page, as /canvas/pause does.
    let csrf = hidden(&page.body, "csrf");
    let paused = b
        .post(
            &format!("/dashboard/canvases/{id}/status"),
            &[("csrf", &csrf), ("to", "paused")],
        )
        .await;
    assert_eq!(paused.status, StatusCode::SEE_OTHER);
    assert_eq!(
        h.app.canvases.canvas(&id).await.expect("kept").spec.status,
        leadwire_canvas::CanvasStatus::Paused
    );
}

#[tokio::test]
async fn credentials_are_created_rotated_and_deleted_without_showing_a_secret() {
    let h = common::harness().await;
    dashboard_user(&h, "root@example.com", Role::Admin).await;
    dashboard_user(&h, "ana@example.com", Role::Editor).await;
    let mut admin = Browser::new(&h.api.url());
    admin.sign_in("root@example.com", PASSWORD).await;
    let page = admin.get("/dashboard/credentials").await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = hidden(&page.body, "csrf");
    let created = admin
        .post(
            "/dashboard/credentials",
            &[
                ("csrf", &csrf),
                ("name", "salesforce_app"),
                ("type", "basic"),
                ("username", "connected-app"),
                ("password", "first-secret-9f1c"),
            ],
        )
        .await;
    assert_eq!(
        created.location.as_deref(),
        Some("/dashboard/credentials?saved=salesforce_app")
    );
    let list = admin
        .get("/dashboard/credentials?saved=salesforce_app")
        .await;
    assert!(list.body.contains("data-credential=\"salesforce_app\""));
    assert!(list.body.contains("connected-app"));
    assert!(
        !list.body.contains("first-secret-9f1c"),
        "the secret is never shown"
    );
    let before = h.app.webhooks.list_credentials().await.expect("list")[0].updated_at;

    // Rotating: the form is offered with the name fixed and no secret filled in.
    let rotate = admin
        .get("/dashboard/credentials?rotate=salesforce_app")
        .await;
    assert!(
        rotate
            .body
            .contains("name=\"name\" type=\"text\" value=\"salesforce_app\" readonly")
    );
    assert!(!rotate.body.contains("first-secret-9f1c"));
    admin
        .post(
            "/dashboard/credentials",
            &[
                ("csrf", &csrf),
                ("name", "salesforce_app"),
                ("type", "basic"),
                ("username", "connected-app"),
                ("password", "second-secret-77ab"),
            ],
        )
        .await;
    let after = h.app.webhooks.list_credentials().await.expect("list");
    assert_eq!(after.len(), 1);
    assert!(after[0].updated_at >= before);

    // A bad name is refused with the service's reason, and nothing is saved.
    let bad = admin
        .post(
            "/dashboard/credentials",
            &[
                ("csrf", &csrf),
                ("name", "no spaces"),
                ("type", "basic"),
                ("username", "u"),
                ("password", "p"),
            ],
        )
        .await;
    assert!(bad.body.contains("id=\"problems\""));
    assert_eq!(
        h.app.webhooks.list_credentials().await.expect("list").len(),
        1
    );

    // An editor sees the list but may not change credentials (credentials.write).
    let mut editor = Browser::new(&h.api.url());
    editor.sign_in("ana@example.com", PASSWORD).await;
    let seen = editor.get("/dashboard/credentials").await;
    assert!(seen.body.contains("salesforce_app") && !seen.body.contains("id=\"credential-form\""));
    let ecsrf = hidden(&seen.body, "csrf");
    let refused = editor
        .post(
            "/dashboard/credentials/salesforce_app/delete",
            &[("csrf", &ecsrf)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let deleted = admin
        .post(
            "/dashboard/credentials/salesforce_app/delete",
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(
        deleted.location.as_deref(),
        Some("/dashboard/credentials?deleted=salesforce_app")
    );
    assert!(
        h.app
            .webhooks
            .list_credentials()
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lead_scoring_canvas_is_built_in_the_step_editor() {
    let h = common::harness().await;
    dashboard_user(&h, "ana@example.com", Role::Editor).await;
    let mut b = Browser::new(&h.api.url());
    b.sign_in("ana@example.com", PASSWORD).await;
    let page = b.get("/dashboard/canvases/new").await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = hidden(&page.body, "csrf");
    let filter = r#"{"all": [{"attribute": "lead_stage", "equals": "Lead"}, {"attribute": "lead_score", "greater_than": 50}]}"#;
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("name", "Lead Scoring Canvas"),
        ("trigger", "attribute_changed"),
        ("trigger_name", "lead_score"),
        ("reentry_seconds", "0"),
        ("step_count", "3"),
        ("step_0_id", "threshold"),
        ("step_0_name", "MQL Threshold check"),
        ("step_0_type", "audience_paths"),
        ("step_0_group", "MQL Threshold"),
        ("step_0_filter", filter),
        ("step_0_next", "mark_mql"),
        ("step_0_other", ""),
        ("step_1_id", "mark_mql"),
        ("step_1_name", "Mark MQL"),
        ("step_1_type", "user_update"),
        ("step_1_attribute", "lead_stage"),
        ("step_1_value", "MQL"),
        ("step_1_next", "update_lead"),
        ("step_2_id", "update_lead"),
        ("step_2_name", "Update Lead"),
        ("step_2_type", "webhook"),
        ("step_2_template", common::UPDATE_LEAD),
        ("step_2_next", ""),
        ("action", "save"),
    ];
    // A path to a step that does not exist is refused with the engine's message naming it.
    form[18] = ("step_1_next", "nowhere");
    let refused = b.post("/dashboard/canvases/new", &form).await;
    assert_eq!(refused.status, StatusCode::OK);
    assert!(
        refused.body.contains("id=\"problems\"") && refused.body.contains("nowhere"),
        "{}",
        refused.body
    );
    assert!(h.app.canvases.canvases().await.expect("list").is_empty());

    form[18] = ("step_1_next", "update_lead");
    let saved = b.post("/dashboard/canvases/new", &form).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let id = saved
        .location
        .expect("to the Canvas")
        .trim_start_matches("/dashboard/canvases/")
        .to_owned();
    let record = h.app.canvases.canvas(&id).await.expect("saved");
    let expected: leadwire_canvas::CanvasSpec =
        serde_json::from_value(lead_scoring_canvas()).expect("spec");
    assert_eq!(
        record.spec.steps, expected.steps,
        "the same Canvas the REST API would hold"
    );
    assert_eq!(record.spec.entry, expected.entry);
    assert_eq!(record.spec.status, leadwire_canvas::CanvasStatus::Draft);

    // The edit form shows it back, each step with its type's fields.
    let edit = b.get(&format!("/dashboard/canvases/{id}/edit")).await;
    assert!(
        edit.body
            .contains("name=\"step_1_attribute\" type=\"text\" value=\"lead_stage\"")
    );
    assert!(
        edit.body
            .contains("<option value=\"audience_paths\" selected>")
    );

    // Started, a user above the threshold passes its steps.
    let detail = b.get(&format!("/dashboard/canvases/{id}")).await;
    let csrf = hidden(&detail.body, "csrf");
    b.post(
        &format!("/dashboard/canvases/{id}/status"),
        &[("csrf", &csrf), ("to", "active")],
    )
    .await;
    h.track(serde_json::json!({"attributes": [{"external_id": "hot", "lead_stage": "Lead", "lead_score": 70}]}))
        .await;
    h.settle().await;
    let detail = b.get(&format!("/dashboard/canvases/{id}")).await;
    assert!(detail.body.contains(
        "data-step=\"mark_mql\" data-entered=\"1\" data-waiting=\"0\" data-passed=\"1\""
    ));
}
