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
use std::collections::BTreeSet;

use super::blobs::BlobDir;
use super::messages::{mailbox_state, sorted_uids};
use super::reads::blob_of;
use crate::{MailboxId, Result, StoreError, UserId};

mod indexer;
mod vocab;
pub(super) use indexer::*;
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
