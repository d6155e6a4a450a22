//! Object IDs (RFC 8474), save dates (RFC 8514) and previews (RFC 8970).
//!
//! - EMAILID is the body's content hash (`M` and 24 hex digits of its SHA-256): every copy of
//!   the same stored body has it, so COPY and MOVE keep it and nothing is stored for it.
//! - THREADID is given at delivery, per account and body, and kept in the message's row
//!   (`messages.thread`, the 12 bytes after the `T`; COPY and MOVE keep it): the thread of
//!   the first message the new one is linked to through its Message-ID, References or
//!   In-Reply-To (`thread_msgids` maps every ID seen in the account's mail to its thread, so
//!   a parent delivered after its reply joins the reply's thread too); a message linked to
//!   none starts a thread named after its own body (`T` and 24 hex digits). A body the
//!   account already holds keeps the thread it has there. Mail stored before threads were
//!   kept has none (NIL, which RFC 8474 §5.2 allows).
//! - SAVEDATE is the `saved` column of the message's row, written with every row (APPEND,
//!   COPY, MOVE, delivery all insert one); mail stored before has none and reports its
//!   INTERNALDATE.
//! - PREVIEW text is computed at delivery (`prepare`) and kept in the body's `blobs` row;
//!   mail stored before has none (the session computes it from the body then).
//!
//! All three were tables of their own before schema version 5 (see `schema::migrate`):
//! every table a delivery writes is one more page in each commit.

use rusqlite::{Connection, OptionalExtension, params};

use super::blobs::Hash;
use super::messages::{mailbox_state, select_rows, sorted_uids};
use super::prepare::Prepared;
use crate::{MailboxId, MessageObjects, Result, StoreError, UserId};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS thread_msgids(
    user_id INTEGER NOT NULL,
    msgid TEXT NOT NULL,
    thread TEXT NOT NULL,
    PRIMARY KEY(user_id, msgid)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS objects_user_drop AFTER DELETE ON users BEGIN
    DELETE FROM thread_msgids WHERE user_id = OLD.id;
END;
";

/// `M` and the first 12 bytes of the body's SHA-256 in hex (Cyrus's form).
pub(super) fn email_id(hash: &[u8]) -> String {
    let mut s = String::with_capacity(25);
    s.push('M');
    for b in hash.iter().take(12) {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A THREADID's bytes, as kept in `messages.thread`.
pub(super) type ThreadBytes = [u8; 12];

/// At APPEND, in the write transaction, after the body's row exists (`new`: created by this
/// append): the thread of the new message in `user`'s account, for its row. A body the
/// account holds already keeps its thread there.
pub(super) fn on_append(
    conn: &Connection,
    user: UserId,
    blob_id: i64,
    new: bool,
    m: &Prepared,
) -> Result<ThreadBytes> {
    if !new {
        let known: Option<Vec<u8>> = conn
            .prepare_cached(
                "SELECT m.thread FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
                 WHERE m.blob_id = ?1 AND b.user_id = ?2 AND m.thread IS NOT NULL LIMIT 1",
            )?
            .query_row(params![blob_id, user], |r| r.get(0))
            .optional()?;
        if let Some(t) = known.as_deref().and_then(|t| ThreadBytes::try_from(t).ok()) {
            return Ok(t);
        }
    }
    let d = &m.delivery;
    let ids: Vec<&str> = d
        .message_id
        .iter()
        .chain(d.references.iter())
        .map(String::as_str)
        .collect();
    let mut thread = None;
    {
        let mut find = conn
            .prepare_cached("SELECT thread FROM thread_msgids WHERE user_id = ?1 AND msgid = ?2")?;
        for id in &ids {
            let linked = find
                .query_row(params![user, id], |r| r.get::<_, String>(0))
                .optional()?;
            thread = linked.as_deref().and_then(thread_from_text);
            if thread.is_some() {
                break;
            }
        }
    }
    let thread = thread.unwrap_or_else(|| new_thread(&m.hash));
    let text = thread_text(&thread);
    let mut link = conn.prepare_cached(
        "INSERT OR IGNORE INTO thread_msgids(user_id, msgid, thread) VALUES (?1, ?2, ?3)",
    )?;
    for id in ids {
        link.execute(params![user, id, text])?;
    }
    Ok(thread)
}

/// A new thread, named after the body that starts it.
fn new_thread(hash: &Hash) -> ThreadBytes {
    let mut t = ThreadBytes::default();
    t.copy_from_slice(&hash[..12]);
    t
}

/// `T` and the thread's bytes in hex: the THREADID.
fn thread_text(t: &[u8]) -> String {
    let mut s = email_id(t);
    s.replace_range(..1, "T");
    s
}

/// The bytes of a THREADID as `thread_text` writes it.
fn thread_from_text(s: &str) -> Option<ThreadBytes> {
    let hex = s.strip_prefix('T')?.as_bytes();
    if hex.len() != 24 {
        return None;
    }
    let mut t = ThreadBytes::default();
    for (i, pair) in hex.chunks(2).enumerate() {
        t[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(t)
}

pub(super) fn message_objects(
    conn: &Connection,
    mailbox: MailboxId,
    uids: &[u32],
) -> Result<Vec<(u32, MessageObjects)>> {
    let tx = conn.unchecked_transaction()?;
    mailbox_state(&tx, mailbox)?;
    let rows = select_rows(&tx, mailbox, &sorted_uids(uids))?;
    let mut out = Vec::with_capacity(rows.len());
    let mut hash = tx.prepare_cached("SELECT hash FROM blobs WHERE id = ?1")?;
    let mut objects =
        tx.prepare_cached("SELECT saved, thread FROM messages WHERE mailbox_id = ?1 AND uid = ?2")?;
    for r in rows {
        let h: Vec<u8> = hash
            .query_row([r.blob_id], |row| row.get(0))
            .optional()?
            .ok_or_else(|| StoreError::Internal(format!("missing blob {}", r.blob_id)))?;
        let (saved, thread): (Option<i64>, Option<Vec<u8>>) = objects
            .query_row(params![mailbox, r.uid], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?
            .unwrap_or_default();
        out.push((
            r.uid,
            MessageObjects {
                email_id: email_id(&h),
                thread_id: thread.as_deref().map(thread_text),
                save_date: saved.unwrap_or(r.internal_date),
            },
        ));
    }
    Ok(out)
}

pub(super) fn preview(conn: &Connection, mailbox: MailboxId, uid: u32) -> Result<Option<String>> {
    let row: Option<Option<String>> = conn
        .prepare_cached(
            "SELECT b.preview
             FROM (SELECT blob_id FROM messages WHERE mailbox_id = ?1 AND uid = ?2
                   UNION ALL
                   SELECT blob_id FROM expunged
                   WHERE mailbox_id = ?1 AND uid = ?2 AND blob_id IS NOT NULL) m
             LEFT JOIN blobs b ON b.id = m.blob_id",
        )?
        .query_row(params![mailbox, uid], |r| r.get(0))
        .optional()?;
    row.ok_or(StoreError::NoSuchMailbox)
}
