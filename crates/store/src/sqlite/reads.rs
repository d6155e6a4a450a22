//! Reads of the selected mailbox: SELECT's message list, change log, STATUS, parsed info.

use rusqlite::{Connection, OptionalExtension, params};

use std::sync::Arc;

use super::blobs::{BlobDir, Hash, hash_from_sql};
use super::messages::{decode_keywords, mailbox_state};
use super::parsed;
use crate::{
    Changes, Flags, MailboxId, MailboxStatus, MessageMeta, ParsedInfo, Result, StoreError,
};

fn meta_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageMeta> {
    // Borrow the keyword text: most messages have none, and then nothing is allocated.
    let kw = r.get_ref(2)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(MessageMeta {
        uid: r.get(0)?,
        flags: Flags {
            system: r.get(1)?,
            keywords: decode_keywords(kw),
        },
        modseq: r.get::<_, i64>(3)? as u64,
        size: r.get::<_, i64>(4)? as u64,
        internal_date: r.get(5)?,
        internal_date_offset: r.get(6)?,
    })
}

const META_COLS: &str = "uid, flags, keywords, modseq, size, internal_date, date_offset";

/// All messages, ascending UID: one range scan of the primary key.
pub(super) fn messages(conn: &Connection, mailbox: MailboxId) -> Result<Vec<MessageMeta>> {
    let tx = conn.unchecked_transaction()?;
    mailbox_state(&tx, mailbox)?;
    let count: i64 = tx
        .prepare_cached("SELECT messages FROM mailboxes WHERE id = ?1")?
        .query_row([mailbox], |r| r.get(0))?;
    let sql = format!("SELECT {META_COLS} FROM messages WHERE mailbox_id = ?1 ORDER BY uid");
    let mut st = tx.prepare_cached(&sql)?;
    // The counter is exact; the cap only guards against a damaged one.
    let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(1 << 22));
    for m in st.query_map([mailbox], meta_from)? {
        out.push(m?);
    }
    Ok(out)
}

pub(super) fn changes_since(conn: &Connection, mailbox: MailboxId, since: u64) -> Result<Changes> {
    // One read transaction: the lists and HIGHESTMODSEQ describe the same moment.
    let tx = conn.unchecked_transaction()?;
    let st = mailbox_state(&tx, mailbox)?;
    let since = i64::try_from(since).unwrap_or(i64::MAX);
    let sql = format!(
        "SELECT {META_COLS} FROM messages WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid"
    );
    let changed = tx
        .prepare_cached(&sql)?
        .query_map(params![mailbox, since], meta_from)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let expunged = tx
        .prepare_cached(
            "SELECT uid FROM expunged WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid",
        )?
        .query_map(params![mailbox, since], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<u32>>>()?;
    let pruned_modseq = super::tombstones::horizon(&tx, mailbox)?;
    Ok(Changes {
        changed,
        expunged,
        pruned_modseq,
        highest_modseq: st.highest_modseq,
        uidnext: st.uidnext,
    })
}

pub(super) fn status(conn: &Connection, mailbox: MailboxId) -> Result<MailboxStatus> {
    let tx = conn.unchecked_transaction()?;
    let st = mailbox_state(&tx, mailbox)?;
    let (messages, unseen, deleted, size): (i64, i64, i64, i64) = tx
        .prepare_cached("SELECT messages, unseen, deleted, size FROM mailboxes WHERE id = ?1")?
        .query_row([mailbox], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
    // Recent messages are the newest ones: a short range at the end of the primary key.
    let recent: i64 = tx
        .prepare_cached("SELECT count(*) FROM messages WHERE mailbox_id = ?1 AND uid >= ?2")?
        .query_row(params![mailbox, st.recent_boundary], |r| r.get(0))?;
    let n = |v: i64| u32::try_from(v).unwrap_or(0);
    Ok(MailboxStatus {
        messages: n(messages),
        unseen: n(unseen),
        deleted: n(deleted),
        size: u64::try_from(size).unwrap_or(0),
        uidnext: st.uidnext,
        uidvalidity: st.uidvalidity,
        highest_modseq: st.highest_modseq,
        recent: n(recent),
    })
}

pub(super) fn parsed_info(conn: &Connection, mailbox: MailboxId, uid: u32) -> Result<ParsedInfo> {
    conn.prepare_cached(
        "SELECT b.parsed, b.sent_date
         FROM (SELECT blob_id FROM messages WHERE mailbox_id = ?1 AND uid = ?2
               UNION ALL
               SELECT blob_id FROM expunged
               WHERE mailbox_id = ?1 AND uid = ?2 AND blob_id IS NOT NULL) m
         JOIN blobs b ON b.id = m.blob_id",
    )?
    .query_row(params![mailbox, uid], |r| {
        Ok((r.get::<_, Vec<u8>>(0)?, r.get(1)?))
    })
    .optional()?
    .ok_or(StoreError::NoSuchMailbox)
    .and_then(|(packed, sent_date)| unpack_parsed(&packed, sent_date))
}

/// The search text is not stored (the search index keeps words, see `search`): left empty.
fn unpack_parsed(packed: &[u8], sent_date: Option<i64>) -> Result<ParsedInfo> {
    let mut info = ParsedInfo {
        sent_date,
        ..ParsedInfo::default()
    };
    parsed::unpack(packed, &mut info)?;
    Ok(info)
}

/// Parsed info of many messages in one read transaction. A dense set is read as one range scan
/// of the primary key; a sparse one (range much wider than the set) UID by UID, on the same
/// connection and prepared statement.
pub(super) fn parsed_infos(
    conn: &Connection,
    mailbox: MailboxId,
    uids: &[u32],
) -> Result<Vec<(u32, ParsedInfo)>> {
    let (Some(&first), Some(&last)) = (uids.first(), uids.last()) else {
        return Ok(Vec::new());
    };
    let row = |r: &rusqlite::Row<'_>| -> Result<(u32, ParsedInfo)> {
        let packed = r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
        Ok((r.get(0)?, unpack_parsed(packed, r.get(2)?)?))
    };
    const COLUMNS: &str = "SELECT m.uid, b.parsed, b.sent_date
         FROM messages m JOIN blobs b ON b.id = m.blob_id";
    let span = u64::from(last.saturating_sub(first)) + 1;
    let mut out = Vec::with_capacity(uids.len());
    if span <= 4 * uids.len() as u64 {
        let mut stmt = conn.prepare_cached(&format!(
            "{COLUMNS} WHERE m.mailbox_id = ?1 AND m.uid BETWEEN ?2 AND ?3 ORDER BY m.uid"
        ))?;
        let mut rows = stmt.query(params![mailbox, first, last])?;
        while let Some(r) = rows.next()? {
            let uid: u32 = r.get(0)?;
            if uids.binary_search(&uid).is_ok() {
                out.push(row(r)?);
            }
        }
    } else {
        let mut stmt =
            conn.prepare_cached(&format!("{COLUMNS} WHERE m.mailbox_id = ?1 AND m.uid = ?2"))?;
        for &uid in uids {
            if let Some(r) = stmt.query(params![mailbox, uid])?.next()? {
                out.push(row(r)?);
            }
        }
    }
    Ok(out)
}

/// rev1 `\Recent`: UIDs at or above the boundary; claiming moves the boundary to UIDNEXT.
pub(super) fn claim_recent(conn: &Connection, mailbox: MailboxId, claim: bool) -> Result<Vec<u32>> {
    let st = mailbox_state(conn, mailbox)?;
    let uids: Vec<u32> = conn
        .prepare_cached(
            "SELECT uid FROM messages WHERE mailbox_id = ?1 AND uid >= ?2 ORDER BY uid",
        )?
        .query_map(params![mailbox, st.recent_boundary], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if claim && st.recent_boundary != st.uidnext {
        conn.prepare_cached("UPDATE mailboxes SET recent_boundary = ?2 WHERE id = ?1")?
            .execute(params![mailbox, st.uidnext])?;
    }
    Ok(uids)
}

/// Where one message's body is: its hash, size and, when kept in the index, packed bytes.
pub(super) struct BodyRef {
    pub hash: Hash,
    pub size: u64,
    pub inline: Option<Vec<u8>>,
}

impl BodyRef {
    pub(super) fn load(&self, blobs: &BlobDir) -> Result<Vec<u8>> {
        match &self.inline {
            Some(packed) => blobs.unpack(&self.hash, packed, self.size),
            None => blobs.load(&self.hash, self.size),
        }
    }
}

/// A body as `SELECT b.hash, b.size, d.data ... blobs b LEFT JOIN bodies d` gives it.
fn body_from(row: (Vec<u8>, i64, Option<Vec<u8>>)) -> Result<BodyRef> {
    let (hash, size, inline) = row;
    Ok(BodyRef {
        hash: hash_from_sql(&hash)?,
        size: size as u64,
        inline,
    })
}

/// The body of one message, also while an expunged message's body is held.
pub(super) fn blob_of(conn: &Connection, mailbox: MailboxId, uid: u32) -> Result<BodyRef> {
    let row = conn
        .prepare_cached(
            "SELECT b.hash, b.size, d.data FROM messages m JOIN blobs b ON b.id = m.blob_id
             LEFT JOIN bodies d ON d.id = b.id
             WHERE m.mailbox_id = ?1 AND m.uid = ?2
             UNION ALL
             SELECT b.hash, b.size, d.data FROM expunged e JOIN blobs b ON b.id = e.blob_id
             LEFT JOIN bodies d ON d.id = b.id
             WHERE e.mailbox_id = ?1 AND e.uid = ?2",
        )?
        .query_row(params![mailbox, uid], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?
        .ok_or(StoreError::NoSuchMailbox)?;
    body_from(row)
}

/// The body with index id `blob_id`.
pub(super) fn body_by_id(conn: &Connection, blob_id: i64) -> Result<BodyRef> {
    let row = conn
        .prepare_cached(
            "SELECT b.hash, b.size, d.data FROM blobs b LEFT JOIN bodies d ON d.id = b.id
             WHERE b.id = ?1",
        )?
        .query_row([blob_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    body_from(row)
}

/// `message_bytes` as a stream: bodies kept in files are unpacked as they are read.
pub(super) fn message_reader(
    conn: &Connection,
    blobs: &BlobDir,
    mailbox: MailboxId,
    uid: u32,
) -> Result<crate::MessageReader> {
    let body = blob_of(conn, mailbox, uid)?;
    let r = match body.inline {
        Some(packed) => blobs.stream_packed(&body.hash, packed, body.size),
        None => blobs.stream(&body.hash, body.size),
    };
    if r.is_err() {
        // Expunged (and its file collected) since the lookup: say so, not "storage fault".
        blob_of(conn, mailbox, uid)?;
    }
    r
}

/// The first octets of many messages (see `MailStore::message_prefixes`). Not in one read
/// transaction: a body collected since its lookup must be seen as expunged (as in
/// [`message_reader`]), not kept visible by an old snapshot.
pub(super) fn message_prefixes(
    conn: &Connection,
    blobs: &BlobDir,
    mailbox: MailboxId,
    wanted: &[(u32, u64)],
) -> Result<Vec<(u32, Vec<u8>)>> {
    let mut out = Vec::with_capacity(wanted.len());
    for &(uid, len) in wanted {
        let body = match blob_of(conn, mailbox, uid) {
            Ok(b) => b,
            Err(StoreError::NoSuchMailbox) => continue,
            Err(e) => return Err(e),
        };
        match blobs.prefix(&body.hash, body.inline, body.size, len) {
            Ok(bytes) => out.push((uid, bytes)),
            // Expunged (and its file collected) since the lookup: left out, as if not found.
            Err(e) => match blob_of(conn, mailbox, uid) {
                Err(StoreError::NoSuchMailbox) => {}
                _ => return Err(e),
            },
        }
    }
    Ok(out)
}

pub(super) fn message_bytes(
    conn: &Connection,
    blobs: &BlobDir,
    mailbox: MailboxId,
    uid: u32,
) -> Result<Arc<Vec<u8>>> {
    match blob_of(conn, mailbox, uid)?.load(blobs) {
        Ok(b) => Ok(Arc::new(b)),
        Err(e) => {
            // Expunged (and its file collected) since the lookup: say so, not "storage fault".
            blob_of(conn, mailbox, uid)?;
            Err(e)
        }
    }
}
