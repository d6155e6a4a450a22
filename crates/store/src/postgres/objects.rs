//! Object IDs (RFC 8474), save dates (RFC 8514), previews (RFC 8970) and sort keys (RFC 5256),
//! as the embedded store keeps them (`sqlite::objects`, `sqlite::sortkeys`):
//!
//! - EMAILID is the body's content hash (`M` and 24 hex digits of its SHA-256), the same on
//!   both backends; nothing is stored for it.
//! - THREADID is given at delivery per account and body (`thread_ids`): the thread of the
//!   first known Message-ID among the message's own, References and In-Reply-To
//!   (`thread_msgids`), else a new one named after the body (`T` and 24 hex digits).
//! - SAVEDATE is `messages.saved`, set by its column default on every insert (APPEND, COPY,
//!   MOVE, delivery); mail stored before schema version 2 reports its INTERNALDATE.
//! - PREVIEW text is kept per body at delivery (`previews`).
//! - Sort keys are kept per body (`sort_keys`), so copies share them: written with the body at
//!   delivery; mail stored before gets them at its first SORT or THREAD (the session's lazy path).
//!
//! All of them go with their body (foreign keys, `ON DELETE CASCADE`).

use super::cached;
use deadpool_postgres::{GenericClient, Transaction};

use super::messages::{require_mailbox, uids_sql};
use crate::{KeyRows, MailboxId, MessageObjects, Result, StoreError, UserId};

/// Message-IDs longer than this are not linked (an index entry has a size limit, and no real
/// Message-ID comes near it).
const MSGID_MAX: usize = 998;

/// `prefix` and the first 12 bytes of the body's SHA-256 in hex.
fn object_id(prefix: char, hash: &[u8]) -> String {
    let mut s = String::with_capacity(25);
    s.push(prefix);
    for b in hash.iter().take(12) {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// At APPEND, in the writing transaction, after the body's row exists: keep its preview and
/// give it a thread in `user`'s account (unless it has one there already: a copy).
pub(super) async fn on_append(
    tx: &Transaction<'_>,
    user: UserId,
    hash: &[u8],
    d: &mailkeep_mime::DeliveryInfo,
) -> Result<()> {
    // PostgreSQL text holds no NUL.
    let preview = d.preview.replace('\0', " ");
    tx.execute(
        &cached(
            tx,
            "INSERT INTO previews(hash, preview) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING",
        )
        .await?,
        &[&hash, &preview],
    )
    .await?;
    let known = tx
        .query_opt(
            &cached(
                tx,
                "SELECT 1 FROM thread_ids WHERE user_id = $1 AND hash = $2",
            )
            .await?,
            &[&user, &hash],
        )
        .await?;
    if known.is_some() {
        return Ok(());
    }
    let mut ids: Vec<&str> = Vec::new();
    for id in d.message_id.iter().chain(d.references.iter()) {
        if id.len() <= MSGID_MAX && !id.contains('\0') && !ids.contains(&id.as_str()) {
            ids.push(id);
        }
    }
    // The first ID (in that order) that is known gives the thread.
    let found = tx
        .query_opt(
            &cached(
                tx,
                "SELECT t.thread FROM unnest($2::text[]) WITH ORDINALITY AS i(msgid, n)
             JOIN thread_msgids t ON t.user_id = $1 AND t.msgid = i.msgid
             ORDER BY i.n LIMIT 1",
            )
            .await?,
            &[&user, &ids],
        )
        .await?;
    let thread: String = match found {
        Some(r) => r.get(0),
        None => object_id('T', hash),
    };
    tx.execute(
        &cached(
            tx,
            "INSERT INTO thread_ids(user_id, hash, thread) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, hash) DO NOTHING",
        )
        .await?,
        &[&user, &hash, &thread],
    )
    .await?;
    // Sorted, so concurrent deliveries take the rows' locks in one order.
    ids.sort_unstable();
    tx.execute(
        &cached(
            tx,
            "INSERT INTO thread_msgids(user_id, msgid, thread)
         SELECT $1, msgid, $3 FROM unnest($2::text[]) AS i(msgid)
         ON CONFLICT (user_id, msgid) DO NOTHING",
        )
        .await?,
        &[&user, &ids, &thread],
    )
    .await?;
    Ok(())
}

pub(super) async fn message_objects<C: GenericClient>(
    c: &C,
    mailbox: MailboxId,
    uids: &[u32],
) -> Result<Vec<(u32, MessageObjects)>> {
    require_mailbox(c, mailbox).await?;
    let rows = c
        .query(
            &cached(
                c,
                "SELECT m.uid, m.body_hash, t.thread, coalesce(m.saved, m.internal_date)
             FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
             LEFT JOIN thread_ids t ON t.user_id = b.user_id AND t.hash = m.body_hash
             WHERE m.mailbox_id = $1 AND m.uid = ANY($2) ORDER BY m.uid",
            )
            .await?,
            &[&mailbox, &uids_sql(uids)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let hash: Vec<u8> = r.get(1);
            (
                r.get::<_, i64>(0) as u32,
                MessageObjects {
                    email_id: object_id('M', &hash),
                    thread_id: r.get(2),
                    save_date: r.get(3),
                },
            )
        })
        .collect())
}

/// The kept preview of a message (or of one expunged but still held). NoSuchMailbox if
/// there is no such message.
pub(super) async fn preview<C: GenericClient>(
    c: &C,
    mailbox: MailboxId,
    uid: u32,
) -> Result<Option<String>> {
    let row = c
        .query_opt(
            &cached(
                c,
                "SELECT p.preview
             FROM (SELECT body_hash FROM messages WHERE mailbox_id = $1 AND uid = $2
                   UNION ALL
                   SELECT body_hash FROM expunged
                   WHERE mailbox_id = $1 AND uid = $2 AND body_hash IS NOT NULL) m
             LEFT JOIN previews p ON p.hash = m.body_hash LIMIT 1",
            )
            .await?,
            &[&mailbox, &i64::from(uid)],
        )
        .await?;
    row.map(|r| r.get(0)).ok_or(StoreError::NoSuchMailbox)
}

/// The saved keys of `uids` (ascending) that have them, ascending UID.
pub(super) async fn sort_keys<C: GenericClient>(
    c: &C,
    mailbox: MailboxId,
    uids: &[u32],
) -> Result<KeyRows> {
    let (Some(&lo), Some(&hi)) = (uids.first(), uids.last()) else {
        return Ok(KeyRows::default());
    };
    if crate::sparse(uids) {
        // A few UIDs far apart (the binary searches that insert new mail into a kept sort
        // order): looked up by key.
        let wanted: Vec<i64> = uids.iter().map(|&u| i64::from(u)).collect();
        let rows = c
            .query(
                &cached(
                    c,
                    "SELECT m.uid, k.keys FROM messages m JOIN sort_keys k ON k.hash = m.body_hash
                 WHERE m.mailbox_id = $1 AND m.uid = ANY($2) ORDER BY m.uid",
                )
                .await?,
                &[&mailbox, &wanted],
            )
            .await?;
        let mut out = KeyRows::with_capacity(rows.len(), 256);
        for r in &rows {
            out.push(r.get::<_, i64>(0) as u32, r.get(1));
        }
        return Ok(out);
    }
    // One range scan of the mailbox's messages (a SORT asks for most of them), filtered by
    // the wanted set here rather than a 100,000-element `= ANY`.
    let rows = c
        .query(
            &cached(
                c,
                "SELECT m.uid, k.keys FROM messages m JOIN sort_keys k ON k.hash = m.body_hash
             WHERE m.mailbox_id = $1 AND m.uid BETWEEN $2 AND $3 ORDER BY m.uid",
            )
            .await?,
            &[&mailbox, &i64::from(lo), &i64::from(hi)],
        )
        .await?;
    let mut out = KeyRows::with_capacity(rows.len().min(uids.len()), 256);
    let mut want = uids.iter().peekable();
    for r in &rows {
        let uid = r.get::<_, i64>(0) as u32;
        while want.next_if(|&&u| u < uid).is_some() {}
        if want.next_if(|&&u| u == uid).is_some() {
            out.push(uid, r.get(1));
        }
    }
    Ok(out)
}

/// At delivery, in the transaction that stores the body: its sort keys (a row there already,
/// saved by a SORT racing this delivery, is the same).
pub(super) async fn save_delivered_sort_keys(
    tx: &Transaction<'_>,
    hash: &[u8],
    keys: &[u8],
) -> Result<()> {
    tx.execute(
        &cached(
            tx,
            "INSERT INTO sort_keys(hash, keys) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING",
        )
        .await?,
        &[&hash, &keys],
    )
    .await?;
    Ok(())
}

/// Saves keys for the bodies of these messages (messages gone meanwhile are skipped).
pub(super) async fn save_sort_keys(
    tx: &Transaction<'_>,
    mailbox: MailboxId,
    keys: &[(u32, Vec<u8>)],
) -> Result<()> {
    let uids: Vec<i64> = keys.iter().map(|(u, _)| i64::from(*u)).collect();
    let values: Vec<&[u8]> = keys.iter().map(|(_, k)| k.as_slice()).collect();
    // One row per body (copies in one mailbox share it: the last given wins), in hash order
    // so concurrent savers lock the rows in one order.
    tx.execute(
        &cached(
            tx,
            "INSERT INTO sort_keys(hash, keys)
         SELECT DISTINCT ON (m.body_hash) m.body_hash, k.keys
         FROM unnest($2::bigint[], $3::bytea[]) WITH ORDINALITY AS k(uid, keys, n)
         JOIN messages m ON m.mailbox_id = $1 AND m.uid = k.uid
         ORDER BY m.body_hash, k.n DESC
         ON CONFLICT (hash) DO UPDATE SET keys = EXCLUDED.keys",
        )
        .await?,
        &[&mailbox, &uids, &values],
    )
    .await?;
    Ok(())
}
