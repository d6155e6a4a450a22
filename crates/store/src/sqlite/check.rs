//! `mailkeep check`: the index and the body files agree.

use rusqlite::{Connection, params};
use std::collections::{HashMap, HashSet};

use super::blobs::{BlobDir, DICT_DIR, hash_from_sql, sha256};
use super::reads::BodyRef;
use super::search::{LONG_MARK, TOKEN_MAX};
use crate::{Result, flags};

pub(super) fn check(conn: &Connection, blobs: &BlobDir) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    // One snapshot, so counts and refcounts are compared at the same moment.
    let tx = conn.unchecked_transaction()?;
    // FTS5 keeps the index structure per connection, and its integrity check uses it as is:
    // after another connection wrote it reports a "malformed inverted index" that is not
    // there (SQLite 3.46 to 3.50). A query first reloads the structure in this transaction.
    tx.query_row(
        "SELECT (SELECT count(*) FROM search_header WHERE search_header MATCH 'zzz')
              + (SELECT count(*) FROM search_body WHERE search_body MATCH 'zzz')",
        [],
        |r| r.get::<_, i64>(0),
    )?;
    let mut st = tx.prepare("PRAGMA integrity_check")?;
    for r in st.query_map([], |r| r.get::<_, String>(0))? {
        let r = r?;
        if r != "ok" {
            problems.push(format!("sqlite: {r}"));
        }
    }

    super::quota::check(&tx, &mut problems)?;
    let refs: HashMap<i64, i64> = tx
        .prepare(
            "SELECT blob_id, count(*) FROM (SELECT blob_id FROM messages
             UNION ALL SELECT blob_id FROM expunged WHERE blob_id IS NOT NULL) GROUP BY blob_id",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut known = HashSet::new();
    let mut seen_ids = HashSet::new();
    let mut st = tx.prepare(
        "SELECT b.id, b.hash, b.size, b.refcount, d.data FROM blobs b
         LEFT JOIN bodies d ON d.id = b.id",
    )?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (id, hash, size, refcount, inline): (i64, Vec<u8>, i64, i64, Option<Vec<u8>>) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        seen_ids.insert(id);
        let Ok(hash) = hash_from_sql(&hash) else {
            problems.push(format!("blob {id}: malformed hash"));
            continue;
        };
        known.insert(hex::encode(hash));
        let name = hex::encode(hash);
        let actual = refs.get(&id).copied().unwrap_or(0);
        if actual != refcount {
            problems.push(format!(
                "blob {name}: refcount {refcount}, referenced by {actual} messages"
            ));
        }
        let body = BodyRef {
            hash,
            size: size as u64,
            inline,
        };
        match body.load(blobs) {
            Ok(data) if sha256(&data) != hash => {
                problems.push(format!("blob {name}: content does not match hash"))
            }
            Ok(_) => {}
            Err(e) => problems.push(e.to_string()),
        }
    }
    let stray: i64 = tx.query_row(
        "SELECT count(*) FROM bodies WHERE id NOT IN (SELECT id FROM blobs)",
        [],
        |r| r.get(0),
    )?;
    if stray > 0 {
        problems.push(format!("{stray} bodies in the index belong to no blob row"));
    }
    for (id, n) in &refs {
        if !seen_ids.contains(id) {
            problems.push(format!("{n} messages refer to missing blob row {id}"));
        }
    }

    let bad: i64 = tx.query_row(
        "SELECT count(*) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
         WHERE m.uid >= b.uidnext OR m.modseq > b.highest_modseq",
        [],
        |r| r.get(0),
    )?;
    if bad > 0 {
        problems.push(format!(
            "{bad} messages have a UID or modseq beyond their mailbox's counters"
        ));
    }
    let mut st = tx.prepare(
        "SELECT b.name FROM mailboxes b LEFT JOIN (
             SELECT mailbox_id, count(*) AS n, sum((flags & ?1) = 0) AS unseen,
                    sum((flags & ?2) != 0) AS deleted, sum(size) AS size
             FROM messages GROUP BY mailbox_id) c ON c.mailbox_id = b.id
         WHERE b.messages != coalesce(c.n, 0) OR b.unseen != coalesce(c.unseen, 0)
            OR b.deleted != coalesce(c.deleted, 0) OR b.size != coalesce(c.size, 0)",
    )?;
    for name in st.query_map([flags::SEEN, flags::DELETED], |r| r.get::<_, String>(0))? {
        problems.push(format!(
            "mailbox {}: STATUS counters disagree with its messages",
            name?
        ));
    }
    // The search index follows the blob: one row per body in each table (or the body waits
    // in search_pending, not yet indexed), none left behind.
    let pending_stale: i64 = tx.query_row(
        "SELECT count(*) FROM search_pending WHERE blob_id NOT IN (SELECT id FROM blobs)",
        [],
        |r| r.get(0),
    )?;
    if pending_stale > 0 {
        problems.push(format!(
            "{pending_stale} bodies waiting for the search index do not exist"
        ));
    }
    for table in ["search_header", "search_body"] {
        let (unindexed, stale): (i64, i64) = tx.query_row(
            &format!(
                "SELECT (SELECT count(*) FROM blobs b WHERE NOT EXISTS
                            (SELECT 1 FROM {table} s WHERE s.rowid = b.id)
                            AND b.id NOT IN (SELECT blob_id FROM search_pending)),
                        (SELECT count(*) FROM {table} WHERE rowid NOT IN (SELECT id FROM blobs))"
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if unindexed > 0 {
            problems.push(format!("{unindexed} message bodies are not in {table}"));
        }
        if stale > 0 {
            problems.push(format!("{stale} rows of {table} belong to no message body"));
        }
        // Infix search finds words through the vocabulary: an indexed word of a message's
        // body missing there would never be found that way. (Words of bodies only expunged
        // messages still hold, for their grace period, are pruned from it.) Tokens are cut
        // at TOKEN_MAX when indexed, so the two always agree on a word's spelling.
        let absent: Vec<String> = tx
            .prepare(&format!(
                "SELECT term FROM {table}_terms
                 WHERE length(term) <= ?1 AND term NOT IN (SELECT term FROM search_vocab)"
            ))?
            .query_map([TOKEN_MAX as i64], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut held = tx.prepare(&format!(
            "SELECT EXISTS(SELECT 1 FROM {table} s CROSS JOIN messages m ON m.blob_id = s.rowid
             WHERE {table} MATCH ?1)"
        ))?;
        let mut missing = 0;
        for term in &absent {
            let quoted = format!("\"{term}\"");
            if held.query_row([quoted], |r| r.get::<_, bool>(0))? {
                missing += 1;
            }
        }
        if missing > 0 {
            problems.push(format!(
                "{missing} words of {table} are missing from search_vocab"
            ));
        }
        let long: i64 = tx.query_row(
            &format!("SELECT count(*) FROM {table}_terms WHERE length(term) > ?1 AND term != ?2"),
            params![TOKEN_MAX as i64, LONG_MARK],
            |r| r.get(0),
        )?;
        if long > 0 {
            problems.push(format!(
                "{long} words of {table} are longer than {TOKEN_MAX} bytes"
            ));
        }
    }
    let orphans: i64 = tx.query_row(
        "SELECT count(*) FROM messages WHERE mailbox_id NOT IN (SELECT id FROM mailboxes)",
        [],
        |r| r.get(0),
    )?;
    if orphans > 0 {
        problems.push(format!("{orphans} messages belong to no mailbox"));
    }

    // Files the index does not know (a crash between writing a body and committing).
    for shard in std::fs::read_dir(blobs.root())? {
        let shard = shard?;
        // `dict/` holds the zstd dictionaries, which open() has already loaded and checked.
        if !shard.file_type()?.is_dir() || shard.file_name() == DICT_DIR {
            continue;
        }
        let prefix = shard.file_name().to_string_lossy().into_owned();
        for f in std::fs::read_dir(shard.path())? {
            let name = f?.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") {
                continue;
            }
            let full = format!("{prefix}{name}");
            if !known.contains(&full) {
                problems.push(format!("blob file {full} is not in the index"));
            }
        }
    }
    Ok(problems)
}
