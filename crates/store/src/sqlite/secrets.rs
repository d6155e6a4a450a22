//! SCRAM-SHA-256 keys per account, in a table of their own beside `users` (created at every
//! open, idempotent). Triggers keep them honest: a new password hash (or a deleted account)
//! drops the keys, so an old password can never still log in through SCRAM.

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
";

pub(super) fn get_scram_keys(conn: &Connection, name: &str) -> Result<Option<ScramKeys>> {
    let mut st = conn.prepare_cached(
        "SELECT k.iterations, k.salt, k.stored_key, k.server_key
         FROM scram_keys k JOIN users u ON u.id = k.user_id WHERE u.name = ?1",
    )?;
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
    name: &str,
    keys: Option<&ScramKeys>,
) -> Result<()> {
    let Some(user) = get_user(conn, name)? else {
        return Err(StoreError::NoSuchUser);
    };
    match keys {
        Some(k) => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO scram_keys(user_id, iterations, salt, stored_key, server_key)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                user.id,
                k.iterations,
                k.salt,
                k.stored_key,
                k.server_key
            ])?;
        }
        None => {
            conn.prepare_cached("DELETE FROM scram_keys WHERE user_id = ?1")?
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
