//! Differential testing against the reference implementations: generated templates and contexts
//! (`differential/generate.rs`) rendered by leadwire, by python-liquid 2.3.6
//! (`differential/referee.py`) and, where installed, by Ruby Liquid 5.4 (`differential/referee.rb`).
//! Outputs and error/no-error must agree, except for the categories recorded in
//! `differential/known_differences.txt`; a new disagreement fails the test, and so does a stale
//! entry (a recorded category exercised at least `STALE_AFTER` times without one disagreement).
//!
//! Which referee wins where the two differ: python-liquid. It follows current Shopify Liquid (5.6+:
//! `doc`, `find`, `has`, `reject`, `{%- endraw -%}`, counters apart from assigns, no `<tr>` for an
//! empty tablerow) and the golden-liquid suite, where Debian's Ruby Liquid is 5.4. Where
//! python-liquid is unsure - it would spell floats and hashes the Python way (`1e+20`,
//! `{'a': 1}`) - `referee.py` spells them as Ruby does, and Ruby Liquid confirms it (no referee
//! conflicts on those). The summary counts the cases where the referees differ, by category, and
//! how often leadwire sided with Ruby.
//!
//! Bounded by default (`LIQUID_DIFF_CASES`, default 3000, seed `LIQUID_DIFF_SEED`). The long run:
//! `LIQUID_DIFF_CASES=100000 cargo test --release -p leadwire-liquid --test differential -- --nocapture`.
//! python-liquid lives in a venv at `target/liquid-venv` (`.ci/liquid-referees` makes it), or at
//! `LIQUID_DIFF_PYTHON`. Without it the test prints SKIPPED and passes, except under `CI=true`.

#[path = "differential/generate.rs"]
mod generate;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use leadwire_liquid::{Context, Outcome, Template};

const DEFAULT_CASES: usize = 3000;
const DEFAULT_SEED: u64 = 0x1EAD_3173_D1FF;
/// A recorded category exercised this often without a disagreement is stale.
const STALE_AFTER: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rendered {
    Output(String),
    Error(String),
}

impl Rendered {
    fn same_as(&self, other: &Rendered) -> bool {
        match (self, other) {
            (Rendered::Output(a), Rendered::Output(b)) => a == b,
            (Rendered::Error(_), Rendered::Error(_)) => true,
            _ => false,
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            Rendered::Output(o) => serde_json::json!({ "output": o }),
            Rendered::Error(e) => serde_json::json!({ "error": e }),
        }
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => {
            let v = v.trim().replace('_', "");
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}"))
        }
        Err(_) => default,
    }
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn harness_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/differential")
}

/// The python-liquid interpreter, if one is installed where the harness looks.
fn find_python() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(p) = std::env::var("LIQUID_DIFF_PYTHON") {
        candidates.push(PathBuf::from(p));
    }
    if let Ok(t) = std::env::var("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(t).join("liquid-venv/bin/python"));
    }
    candidates.push(workspace_root().join("target/liquid-venv/bin/python"));
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import liquid; assert liquid.__version__ == '2.3.6'"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

fn ruby_available() -> bool {
    Command::new("ruby")
        .args([
            "-e",
            "require 'liquid'; exit(Liquid::VERSION.start_with?('5.') ? 0 : 1)",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn spawn_referee(mut command: Command, input: &Path, output: &Path) -> Child {
    command
        .env("TZ", "UTC")
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(File::open(input).expect("cases file opens"))
        .stdout(File::create(output).expect("referee output file is writable"))
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start referee {command:?}: {e}"))
}

/// A referee's answers by case id; `None` for answers it could not give in comparable form.
fn read_referee(path: &Path) -> HashMap<usize, Option<Rendered>> {
    let text = std::fs::read_to_string(path).expect("referee output is readable");
    let mut answers = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(id) = v.get("id").and_then(|i| i.as_u64()) else {
            continue;
        };
        let answer = match (v.get("ok"), v.get("output"), v.get("error")) {
            (Some(serde_json::Value::Bool(true)), Some(serde_json::Value::String(o)), _) => {
                Some(Rendered::Output(o.clone()))
            }
            (_, _, Some(serde_json::Value::String(e))) => Some(Rendered::Error(e.clone())),
            _ => None,
        };
        answers.insert(id as usize, answer);
    }
    answers
}

fn render_ours(case: &generate::Case) -> Rendered {
    let now = chrono::DateTime::parse_from_rfc3339("2024-06-01T12:00:00Z")
        .expect("fixed time parses")
        .with_timezone(&chrono::Utc);
    let partials: HashMap<String, String> = case.partials.clone().into_iter().collect();
    let context = Context::new()
        .with_globals(&case.data)
        .with_partials(Arc::new(partials))
        .with_now(now);
    match Template::parse(&case.template).and_then(|t| t.render(&context)) {
        Ok(Outcome::Rendered(out)) => Rendered::Output(out),
        Ok(Outcome::Aborted { reason }) => Rendered::Error(format!("aborted: {reason}")),
        Ok(Outcome::TokenFailed(f)) => Rendered::Error(format!("token call failed: {}", f.reason)),
        Err(e) => Rendered::Error(e.to_string()),
    }
}

/// Which disagreements a known-differences entry covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Only where leadwire answers as Ruby Liquid does (python-liquid stands alone).
    Ruby,
    /// Any disagreement in the category.
    Any,
}

struct Known {
    pattern: String,
    scope: Scope,
}

/// Known differences: `category pattern<TAB>ruby|any<TAB>reason`; `*` in a pattern matches any
/// text. The first entry that covers a disagreement records it.
fn parse_known(text: &str) -> Vec<Known> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut parts = l.split('\t');
            let pattern = parts.next().unwrap_or_default().trim().to_string();
            let scope = match parts.next().map(str::trim) {
                Some("ruby") => Scope::Ruby,
                Some("any") => Scope::Any,
                other => {
                    panic!("known difference {pattern:?}: scope must be ruby or any, got {other:?}")
                }
            };
            let reason = parts.next().unwrap_or_default().trim();
            assert!(
                !reason.is_empty(),
                "known difference {pattern:?} needs a reason"
            );
            Known { pattern, scope }
        })
        .collect()
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// python-liquid spells some values the Python way where no Liquid would (`True`, `None`); there
/// it is unsure, and Ruby's answer is the expected one.
fn spelled_the_python_way(output: &str) -> bool {
    ["True", "False", "None"].iter().any(|w| {
        output.match_indices(w).any(|(at, _)| {
            let before = output[..at].chars().next_back();
            let after = output[at + w.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
    })
}

#[derive(Default)]
struct Tally {
    cases: usize,
    disagreements: usize,
}

#[test]
fn leadwire_agrees_with_the_reference_implementations() {
    let n = env_number("LIQUID_DIFF_CASES", DEFAULT_CASES as u64) as usize;
    let seed = env_number("LIQUID_DIFF_SEED", DEFAULT_SEED);
    let Some(python) = find_python() else {
        assert!(
            !in_ci(),
            "python-liquid 2.3.6 is not installed (run .ci/liquid-referees), and CI=true requires it"
        );
        eprintln!(
            "SKIPPED: python-liquid 2.3.6 not found in target/liquid-venv (run .ci/liquid-referees)"
        );
        return;
    };
    let ruby = ruby_available();
    assert!(
        ruby || !in_ci(),
        "Ruby Liquid (Debian's ruby-liquid) is not installed, and CI=true requires it"
    );
    if !ruby {
        eprintln!("note: Ruby Liquid not installed; python-liquid referees alone");
    }

    let cases: Vec<generate::Case> = (0..n).map(|i| generate::case(seed, i)).collect();
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("liquid-differential");
    std::fs::create_dir_all(&work).expect("work dir");
    let cases_path = work.join("cases.jsonl");
    {
        let mut f = std::io::BufWriter::new(File::create(&cases_path).expect("cases file"));
        for c in &cases {
            writeln!(f, "{}", c.to_json_line()).expect("write case");
        }
        f.flush().expect("flush cases");
    }

    let dir = harness_dir();
    let python_out = work.join("python.jsonl");
    let ruby_out = work.join("ruby.jsonl");
    let mut py_cmd = Command::new(&python);
    py_cmd.arg(dir.join("referee.py"));
    let mut children = vec![spawn_referee(py_cmd, &cases_path, &python_out)];
    if ruby {
        let mut rb_cmd = Command::new("ruby");
        rb_cmd.arg("-EUTF-8:UTF-8").arg(dir.join("referee.rb"));
        children.push(spawn_referee(rb_cmd, &cases_path, &ruby_out));
    }
    // Leadwire renders while the referees run.
    let ours: Vec<Rendered> = cases.iter().map(render_ours).collect();
    for mut child in children {
        let status = child.wait().expect("referee ran");
        assert!(status.success(), "a referee failed: {status}");
    }
    let py = read_referee(&python_out);
    let rb = if ruby {
        read_referee(&ruby_out)
    } else {
        HashMap::new()
    };

    let known = parse_known(include_str!("differential/known_differences.txt"));
    let mut by_category: BTreeMap<String, Tally> = BTreeMap::new();
    let mut known_hits: BTreeMap<usize, usize> = BTreeMap::new();
    let mut known_exercised: BTreeMap<usize, usize> = BTreeMap::new();
    let mut referee_conflicts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut agreements = 0usize;
    let mut unusable = 0usize;
    let mut python_unsure = 0usize;
    let mut recorded = 0usize;
    let mut new_disagreements = Vec::new();
    let mut report = std::io::BufWriter::new(
        File::create(work.join("disagreements.jsonl")).expect("report file"),
    );

    for (case, ours) in cases.iter().zip(&ours) {
        let Some(Some(p)) = py.get(&case.id) else {
            unusable += 1;
            continue;
        };
        let r = rb.get(&case.id).cloned().flatten();
        if let Some(r) = r.as_ref().filter(|r| !r.same_as(p)) {
            let conflict = referee_conflicts.entry(case.category.clone()).or_default();
            conflict.0 += 1;
            if ours.same_as(r) {
                conflict.1 += 1;
            }
        }
        let expected = match (p, &r) {
            (Rendered::Output(po), Some(r @ Rendered::Output(_)))
                if spelled_the_python_way(po) && !r.same_as(p) =>
            {
                python_unsure += 1;
                r.clone()
            }
            _ => p.clone(),
        };
        let sides_with_ruby = r.as_ref().is_some_and(|r| ours.same_as(r));
        let entry = known.iter().position(|k| {
            glob(&k.pattern, &case.category) && (k.scope == Scope::Any || sides_with_ruby)
        });
        for (k, known) in known.iter().enumerate() {
            if glob(&known.pattern, &case.category) {
                *known_exercised.entry(k).or_default() += 1;
            }
        }
        let tally = by_category.entry(case.category.clone()).or_default();
        tally.cases += 1;
        if ours.same_as(&expected) {
            agreements += 1;
            continue;
        }
        tally.disagreements += 1;
        let line = serde_json::json!({
            "id": case.id,
            "category": case.category,
            "template": case.template,
            "data": case.data,
            "partials": case.partials,
            "leadwire": ours.to_json(),
            "python": p.to_json(),
            "ruby": r.as_ref().map(Rendered::to_json),
            "known": entry.is_some(),
        });
        writeln!(report, "{line}").expect("write report");
        match entry {
            Some(k) => {
                recorded += 1;
                *known_hits.entry(k).or_default() += 1;
            }
            None => new_disagreements.push(line),
        }
    }
    report.flush().expect("flush report");

    let disagreements = recorded + new_disagreements.len();
    eprintln!("liquid differential (seed {seed:#x}):");
    eprintln!("  templates generated:        {n}");
    eprintln!(
        "  referees:                   python-liquid 2.3.6{}",
        if ruby { " + Ruby Liquid 5.4" } else { "" }
    );
    eprintln!("  referee answer unusable:    {unusable}");
    eprintln!("  python-liquid unsure (Python spelling), Ruby's answer used: {python_unsure}");
    eprintln!("  agreements:                 {agreements}");
    eprintln!("  disagreements:              {disagreements}");
    eprintln!("    recorded (known):         {recorded}");
    eprintln!("    new:                      {}", new_disagreements.len());
    eprintln!("  disagreements by category:");
    let mut cats: Vec<_> = by_category
        .iter()
        .filter(|(_, t)| t.disagreements > 0)
        .collect();
    cats.sort_by_key(|c| std::cmp::Reverse(c.1.disagreements));
    for (cat, t) in &cats {
        eprintln!("    {:>6} of {:>6}  {cat}", t.disagreements, t.cases);
    }
    let differ: usize = referee_conflicts.values().map(|c| c.0).sum();
    let sided: usize = referee_conflicts.values().map(|c| c.1).sum();
    eprintln!(
        "  referees differ (python-liquid wins): {differ} cases; leadwire sided with Ruby 5.4 in {sided}"
    );
    let mut conflicts: Vec<_> = referee_conflicts.iter().collect();
    conflicts.sort_by_key(|c| std::cmp::Reverse(c.1.0));
    for (cat, (d, s)) in conflicts.iter().take(25) {
        eprintln!("    {d:>6} (leadwire = Ruby: {s:>5})  {cat}");
    }
    eprintln!("  details: {}", work.join("disagreements.jsonl").display());

    let stale: Vec<&str> = known
        .iter()
        .enumerate()
        .filter(|(k, _)| {
            known_exercised.get(k).copied().unwrap_or(0) >= STALE_AFTER
                && known_hits.get(k).copied().unwrap_or(0) == 0
        })
        .map(|(_, k)| k.pattern.as_str())
        .collect();
    let shown: Vec<String> = new_disagreements
        .iter()
        .take(20)
        .map(|d| d.to_string())
        .collect();
    assert!(
        new_disagreements.is_empty(),
        "{} new disagreements with the reference implementations (first {}):\n{}",
        new_disagreements.len(),
        shown.len(),
        shown.join("\n")
    );
    assert!(
        stale.is_empty(),
        "known differences exercised at least {STALE_AFTER} times without a disagreement; remove them: {stale:?}"
    );
}
