//! What an import needs beyond APPEND: a mailbox with the UIDVALIDITY the mail had before
//! (so clients keep their caches) and appends with the UIDs it had.

use rusqlite::{OptionalExtension, params};

use super::accounts;
use super::messages::{self, Counts, Row};
use super::prepare::Prepared;
use super::writer::WriteCtx;
use crate::{Mailbox, MailboxId, Result, StoreError, UserId};

/// See `MailStore::import_mailbox`.
pub(super) fn import_mailbox(
    ctx: &mut WriteCtx<'_>,
    user: UserId,
    name: &str,
    special_use: Option<&str>,
    uidvalidity: Option<u32>,
) -> Result<Mailbox> {
    if uidvalidity == Some(0) {
        return Err(StoreError::Cannot("UIDVALIDITY 0 is not valid".into()));
    }
    let conn = ctx.conn;
    let mailbox = match accounts::get_mailbox(conn, user, name)? {
        Some(m) => m,
        None => accounts::create_mailbox(conn, user, name, special_use)?,
    };
    let Some(v) = uidvalidity else {
        return Ok(mailbox);
    };
    if mailbox.uidnext != 1 || mailbox.uidvalidity == v {
        return Ok(mailbox);
    }
    conn.prepare_cached("UPDATE mailboxes SET uidvalidity = ?2 WHERE id = ?1")?
        .execute(params![mailbox.id, v])?;
    // Mailboxes made later get a UIDVALIDITY above this one (see `next_uidvalidity`).
    let last: i64 = conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'uidvalidity'")?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    if i64::from(v) > last {
        conn.prepare_cached("INSERT OR REPLACE INTO meta(key, value) VALUES ('uidvalidity', ?1)")?
            .execute([v])?;
    }
    // Sessions on an (empty) mailbox whose UIDVALIDITY changed must hear of it.
    ctx.notify.push((mailbox.id, mailbox.highest_modseq));
    Ok(Mailbox {
        uidvalidity: v,
        ..mailbox
    })
}

/// UIDs given for an import must be strictly ascending and not 0.
pub(super) fn check_ascending(uids: &[u32]) -> Result<()> {
    if uids.first() == Some(&0) || uids.windows(2).any(|w| w[0] >= w[1]) {
        return Err(StoreError::Cannot(
            "import UIDs must be strictly ascending and above 0".into(),
        ));
    }
    Ok(())
}

/// See `MailStore::append_with_uids`: `messages::append` with the caller's UIDs.
pub(super) fn append_with_uids(
    ctx: &mut WriteCtx<'_>,
    mailbox: MailboxId,
    uids: &[u32],
    mut msgs: Vec<Prepared>,
) -> Result<u32> {
    // If this job fails, the bodies written by `prepare` are unreferenced: let GC recheck them.
    ctx.gc.extend(msgs.iter().map(|m| m.hash));
    let st = messages::mailbox_state(ctx.conn, mailbox)?;
    check_ascending(uids)?;
    let (Some(&first), Some(&last)) = (uids.first(), uids.last()) else {
        return Ok(st.uidvalidity);
    };
    if first < st.uidnext {
        return Err(StoreError::Cannot(format!(
            "import UID {first} is below the mailbox's UIDNEXT {}",
            st.uidnext
        )));
    }
    let uidnext = last
        .checked_add(1)
        .ok_or_else(|| StoreError::Cannot("mailbox UID space exhausted".into()))?;
    let modseq = st.highest_modseq + 1;
    let mut counts = Counts::default();
    for (m, &uid) in msgs.iter_mut().zip(uids) {
        let (blob_id, _) = messages::acquire_blob(ctx, st.user, m)?;
        counts.add(Counts::of(m.flags.system, m.size as i64));
        let row = Row {
            uid,
            blob_id,
            size: m.size as i64,
            flags: m.flags.system,
            keywords: messages::encode_keywords(&m.flags.keywords),
            modseq,
            internal_date: m.internal_date,
            date_offset: m.internal_date_offset,
        };
        messages::insert_row(ctx.conn, mailbox, &row, None)?;
    }
    messages::set_mailbox_state(ctx.conn, mailbox, uidnext, modseq, counts)?;
    ctx.notify.push((mailbox, modseq));
    Ok(st.uidvalidity)
}
