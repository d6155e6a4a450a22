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
pub(crate) fn casemap_key(s: &str) -> String {
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
pub(crate) fn base_subject(raw: &str) -> (String, bool) {
    let decoded = if raw.contains("=?") {
        crate::cmd::search::address::decode_words(raw)
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
