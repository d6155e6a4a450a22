//! SCRAM-SHA-256 keys per account, in a table of their own beside `users` (created at every
//! open, idempotent), and SCRAM-SHA-1 keys likewise in `scram_sha1_keys` (kept only where the
//! setting asks for SCRAM-SHA-1). Triggers keep them honest: a new password hash (or a deleted
//! account) drops the keys, so an old password can never still log in through SCRAM.

use rusqlite::{Connection, OptionalExtension, params};

use super::accounts::get_user;
use crate::{Result, ScramKeys, StoreError};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS scram_keys(
    user_id INTEGER PRIMARY KEY,
    iterations INTEGER NOT NULL,
    salt BLOB NOT NULL,
    stored_key BLOB NOT NULL,
    server_key BLOB NOT NULL
);
-- Random secrets of this installation, by name (see `server_secret`).
CREATE TABLE IF NOT EXISTS server_secrets(
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS scram_keys_password_changed
AFTER UPDATE OF password_hash ON users
BEGIN
    DELETE FROM scram_keys WHERE user_id = new.id;
END;
CREATE TRIGGER IF NOT EXISTS scram_keys_user_deleted
AFTER DELETE ON users
BEGIN
    DELETE FROM scram_keys WHERE user_id = old.id;
END;
CREATE TABLE IF NOT EXISTS scram_sha1_keys(
    user_id INTEGER PRIMARY KEY,
    iterations INTEGER NOT NULL,
    salt BLOB NOT NULL,
    stored_key BLOB NOT NULL,
    server_key BLOB NOT NULL
);
CREATE TRIGGER IF NOT EXISTS scram_sha1_keys_password_changed
AFTER UPDATE OF password_hash ON users
BEGIN
    DELETE FROM scram_sha1_keys WHERE user_id = new.id;
END;
CREATE TRIGGER IF NOT EXISTS scram_sha1_keys_user_deleted
AFTER DELETE ON users
BEGIN
    DELETE FROM scram_sha1_keys WHERE user_id = old.id;
END;
";

/// The table of one kind of SCRAM keys: `scram_keys` (SHA-256) or `scram_sha1_keys`.
pub(super) fn keys_table(sha1: bool) -> &'static str {
    if sha1 {
        "scram_sha1_keys"
    } else {
        "scram_keys"
    }
}

pub(super) fn get_scram_keys(
    conn: &Connection,
    sha1: bool,
    name: &str,
) -> Result<Option<ScramKeys>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT k.iterations, k.salt, k.stored_key, k.server_key
         FROM {} k JOIN users u ON u.id = k.user_id WHERE u.name = ?1",
        keys_table(sha1)
    ))?;
    Ok(st
        .query_row([name], |r| {
            Ok(ScramKeys {
                iterations: r.get(0)?,
                salt: r.get(1)?,
                stored_key: r.get(2)?,
                server_key: r.get(3)?,
            })
        })
        .optional()?)
}

pub(super) fn set_scram_keys(
    conn: &Connection,
    sha1: bool,
    name: &str,
    keys: Option<&ScramKeys>,
) -> Result<()> {
    let Some(user) = get_user(conn, name)? else {
        return Err(StoreError::NoSuchUser);
    };
    match keys {
        Some(k) => {
            conn.prepare_cached(&format!(
                "INSERT OR REPLACE INTO {}(user_id, iterations, salt, stored_key, server_key)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                keys_table(sha1)
            ))?
            .execute(params![
                user.id,
                k.iterations,
                k.salt,
                k.stored_key,
                k.server_key
            ])?;
        }
        None => {
            conn.prepare_cached(&format!(
                "DELETE FROM {} WHERE user_id = ?1",
                keys_table(sha1)
            ))?
            .execute([user.id])?;
        }
    }
    Ok(())
}

pub(super) fn get_server_secret(conn: &Connection, name: &str) -> Result<Option<Vec<u8>>> {
    let mut st = conn.prepare_cached("SELECT value FROM server_secrets WHERE name = ?1")?;
    Ok(st.query_row([name], |r| r.get(0)).optional()?)
}

/// The secret `name`, made now (from SQLite's random source) if it does not exist yet.
pub(super) fn server_secret(conn: &Connection, name: &str) -> Result<Vec<u8>> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO server_secrets(name, value) VALUES (?1, randomblob(32))",
    )?
    .execute([name])?;
    get_server_secret(conn, name)?
        .ok_or_else(|| StoreError::Internal("server secret vanished".into()))
}
