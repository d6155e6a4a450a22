//! The writer's side of the index: bodies waiting in `search_pending`, their tokens kept in
//! memory up to a bound, and the flushes that index them (see the module doc of `search`).

use rusqlite::{Connection, params};
use std::collections::HashMap;

use super::{KnownTerms, Tokens, add_words, users_of_blob};
use crate::sqlite::blobs::BlobDir;
use crate::sqlite::reads::body_by_id;
use crate::{MailboxId, Result, UserId};

/// The writer's side of the index: the vocabulary it knows is in `search_vocab` and the tokens
/// of bodies waiting in `search_pending`.
#[derive(Debug, Default)]
pub(in crate::sqlite) struct Indexer {
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
    /// Bodies waiting before the writer indexes them between writes (when its load is light).
    pub(in crate::sqlite) const FLUSH_AT: usize = 256;
    /// Most bodies (and waiting word pairs) indexed in one write transaction.
    pub(in crate::sqlite) const BATCH: usize = 4 * Self::FLUSH_AT;
    /// Most bytes of tokens kept for bodies waiting: past it, a body's tokens are dropped
    /// and computed again from its text when it is indexed. Indexing waits for idle time or
    /// a search, so under a long delivery load the waiting bodies are not bounded, their
    /// tokens are. (Small in this crate's unit tests, to exercise the bound.)
    pub(in crate::sqlite) const KEEP_MAX: usize = if cfg!(test) { 16 << 10 } else { 32 << 20 };

    /// The writer's state for a database whose `search_pending` may already hold bodies.
    pub(in crate::sqlite) fn open(conn: &Connection) -> Indexer {
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
    pub(in crate::sqlite) fn waiting(&self) -> usize {
        self.tokens.len() + self.words.len() + usize::from(self.unknown)
    }

    /// The tokens kept are within a quarter of [`Indexer::KEEP_MAX`]: APPENDs stop computing
    /// them (a message's tokens are about its text's size, far less than a quarter), and
    /// start again once indexing has freed room.
    pub(in crate::sqlite) fn full(&self) -> bool {
        self.kept + Self::KEEP_MAX / 4 > Self::KEEP_MAX
    }

    /// Keeps `tokens` for a body (replacing any) unless the bound is reached; false if not.
    fn keep(&mut self, blob_id: i64, user: UserId, tokens: Tokens) -> bool {
        self.forget(blob_id);
        if !self.room_for(&tokens) {
            return false;
        }
        self.kept += tokens.len();
        self.tokens.insert(blob_id, (tokens, user));
        true
    }

    /// Keeps `tokens` for a (body, account) pair, as `keep`.
    fn keep_words(&mut self, blob_id: i64, user: UserId, tokens: Tokens) -> bool {
        self.forget_words(blob_id, user);
        if !self.room_for(&tokens) {
            return false;
        }
        self.kept += tokens.len();
        self.words.insert((blob_id, user), tokens);
        true
    }

    fn room_for(&self, tokens: &Tokens) -> bool {
        self.kept + tokens.len() <= Self::KEEP_MAX
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
    pub(in crate::sqlite) fn rolled_back(&mut self) {
        self.known.clear();
        self.unknown = true;
        self.prune_waiting = true;
    }

    /// Queues the tokens of a new body, appended by `user`; the row is committed with the body.
    /// Without tokens, the flush computes them from the body.
    pub(in crate::sqlite) fn defer(
        &mut self,
        conn: &Connection,
        blob_id: i64,
        user: UserId,
        tokens: Option<Tokens>,
    ) -> Result<()> {
        conn.prepare_cached("INSERT INTO search_pending(blob_id) VALUES (?1)")?
            .execute([blob_id])?;
        self.forget(blob_id);
        if !tokens.is_some_and(|t| self.keep(blob_id, user, t)) {
            self.unknown = true;
        }
        Ok(())
    }

    /// A known body entered one of `user`'s mailboxes: its words join that account's
    /// vocabulary at the next flush (before any search), not in this commit. Adding them here
    /// wrote a few hundred vocabulary rows into every delivery of a body another account
    /// already had (each recipient after the first of an LMTP message): the 16-client APPEND
    /// benchmark spent more writer time in it than in anything but the commit itself.
    pub(in crate::sqlite) fn defer_words(
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
        if !self.keep_words(blob_id, user, tokens) {
            // Read again from the body when its words are added.
            self.unknown = true;
        }
        Ok(())
    }

    /// Indexes a body again from its text at the next flush (adding its words to every
    /// account holding it).
    /// A body still waiting with its tokens here (an LMTP message's first recipient took it,
    /// in this batch or an earlier one) is not: `user`'s words are added from those tokens
    /// when it is indexed, instead of reading and tokenizing its text again.
    pub(in crate::sqlite) fn reindex(
        &mut self,
        conn: &Connection,
        blob_id: i64,
        user: UserId,
    ) -> Result<()> {
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
    pub(in crate::sqlite) fn remove(&mut self, conn: &Connection, blob_id: i64) -> Result<()> {
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
    pub(in crate::sqlite) fn flush(
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
    pub(in crate::sqlite) fn flush_mailbox(
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
        let user = crate::sqlite::messages::owner(conn, mailbox)?;
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
pub(in crate::sqlite) fn index(conn: &Connection, blob_id: i64, tokens: &Tokens) -> Result<()> {
    conn.prepare_cached("INSERT INTO search_header(rowid, text) VALUES (?1, ?2)")?
        .execute(params![blob_id, tokens.header])?;
    conn.prepare_cached("INSERT INTO search_body(rowid, text) VALUES (?1, ?2)")?
        .execute(params![blob_id, tokens.body])?;
    Ok(())
}

/// Removes an indexed body's tokens.
pub(in crate::sqlite) fn unindex(conn: &Connection, blob_id: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM search_header WHERE rowid = ?1")?
        .execute([blob_id])?;
    conn.prepare_cached("DELETE FROM search_body WHERE rowid = ?1")?
        .execute([blob_id])?;
    Ok(())
}
