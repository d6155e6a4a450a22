//! The per-account search vocabulary (`search_vocab`): which words each account's mail holds,
//! so a substring needle is expanded by scanning one account's words only. Words of expunged
//! mail are pruned when the writer is idle (see the parent module for the design).

use rusqlite::{Connection, OptionalExtension, params};
use std::collections::{BTreeSet, HashMap};

use super::{Indexer, LONG_MARK, TOKEN_MAX, Table, Tokens, quote, unindex};
use crate::{Result, UserId};

/// (account, token) pairs known to be in `search_vocab`, so most inserts skip the table.
/// Owned by the writer and cleared whenever a write may not have committed or words were
/// pruned: a pair in here must be in the table.
#[derive(Debug, Default)]
pub(in crate::sqlite) struct KnownTerms {
    by_user: HashMap<UserId, ahash::HashSet<String>>,
    len: usize,
}

impl KnownTerms {
    /// Bounds the writer's memory (some 10 MiB); past this the set starts over.
    const MAX: usize = 200_000;

    pub(in crate::sqlite) fn clear(&mut self) {
        self.by_user.clear();
        self.len = 0;
    }
}

/// Adds the words of a body that entered one of `user`'s mailboxes to that account's
/// vocabulary.
pub(in crate::sqlite) fn add_words(
    conn: &Connection,
    known: &mut KnownTerms,
    user: UserId,
    tokens: &Tokens,
) -> Result<()> {
    let mut add =
        conn.prepare_cached("INSERT OR IGNORE INTO search_vocab(user_id, term) VALUES (?1, ?2)")?;
    if known.len >= KnownTerms::MAX {
        known.clear();
    }
    let set = known.by_user.entry(user).or_default();
    for t in tokens.terms() {
        if t != LONG_MARK && !set.contains(t) {
            add.execute(params![user, t])?;
            set.insert(t.to_owned());
            known.len += 1;
        }
    }
    Ok(())
}

/// Mail left one of `user`'s mailboxes: its vocabulary is pruned when the writer is idle.
pub(in crate::sqlite) fn words_may_be_stale(
    conn: &Connection,
    index: &mut Indexer,
    user: UserId,
) -> Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO search_vocab_prune(user_id) VALUES (?1)")?
        .execute([user])?;
    index.prune_waiting = true;
    Ok(())
}

/// Words checked per pruning transaction: each is one or two index lookups.
pub(in crate::sqlite) const PRUNE_BATCH: usize = 256;
/// Longest a pruning transaction goes on checking words (the writer does nothing else then).
pub(super) const PRUNE_BUDGET: std::time::Duration = std::time::Duration::from_millis(20);

/// Checks up to `limit` words of an account marked in `search_vocab_prune` and deletes those
/// no body of its messages holds any more. Every waiting body must be indexed first (a word
/// of one would look unused). Returns how many words were deleted, or `None` when no account
/// is left to prune.
pub(in crate::sqlite) fn prune_words(
    conn: &Connection,
    known: &mut KnownTerms,
    limit: usize,
) -> Result<Option<usize>> {
    let next: Option<(UserId, String)> = conn
        .prepare_cached("SELECT user_id, after FROM search_vocab_prune LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((user, after)) = next else {
        return Ok(None);
    };
    let terms: Vec<String> = conn
        .prepare_cached(
            "SELECT term FROM search_vocab WHERE user_id = ?1 AND term > ?2 ORDER BY term LIMIT ?3",
        )?
        .query_map(params![user, after, limit as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut removed = 0;
    let started = std::time::Instant::now();
    let mut checked = 0;
    for t in &terms {
        checked += 1;
        if !occurs(conn, user, t)? {
            conn.prepare_cached("DELETE FROM search_vocab WHERE user_id = ?1 AND term = ?2")?
                .execute(params![user, t])?;
            removed += 1;
        }
        // A word common in other accounts' mail but gone from this one's walks many
        // postings: stop early rather than keep queued writes waiting.
        if started.elapsed() > PRUNE_BUDGET {
            break;
        }
    }
    match terms[..checked].last() {
        Some(last) if checked < terms.len() || terms.len() == limit => {
            conn.prepare_cached("UPDATE search_vocab_prune SET after = ?2 WHERE user_id = ?1")?
                .execute(params![user, last])?;
        }
        _ => {
            conn.prepare_cached("DELETE FROM search_vocab_prune WHERE user_id = ?1")?
                .execute([user])?;
        }
    }
    if removed > 0 {
        known.clear();
    }
    Ok(Some(removed))
}

/// Does a body of one of `user`'s messages hold `term`?
pub(super) fn occurs(conn: &Connection, user: UserId, term: &str) -> Result<bool> {
    for table in [Table::Body, Table::Header] {
        let sql = format!(
            "SELECT EXISTS(SELECT 1 FROM {t} s CROSS JOIN messages m ON m.blob_id = s.rowid
                 JOIN mailboxes b ON b.id = m.mailbox_id
                 WHERE {t} MATCH ?1 AND b.user_id = ?2)",
            t = table.name()
        );
        let found: bool = conn
            .prepare_cached(&sql)?
            .query_row(params![quote(term), user], |r| r.get(0))?;
        if found {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Schema version 4: the shared vocabulary (renamed `search_vocab_v3` if there was one) is
/// replaced by one per account, built from the index: each indexed word goes to the accounts
/// with a message whose body holds it (one pass over the index's postings, no body read).
/// Bodies indexed with a token longer than `TOKEN_MAX` (FTS5 kept up to 32 KiB of it) go
/// back to `search_pending`, to be indexed again from their text with the cap (and their
/// words added to their accounts' vocabularies then).
pub(in crate::sqlite) fn migrate_to_per_account_vocabulary(conn: &Connection) -> Result<()> {
    conn.execute_batch("DROP TABLE IF EXISTS search_vocab_v3")?;
    let mut reindex = BTreeSet::new();
    let mut words = 0u64;
    for table in [Table::Header, Table::Body] {
        let t = table.name();
        let terms: Vec<String> = conn
            .prepare(&format!("SELECT term FROM {t}_terms"))?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut holders = conn.prepare(&format!(
            "SELECT DISTINCT b.user_id FROM {t} s CROSS JOIN messages m ON m.blob_id = s.rowid
             JOIN mailboxes b ON b.id = m.mailbox_id WHERE {t} MATCH ?1"
        ))?;
        let mut bodies = conn.prepare(&format!("SELECT rowid FROM {t} WHERE {t} MATCH ?1"))?;
        let mut add =
            conn.prepare("INSERT OR IGNORE INTO search_vocab(user_id, term) VALUES (?1, ?2)")?;
        for term in terms {
            if term.len() > TOKEN_MAX {
                for id in bodies.query_map([quote(&term)], |r| r.get::<_, i64>(0))? {
                    reindex.insert(id?);
                }
                continue;
            }
            for user in holders.query_map([quote(&term)], |r| r.get::<_, UserId>(0))? {
                words += add.execute(params![user?, term])? as u64;
            }
        }
    }
    for &id in &reindex {
        unindex(conn, id)?;
        conn.prepare_cached("INSERT OR IGNORE INTO search_pending(blob_id) VALUES (?1)")?
            .execute([id])?;
    }
    tracing::info!(
        words,
        reindexed = reindex.len(),
        "search vocabulary is now per account (schema 4)"
    );
    Ok(())
}

/// The accounts with a message whose body is `blob_id`.
pub(super) fn users_of_blob(conn: &Connection, blob_id: i64) -> Result<Vec<UserId>> {
    Ok(conn
        .prepare_cached(
            "SELECT DISTINCT b.user_id FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
             WHERE m.blob_id = ?1",
        )?
        .query_map([blob_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}
