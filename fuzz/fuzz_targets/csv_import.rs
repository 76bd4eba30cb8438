//! Braze's CSV import: every row becomes an attribute object or a rejected row, never a panic;
//! the objects then go through `/users/track`'s parser as the importer sends them.
#![no_main]

use leadwire_import::{CsvRow, CsvRows};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(rows) = CsvRows::new(data) else { return };
    let mut objects = Vec::new();
    for row in rows {
        match row {
            Ok(CsvRow::Object { object, .. }) => objects.push(object),
            Ok(CsvRow::Rejected(_)) => {}
            Err(_) => break,
        }
    }
    for batch in objects.chunks(75) {
        let _ = leadwire_profiles::parse_track(&serde_json::json!({"attributes": batch}));
    }
});
