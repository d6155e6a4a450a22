//! Users, mailboxes and subscriptions: synchronous SQL run on a read connection or inside a
//! write job.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::messages::delete_all_messages;
use super::writer::WriteCtx;
use crate::{Mailbox, MailboxId, Result, StoreError, User, UserId};

pub(super) const INBOX: &str = "INBOX";

/// Any case of `INBOX` means INBOX (RFC 9051 §5.1).
pub(super) fn normalize_name(name: &str) -> &str {
    if name.eq_ignore_ascii_case(INBOX) {
        INBOX
    } else {
        name
    }
}

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        name: r.get(1)?,
        password_hash: r.get(2)?,
    })
}

pub(super) fn get_user(conn: &Connection, name: &str) -> Result<Option<User>> {
    let mut st =
        conn.prepare_cached("SELECT id, name, password_hash FROM users WHERE name = ?1")?;
    Ok(st.query_row([name], user_from_row).optional()?)
}

pub(super) fn list_users(conn: &Connection) -> Result<Vec<User>> {
    let mut st = conn.prepare_cached("SELECT id, name, password_hash FROM users ORDER BY name")?;
    let rows = st.query_map([], user_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn user_exists(conn: &Connection, user: UserId) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM users WHERE id = ?1")?
        .exists([user])?)
}

fn require_user(conn: &Connection, user: UserId) -> Result<()> {
    if user_exists(conn, user)? {
        Ok(())
    } else {
        Err(StoreError::NoSuchUser)
    }
}

pub(super) fn create_user(ctx: &mut WriteCtx<'_>, name: &str, password_hash: &str) -> Result<User> {
    if get_user(ctx.conn, name)?.is_some() {
        return Err(StoreError::UserExists);
    }
    ctx.conn
        .prepare_cached("INSERT INTO users(name, password_hash) VALUES (?1, ?2)")?
        .execute([name, password_hash])?;
    let id = ctx.conn.last_insert_rowid();
    // Every account has an INBOX (RFC 9051 §5.1), so sessions never need to create it.
    create_mailbox(ctx.conn, id, INBOX, None)?;
    Ok(User {
        id,
        name: name.to_owned(),
        password_hash: password_hash.to_owned(),
    })
}

pub(super) fn set_password(conn: &Connection, name: &str, password_hash: &str) -> Result<()> {
    let n = conn
        .prepare_cached("UPDATE users SET password_hash = ?2 WHERE name = ?1")?
        .execute([name, password_hash])?;
    if n == 0 {
        Err(StoreError::NoSuchUser)
    } else {
        Ok(())
    }
}

pub(super) fn delete_user(ctx: &mut WriteCtx<'_>, name: &str) -> Result<()> {
    let user = get_user(ctx.conn, name)?.ok_or(StoreError::NoSuchUser)?;
    let ids: Vec<(MailboxId, i64)> = ctx
        .conn
        .prepare_cached("SELECT id, highest_modseq FROM mailboxes WHERE user_id = ?1")?
        .query_map([user.id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, modseq) in ids {
        drop_mailbox(ctx, id, modseq)?;
    }
    ctx.conn
        .prepare_cached("DELETE FROM subscriptions WHERE user_id = ?1")?
        .execute([user.id])?;
    ctx.conn
        .prepare_cached("DELETE FROM search_vocab WHERE user_id = ?1")?
        .execute([user.id])?;
    ctx.conn
        .prepare_cached("DELETE FROM search_vocab_prune WHERE user_id = ?1")?
        .execute([user.id])?;
    ctx.conn
        .prepare_cached("DELETE FROM search_vocab_pending WHERE user_id = ?1")?
        .execute([user.id])?;
    ctx.index.known.clear();
    // Its aliases go with it: left behind, they would deliver to a later account that
    // happens to get the same name.
    ctx.conn
        .prepare_cached("DELETE FROM aliases WHERE target = ?1")?
        .execute([&user.name])?;
    ctx.conn
        .prepare_cached("DELETE FROM users WHERE id = ?1")?
        .execute([user.id])?;
    Ok(())
}

const MAILBOX_COLS: &str = "m.id, m.name, m.uidvalidity, m.uidnext, m.highest_modseq, m.special_use, \
     EXISTS(SELECT 1 FROM subscriptions s WHERE s.user_id = m.user_id AND s.name = m.name)";

fn mailbox_from_row(r: &Row<'_>) -> rusqlite::Result<Mailbox> {
    Ok(Mailbox {
        id: r.get(0)?,
        name: r.get(1)?,
        uidvalidity: r.get(2)?,
        uidnext: r.get(3)?,
        highest_modseq: r.get::<_, i64>(4)? as u64,
        special_use: r.get(5)?,
        subscribed: r.get(6)?,
    })
}

pub(super) fn list_mailboxes(conn: &Connection, user: UserId) -> Result<Vec<Mailbox>> {
    require_user(conn, user)?;
    let sql =
        format!("SELECT {MAILBOX_COLS} FROM mailboxes m WHERE m.user_id = ?1 ORDER BY m.name");
    let mut st = conn.prepare_cached(&sql)?;
    let rows = st.query_map([user], mailbox_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn get_mailbox(conn: &Connection, user: UserId, name: &str) -> Result<Option<Mailbox>> {
    let sql =
        format!("SELECT {MAILBOX_COLS} FROM mailboxes m WHERE m.user_id = ?1 AND m.name = ?2");
    let mut st = conn.prepare_cached(&sql)?;
    Ok(st
        .query_row(params![user, normalize_name(name)], mailbox_from_row)
        .optional()?)
}

fn get_mailbox_by_id(conn: &Connection, user: UserId, id: MailboxId) -> Result<Mailbox> {
    let sql = format!("SELECT {MAILBOX_COLS} FROM mailboxes m WHERE m.id = ?1 AND m.user_id = ?2");
    let mut st = conn.prepare_cached(&sql)?;
    st.query_row(params![id, user], mailbox_from_row)
        .optional()?
        .ok_or(StoreError::NoSuchMailbox)
}

/// A UIDVALIDITY never handed out before in this store: the current time, or one more than the
/// last one if that is not smaller. Unique per store, hence per (user, name) over time.
fn next_uidvalidity(conn: &Connection) -> Result<u32> {
    let last: i64 = conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'uidvalidity'")?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(1);
    let v = now.max(last + 1).max(1);
    let v =
        u32::try_from(v).map_err(|_| StoreError::Internal("UIDVALIDITY space exhausted".into()))?;
    conn.prepare_cached("INSERT OR REPLACE INTO meta(key, value) VALUES ('uidvalidity', ?1)")?
        .execute([v])?;
    Ok(v)
}

pub(super) fn create_mailbox(
    conn: &Connection,
    user: UserId,
    name: &str,
    special_use: Option<&str>,
) -> Result<Mailbox> {
    require_user(conn, user)?;
    let name = normalize_name(name);
    if name.is_empty() {
        return Err(StoreError::Cannot("empty mailbox name".into()));
    }
    if get_mailbox(conn, user, name)?.is_some() {
        return Err(StoreError::AlreadyExists);
    }
    let uidvalidity = next_uidvalidity(conn)?;
    conn.prepare_cached(
        "INSERT INTO mailboxes(user_id, name, uidvalidity, uidnext, highest_modseq, special_use)
         VALUES (?1, ?2, ?3, 1, 1, ?4)",
    )?
    .execute(params![user, name, uidvalidity, special_use])?;
    get_mailbox_by_id(conn, user, conn.last_insert_rowid())
}

pub(super) fn delete_mailbox(ctx: &mut WriteCtx<'_>, user: UserId, id: MailboxId) -> Result<()> {
    let mb = get_mailbox_by_id(ctx.conn, user, id)?;
    if mb.name == INBOX {
        return Err(StoreError::Cannot("INBOX cannot be deleted".into()));
    }
    drop_mailbox(ctx, id, mb.highest_modseq as i64)
}

/// Removes a mailbox with its messages and tombstones; wakes its sessions so they notice.
fn drop_mailbox(ctx: &mut WriteCtx<'_>, id: MailboxId, highest_modseq: i64) -> Result<()> {
    delete_all_messages(ctx, id)?;
    super::messages::release_held_of_mailbox(ctx, id)?;
    ctx.conn
        .prepare_cached("DELETE FROM expunged WHERE mailbox_id = ?1")?
        .execute([id])?;
    ctx.conn
        .prepare_cached("DELETE FROM mailboxes WHERE id = ?1")?
        .execute([id])?;
    ctx.notify.push((id, highest_modseq as u64 + 1));
    Ok(())
}

pub(super) fn rename_mailbox(
    conn: &Connection,
    user: UserId,
    id: MailboxId,
    new_name: &str,
) -> Result<()> {
    let mb = get_mailbox_by_id(conn, user, id)?;
    if mb.name == INBOX {
        return Err(StoreError::Cannot(
            "renaming INBOX is done by moving its messages".into(),
        ));
    }
    let new_name = normalize_name(new_name);
    if new_name.is_empty() {
        return Err(StoreError::Cannot("empty mailbox name".into()));
    }
    if get_mailbox(conn, user, new_name)?.is_some() {
        return Err(StoreError::AlreadyExists);
    }
    conn.prepare_cached("UPDATE mailboxes SET name = ?2 WHERE id = ?1")?
        .execute(params![id, new_name])?;
    Ok(())
}

pub(super) fn subscribe(conn: &Connection, user: UserId, name: &str, on: bool) -> Result<()> {
    require_user(conn, user)?;
    let sql = if on {
        "INSERT OR IGNORE INTO subscriptions(user_id, name) VALUES (?1, ?2)"
    } else {
        "DELETE FROM subscriptions WHERE user_id = ?1 AND name = ?2"
    };
    conn.prepare_cached(sql)?
        .execute(params![user, normalize_name(name)])?;
    Ok(())
}

pub(super) fn subscriptions(conn: &Connection, user: UserId) -> Result<Vec<String>> {
    require_user(conn, user)?;
    let mut st =
        conn.prepare_cached("SELECT name FROM subscriptions WHERE user_id = ?1 ORDER BY name")?;
    let rows = st.query_map([user], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_any_case() {
        for (input, want) in [
            ("inbox", "INBOX"),
            ("InBoX", "INBOX"),
            ("INBOX/x", "INBOX/x"),
            ("Inbox2", "Inbox2"),
        ] {
            assert_eq!(normalize_name(input), want);
        }
    }
}
