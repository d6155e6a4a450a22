//! The search program: SEARCH keys with their strings decoded from the command's CHARSET and
//! their message sets resolved against the view, ready to evaluate.

use chrono::NaiveDate;
use mailkeep_proto::{Date, SearchKey, SequenceSet};
use mailkeep_store::flags;

use crate::error::{CmdError, CmdResult};
use crate::selected::SelectedMailbox;
use mailkeep_proto::write::Code;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Key {
    All,
    /// A system flag bit is set (`true`) or clear.
    Flag(u32, bool),
    Keyword(String, bool),
    Recent(bool),
    /// NEW = RECENT UNSEEN (RFC 3501 §6.4.4).
    New,
    Larger(u64),
    Smaller(u64),
    /// INTERNALDATE's date compared to a date: Before, On, Since.
    Internal(DateCmp, NaiveDate),
    /// The Date: header's date.
    Sent(DateCmp, NaiveDate),
    /// INTERNALDATE (seconds since the epoch) at or before (`true`, OLDER) or at or after
    /// (`false`, YOUNGER) a time (RFC 5032: now minus the interval, when compiled).
    Within(bool, i64),
    /// Header field (lowercase name) contains the lowercased needle; empty needle = present.
    Header(String, String),
    /// An address field of the ENVELOPE (index per RFC 9051 §7.5.2) contains the needle.
    Address(usize, String),
    Text(String),
    Body(String),
    /// A set of view indexes (message numbers, UIDs or `$`, resolved) as sorted, disjoint
    /// half-open ranges.
    Indexes(Vec<(usize, usize)>),
    ModSeq(u64),
    /// The save date's date (RFC 8514, in the server's zone) compared to a date.
    Saved(DateCmp, NaiveDate),
    /// EMAILID / THREADID equal to this (RFC 8474 §5.3).
    EmailId(String),
    ThreadId(String),
    Not(Box<Key>),
    Or(Box<Key>, Box<Key>),
    And(Vec<Key>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateCmp {
    Before,
    On,
    Since,
}

impl DateCmp {
    pub(crate) fn test(self, day: NaiveDate, arg: NaiveDate) -> bool {
        match self {
            DateCmp::Before => day < arg,
            DateCmp::On => day == arg,
            DateCmp::Since => day >= arg,
        }
    }
}

impl Key {
    /// Rough cost, so an AND evaluates cheap keys first and narrows the set the expensive ones
    /// (header parsing, text search) run over.
    pub(crate) fn cost(&self) -> u8 {
        match self {
            Key::Saved(..) | Key::EmailId(_) | Key::ThreadId(_) => 1,
            Key::Sent(..) | Key::Header(..) | Key::Address(..) => 2,
            Key::Text(_) | Key::Body(_) => 3,
            Key::Not(k) => k.cost(),
            Key::Or(a, b) => a.cost().max(b.cost()),
            Key::And(v) => v.iter().map(Key::cost).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// The key has a MODSEQ criterion: the answer then carries the highest modseq (RFC 7162
    /// §3.1.5).
    pub(crate) fn has_modseq(&self) -> bool {
        match self {
            Key::ModSeq(_) => true,
            Key::Not(k) => k.has_modseq(),
            Key::Or(a, b) => a.has_modseq() || b.has_modseq(),
            Key::And(v) => v.iter().any(Key::has_modseq),
            _ => false,
        }
    }
}

/// Turns search strings into UTF-8. UTF-8 and US-ASCII are always known (RFC 9051 §6.4.4);
/// other charsets are decoded with encoding_rs when it knows the label.
pub(crate) struct Decoder(Option<&'static encoding_rs::Encoding>);

impl Decoder {
    pub(crate) fn new(charset: Option<&str>) -> CmdResult<Decoder> {
        let Some(cs) = charset else {
            return Ok(Decoder(None));
        };
        if cs.eq_ignore_ascii_case("UTF-8") || cs.eq_ignore_ascii_case("US-ASCII") {
            return Ok(Decoder(None));
        }
        match encoding_rs::Encoding::for_label(cs.as_bytes()) {
            Some(e) => Ok(Decoder(Some(e))),
            None => Err(CmdError::No(
                Some(Code::Other("BADCHARSET (UTF-8 US-ASCII)".into())),
                "Unknown charset".into(),
            )),
        }
    }

    /// The needle in the form compared: decoded and lowercased.
    pub(crate) fn needle(&self, raw: &[u8]) -> String {
        let s = match self.0 {
            Some(e) => e.decode_without_bom_handling(raw).0.into_owned(),
            None => String::from_utf8_lossy(raw).into_owned(),
        };
        fold(&s)
    }
}

/// The server's current time in seconds since the epoch (OLDER, YOUNGER).
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Case folding for SEARCH's substring match (RFC 9051 §6.4.4: case-insensitive).
pub(crate) fn fold(s: &str) -> String {
    s.to_lowercase()
}

fn date(d: Date) -> CmdResult<NaiveDate> {
    NaiveDate::from_ymd_opt(d.year, d.month, d.day)
        .ok_or_else(|| CmdError::Bad("Invalid date".into()))
}

/// Message sets in SEARCH never fail: numbers beyond the mailbox match nothing (Dovecot's
/// answer to `SEARCH 5:10` on two messages is an empty result, not BAD). Merged index ranges,
/// never expanded.
pub(crate) fn indexes(sel: &SelectedMailbox, set: &SequenceSet, uid: bool) -> Vec<(usize, usize)> {
    sel.resolve_ranges(set, uid, true).unwrap_or_default()
}

/// How many keys a SEARCH program holds, nested ones included (stops counting past the limit
/// so the walk itself stays cheap).
pub(crate) fn count(key: &SearchKey) -> usize {
    fn walk(key: &SearchKey, n: &mut usize) {
        *n += 1;
        if *n > super::MAX_SEARCH_KEYS {
            return;
        }
        match key {
            SearchKey::Not(k) => walk(k, n),
            SearchKey::Or(a, b) => {
                walk(a, n);
                walk(b, n);
            }
            SearchKey::And(v) => {
                for k in v {
                    walk(k, n);
                    if *n > super::MAX_SEARCH_KEYS {
                        return;
                    }
                }
            }
            _ => {}
        }
    }
    let mut n = 0;
    match key {
        // The top level's implicit AND is not a key of its own.
        SearchKey::And(v) => {
            for k in v {
                walk(k, &mut n);
                if n > super::MAX_SEARCH_KEYS {
                    break;
                }
            }
        }
        k => walk(k, &mut n),
    }
    n
}

/// Compile a SEARCH key: decode strings, resolve sets, check dates.
pub(crate) fn compile(key: &SearchKey, dec: &Decoder, sel: &SelectedMailbox) -> CmdResult<Key> {
    use SearchKey as S;
    let header = |name: &str, v: &[u8]| Key::Header(name.to_string(), dec.needle(v));
    let address = |name: &str, v: &[u8]| match super::address::envelope_field(name) {
        Some(field) => Key::Address(field, dec.needle(v)),
        None => header(name, v),
    };
    Ok(match key {
        S::All => Key::All,
        S::Answered => Key::Flag(flags::ANSWERED, true),
        S::Deleted => Key::Flag(flags::DELETED, true),
        S::Draft => Key::Flag(flags::DRAFT, true),
        S::Flagged => Key::Flag(flags::FLAGGED, true),
        S::Seen => Key::Flag(flags::SEEN, true),
        S::Unanswered => Key::Flag(flags::ANSWERED, false),
        S::Undeleted => Key::Flag(flags::DELETED, false),
        S::Undraft => Key::Flag(flags::DRAFT, false),
        S::Unflagged => Key::Flag(flags::FLAGGED, false),
        S::Unseen => Key::Flag(flags::SEEN, false),
        S::Keyword(k) => Key::Keyword(k.clone(), true),
        S::Unkeyword(k) => Key::Keyword(k.clone(), false),
        S::Recent => Key::Recent(true),
        S::Old => Key::Recent(false),
        S::New => Key::New,
        S::Larger(n) => Key::Larger(*n),
        S::Smaller(n) => Key::Smaller(*n),
        S::Before(d) => Key::Internal(DateCmp::Before, date(*d)?),
        S::On(d) => Key::Internal(DateCmp::On, date(*d)?),
        S::Since(d) => Key::Internal(DateCmp::Since, date(*d)?),
        S::SentBefore(d) => Key::Sent(DateCmp::Before, date(*d)?),
        S::SentOn(d) => Key::Sent(DateCmp::On, date(*d)?),
        S::SentSince(d) => Key::Sent(DateCmp::Since, date(*d)?),
        S::Older(n) => Key::Within(true, now() - i64::from(*n)),
        S::Younger(n) => Key::Within(false, now() - i64::from(*n)),
        S::Bcc(v) => address("bcc", v),
        S::Cc(v) => address("cc", v),
        S::From(v) => address("from", v),
        S::To(v) => address("to", v),
        S::Subject(v) => header("subject", v),
        S::Header(name, v) => Key::Header(
            String::from_utf8_lossy(name).to_ascii_lowercase(),
            dec.needle(v),
        ),
        S::Text(v) => Key::Text(dec.needle(v)),
        S::Body(v) => Key::Body(dec.needle(v)),
        S::Uid(set) => Key::Indexes(indexes(sel, set, true)),
        S::SequenceSet(set) => Key::Indexes(indexes(sel, set, false)),
        S::ModSeq(n) => Key::ModSeq(*n),
        S::SavedBefore(d) => Key::Saved(DateCmp::Before, date(*d)?),
        S::SavedOn(d) => Key::Saved(DateCmp::On, date(*d)?),
        S::SavedSince(d) => Key::Saved(DateCmp::Since, date(*d)?),
        // Every mailbox keeps save dates (RFC 8514 §4.3).
        S::SaveDateSupported => Key::All,
        S::EmailId(id) => Key::EmailId(id.clone()),
        S::ThreadId(id) => Key::ThreadId(id.clone()),
        S::Not(k) => Key::Not(Box::new(compile(k, dec, sel)?)),
        S::Or(a, b) => Key::Or(
            Box::new(compile(a, dec, sel)?),
            Box::new(compile(b, dec, sel)?),
        ),
        S::And(v) => {
            // A key repeated in an AND adds nothing but work: keep one of each.
            let mut keys: Vec<Key> = Vec::with_capacity(v.len());
            for k in v {
                let k = compile(k, dec, sel)?;
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
            Key::And(keys)
        }
    })
}
