//! Braze Liquid: any template is parsed and rendered (with the render limits) or refused,
//! never a panic.
#![no_main]

use leadwire_liquid::{Context, Template};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(template) = Template::parse(source) {
        let _ = template.render(&Context::new().with_max_output_bytes(1 << 16));
    }
});
