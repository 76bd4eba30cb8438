//! Canvas specs over the API (JSON): parsed and their step graph checked, never a panic.
#![no_main]

use leadwire_canvas::CanvasSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(spec) = serde_json::from_slice::<CanvasSpec>(data) {
        let _ = spec.compile();
    }
});
