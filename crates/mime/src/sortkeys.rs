//! The SORT and THREAD keys of a message (RFC 5256), computed once at delivery from its
//! ENVELOPE, sent date and header, kept by the store per body (`sort_keys`) and read back by
//! SORT and THREAD instead of every ENVELOPE and header.
//!
//! The keys are the collation keys the commands compare (i;unicode-casemap of the base
//! subject and of the first From/To/Cc mailbox and display name, cut at [`MAX_KEY_BYTES`]),
//! the sent date and the normalized Message-ID and references. The row format starts with
//! [`VERSION`]: a row of another version is computed again by the session. [`Row`] reads a
//! row in place, without copying its strings.
//!
//! Row layout: `VERSION`, `0 | 1 i64le` (sent date), `reply` byte, six strings (`u32le` length
//! and UTF-8: subject, from, to, cc, display-from, display-to), `0 | 1 string` (Message-ID),
//! `u32le` count and that many strings (references).

use crate::collate::{EARLIEST_DATE, base_subject, casemap_key, lenient_date};
use crate::envelope_read::{Addr, decode_words, envelope_parts};

/// The row format's version (its first byte).
pub const VERSION: u8 = 1;

/// Longest string key kept per message, in bytes: a key decides the order by its first
/// [`MAX_KEY_BYTES`] bytes, so a mailbox of huge subjects cannot make a SORT hold them all.
pub const MAX_KEY_BYTES: usize = 1024;

/// One message's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    /// The Date: header's time (RFC 5256 §2.2); `None`: use INTERNALDATE.
    pub sent: Option<i64>,
    /// The base subject extraction removed a reply/forward marker.
    pub reply: bool,
    pub subject: String,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub display_from: String,
    pub display_to: String,
    /// The Message-ID, normalized (as THREADID normalizes it).
    pub message_id: Option<String>,
    /// References' IDs, or else In-Reply-To's first valid one (RFC 5256 §3 REFERENCES).
    pub references: Vec<String>,
}

/// The encoded keys of a CRLF-normalized message, from its stored ENVELOPE text and sent
/// date (as [`crate::analyze`] gives them): what the store keeps at delivery.
pub fn sort_keys(message: &[u8], envelope: &[u8], sent_date: Option<i64>) -> Vec<u8> {
    Keys::compute(envelope, sent_date, header_part(message)).encode()
}

/// The header of a message with its blank line (all of it if there is no body).
pub fn header_part(message: &[u8]) -> &[u8] {
    if message.starts_with(b"\r\n") {
        return &message[..2];
    }
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => &message[..p + 4],
        None => message,
    }
}

/// `s` cut to at most [`MAX_KEY_BYTES`] bytes on a character boundary.
pub fn cap_key(mut s: String) -> String {
    if s.len() > MAX_KEY_BYTES {
        let mut end = MAX_KEY_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// RFC 5957 §3: the display name (decoded) if not empty, else `mailbox@host`, else `mailbox`.
pub fn display(addr: Option<&Addr>) -> String {
    let Some(a) = addr else {
        return String::new();
    };
    if let Some(name) = a.name.as_deref() {
        let name = if name.contains("=?") {
            decode_words(name)
        } else {
            name.to_string()
        };
        if !name.is_empty() {
            return name;
        }
    }
    match (&a.mailbox, &a.host) {
        (Some(m), Some(h)) => format!("{m}@{h}"),
        (Some(m), None) => m.clone(),
        _ => String::new(),
    }
}

/// RFC 5256 §3: the `addr-mailbox` of the first address.
pub fn mailbox(addr: Option<&Addr>) -> String {
    addr.and_then(|a| a.mailbox.clone()).unwrap_or_default()
}

impl Keys {
    /// The keys of a message from its stored ENVELOPE, sent date and header.
    pub fn compute(envelope: &[u8], sent_date: Option<i64>, header: &[u8]) -> Keys {
        let (message_id, references) = crate::thread_refs(header);
        Keys::compute_with(envelope, sent_date, message_id, references)
    }

    /// [`Keys::compute`] with the header's thread IDs already read (`crate::thread_refs`).
    pub fn compute_with(
        envelope: &[u8],
        sent_date: Option<i64>,
        message_id: Option<String>,
        references: Vec<String>,
    ) -> Keys {
        let env = envelope_parts(envelope).unwrap_or_default();
        // RFC 5256 §2.2: the Date: header's time, else INTERNALDATE. A date the message
        // parser could not read gets a lenient second reading; one before 1900 counts as
        // unreadable.
        let sent = sent_date.filter(|&t| t >= EARLIEST_DATE).or_else(|| {
            sent_date
                .is_none()
                .then(|| env.date.as_deref().and_then(lenient_date))
                .flatten()
        });
        let (base, reply) = base_subject(env.subject.as_deref().unwrap_or(""));
        let key = |s: &str| cap_key(casemap_key(s));
        Keys {
            sent,
            reply,
            subject: key(&base),
            from: key(&mailbox(env.from.as_ref())),
            to: key(&mailbox(env.to.as_ref())),
            cc: key(&mailbox(env.cc.as_ref())),
            display_from: key(&display(env.from.as_ref())),
            display_to: key(&display(env.to.as_ref())),
            message_id,
            references,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(VERSION);
        match self.sent {
            Some(t) => {
                out.push(1);
                out.extend_from_slice(&t.to_le_bytes());
            }
            None => out.push(0),
        }
        out.push(self.reply as u8);
        let strings = [
            &self.subject,
            &self.from,
            &self.to,
            &self.cc,
            &self.display_from,
            &self.display_to,
        ];
        for s in strings {
            put(&mut out, s);
        }
        match &self.message_id {
            Some(id) => {
                out.push(1);
                put(&mut out, id);
            }
            None => out.push(0),
        }
        out.extend_from_slice(&(self.references.len() as u32).to_le_bytes());
        for r in &self.references {
            put(&mut out, r);
        }
        out
    }

    /// `None` for a row of another version or a damaged one (then it is computed again).
    pub fn decode(b: &[u8]) -> Option<Keys> {
        let row = Row::parse(b)?;
        let mut strings = row.strings.iter().map(|s| std::str::from_utf8(s).ok());
        let mut next = || strings.next().flatten().map(str::to_owned);
        let (subject, from, to, cc) = (next()?, next()?, next()?, next()?);
        let (display_from, display_to) = (next()?, next()?);
        Some(Keys {
            sent: row.sent,
            reply: row.reply,
            subject,
            from,
            to,
            cc,
            display_from,
            display_to,
            message_id: row.message_id.map(str::to_owned),
            references: row.references().map(str::to_owned).collect(),
        })
    }
}

/// A checked row, read in place (no allocation): what SORT and THREAD read of 100,000
/// messages.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub sent: Option<i64>,
    pub reply: bool,
    /// Subject, from, to, cc, display-from, display-to keys.
    /// As stored: each one is checked as UTF-8 when [`Row::string`] reads it (a SORT reads
    /// one of the six, THREAD only the subject).
    strings: [&'a [u8]; 6],
    pub message_id: Option<&'a str>,
    /// The encoded references (count and strings), checked by [`Row::parse`].
    refs: &'a [u8],
}

impl<'a> Row<'a> {
    /// Index of each key for [`Row::string`].
    pub const SUBJECT: usize = 0;
    pub const FROM: usize = 1;
    pub const TO: usize = 2;
    pub const CC: usize = 3;
    pub const DISPLAY_FROM: usize = 4;
    pub const DISPLAY_TO: usize = 5;

    /// The keys of a message that has none (no date, empty strings, no IDs).
    pub const EMPTY: Row<'static> = Row {
        sent: None,
        reply: false,
        strings: [b""; 6],
        message_id: None,
        refs: &[0; 4],
    };

    /// Key `at` (one of [`Row::SUBJECT`] and the others); empty if it is not UTF-8 (a
    /// damaged row).
    pub fn string(&self, at: usize) -> &'a str {
        std::str::from_utf8(self.strings[at]).unwrap_or("")
    }

    /// Whether `b` is a row of this version with a sound layout (lengths only, no UTF-8
    /// check): what deciding that a message's keys need computing again takes. [`Row::parse`]
    /// checks the same (and, of the strings, only the Message-ID).
    pub fn layout_ok(b: &[u8]) -> bool {
        let mut r = Reader { b, i: 0 };
        let ok = (|| {
            if r.byte()? != VERSION {
                return None;
            }
            if r.byte()? != 0 {
                r.take(8)?;
            }
            r.byte()?;
            for _ in 0..6 {
                r.skip_string()?;
            }
            if r.byte()? != 0 {
                r.skip_string()?;
            }
            let n = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
            if n > (b.len() - r.i) / 4 {
                return None;
            }
            for _ in 0..n {
                r.skip_string()?;
            }
            Some(())
        })();
        ok.is_some() && r.i == b.len()
    }

    /// `None` for a row of another version or a damaged one.
    pub fn parse(b: &'a [u8]) -> Option<Row<'a>> {
        let mut r = Reader { b, i: 0 };
        if r.byte()? != VERSION {
            return None;
        }
        let sent = match r.byte()? {
            0 => None,
            _ => Some(i64::from_le_bytes(r.take(8)?.try_into().ok()?)),
        };
        let reply = r.byte()? != 0;
        let mut strings: [&[u8]; 6] = [b""; 6];
        for s in &mut strings {
            *s = r.skip_string()?;
        }
        let message_id = match r.byte()? {
            0 => None,
            _ => Some(r.string()?),
        };
        let refs_at = r.i;
        let n = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
        // Each reference takes at least its 4-byte length: a damaged count cannot loop long.
        if n > (b.len() - r.i) / 4 {
            return None;
        }
        // Lengths only: the references are checked as UTF-8 when THREAD reads them
        // ([`Row::references`] stops at a damaged one); SORT never does.
        for _ in 0..n {
            r.skip_string()?;
        }
        (r.i == b.len()).then_some(Row {
            sent,
            reply,
            strings,
            message_id,
            refs: &b[refs_at..],
        })
    }

    /// The references, in order.
    pub fn references(self) -> impl Iterator<Item = &'a str> {
        self.refs().iter()
    }

    /// The references, unread: what THREAD keeps of a row while it threads.
    pub fn refs(&self) -> Refs<'a> {
        Refs(self.refs)
    }
}

/// A row's references as stored (a count and the strings, lengths checked by [`Row::parse`]).
#[derive(Clone, Copy, Debug)]
pub struct Refs<'a>(&'a [u8]);

impl<'a> Refs<'a> {
    /// The references, in order; stops at one that is not UTF-8.
    pub fn iter(self) -> impl Iterator<Item = &'a str> {
        let mut r = Reader { b: self.0, i: 4 };
        let n = self
            .0
            .get(..4)
            .map_or(0, |c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize);
        (0..n).map_while(move |_| r.string())
    }
}

fn put(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.i..self.i.checked_add(n)?)?;
        self.i += n;
        Some(s)
    }
    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    fn string(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.skip_string()?).ok()
    }
    fn skip_string(&mut self) -> Option<&'a [u8]> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        self.take(n)
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    #[test]
    fn layout_ok_agrees_with_parse_on_sound_rows_and_damage() {
        let k = Keys {
            subject: "hello".into(),
            message_id: Some("a@b".into()),
            references: vec!["x@y".into(), "z@w".into()],
            ..Keys::default()
        };
        let row = k.encode();
        assert!(Row::layout_ok(&row) && Row::parse(&row).is_some());
        for cut in 0..row.len() {
            assert!(!Row::layout_ok(&row[..cut]), "cut at {cut}");
            assert!(Row::parse(&row[..cut]).is_none(), "cut at {cut}");
        }
        let mut longer = row.clone();
        longer.push(0);
        assert!(!Row::layout_ok(&longer) && Row::parse(&longer).is_none());
        let mut old = row.clone();
        old[0] = old[0].wrapping_add(1);
        assert!(!Row::layout_ok(&old) && Row::parse(&old).is_none());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let env = br#"("Mon, 3 Jan 2000 10:00:00 +0000" "Re: Plans" (("Joe" NIL "joe" "x.org")) NIL NIL (("=?utf-8?q?Andr=C3=A9?=" NIL "andre" "y.org")) NIL NIL NIL "<m2@x>")"#;
        let header = b"Message-ID: <m2@x>\r\nReferences: <m0@x> <m1@x>\r\n\r\n";
        let k = Keys::compute(env, Some(946_893_600), header);
        assert_eq!(k.sent, Some(946_893_600));
        assert!(k.reply);
        assert_eq!(k.subject, casemap_key("Plans"));
        assert_eq!(k.from, casemap_key("joe"));
        assert_eq!(k.display_to, casemap_key("André"));
        assert_eq!(k.cc, "");
        assert_eq!(k.message_id.as_deref(), Some("m2@x"));
        assert_eq!(k.references, ["m0@x", "m1@x"]);
        let enc = k.encode();
        assert_eq!(Keys::decode(&enc), Some(k.clone()));
        let mut message = header.to_vec();
        message.extend_from_slice(b"body\r\n");
        assert_eq!(sort_keys(&message, env, Some(946_893_600)), enc);
        assert_eq!(
            Keys::decode(&Keys::default().encode()),
            Some(Keys::default())
        );
        let row = Row::parse(&enc).unwrap();
        let empty = Keys::default().encode();
        let e = Row::parse(&empty).unwrap();
        assert_eq!(
            (e.sent, e.reply, e.strings, e.message_id, e.refs),
            (None, false, Row::EMPTY.strings, None, Row::EMPTY.refs)
        );
        assert_eq!(row.string(Row::FROM), k.from);
        assert_eq!(row.references().collect::<Vec<_>>(), ["m0@x", "m1@x"]);
        // Another version, a cut row, a trailing byte, a huge count: computed again.
        let mut other = enc.clone();
        other[0] = VERSION + 1;
        assert_eq!(Keys::decode(&other), None);
        for n in 0..enc.len() {
            assert_eq!(Keys::decode(&enc[..n]), None, "cut at {n}");
        }
        let mut longer = enc.clone();
        longer.push(0);
        assert_eq!(Keys::decode(&longer), None);
        let mut huge = Keys::default().encode();
        let at = huge.len() - 4;
        huge[at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Keys::decode(&huge), None);
    }

    #[test]
    fn display_values() {
        let a = |name: Option<&str>, mailbox: Option<&str>, host: Option<&str>| Addr {
            name: name.map(Into::into),
            mailbox: mailbox.map(Into::into),
            host: host.map(Into::into),
        };
        let cases = [
            (Some(a(Some("Joe"), Some("j"), Some("x.org"))), "Joe"),
            (Some(a(Some("=?utf-8?q?Andr=C3=A9?="), None, None)), "André"),
            (Some(a(Some(""), Some("j"), Some("x.org"))), "j@x.org"),
            (Some(a(None, Some("j"), None)), "j"),
            (Some(a(None, None, Some("x.org"))), ""),
            (None, ""),
        ];
        for (addr, want) in cases {
            assert_eq!(display(addr.as_ref()), want, "{addr:?}");
        }
        assert_eq!(mailbox(Some(&a(Some("Joe"), Some("j"), Some("x")))), "j");
        assert_eq!(mailbox(None), "");
    }
}
