//! Cutting a command into lines and literals (RFC 9051 §4.3, RFC 7888, RFC 3516 `literal8`).

use std::path::PathBuf;

/// One piece of a command as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fragment {
    /// Text up to and including CRLF (a line that ends with a literal announcement includes
    /// the `{n}` and the CRLF after it).
    Line(Vec<u8>),
    /// The bytes of a literal that was kept in memory.
    Literal(Vec<u8>),
    /// A literal the server wrote to a file because it was large (APPEND message data only).
    Spooled { path: PathBuf, len: u64 },
}

/// What a line's end announces: `{n}`, `{n+}`, `{n-}`... `~{n}` before CRLF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiteralAnnouncement {
    pub len: u64,
    /// True for a synchronizing literal: the server must send `+ ...` before the client sends it.
    pub synchronizing: bool,
    /// `~{n}`: literal8 (RFC 3516).
    pub binary: bool,
}

/// If `line` (ending in CRLF, or LF alone) ends with a literal announcement, describe it.
/// Returns `Err(())` if the line ends with something that looks like an announcement but is
/// malformed (for example a number too large for u64).
///
/// Recognized: `{n}` (synchronizing), `{n+}` (RFC 7888 non-synchronizing; LITERAL- uses the
/// same spelling) and `~{n}` / `~{n+}` (RFC 3516 `literal8`). A line whose text does not end in
/// `}` announces nothing; `{` + digits + `}` with other characters inside (`{5x}`, `{}`) also
/// announces nothing and is left to the parser to reject.
// The `()` error is part of the published signature: there is only one way to be malformed.
#[allow(clippy::result_unit_err)]
pub fn literal_announcement(line: &[u8]) -> Result<Option<LiteralAnnouncement>, ()> {
    let text = strip_line_end(line);
    let Some(inner_end) = text.len().checked_sub(1).filter(|&i| text[i] == b'}') else {
        return Ok(None);
    };
    let mut end = inner_end;
    let synchronizing = if end > 0 && text[end - 1] == b'+' {
        end -= 1;
        false
    } else {
        true
    };
    let mut start = end;
    while start > 0 && text[start - 1].is_ascii_digit() {
        start -= 1;
    }
    if start == end || start == 0 || text[start - 1] != b'{' {
        return Ok(None);
    }
    let binary = start >= 2 && text[start - 2] == b'~';
    let len = parse_u64(&text[start..end]).ok_or(())?;
    Ok(Some(LiteralAnnouncement {
        len,
        synchronizing,
        binary,
    }))
}

/// The tag of a command line (`tag SP ...`), if the line starts with a valid `tag`
/// (RFC 9051 §9: `1*<any ASTRING-CHAR except "+">`) followed by SP or the line end.
/// Lets the server answer `tag NO [TOOBIG]` before it reads a literal it will refuse.
pub fn peek_tag(line: &[u8]) -> Option<String> {
    let n = line.iter().take_while(|&&b| is_tag_char(b)).count();
    if n == 0 {
        return None;
    }
    match line.get(n) {
        None | Some(b' ' | b'\r' | b'\n') => Some(String::from_utf8_lossy(&line[..n]).into_owned()),
        Some(_) => None,
    }
}

/// `tag` characters: ASTRING-CHAR (ATOM-CHAR or `]`) except `+`.
pub(crate) fn is_tag_char(b: u8) -> bool {
    is_astring_char(b) && b != b'+'
}

/// ATOM-CHAR: any 7-bit CHAR except `atom-specials` (`(){ %*"\]`, SP and CTLs).
pub(crate) fn is_atom_char(b: u8) -> bool {
    (0x21..0x7f).contains(&b)
        && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// ASTRING-CHAR = ATOM-CHAR / resp-specials.
pub(crate) fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// The line without its CRLF (or bare LF).
pub(crate) fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type Want = Result<Option<LiteralAnnouncement>, ()>;

    fn ann(len: u64, synchronizing: bool, binary: bool) -> Want {
        Ok(Some(LiteralAnnouncement {
            len,
            synchronizing,
            binary,
        }))
    }

    #[test]
    fn announcements() {
        let cases: &[(&[u8], Want)] = &[
            (b"a LOGIN {5}\r\n", ann(5, true, false)),
            (b"a LOGIN {5}\n", ann(5, true, false)),
            (b"a LOGIN {5+}\r\n", ann(5, false, false)),
            (b"a APPEND x ~{12}\r\n", ann(12, true, true)),
            (b"a APPEND x ~{0+}\r\n", ann(0, false, true)),
            (b"a APPEND x {007}\r\n", ann(7, true, false)),
            (b"{18446744073709551615}\r\n", ann(u64::MAX, true, false)),
            (b"a LOGIN {18446744073709551616}\r\n", Err(())),
            (b"a LOGIN {99999999999999999999999}\r\n", Err(())),
            (b"a NOOP\r\n", Ok(None)),
            (b"a LOGIN {}\r\n", Ok(None)),
            (b"a LOGIN {+}\r\n", Ok(None)),
            (b"a LOGIN {5-}\r\n", Ok(None)),
            (b"a LOGIN {5x}\r\n", Ok(None)),
            (b"a LOGIN 5}\r\n", Ok(None)),
            (b"a LOGIN {5} \r\n", Ok(None)),
            (b"a LOGIN {5}x\r\n", Ok(None)),
            (b"}\r\n", Ok(None)),
            (b"\r\n", Ok(None)),
            (b"", Ok(None)),
            (b"a LOGIN {5}", ann(5, true, false)),
        ];
        for (line, want) in cases {
            assert_eq!(
                &literal_announcement(line),
                want,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn tags() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"a001 LOGIN {5}\r\n", Some("a001")),
            (b"A]1 NOOP\r\n", Some("A]1")),
            (b"abc\r\n", Some("abc")),
            (b"abc", Some("abc")),
            (b"+abc NOOP\r\n", None),
            (b"a+b NOOP\r\n", None),
            (b"a*b NOOP\r\n", None),
            (b" a NOOP\r\n", None),
            (b"a{1} NOOP\r\n", None),
            (b"\xc3\xa9 NOOP\r\n", None),
            (b"", None),
        ];
        for (line, want) in cases {
            assert_eq!(
                peek_tag(line).as_deref(),
                *want,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
