//! SEARCH TEXT / BODY: a word index that finds candidates, the message text that confirms them.
//!
//! IMAP wants case-insensitive substrings (RFC 9051 §6.4.4), which a trigram index answers
//! directly, but a trigram index with positions is about three times the size of the text and
//! was most of the data directory (2.9x Dovecot's Maildir for the same mail). Instead:
//!
//! - a body's tokens are its maximal runs of ASCII letters and digits, lowercased (cut here,
//!   not by SQLite, so the store knows them exactly). Two contentless FTS5 tables
//!   (`detail=none`: only which bodies hold a token; no copy of the text, no positions) index
//!   the header and the body part of the search text, fed the distinct tokens;
//! - `search_vocab` lists, per account, the tokens of that account's mail, so the tokens
//!   containing a piece of a needle are found by scanning the searching account's distinct
//!   words, not every posting (`fts5vocab` iterates all postings: 20-40 ms for 10,000 bodies
//!   whatever their vocabulary) and not other accounts' words (one account's 1.8 MB message
//!   of random words made every other account's infix search 10-30x slower). Bodies are
//!   shared between accounts and so is the FTS index; only the vocabulary is per account.
//!   A new body's words are added for the accounts holding it when it is indexed; a body
//!   already indexed that enters another account's mailbox adds its words there at once;
//! - the vocabulary is pruned: an expunge (or a deleted mailbox) marks the account in
//!   `search_vocab_prune`, and when the writer is idle it checks that account's words, a
//!   batch at a time, against the index (does a body of one of its messages still hold the
//!   word?) and deletes those that no longer occur. Chosen over reference counts per word,
//!   which would need every removed body read and tokenized again inside the expunge;
//!   checking a word is one index lookup, done only when there is time;
//! - tokens are at most `TOKEN_MAX` bytes. A longer run is indexed as its first `TOKEN_MAX`
//!   bytes, and its body also gets the token `LONG_MARK` (longer than any real token, so
//!   never one). FTS5 truncated such runs on its own (at 32 KiB) while the vocabulary kept
//!   them whole, so `check()` failed forever. A needle run longer than `TOKEN_MAX` is looked
//!   up by its first `TOKEN_MAX` bytes and confirmed; an infix or suffix run may lie past
//!   the cut of a long token, so the bodies with `LONG_MARK` are also candidates for it,
//!   confirmed against their text;
//! - a needle's ASCII runs are what the index can look up. A run with a character on both
//!   sides in the needle is a whole token; with one only on its left, a token prefix (FTS5
//!   prefix query); otherwise a suffix or an infix (vocabulary LIKE);
//! - a needle that is one such run and nothing else matches exactly the bodies holding a token
//!   that contains it, so the index answer is the answer (the common `SEARCH BODY word`);
//! - any other needle gets the bodies holding all its runs (a superset), each confirmed by
//!   decompressing the body and matching its search text. A needle without ASCII letters or
//!   digits (e.g. only CJK) confirms every message in range, as Dovecot without an FTS plugin.
//!
//! The index rowid is `blobs.id`, as the body's parsed info is.
//!
//! Indexing is deferred: a new body's tokens wait in the writer's memory (`Indexer`) and its
//! id in `search_pending`, written with the message. They are indexed in batches when the
//! writer has been idle a moment, between writes while the writer's load is light, and,
//! for one mailbox, before a search of it (as Dovecot's fts plugin indexes on search). FTS5
//! writes a segment per transaction and merges segments as they pile up, so indexing each
//! APPEND's body in its own small commit cost more than the rest of the commit (writer CPU
//! for 12,000 APPENDs: 2.6 s with, 1.1 s without); and under a heavy delivery load, indexing
//! even in batches took a quarter of the writer's time, which delivery needs (LMTP: 34 us a
//! body when the index is small, 84 us after 20 s). The tokens kept are bounded
//! (`Indexer::KEEP_MAX`); past it, and after a restart or a failed commit, or when an APPEND
//! dropped them to bound its own memory (`prepare::TOKENS_KEPT_MAX`), a body's tokens are
//! computed again from its text when it is indexed. Pruning indexes every waiting body
//! first, in its transaction, so no waiting body's word looks unused.

use rusqlite::{Connection, params};
use std::collections::{BTreeSet, HashMap};

use super::blobs::BlobDir;
use super::messages::{mailbox_state, sorted_uids};
use super::reads::{blob_of, body_by_id};
use crate::{MailboxId, Result, StoreError, UserId};

mod vocab;
pub(super) use vocab::*;

/// Both tables hold tokens only, deletable by rowid; the input is space-separated tokens, which
/// the `ascii` tokenizer splits back exactly. The fts5vocab tables are for `check()`.
pub(super) const SCHEMA: &str = "
CREATE VIRTUAL TABLE IF NOT EXISTS search_header USING fts5(text, content = '',
    contentless_delete = 1, detail = none, tokenize = 'ascii');
CREATE VIRTUAL TABLE IF NOT EXISTS search_body USING fts5(text, content = '',
    contentless_delete = 1, detail = none, tokenize = 'ascii');
CREATE TABLE IF NOT EXISTS search_vocab(
    user_id INTEGER NOT NULL,
    term TEXT NOT NULL,
    PRIMARY KEY(user_id, term)
) WITHOUT ROWID;
-- Accounts whose vocabulary may hold words no longer in their mail; `after`: the last word
-- checked so far.
CREATE TABLE IF NOT EXISTS search_vocab_prune(
    user_id INTEGER PRIMARY KEY,
    after TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS search_pending(blob_id INTEGER PRIMARY KEY);
-- Bodies already indexed that entered another account: their words wait to join that
-- account's vocabulary (see `Indexer::defer_words`).
CREATE TABLE IF NOT EXISTS search_vocab_pending(
    blob_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    PRIMARY KEY(blob_id, user_id)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS search_header_terms USING fts5vocab(search_header, row);
CREATE VIRTUAL TABLE IF NOT EXISTS search_body_terms USING fts5vocab(search_body, row);
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Header,
    Body,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Header => "search_header",
            Table::Body => "search_body",
        }
    }
}

/// The distinct tokens of a search text's header and body parts, as indexed: lowercased, in
/// no particular order, each part's joined by spaces (the form FTS5 is fed).
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Tokens {
    header: String,
    body: String,
}

impl Tokens {
    pub(super) fn of(text: &str, offset: usize) -> Tokens {
        let (header, body) = split_search_text(text, offset);
        Tokens {
            header: tokens(header),
            body: tokens(body),
        }
    }

    /// Bytes held.
    pub(super) fn len(&self) -> usize {
        self.header.len() + self.body.len()
    }

    /// Every token of both parts (a token in both comes twice).
    fn terms(&self) -> impl Iterator<Item = &str> {
        self.header
            .split(' ')
            .chain(self.body.split(' '))
            .filter(|t| !t.is_empty())
    }
}

/// Distinct, lowercased, joined by spaces. The text is lowercased once and its slices
/// deduplicated (aHash: fast, and randomly keyed, as message text is chosen by whoever sends
/// mail) before anything else is allocated. A 5 KB text has ~800 tokens, ~300 distinct; a
/// String per token, SipHash sets and sorting made tokenizing a tenth of the server's CPU
/// under an APPEND load (41 us per 5 KB text; 19 us now).
fn tokens(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    // Split as bytes: a token is ASCII, and every byte of a non-ASCII character is >= 0x80,
    // so no character is decoded.
    let mut distinct: ahash::HashSet<&[u8]> = ahash::HashSet::default();
    distinct.reserve(lower.len() / 16);
    let mut long = false;
    for t in lower.as_bytes().split(|b| !b.is_ascii_alphanumeric()) {
        if t.len() > TOKEN_MAX {
            long = true;
            distinct.insert(&t[..TOKEN_MAX]);
        } else if !t.is_empty() {
            distinct.insert(t);
        }
    }
    if long {
        distinct.insert(LONG_MARK.as_bytes());
    }
    let v: Vec<&[u8]> = distinct.into_iter().collect();
    let joined = v.join(&b' ');
    // ASCII letters, digits and spaces only.
    String::from_utf8(joined).unwrap_or_default()
}

/// Longest token indexed, in bytes (see the module doc).
pub(super) const TOKEN_MAX: usize = 128;

/// The token given to a body (part) holding a run longer than `TOKEN_MAX`: one byte longer
/// than that, so no real token is this.
pub(super) const LONG_MARK: &str = concat!(
    "x0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000"
);

/// The writer's side of the index: the vocabulary it knows is in `search_vocab` and the tokens
/// of bodies waiting in `search_pending`.
#[derive(Debug, Default)]
pub(super) struct Indexer {
    pub known: KnownTerms,
    /// Tokens by blob id, with the account whose APPEND brought the body. May hold entries
    /// of rolled-back jobs (a flush only uses the ids in `search_pending`, and a reused blob
    /// id gets its entry replaced).
    tokens: HashMap<i64, (Tokens, UserId)>,
    /// Tokens of known bodies whose words wait to join an account's vocabulary, by (blob
    /// id, account); may hold entries of rolled-back jobs, as `tokens`.
    words: HashMap<(i64, UserId), Tokens>,
    /// `search_pending` or `search_vocab_pending` may hold rows without tokens here (after a
    /// restart or a rollback).
    unknown: bool,
    /// `search_vocab_prune` may name accounts (see `prune_words`).
    pub prune_waiting: bool,
    /// Bytes of tokens held in `tokens` and `words`.
    kept: usize,
}

impl Indexer {
    /// Bodies indexed in one transaction when the writer has time for it.
    pub(super) const FLUSH_AT: usize = 256;
    /// Most bytes of tokens kept for bodies waiting: past it, a body's tokens are dropped
    /// and computed again from its text when it is indexed. Indexing waits for idle time or
    /// a search, so under a long delivery load the waiting bodies are not bounded, their
    /// tokens are. (Small in this crate's unit tests, to exercise the bound.)
    pub(super) const KEEP_MAX: usize = if cfg!(test) { 16 << 10 } else { 32 << 20 };

    /// The writer's state for a database whose `search_pending` may already hold bodies.
    pub(super) fn open(conn: &Connection) -> Indexer {
        let unknown = conn
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM search_pending)
                     OR EXISTS(SELECT 1 FROM search_vocab_pending)",
                [],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "reading search_pending");
                true
            });
        let prune_waiting = conn
            .query_row("SELECT EXISTS(SELECT 1 FROM search_vocab_prune)", [], |r| {
                r.get(0)
            })
            .unwrap_or(true);
        Indexer {
            unknown,
            prune_waiting,
            ..Indexer::default()
        }
    }

    /// How many bodies may be waiting (0: the index is complete as committed).
    pub(super) fn waiting(&self) -> usize {
        self.tokens.len() + self.words.len() + usize::from(self.unknown)
    }

    /// The tokens kept are within a quarter of [`Indexer::KEEP_MAX`]: APPENDs stop computing
    /// them (a message's tokens are about its text's size, far less than a quarter), and
    /// start again once indexing has freed room.
    pub(super) fn full(&self) -> bool {
        self.kept + Self::KEEP_MAX / 4 > Self::KEEP_MAX
    }

    /// Keeps `tokens` for a body unless the bound is reached; false if dropped.
    fn keep(&mut self, blob_id: i64, user: UserId, tokens: Tokens) -> bool {
        if self.kept + tokens.len() > Self::KEEP_MAX {
            self.forget(blob_id);
            return false;
        }
        self.kept += tokens.len();
        if let Some((old, _)) = self.tokens.insert(blob_id, (tokens, user)) {
            self.kept -= old.len();
        }
        true
    }

    /// Drops the tokens kept for a body.
    fn forget(&mut self, blob_id: i64) -> Option<(Tokens, UserId)> {
        let old = self.tokens.remove(&blob_id);
        if let Some((t, _)) = &old {
            self.kept -= t.len();
        }
        old
    }

    /// Drops the tokens kept for a (body, account) pair.
    fn forget_words(&mut self, blob_id: i64, user: UserId) -> Option<Tokens> {
        let old = self.words.remove(&(blob_id, user));
        if let Some(t) = &old {
            self.kept -= t.len();
        }
        old
    }

    /// A transaction or job was rolled back: what it added to the vocabulary and took from
    /// `search_pending` is undone, so neither is known any more.
    pub(super) fn rolled_back(&mut self) {
        self.known.clear();
        self.unknown = true;
        self.prune_waiting = true;
    }

    /// Queues the tokens of a new body, appended by `user`; the row is committed with the body.
    /// Without tokens, the flush computes them from the body.
    pub(super) fn defer(
        &mut self,
        conn: &Connection,
        blob_id: i64,
        user: UserId,
        tokens: Option<Tokens>,
    ) -> Result<()> {
        conn.prepare_cached("INSERT INTO search_pending(blob_id) VALUES (?1)")?
            .execute([blob_id])?;
        let kept = match tokens {
            Some(tokens) => self.keep(blob_id, user, tokens),
            None => {
                self.forget(blob_id);
                false
            }
        };
        if !kept {
            self.unknown = true;
        }
        Ok(())
    }

    /// A known body entered one of `user`'s mailboxes: its words join that account's
    /// vocabulary at the next flush (before any search), not in this commit. Adding them here
    /// wrote a few hundred vocabulary rows into every delivery of a body another account
    /// already had (each recipient after the first of an LMTP message): the 16-client APPEND
    /// benchmark spent more writer time in it than in anything but the commit itself.
    pub(super) fn defer_words(
        &mut self,
        conn: &Connection,
        blob_id: i64,
        user: UserId,
        tokens: Tokens,
    ) -> Result<()> {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO search_vocab_pending(blob_id, user_id) VALUES (?1, ?2)",
        )?
        .execute(params![blob_id, user])?;
        self.forget_words(blob_id, user);
        if self.kept + tokens.len() > Self::KEEP_MAX {
            // Read again from the body when its words are added.
            self.unknown = true;
        } else {
            self.kept += tokens.len();
            self.words.insert((blob_id, user), tokens);
        }
        Ok(())
    }

    /// Indexes a body again from its text at the next flush (adding its words to every
    /// account holding it).
    /// A body still waiting with its tokens here (an LMTP message's first recipient took it,
    /// in this batch or an earlier one) is not: `user`'s words are added from those tokens
    /// when it is indexed, instead of reading and tokenizing its text again.
    pub(super) fn reindex(&mut self, conn: &Connection, blob_id: i64, user: UserId) -> Result<()> {
        if self.tokens.contains_key(&blob_id) {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO search_vocab_pending(blob_id, user_id) VALUES (?1, ?2)",
            )?
            .execute(params![blob_id, user])?;
            return Ok(());
        }
        let queued = conn
            .prepare_cached("INSERT OR IGNORE INTO search_pending(blob_id) VALUES (?1)")?
            .execute([blob_id])?;
        if queued > 0 {
            unindex(conn, blob_id)?;
        }
        self.forget(blob_id);
        self.unknown = true;
        Ok(())
    }

    /// Removes a body's tokens, indexed or waiting (its last reference went). The vocabulary
    /// keeps them.
    pub(super) fn remove(&mut self, conn: &Connection, blob_id: i64) -> Result<()> {
        self.forget(blob_id);
        let mut dropped = 0;
        self.words.retain(|&(id, _), t| {
            let keep = id != blob_id;
            if !keep {
                dropped += t.len();
            }
            keep
        });
        self.kept -= dropped;
        conn.prepare_cached("DELETE FROM search_vocab_pending WHERE blob_id = ?1")?
            .execute([blob_id])?;
        let waiting = conn
            .prepare_cached("DELETE FROM search_pending WHERE blob_id = ?1")?
            .execute([blob_id])?;
        if waiting == 0 {
            unindex(conn, blob_id)?;
        }
        Ok(())
    }

    /// Indexes up to `limit` waiting bodies, oldest first, then adds the words of waiting
    /// (body, account) pairs to their vocabularies, up to `limit` in all; returns how many.
    pub(super) fn flush(
        &mut self,
        conn: &Connection,
        blobs: &BlobDir,
        limit: usize,
    ) -> Result<usize> {
        let ids: Vec<i64> = conn
            .prepare_cached("SELECT blob_id FROM search_pending ORDER BY blob_id LIMIT ?1")?
            .query_map([limit.min(i64::MAX as usize) as i64], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for &id in &ids {
            self.index_waiting(conn, blobs, id)?;
        }
        let left = limit - ids.len();
        let pairs: Vec<(i64, UserId)> = if left == 0 {
            Vec::new()
        } else {
            conn.prepare_cached("SELECT blob_id, user_id FROM search_vocab_pending LIMIT ?1")?
                .query_map([left.min(i64::MAX as usize) as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<rusqlite::Result<_>>()?
        };
        self.add_waiting_words(conn, blobs, &pairs)?;
        if ids.len() < limit {
            // `search_pending` is empty now: anything left here was rolled back.
            let dropped: usize = self.tokens.values().map(|(t, _)| t.len()).sum();
            self.tokens.clear();
            self.kept -= dropped;
            if pairs.len() < left {
                // So is `search_vocab_pending`.
                self.words.clear();
                self.kept = 0;
                self.unknown = false;
            }
        }
        Ok(ids.len() + pairs.len())
    }

    /// Indexes up to `limit` waiting bodies of one mailbox's messages, then adds the waiting
    /// words of its account (up to `limit` in all), so that a search of that mailbox sees all
    /// of its mail while other mailboxes' bodies go on waiting; returns how many (less than
    /// `limit`: none of them is left).
    pub(super) fn flush_mailbox(
        &mut self,
        conn: &Connection,
        blobs: &BlobDir,
        mailbox: MailboxId,
        limit: usize,
    ) -> Result<usize> {
        let limit_sql = limit.min(i64::MAX as usize) as i64;
        let ids: Vec<i64> = conn
            .prepare_cached(
                "SELECT DISTINCT m.blob_id FROM messages m
                 JOIN search_pending p ON p.blob_id = m.blob_id
                 WHERE m.mailbox_id = ?1 LIMIT ?2",
            )?
            .query_map(params![mailbox, limit_sql], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for &id in &ids {
            self.index_waiting(conn, blobs, id)?;
        }
        let left = limit - ids.len();
        if left == 0 {
            return Ok(ids.len());
        }
        let user = super::messages::owner(conn, mailbox)?;
        let pairs: Vec<(i64, UserId)> = conn
            .prepare_cached(
                "SELECT blob_id, user_id FROM search_vocab_pending WHERE user_id = ?1 LIMIT ?2",
            )?
            .query_map(params![user, left.min(i64::MAX as usize) as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        self.add_waiting_words(conn, blobs, &pairs)?;
        Ok(ids.len() + pairs.len())
    }

    /// Indexes one body of `search_pending` and adds its words to the vocabulary of every
    /// account waiting for them.
    fn index_waiting(&mut self, conn: &Connection, blobs: &BlobDir, id: i64) -> Result<()> {
        // The body's words go to the vocabulary of the account that appended it (or, when
        // computed again, of every account holding it): here, off the APPEND's commit, as
        // the index itself. Another account that took the body since added them then.
        let tokens = match self.forget(id) {
            Some((tokens, user)) => {
                add_words(conn, &mut self.known, user, &tokens)?;
                tokens
            }
            None => {
                // A body that cannot be read is indexed without words rather than retried
                // forever; `check` reports the unreadable body itself.
                let tokens = tokens_of_blob(conn, blobs, id).unwrap_or_else(|e| {
                    tracing::warn!(blob = id, error = %e, "body not indexed for search");
                    Tokens::default()
                });
                for user in users_of_blob(conn, id)? {
                    add_words(conn, &mut self.known, user, &tokens)?;
                }
                tokens
            }
        };
        index(conn, id, &tokens)?;
        conn.prepare_cached("DELETE FROM search_pending WHERE blob_id = ?1")?
            .execute([id])?;
        // Accounts waiting for this body's words get them from the same tokens.
        let waiting: Vec<UserId> = conn
            .prepare_cached("SELECT user_id FROM search_vocab_pending WHERE blob_id = ?1")?
            .query_map([id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for user in waiting {
            self.forget_words(id, user);
            add_words(conn, &mut self.known, user, &tokens)?;
        }
        conn.prepare_cached("DELETE FROM search_vocab_pending WHERE blob_id = ?1")?
            .execute([id])?;
        Ok(())
    }

    /// Adds the words of bodies already indexed to the vocabularies of accounts that took
    /// them since.
    fn add_waiting_words(
        &mut self,
        conn: &Connection,
        blobs: &BlobDir,
        pairs: &[(i64, UserId)],
    ) -> Result<()> {
        for &(id, user) in pairs {
            let tokens = match self.forget_words(id, user) {
                Some(tokens) => tokens,
                None => tokens_of_blob(conn, blobs, id).unwrap_or_else(|e| {
                    tracing::warn!(blob = id, error = %e, "body's words not added for search");
                    Tokens::default()
                }),
            };
            add_words(conn, &mut self.known, user, &tokens)?;
            conn.prepare_cached(
                "DELETE FROM search_vocab_pending WHERE blob_id = ?1 AND user_id = ?2",
            )?
            .execute(params![id, user])?;
        }
        Ok(())
    }
}

/// A body's tokens computed again from its text, as at delivery.
fn tokens_of_blob(conn: &Connection, blobs: &BlobDir, blob_id: i64) -> Result<Tokens> {
    let body = body_by_id(conn, blob_id)?.load(blobs)?;
    let (text, offset) = mailkeep_mime::search_text(&body);
    Ok(Tokens::of(&text, offset))
}

/// Indexes a new body's tokens (the vocabulary is the caller's: `add_words`).
pub(super) fn index(conn: &Connection, blob_id: i64, tokens: &Tokens) -> Result<()> {
    conn.prepare_cached("INSERT INTO search_header(rowid, text) VALUES (?1, ?2)")?
        .execute(params![blob_id, tokens.header])?;
    conn.prepare_cached("INSERT INTO search_body(rowid, text) VALUES (?1, ?2)")?
        .execute(params![blob_id, tokens.body])?;
    Ok(())
}

/// Removes an indexed body's tokens.
pub(super) fn unindex(conn: &Connection, blob_id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM search_header WHERE rowid = ?1")?
        .execute([blob_id])?;
    conn.prepare_cached("DELETE FROM search_body WHERE rowid = ?1")?
        .execute([blob_id])?;
    Ok(())
}

/// Splits at `offset`, moved back to a character boundary if it is not on one.
pub(super) fn split_search_text(text: &str, offset: usize) -> (&str, &str) {
    let mut off = offset.min(text.len());
    while !text.is_char_boundary(off) {
        off -= 1;
    }
    text.split_at(off)
}

/// UIDs among `uids` whose search text (its body part only, with `body_only`) contains
/// `needle`, case-insensitively.
pub(super) fn search_text(
    conn: &Connection,
    blobs: &BlobDir,
    mailbox: MailboxId,
    uids: &[u32],
    needle: &str,
    body_only: bool,
) -> Result<Vec<u32>> {
    // One read transaction: the index and the messages agree.
    let tx = conn.unchecked_transaction()?;
    let user = mailbox_state(&tx, mailbox)?.user;
    let wanted = sorted_uids(uids);
    let (Some(&lo), Some(&hi)) = (wanted.first(), wanted.last()) else {
        return Ok(Vec::new());
    };
    let runs = ascii_runs(needle);
    let tables: &[Table] = if body_only {
        &[Table::Body]
    } else {
        &[Table::Header, Table::Body]
    };
    // A needle that is one run of at most TOKEN_MAX is answered by the index, except for
    // the bodies found only through LONG_MARK, which are confirmed.
    let exact = runs.len() == 1 && runs[0].word.len() == needle.len() && needle.len() <= TOKEN_MAX;
    let mut alternatives = expand(&tx, user, &runs)?;
    let mark = quote(LONG_MARK);
    let unsure_mark = exact && alternatives[0].last() == Some(&mark);
    if unsure_mark {
        alternatives[0].pop();
    }
    let matching = |queries: &[String]| -> Result<BTreeSet<u32>> {
        let mut found = BTreeSet::new();
        for &table in tables {
            let sql = format!(
                // CROSS JOIN keeps the index lookup first: the planner otherwise may walk
                // the mailbox and evaluate the MATCH once per message.
                "SELECT m.uid FROM {t} s CROSS JOIN messages m ON m.blob_id = s.rowid
                 WHERE {t} MATCH ?1 AND m.mailbox_id = ?2 AND m.uid BETWEEN ?3 AND ?4",
                t = table.name()
            );
            let mut st = tx.prepare_cached(&sql)?;
            for q in queries {
                for uid in st.query_map(params![q, mailbox, lo, hi], |r| r.get(0))? {
                    found.insert(uid?);
                }
            }
        }
        Ok(found)
    };
    let in_range = |set: BTreeSet<u32>| -> Vec<u32> {
        set.into_iter()
            .filter(|u| wanted.binary_search(u).is_ok())
            .collect()
    };
    let candidates: Vec<u32> = if alternatives.is_empty() {
        // No run to look up: every message is a candidate.
        wanted.clone()
    } else if alternatives[0].is_empty() {
        Vec::new()
    } else {
        in_range(matching(&queries(&alternatives))?)
    };
    if !exact {
        return confirm(&tx, blobs, mailbox, &candidates, needle, body_only);
    }
    if !unsure_mark {
        return Ok(candidates);
    }
    let unsure: Vec<u32> = in_range(matching(&[mark])?)
        .into_iter()
        .filter(|u| candidates.binary_search(u).is_err())
        .collect();
    let mut out = candidates;
    out.extend(confirm(&tx, blobs, mailbox, &unsure, needle, body_only)?);
    out.sort_unstable();
    Ok(out)
}

/// A maximal run of ASCII letters and digits in the needle, lowercased, and whether the needle
/// has a character right before / after it (then the run starts / ends a token).
#[derive(Debug, PartialEq)]
struct Run {
    word: String,
    starts_word: bool,
    ends_word: bool,
}

fn ascii_runs(needle: &str) -> Vec<Run> {
    let chars: Vec<char> = needle.chars().collect();
    let separator = |i: usize| chars.get(i).is_some_and(|c| !c.is_ascii_alphanumeric());
    let mut runs = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].is_ascii_alphanumeric() {
            i += 1;
        }
        runs.push(Run {
            word: chars[start..i]
                .iter()
                .collect::<String>()
                .to_ascii_lowercase(),
            starts_word: start > 0 && separator(start - 1),
            ends_word: separator(i),
        });
    }
    runs
}

/// Terms per MATCH query when a run expands to many vocabulary words.
const TERMS_PER_QUERY: usize = 256;
/// A run that expands to more words than this is left out of a needle with other runs (the
/// others narrow enough; confirming covers the rest).
const TERMS_MAX_BESIDE: usize = 1024;

/// Each run as the quoted FTS5 terms that may hold it (a body matching one of a run's terms
/// may hold the run), narrowest run first; `quote(LONG_MARK)`, when a run may lie past the
/// cut of a long token, is its last term.
fn expand(conn: &Connection, user: UserId, runs: &[Run]) -> Result<Vec<Vec<String>>> {
    let mut alternatives: Vec<Vec<String>> = Vec::new();
    for run in runs {
        // Tokens are indexed cut to TOKEN_MAX; so is what is looked up (then confirmed).
        let word = &run.word[..run.word.len().min(TOKEN_MAX)];
        let alt = match (run.starts_word, run.ends_word) {
            (true, true) => vec![quote(word)],
            (true, false) => vec![format!("{}*", quote(word))],
            (false, ends) => {
                let mut terms = if run.word.len() > TOKEN_MAX {
                    // Only a cut token can hold it, past its cut.
                    Vec::new()
                } else {
                    let pattern = if ends {
                        format!("%{word}")
                    } else {
                        format!("%{word}%")
                    };
                    // The run is ASCII alphanumeric: no LIKE wildcards of its own. Only this
                    // account's words are scanned.
                    conn.prepare_cached(
                        "SELECT term FROM search_vocab WHERE user_id = ?1 AND term LIKE ?2",
                    )?
                    .query_map(params![user, pattern], |r| r.get::<_, String>(0))?
                    .map(|t| t.map(|t| quote(&t)))
                    .collect::<rusqlite::Result<Vec<_>>>()?
                };
                terms.push(quote(LONG_MARK));
                terms
            }
        };
        alternatives.push(alt);
    }
    alternatives.sort_by_key(Vec::len);
    Ok(alternatives)
}

/// The MATCH queries whose union holds every body holding all runs: the narrowest run split
/// over several queries if it must be, the others ANDed to each unless too broad to help.
fn queries(alternatives: &[Vec<String>]) -> Vec<String> {
    let rest: Vec<String> = alternatives[1..]
        .iter()
        .filter(|a| a.len() <= TERMS_MAX_BESIDE)
        .map(|a| format!("({})", a.join(" OR ")))
        .collect();
    alternatives[0]
        .chunks(TERMS_PER_QUERY)
        .map(|chunk| {
            let mut q = format!("({})", chunk.join(" OR "));
            for r in &rest {
                q.push_str(" AND ");
                q.push_str(r);
            }
            q
        })
        .collect()
}

/// An FTS5 string: one token (terms come from the index, runs are alphanumeric).
fn quote(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

/// Keeps the candidates whose text really contains the needle: read each body, extract its
/// search text as at delivery, match.
fn confirm(
    conn: &Connection,
    blobs: &BlobDir,
    mailbox: MailboxId,
    candidates: &[u32],
    needle: &str,
    body_only: bool,
) -> Result<Vec<u32>> {
    let matcher = Matcher::new(needle);
    let mut out = Vec::new();
    for &uid in candidates {
        let data = match blob_of(conn, mailbox, uid) {
            Ok(body) => body.load(blobs)?,
            Err(StoreError::NoSuchMailbox) => continue,
            Err(e) => return Err(e),
        };
        let (text, offset) = mailkeep_mime::search_text(&data);
        let (header, body) = split_search_text(&text, offset);
        if matcher.is_in(body) || (!body_only && matcher.is_in(header)) {
            out.push(uid);
        }
    }
    Ok(out)
}

/// Case-insensitive substring test; ASCII needles (the common case) compare bytes in place
/// instead of lowercasing every text.
enum Matcher {
    Ascii(Vec<u8>),
    Unicode(String),
}

impl Matcher {
    fn new(needle: &str) -> Matcher {
        if needle.is_ascii() {
            Matcher::Ascii(needle.to_ascii_lowercase().into_bytes())
        } else {
            Matcher::Unicode(needle.to_lowercase())
        }
    }

    fn is_in(&self, text: &str) -> bool {
        match self {
            Matcher::Ascii(n) if n.is_empty() => true,
            Matcher::Ascii(n) => text
                .as_bytes()
                .windows(n.len())
                .any(|w| w.eq_ignore_ascii_case(n)),
            Matcher::Unicode(n) => text.to_lowercase().contains(n.as_str()),
        }
    }
}

#[cfg(test)]
mod lazy_tests;
#[cfg(test)]
mod tests;
