//! Runs conformance files in the golden-liquid format: `{"tests": [{name, template, data,
//! result | results | invalid, templates}]}`, plus the Braze-dialect fields `braze` (the render
//! context) and `aborted` (the expected abort reason).

use std::collections::HashMap;
use std::sync::Arc;

use crate::{Context, Outcome, Template};

#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: String,
    pub passed: bool,
    /// What went wrong, for a failed case.
    pub detail: String,
}

/// Runs every case of a parsed suite file.
pub fn run_suite(suite: &serde_json::Value) -> Result<Vec<CaseResult>, String> {
    let tests = suite
        .get("tests")
        .and_then(|t| t.as_array())
        .ok_or("a golden file is a JSON object with a \"tests\" array")?;
    Ok(tests
        .iter()
        .enumerate()
        .map(|(i, case)| run_case(i, case))
        .collect())
}

fn run_case(index: usize, case: &serde_json::Value) -> CaseResult {
    let name = case
        .get("name")
        .and_then(|n| n.as_str())
        .map_or_else(|| format!("case #{index}"), str::to_string);
    let fail = |detail: String| CaseResult {
        name: name.clone(),
        passed: false,
        detail,
    };
    let Some(source) = case.get("template").and_then(|t| t.as_str()) else {
        return fail("case has no \"template\" string".into());
    };
    let expect_invalid = case
        .get("invalid")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let expected: Vec<String> = match (case.get("result"), case.get("results")) {
        (Some(serde_json::Value::String(r)), _) => vec![r.clone()],
        (_, Some(serde_json::Value::Array(rs))) => rs
            .iter()
            .filter_map(|r| r.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let expected_abort = case.get("aborted").and_then(|a| a.as_str());

    let mut context = Context::new();
    if let Some(data) = case.get("data") {
        context = context.with_globals(data);
    }
    if let Some(braze) = case.get("braze") {
        context = context.with_braze(braze);
    }
    if let Some(serde_json::Value::Object(partials)) = case.get("templates") {
        let map: HashMap<String, String> = partials
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect();
        context = context.with_partials(Arc::new(map));
    }

    let outcome = Template::parse(source).and_then(|t| t.render(&context));
    let passed = match (&outcome, expect_invalid, expected_abort) {
        (Err(_), true, _) => true,
        (Ok(Outcome::Aborted { reason }), false, Some(want)) => reason == want,
        (Ok(Outcome::Rendered(out)), false, None) => expected.iter().any(|e| e == out),
        _ => false,
    };
    let detail = if passed {
        String::new()
    } else {
        let want = if expect_invalid {
            "an error".to_string()
        } else if let Some(a) = expected_abort {
            format!("abort {a:?}")
        } else {
            format!("{expected:?}")
        };
        let got = match &outcome {
            Ok(Outcome::Rendered(out)) => format!("{out:?}"),
            Ok(Outcome::Aborted { reason }) => format!("abort {reason:?}"),
            Ok(Outcome::TokenFailed(f)) => format!("token call failed: {}", f.reason),
            Err(e) => format!("error: {e}"),
        };
        format!("template {source:?}: expected {want}, got {got}")
    };
    CaseResult {
        name,
        passed,
        detail,
    }
}

/// Known failures: one case name per line, then a tab and the reason. `#` starts a comment.
pub fn parse_known_failures(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once('\t') {
            Some((name, why)) => (name.to_string(), why.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}
