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
//! - `search_vocab` lists every token ever indexed, so the tokens containing a piece of a
//!   needle are found by scanning distinct words, not every posting (`fts5vocab` iterates all
//!   postings: 20-40 ms for 10,000 bodies whatever their vocabulary). Tokens are never removed
//!   from it; one that no longer occurs matches nothing;
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
//! id in `search_pending`, written with the message; they are indexed in batches of up to
//! `Indexer::FLUSH_AT` bodies, when the writer has been idle a moment, and before any search.
//! FTS5 writes a segment per transaction and merges segments as they pile up, so indexing
//! each APPEND's body in its own small commit cost more than the rest of the commit (writer
//! CPU for 12,000 APPENDs: 2.6 s with, 1.1 s without). A body still waiting after a restart
//! (or a failed commit) has its tokens computed again from its text.

use rusqlite::{Connection, params};
use std::collections::{BTreeSet, HashMap};

use super::blobs::BlobDir;
use super::messages::{mailbox_state, sorted_uids};
use super::reads::{blob_of, body_by_id};
use crate::{MailboxId, Result, StoreError};

/// Both tables hold tokens only, deletable by rowid; the input is space-separated tokens, which
/// the `ascii` tokenizer splits back exactly. The fts5vocab tables are for `check()`.
pub(super) const SCHEMA: &str = "
CREATE VIRTUAL TABLE IF NOT EXISTS search_header USING fts5(text, content = '',
    contentless_delete = 1, detail = none, tokenize = 'ascii');
CREATE VIRTUAL TABLE IF NOT EXISTS search_body USING fts5(text, content = '',
    contentless_delete = 1, detail = none, tokenize = 'ascii');
CREATE TABLE IF NOT EXISTS search_vocab(term TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS search_pending(blob_id INTEGER PRIMARY KEY);
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
    distinct.extend(
        lower
            .as_bytes()
            .split(|b| !b.is_ascii_alphanumeric())
            .filter(|t| !t.is_empty()),
    );
    let v: Vec<&[u8]> = distinct.into_iter().collect();
    let joined = v.join(&b' ');
    // ASCII letters, digits and spaces only.
    String::from_utf8(joined).unwrap_or_default()
}

/// Tokens known to be in `search_vocab`, so most inserts skip the table. Owned by the writer
/// and cleared whenever a write may not have committed: a term in here must be in the table.
#[derive(Debug, Default)]
pub(super) struct KnownTerms {
    set: ahash::HashSet<String>,
}

impl KnownTerms {
    /// Bounds the writer's memory (some 10 MiB); past this the set starts over.
    const MAX: usize = 200_000;

    pub(super) fn clear(&mut self) {
        self.set.clear();
    }
}

/// The writer's side of the index: the vocabulary it knows is in `search_vocab` and the tokens
/// of bodies waiting in `search_pending`.
#[derive(Debug, Default)]
pub(super) struct Indexer {
    pub known: KnownTerms,
    /// Tokens by blob id. May hold entries of rolled-back jobs (a flush only uses the ids in
    /// `search_pending`, and a reused blob id gets its entry replaced).
    tokens: HashMap<i64, Tokens>,
    /// `search_pending` may hold ids without tokens here (after a restart or a rollback).
    unknown: bool,
}

impl Indexer {
    /// Bodies waiting before the writer indexes them without waiting for idle time.
    pub(super) const FLUSH_AT: usize = 256;

    /// The writer's state for a database whose `search_pending` may already hold bodies.
    pub(super) fn open(conn: &Connection) -> Indexer {
        let unknown = conn
            .query_row("SELECT EXISTS(SELECT 1 FROM search_pending)", [], |r| {
                r.get(0)
            })
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "reading search_pending");
                true
            });
        Indexer {
            unknown,
            ..Indexer::default()
        }
    }

    /// How many bodies may be waiting (0: the index is complete as committed).
    pub(super) fn waiting(&self) -> usize {
        self.tokens.len() + usize::from(self.unknown)
    }

    /// A transaction or job was rolled back: what it added to the vocabulary and took from
    /// `search_pending` is undone, so neither is known any more.
    pub(super) fn rolled_back(&mut self) {
        self.known.clear();
        self.unknown = true;
    }

    /// Queues a new body's tokens; the row is committed with the body.
    pub(super) fn defer(&mut self, conn: &Connection, blob_id: i64, tokens: Tokens) -> Result<()> {
        conn.prepare_cached("INSERT INTO search_pending(blob_id) VALUES (?1)")?
            .execute([blob_id])?;
        self.tokens.insert(blob_id, tokens);
        Ok(())
    }

    /// Removes a body's tokens, indexed or waiting (its last reference went). The vocabulary
    /// keeps them.
    pub(super) fn remove(&mut self, conn: &Connection, blob_id: i64) -> Result<()> {
        self.tokens.remove(&blob_id);
        let waiting = conn
            .prepare_cached("DELETE FROM search_pending WHERE blob_id = ?1")?
            .execute([blob_id])?;
        if waiting == 0 {
            unindex(conn, blob_id)?;
        }
        Ok(())
    }

    /// Indexes up to `limit` waiting bodies, oldest first; returns how many.
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
            let tokens = match self.tokens.remove(&id) {
                Some(t) => t,
                // A body that cannot be read is indexed without words rather than retried
                // forever; `check` reports the unreadable body itself.
                None => tokens_of_blob(conn, blobs, id).unwrap_or_else(|e| {
                    tracing::warn!(blob = id, error = %e, "body not indexed for search");
                    Tokens::default()
                }),
            };
            index(conn, &mut self.known, id, &tokens)?;
            conn.prepare_cached("DELETE FROM search_pending WHERE blob_id = ?1")?
                .execute([id])?;
        }
        if ids.len() < limit {
            // `search_pending` is empty now: anything left here was rolled back.
            self.tokens.clear();
            self.unknown = false;
        }
        Ok(ids.len())
    }
}

/// A body's tokens computed again from its text, as at delivery.
fn tokens_of_blob(conn: &Connection, blobs: &BlobDir, blob_id: i64) -> Result<Tokens> {
    let body = body_by_id(conn, blob_id)?.load(blobs)?;
    let (text, offset) = mailkeep_mime::search_text(&body);
    Ok(Tokens::of(&text, offset))
}

/// Indexes a new body's tokens.
pub(super) fn index(
    conn: &Connection,
    known: &mut KnownTerms,
    blob_id: i64,
    tokens: &Tokens,
) -> Result<()> {
    conn.prepare_cached("INSERT INTO search_header(rowid, text) VALUES (?1, ?2)")?
        .execute(params![blob_id, tokens.header])?;
    conn.prepare_cached("INSERT INTO search_body(rowid, text) VALUES (?1, ?2)")?
        .execute(params![blob_id, tokens.body])?;
    let mut add = conn.prepare_cached("INSERT OR IGNORE INTO search_vocab(term) VALUES (?1)")?;
    for t in tokens.terms() {
        if !known.set.contains(t) {
            add.execute([t])?;
            if known.set.len() >= KnownTerms::MAX {
                known.set.clear();
            }
            known.set.insert(t.to_owned());
        }
    }
    Ok(())
}

/// Removes an indexed body's tokens.
fn unindex(conn: &Connection, blob_id: i64) -> Result<()> {
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
    mailbox_state(&tx, mailbox)?;
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
    let mut found = BTreeSet::new();
    let mut everything = false;
    let plan = plan(&tx, &runs)?;
    for &table in tables {
        match &plan {
            Plan::Nothing => {}
            Plan::Everything => everything = true,
            Plan::Match(queries) => {
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
        }
    }
    let exact = runs.len() == 1 && runs[0].word.len() == needle.len();
    let candidates: Vec<u32> = if everything {
        wanted.clone()
    } else {
        found
            .into_iter()
            .filter(|u| wanted.binary_search(u).is_ok())
            .collect()
    };
    if exact {
        return Ok(candidates);
    }
    confirm(&tx, blobs, mailbox, &candidates, needle, body_only)
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

enum Plan {
    /// No body in this table can match.
    Nothing,
    /// The index cannot narrow it down: every message is a candidate.
    Everything,
    /// The union of these MATCH queries holds every match.
    Match(Vec<String>),
}

/// Terms per MATCH query when a run expands to many vocabulary words.
const TERMS_PER_QUERY: usize = 256;
/// A run that expands to more words than this is left out of a needle with other runs (the
/// others narrow enough; confirming covers the rest).
const TERMS_MAX_BESIDE: usize = 1024;

fn plan(conn: &Connection, runs: &[Run]) -> Result<Plan> {
    // Each run becomes the words that may hold it, best (fewest) first.
    let mut alternatives: Vec<Vec<String>> = Vec::new();
    for run in runs {
        let alt = match (run.starts_word, run.ends_word) {
            (true, true) => vec![quote(&run.word)],
            (true, false) => vec![format!("{}*", quote(&run.word))],
            (false, ends) => {
                let pattern = if ends {
                    format!("%{}", run.word)
                } else {
                    format!("%{}%", run.word)
                };
                // The run is ASCII alphanumeric: no LIKE wildcards of its own.
                let terms = conn
                    .prepare_cached("SELECT term FROM search_vocab WHERE term LIKE ?1")?
                    .query_map([pattern], |r| r.get::<_, String>(0))?
                    .map(|t| t.map(|t| quote(&t)))
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                if terms.is_empty() {
                    return Ok(Plan::Nothing);
                }
                terms
            }
        };
        alternatives.push(alt);
    }
    alternatives.sort_by_key(Vec::len);
    let Some(first) = alternatives.first() else {
        return Ok(Plan::Everything);
    };
    // The narrowest run is split over several queries if it must be; the others are ANDed
    // to each, unless they are too broad to help.
    let rest: Vec<String> = alternatives[1..]
        .iter()
        .filter(|a| a.len() <= TERMS_MAX_BESIDE)
        .map(|a| format!("({})", a.join(" OR ")))
        .collect();
    let queries = first
        .chunks(TERMS_PER_QUERY)
        .map(|chunk| {
            let mut q = format!("({})", chunk.join(" OR "));
            for r in &rest {
                q.push_str(" AND ");
                q.push_str(r);
            }
            q
        })
        .collect();
    Ok(Plan::Match(queries))
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
mod tests {
    use super::*;

    #[test]
    fn matcher() {
        for (needle, text, want) in [
            ("", "", true),
            ("ab", "xxAB", true),
            ("aB", "a b", false),
            ("ü", "GRÜSSE", true),
            ("Ü", "grüße", true),
            ("é", "e", false),
            ("x", "", false),
        ] {
            assert_eq!(
                Matcher::new(needle).is_in(text),
                want,
                "{needle:?} in {text:?}"
            );
        }
    }

    #[test]
    fn runs() {
        let r = |w: &str, s, e| Run {
            word: w.into(),
            starts_word: s,
            ends_word: e,
        };
        assert_eq!(ascii_runs("Word"), vec![r("word", false, false)]);
        assert_eq!(
            ascii_runs("a.b@Example.com "),
            vec![
                r("a", false, true),
                r("b", true, true),
                r("example", true, true),
                r("com", true, true)
            ]
        );
        // Tokens are ASCII only: a non-ASCII letter ends one.
        assert_eq!(
            ascii_runs("grüße x"),
            vec![
                r("gr", false, true),
                r("e", true, true),
                r("x", true, false)
            ]
        );
        assert_eq!(ascii_runs("日本語"), vec![]);
        assert_eq!(ascii_runs(""), vec![]);
    }

    #[test]
    fn tokens_are_ascii_runs() {
        let sorted = |s: &str| {
            let mut v: Vec<&str> = s.split(' ').collect();
            v.sort_unstable();
            v.join(" ")
        };
        let t = Tokens::of("Subject: Grüße, Re: RE\nbody x_y café 2.1", 25);
        assert_eq!(sorted(&t.header), "e gr re subject");
        assert_eq!(sorted(&t.body), "1 2 body caf x y");
        assert_eq!(Tokens::of("", 0), Tokens::default());
    }

    #[test]
    fn split_boundaries() {
        assert_eq!(split_search_text("abcdef", 2), ("ab", "cdef"));
        assert_eq!(split_search_text("abc", 99), ("abc", ""));
        // Offset inside "é" (2 bytes at 1..3): moved back to 1.
        assert_eq!(split_search_text("aéb", 2), ("a", "éb"));
    }
}
