//! `leadwire apply` files: any text is loaded or refused with errors, never a panic, with the
//! schema checks of `apply --check` on.
#![no_main]

use leadwire_config::{Bundle, Validation, load_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut bundle = Bundle::default();
    let env = |name: &str| Some(format!("env-{name}"));
    let _ = load_text(
        std::path::Path::new("fuzz.yaml"),
        text,
        &env,
        &mut bundle,
        Validation::TypesAndSchemas,
    );
});
