//! Stores for tests, on the backend the environment names, so one suite runs on both.
//!
//! With `LEADWIRE_TEST_DATABASE_URL` set (a `postgres://…` URL), every store is a fresh schema
//! on that server; without it, a fresh SQLite file. `.ci/run` runs the suite both ways.

use std::path::Path;

use crate::{DatabaseConfig, PostgresConfig, SqliteConfig, Store, StoreError};

/// The environment variable naming the PostgreSQL server tests use.
pub const TEST_DATABASE_URL: &str = "LEADWIRE_TEST_DATABASE_URL";

/// The database config for a fresh test store: a new file under `dir`, or a new schema on the
/// server `LEADWIRE_TEST_DATABASE_URL` names.
pub fn test_database(dir: &Path) -> DatabaseConfig {
    match std::env::var(TEST_DATABASE_URL) {
        Ok(url) if !url.is_empty() => {
            let schema = format!(
                "test_{}_{:012x}",
                std::process::id(),
                rand::random::<u64>() >> 16
            );
            DatabaseConfig::Postgres(PostgresConfig::new(url).with_schema(schema))
        }
        _ => DatabaseConfig::Sqlite(SqliteConfig::new(dir.join("leadwire.db"))),
    }
}

/// A fresh store for a test (see [`test_database`]).
pub fn test_store(dir: &Path) -> Result<Store, StoreError> {
    Store::open(test_database(dir))
}

/// Whether tests run on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var(TEST_DATABASE_URL).is_ok_and(|u| !u.is_empty())
}
