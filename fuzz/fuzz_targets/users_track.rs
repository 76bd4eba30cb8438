//! `/users/track` bodies: any JSON is parsed into objects or refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = leadwire_profiles::parse_track(&body);
    }
});
