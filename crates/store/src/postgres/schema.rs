//! The PostgreSQL schema: the same tables as SQLite's (BIGINT for every integer, a boolean for
//! `archived`, trigger positions from transaction ids), one ledger (`leadwire_schema`).

use chrono::Utc;
use postgres::Client;

use crate::StoreError;

/// `(version, SQL)`. Never edit a released migration: add a new one.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"

    -- profiles and what hangs off them
    CREATE TABLE profiles (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
        profile_id BIGINT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
        PRIMARY KEY (alias_label, alias_name)
    );
    CREATE INDEX aliases_profile ON aliases(profile_id);
    CREATE TABLE events (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        profile_id BIGINT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        time TEXT NOT NULL,
        properties TEXT NOT NULL
    );
    CREATE INDEX events_profile ON events(profile_id, name);
    CREATE TABLE purchases (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        profile_id BIGINT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
        product_id TEXT NOT NULL,
        currency TEXT NOT NULL,
        price DOUBLE PRECISION NOT NULL,
        quantity BIGINT NOT NULL,
        time TEXT NOT NULL,
        properties TEXT NOT NULL
    );
    CREATE INDEX purchases_profile ON purchases(profile_id);
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        key_hash TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        permissions TEXT NOT NULL,
        created_at TEXT NOT NULL
    );

    -- the trigger feed and its consumers
    -- seq: (inserting transaction's id << 24) + index within it; see feed.rs
    CREATE TABLE triggers (
        seq BIGINT PRIMARY KEY,
        braze_id TEXT NOT NULL,
        external_id TEXT,
        source TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE feed_positions (consumer TEXT PRIMARY KEY, seq BIGINT NOT NULL);

    -- webhooks
    CREATE TABLE webhook_templates (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        definition TEXT NOT NULL,
        archived BOOLEAN NOT NULL DEFAULT false,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE UNIQUE INDEX webhook_templates_name ON webhook_templates(name) WHERE NOT archived;
    CREATE TABLE webhook_credentials (
        name TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('basic', 'token')),
        username TEXT,
        secret TEXT,
        headers TEXT NOT NULL DEFAULT '[]',
        allowed_domain TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE webhook_jobs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        -- 96 random bits, never looked up by: no index (a random unique index cost every
        -- enqueue a random page and a statement journal)
        delivery_id TEXT NOT NULL,
        template_id TEXT NOT NULL,
        user_identifier TEXT NOT NULL,
        user_id TEXT NOT NULL,
        campaign_id TEXT,
        step_id TEXT,
        properties TEXT NOT NULL DEFAULT '{}',
        state TEXT NOT NULL DEFAULT 'queued'
            CHECK (state IN ('queued', 'in_flight', 'delivered', 'aborted', 'failed')),
        attempts BIGINT NOT NULL DEFAULT 0,
        previous_delay_ms BIGINT,
        claims BIGINT NOT NULL DEFAULT 0,
        next_attempt_at BIGINT NOT NULL,
        lease_until BIGINT,
        due_at BIGINT,
        last_status BIGINT,
        last_error TEXT,
        enqueued_at BIGINT NOT NULL,
        finished_at BIGINT
    );
    CREATE INDEX webhook_jobs_due ON webhook_jobs(due_at) WHERE due_at IS NOT NULL;
    CREATE INDEX webhook_jobs_campaign ON webhook_jobs(campaign_id, state);
    CREATE TABLE webhook_activity (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at BIGINT NOT NULL,
        kind TEXT NOT NULL,
        campaign_id TEXT,
        step_id TEXT,
        user_id TEXT NOT NULL,
        delivery_id TEXT,
        template TEXT,
        attempt BIGINT,
        request TEXT,
        response TEXT,
        message TEXT NOT NULL
    );
    CREATE INDEX webhook_activity_at ON webhook_activity(at);
    CREATE INDEX webhook_activity_campaign ON webhook_activity(campaign_id, id);
    CREATE INDEX webhook_activity_user ON webhook_activity(user_id, id);

    -- campaigns
    CREATE TABLE campaigns (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        spec TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE campaign_sends (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        campaign_id TEXT NOT NULL,
        braze_id TEXT NOT NULL,
        job_id BIGINT NOT NULL,
        dispatch_id TEXT,
        trigger_seq BIGINT,
        sent_at BIGINT NOT NULL
    );
    CREATE INDEX campaign_sends_user ON campaign_sends(campaign_id, braze_id, sent_at);
    -- the delivery-speed limit's last slot, so a restart keeps the pace
    CREATE TABLE campaign_pace (campaign_id TEXT PRIMARY KEY, state TEXT NOT NULL);

    -- Canvases
    CREATE TABLE canvases (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        spec TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE canvas_journeys (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        canvas_id TEXT NOT NULL,
        braze_id TEXT NOT NULL,
        state TEXT NOT NULL,
        status TEXT NOT NULL,
        wake_at BIGINT,
        exit_reason TEXT,
        entered_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX canvas_journeys_user ON canvas_journeys(canvas_id, braze_id, status);
    CREATE INDEX canvas_journeys_due ON canvas_journeys(wake_at) WHERE status = 'active' AND wake_at IS NOT NULL;
    CREATE TABLE canvas_entries (
        canvas_id TEXT NOT NULL,
        braze_id TEXT NOT NULL,
        last_entered_at BIGINT NOT NULL,
        entries BIGINT NOT NULL,
        PRIMARY KEY (canvas_id, braze_id)
    );
    CREATE TABLE canvas_hourly_entries (
        canvas_id TEXT NOT NULL,
        hour BIGINT NOT NULL,
        entries BIGINT NOT NULL,
        PRIMARY KEY (canvas_id, hour)
    );
    CREATE TABLE canvas_step_counts (
        canvas_id TEXT NOT NULL,
        step_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        count BIGINT NOT NULL,
        PRIMARY KEY (canvas_id, step_id, kind)
    );
    "#,
    ),
    (
        2,
        // The W3C traceparent of the request that caused a trigger or a job, so a send's spans
        // join the trace of the /users/track call behind it (NULL when traces are not exported).
        r#"
    ALTER TABLE triggers ADD COLUMN IF NOT EXISTS trace_context TEXT;
    ALTER TABLE webhook_jobs ADD COLUMN IF NOT EXISTS trace_context TEXT;
    "#,
    ),
    (
        3,
        r#"
    -- the web dashboard's sign-in: users (argon2 password hashes) and their sessions (the
    -- token's SHA-256 only)
    CREATE TABLE dashboard_users (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE dashboard_sessions (
        token_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES dashboard_users(id) ON DELETE CASCADE,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
    );
    CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions(expires_at);
    "#,
    ),
];

/// Creates the schema if needed and applies the migrations not yet in the ledger, under an
/// advisory lock, so nodes starting together apply each migration once.
pub(super) fn migrate(client: &mut Client, schema: &str) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    // One lock for every node of every schema: migrations are rare and quick.
    tx.execute("SELECT pg_advisory_xact_lock(7206254411)", &[])?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        super::quote_ident(schema)
    ))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS leadwire_schema (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
    )?;
    for (version, sql) in MIGRATIONS {
        let applied: bool = tx
            .query_one(
                "SELECT EXISTS(SELECT 1 FROM leadwire_schema WHERE version = $1)",
                &[version],
            )?
            .get(0);
        if !applied {
            tx.batch_execute(sql)?;
            tx.execute(
                "INSERT INTO leadwire_schema (version, applied_at) VALUES ($1, $2)",
                &[version, &Utc::now().to_rfc3339()],
            )?;
            tracing::info!(version, "applied migration");
        }
    }
    tx.commit()?;
    Ok(())
}
