//! Schema migrations: numbered SQL files applied in order, each recorded in
//! `mailkeep_schema`, all pending ones in one transaction under an advisory lock (so nodes
//! starting together apply each once). Run at open and by `mailkeep db migrate`.

use tokio_postgres::Client;

use crate::{Result, StoreError};

/// (version, SQL), ascending. Never edit an applied file: add the next one.
pub const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/0001_init.sql")),
    (2, include_str!("migrations/0002_objects.sql")),
    (3, include_str!("migrations/0003_scram_sha1.sql")),
    (4, include_str!("migrations/0004_urlauth.sql")),
];

/// The version this build writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// An arbitrary key for `pg_advisory_xact_lock`: "mailkeep" in ASCII.
const LOCK_KEY: i64 = 0x6d61_696c_6b65_6570;

/// Applies the migrations not yet applied; returns the versions applied now. Refuses a
/// database whose schema is newer than this build knows.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS mailkeep_schema(
            version INT PRIMARY KEY,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let current: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM mailkeep_schema", &[])
        .await?
        .get(0);
    if current > SCHEMA_VERSION {
        return Err(StoreError::Cannot(format!(
            "the database has schema version {current}, newer than this mailkeep knows \
             ({SCHEMA_VERSION}): it was written by a newer release; nothing was changed"
        )));
    }
    let mut applied = Vec::new();
    for &(version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql).await.map_err(|e| {
            StoreError::Internal(format!("schema migration {version}: {}", describe(&e)))
        })?;
        tx.execute(
            "INSERT INTO mailkeep_schema(version) VALUES ($1)",
            &[&version],
        )
        .await?;
        applied.push(version);
    }
    tx.commit().await?;
    if !applied.is_empty() {
        tracing::info!(
            from = current,
            to = SCHEMA_VERSION,
            "PostgreSQL schema migrated"
        );
    }
    Ok(applied)
}

/// The database's message for an error, not just "db error".
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}
