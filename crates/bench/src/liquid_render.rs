//! Renders per second: leadwire's engine next to the `liquid` crate, same templates, same data,
//! same run: the seed's templates (which only ours can render) and the golden-liquid benchmark
//! fixtures. `leadwire-bench liquid`; `--filter` runs only the cases whose name contains it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use leadwire_liquid::{
    ConnectedContent, ConnectedContentConfig, Context, FetchError, FetchRequest, FetchResponse,
    Fetcher, Outcome, Template,
};

fn measure(seconds: f64, mut f: impl FnMut() -> usize) -> f64 {
    // Warm up, then count whole renders until the time is up.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(100) {
        std::hint::black_box(f());
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        for _ in 0..64 {
            std::hint::black_box(f());
        }
        n += 64;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Answers every token request in memory, like a Salesforce token endpoint would.
struct TokenEndpoint;
impl Fetcher for TokenEndpoint {
    fn fetch(&self, _: &FetchRequest) -> Result<FetchResponse, FetchError> {
        Ok(FetchResponse {
            status: 200,
            headers: Vec::new(),
            body: br#"{"access_token":"00Dxx0000001gPL!AR8AQJXg","token_type":"Bearer"}"#.to_vec(),
        })
    }
}

struct Case {
    name: String,
    ours: Option<(Template, Context)>,
    theirs: Option<(liquid::Template, liquid::Object)>,
    note: String,
}

fn braze_user() -> serde_json::Value {
    serde_json::json!({
        "profile": {"user_id": "u-1001", "first_name": "José", "last_name": "Müller", "email_address": "jose@example.com"},
        "custom_attributes": {"company": "Acme 주식회사"}
    })
}

fn seed_cases() -> anyhow::Result<Vec<Case>> {
    let body = r#"{"firstName":"{{${first_name}}}","lastName":"{{${last_name}}}","email":"{{${email_address}}}","company":"{{custom_attribute.${company}}}"}"#;
    let header = "{% connected_content https://acme.my.salesforce.com/services/oauth2/token :method post :body client_id=ID&client_secret=SECRET&grant_type=client_credentials :cache_max_age 900 :save result %}Bearer {{result.access_token}}";
    let plain = r#"{"firstName":"{{first_name}}","lastName":"{{last_name}}","email":"{{email}}","company":"{{company}}"}"#;
    let plain_data = serde_json::json!({"first_name": "José", "last_name": "Müller", "email": "jose@example.com", "company": "Acme 주식회사"});
    let cc = Arc::new(ConnectedContent::new(
        Arc::new(TokenEndpoint),
        ConnectedContentConfig::default(),
    ));
    let parser = liquid::ParserBuilder::with_stdlib().build()?;
    Ok(vec![
        Case {
            name: "seed Create Lead body (Braze ${...})".into(),
            ours: Some((
                Template::parse(body)?,
                Context::new().with_braze(&braze_user()),
            )),
            theirs: None,
            note: "liquid crate cannot parse ${...}".into(),
        },
        Case {
            name: "seed Authorization header (token from cache)".into(),
            ours: Some((
                Template::parse(header)?,
                Context::new()
                    .with_braze(&braze_user())
                    .with_connected_content(cc),
            )),
            theirs: None,
            note: "liquid crate has no connected_content".into(),
        },
        Case {
            name: "one-line webhook body (plain Liquid)".into(),
            ours: Some((
                Template::parse(plain)?,
                Context::new().with_globals(&plain_data),
            )),
            theirs: Some((parser.parse(plain)?, liquid::model::to_object(&plain_data)?)),
            note: String::new(),
        },
    ])
}

fn fixture_cases(root: &Path, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<Vec<Case>> {
    let entries = std::fs::read_dir(root)
        .with_context(|| format!("the benchmark fixtures at {}", root.display()))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut cases = Vec::new();
    for dir in dirs {
        let read = |p: PathBuf| {
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
        };
        let data: serde_json::Value = serde_json::from_str(&read(dir.join("data.json"))?)
            .with_context(|| format!("{}/data.json", dir.display()))?;
        let expected = read(dir.join("expected_result.txt"))?;
        let mut partials = HashMap::new();
        for entry in std::fs::read_dir(dir.join("templates"))
            .with_context(|| format!("{}/templates", dir.display()))?
            .flatten()
        {
            let name = entry
                .path()
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            let text = read(entry.path())?;
            partials.insert(format!("{name}.liquid"), text.clone());
            partials.insert(name, text);
        }
        let index = partials
            .get("index")
            .cloned()
            .with_context(|| format!("{} has no index.liquid", dir.display()))?;
        let ours_t =
            Template::parse(&index).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
        let ctx = Context::new()
            .with_globals(&data)
            .with_partials(Arc::new(partials.clone()))
            .with_now(now);
        let matches = match ours_t.render(&ctx) {
            // Expected files carry one extra final newline (see tests/fixtures.rs).
            Ok(Outcome::Rendered(out)) => {
                out.trim_end_matches('\n') == expected.trim_end_matches('\n')
            }
            _ => false,
        };
        let mut source = liquid::partials::InMemorySource::new();
        for (k, v) in &partials {
            source.add(k.clone(), v.clone());
        }
        let parser = liquid::ParserBuilder::with_stdlib()
            .partials(liquid::partials::EagerCompiler::new(source))
            .build();
        let theirs = parser
            .ok()
            .and_then(|p| p.parse(&index).ok())
            .and_then(|t| {
                let obj = liquid::model::to_object(&data).ok()?;
                t.render(&obj).ok()?;
                Some((t, obj))
            });
        let note = match (&theirs, matches) {
            (None, true) => {
                "liquid crate cannot parse or render it; ours matches expected_result.txt"
                    .to_string()
            }
            (None, false) => {
                "liquid crate cannot parse or render it; OURS DIFFERS from expected_result.txt"
                    .to_string()
            }
            (Some(_), true) => "ours matches expected_result.txt".to_string(),
            (Some(_), false) => "OURS DIFFERS from expected_result.txt".to_string(),
        };
        let name = format!(
            "fixture {}",
            dir.file_name().and_then(|n| n.to_str()).unwrap_or("?")
        );
        cases.push(Case {
            name,
            ours: Some((ours_t, ctx)),
            theirs,
            note,
        });
    }
    Ok(cases)
}

/// One row of the render table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenderRow {
    pub case: String,
    /// Renders per second by leadwire's engine (`None`: not measured).
    pub leadwire_per_s: Option<f64>,
    /// Renders per second by the `liquid` crate (`None`: it cannot parse or render the case).
    pub liquid_crate_per_s: Option<f64>,
    pub note: String,
}

/// Measures every case for `seconds` each (those whose name contains `filter`, if given).
pub fn run(seconds: f64, filter: Option<&str>) -> anyhow::Result<Vec<RenderRow>> {
    // Fixtures 001/002 print the current year; their expected output was made in 2025.
    let now =
        chrono::DateTime::parse_from_rfc3339("2025-06-01T12:00:00Z")?.with_timezone(&chrono::Utc);
    let fixtures =
        crate::workspace_root().join("testdata/conformance/golden-liquid/benchmark_fixtures");
    let mut cases = seed_cases()?;
    cases.extend(fixture_cases(&fixtures, now)?);
    if let Some(filter) = filter {
        cases.retain(|c| c.name.contains(filter));
    }
    let mut rows = Vec::new();
    for case in cases {
        let ours = case.ours.as_ref().map(|(t, c)| {
            measure(seconds, || match t.render(c) {
                Ok(Outcome::Rendered(s)) => s.len(),
                _ => 0,
            })
        });
        let theirs = case
            .theirs
            .as_ref()
            .map(|(t, o)| measure(seconds, || t.render(o).map(|s| s.len()).unwrap_or(0)));
        let row = RenderRow {
            case: case.name,
            leadwire_per_s: ours,
            liquid_crate_per_s: theirs,
            note: case.note,
        };
        print_row(&row);
        rows.push(row);
    }
    Ok(rows)
}

pub fn print_header() {
    println!(
        "{:<48} {:>14} {:>14} {:>8}  note",
        "case", "leadwire/s", "liquid 0.26/s", "ratio"
    );
}

fn print_row(row: &RenderRow) {
    let fmt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.0}"));
    println!(
        "{:<48} {:>14} {:>14} {:>8}  {}",
        row.case,
        fmt(row.leadwire_per_s),
        fmt(row.liquid_crate_per_s),
        row.ratio(),
        row.note
    );
}

impl RenderRow {
    /// leadwire's rate over the `liquid` crate's, as `1.52x`, or `-`.
    pub fn ratio(&self) -> String {
        match (self.leadwire_per_s, self.liquid_crate_per_s) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
            _ => "-".into(),
        }
    }
}
