//! The response writer: the pieces every response is made of (RFC 9051 §7, §9).
//! Everything appends to a `Vec<u8>`; the caller owns the buffer.

use crate::frame::is_astring_char;
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
    /// RFC 9586 §3: a message number was used after ENABLE UIDONLY.
    UidRequired,
    UidValidity(u32),
    UidNext(u32),
    HighestModSeq(u64),
    PermanentFlags(Vec<Flag>, bool),
    Modified(String),
    Capability(Vec<String>),
    AppendUid {
        uidvalidity: u32,
        uids: String,
    },
    CopyUid {
        uidvalidity: u32,
        source: String,
        dest: String,
    },
    Other(String),
}

/// Write a tagged (`Some(tag)`) or untagged status response, with CRLF.
/// `* OK [CODE] text` / `tag NO [CODE] text`.
/// CR and LF inside `text` are replaced by spaces so a message can never end the line early.
pub fn status(
    out: &mut Vec<u8>,
    tag: Option<&str>,
    kind: StatusKind,
    code: Option<&Code>,
    text: &str,
) {
    out.extend_from_slice(tag.unwrap_or("*").as_bytes());
    out.extend_from_slice(match kind {
        StatusKind::Ok => b" OK",
        StatusKind::No => b" NO",
        StatusKind::Bad => b" BAD",
        StatusKind::Bye => b" BYE",
        StatusKind::PreAuth => b" PREAUTH",
    });
    if let Some(code) = code {
        out.extend_from_slice(b" [");
        response_code(out, code);
        out.push(b']');
    }
    if !text.is_empty() {
        out.push(b' ');
        out.extend(
            text.bytes()
                .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    }
    out.extend_from_slice(b"\r\n");
}

/// `resp-text-code` without the brackets.
pub fn response_code(out: &mut Vec<u8>, code: &Code) {
    let name: &str = match code {
        Code::Alert => "ALERT",
        Code::AlreadyExists => "ALREADYEXISTS",
        Code::AuthenticationFailed => "AUTHENTICATIONFAILED",
        Code::AuthorizationFailed => "AUTHORIZATIONFAILED",
        Code::Cannot => "CANNOT",
        Code::ClientBug => "CLIENTBUG",
        Code::Closed => "CLOSED",
        Code::ContactAdmin => "CONTACTADMIN",
        Code::Corruption => "CORRUPTION",
        Code::Expired => "EXPIRED",
        Code::ExpungeIssued => "EXPUNGEISSUED",
        Code::HasChildren => "HASCHILDREN",
        Code::InUse => "INUSE",
        Code::Limit => "LIMIT",
        Code::Nonexistent => "NONEXISTENT",
        Code::NoPerm => "NOPERM",
        Code::OverQuota => "OVERQUOTA",
        Code::Parse => "PARSE",
        Code::PrivacyRequired => "PRIVACYREQUIRED",
        Code::ReadOnly => "READ-ONLY",
        Code::ReadWrite => "READ-WRITE",
        Code::ServerBug => "SERVERBUG",
        Code::TooBig => "TOOBIG",
        Code::TryCreate => "TRYCREATE",
        Code::UnavailableResource => "UNAVAILABLE",
        Code::UnknownCte => "UNKNOWN-CTE",
        Code::Nomodseq => "NOMODSEQ",
        Code::UidNotSticky => "UIDNOTSTICKY",
        Code::UidRequired => "UIDREQUIRED",
        Code::UidValidity(v) => return push_fmt(out, format_args!("UIDVALIDITY {v}")),
        Code::UidNext(v) => return push_fmt(out, format_args!("UIDNEXT {v}")),
        Code::HighestModSeq(v) => return push_fmt(out, format_args!("HIGHESTMODSEQ {v}")),
        Code::PermanentFlags(flags, any_keyword) => {
            out.extend_from_slice(b"PERMANENTFLAGS (");
            for (i, f) in flags.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                flag(out, f);
            }
            if *any_keyword {
                // RFC 9051 §7.1: `\*` says new keywords may be created.
                out.extend_from_slice(if flags.is_empty() { b"\\*" } else { b" \\*" });
            }
            out.push(b')');
            return;
        }
        Code::Modified(set) => return push_fmt(out, format_args!("MODIFIED {set}")),
        Code::Capability(caps) => {
            out.extend_from_slice(b"CAPABILITY");
            for c in caps {
                out.push(b' ');
                out.extend_from_slice(c.as_bytes());
            }
            return;
        }
        Code::AppendUid { uidvalidity, uids } => {
            return push_fmt(out, format_args!("APPENDUID {uidvalidity} {uids}"));
        }
        Code::CopyUid {
            uidvalidity,
            source,
            dest,
        } => {
            return push_fmt(out, format_args!("COPYUID {uidvalidity} {source} {dest}"));
        }
        Code::Other(text) => text,
    };
    out.extend_from_slice(name.as_bytes());
}

fn push_fmt(out: &mut Vec<u8>, args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    // Writing into a Vec cannot fail.
    let _ = out.write_fmt(args);
}

/// True when `value` can be sent as a `quoted` string: no NUL, CR or LF, and 8-bit bytes only
/// as valid UTF-8 when the client accepts UTF-8 (RFC 9051 `QUOTED-CHAR` includes UTF8-2..4).
fn quotable(value: &[u8], utf8: bool) -> bool {
    let plain = value.iter().all(|&b| b != 0 && b != b'\r' && b != b'\n');
    plain && (value.is_ascii() || (utf8 && std::str::from_utf8(value).is_ok()))
}

fn quoted(out: &mut Vec<u8>, value: &[u8]) {
    out.push(b'"');
    for &b in value {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

fn literal(out: &mut Vec<u8>, value: &[u8]) {
    push_fmt(out, format_args!("{{{}}}\r\n", value.len()));
    out.extend_from_slice(value);
}

/// Write an `astring`-or-string value: an atom is NOT used; a quoted string when the bytes are
/// safe to quote (no CR, LF, NUL, 8-bit only if `utf8` is true), otherwise a literal `{n}\r\n...`.
pub fn string(out: &mut Vec<u8>, value: &[u8], utf8: bool) {
    if quotable(value, utf8) {
        quoted(out, value);
    } else {
        literal(out, value);
    }
}

/// `nstring`: `NIL` for `None`, else [`string`].
pub fn nstring(out: &mut Vec<u8>, value: Option<&[u8]>, utf8: bool) {
    match value {
        None => out.extend_from_slice(b"NIL"),
        Some(v) => string(out, v, utf8),
    }
}

/// An `astring`: an atom when every byte is an ASTRING-CHAR, else [`string`].
/// `NIL` is quoted so that a reader expecting an nstring does not take it for NIL.
pub fn astring(out: &mut Vec<u8>, value: &[u8], utf8: bool) {
    if !value.is_empty()
        && value.iter().all(|&b| is_astring_char(b))
        && !value.eq_ignore_ascii_case(b"NIL")
    {
        out.extend_from_slice(value);
    } else {
        string(out, value, utf8);
    }
}

/// A mailbox name for LIST/STATUS/etc.: `INBOX` as an atom, otherwise a quoted string or a
/// literal. The caller has already encoded it (UTF-8 or modified UTF-7).
///
/// Written as an `astring`, as Dovecot 2.3.19 does (checked against a live instance):
/// `* LIST (\HasNoChildren) "/" Sent`, `x]y`, `&AOk-`, but `"a b"`, `"p%q"`, `"nil"`, and a
/// literal only for names holding CR, LF or NUL, which a quoted string cannot carry.
pub fn mailbox(out: &mut Vec<u8>, name: &str) {
    if name.eq_ignore_ascii_case("INBOX") {
        out.extend_from_slice(b"INBOX");
    } else {
        astring(out, name.as_bytes(), true);
    }
}

/// One flag as IMAP text (`\Seen`, `$Forwarded`...).
pub fn flag(out: &mut Vec<u8>, flag: &Flag) {
    let text: &str = match flag {
        Flag::Seen => "\\Seen",
        Flag::Answered => "\\Answered",
        Flag::Flagged => "\\Flagged",
        Flag::Deleted => "\\Deleted",
        Flag::Draft => "\\Draft",
        Flag::Recent => "\\Recent",
        Flag::Keyword(k) => k,
        Flag::Extension(e) => {
            // The parser keeps the backslash; accept names built without it too.
            if !e.starts_with('\\') {
                out.push(b'\\');
            }
            e
        }
    };
    out.extend_from_slice(text.as_bytes());
}

/// `(\Seen \Flagged kw)`.
pub fn flag_list(out: &mut Vec<u8>, flags: &[Flag]) {
    out.push(b'(');
    for (i, f) in flags.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        flag(out, f);
    }
    out.push(b')');
}

/// A number in decimal, without the formatting machinery (FETCH writes several per message).
pub fn number(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// A sorted, de-duplicated list of numbers as a compact `sequence-set` (`1:3,7,9:10`).
/// Empty input writes nothing.
pub fn number_set(out: &mut Vec<u8>, sorted: &[u32]) {
    for (i, run) in sorted
        .chunk_by(|a, b| a.checked_add(1) == Some(*b))
        .enumerate()
    {
        if i > 0 {
            out.push(b',');
        }
        let (first, last) = (run[0], run[run.len() - 1]);
        if first == last {
            push_fmt(out, format_args!("{first}"));
        } else {
            push_fmt(out, format_args!("{first}:{last}"));
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `date-time` for INTERNALDATE: `"17-Jul-1996 02:44:25 -0700"` (with the quotes).
/// The day is zero-padded (`"01-Jan-2024 ..."`) as Dovecot writes it; both forms are valid
/// `date-day-fixed` readings for clients in practice.
pub fn date_time(out: &mut Vec<u8>, unix: i64, offset_minutes: i32) {
    let local = unix.saturating_add(i64::from(offset_minutes) * 60);
    let days = local.div_euclid(86_400);
    let secs = local.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let sign = if offset_minutes < 0 { '-' } else { '+' };
    let off = offset_minutes.unsigned_abs();
    push_fmt(
        out,
        format_args!(
            "\"{:02}-{}-{:04} {:02}:{:02}:{:02} {}{:02}{:02}\"",
            day,
            MONTHS[(month - 1) as usize],
            year,
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            sign,
            off / 60 % 100,
            off % 60
        ),
    );
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month 1-12, day 1-31) to days since 1970-01-01 (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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

#[cfg(test)]
mod tests;
