//! The embedded store's side of `mailkeep store copy` (see `crate::copy`): secrets read and
//! written as stored, mailboxes made with a given id, and per-message modseqs and save dates
//! set after an import.

use rusqlite::{Connection, OptionalExtension, params};

use super::accounts;
use super::writer::WriteCtx;
use crate::{Mailbox, MailboxId, MessageState, Result, StoreError, StoredAppPassword, UserId};

fn user_id(conn: &Connection, name: &str) -> Result<i64> {
    accounts::get_user(conn, name)?
        .map(|u| u.id)
        .ok_or(StoreError::NoSuchUser)
}

pub(super) fn server_secrets(conn: &Connection) -> Result<Vec<(String, Vec<u8>)>> {
    let mut st = conn.prepare_cached("SELECT name, value FROM server_secrets ORDER BY name")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn set_server_secret(conn: &Connection, name: &str, value: &[u8]) -> Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO server_secrets(name, value) VALUES (?1, ?2)")?
        .execute(params![name, value])?;
    Ok(())
}

pub(super) fn recovery_code_hashes(conn: &Connection, name: &str) -> Result<Vec<Vec<u8>>> {
    let id = user_id(conn, name)?;
    let mut st =
        conn.prepare_cached("SELECT hash FROM recovery_codes WHERE user_id = ?1 ORDER BY hash")?;
    let rows = st.query_map([id], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn app_password_hashes(conn: &Connection, name: &str) -> Result<Vec<StoredAppPassword>> {
    let id = user_id(conn, name)?;
    let mut st = conn.prepare_cached(
        "SELECT label, hash, created, last_used FROM app_passwords WHERE user_id = ?1 ORDER BY id",
    )?;
    let rows = st.query_map([id], |r| {
        Ok(StoredAppPassword {
            label: r.get(0)?,
            hash: r.get(1)?,
            created: r.get(2)?,
            last_used: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn restore_app_password(
    conn: &Connection,
    name: &str,
    app: &StoredAppPassword,
) -> Result<()> {
    let id = user_id(conn, name)?;
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO app_passwords(user_id, label, hash, created, last_used)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![id, app.label, app.hash, app.created, app.last_used])?;
    if n == 0 {
        return Err(StoreError::AlreadyExists);
    }
    Ok(())
}

/// See `MailStore::restore_mailbox`.
pub(super) fn restore_mailbox(
    ctx: &mut WriteCtx<'_>,
    user: UserId,
    want: &Mailbox,
) -> Result<Mailbox> {
    if want.uidvalidity == 0 {
        return Err(StoreError::Cannot("UIDVALIDITY 0 is not valid".into()));
    }
    let conn = ctx.conn;
    let exists: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM users WHERE id = ?1")?
        .query_row([user], |r| r.get(0))
        .optional()?;
    if exists.is_none() {
        return Err(StoreError::NoSuchUser);
    }
    let name = accounts::normalize_name(&want.name);
    if name.is_empty() {
        return Err(StoreError::Cannot("empty mailbox name".into()));
    }
    if let Some(old) = accounts::get_mailbox(conn, user, name)? {
        if old.uidnext != 1 {
            return Err(StoreError::AlreadyExists);
        }
        // Never held a message: nothing refers to it but its row.
        conn.prepare_cached("DELETE FROM mailboxes WHERE id = ?1")?
            .execute([old.id])?;
        ctx.notify.push((old.id, old.highest_modseq + 1));
    }
    let taken: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM mailboxes WHERE id = ?1")?
        .query_row([want.id], |r| r.get(0))
        .optional()?;
    // AUTOINCREMENT: later mailboxes get ids above the largest inserted, given or not.
    let id = if taken.is_none() && want.id > 0 {
        conn.prepare_cached(
            "INSERT INTO mailboxes(id, user_id, name, uidvalidity, uidnext, highest_modseq,
                                   special_use)
             VALUES (?1, ?2, ?3, ?4, 1, 1, ?5)",
        )?
        .execute(params![
            want.id,
            user,
            name,
            want.uidvalidity,
            want.special_use
        ])?;
        want.id
    } else {
        conn.prepare_cached(
            "INSERT INTO mailboxes(user_id, name, uidvalidity, uidnext, highest_modseq,
                                   special_use)
             VALUES (?1, ?2, ?3, 1, 1, ?4)",
        )?
        .execute(params![user, name, want.uidvalidity, want.special_use])?;
        conn.last_insert_rowid()
    };
    // Mailboxes made later get a UIDVALIDITY above this one (see `next_uidvalidity`).
    conn.prepare_cached(
        "INSERT INTO meta(key, value) VALUES ('uidvalidity', ?1)
         ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)",
    )?
    .execute([want.uidvalidity])?;
    accounts::get_mailbox(conn, user, name)?
        .filter(|m| m.id == id)
        .ok_or_else(|| StoreError::Internal("restored mailbox vanished".into()))
}

/// See `MailStore::restore_message_state`.
pub(super) fn restore_message_state(
    ctx: &mut WriteCtx<'_>,
    mailbox: MailboxId,
    uidnext: u32,
    highest_modseq: u64,
    messages: &[MessageState],
) -> Result<()> {
    let conn = ctx.conn;
    let current: Option<(i64, i64)> = conn
        .prepare_cached("SELECT uidnext, highest_modseq FROM mailboxes WHERE id = ?1")?
        .query_row([mailbox], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((cur_uidnext, cur_modseq)) = current else {
        return Err(StoreError::NoSuchMailbox);
    };
    let mut top = i64::try_from(highest_modseq).unwrap_or(i64::MAX);
    {
        let mut modseq = conn.prepare_cached(
            "UPDATE messages SET modseq = ?3, saved = ?4 WHERE mailbox_id = ?1 AND uid = ?2",
        )?;
        for m in messages {
            let ms = i64::try_from(m.modseq).unwrap_or(i64::MAX).max(1);
            top = top.max(ms);
            if modseq.execute(params![mailbox, m.uid, ms, m.save_date])? == 0 {
                return Err(StoreError::NoSuchMailbox);
            }
        }
    }
    let uidnext = i64::from(uidnext).max(cur_uidnext);
    let top = top.max(cur_modseq);
    conn.prepare_cached(
        "UPDATE mailboxes SET uidnext = ?2, highest_modseq = ?3, recent_boundary = ?2
         WHERE id = ?1",
    )?
    .execute(params![mailbox, uidnext, top])?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO tombstone_horizon(mailbox_id, pruned_modseq) VALUES (?1, ?2)",
    )?
    .execute(params![mailbox, top])?;
    ctx.notify.push((mailbox, top as u64));
    Ok(())
}
