//! `leadwire users import FILE.csv`: Braze's CSV import format. The header row names the columns:
//! `external_id` (required) and attribute columns, standard (`first_name`, `email`, …) or custom.
//! Cells are typed as Braze types them: integers, floats, `true`/`false`, and everything else as a
//! string; an empty cell leaves the attribute unchanged. Rows stream through in batches of 75 (one
//! `/users/track` request's worth); good rows are imported and bad ones reported with their line,
//! column and reason.
//!
//! Knows CSV and the store's API; must not know SQL or HTTP.

use std::io::Read;

use leadwire_profiles::parse_track;
use leadwire_store::{ChangeSource, Store, StoreError};
use serde_json::{Map, Value as Json};

/// Rows sent to the store together (Braze's per-request cap).
const BATCH: usize = 75;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    #[error("the CSV has no header row")]
    NoHeader,
    #[error("the header row has no 'external_id' column; Braze's CSV format needs one")]
    NoExternalId,
    #[error("CSV error at line {line}: {message}")]
    Csv { line: u64, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    /// The line in the file (the header is line 1).
    pub line: u64,
    pub column: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub rows: u64,
    pub imported: u64,
    pub rejected: Vec<RejectedRow>,
}

/// A cell as Braze types it.
pub fn typed_cell(cell: &str) -> Json {
    if let Ok(i) = cell.parse::<i64>() {
        return Json::from(i);
    }
    if cell.contains('.')
        && let Some(n) = cell
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
    {
        return Json::Number(n);
    }
    match cell {
        "true" | "TRUE" | "True" => Json::Bool(true),
        "false" | "FALSE" | "False" => Json::Bool(false),
        _ => Json::String(cell.to_string()),
    }
}

/// The quoted name at the start of an error message (`'email' must be ...`), as the column.
fn column_of(message: &str) -> Option<String> {
    let start = message.find('\'')? + 1;
    let len = message[start..].find('\'')?;
    Some(message[start..start + len].to_string())
}

/// A row of Braze's CSV format: the `/users/track` attribute object it stands for, or why it is
/// rejected.
#[derive(Debug, Clone, PartialEq)]
pub enum CsvRow {
    Object { line: u64, object: Json },
    Rejected(RejectedRow),
}

/// Reads Braze's CSV format row by row. Pure: no store, so it can be fuzzed.
pub struct CsvRows<R: Read> {
    records: csv::StringRecordsIntoIter<R>,
    headers: Vec<String>,
    id_col: usize,
}

impl<R: Read> CsvRows<R> {
    /// Reads the header row; refuses a file without one or without `external_id`.
    pub fn new(reader: R) -> Result<CsvRows<R>, ImportError> {
        let mut csv = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(reader);
        let headers: Vec<String> = csv
            .headers()
            .map_err(|e| ImportError::Csv {
                line: 1,
                message: e.to_string(),
            })?
            .iter()
            .map(str::to_string)
            .collect();
        if headers.is_empty() || headers.iter().all(String::is_empty) {
            return Err(ImportError::NoHeader);
        }
        let id_col = headers
            .iter()
            .position(|h| h == "external_id")
            .ok_or(ImportError::NoExternalId)?;
        Ok(CsvRows {
            records: csv.into_records(),
            headers,
            id_col,
        })
    }

    fn row(&self, record: &csv::StringRecord) -> CsvRow {
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != self.headers.len() {
            return CsvRow::Rejected(RejectedRow {
                line,
                column: None,
                reason: format!(
                    "has {} cells but the header has {} columns",
                    record.len(),
                    self.headers.len()
                ),
            });
        }
        let external_id = record.get(self.id_col).unwrap_or_default();
        if external_id.is_empty() {
            return CsvRow::Rejected(RejectedRow {
                line,
                column: Some("external_id".into()),
                reason: "external_id is empty".into(),
            });
        }
        let mut object = Map::new();
        object.insert("external_id".into(), Json::String(external_id.to_string()));
        for (name, cell) in self.headers.iter().zip(record.iter()) {
            if name == "external_id" || cell.is_empty() {
                continue;
            }
            object.insert(name.clone(), typed_cell(cell));
        }
        CsvRow::Object {
            line,
            object: Json::Object(object),
        }
    }
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = Result<CsvRow, ImportError>;

    fn next(&mut self) -> Option<Self::Item> {
        let record = self.records.next()?;
        Some(record.map(|r| self.row(&r)).map_err(|e| ImportError::Csv {
            line: e.position().map_or(0, |p| p.line()),
            message: e.to_string(),
        }))
    }
}

/// Imports every row of `reader`; `progress` is called with the number of rows read so far.
pub async fn import_csv(
    reader: impl Read,
    store: &Store,
    mut progress: impl FnMut(u64),
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    let mut batch: Vec<(u64, Json)> = Vec::with_capacity(BATCH);
    for row in CsvRows::new(reader)? {
        report.rows += 1;
        match row? {
            CsvRow::Rejected(rejected) => report.rejected.push(rejected),
            CsvRow::Object { line, object } => batch.push((line, object)),
        }
        if batch.len() == BATCH {
            flush(&mut batch, store, &mut report).await?;
            progress(report.rows);
        }
    }
    flush(&mut batch, store, &mut report).await?;
    progress(report.rows);
    report.rejected.sort_by_key(|r| r.line);
    Ok(report)
}

async fn flush(
    batch: &mut Vec<(u64, Json)>,
    store: &Store,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    if batch.is_empty() {
        return Ok(());
    }
    let lines: Vec<u64> = batch.iter().map(|(l, _)| *l).collect();
    let objects: Vec<Json> = batch.drain(..).map(|(_, o)| o).collect();
    let parsed = match parse_track(&serde_json::json!({"attributes": objects})) {
        Ok(p) => p,
        Err(e) => {
            for line in lines {
                report.rejected.push(RejectedRow {
                    line,
                    column: None,
                    reason: e.to_string(),
                });
            }
            return Ok(());
        }
    };
    let result = store.track(parsed, ChangeSource::Import).await?;
    report.imported += result.attributes_processed as u64;
    for e in result.errors {
        let line = lines.get(e.index).copied().unwrap_or(0);
        report.rejected.push(RejectedRow {
            line,
            column: column_of(&e.message),
            reason: e.message,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_typed_like_braze() {
        assert_eq!(typed_cell("42"), Json::from(42));
        assert_eq!(typed_cell("4.5"), serde_json::json!(4.5));
        assert_eq!(typed_cell("true"), Json::Bool(true));
        assert_eq!(typed_cell("00123"), Json::from(123));
        assert_eq!(typed_cell("Acme"), Json::String("Acme".into()));
    }

    #[tokio::test]
    async fn good_rows_import_and_bad_rows_are_reported() {
        let dir = tempfile::tempdir().expect("dir");
        let store = leadwire_store::testing::test_store(dir.path()).expect("store");
        let csv = "external_id,first_name,email,lead_score,company\n\
                   u1,José,jose@example.com,51,Acme\n\
                   ,Nobody,n@example.com,1,X\n\
                   u3,Ann,not-an-email,10,Y\n\
                   u4,Kim,kim@example.com,,\n\
                   u5,too,many,cells,here,extra\n";
        let mut seen = 0;
        let report = import_csv(csv.as_bytes(), &store, |n| seen = n)
            .await
            .expect("imports");
        assert_eq!((report.rows, report.imported, seen), (5, 2, 5));
        let rejected: Vec<(u64, Option<&str>)> = report
            .rejected
            .iter()
            .map(|r| (r.line, r.column.as_deref()))
            .collect();
        assert_eq!(
            rejected,
            [(3, Some("external_id")), (4, Some("email")), (6, None)]
        );
        let found = store
            .find_profiles(vec![leadwire_profiles::Identifier::ExternalId("u4".into())])
            .await
            .expect("find");
        assert!(
            found.found[0].custom.get("lead_score").is_none(),
            "an empty cell leaves the attribute unset"
        );
    }
}
