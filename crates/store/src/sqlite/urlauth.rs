//! URLAUTH mailbox access keys (RFC 4467 §2.4): one random 32-byte key per mailbox, in the
//! owner's "mailbox access key table". A table of its own (created at every open, idempotent);
//! a trigger drops a mailbox's key with the mailbox (and so with the account), and mailbox ids
//! are never handed out again, so a key never outlives the mailbox it was made for.

use rusqlite::{Connection, OptionalExtension, params};

use crate::{MailboxId, Result, StoreError, UserId};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS urlauth_keys(
    mailbox_id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL,
    key BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS urlauth_keys_user ON urlauth_keys(user_id);
CREATE TRIGGER IF NOT EXISTS urlauth_keys_mailbox_deleted
AFTER DELETE ON mailboxes
BEGIN
    DELETE FROM urlauth_keys WHERE mailbox_id = old.id;
END;
";

/// The key of the user's mailbox, if it has one (and the mailbox is the user's).
pub(super) fn get_key(
    conn: &Connection,
    user: UserId,
    mailbox: MailboxId,
) -> Result<Option<Vec<u8>>> {
    let mut st =
        conn.prepare_cached("SELECT key FROM urlauth_keys WHERE mailbox_id = ?1 AND user_id = ?2")?;
    Ok(st
        .query_row(params![mailbox, user], |r| r.get(0))
        .optional()?)
}

/// The key of the user's mailbox, made now (SQLite's random source, as `server_secrets`) if
/// missing; `None` if the mailbox is not the user's.
pub(super) fn create_key(
    conn: &Connection,
    user: UserId,
    mailbox: MailboxId,
) -> Result<Option<Vec<u8>>> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO urlauth_keys(mailbox_id, user_id, key)
         SELECT id, user_id, randomblob(32) FROM mailboxes WHERE id = ?1 AND user_id = ?2",
    )?
    .execute(params![mailbox, user])?;
    get_key(conn, user, mailbox)
}

/// RESETKEY: a new key for the user's mailbox (`Some`), or no key for any of the user's
/// mailboxes (`None`). NoSuchMailbox if the mailbox is not the user's.
pub(super) fn reset(conn: &Connection, user: UserId, mailbox: Option<MailboxId>) -> Result<()> {
    match mailbox {
        None => {
            conn.prepare_cached("DELETE FROM urlauth_keys WHERE user_id = ?1")?
                .execute([user])?;
        }
        Some(mailbox) => {
            let owned: Option<i64> = conn
                .prepare_cached("SELECT id FROM mailboxes WHERE id = ?1 AND user_id = ?2")?
                .query_row(params![mailbox, user], |r| r.get(0))
                .optional()?;
            if owned.is_none() {
                return Err(StoreError::NoSuchMailbox);
            }
            conn.prepare_cached(
                "INSERT OR REPLACE INTO urlauth_keys(mailbox_id, user_id, key)
                 VALUES (?1, ?2, randomblob(32))",
            )?
            .execute(params![mailbox, user])?;
        }
    }
    Ok(())
}
