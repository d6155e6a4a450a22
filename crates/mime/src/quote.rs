//! IMAP string output (RFC 9051 §4.3): quoted strings where possible, literals `{n}\r\n...`
//! otherwise, with Dovecot's choices (`imap-quote.c`), so responses match it byte for byte.

/// `nstring`: NIL, a quoted string, or a literal when the value has CR, LF, 8-bit bytes or
/// more than four characters that would need escaping.
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    let Some(s) = s else {
        out.extend_from_slice(b"NIL");
        return;
    };
    // C strings end at NUL.
    let s = &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())];
    let mut escapes = 0;
    for &c in s {
        let literal = match c {
            b'"' | b'\\' => {
                escapes += 1;
                escapes > 4
            }
            b'\r' | b'\n' => true,
            c => c >= 0x80,
        };
        if literal {
            out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
            out.extend_from_slice(s);
            return;
        }
    }
    out.push(b'"');
    for &c in s {
        if c == b'"' || c == b'\\' {
            out.push(b'\\');
        }
        out.push(c);
    }
    out.push(b'"');
}

pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    nstring(out, Some(s));
}

/// `nstring` with CR and LF removed first (header values that were folded).
pub fn nstring_nolf(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) if s.iter().any(|&c| c == b'\r' || c == b'\n') => {
            let v: Vec<u8> = s
                .iter()
                .copied()
                .filter(|&c| c != b'\r' && c != b'\n')
                .collect();
            nstring(out, Some(&v));
        }
        _ => nstring(out, s),
    }
}

/// Dovecot's `imap_append_string_for_humans` (ENVELOPE subject and display names): runs of
/// whitespace (folds included) become one space, leading/trailing whitespace is dropped,
/// and anything that had to change is sent as a literal.
pub fn string_for_humans(out: &mut Vec<u8>, src: &[u8]) {
    let mut remove = 0usize;
    let mut ws_prefix = true;
    let mut last_lwsp = true;
    let mut modify = false;
    for &c in src {
        match c {
            0 => {
                last_lwsp = false;
                modify = true;
            }
            b'\r' | b'\n' | b'\t' | b' ' => {
                if c != b' ' {
                    modify = true;
                }
                if last_lwsp {
                    modify = true;
                    remove += 1;
                }
                last_lwsp = true;
            }
            b'"' | b'\\' => {
                modify = true;
                last_lwsp = false;
            }
            c => {
                if c >= 0x80 {
                    modify = true;
                }
                last_lwsp = false;
            }
        }
        if !last_lwsp {
            ws_prefix = false;
        }
    }
    if last_lwsp && !src.is_empty() && !ws_prefix {
        modify = true;
        remove += 1;
    }
    if !modify {
        out.push(b'"');
        out.extend_from_slice(src);
        out.push(b'"');
        return;
    }
    if src.len() == remove {
        out.extend_from_slice(b"\"\"");
        return;
    }
    let mut body = Vec::with_capacity(src.len());
    let mut last_lwsp = true;
    for &c in src {
        match c {
            0 => {
                body.push(0x80);
                last_lwsp = false;
            }
            b'\r' | b'\n' | b'\t' | b' ' => {
                if !last_lwsp {
                    body.push(b' ');
                }
                last_lwsp = true;
            }
            c => {
                body.push(c);
                last_lwsp = false;
            }
        }
    }
    if last_lwsp && body.last() == Some(&b' ') {
        body.pop();
    }
    out.extend_from_slice(format!("{{{}}}\r\n", body.len()).as_bytes());
    out.extend_from_slice(&body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"abc", b"\"abc\""),
            (b"a\"b", b"\"a\\\"b\""),
            (b"\"\"\"\"\"", b"{5}\r\n\"\"\"\"\""),
            (b"caf\xc3\xa9", b"{5}\r\ncaf\xc3\xa9"),
        ];
        for (input, want) in cases {
            let mut out = Vec::new();
            string(&mut out, input);
            assert_eq!(out, *want);
        }
    }

    #[test]
    fn for_humans() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"plain subject", b"\"plain subject\""),
            (b"Re: TEST\r\n \r\n\tx\r\n  y", b"{12}\r\nRe: TEST x y"),
            (b"a\"b", b"{3}\r\na\"b"),
            (b"  ", b"\"\""),
            (b"", b"\"\""),
            (b"x ", b"{1}\r\nx"),
        ];
        for (input, want) in cases {
            let mut out = Vec::new();
            string_for_humans(&mut out, input);
            assert_eq!(out, *want, "{:?}", String::from_utf8_lossy(input));
        }
    }
}
