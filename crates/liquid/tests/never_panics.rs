//! Property: parsing and rendering arbitrary input never panics; it succeeds or returns an error.

use leadwire_liquid::{Context, Template};
use proptest::prelude::*;

/// Liquid-shaped fragments, so generated input reaches deep into the parser, not just text.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{{".to_string()),
        Just("}}".to_string()),
        Just("{%".to_string()),
        Just("%}".to_string()),
        Just("{%-".to_string()),
        Just("-%}".to_string()),
        Just("${first_name}".to_string()),
        Just("custom_attribute.${a b}".to_string()),
        prop::sample::select(vec![
            "if",
            "elsif",
            "else",
            "endif",
            "for",
            "endfor",
            "in",
            "case",
            "when",
            "endcase",
            "assign",
            "capture",
            "endcapture",
            "raw",
            "endraw",
            "comment",
            "endcomment",
            "liquid",
            "echo",
            "cycle",
            "tablerow",
            "endtablerow",
            "abort_message",
            "connected_content",
            "include",
            "render",
            "break",
            "continue",
            "unless",
            "endunless",
            "doc",
            "enddoc",
            "#",
            "increment",
        ])
        .prop_map(str::to_string),
        prop::sample::select(vec![
            "|",
            ":",
            ",",
            ".",
            "..",
            "(",
            ")",
            "[",
            "]",
            "=",
            "==",
            "<",
            ">",
            "contains",
            "and",
            "or",
            "'s'",
            "\"t\"",
            "-1",
            "2.5",
            "x",
            "a.b",
            "nil",
            "empty",
            "blank",
            "upcase",
            "plus: 1",
            "slice: -2, 9",
            "split: ''",
            "divided_by: 0",
            "limit: 2",
            "offset: continue",
            "reversed",
            "\n",
            " ",
            "김",
            "José",
        ])
        .prop_map(str::to_string),
        "[ -~]{0,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn parse_then_render_never_panics(parts in prop::collection::vec(fragment(), 0..24)) {
        let source = parts.join("");
        if let Ok(template) = Template::parse(&source) {
            let data = serde_json::json!({"x": [1, 2, 3], "a": {"b": "c"}});
            let _ = template.render(&Context::new().with_globals(&data).with_max_output_bytes(1 << 20));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(source in "\\PC{0,64}") {
        if let Ok(template) = Template::parse(&source) {
            let _ = template.render(&Context::new());
        }
    }
}
