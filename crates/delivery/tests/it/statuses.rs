//! Braze's retry rules, Retry-After, the circuit breaker, aborts and the SSRF guard, over real
//! HTTP against a scripted server. Waits happen on the rig's manual clock: the tests assert what
//! happens in which order, never how long the machine took.

use std::time::Duration;

use leadwire_delivery::circuit::{CircuitConfig, State};
use leadwire_delivery::memory::JobState;
use leadwire_delivery::redact::Redactor;
use leadwire_delivery::sender::{DELIVERY_ID_HEADER, USER_AGENT};
use leadwire_delivery::ssrf::SsrfPolicy;
use leadwire_delivery::webhook::Body;
use leadwire_delivery::worker::{ActivityKind, ExecutionOutcome, FailureKind};

use crate::helpers::*;

#[tokio::test]
async fn retriable_statuses_are_retried_with_the_same_delivery_id() {
    for status in [500, 502, 503, 408, 429] {
        let (base, script) = script_server().await;
        script.push(Reply::status(status).body("busy"));
        script.push(Reply::status(201).body(r#"{"id":"1"}"#));
        let rig = rig(RigOptions::default());
        let template = compiled(&post_template(&format!("{base}/hook")));
        rig.queue.push(job("job-1", &template));
        let outcomes = drain(&rig).await;
        assert_eq!(
            outcomes,
            vec![
                ExecutionOutcome::Retrying {
                    after: Duration::from_millis(10)
                },
                ExecutionOutcome::Delivered
            ],
            "{status}"
        );
        let seen = script.seen();
        assert_eq!(seen.len(), 2, "{status}");
        for request in &seen {
            assert_eq!(
                request.headers[&DELIVERY_ID_HEADER.to_ascii_lowercase()],
                "job-1"
            );
            assert_eq!(request.headers["user-agent"], USER_AGENT);
            assert_eq!(request.body, r#"{"name":"Ada"}"#);
            assert_eq!(
                (request.method.as_str(), request.path.as_str()),
                ("POST", "/hook")
            );
        }
        assert_eq!(
            rig.queue.state("job-1"),
            Some(JobState::Delivered {
                status: 201,
                attempts: 2
            })
        );
        let entries = rig.activity.entries();
        assert_eq!(entries.len(), 1, "one retry entry");
        assert_eq!(entries[0].kind, ActivityKind::Retrying);
        assert_eq!(entries[0].attempt, 1);
        assert_eq!(entries[0].campaign_id.as_deref(), Some("campaign-1"));
        assert_eq!(entries[0].response.as_ref().map(|r| r.status), Some(status));
        assert!(
            entries[0]
                .message
                .contains(&format!("answered {status}: busy")),
            "{}",
            entries[0].message
        );
    }
}

#[tokio::test]
async fn terminal_statuses_are_not_retried() {
    for status in [400, 401, 403, 404, 409, 301, 302] {
        let (base, script) = script_server().await;
        let mut reply = Reply::status(status).body(r#"[{"message":"nope","errorCode":"X"}]"#);
        if status / 100 == 3 {
            reply = reply.header("location", "https://elsewhere.example/");
        }
        script.push(reply);
        let rig = rig(RigOptions::default());
        rig.queue
            .push(job("j", &compiled(&post_template(&format!("{base}/hook")))));
        assert_eq!(
            drain(&rig).await,
            vec![ExecutionOutcome::Failed],
            "{status}"
        );
        assert_eq!(
            script.seen().len(),
            1,
            "{status}: redirects are not followed either"
        );
        match rig.queue.state("j") {
            Some(JobState::Failed { kind, message }) => {
                assert_eq!(kind, FailureKind::Terminal);
                assert!(message.contains("not retried"), "{message}");
            }
            other => panic!("{status}: {other:?}"),
        }
        let entries = rig.activity.entries();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].kind, ActivityKind::Failed);
        assert_eq!(entries[0].response.as_ref().map(|r| r.status), Some(status));
    }
}

#[tokio::test]
async fn retries_end_after_the_schedule() {
    let (base, script) = script_server().await;
    for _ in 0..5 {
        script.push(Reply::status(503));
    }
    let rig = rig(RigOptions::default());
    rig.queue
        .push(job("j", &compiled(&post_template(&format!("{base}/hook")))));
    let outcomes = drain(&rig).await;
    assert_eq!(
        outcomes,
        vec![
            ExecutionOutcome::Retrying {
                after: Duration::from_millis(10)
            },
            ExecutionOutcome::Retrying {
                after: Duration::from_millis(20)
            },
            ExecutionOutcome::Failed,
        ]
    );
    assert_eq!(script.seen().len(), 3);
    assert!(matches!(
        rig.queue.state("j"),
        Some(JobState::Failed {
            kind: FailureKind::RetriesExhausted,
            ..
        })
    ));
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (base, script) = script_server().await;
    script.push(Reply::status(429).header("retry-after", "1"));
    script.push(Reply::status(503).header("retry-after", "Thu, 01 Jan 1970 00:00:00 GMT"));
    let rig = rig(RigOptions::default());
    rig.queue
        .push(job("j", &compiled(&post_template(&format!("{base}/hook")))));
    assert_eq!(
        rig.worker.try_execute_job().await.expect("q"),
        ExecutionOutcome::Retrying {
            after: Duration::from_secs(1)
        }
    );
    // Not a moment before the second the server asked for.
    rig.clock.advance(Duration::from_millis(999));
    assert_eq!(
        rig.worker.try_execute_job().await.expect("q"),
        ExecutionOutcome::EmptyQueue
    );
    assert_eq!(script.seen().len(), 1);
    rig.clock.advance(Duration::from_millis(1));
    assert_eq!(
        rig.worker.try_execute_job().await.expect("q"),
        ExecutionOutcome::Retrying {
            after: Duration::ZERO
        },
        "a Retry-After date in the past means now"
    );
    assert_eq!(drain(&rig).await, vec![ExecutionOutcome::Delivered]);
    assert_eq!(rig.clock.moved(), Duration::from_secs(1));
    let seen = script.seen();
    assert_eq!(seen.len(), 3);
}

#[tokio::test]
async fn unreachable_hosts_and_timeouts_are_retried() {
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let down = rig(RigOptions::default());
    down.queue.push(job(
        "j",
        &compiled(&post_template(&format!("http://{closed}/hook"))),
    ));
    let outcomes = drain(&down).await;
    assert_eq!(outcomes.len(), 3);
    assert!(matches!(
        down.queue.state("j"),
        Some(JobState::Failed {
            kind: FailureKind::RetriesExhausted,
            ..
        })
    ));
    let entries = down.activity.entries();
    assert!(
        entries[0].message.contains("POST http://127.0.0.1"),
        "{}",
        entries[0].message
    );
    assert!(entries[0].response.is_none());

    let (base, script) = script_server().await;
    let mut slow = Reply::status(200);
    // Never in time: the timeout is the only possible outcome, however busy the machine is.
    slow.delay = Duration::from_secs(3600);
    script.push(slow);
    let rig = crate::helpers::rig(RigOptions {
        timeout: Duration::from_millis(100),
        ..RigOptions::default()
    });
    rig.queue
        .push(job("t", &compiled(&post_template(&format!("{base}/hook")))));
    let first = rig.worker.try_execute_job().await.expect("queue");
    assert_eq!(
        first,
        ExecutionOutcome::Retrying {
            after: Duration::from_millis(10)
        }
    );
    let entry = &rig.activity.entries()[0];
    assert!(
        entry.message.contains("no complete answer within 0.1 s"),
        "{}",
        entry.message
    );
    // Draining here would make the retry beat a 100 ms limit in real time; that the retry is
    // scheduled is what this test is about (other tests deliver retries).
    assert_eq!(
        rig.queue.state("t"),
        Some(JobState::Pending { attempts_made: 1 })
    );
}

#[tokio::test]
async fn circuit_opens_on_failures_and_closes_after_a_good_probe() {
    let (base, script) = script_server().await;
    for _ in 0..3 {
        script.push(Reply::status(503));
    }
    let rig = rig(RigOptions {
        circuit: CircuitConfig {
            window: Duration::from_secs(10),
            min_failures: 3,
            failure_ratio: 0.5,
            cool_down: Duration::from_millis(300),
        },
        ..RigOptions::default()
    });
    let template = compiled(&post_template(&format!("{base}/hook")));
    for i in 0..3 {
        rig.queue.push(job(&format!("fail-{i}"), &template));
        assert!(matches!(
            rig.worker.try_execute_job().await.expect("q"),
            ExecutionOutcome::Retrying { .. }
        ));
    }
    assert!(matches!(
        rig.circuits.state("127.0.0.1"),
        State::Open { .. }
    ));

    rig.queue.push(job("held", &template));
    // The three retries (10 ms) come due too; all are held back without a request, each until
    // the cool-down ends: 300 ms after the third failure, 270 ms from now.
    rig.clock.advance(Duration::from_millis(30));
    for _ in 0..4 {
        assert_eq!(
            rig.worker.try_execute_job().await.expect("q"),
            ExecutionOutcome::Retrying {
                after: Duration::from_millis(270)
            }
        );
    }
    assert_eq!(
        rig.worker.try_execute_job().await.expect("q"),
        ExecutionOutcome::EmptyQueue
    );
    assert_eq!(script.seen().len(), 3, "no request while open");
    let held = rig
        .activity
        .entries()
        .into_iter()
        .find(|e| e.delivery_id == "held")
        .expect("entry");
    assert!(
        held.message.contains("598 Host Unhealthy"),
        "{}",
        held.message
    );

    // Just before the cool-down ends nothing is due; at its end the first job is the probe: it
    // succeeds and closes the circuit, and the other three follow.
    rig.clock.advance(Duration::from_millis(269));
    assert_eq!(
        rig.worker.try_execute_job().await.expect("q"),
        ExecutionOutcome::EmptyQueue
    );
    rig.clock.advance(Duration::from_millis(1));
    assert_eq!(
        rig.worker.try_execute_job().await.expect("q"),
        ExecutionOutcome::Delivered
    );
    assert_eq!(rig.circuits.state("127.0.0.1"), State::Closed);
    assert_eq!(
        drain(&rig).await,
        vec![ExecutionOutcome::Delivered; 3],
        "the rest go out on the closed circuit"
    );
    assert_eq!(script.seen().len(), 3 + 4);
    assert_eq!(rig.clock.moved(), Duration::from_millis(300));
}

#[tokio::test]
async fn an_abort_sends_nothing_and_is_logged() {
    let (base, script) = script_server().await;
    let mut template = post_template(&format!("{base}/hook"));
    template.body = Body::Raw(
        "{% if ${first_name} == 'Ada' %}{% abort_message('language was nil') %}{% endif %}{}"
            .into(),
    );
    let rig = rig(RigOptions::default());
    rig.queue.push(job("j", &compiled(&template)));
    assert_eq!(drain(&rig).await, vec![ExecutionOutcome::Aborted]);
    assert!(script.seen().is_empty());
    assert_eq!(
        rig.queue.state("j"),
        Some(JobState::Aborted {
            reason: "language was nil".into()
        })
    );
    let entries = rig.activity.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0].kind, entries[0].message.as_str()),
        (ActivityKind::Aborted, "language was nil")
    );
    assert!(entries[0].request.is_none());
}

#[tokio::test]
async fn private_addresses_are_refused_unless_allowlisted() {
    let (base, script) = script_server().await;
    let port = base.rsplit(':').next().expect("port");
    let rig = rig(RigOptions {
        policy: SsrfPolicy::strict(),
        ..RigOptions::default()
    });
    let by_ip = compiled(&post_template(&format!("{base}/hook")));
    let by_name = compiled(&post_template(&format!("http://localhost:{port}/hook")));
    rig.queue.push(job("ip", &by_ip));
    rig.queue.push(job("name", &by_name));
    assert_eq!(
        drain(&rig).await,
        vec![ExecutionOutcome::Failed, ExecutionOutcome::Failed]
    );
    assert!(script.seen().is_empty(), "nothing reached the server");
    for entry in rig.activity.entries() {
        assert!(
            entry.message.contains("it is a loopback address"),
            "{}",
            entry.message
        );
        assert!(entry.message.contains("not retried"), "{}", entry.message);
    }
}

#[tokio::test]
async fn marked_secrets_and_credential_headers_are_redacted() {
    let (base, script) = script_server().await;
    script.push(
        Reply::status(500)
            .body(r#"{"echo":"Bearer tok-123","access_token":"tok-123","k":"topsecret-1"}"#),
    );
    let mut template = post_template(&format!("{base}/hook?key=topsecret-1"));
    template
        .headers
        .push(("Authorization".into(), "Bearer tok-123".into()));
    template
        .headers
        .push(("X-Custom".into(), "topsecret-1".into()));
    let rig = rig(RigOptions {
        redactor: Redactor::new().with_secret("topsecret-1"),
        ..RigOptions::default()
    });
    rig.queue.push(job("j", &compiled(&template)));
    let _ = rig.worker.try_execute_job().await.expect("q");
    let seen = script.seen();
    assert_eq!(
        seen[0].headers["authorization"], "Bearer tok-123",
        "sent as is"
    );
    let entries = format!("{:?}", rig.activity.entries());
    assert!(!entries.contains("tok-123"), "{entries}");
    assert!(!entries.contains("topsecret-1"), "{entries}");
    assert!(entries.contains("[REDACTED]"));
}
