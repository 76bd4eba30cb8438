//! Fuzzes the parser and renderer: any input must parse or fail cleanly, and render or fail cleanly.
//! Run: `cargo +nightly fuzz run parse_render` from crates/liquid (needs cargo-fuzz).
#![no_main]

use leadwire_liquid::{Context, Template};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else { return };
    if let Ok(template) = Template::parse(source) {
        let globals = serde_json::json!({"x": [1, 2, 3], "a": {"b": "c"}, "s": "José"});
        let context = Context::new().with_globals(&globals).with_max_output_bytes(1 << 20);
        let _ = template.render(&context);
    }
});
