//! Message writes: append, copy, move, expunge, flag changes. Each runs inside one write job.
//!
//! Every change takes the mailbox's next modseq (one per operation, shared by the rows it
//! touches, RFC 7162 §3.1.1), stamps the rows or tombstones with it and records it as the
//! mailbox's HIGHESTMODSEQ.

use rusqlite::{Connection, OptionalExtension, params};

use super::blobs::{hash_from_sql, load_source, sha256};
use super::prepare::Prepared;
use super::writer::WriteCtx;
use super::{accounts, search};
use crate::{
    FlagOp, FlagUpdate, Flags, MailboxId, Result, StoreError, StoreFlagsResult, UserId, flagops,
    flags,
};

pub(super) struct MailboxState {
    pub user: UserId,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highest_modseq: u64,
    pub recent_boundary: u32,
}

pub(super) fn mailbox_state(conn: &Connection, id: MailboxId) -> Result<MailboxState> {
    conn.prepare_cached(
        "SELECT uidvalidity, uidnext, highest_modseq, recent_boundary, user_id FROM mailboxes
         WHERE id = ?1",
    )?
    .query_row([id], |r| {
        Ok(MailboxState {
            uidvalidity: r.get(0)?,
            uidnext: r.get(1)?,
            highest_modseq: r.get::<_, i64>(2)? as u64,
            recent_boundary: r.get(3)?,
            user: r.get(4)?,
        })
    })
    .optional()?
    .ok_or(StoreError::NoSuchMailbox)
}

pub(super) fn set_mailbox_state(
    conn: &Connection,
    id: MailboxId,
    uidnext: u32,
    modseq: u64,
    d: Counts,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE mailboxes SET uidnext = ?2, highest_modseq = ?3, messages = messages + ?4,
                unseen = unseen + ?5, deleted = deleted + ?6, size = size + ?7
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        uidnext,
        modseq as i64,
        d.messages,
        d.unseen,
        d.deleted,
        d.size
    ])?;
    Ok(())
}

/// A change to a mailbox's STATUS counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counts {
    pub messages: i64,
    pub unseen: i64,
    pub deleted: i64,
    pub size: i64,
}

impl Counts {
    /// What one message with these flags and size counts for.
    pub(super) fn of(system: u32, size: i64) -> Counts {
        Counts {
            messages: 1,
            unseen: i64::from(system & flags::SEEN == 0),
            deleted: i64::from(system & flags::DELETED != 0),
            size,
        }
    }

    pub(super) fn add(&mut self, o: Counts) {
        self.messages += o.messages;
        self.unseen += o.unseen;
        self.deleted += o.deleted;
        self.size += o.size;
    }

    fn sub(&mut self, o: Counts) {
        self.add(Counts {
            messages: -o.messages,
            unseen: -o.unseen,
            deleted: -o.deleted,
            size: -o.size,
        });
    }
}

fn next_uid(uid: u32) -> Result<u32> {
    uid.checked_add(1)
        .ok_or_else(|| StoreError::Cannot("mailbox UID space exhausted".into()))
}

pub(super) fn encode_keywords(k: &[String]) -> String {
    k.join(" ")
}

pub(super) fn decode_keywords(s: &str) -> Vec<String> {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split(' ').map(str::to_owned).collect()
    }
}

/// The account a mailbox belongs to.
pub(super) fn owner(conn: &Connection, mailbox: MailboxId) -> Result<UserId> {
    conn.prepare_cached("SELECT user_id FROM mailboxes WHERE id = ?1")?
        .query_row([mailbox], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NoSuchMailbox)
}

/// Takes a reference to the body, creating its index row (and search text) on first use; true
/// if it is new. Its words reach `user`'s search vocabulary at the next index flush: with its
/// indexing (a new body), or from `search_vocab_pending` (a body already known, perhaps only
/// to other accounts).
pub(super) fn acquire_blob(
    ctx: &mut WriteCtx<'_>,
    user: UserId,
    m: &mut Prepared,
) -> Result<(i64, bool)> {
    let conn = ctx.conn;
    let existing: Option<i64> = conn
        .prepare_cached("SELECT id FROM blobs WHERE hash = ?1")?
        .query_row([&m.hash[..]], |r| r.get(0))
        .optional()?;
    if let Some(id) = existing {
        match m.tokens.take() {
            Some(tokens) => ctx.index.defer_words(conn, id, user, tokens)?,
            // Indexed again from its text, which adds its words for every account holding it.
            None => ctx.index.reindex(conn, id, user)?,
        }
        // A body stored before previews were kept at delivery gets one now.
        conn.prepare_cached(
            "UPDATE blobs SET refcount = refcount + 1, preview = coalesce(preview, ?2)
             WHERE id = ?1",
        )?
        .execute(params![id, m.delivery.preview])?;
        // A body stored before keys were kept at delivery gets them now.
        super::sortkeys::on_delivery(conn, id, &m.sort_keys)?;
        return Ok((id, false));
    }
    // No row: a file body may have been collected after `prepare` wrote it. Write it again.
    if m.inline.is_none() && !ctx.blobs.exists(&m.hash) {
        let data = load_source(&m.source)?;
        if sha256(&data) != m.hash {
            return Err(StoreError::Internal(
                "message file changed during append".into(),
            ));
        }
        ctx.blobs.store(&m.hash, &data)?;
    }
    let p = &m.parsed;
    conn.prepare_cached(
        "INSERT INTO blobs(hash, size, refcount, parsed, sent_date, preview)
         VALUES (?1, ?2, 1, ?3, ?4, ?5)",
    )?
    .execute(params![
        &m.hash[..],
        m.size as i64,
        &m.parsed_packed,
        p.sent_date,
        m.delivery.preview
    ])?;
    let id = conn.last_insert_rowid();
    super::sortkeys::on_delivery(conn, id, &m.sort_keys)?;
    if let Some(packed) = &m.inline {
        conn.prepare_cached("INSERT INTO bodies(id, data) VALUES (?1, ?2)")?
            .execute(params![id, packed])?;
    }
    ctx.index.defer(conn, id, user, m.tokens.take())?;
    Ok((id, true))
}

/// Drops `n` references to a body; the last one removes its row, search text and (after the
/// commit) its file.
fn release_blob(ctx: &mut WriteCtx<'_>, blob_id: i64, n: i64) -> Result<()> {
    let conn = ctx.conn;
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached(
            "UPDATE blobs SET refcount = refcount - ?2 WHERE id = ?1 RETURNING refcount, hash",
        )?
        .query_row(params![blob_id, n], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((left, hash)) = row else {
        return Err(StoreError::Internal(format!(
            "message refers to missing blob {blob_id}"
        )));
    };
    if left <= 0 {
        conn.prepare_cached("DELETE FROM blobs WHERE id = ?1")?
            .execute([blob_id])?;
        conn.prepare_cached("DELETE FROM bodies WHERE id = ?1")?
            .execute([blob_id])?;
        ctx.index.remove(conn, blob_id)?;
        ctx.gc.push(hash_from_sql(&hash)?);
    }
    Ok(())
}

pub(super) fn append(
    ctx: &mut WriteCtx<'_>,
    mailbox: MailboxId,
    mut msgs: Vec<Prepared>,
) -> Result<(u32, Vec<u32>)> {
    // If this job fails, the bodies written by `prepare` are unreferenced: let GC recheck them.
    ctx.gc.extend(msgs.iter().map(|m| m.hash));
    let st = mailbox_state(ctx.conn, mailbox)?;
    if msgs.is_empty() {
        return Ok((st.uidvalidity, Vec::new()));
    }
    let user = st.user;
    let modseq = st.highest_modseq + 1;
    let mut uid = st.uidnext;
    let mut uids = Vec::with_capacity(msgs.len());
    let mut counts = Counts::default();
    for m in &mut msgs {
        let (blob_id, new) = acquire_blob(ctx, user, m)?;
        let thread = super::objects::on_append(ctx.conn, user, blob_id, new, m)?;
        counts.add(Counts::of(m.flags.system, m.size as i64));
        let row = Row {
            uid,
            blob_id,
            size: m.size as i64,
            flags: m.flags.system,
            keywords: encode_keywords(&m.flags.keywords),
            modseq,
            internal_date: m.internal_date,
            date_offset: m.internal_date_offset,
        };
        insert_row(ctx.conn, mailbox, &row, Some(&thread))?;
        uids.push(uid);
        uid = next_uid(uid)?;
    }
    set_mailbox_state(ctx.conn, mailbox, uid, modseq, counts)?;
    ctx.notify.push((mailbox, modseq));
    Ok((st.uidvalidity, uids))
}

/// `append` to the user's mailbox called `name`, if there is one.
pub(super) fn append_to(
    ctx: &mut WriteCtx<'_>,
    user: UserId,
    name: &str,
    msgs: Vec<Prepared>,
) -> Result<Option<(u32, Vec<u32>)>> {
    match accounts::get_mailbox(ctx.conn, user, name)? {
        Some(mailbox) => append(ctx, mailbox.id, msgs).map(Some),
        None => {
            // The bodies `prepare` wrote are unreferenced: let GC recheck them.
            ctx.gc.extend(msgs.iter().map(|m| m.hash));
            Ok(None)
        }
    }
}

/// One message row as stored.
pub(super) struct Row {
    pub uid: u32,
    pub blob_id: i64,
    pub size: i64,
    pub flags: u32,
    pub keywords: String,
    pub modseq: u64,
    pub internal_date: i64,
    pub date_offset: i32,
}

const ROW_COLS: &str = "uid, blob_id, size, flags, keywords, modseq, internal_date, date_offset";

fn row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        uid: r.get(0)?,
        blob_id: r.get(1)?,
        size: r.get(2)?,
        flags: r.get(3)?,
        keywords: r.get(4)?,
        modseq: r.get::<_, i64>(5)? as u64,
        internal_date: r.get(6)?,
        date_offset: r.get(7)?,
    })
}

/// Add a message row to `mailbox` (the columns of [`ROW_COLS`]).
/// Writes a message's row, with now as its save date and its THREADID's bytes (see
/// `objects`), if it has one.
pub(super) fn insert_row(
    conn: &Connection,
    mailbox: MailboxId,
    r: &Row,
    thread: Option<&[u8]>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO messages(mailbox_id, uid, blob_id, size, flags, keywords, modseq,
                              internal_date, date_offset, saved, thread)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        mailbox,
        r.uid,
        r.blob_id,
        r.size,
        r.flags,
        r.keywords,
        r.modseq as i64,
        r.internal_date,
        r.date_offset,
        unix_now(),
        thread
    ])?;
    Ok(())
}

/// Now in Unix seconds (a message's save date).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Sorted, deduplicated copy of a UID list.
pub(super) fn sorted_uids(uids: &[u32]) -> Vec<u32> {
    let mut v = uids.to_vec();
    v.sort_unstable();
    v.dedup();
    v
}

/// Point lookups cost a B-tree descent each; past this many, one range scan is cheaper.
const POINT_LOOKUP_MAX: usize = 64;

/// The rows of the given UIDs that exist, ascending. `uids` must be sorted and deduplicated.
pub(super) fn select_rows(conn: &Connection, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<Row>> {
    let (Some(&lo), Some(&hi)) = (uids.first(), uids.last()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(uids.len().min(1 << 16));
    if uids.len() <= POINT_LOOKUP_MAX {
        let sql = format!("SELECT {ROW_COLS} FROM messages WHERE mailbox_id = ?1 AND uid = ?2");
        let mut st = conn.prepare_cached(&sql)?;
        for &uid in uids {
            if let Some(r) = st.query_row(params![mailbox, uid], row_from).optional()? {
                out.push(r);
            }
        }
    } else {
        let sql = format!(
            "SELECT {ROW_COLS} FROM messages WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 ORDER BY uid"
        );
        let mut st = conn.prepare_cached(&sql)?;
        for r in st.query_map(params![mailbox, lo, hi], row_from)? {
            let r = r?;
            if uids.binary_search(&r.uid).is_ok() {
                out.push(r);
            }
        }
    }
    Ok(out)
}

pub(super) fn copy(
    ctx: &mut WriteCtx<'_>,
    from: MailboxId,
    uids: &[u32],
    to: MailboxId,
) -> Result<(u32, Vec<(u32, u32)>)> {
    mailbox_state(ctx.conn, from)?;
    let dst = mailbox_state(ctx.conn, to)?;
    let rows = select_rows(ctx.conn, from, &sorted_uids(uids))?;
    if rows.is_empty() {
        return Ok((dst.uidvalidity, Vec::new()));
    }
    let modseq = dst.highest_modseq + 1;
    let mut uid = dst.uidnext;
    let mut map = Vec::with_capacity(rows.len());
    let mut counts = Counts::default();
    // A copy keeps its THREADID (in another account's mailbox too).
    let mut thread = ctx
        .conn
        .prepare_cached("SELECT thread FROM messages WHERE mailbox_id = ?1 AND uid = ?2")?;
    for mut r in rows {
        counts.add(Counts::of(r.flags, r.size));
        ctx.conn
            .prepare_cached("UPDATE blobs SET refcount = refcount + 1 WHERE id = ?1")?
            .execute([r.blob_id])?;
        let t: Option<Vec<u8>> = thread.query_row(params![from, r.uid], |row| row.get(0))?;
        map.push((r.uid, uid));
        (r.uid, r.modseq) = (uid, modseq);
        insert_row(ctx.conn, to, &r, t.as_deref())?;
        uid = next_uid(uid)?;
    }
    set_mailbox_state(ctx.conn, to, uid, modseq, counts)?;
    ctx.notify.push((to, modseq));
    Ok((dst.uidvalidity, map))
}

pub(super) fn expunge(
    ctx: &mut WriteCtx<'_>,
    mailbox: MailboxId,
    uids: &[u32],
) -> Result<Vec<u32>> {
    let st = mailbox_state(ctx.conn, mailbox)?;
    let rows = select_rows(ctx.conn, mailbox, &sorted_uids(uids))?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let modseq = st.highest_modseq + 1;
    let mut removed = Vec::with_capacity(rows.len());
    let mut counts = Counts::default();
    for r in &rows {
        counts.sub(Counts::of(r.flags, r.size));
        ctx.conn
            .prepare_cached("DELETE FROM messages WHERE mailbox_id = ?1 AND uid = ?2")?
            .execute(params![mailbox, r.uid])?;
        // Tombstone for changes_since (RFC 7162 VANISHED), holding the body for a while.
        ctx.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq, blob_id, expunged_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![mailbox, r.uid, modseq as i64, r.blob_id, now()])?;
        removed.push(r.uid);
    }
    set_mailbox_state(ctx.conn, mailbox, st.uidnext, modseq, counts)?;
    ctx.notify.push((mailbox, modseq));
    search::words_may_be_stale(ctx.conn, ctx.index, st.user)?;
    release_held(ctx, now() - EXPUNGE_GRACE.as_secs() as i64)?;
    Ok(removed)
}

/// How long an expunged message's body stays readable. Another session (a phone, a laptop)
/// learns of the expunge at its next command; until then it may still FETCH the message, and
/// RFC 2180 §4.1.1 lets us answer with the data instead of an error. The longest a session
/// goes without a command is the 30-minute autologout, hence one hour.
pub(super) const EXPUNGE_GRACE: std::time::Duration = std::time::Duration::from_secs(3600);

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Release the bodies of tombstones expunged at or before `cutoff` (unix seconds).
pub(super) fn release_held(ctx: &mut WriteCtx<'_>, cutoff: i64) -> Result<()> {
    release_held_where(ctx, "expunged_at <= ?1", cutoff)
}

fn release_held_where(ctx: &mut WriteCtx<'_>, cond: &str, value: i64) -> Result<()> {
    let held: Vec<(i64, u32, i64)> = ctx
        .conn
        .prepare_cached(&format!(
            "SELECT mailbox_id, uid, blob_id FROM expunged WHERE blob_id IS NOT NULL AND {cond}"
        ))?
        .query_map([value], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (mailbox, uid, blob_id) in held {
        ctx.conn
            .prepare_cached(
                "UPDATE expunged SET blob_id = NULL WHERE mailbox_id = ?1 AND uid = ?2",
            )?
            .execute(params![mailbox, uid])?;
        release_blob(ctx, blob_id, 1)?;
    }
    Ok(())
}

/// Release every body a mailbox's tombstones hold (before the mailbox is deleted).
pub(super) fn release_held_of_mailbox(ctx: &mut WriteCtx<'_>, mailbox: MailboxId) -> Result<()> {
    release_held_where(ctx, "mailbox_id = ?1", mailbox)
}

pub(super) fn move_messages(
    ctx: &mut WriteCtx<'_>,
    from: MailboxId,
    uids: &[u32],
    to: MailboxId,
) -> Result<(u32, Vec<(u32, u32)>)> {
    let (uidvalidity, map) = copy(ctx, from, uids, to)?;
    let moved: Vec<u32> = map.iter().map(|&(src, _)| src).collect();
    expunge(ctx, from, &moved)?;
    Ok((uidvalidity, map))
}

/// Removes every message of a mailbox (DELETE), releasing their bodies.
pub(super) fn delete_all_messages(ctx: &mut WriteCtx<'_>, mailbox: MailboxId) -> Result<()> {
    let counts: Vec<(i64, i64)> = ctx
        .conn
        .prepare_cached(
            "SELECT blob_id, count(*) FROM messages WHERE mailbox_id = ?1 GROUP BY blob_id",
        )?
        .query_map([mailbox], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    ctx.conn
        .prepare_cached("DELETE FROM messages WHERE mailbox_id = ?1")?
        .execute([mailbox])?;
    if !counts.is_empty() {
        search::words_may_be_stale(ctx.conn, ctx.index, owner(ctx.conn, mailbox)?)?;
    }
    for (blob_id, n) in counts {
        release_blob(ctx, blob_id, n)?;
    }
    Ok(())
}

pub(super) fn set_flags(
    ctx: &mut WriteCtx<'_>,
    mailbox: MailboxId,
    uids: &[u32],
    op: FlagOp,
    arg: &Flags,
    unchanged_since: Option<u64>,
) -> Result<StoreFlagsResult> {
    let st = mailbox_state(ctx.conn, mailbox)?;
    let rows = select_rows(ctx.conn, mailbox, &sorted_uids(uids))?;
    let modseq = st.highest_modseq + 1;
    let mut out = StoreFlagsResult::default();
    let mut counts = Counts::default();
    for r in rows {
        // RFC 7162 §3.1.3: fail messages modified after UNCHANGEDSINCE.
        if unchanged_since.is_some_and(|u| r.modseq > u) {
            out.modified.push(r.uid);
            continue;
        }
        let old = Flags {
            system: r.flags,
            keywords: decode_keywords(&r.keywords),
        };
        let new = flagops::apply(op, &old, arg);
        if new != old {
            counts.add(Counts::of(new.system, 0));
            counts.sub(Counts::of(old.system, 0));
            ctx.conn
                .prepare_cached(
                    "UPDATE messages SET flags = ?3, keywords = ?4, modseq = ?5 WHERE mailbox_id = ?1 AND uid = ?2",
                )?
                .execute(params![mailbox, r.uid, new.system, encode_keywords(&new.keywords), modseq as i64])?;
            out.updated.push(FlagUpdate {
                uid: r.uid,
                flags: new,
                modseq,
            });
        } else if op == FlagOp::Replace {
            out.updated.push(FlagUpdate {
                uid: r.uid,
                flags: old,
                modseq: r.modseq,
            });
        }
    }
    if out.updated.iter().any(|u| u.modseq == modseq) {
        set_mailbox_state(ctx.conn, mailbox, st.uidnext, modseq, counts)?;
        ctx.notify.push((mailbox, modseq));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_of_flags() {
        use crate::flags::*;
        let c = Counts::of(SEEN | DELETED, 10);
        assert_eq!(
            c,
            Counts {
                messages: 1,
                unseen: 0,
                deleted: 1,
                size: 10
            }
        );
        let mut d = Counts::of(0, 5);
        d.sub(c);
        assert_eq!(
            d,
            Counts {
                messages: 0,
                unseen: 1,
                deleted: -1,
                size: -5
            }
        );
    }

    #[test]
    fn keywords_roundtrip() {
        assert!(decode_keywords("").is_empty());
        let k = vec!["$Junk".to_string(), "x".to_string()];
        assert_eq!(decode_keywords(&encode_keywords(&k)), k);
    }
}
