//! The pure core's semantics, step by step: graph checks and `advance()`.

use chrono::{DateTime, Duration, Utc};
use leadwire_profiles::{Profile, Trigger};
use serde_json::{Value as Json, json};

use crate::journey::{Effect, ExitReason, Status, UpdateOp, Wait, advance, enter};
use crate::spec::{CanvasSpec, CompiledCanvas};

fn canvas(steps: Json) -> CompiledCanvas {
    try_canvas(steps).expect("compiles")
}

fn try_canvas(steps: Json) -> Result<CompiledCanvas, String> {
    let spec: CanvasSpec = serde_json::from_value(json!({
        "name": "C", "status": "active",
        "entry": {"triggers": [{"type": "email_added"}]},
        "steps": steps
    }))
    .map_err(|e| e.to_string())?;
    spec.compile().map_err(|e| e.to_string())
}

fn profile(custom: Json) -> Profile {
    let mut p = Profile::new("b1".into(), t0());
    p.external_id = Some("u1".into());
    p.custom = custom.as_object().cloned().unwrap_or_default();
    p
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default()
}

fn event(name: &str) -> Trigger {
    Trigger::CustomEvent {
        name: name.into(),
        properties: Default::default(),
        time: String::new(),
    }
}

fn webhooks(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Webhook { step_name, .. } => Some(step_name.clone()),
            _ => None,
        })
        .collect()
}

fn hook(id: &str, next: Option<&str>) -> Json {
    json!({"id": id, "type": "webhook", "template": "T", "next": next})
}

#[test]
fn audience_paths_first_match_wins_and_everyone_else_is_last() {
    let c = canvas(json!([
        {"id": "split", "type": "audience_paths", "groups": [
            {"name": "MQL Threshold", "filter": {"all": [{"attribute": "lead_stage", "equals": "Lead"}, {"attribute": "lead_score", "greater_than": 50}]}, "next": "mql"},
            {"name": "Warm", "filter": {"attribute": "lead_score", "greater_than": 20}, "next": "warm"}
        ], "everyone_else": "cold"},
        hook("mql", None), hook("warm", None), hook("cold", None)
    ]));
    let run = |custom: Json| {
        let mut j = enter(&c, t0(), None);
        let out = advance(&c, &mut j, &profile(custom), t0(), None);
        assert_eq!(out.status, Status::Exited(ExitReason::Completed));
        webhooks(&out.effects)
    };
    // Matches both groups: the higher-ranked one wins.
    assert_eq!(
        run(json!({"lead_stage": "Lead", "lead_score": 60})),
        ["mql"]
    );
    assert_eq!(
        run(json!({"lead_stage": "MQL", "lead_score": 60})),
        ["warm"]
    );
    assert_eq!(
        run(json!({"lead_stage": "Lead", "lead_score": 5})),
        ["cold"]
    );
    assert_eq!(run(json!({})), ["cold"]);
}

#[test]
fn decision_split_checks_on_arrival_and_a_missing_path_exits() {
    let c = canvas(json!([
        {"id": "d", "type": "decision_split", "filter": {"attribute": "vip", "equals": true}, "yes": "y"},
        hook("y", None)
    ]));
    let mut j = enter(&c, t0(), None);
    let out = advance(&c, &mut j, &profile(json!({"vip": true})), t0(), None);
    assert_eq!(webhooks(&out.effects), ["y"]);
    let mut j = enter(&c, t0(), None);
    let out = advance(&c, &mut j, &profile(json!({"vip": false})), t0(), None);
    assert!(out.effects.is_empty());
    assert_eq!(out.status, Status::Exited(ExitReason::Completed));
}

#[test]
fn delay_waits_from_arrival_and_fires_once_due() {
    let c = canvas(json!([
        hook("first", Some("wait")),
        {"id": "wait", "type": "delay", "seconds": 3600, "next": "after"},
        hook("after", None)
    ]));
    let p = profile(json!({}));
    let mut j = enter(&c, t0(), None);
    let out = advance(&c, &mut j, &p, t0(), None);
    assert_eq!(webhooks(&out.effects), ["first"]);
    let until = t0() + Duration::seconds(3600);
    assert_eq!(out.status, Status::Waiting { until });
    // Woken early (e.g. by a trigger): still waiting, nothing sent.
    let out = advance(
        &c,
        &mut j,
        &p,
        t0() + Duration::seconds(10),
        Some(&event("x")),
    );
    assert_eq!(
        (out.effects.len(), out.status),
        (0, Status::Waiting { until })
    );
    // The stored journey survives a round trip (the engine keeps it as JSON).
    let mut j: crate::Journey =
        serde_json::from_str(&serde_json::to_string(&j).expect("json")).expect("parses");
    let out = advance(&c, &mut j, &p, until, None);
    assert_eq!(webhooks(&out.effects), ["after"]);
    assert_eq!(out.status, Status::Exited(ExitReason::Completed));
}

#[test]
fn a_delay_until_a_past_time_exits_and_a_future_one_waits_for_it() {
    let c = canvas(json!([
        {"id": "wait", "type": "delay", "until": "2026-06-01T00:00:00Z", "next": "after"},
        hook("after", None)
    ]));
    let p = profile(json!({}));
    let late = DateTime::parse_from_rfc3339("2026-07-01T00:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    let mut j = enter(&c, late, None);
    assert_eq!(
        advance(&c, &mut j, &p, late, None).status,
        Status::Exited(ExitReason::DelayPassed)
    );
    let early = late - Duration::days(60);
    let mut j = enter(&c, early, None);
    let out = advance(&c, &mut j, &p, early, None);
    assert!(matches!(out.status, Status::Waiting { .. }));
}

fn action_paths(ranked: bool) -> CompiledCanvas {
    canvas(json!([
        {"id": "ap", "type": "action_paths", "window_seconds": 600, "ranked": ranked, "groups": [
            {"name": "Webinar", "trigger": {"type": "custom_event", "name": "webinar"}, "next": "plus5"},
            {"name": "Session", "trigger": {"type": "custom_event", "name": "session"}, "next": "plus1"}
        ], "everyone_else": "minus1"},
        hook("plus5", None), hook("plus1", None), hook("minus1", None)
    ]))
}

#[test]
fn unranked_action_paths_advance_at_once_on_an_action() {
    let c = action_paths(false);
    let p = profile(json!({}));
    let mut j = enter(&c, t0(), None);
    // The entering trigger does not count as the action.
    let out = advance(&c, &mut j, &p, t0(), Some(&event("session")));
    assert!(matches!(out.status, Status::Waiting { .. }));
    let out = advance(
        &c,
        &mut j,
        &p,
        t0() + Duration::seconds(5),
        Some(&event("session")),
    );
    assert_eq!(webhooks(&out.effects), ["plus1"]);
}

#[test]
fn an_action_paths_group_keeps_the_actions_properties_and_everyone_else_does_not() {
    let c = action_paths(false);
    let p = profile(json!({}));
    let mut j = enter(&c, t0(), None);
    advance(&c, &mut j, &p, t0(), None);
    let action = Trigger::CustomEvent {
        name: "webinar".into(),
        properties: json!({"title": "Pipelines"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        time: String::new(),
    };
    advance(&c, &mut j, &p, t0(), Some(&action));
    assert_eq!(j.event_properties, Some(json!({"title": "Pipelines"})));
    let c = action_paths(true);
    let mut j = enter(&c, t0(), None);
    advance(&c, &mut j, &p, t0(), None);
    advance(&c, &mut j, &p, t0() + Duration::seconds(600), None);
    assert_eq!(j.event_properties, None);
}

#[test]
fn ranked_action_paths_hold_everyone_until_the_window_ends() {
    let c = action_paths(true);
    let p = profile(json!({}));
    let mut j = enter(&c, t0(), None);
    advance(&c, &mut j, &p, t0(), None);
    let out = advance(
        &c,
        &mut j,
        &p,
        t0() + Duration::seconds(5),
        Some(&event("session")),
    );
    assert!(out.effects.is_empty(), "held until the window ends");
    let out = advance(
        &c,
        &mut j,
        &p,
        t0() + Duration::seconds(6),
        Some(&event("webinar")),
    );
    assert!(out.effects.is_empty());
    assert!(matches!(j.wait, Some(Wait::Actions { best: Some(0), .. })));
    let out = advance(&c, &mut j, &p, t0() + Duration::seconds(600), None);
    assert_eq!(
        webhooks(&out.effects),
        ["plus5"],
        "the best-ranked group done"
    );
}

#[test]
fn action_paths_without_an_action_leave_through_everyone_else() {
    for ranked in [false, true] {
        let c = action_paths(ranked);
        let p = profile(json!({}));
        let mut j = enter(&c, t0(), None);
        advance(&c, &mut j, &p, t0(), None);
        let out = advance(
            &c,
            &mut j,
            &p,
            t0() + Duration::seconds(599),
            Some(&event("other")),
        );
        assert!(out.effects.is_empty());
        let out = advance(&c, &mut j, &p, t0() + Duration::seconds(600), None);
        assert_eq!(webhooks(&out.effects), ["minus1"]);
    }
}

#[test]
fn user_update_resolves_increments_to_absolute_values_and_stops_until_applied() {
    let c = canvas(json!([
        {"id": "u", "type": "user_update",
         "attributes": {"lead_stage": "MQL", "greeting": "Hi {{${first_name}}} from {{canvas_entry_properties.${source}}}"},
         "increments": {"lead_score": 5, "visits": -1}, "remove": ["temp"], "next": "after"},
        hook("after", None)
    ]));
    let mut p = profile(json!({"lead_score": 48, "temp": 1}));
    p.standard.insert("first_name".into(), json!("Ann"));
    let mut j = enter(&c, t0(), Some(json!({"source": "ads"})));
    let out = advance(&c, &mut j, &p, t0(), None);
    assert_eq!(out.status, Status::AwaitingUpdate);
    assert_eq!(
        j.step, "after",
        "the journey moved on; it resumes after the update"
    );
    let Some(Effect::UserUpdate { ops, .. }) = out.effects.first() else {
        panic!("an update: {:?}", out.effects);
    };
    assert_eq!(
        ops,
        &vec![
            ("lead_stage".to_string(), UpdateOp::Set(json!("MQL"))),
            (
                "greeting".to_string(),
                UpdateOp::Set(json!("Hi Ann from ads"))
            ),
            ("lead_score".to_string(), UpdateOp::Set(json!(53))),
            ("visits".to_string(), UpdateOp::Set(json!(-1))),
            ("temp".to_string(), UpdateOp::Remove),
        ]
    );
    crate::journey::overlay(&mut p, ops);
    assert_eq!(p.custom.get("lead_score"), Some(&json!(53)));
    let out = advance(&c, &mut j, &p, t0(), None);
    assert_eq!(webhooks(&out.effects), ["after"]);
}

#[test]
fn user_update_edits_simple_arrays_like_users_track() {
    let c = canvas(json!([
        {"id": "u", "type": "user_update", "arrays": {
            "interests": {"add": ["pricing", "webinars"], "remove": ["newsletter"]},
            "fresh": {"add": [1]}
        }}
    ]));
    let mut j = enter(&c, t0(), None);
    let out = advance(
        &c,
        &mut j,
        &profile(json!({"interests": ["webinars", "newsletter", "blog"]})),
        t0(),
        None,
    );
    assert_eq!(out.status, Status::Exited(ExitReason::Completed));
    assert_eq!(
        out.effects,
        vec![Effect::UserUpdate {
            step_id: "u".into(),
            ops: vec![
                (
                    "interests".into(),
                    UpdateOp::Set(json!(["blog", "pricing", "webinars"]))
                ),
                ("fresh".into(), UpdateOp::Set(json!([1]))),
            ],
            track: None,
        }]
    );
    assert!(
        try_canvas(json!([{"id": "u", "type": "user_update", "arrays": {"x": {"append": [1]}}}]))
            .err()
            .is_some_and(|e| e.contains("step 'u'"))
    );
}

#[test]
fn the_json_editor_renders_liquid_and_resolves_attributes_to_absolute_values() {
    let c = canvas(json!([
        {"id": "u", "type": "user_update", "json": r#"{% assign t = 'now' | date: "%Y-%m-%dT%H:%M:%SZ" %}{"attributes": [{"lead_score": {"inc": {{canvas_entry_properties.${points}}}}, "tags": {"add": ["mql"]}, "source": "{{canvas_entry_properties.${source}}}"}, {"lead_score": {"inc": 1}}], "events": [{"name": "scored", "time": "{{t}}"}]}"#, "next": "w"},
        hook("w", None)
    ]));
    let mut j = enter(&c, t0(), Some(json!({"points": 5, "source": "ads"})));
    let out = advance(&c, &mut j, &profile(json!({"lead_score": 45})), t0(), None);
    assert_eq!(out.status, Status::AwaitingUpdate);
    let Some(Effect::UserUpdate { ops, track, .. }) = out.effects.first() else {
        panic!("an update: {:?}", out.effects);
    };
    assert_eq!(
        ops,
        &vec![
            ("lead_score".to_string(), UpdateOp::Set(json!(50))),
            ("tags".to_string(), UpdateOp::Set(json!(["mql"]))),
            ("source".to_string(), UpdateOp::Set(json!("ads"))),
            ("lead_score".to_string(), UpdateOp::Set(json!(51))),
        ]
    );
    let events = track.as_ref().map(|t| t["events"].clone());
    assert_eq!(
        events.as_ref().map(|e| e[0]["name"].clone()),
        Some(json!("scored"))
    );
    assert!(
        events.is_some_and(|e| e[0]["time"].as_str().is_some_and(|t| t.ends_with('Z'))),
        "Liquid rendered the time"
    );
}

#[test]
fn an_aborted_user_update_changes_nothing_and_advances() {
    let c = canvas(json!([
        {"id": "u", "type": "user_update", "attributes": {"x": "{% abort_message('no') %}"}, "next": "after"},
        hook("after", None)
    ]));
    let mut j = enter(&c, t0(), None);
    let out = advance(&c, &mut j, &profile(json!({})), t0(), None);
    assert_eq!(webhooks(&out.effects), ["after"]);
}

#[test]
fn webhook_steps_name_the_step_and_advance_even_when_the_message_would_abort() {
    // The step hands the message to the queue and advances; an abort there does not hold the user.
    let c = canvas(json!([
        {"id": "w1", "name": "Update Lead", "type": "webhook", "template": "T", "next": "w2"},
        hook("w2", None)
    ]));
    let mut j = enter(&c, t0(), None);
    let out = advance(&c, &mut j, &profile(json!({})), t0(), None);
    assert_eq!(webhooks(&out.effects), ["Update Lead", "w2"]);
    assert_eq!(out.steps, 1);
}

#[test]
fn context_variables_are_typed_and_visible_later() {
    let c = canvas(json!([
        {"id": "ctx", "type": "context", "variables": [
            {"name": "score", "type": "number", "value": "{{custom_attribute.${lead_score} | plus: 1}}"},
            {"name": "label", "type": "string", "value": "score={{context.${score}}}"},
            {"name": "flag", "type": "boolean", "value": "true"}
        ], "next": "w"},
        hook("w", None)
    ]));
    let mut j = enter(&c, t0(), None);
    advance(&c, &mut j, &profile(json!({"lead_score": 41})), t0(), None);
    assert_eq!(j.context.get("score"), Some(&json!(42)));
    assert_eq!(j.context.get("label"), Some(&json!("score=42")));
    assert_eq!(j.context.get("flag"), Some(&json!(true)));
}

#[test]
fn splits_may_filter_on_context_variables() {
    let c = canvas(json!([
        {"id": "ctx", "type": "context", "variables": [
            {"name": "tier", "type": "string", "value": "{% if custom_attribute.${lead_score} > 50 %}hot{% else %}cold{% endif %}"}
        ], "next": "split"},
        {"id": "split", "type": "decision_split", "filter": {"attribute": "context.tier", "equals": "hot"}, "yes": "hot", "no": "cold"},
        hook("hot", None), hook("cold", None)
    ]));
    for (score, want) in [(60, "hot"), (10, "cold")] {
        let mut j = enter(&c, t0(), None);
        let out = advance(
            &c,
            &mut j,
            &profile(json!({"lead_score": score})),
            t0(),
            None,
        );
        assert_eq!(webhooks(&out.effects), [want]);
    }
}

#[test]
fn an_exit_event_takes_effect_when_the_current_step_finishes() {
    let spec: CanvasSpec = serde_json::from_value(json!({
        "name": "C", "entry": {"triggers": [{"type": "email_added"}]},
        "exit": {"events": [{"type": "purchase"}], "filter": {"attribute": "customer", "equals": true}},
        "steps": [
            {"id": "wait", "type": "delay", "seconds": 60, "next": "w"},
            hook("w", None)
        ]
    }))
    .expect("parses");
    let c = spec.compile().expect("compiles");
    let p = profile(json!({}));
    let mut j = enter(&c, t0(), None);
    advance(&c, &mut j, &p, t0(), None);
    j.exit_requested = true;
    let out = advance(&c, &mut j, &p, t0() + Duration::seconds(30), None);
    assert!(
        matches!(out.status, Status::Waiting { .. }),
        "stays until the delay ends"
    );
    let out = advance(&c, &mut j, &p, t0() + Duration::seconds(60), None);
    assert_eq!(
        (out.effects.len(), out.status),
        (0, Status::Exited(ExitReason::ExitCriteria))
    );
    // The exit filter is checked at step boundaries too.
    let mut j = enter(&c, t0(), None);
    advance(&c, &mut j, &p, t0(), None);
    let out = advance(
        &c,
        &mut j,
        &profile(json!({"customer": true})),
        t0() + Duration::seconds(60),
        None,
    );
    assert_eq!(out.status, Status::Exited(ExitReason::ExitCriteria));
}

#[test]
fn graph_errors_name_the_step() {
    let err = |steps: Json| try_canvas(steps).err().unwrap_or_default();
    assert_eq!(
        err(json!([hook("a", Some("nowhere"))])),
        "canvas 'C', step 'a': its next step 'nowhere' does not exist"
    );
    assert_eq!(
        err(json!([hook("a", None), hook("orphan", None)])),
        "canvas 'C', step 'orphan': no path leads to this step from the first step 'a'"
    );
    let cycle = err(json!([hook("a", Some("b")), hook("b", Some("a"))]));
    assert!(
        cycle.contains("step 'a'") && cycle.contains("cycle without a Delay"),
        "{cycle}"
    );
    // A cycle through a Delay is allowed.
    assert!(
        try_canvas(json!([
            hook("a", Some("d")),
            {"id": "d", "type": "delay", "seconds": 86400, "next": "a"}
        ]))
        .is_ok()
    );
    let many: Vec<Json> = (0..201)
        .map(|i| {
            hook(
                &format!("s{i}"),
                (i < 200).then(|| format!("s{}", i + 1)).as_deref(),
            )
        })
        .collect();
    assert_eq!(
        err(Json::Array(many)),
        "canvas 'C' has 201 steps; Braze allows at most 200"
    );
    assert!(err(json!([{"id": "d", "type": "delay", "next": null}])).contains("exactly one of"));
    assert!(
        err(json!([{"id": "ap", "type": "action_paths", "window_seconds": 9999999, "groups": [{"name": "g", "trigger": {"type": "email_added"}}]}]))
            .contains("step 'ap'")
    );
}

#[test]
fn the_lead_scoring_canvas_yaml_compiles() {
    let yaml = include_str!("../../../examples/salesforce-sales-cloud/lead-scoring-canvas.yaml");
    let mut doc: Json = serde_norway::from_str(yaml).expect("YAML parses");
    if let Json::Object(m) = &mut doc {
        m.remove("kind");
    }
    let spec: CanvasSpec = serde_json::from_value(doc).expect("a Canvas");
    let c = spec.compile().expect("compiles");
    assert_eq!(c.spec.entry.reentry_seconds, Some(0));
    assert_eq!(c.entry_triggers.len(), 2);
}
