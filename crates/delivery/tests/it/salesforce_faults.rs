//! Salesforce-aware delivery against the emulator with its faults on: tokens reused until
//! Salesforce refuses them, failed token calls retried with their own log entry, creates whose
//! outcome is unknown looked up (or not retried) instead of duplicated, empty record ids not
//! sent, and each org's API allowance kept back before it runs out.

use std::sync::Arc;
use std::time::Duration;

use leadwire_delivery::batch::BatchConfig;
use leadwire_delivery::memory::JobState;
use leadwire_delivery::webhook::{Body, Method, WebhookTemplate};
use leadwire_delivery::worker::{ActivityKind, ExecutionOutcome, Job};
use leadwire_salesforce::limits::BudgetPolicy;
use leadwire_salesforce_emulator::faults::{FaultSettings, Share};

use crate::emulator::{
    Salesforce, assert_no_secrets, create_lead, english_body, salesforce, salesforce_with,
    token_header,
};
use crate::helpers::*;

fn person(n: usize) -> Arc<serde_json::Value> {
    Arc::new(serde_json::json!({
        "profile": {"user_id": format!("u-{n}"), "first_name": format!("P{n}"), "last_name": "Lovelace", "email_address": format!("p{n}@example.com")},
        "custom_attributes": {"company": "Analytical Engines Ltd"}
    }))
}

fn create_job(
    id: &str,
    n: usize,
    template: &Arc<leadwire_delivery::webhook::CompiledWebhook>,
) -> Job {
    Job::new(id, format!("u-{n}"), template.clone(), person(n))
}

fn token_calls(sf: &Salesforce) -> usize {
    sf.emulator
        .request_log()
        .iter()
        .filter(|e| e.path.contains("/oauth2/token"))
        .count()
}

fn kinds(sf: &Salesforce) -> Vec<ActivityKind> {
    sf.rig.activity.entries().iter().map(|e| e.kind).collect()
}

fn faults(configure: impl FnOnce(&mut FaultSettings)) -> FaultSettings {
    let mut settings = FaultSettings::default();
    configure(&mut settings);
    settings
}

fn share(value: f64) -> Share {
    Share::try_from(value).expect("share")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_token_serves_many_sends_and_a_revocation_loses_none() {
    let sf = salesforce().await;
    let create = compiled(&create_lead(&sf.instance, english_body()));
    for n in 0..20 {
        sf.rig.queue.push(create_job(&format!("c-{n}"), n, &create));
    }
    let outcomes = drain(&sf.rig).await;
    assert!(
        outcomes.iter().all(|o| *o == ExecutionOutcome::Delivered),
        "{outcomes:?}"
    );
    assert_eq!(token_calls(&sf), 1, "one token for 20 sends");

    // Salesforce revokes every session in the middle of the run.
    assert!(sf.emulator.revoke_all_tokens() > 0);
    for n in 20..40 {
        sf.rig.queue.push(create_job(&format!("c-{n}"), n, &create));
    }
    let outcomes = drain(&sf.rig).await;
    assert!(
        outcomes.iter().all(|o| *o == ExecutionOutcome::Delivered),
        "{outcomes:?}"
    );
    assert_eq!(sf.emulator.lead_count(), 40, "no send lost, none doubled");
    assert_eq!(token_calls(&sf), 2, "one new token after the revocation");
    assert_eq!(
        kinds(&sf),
        vec![ActivityKind::TokenRefreshed],
        "the refused token is explained once"
    );
    assert_no_secrets(&sf);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_token_call_is_a_retried_attempt_with_its_own_entry() {
    let sf = salesforce().await;
    let create = compiled(&create_lead(&sf.instance, english_body()));
    sf.emulator
        .set_faults(faults(|f| {
            f.unavailable = share(1.0);
        }))
        .expect("faults");
    sf.rig.queue.push(create_job("c-1", 1, &create));
    let outcome = sf.rig.worker.try_execute_job().await.expect("queue");
    assert!(
        matches!(outcome, ExecutionOutcome::Retrying { .. }),
        "{outcome:?}"
    );
    let entries = sf.rig.activity.entries();
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry.kind, ActivityKind::ConnectedContentError);
    assert!(
        entry
            .message
            .contains("Connected Content error in header 'Authorization'"),
        "{}",
        entry.message
    );
    let request = entry.request.as_ref().expect("the token request is logged");
    assert!(
        request.url.ends_with("/services/oauth2/token"),
        "{}",
        request.url
    );
    let response = entry
        .response
        .as_ref()
        .expect("the token endpoint's answer is logged");
    assert_eq!(response.status, 503);
    assert_eq!(
        sf.emulator
            .request_log()
            .iter()
            .filter(|e| e.path.contains("/sobjects/"))
            .count(),
        0,
        "nothing went out as `Bearer `"
    );
    assert_no_secrets(&sf);

    sf.emulator
        .set_faults(FaultSettings::default())
        .expect("faults off");
    assert_eq!(drain(&sf.rig).await, vec![ExecutionOutcome::Delivered]);
    assert_eq!(sf.emulator.lead_count(), 1);
    assert!(matches!(
        sf.rig.queue.state("c-1"),
        Some(JobState::Delivered { attempts: 2, .. })
    ));
}

/// Warms the token cache, then drops the connection after every write.
async fn answers_lost_after_write(sf: &Salesforce, template: &WebhookTemplate) {
    let warm = compiled(template);
    sf.rig.queue.push(create_job("warm", 0, &warm));
    assert_eq!(
        drain(&sf.rig).await,
        vec![ExecutionOutcome::Delivered],
        "{:?}",
        sf.rig.activity.entries()
    );
    sf.emulator
        .set_faults(faults(|f| f.drop_after_write = share(1.0)))
        .expect("faults");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_without_an_answer_is_looked_up_before_it_is_retried() {
    let sf = salesforce().await;
    let mut template = create_lead(&sf.instance, english_body());
    template.lookup_field = Some("Email".into());
    answers_lost_after_write(&sf, &template).await;
    let create = compiled(&template);
    sf.rig.queue.push(create_job("c-1", 1, &create));
    let outcome = sf.rig.worker.try_execute_job().await.expect("queue");
    assert!(
        matches!(outcome, ExecutionOutcome::Retrying { .. }),
        "{outcome:?}"
    );
    assert_eq!(sf.emulator.lead_count(), 2, "the create reached Salesforce");

    sf.emulator
        .set_faults(FaultSettings::default())
        .expect("faults off");
    assert_eq!(drain(&sf.rig).await, vec![ExecutionOutcome::Delivered]);
    assert_eq!(sf.emulator.lead_count(), 2, "not created twice");
    let lead = sf
        .emulator
        .leads()
        .into_iter()
        .find(|l| l["Email"] == "p1@example.com")
        .expect("the lead");
    assert!(
        sf.rig.queue.written_back().contains(&(
            "u-1".to_owned(),
            "salesforce_lead_id".to_owned(),
            lead["Id"].clone()
        )),
        "the found lead's id is written back: {:?}",
        sf.rig.queue.written_back()
    );
    assert!(
        kinds(&sf).contains(&ActivityKind::Deduplicated),
        "{:?}",
        kinds(&sf)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_lookup_field_a_create_without_an_answer_is_not_retried() {
    let sf = salesforce().await;
    let template = create_lead(&sf.instance, english_body());
    answers_lost_after_write(&sf, &template).await;
    let create = compiled(&template);
    sf.rig.queue.push(create_job("c-1", 1, &create));
    assert_eq!(drain(&sf.rig).await, vec![ExecutionOutcome::Failed]);
    assert_eq!(sf.emulator.lead_count(), 2, "made once, and never again");
    let entries = sf.rig.activity.entries();
    let entry = entries.last().expect("an entry");
    assert_eq!(entry.kind, ActivityKind::OutcomeUnknown);
    assert!(entry.message.contains("lookup field"), "{}", entry.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upsert_by_external_id_is_retried_safely() {
    let sf = salesforce_with(
        |c| {
            c.custom_fields.push(
                leadwire_salesforce_emulator::schema::CustomFieldSpec::parse(
                    "Leadwire_Key__c:string:80",
                )
                .expect("field"),
            );
            c.external_id_fields.push("Leadwire_Key__c".into());
        },
        BudgetPolicy::default(),
        None,
    )
    .await;
    let mut template = create_lead(&sf.instance, english_body());
    template.url = format!(
        "{}/services/data/v60.0/sobjects/Lead/Leadwire_Key__c/{{{{${{user_id}}}}}}",
        sf.instance
    );
    template.method = Method::Patch;
    answers_lost_after_write(&sf, &template).await;
    let upsert = compiled(&template);
    sf.rig.queue.push(create_job("u-1", 1, &upsert));
    let outcome = sf.rig.worker.try_execute_job().await.expect("queue");
    assert!(
        matches!(outcome, ExecutionOutcome::Retrying { .. }),
        "retried: {outcome:?}"
    );
    sf.emulator
        .set_faults(FaultSettings::default())
        .expect("faults off");
    assert_eq!(
        drain(&sf.rig).await,
        vec![ExecutionOutcome::Delivered],
        "{:?}",
        sf.rig.activity.entries()
    );
    assert_eq!(
        sf.emulator.lead_count(),
        2,
        "the retry updated the same lead"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_whose_record_id_renders_empty_is_not_sent() {
    let sf = salesforce().await;
    let template = WebhookTemplate {
        name: "Update Lead".into(),
        url: format!(
            "{}/services/data/v60.0/sobjects/Lead/{{{{custom_attribute.${{salesforce_lead_id}}}}}}",
            sf.instance
        ),
        method: Method::Patch,
        body: Body::KeyValue(vec![("Lead_Stage__c".into(), "MQL".into())]),
        headers: vec![("Authorization".into(), token_header(&sf.instance))],
        value_typing: Default::default(),
        write_back: vec![],
        lookup_field: None,
        batch: false,
    };
    sf.rig
        .queue
        .push(create_job("m-1", 1, &compiled(&template)));
    assert_eq!(drain(&sf.rig).await, vec![ExecutionOutcome::Aborted]);
    let entries = sf.rig.activity.entries();
    assert_eq!(entries[0].kind, ActivityKind::Aborted);
    assert!(
        entries[0].message.contains("record id"),
        "{}",
        entries[0].message
    );
    assert!(
        !sf.emulator
            .request_log()
            .iter()
            .any(|e| e.method == "PATCH"),
        "no PATCH went out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_pause_before_the_daily_allowance_is_spent() {
    let sf = salesforce_with(
        |c| c.daily_request_limit = 40,
        BudgetPolicy {
            reserve_calls: 10,
            reserve_share: 0.0,
            slow_down_share: 1.0,
            probe_every: Duration::from_secs(300),
            ..BudgetPolicy::default()
        },
        None,
    )
    .await;
    let create = compiled(&create_lead(&sf.instance, english_body()));
    for n in 0..60 {
        sf.rig.queue.push(create_job(&format!("c-{n}"), n, &create));
    }
    // Run until every job is either delivered or held back.
    let mut deferred = 0;
    for _ in 0..200 {
        match sf.rig.worker.try_execute_job().await.expect("queue") {
            ExecutionOutcome::EmptyQueue => break,
            ExecutionOutcome::Deferred => deferred += 1,
            ExecutionOutcome::Delivered => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let used = sf.emulator.api_requests_used();
    assert!(
        used <= 30,
        "the reserve of 10 of 40 calls is kept: {used} used"
    );
    assert!(deferred > 0, "sends were held back");
    assert_eq!(
        sf.emulator.lead_count() as u64,
        used,
        "every call made a lead"
    );
    let budget = sf
        .rig
        .activity
        .entries()
        .into_iter()
        .filter(|e| e.kind == ActivityKind::ApiBudget)
        .collect::<Vec<_>>();
    assert_eq!(budget.len(), 1, "paused once");
    assert!(
        budget[0].message.contains("paused"),
        "{}",
        budget[0].message
    );
}

/// Batching for `n` records a call, with a window long enough that only a full batch flushes.
async fn batching(n: usize) -> Salesforce {
    salesforce_with(
        |_| {},
        BudgetPolicy::default(),
        Some(BatchConfig {
            window: Duration::from_secs(30),
            max_records: n,
        }),
    )
    .await
}

/// Runs `n` due jobs at once (so their writes meet in one batch); returns their outcomes.
async fn run_together(sf: &Salesforce, n: usize) -> Vec<ExecutionOutcome> {
    let runs = (0..n).map(|_| sf.rig.worker.try_execute_job());
    futures_util::future::join_all(runs)
        .await
        .into_iter()
        .map(|r| r.expect("queue"))
        .collect()
}

fn composite_calls(sf: &Salesforce) -> usize {
    sf.emulator
        .request_log()
        .iter()
        .filter(|e| e.path.contains("/composite/sobjects"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_creates_share_one_call_and_each_gets_its_own_result() {
    let sf = batching(5).await;
    let mut template = create_lead(&sf.instance, english_body());
    template.batch = true;
    let create = compiled(&template);
    for n in 0..4 {
        sf.rig.queue.push(create_job(&format!("c-{n}"), n, &create));
    }
    // The fifth user has no company: Salesforce refuses that record alone.
    let no_company = Arc::new(serde_json::json!({
        "profile": {"user_id": "u-4", "first_name": "P4", "last_name": "Lovelace", "email_address": "p4@example.com"},
        "custom_attributes": {}
    }));
    sf.rig
        .queue
        .push(Job::new("c-4", "u-4", create.clone(), no_company));
    let mut outcomes = run_together(&sf, 5).await;
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(
        outcomes,
        vec![
            ExecutionOutcome::Delivered,
            ExecutionOutcome::Delivered,
            ExecutionOutcome::Delivered,
            ExecutionOutcome::Delivered,
            ExecutionOutcome::Failed,
        ]
    );
    assert_eq!(composite_calls(&sf), 1, "one call for five records");
    assert_eq!(sf.emulator.lead_count(), 4);
    // Each written-back id is its own user's lead.
    let written = sf.rig.queue.written_back();
    for lead in sf.emulator.leads() {
        let n = lead["FirstName"]
            .as_str()
            .expect("name")
            .trim_start_matches('P');
        assert!(
            written.contains(&(
                format!("u-{n}"),
                "salesforce_lead_id".to_owned(),
                lead["Id"].clone()
            )),
            "{lead} in {written:?}"
        );
    }
    let failed = sf
        .rig
        .activity
        .entries()
        .into_iter()
        .find(|e| e.kind == ActivityKind::Failed)
        .expect("the refused record is explained");
    assert_eq!(failed.user_id, "u-4");
    assert!(
        failed.message.contains("REQUIRED_FIELD_MISSING"),
        "{}",
        failed.message
    );
    assert_no_secrets(&sf);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_without_an_answer_is_settled_by_one_lookup() {
    let sf = batching(4).await;
    let mut template = create_lead(&sf.instance, english_body());
    template.batch = true;
    template.lookup_field = Some("Email".into());
    let create = compiled(&template);
    // Warm the token with a first batch.
    for n in 0..4 {
        sf.rig
            .queue
            .push(create_job(&format!("w-{n}"), 100 + n, &create));
    }
    assert!(
        run_together(&sf, 4)
            .await
            .iter()
            .all(|o| *o == ExecutionOutcome::Delivered)
    );
    sf.emulator
        .set_faults(faults(|f| f.drop_after_write = share(1.0)))
        .expect("faults");
    for n in 0..4 {
        sf.rig.queue.push(create_job(&format!("c-{n}"), n, &create));
    }
    let outcomes = run_together(&sf, 4).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, ExecutionOutcome::Retrying { .. })),
        "{outcomes:?}"
    );
    assert_eq!(sf.emulator.lead_count(), 8, "the dropped call had written");
    sf.emulator
        .set_faults(FaultSettings::default())
        .expect("faults off");
    let due = sf.rig.queue.next_due().expect("retries pending");
    sf.rig.clock.advance_to(due + Duration::from_secs(3600));
    let queries_before = sf
        .emulator
        .request_log()
        .iter()
        .filter(|e| e.path.contains("/query"))
        .count();
    let outcomes = run_together(&sf, 4).await;
    assert!(
        outcomes.iter().all(|o| *o == ExecutionOutcome::Delivered),
        "{outcomes:?} {:?}",
        sf.rig.activity.entries()
    );
    assert_eq!(sf.emulator.lead_count(), 8, "none created twice");
    let queries = sf
        .emulator
        .request_log()
        .iter()
        .filter(|e| e.path.contains("/query"))
        .count()
        - queries_before;
    assert_eq!(queries, 1, "one lookup for the whole batch");
    assert_eq!(composite_calls(&sf), 2, "no create was sent again");
    let deduplicated = kinds(&sf)
        .into_iter()
        .filter(|k| *k == ActivityKind::Deduplicated)
        .count();
    assert_eq!(deduplicated, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_content_call_the_guard_refuses_is_a_logged_render_error() {
    let sf = salesforce().await;
    let mut template = create_lead(&sf.instance, english_body());
    template.headers = vec![(
        "X-Internal".into(),
        "{% connected_content http://10.1.2.3/secrets :save r %}{{ r.key }}".into(),
    )];
    sf.rig
        .queue
        .push(create_job("c-1", 1, &compiled(&template)));
    assert_eq!(drain(&sf.rig).await, vec![ExecutionOutcome::RenderFailed]);
    let entries = sf.rig.activity.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].kind, ActivityKind::RenderError);
    assert!(
        entries[0]
            .message
            .contains("connected_content to http://10.1.2.3/secrets was not sent"),
        "{}",
        entries[0].message
    );
    assert_eq!(sf.emulator.lead_count(), 0, "nothing was sent");
}
