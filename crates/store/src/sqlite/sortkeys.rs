//! Sort and thread keys (RFC 5256 SORT / THREAD): one row per distinct body, in a table of its
//! own (created at every open, idempotent), so copies of a message share them and a SORT over
//! 100,000 messages reads one small row each instead of every ENVELOPE (and, for
//! THREAD=REFERENCES, every message's header). They are computed at delivery
//! (`mailkeep_mime::sortkeys`, in `prepare`) and written with the body's row; mail stored
//! before gets them from the session the first time a SORT or THREAD needs them. A trigger
//! drops a body's keys with the body.

use rusqlite::{Connection, OptionalExtension, params};

use crate::{KeyRows, MailboxId, Result};

/// Bytes reserved per row read (rows are about 200 bytes).
const ROW_BYTES: usize = 256;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sort_keys(
    blob_id INTEGER PRIMARY KEY,
    keys BLOB NOT NULL
);
CREATE TRIGGER IF NOT EXISTS sort_keys_body_gone
AFTER DELETE ON blobs
BEGIN
    DELETE FROM sort_keys WHERE blob_id = old.id;
END;
";

/// At delivery, in the write transaction, once the body's row exists: its keys (a row there
/// already is the same, or was computed by an older version and is replaced by the session).
pub(super) fn on_delivery(conn: &Connection, blob_id: i64, keys: &[u8]) -> Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO sort_keys(blob_id, keys) VALUES (?1, ?2)")?
        .execute(params![blob_id, keys])?;
    Ok(())
}

/// The saved keys of `uids` (ascending) that have them, ascending UID: one range query over
/// the mailbox's messages, filtered by the wanted set; or, for a few UIDs far apart (the
/// binary searches that insert new mail into a kept sort order), one lookup each.
pub(super) fn sort_keys(conn: &Connection, mailbox: MailboxId, uids: &[u32]) -> Result<KeyRows> {
    let (Some(&lo), Some(&hi)) = (uids.first(), uids.last()) else {
        return Ok(KeyRows::default());
    };
    if crate::sparse(uids) {
        let mut st = conn.prepare_cached(
            "SELECT k.keys FROM messages m JOIN sort_keys k ON k.blob_id = m.blob_id
             WHERE m.mailbox_id = ?1 AND m.uid = ?2",
        )?;
        let mut out = KeyRows::with_capacity(uids.len(), ROW_BYTES);
        for &uid in uids {
            st.query_row(params![mailbox, uid], |r| {
                out.push(uid, r.get_ref(0)?.as_blob()?);
                Ok(())
            })
            .optional()?;
        }
        return Ok(out);
    }
    let mut st = conn.prepare_cached(
        "SELECT m.uid, k.keys FROM messages m JOIN sort_keys k ON k.blob_id = m.blob_id
         WHERE m.mailbox_id = ?1 AND m.uid BETWEEN ?2 AND ?3 ORDER BY m.uid",
    )?;
    let mut rows = st.query(params![mailbox, lo, hi])?;
    let mut out = KeyRows::with_capacity(uids.len(), ROW_BYTES);
    let mut want = uids.iter().peekable();
    while let Some(r) = rows.next()? {
        let uid: u32 = r.get(0)?;
        while want.next_if(|&&u| u < uid).is_some() {}
        if want.next_if(|&&u| u == uid).is_some() {
            out.push(uid, r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?);
        }
    }
    Ok(out)
}

/// Save keys for the bodies of these messages (messages gone meanwhile are skipped).
pub(super) fn save_sort_keys(
    conn: &Connection,
    mailbox: MailboxId,
    keys: &[(u32, Vec<u8>)],
) -> Result<()> {
    let mut st = conn.prepare_cached(
        "INSERT OR REPLACE INTO sort_keys(blob_id, keys)
         SELECT blob_id, ?3 FROM messages WHERE mailbox_id = ?1 AND uid = ?2",
    )?;
    for (uid, k) in keys {
        st.execute(params![mailbox, uid, k])?;
    }
    Ok(())
}
