//! The response writer: the pieces every response is made of (RFC 9051 §7, §9).
//! Everything appends to a `Vec<u8>`; the caller owns the buffer.

use crate::types::{Flag, SeqNum, SeqRange, SequenceSet};

/// `resp-cond-state` kinds and BYE/PREAUTH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    Ok,
    No,
    Bad,
    Bye,
    PreAuth,
}

/// Response codes (RFC 9051 §7.1, RFC 5530, RFC 4315, RFC 7162, ...). `Other` is written as is
/// (for example `CAPABILITY IMAP4rev2 ...` or `APPENDUID 38505 3955`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    Alert,
    AlreadyExists,
    AuthenticationFailed,
    AuthorizationFailed,
    Cannot,
    ClientBug,
    Closed,
    ContactAdmin,
    Corruption,
    Expired,
    ExpungeIssued,
    HasChildren,
    InUse,
    Limit,
    Nonexistent,
    NoPerm,
    OverQuota,
    Parse,
    PrivacyRequired,
    ReadOnly,
    ReadWrite,
    ServerBug,
    TooBig,
    TryCreate,
    UnavailableResource,
    UnknownCte,
    Nomodseq,
    UidNotSticky,
    UidValidity(u32),
    UidNext(u32),
    HighestModSeq(u64),
    PermanentFlags(Vec<Flag>, bool),
    Modified(String),
    Capability(Vec<String>),
    AppendUid { uidvalidity: u32, uids: String },
    CopyUid { uidvalidity: u32, source: String, dest: String },
    Other(String),
}

/// Write a tagged (`Some(tag)`) or untagged status response, with CRLF.
/// `* OK [CODE] text` / `tag NO [CODE] text`.
pub fn status(out: &mut Vec<u8>, tag: Option<&str>, kind: StatusKind, code: Option<&Code>, text: &str) {
    let _ = (out, tag, kind, code, text);
    todo!("proto agent")
}

/// Write an `astring`-or-string value: an atom is NOT used; a quoted string when the bytes are
/// safe to quote (no CR, LF, NUL, 8-bit only if `utf8` is true), otherwise a literal `{n}\r\n...`.
pub fn string(out: &mut Vec<u8>, value: &[u8], utf8: bool) {
    let _ = (out, value, utf8);
    todo!("proto agent")
}

/// `nstring`: `NIL` for `None`, else [`string`].
pub fn nstring(out: &mut Vec<u8>, value: Option<&[u8]>, utf8: bool) {
    let _ = (out, value, utf8);
    todo!("proto agent")
}

/// An `astring`: an atom when every byte is an ASTRING-CHAR, else [`string`].
pub fn astring(out: &mut Vec<u8>, value: &[u8], utf8: bool) {
    let _ = (out, value, utf8);
    todo!("proto agent")
}

/// A mailbox name for LIST/STATUS/etc.: `INBOX` as an atom, otherwise a quoted string or a
/// literal. The caller has already encoded it (UTF-8 or modified UTF-7).
pub fn mailbox(out: &mut Vec<u8>, name: &str) {
    let _ = (out, name);
    todo!("proto agent")
}

/// One flag as IMAP text (`\Seen`, `$Forwarded`...).
pub fn flag(out: &mut Vec<u8>, flag: &Flag) {
    let _ = (out, flag);
    todo!("proto agent")
}

/// `(\Seen \Flagged kw)`.
pub fn flag_list(out: &mut Vec<u8>, flags: &[Flag]) {
    let _ = (out, flags);
    todo!("proto agent")
}

/// A sorted, de-duplicated list of numbers as a compact `sequence-set` (`1:3,7,9:10`).
/// Empty input writes nothing.
pub fn number_set(out: &mut Vec<u8>, sorted: &[u32]) {
    let _ = (out, sorted);
    todo!("proto agent")
}

/// `date-time` for INTERNALDATE: `"17-Jul-1996 02:44:25 -0700"` (with the quotes).
pub fn date_time(out: &mut Vec<u8>, unix: i64, offset_minutes: i32) {
    let _ = (out, unix, offset_minutes);
    todo!("proto agent")
}

/// Helper used by tests and logs: a sequence set as IMAP text.
pub fn sequence_set_text(set: &SequenceSet) -> String {
    match set {
        SequenceSet::Saved => "$".to_string(),
        SequenceSet::Ranges(r) => r
            .iter()
            .map(|r| match r {
                SeqRange::Single(n) => num(*n),
                SeqRange::Range(a, b) => format!("{}:{}", num(*a), num(*b)),
            })
            .collect::<Vec<_>>()
            .join(","),
    }
}

fn num(n: SeqNum) -> String {
    match n {
        SeqNum::Value(v) => v.to_string(),
        SeqNum::Largest => "*".to_string(),
    }
}
