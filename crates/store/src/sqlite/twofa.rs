//! TOTP secrets, recovery codes and app passwords per account, in tables of their own created
//! at every open (idempotent); a deleted account takes its rows along (triggers). Only keyed
//! hashes of recovery codes and app passwords are stored.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::accounts::get_user;
use crate::{AppPassword, Result, StoreError, TwoFactor};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS totp_secrets(
    user_id INTEGER PRIMARY KEY,
    secret BLOB NOT NULL,
    enabled INTEGER NOT NULL,
    last_step INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS recovery_codes(
    user_id INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY(user_id, hash)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS app_passwords(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL,
    label TEXT NOT NULL,
    hash BLOB NOT NULL,
    created INTEGER NOT NULL,
    last_used INTEGER,
    UNIQUE(user_id, label)
);
CREATE INDEX IF NOT EXISTS app_passwords_hash ON app_passwords(user_id, hash);
CREATE TRIGGER IF NOT EXISTS twofa_user_deleted
AFTER DELETE ON users
BEGIN
    DELETE FROM totp_secrets WHERE user_id = old.id;
    DELETE FROM recovery_codes WHERE user_id = old.id;
    DELETE FROM app_passwords WHERE user_id = old.id;
END;
";

fn user_id(conn: &Connection, name: &str) -> Result<i64> {
    get_user(conn, name)?
        .map(|u| u.id)
        .ok_or(StoreError::NoSuchUser)
}

pub(super) fn get_two_factor(conn: &Connection, name: &str) -> Result<Option<TwoFactor>> {
    let mut st = conn.prepare_cached(
        "SELECT t.secret, t.enabled, t.last_step
         FROM totp_secrets t JOIN users u ON u.id = t.user_id WHERE u.name = ?1",
    )?;
    Ok(st
        .query_row([name], |r| {
            Ok(TwoFactor {
                secret: r.get(0)?,
                enabled: r.get(1)?,
                last_step: r.get(2)?,
            })
        })
        .optional()?)
}

pub(super) fn set_two_factor(
    conn: &Connection,
    name: &str,
    tf: Option<&TwoFactor>,
    recovery: &[Vec<u8>],
) -> Result<()> {
    let id = user_id(conn, name)?;
    conn.prepare_cached("DELETE FROM recovery_codes WHERE user_id = ?1")?
        .execute([id])?;
    match tf {
        Some(t) => {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO totp_secrets(user_id, secret, enabled, last_step)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![id, t.secret, t.enabled, t.last_step])?;
            let mut st = conn.prepare_cached(
                "INSERT OR IGNORE INTO recovery_codes(user_id, hash) VALUES (?1, ?2)",
            )?;
            for h in recovery {
                st.execute(params![id, h])?;
            }
        }
        None => {
            conn.prepare_cached("DELETE FROM totp_secrets WHERE user_id = ?1")?
                .execute([id])?;
        }
    }
    Ok(())
}

pub(super) fn use_totp_step(conn: &Connection, name: &str, step: i64) -> Result<bool> {
    let id = user_id(conn, name)?;
    let n = conn
        .prepare_cached(
            "UPDATE totp_secrets SET last_step = ?2 WHERE user_id = ?1 AND last_step < ?2",
        )?
        .execute(params![id, step])?;
    Ok(n == 1)
}

pub(super) fn use_recovery_code(conn: &Connection, name: &str, hash: &[u8]) -> Result<bool> {
    let id = user_id(conn, name)?;
    let n = conn
        .prepare_cached("DELETE FROM recovery_codes WHERE user_id = ?1 AND hash = ?2")?
        .execute(params![id, hash])?;
    Ok(n == 1)
}

pub(super) fn recovery_codes_left(conn: &Connection, name: &str) -> Result<u32> {
    let mut st = conn.prepare_cached(
        "SELECT count(*) FROM recovery_codes r JOIN users u ON u.id = r.user_id WHERE u.name = ?1",
    )?;
    Ok(st.query_row([name], |r| r.get(0))?)
}

fn app_password_from_row(r: &Row<'_>) -> rusqlite::Result<AppPassword> {
    Ok(AppPassword {
        id: r.get(0)?,
        label: r.get(1)?,
        created: r.get(2)?,
        last_used: r.get(3)?,
    })
}

pub(super) fn add_app_password(
    conn: &Connection,
    name: &str,
    label: &str,
    hash: &[u8],
    now: i64,
) -> Result<AppPassword> {
    let id = user_id(conn, name)?;
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO app_passwords(user_id, label, hash, created) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![id, label, hash, now])?;
    if n == 0 {
        return Err(StoreError::AlreadyExists);
    }
    Ok(AppPassword {
        id: conn.last_insert_rowid(),
        label: label.to_owned(),
        created: now,
        last_used: None,
    })
}

pub(super) fn list_app_passwords(conn: &Connection, name: &str) -> Result<Vec<AppPassword>> {
    let mut st = conn.prepare_cached(
        "SELECT a.id, a.label, a.created, a.last_used
         FROM app_passwords a JOIN users u ON u.id = a.user_id WHERE u.name = ?1 ORDER BY a.id",
    )?;
    let rows = st.query_map([name], app_password_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn revoke_app_password(conn: &Connection, name: &str, label: &str) -> Result<()> {
    let id = user_id(conn, name)?;
    let n = conn
        .prepare_cached("DELETE FROM app_passwords WHERE user_id = ?1 AND label = ?2")?
        .execute(params![id, label])?;
    if n == 0 {
        return Err(StoreError::Cannot(format!(
            "{name} has no app password labelled {label:?}"
        )));
    }
    Ok(())
}

pub(super) fn find_app_password(
    conn: &Connection,
    name: &str,
    hash: &[u8],
) -> Result<Option<AppPassword>> {
    let mut st = conn.prepare_cached(
        "SELECT a.id, a.label, a.created, a.last_used
         FROM app_passwords a JOIN users u ON u.id = a.user_id WHERE u.name = ?1 AND a.hash = ?2",
    )?;
    Ok(st
        .query_row(params![name, hash], app_password_from_row)
        .optional()?)
}

pub(super) fn app_password_exists(conn: &Connection, id: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM app_passwords WHERE id = ?1")?
        .exists([id])?)
}

pub(super) fn touch_app_password(
    conn: &Connection,
    id: i64,
    now: i64,
    min_interval: i64,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE app_passwords SET last_used = ?2
         WHERE id = ?1 AND (last_used IS NULL OR last_used <= ?2 - ?3)",
    )?
    .execute(params![id, now, min_interval])?;
    Ok(())
}
