//! What SORT and THREAD compare: the base subject (RFC 5256 §2.1) and strings under the
//! i;unicode-casemap collation (RFC 5051).
//!
//! i;unicode-casemap maps every character to its simple titlecase, decomposes the result
//! (NFKD) and compares the UTF-8 octets. The decomposition comes from the
//! `unicode-normalization` crate. Rust's standard library has no titlecase mapping; the
//! simple uppercase mapping (`char::to_uppercase` when it yields one character) equals it
//! except for the four Latin digraphs (DŽ, LJ, NJ, DZ), which are mapped to their titlecase
//! forms by hand. Where the full uppercase mapping expands (ß → SS) the simple mapping keeps
//! the character, as here. Case folding (`unicase`, `caseless`) would map to lowercase, which
//! orders `_` and `[` before letters, unlike RFC 5051.

use unicode_normalization::UnicodeNormalization;

/// The i;unicode-casemap key of `s`: comparing keys bytewise compares the strings.
pub fn casemap_key(s: &str) -> String {
    let titled: String = s.chars().map(simple_titlecase).collect();
    titled.nfkd().collect()
}

fn simple_titlecase(c: char) -> char {
    match c {
        '\u{1C4}'..='\u{1C6}' => '\u{1C5}',
        '\u{1C7}'..='\u{1C9}' => '\u{1C8}',
        '\u{1CA}'..='\u{1CC}' => '\u{1CB}',
        '\u{1F1}'..='\u{1F3}' => '\u{1F2}',
        _ if c.is_ascii() => c.to_ascii_uppercase(),
        _ => {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        }
    }
}

/// The base subject of a subject (RFC 5256 §2.1) and whether its extraction removed a
/// `subj-refwd`, a `(fwd)` trailer or a `[fwd: ... ]` wrapper (the message is then a reply or
/// forward, RFC 5256 §3 REFERENCES). `raw` is the subject as the ENVELOPE has it: RFC 2047
/// encoded words are decoded first.
pub fn base_subject(raw: &str) -> (String, bool) {
    let decoded = if raw.contains("=?") {
        crate::envelope_read::decode_words(raw)
    } else {
        raw.to_string()
    };
    // (1) Tabs and continuations to space, runs of spaces to one.
    let needs_spacing = decoded
        .as_bytes()
        .windows(2)
        .any(|w| w == b"  " || matches!(w[0], b'\t' | b'\r' | b'\n'))
        || decoded.ends_with(['\t', '\r', '\n']);
    let s = if needs_spacing {
        let mut s = String::with_capacity(decoded.len());
        for c in decoded.chars() {
            let c = if matches!(c, '\t' | '\r' | '\n') {
                ' '
            } else {
                c
            };
            if c == ' ' && s.ends_with(' ') {
                continue;
            }
            s.push(c);
        }
        s
    } else {
        decoded
    };
    let mut reply = false;
    let mut t: &str = &s;
    loop {
        // (2) Trailers: "(fwd)" and WSP, repeatedly.
        loop {
            if let Some(rest) = t.strip_suffix(' ') {
                t = rest;
            } else if t.len() >= 5 && t.as_bytes()[t.len() - 5..].eq_ignore_ascii_case(b"(fwd)") {
                t = &t[..t.len() - 5];
                reply = true;
            } else {
                break;
            }
        }
        // (3)-(5) Leaders, and a leading blob that leaves a non-empty base.
        loop {
            if let Some(rest) = t.strip_prefix(' ') {
                t = rest;
                continue;
            }
            if let Some(rest) = leader(t) {
                t = rest;
                reply = true;
                continue;
            }
            // (4) No leader here, so none after any of the leading blobs either (a leader
            // skips blobs first): take off every blob that leaves a non-empty base at once,
            // which keeps a subject of thousands of blobs linear.
            let mut removed = false;
            while let Some(rest) = blob(t)
                && !rest.is_empty()
            {
                t = rest;
                removed = true;
            }
            if !removed {
                break;
            }
        }
        // (6) "[fwd:" ... "]": unwrap and start over from (2).
        let b = t.as_bytes();
        if b.len() >= 6 && b[..5].eq_ignore_ascii_case(b"[fwd:") && b[b.len() - 1] == b']' {
            t = &t[5..t.len() - 1];
            reply = true;
            continue;
        }
        break;
    }
    (t.to_string(), reply)
}

/// `subj-blob = "[" *BLOBCHAR "]" *WSP`: the rest after it.
fn blob(t: &str) -> Option<&str> {
    let rest = t.strip_prefix('[')?;
    let close = rest.bytes().position(|b| b == b']' || b == b'[')?;
    if rest.as_bytes()[close] != b']' {
        return None;
    }
    Some(rest[close + 1..].trim_start_matches(' '))
}

/// `*subj-blob subj-refwd` with `subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"`:
/// the rest after it.
fn leader(t: &str) -> Option<&str> {
    let mut t = t;
    while let Some(rest) = blob(t) {
        t = rest;
    }
    let b = t.as_bytes();
    let n = if b.len() >= 2 && b[..2].eq_ignore_ascii_case(b"re") {
        2
    } else if b.len() >= 3 && b[..3].eq_ignore_ascii_case(b"fwd") {
        3
    } else if b.len() >= 2 && b[..2].eq_ignore_ascii_case(b"fw") {
        2
    } else {
        return None;
    };
    let mut rest = t[n..].trim_start_matches(' ');
    if let Some(r) = blob(rest) {
        rest = r;
    }
    rest.strip_prefix(':')
}

/// A sent date the message parser could not read, read leniently as RFC 5322's obsolete
/// syntax allows and as Dovecot reads it for SORT: comments and the weekday ignored, a two- or
/// three-digit year (RFC 5322 §4.3), no seconds, fractions of a second, a zone glued to the time,
/// named zones (UT, GMT, EST...; unknown ones as UTC, RFC 5256 §2.2). Unix seconds, `None` if no
/// day, month and year can be found or the date is before [`EARLIEST_DATE`].
pub fn lenient_date(value: &str) -> Option<i64> {
    // Comments out, then tokens split at spaces and commas; a zone glued to a time apart.
    let mut clean = String::with_capacity(value.len());
    let mut depth = 0u32;
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            ',' => clean.push(' '),
            '+' | '-' => {
                clean.push(' ');
                clean.push(c);
            }
            _ => clean.push(c),
        }
    }
    let mut tokens = clean.split_whitespace().peekable();
    if tokens
        .peek()
        .is_some_and(|t| t.chars().all(|c| c.is_ascii_alphabetic()))
    {
        tokens.next();
    }
    let day: u32 = tokens.next()?.parse().ok()?;
    let month = tokens.next()?.get(..3)?.to_ascii_lowercase();
    let month = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]
    .iter()
    .position(|m| *m == month)? as u32
        + 1;
    let year_text = tokens.next()?;
    let mut year: i32 = year_text.parse().ok()?;
    if year_text.len() <= 3 {
        year += if year < 50 && year_text.len() == 2 {
            2000
        } else {
            1900
        };
    }
    let date = chrono::NaiveDate::from_ymd_opt(year, month, day)?;
    let mut seconds = 0i64;
    let mut zone = 0i64;
    if let Some(time) = tokens.next() {
        // A time that is there must be readable (Dovecot gives up on `59:10` or `10:00:t`).
        let num = |p: &str| -> Option<i64> {
            (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse().ok())
                .flatten()
        };
        let mut parts = time.split(':');
        let h = num(parts.next()?)?;
        let m = num(parts.next()?)?;
        let sec = match parts.next() {
            Some(p) => num(p.split('.').next()?)?,
            None => 0,
        };
        if h >= 24 || m >= 60 || sec >= 61 || parts.next().is_some() {
            return None;
        }
        seconds = h * 3600 + m * 60 + sec;
        if let Some(z) = tokens.next() {
            zone = zone_seconds(z);
        }
    }
    let unix = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp() + seconds - zone;
    (unix >= EARLIEST_DATE).then_some(unix)
}

/// 1900-01-01: a sent date before it is a parse gone wrong (`Date: Thu,` reads as year 0), and
/// the message sorts by INTERNALDATE instead (RFC 5256 §2.2).
pub const EARLIEST_DATE: i64 = -2_208_988_800;

/// `+hhmm` / `-hhmm` or an RFC 5322 §4.3 zone name, as seconds east of UTC; 0 if unknown.
fn zone_seconds(z: &str) -> i64 {
    let b = z.as_bytes();
    if b.len() == 5 && (b[0] == b'+' || b[0] == b'-') && b[1..].iter().all(u8::is_ascii_digit) {
        let n: i64 = z[1..].parse().unwrap_or(0);
        let s = (n / 100) * 3600 + (n % 100) * 60;
        return if b[0] == b'-' { -s } else { s };
    }
    let hours = match &z.to_ascii_uppercase()[..] {
        "EDT" => -4,
        "EST" | "CDT" => -5,
        "CST" | "MDT" => -6,
        "MST" | "PDT" => -7,
        "PST" => -8,
        _ => 0,
    };
    hours * 3600
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_subjects() {
        let cases: &[(&str, &str, bool)] = &[
            ("", "", false),
            ("Hello", "Hello", false),
            ("Re: Hello", "Hello", true),
            ("RE: re: Fwd: Hello", "Hello", true),
            ("Re[2]: Hello", "Hello", true),
            ("Re : Hello", "Hello", true),
            ("Fw: Hello", "Hello", true),
            ("[list] Re: Hello", "Hello", true),
            ("[list] Hello", "Hello", false),
            ("[list]", "[list]", false),
            ("[a][b]", "[b]", false),
            ("Hello (fwd)", "Hello", true),
            ("Hello (FWD) (fwd)  ", "Hello", true),
            ("[Fwd: Hello]", "Hello", true),
            ("[fwd: Re: [list] Hello (fwd)]", "Hello", true),
            ("  Hello\t  world ", "Hello world", false),
            ("Re:", "", true),
            ("Reply: Hello", "Reply: Hello", false),
            ("Rex: Hello", "Rex: Hello", false),
            ("=?utf-8?q?Re=3A_caf=C3=A9?=", "café", true),
            ("Re: [fwd: x]", "x", true),
            ("[x: Hello", "[x: Hello", false),
        ];
        for (raw, want, reply) in cases {
            assert_eq!(base_subject(raw), (want.to_string(), *reply), "{raw:?}");
        }
    }

    /// Hostile subjects (thousands of blobs, prefixes, wrappers) take linear time.
    #[test]
    fn long_subjects_are_linear() {
        let start = std::time::Instant::now();
        let blobs = "[a]".repeat(50_000) + "x";
        assert_eq!(base_subject(&blobs), ("x".to_string(), false));
        let only_blobs = "[a]".repeat(50_000);
        assert_eq!(base_subject(&only_blobs), ("[a]".to_string(), false));
        let res = "Re: ".repeat(50_000) + "x";
        assert_eq!(base_subject(&res), ("x".to_string(), true));
        let fwd = "[fwd: ".repeat(20_000) + "x" + &"]".repeat(20_000);
        assert_eq!(base_subject(&fwd), ("x".to_string(), true));
        let open = "[".repeat(100_000);
        assert_eq!(base_subject(&open).0.len(), 100_000);
        let trailers = "x".to_string() + &" (fwd)".repeat(50_000);
        assert_eq!(base_subject(&trailers), ("x".to_string(), true));
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn lenient_dates() {
        let at = |y, mo, d, h, mi, s| {
            chrono::NaiveDate::from_ymd_opt(y, mo, d)
                .unwrap()
                .and_hms_opt(h, mi, s)
                .unwrap()
                .and_utc()
                .timestamp()
        };
        let cases: &[(&str, Option<i64>)] = &[
            (
                "18 Jan 1992 17:19 (Saturday)",
                Some(at(1992, 1, 18, 17, 19, 0)),
            ),
            ("Sun, 7 Jun 92 14:02 CDT", Some(at(1992, 6, 7, 19, 2, 0))),
            ("Wed, 11 Feb 98 11:51 CST", Some(at(1998, 2, 11, 17, 51, 0))),
            ("01 Jan 2001 00:01+0000", Some(at(2001, 1, 1, 0, 1, 0))),
            (
                "Tue, 17 Jul 2012 22:23:35.882 0000",
                Some(at(2012, 7, 17, 22, 23, 35)),
            ),
            (
                "Fri, 21 Nov 1997 09:55(c) -0600",
                Some(at(1997, 11, 21, 15, 55, 0)),
            ),
            ("1 Jan 05 00:00 +0100", Some(at(2004, 12, 31, 23, 0, 0))),
            ("Thu,", None),
            ("Thu, 13 Feb 1969 23:32:54 -0330", Some(-27_723_426)),
            ("1 Jan 1899 00:00 +0000", None),
            ("garbage", None),
            ("31 Feb 2001 00:00", None),
            ("Wed, 15 Dec 2010    59:10 -0500", None),
            ("Tue, 7 Apr 2026 10:00:t <x@y>", None),
            ("1 Jan 2001", Some(at(2001, 1, 1, 0, 0, 0))),
        ];
        for (input, want) in cases {
            assert_eq!(lenient_date(input), *want, "{input}");
        }
    }

    #[test]
    fn casemap_orders() {
        let k = casemap_key;
        assert_eq!(k("hello"), k("HELLO"));
        assert_eq!(k("café"), k("CAFÉ"));
        // Decomposed and precomposed forms compare equal.
        assert_eq!(k("e\u{301}"), k("\u{e9}"));
        assert_eq!(k("\u{1C6}"), k("\u{1C4}"));
        // Titlecase, not lowercase: letters sort before "_".
        assert!(k("a") < k("_"));
        assert!(k("") < k("a"));
        assert!(k("apple") < k("Banana"));
        assert_eq!(k("ß"), "ß");
    }
}
