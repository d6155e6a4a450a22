//! Object IDs (RFC 8474), save dates (RFC 8514) and previews (RFC 8970).
//!
//! - EMAILID is the body's content hash (`M` and 24 hex digits of its SHA-256): every copy of
//!   the same stored body has it, so COPY and MOVE keep it and nothing is stored for it.
//! - THREADID is given at delivery, per account and body (`thread_ids`): the thread of the
//!   first message the new one is linked to through its Message-ID, References or
//!   In-Reply-To (`thread_msgids` maps every ID seen in the account's mail to its thread, so
//!   a parent delivered after its reply joins the reply's thread too); a message linked to
//!   none starts a thread named after its own body (`T` and 24 hex digits). Mail stored
//!   before these tables existed has none (NIL, which RFC 8474 §5.2 allows).
//! - SAVEDATE is the `saved` column of the message's row, written with every row (APPEND,
//!   COPY, MOVE, delivery all insert one); mail stored before has none and reports its
//!   INTERNALDATE.
//! - PREVIEW text is computed at delivery (`prepare`) and kept in the body's `blobs` row;
//!   mail stored before has none (the session computes it from the body then).
//!
//! Both were tables of their own before schema version 5 (see `schema::migrate`): every
//! table a delivery writes is one more page in each commit.

use rusqlite::{Connection, OptionalExtension, params};

use super::blobs::Hash;
use super::messages::{mailbox_state, select_rows, sorted_uids};
use super::prepare::Prepared;
use crate::{MailboxId, MessageObjects, Result, StoreError, UserId};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS thread_ids(
    user_id INTEGER NOT NULL,
    blob_id INTEGER NOT NULL,
    thread TEXT NOT NULL,
    PRIMARY KEY(user_id, blob_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS thread_ids_blob ON thread_ids(blob_id);
CREATE TABLE IF NOT EXISTS thread_msgids(
    user_id INTEGER NOT NULL,
    msgid TEXT NOT NULL,
    thread TEXT NOT NULL,
    PRIMARY KEY(user_id, msgid)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS objects_blob_drop AFTER DELETE ON blobs BEGIN
    DELETE FROM thread_ids WHERE blob_id = OLD.id;
END;
CREATE TRIGGER IF NOT EXISTS objects_user_drop AFTER DELETE ON users BEGIN
    DELETE FROM thread_ids WHERE user_id = OLD.id;
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

/// At APPEND, in the write transaction, after the body's row exists (`new`: created by this
/// append): give it a thread in `user`'s account, unless it has one there already (a copy).
pub(super) fn on_append(
    conn: &Connection,
    user: UserId,
    blob_id: i64,
    new: bool,
    m: &Prepared,
) -> Result<()> {
    if !new {
        let known = conn
            .prepare_cached("SELECT 1 FROM thread_ids WHERE user_id = ?1 AND blob_id = ?2")?
            .exists(params![user, blob_id])?;
        if known {
            return Ok(());
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
            thread = find
                .query_row(params![user, id], |r| r.get::<_, String>(0))
                .optional()?;
            if thread.is_some() {
                break;
            }
        }
    }
    let thread = thread.unwrap_or_else(|| new_thread_id(&m.hash));
    conn.prepare_cached("INSERT INTO thread_ids(user_id, blob_id, thread) VALUES (?1, ?2, ?3)")?
        .execute(params![user, blob_id, thread])?;
    let mut link = conn.prepare_cached(
        "INSERT OR IGNORE INTO thread_msgids(user_id, msgid, thread) VALUES (?1, ?2, ?3)",
    )?;
    for id in ids {
        link.execute(params![user, id, thread])?;
    }
    Ok(())
}

fn new_thread_id(hash: &Hash) -> String {
    let mut s = email_id(hash);
    s.replace_range(..1, "T");
    s
}

pub(super) fn message_objects(
    conn: &Connection,
    mailbox: MailboxId,
    uids: &[u32],
) -> Result<Vec<(u32, MessageObjects)>> {
    let tx = conn.unchecked_transaction()?;
    let st = mailbox_state(&tx, mailbox)?;
    let rows = select_rows(&tx, mailbox, &sorted_uids(uids))?;
    let mut out = Vec::with_capacity(rows.len());
    let mut hash = tx.prepare_cached("SELECT hash FROM blobs WHERE id = ?1")?;
    let mut thread =
        tx.prepare_cached("SELECT thread FROM thread_ids WHERE user_id = ?1 AND blob_id = ?2")?;
    let mut saved =
        tx.prepare_cached("SELECT saved FROM messages WHERE mailbox_id = ?1 AND uid = ?2")?;
    for r in rows {
        let h: Vec<u8> = hash
            .query_row([r.blob_id], |row| row.get(0))
            .optional()?
            .ok_or_else(|| StoreError::Internal(format!("missing blob {}", r.blob_id)))?;
        out.push((
            r.uid,
            MessageObjects {
                email_id: email_id(&h),
                thread_id: thread
                    .query_row(params![st.user, r.blob_id], |row| row.get(0))
                    .optional()?,
                save_date: saved
                    .query_row(params![mailbox, r.uid], |row| row.get::<_, Option<i64>>(0))
                    .optional()?
                    .flatten()
                    .unwrap_or(r.internal_date),
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
