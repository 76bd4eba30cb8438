//! Versioned schema migrations, applied in order at start-up, each in its own transaction.

use rusqlite::Connection;

use crate::StoreError;

/// `(version, SQL)`. Never edit a released migration: add a new one.
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    r#"
    CREATE TABLE profiles (
        id INTEGER PRIMARY KEY,
        braze_id TEXT NOT NULL UNIQUE,
        external_id TEXT UNIQUE,
        email TEXT,
        phone TEXT,
        data TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX profiles_email ON profiles(email) WHERE email IS NOT NULL;
    CREATE INDEX profiles_phone ON profiles(phone) WHERE phone IS NOT NULL;
    CREATE TABLE aliases (
        alias_label TEXT NOT NULL,
        alias_name TEXT NOT NULL,
        profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
        PRIMARY KEY (alias_label, alias_name)
    );
    CREATE INDEX aliases_profile ON aliases(profile_id);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        time TEXT NOT NULL,
        properties TEXT NOT NULL
    );
    CREATE INDEX events_profile ON events(profile_id, name);
    CREATE TABLE purchases (
        id INTEGER PRIMARY KEY,
        profile_id INTEGER NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
        product_id TEXT NOT NULL,
        currency TEXT NOT NULL,
        price REAL NOT NULL,
        quantity INTEGER NOT NULL,
        time TEXT NOT NULL,
        properties TEXT NOT NULL
    );
    CREATE INDEX purchases_profile ON purchases(profile_id);
    CREATE TABLE triggers (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        braze_id TEXT NOT NULL,
        external_id TEXT,
        source TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        key_hash TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        permissions TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    "#,
)];

pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    crate::shared::apply_migrations(conn, "schema_migrations", MIGRATIONS)
}
