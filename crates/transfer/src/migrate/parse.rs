//! What a migration reads out of the source's responses: LIST entries, EXAMINE data, FETCH
//! items, INTERNALDATE, flags, modified UTF-7 names.

use mailkeep_store::{Flags, flagops, flags};

use super::client::{Literal, Response, Tok, tokens};

/// One `* LIST` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// The name as the server sent it (modified UTF-7 unless UTF8=ACCEPT is on).
    pub wire: Vec<u8>,
    pub delimiter: Option<u8>,
    /// Attributes, e.g. `\Noselect`, `\Sent`, `\Subscribed`.
    pub attrs: Vec<String>,
}

impl ListEntry {
    pub fn has(&self, attr: &str) -> bool {
        self.attrs.iter().any(|a| a.eq_ignore_ascii_case(attr))
    }
    /// The RFC 6154 special use, if any of ours.
    pub fn special_use(&self) -> Option<&'static str> {
        ["\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive"]
            .into_iter()
            .find(|u| self.has(u))
    }
}

fn string_of(t: &Tok, r: &mut Response) -> Option<Vec<u8>> {
    match t {
        Tok::Atom(a) if a.eq_ignore_ascii_case(b"NIL") => None,
        Tok::Atom(a) | Tok::Str(a) => Some(a.clone()),
        Tok::Lit(i) => match r.literals.get_mut(*i).and_then(Option::take) {
            Some(Literal::Memory(v)) => Some(v),
            _ => None,
        },
        _ => None,
    }
}

/// Parses `* LIST (attrs) "d" name`.
pub fn list_entry(r: &mut Response) -> Option<ListEntry> {
    let t = tokens(&r.text);
    if t.len() < 4 || t[0] != Tok::Atom(b"*".to_vec()) {
        return None;
    }
    match &t[1] {
        Tok::Atom(a) if a.eq_ignore_ascii_case(b"LIST") => {}
        _ => return None,
    }
    let mut i = 2;
    let mut attrs = Vec::new();
    if t.get(i) != Some(&Tok::Open) {
        return None;
    }
    i += 1;
    while let Some(Tok::Atom(a)) = t.get(i) {
        attrs.push(String::from_utf8_lossy(a).into_owned());
        i += 1;
    }
    if t.get(i) != Some(&Tok::Close) {
        return None;
    }
    i += 1;
    let delimiter = match t.get(i)? {
        Tok::Str(d) if d.len() == 1 => Some(d[0]),
        _ => None,
    };
    i += 1;
    let wire = string_of(t.get(i)?, r)?;
    Some(ListEntry {
        wire,
        delimiter,
        attrs,
    })
}

/// What EXAMINE told.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Examined {
    pub uidvalidity: Option<u32>,
    pub exists: u32,
    /// `[UIDNOTSTICKY]` (RFC 4315): UIDs are not kept across sessions.
    pub not_sticky: bool,
}

pub fn examined(untagged: &[Response]) -> Examined {
    let mut e = Examined::default();
    for r in untagged {
        let text = String::from_utf8_lossy(&r.text).to_ascii_uppercase();
        if let Some(p) = text.find("[UIDVALIDITY ") {
            let rest = &text[p + 13..];
            let end = rest.find(']').unwrap_or(rest.len());
            e.uidvalidity = rest[..end].trim().parse().ok();
        }
        if text.contains("[UIDNOTSTICKY]") {
            e.not_sticky = true;
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        if words.len() == 3 && words[0] == "*" && words[2] == "EXISTS" {
            e.exists = words[1].parse().unwrap_or(0);
        }
    }
    e
}

/// One `* n FETCH (...)` of a migration.
#[derive(Debug, Default)]
pub struct FetchItem {
    pub uid: u32,
    pub flags: Option<Vec<String>>,
    pub internal_date: Option<String>,
    pub size: Option<u64>,
    /// BODY[] (BODY.PEEK[] answers as BODY[]).
    pub body: Option<Literal>,
    /// BODY[HEADER.FIELDS (MESSAGE-ID)].
    pub header: Option<Vec<u8>>,
}

/// Parses a FETCH response, taking its literals out of `r`.
pub fn fetch_item(r: &mut Response) -> Option<FetchItem> {
    let t = tokens(&r.text);
    if t.len() < 4 || t[0] != Tok::Atom(b"*".to_vec()) {
        return None;
    }
    match &t[2] {
        Tok::Atom(a) if a.eq_ignore_ascii_case(b"FETCH") => {}
        _ => return None,
    }
    if t[3] != Tok::Open {
        return None;
    }
    let mut item = FetchItem::default();
    let mut i = 4;
    while let Some(Tok::Atom(name)) = t.get(i) {
        let name = String::from_utf8_lossy(name).to_ascii_uppercase();
        i += 1;
        match name.as_str() {
            "FLAGS" => {
                if t.get(i) != Some(&Tok::Open) {
                    return None;
                }
                i += 1;
                let mut fl = Vec::new();
                while let Some(Tok::Atom(f)) = t.get(i) {
                    fl.push(String::from_utf8_lossy(f).into_owned());
                    i += 1;
                }
                item.flags = Some(fl);
                i += 1; // ")"
            }
            _ => {
                let v = t.get(i)?.clone();
                i += 1;
                match name.as_str() {
                    "UID" => {
                        if let Tok::Atom(a) = &v {
                            item.uid = std::str::from_utf8(a).ok()?.parse().ok()?;
                        }
                    }
                    "RFC822.SIZE" => {
                        if let Tok::Atom(a) = &v {
                            item.size = std::str::from_utf8(a).ok()?.parse().ok();
                        }
                    }
                    "INTERNALDATE" => {
                        item.internal_date =
                            string_of(&v, r).map(|s| String::from_utf8_lossy(&s).into_owned());
                    }
                    "BODY[]" | "BINARY[]" | "RFC822" => {
                        item.body = match v {
                            Tok::Lit(n) => r.literals.get_mut(n).and_then(Option::take),
                            Tok::Str(s) => Some(Literal::Memory(s)),
                            _ => None,
                        };
                    }
                    n if n.starts_with("BODY[HEADER.FIELDS") => {
                        item.header = string_of(&v, r);
                    }
                    _ => {
                        // A list value we do not use (e.g. MODSEQ (5)): skip it whole.
                        if v == Tok::Open {
                            let mut depth = 1;
                            while depth > 0 {
                                match t.get(i)? {
                                    Tok::Open => depth += 1,
                                    Tok::Close => depth -= 1,
                                    _ => {}
                                }
                                i += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    (item.uid != 0).then_some(item)
}

/// Wire flags as ours: `\Recent` and unknown system flags are dropped.
pub fn flags_of(list: &[String]) -> Flags {
    let mut f = Flags::default();
    for name in list {
        match name.to_ascii_lowercase().as_str() {
            "\\seen" => f.system |= flags::SEEN,
            "\\answered" => f.system |= flags::ANSWERED,
            "\\flagged" => f.system |= flags::FLAGGED,
            "\\deleted" => f.system |= flags::DELETED,
            "\\draft" => f.system |= flags::DRAFT,
            s if s.starts_with('\\') => {}
            _ => f.keywords.push(name.clone()),
        }
    }
    flagops::normalize(&f)
}

/// `dd-Mon-yyyy hh:mm:ss +zzzz` as (unix seconds, offset minutes).
pub fn internal_date(s: &str) -> Option<(i64, i32)> {
    let s = s.trim();
    let (date, rest) = s.split_once('-').map(|(d, r)| (d.trim(), r))?;
    let day: i64 = date.parse().ok()?;
    let (mon, rest) = rest.split_once('-')?;
    let month = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]
    .iter()
    .position(|m| m.eq_ignore_ascii_case(mon))? as i64
        + 1;
    let mut parts = rest.split_whitespace();
    let year: i64 = parts.next()?.parse().ok()?;
    let hms: Vec<i64> = parts
        .next()?
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let zone = parts.next()?;
    if hms.len() != 3 || zone.len() != 5 {
        return None;
    }
    let sign = match &zone[..1] {
        "+" => 1,
        "-" => -1,
        _ => return None,
    };
    let zh: i32 = zone[1..3].parse().ok()?;
    let zm: i32 = zone[3..5].parse().ok()?;
    let offset = sign * (zh * 60 + zm);
    let local = days_from_civil(year, month, day) * 86400 + hms[0] * 3600 + hms[1] * 60 + hms[2];
    Some((local - offset as i64 * 60, offset))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Decodes a modified UTF-7 mailbox name (RFC 3501 §5.1.3); `None` if it is malformed.
pub fn decode_mutf7(wire: &[u8]) -> Option<String> {
    let mut out = String::new();
    let mut i = 0;
    while i < wire.len() {
        let c = wire[i];
        if c != b'&' {
            if !(0x20..0x7f).contains(&c) {
                // Not modified UTF-7 (a UTF8=ACCEPT server): take it as UTF-8.
                return String::from_utf8(wire.to_vec()).ok();
            }
            out.push(c as char);
            i += 1;
            continue;
        }
        let end = i + 1 + wire[i + 1..].iter().position(|&c| c == b'-')?;
        if end == i + 1 {
            out.push('&');
            i = end + 1;
            continue;
        }
        let mut bits: u32 = 0;
        let mut nbits = 0;
        let mut units = Vec::new();
        for &b in &wire[i + 1..end] {
            let v = match b {
                b'A'..=b'Z' => b - b'A',
                b'a'..=b'z' => b - b'a' + 26,
                b'0'..=b'9' => b - b'0' + 52,
                b'+' => 62,
                b',' => 63,
                _ => return None,
            } as u32;
            bits = (bits << 6) | v;
            nbits += 6;
            if nbits >= 16 {
                nbits -= 16;
                units.push((bits >> nbits) as u16);
                bits &= (1 << nbits) - 1;
            }
        }
        out.push_str(&String::from_utf16(&units).ok()?);
        i = end + 1;
    }
    Some(out)
}

/// The first Message-ID in a message's header (for matching when UIDs cannot be trusted).
pub fn message_id(header: &[u8]) -> Option<String> {
    let end = header
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(header.len());
    mailkeep_mime::header_values(&header[..end], "Message-ID")
        .into_iter()
        .map(|v| v.trim().to_string())
        .find(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(text: &[u8], lits: Vec<Vec<u8>>) -> Response {
        Response {
            text: text.to_vec(),
            literals: lits.into_iter().map(|l| Some(Literal::Memory(l))).collect(),
        }
    }

    #[test]
    fn list_entries() {
        let mut r = resp(
            b"* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Messages\"",
            vec![],
        );
        let e = list_entry(&mut r).unwrap();
        assert_eq!(e.wire, b"Sent Messages");
        assert_eq!(e.delimiter, Some(b'/'));
        assert_eq!(e.special_use(), Some("\\Sent"));
        let mut r = resp(b"* LIST () NIL {3}", vec![b"a\"b".to_vec()]);
        let e = list_entry(&mut r).unwrap();
        assert_eq!((e.wire.as_slice(), e.delimiter), (&b"a\"b"[..], None));
        let mut r = resp(b"* LIST (\\Noselect) \".\" INBOX.x", vec![]);
        assert!(list_entry(&mut r).unwrap().has("\\noselect"));
    }

    #[test]
    fn fetch_items() {
        let mut r = resp(
            b"* 2 FETCH (UID 9 MODSEQ (12) FLAGS (\\Seen \\Recent $Label1) INTERNALDATE \"01-Feb-2024 10:00:00 +0100\" RFC822.SIZE 5 BODY[] {5})",
            vec![b"hello".to_vec()],
        );
        let f = fetch_item(&mut r).unwrap();
        assert_eq!(f.uid, 9);
        assert_eq!(f.size, Some(5));
        let fl = flags_of(f.flags.as_ref().unwrap());
        assert_eq!(fl.system, flags::SEEN);
        assert_eq!(fl.keywords, vec!["$Label1".to_string()]);
        assert!(matches!(f.body, Some(Literal::Memory(ref v)) if v == b"hello"));
        assert_eq!(
            internal_date(f.internal_date.as_deref().unwrap()),
            Some((1_706_778_000, 60))
        );
        let mut r = resp(b"* 1 EXISTS", vec![]);
        assert!(fetch_item(&mut r).is_none());
    }

    #[test]
    fn dates() {
        assert_eq!(internal_date("01-Jan-1970 00:00:00 +0000"), Some((0, 0)));
        assert_eq!(
            internal_date(" 1-Jan-1970 00:00:00 -0130"),
            Some((5400, -90))
        );
        assert_eq!(internal_date("bad"), None);
    }

    #[test]
    fn mutf7() {
        assert_eq!(decode_mutf7(b"Entw&APw-rfe").as_deref(), Some("Entwürfe"));
        assert_eq!(decode_mutf7(b"a&-b").as_deref(), Some("a&b"));
        assert_eq!(decode_mutf7(b"&ZeVnLIqe-").as_deref(), Some("日本語"));
        assert_eq!(decode_mutf7(b"&bad"), None);
    }

    #[test]
    fn message_ids() {
        assert_eq!(
            message_id(b"Subject: x\r\nMessage-Id: <a@b>\r\n\r\nbody Message-ID: <c@d>").as_deref(),
            Some("<a@b>")
        );
        assert_eq!(message_id(b"Subject: x\r\n\r\n"), None);
    }
}
