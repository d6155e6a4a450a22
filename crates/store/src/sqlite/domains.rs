//! Local domains and aliases (LMTP recipients): synchronous SQL run on a read connection or
//! inside a write job. Names are stored lower-cased; the trait's `resolve_recipient` decides
//! what an address means.

use rusqlite::{Connection, OptionalExtension};

use super::accounts::get_user;
use crate::{Result, StoreError};

/// Created at every open (idempotent), beside the main schema.
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS domains(
    name TEXT PRIMARY KEY
) WITHOUT ROWID;
-- address: `local@domain` or a catch-all `@domain`; target: an account name.
CREATE TABLE IF NOT EXISTS aliases(
    address TEXT PRIMARY KEY,
    target TEXT NOT NULL
) WITHOUT ROWID;
";

pub(super) fn add_domain(conn: &Connection, name: &str) -> Result<()> {
    let n = conn
        .prepare_cached("INSERT OR IGNORE INTO domains(name) VALUES (?1)")?
        .execute([name])?;
    if n == 0 {
        return Err(StoreError::AlreadyExists);
    }
    Ok(())
}

pub(super) fn delete_domain(conn: &Connection, name: &str) -> Result<()> {
    let n = conn
        .prepare_cached("DELETE FROM domains WHERE name = ?1")?
        .execute([name])?;
    if n == 0 {
        return Err(StoreError::Cannot(format!("no such domain {name}")));
    }
    Ok(())
}

pub(super) fn list_domains(conn: &Connection) -> Result<Vec<String>> {
    let mut st = conn.prepare_cached("SELECT name FROM domains ORDER BY name")?;
    let rows = st.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn is_local_domain(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM domains WHERE name = ?1")?
        .exists([name])?)
}

pub(super) fn add_alias(conn: &Connection, address: &str, target: &str) -> Result<()> {
    if get_user(conn, target)?.is_none() {
        return Err(StoreError::NoSuchUser);
    }
    let n = conn
        .prepare_cached("INSERT OR IGNORE INTO aliases(address, target) VALUES (?1, ?2)")?
        .execute([address, target])?;
    if n == 0 {
        return Err(StoreError::AlreadyExists);
    }
    Ok(())
}

pub(super) fn delete_alias(conn: &Connection, address: &str) -> Result<()> {
    let n = conn
        .prepare_cached("DELETE FROM aliases WHERE address = ?1")?
        .execute([address])?;
    if n == 0 {
        return Err(StoreError::Cannot(format!("no such alias {address}")));
    }
    Ok(())
}

pub(super) fn list_aliases(conn: &Connection) -> Result<Vec<(String, String)>> {
    let mut st = conn.prepare_cached("SELECT address, target FROM aliases ORDER BY address")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn alias_target(conn: &Connection, address: &str) -> Result<Option<String>> {
    let mut st = conn.prepare_cached("SELECT target FROM aliases WHERE address = ?1")?;
    Ok(st.query_row([address], |r| r.get(0)).optional()?)
}
