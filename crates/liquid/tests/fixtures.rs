//! The golden-liquid benchmark fixtures render exactly their expected_result.txt (with "now" fixed
//! to 2025, the year those files were made).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use leadwire_liquid::{Context, Outcome, Template};

#[test]
fn benchmark_fixtures_render_their_expected_output() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/conformance/golden-liquid/benchmark_fixtures");
    let Ok(entries) = std::fs::read_dir(&root) else {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "fixtures missing under CI=true"
        );
        eprintln!("SKIPPED: {} is missing", root.display());
        return;
    };
    let now = chrono::DateTime::parse_from_rfc3339("2025-06-01T12:00:00Z")
        .expect("time")
        .with_timezone(&chrono::Utc);
    let mut checked = 0;
    for dir in entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
        let read = |p: PathBuf| std::fs::read_to_string(&p).expect("readable");
        let data: serde_json::Value =
            serde_json::from_str(&read(dir.join("data.json"))).expect("json");
        let mut partials = HashMap::new();
        for entry in std::fs::read_dir(dir.join("templates"))
            .expect("templates")
            .flatten()
        {
            let file = entry.file_name().to_string_lossy().into_owned();
            let text = read(entry.path());
            partials.insert(file.trim_end_matches(".liquid").to_string(), text.clone());
            partials.insert(file, text);
        }
        let template = Template::parse(&partials["index"]).expect("parses");
        let ctx = Context::new()
            .with_globals(&data)
            .with_partials(Arc::new(partials.clone()))
            .with_now(now);
        let out = template.render(&ctx).expect("renders");
        let expected = read(dir.join("expected_result.txt"));
        // The expected files end with one newline more than their templates produce (an editor's
        // final newline), so trailing newlines are not compared.
        let Outcome::Rendered(got) = out else {
            panic!("{}: aborted", dir.display())
        };
        if got.trim_end_matches('\n') != expected.trim_end_matches('\n') {
            std::fs::write(std::env::temp_dir().join("fixture-got.txt"), &got).ok();
            let line = got.lines().zip(expected.lines()).position(|(a, b)| a != b);
            panic!(
                "{}: output differs at line {:?}:\n got: {:?}\nwant: {:?}",
                dir.display(),
                line.map(|l| l + 1),
                line.and_then(|l| got.lines().nth(l)),
                line.and_then(|l| expected.lines().nth(l))
            );
        }
        checked += 1;
    }
    assert!(
        checked >= 5,
        "expected the five fixtures, checked {checked}"
    );
}
