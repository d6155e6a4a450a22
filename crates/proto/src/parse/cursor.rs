//! The lexer level of the parser: a cursor over the command's lines and literals, and the
//! RFC 9051 §9 terminals (`atom`, `number`, `quoted`, `literal`, `astring`, `nstring`...).

use std::path::PathBuf;

use crate::frame::{Fragment, is_astring_char, is_atom_char};

/// A parse failure below the command level: a short description, without the tag.
pub(crate) type PResult<T> = Result<T, String>;

pub(crate) fn err<T>(message: impl Into<String>) -> PResult<T> {
    Err(message.into())
}

/// The payload of a literal: in memory, or spooled to a file by the server.
pub(crate) enum Literal<'a> {
    Bytes(&'a [u8]),
    Spooled { path: PathBuf, len: u64 },
}

/// Position in `[Line, Literal, Line, ...]`: always inside a line fragment.
/// Cloning it is cheap and is how a rule backtracks.
#[derive(Clone)]
pub(crate) struct Cursor<'a> {
    frags: &'a [Fragment],
    idx: usize,
    line: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(frags: &'a [Fragment]) -> PResult<Self> {
        match frags.first() {
            Some(Fragment::Line(line)) => Ok(Cursor {
                frags,
                idx: 0,
                line,
                pos: 0,
            }),
            _ => err("Empty command"),
        }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.line.get(self.pos).copied()
    }

    pub(crate) fn peek_at(&self, k: usize) -> Option<u8> {
        self.line.get(self.pos + k).copied()
    }

    /// The unread rest of the current line (CRLF included).
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.line[self.pos..]
    }

    pub(crate) fn bump(&mut self) {
        self.pos += 1;
    }

    pub(crate) fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.pos += 1;
        }
        hit
    }

    /// Consume `text` (ASCII, compared case-insensitively: RFC 5234 strings are) if it is next.
    pub(crate) fn eat_ci(&mut self, text: &[u8]) -> bool {
        let hit = self
            .rest()
            .get(..text.len())
            .is_some_and(|r| r.eq_ignore_ascii_case(text));
        if hit {
            self.pos += text.len();
        }
        hit
    }

    pub(crate) fn expect(&mut self, b: u8) -> PResult<()> {
        if self.eat(b) {
            Ok(())
        } else if self.at_line_end() {
            err("Missing arguments")
        } else {
            err(format!("Expected '{}'", char::from(b)))
        }
    }

    /// A single SP between arguments.
    pub(crate) fn sp(&mut self) -> PResult<()> {
        self.expect(b' ')
    }

    /// True at the CRLF (or LF, or end) of the current line.
    pub(crate) fn at_line_end(&self) -> bool {
        matches!(self.rest(), b"" | b"\r\n" | b"\n")
    }

    /// The command must end here: nothing left on the line and no fragment after it.
    pub(crate) fn finish(&self) -> PResult<()> {
        if !self.at_line_end() {
            return err("Extra arguments or invalid characters");
        }
        if self.idx + 1 != self.frags.len() {
            return err("Unexpected literal");
        }
        Ok(())
    }

    /// The characters of a keyword (`RFC822.SIZE`, `SPECIAL-USE`, `HEADER.FIELDS`...).
    pub(crate) fn keyword(&mut self) -> &'a [u8] {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            self.pos += 1;
        }
        &self.line[start..self.pos]
    }

    /// Like [`Self::keyword`], uppercased, for matching.
    pub(crate) fn keyword_upper(&mut self) -> String {
        String::from_utf8_lossy(self.keyword()).to_ascii_uppercase()
    }

    /// `atom = 1*ATOM-CHAR`.
    pub(crate) fn atom(&mut self) -> PResult<&'a [u8]> {
        let start = self.pos;
        while self.peek().is_some_and(is_atom_char) {
            self.pos += 1;
        }
        if self.pos == start || self.peek().is_some_and(|b| b >= 0x80) {
            return self.atom_error();
        }
        Ok(&self.line[start..self.pos])
    }

    fn atom_error<T>(&self) -> PResult<T> {
        match self.peek() {
            _ if self.at_line_end() => err("Missing arguments"),
            Some(b) if b >= 0x80 => err("8bit data in atom"),
            _ => err("Invalid characters in atom"),
        }
    }

    /// `1*DIGIT` as u64, at most `max`.
    fn digits(&mut self, max: u64) -> PResult<u64> {
        let start = self.pos;
        let mut value: u64 = 0;
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(d - b'0')))
                .filter(|&v| v <= max)
                .ok_or_else(|| "Number too large".to_string())?;
            self.pos += 1;
        }
        if self.pos == start {
            return err("Expected a number");
        }
        Ok(value)
    }

    /// `number = 1*DIGIT` (unsigned 32-bit).
    pub(crate) fn number(&mut self) -> PResult<u32> {
        Ok(self.digits(u64::from(u32::MAX))? as u32)
    }

    /// `nz-number`.
    pub(crate) fn nz_number(&mut self) -> PResult<u32> {
        match self.number()? {
            0 => err("Zero is not a valid number here"),
            n => Ok(n),
        }
    }

    /// `number64` (RFC 9051: 0 to 2^63-1), also `mod-sequence-value`/`valzer` (RFC 7162).
    pub(crate) fn number64(&mut self) -> PResult<u64> {
        self.digits(i64::MAX as u64)
    }

    /// `quoted = DQUOTE *QUOTED-CHAR DQUOTE`; 8-bit bytes are kept (UTF8-2..4 in rev2).
    pub(crate) fn quoted(&mut self) -> PResult<Vec<u8>> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => match self.peek_at(1) {
                    Some(c @ (b'"' | b'\\')) => {
                        out.push(c);
                        self.pos += 2;
                    }
                    _ => return err("Invalid escape in quoted string"),
                },
                Some(0) => return err("NUL in quoted string"),
                None | Some(b'\r' | b'\n') => return err("Missing '\"'"),
                Some(b) => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
    }

    /// True if a `literal` (or `literal8` when `binary`) starts here.
    pub(crate) fn at_literal(&self, binary: bool) -> bool {
        self.peek() == Some(b'{')
            || (binary && self.peek() == Some(b'~') && self.peek_at(1) == Some(b'{'))
    }

    /// `literal = "{" number64 ["+"] "}" CRLF *CHAR8` (RFC 7888 for `+`), or with `binary`
    /// also `literal8 = "~{" number64 ["+"] "}" CRLF *OCTET` (RFC 3516). The announcement must end
    /// the line; the bytes are the next fragment. Returns the payload and whether it was
    /// a literal8. `spool_ok`: a spooled fragment is accepted (APPEND message data only).
    pub(crate) fn literal(&mut self, binary: bool, spool_ok: bool) -> PResult<(Literal<'a>, bool)> {
        let is8 = binary && self.eat(b'~');
        self.expect(b'{')?;
        let len = self.digits(u64::MAX)?;
        self.eat(b'+');
        self.expect(b'}')?;
        if !matches!(self.rest(), b"\r\n" | b"\n") {
            return err("Literal announcement must end the line");
        }
        let payload = match self.frags.get(self.idx + 1) {
            Some(Fragment::Literal(bytes)) if bytes.len() as u64 == len => Literal::Bytes(bytes),
            Some(Fragment::Spooled { path, len: l }) if spool_ok && *l == len => Literal::Spooled {
                path: path.clone(),
                len,
            },
            Some(Fragment::Spooled { .. }) if !spool_ok => {
                return err("Literal too large for this argument");
            }
            Some(Fragment::Literal(_) | Fragment::Spooled { .. }) => {
                return err("Literal size mismatch");
            }
            _ => return err("Missing literal data"),
        };
        match self.frags.get(self.idx + 2) {
            Some(Fragment::Line(line)) => {
                self.idx += 2;
                self.line = line;
                self.pos = 0;
            }
            _ => return err("Missing line after literal"),
        }
        Ok((payload, is8))
    }

    /// A literal used as a string: in memory and without NUL (`CHAR8`).
    fn literal_string(&mut self) -> PResult<Vec<u8>> {
        match self.literal(false, false)? {
            (Literal::Bytes(b), _) if b.contains(&0) => err("NUL in literal"),
            (Literal::Bytes(b), _) => Ok(b.to_vec()),
            (Literal::Spooled { .. }, _) => err("Literal too large for this argument"),
        }
    }

    /// `string = quoted / literal`.
    pub(crate) fn string(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') => self.literal_string(),
            _ if self.at_line_end() => err("Missing arguments"),
            _ => err("Expected a string"),
        }
    }

    /// `astring = 1*ASTRING-CHAR / string`.
    pub(crate) fn astring(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let start = self.pos;
                while self.peek().is_some_and(is_astring_char) {
                    self.pos += 1;
                }
                if self.pos == start || self.peek().is_some_and(|b| b >= 0x80) {
                    return self.atom_error();
                }
                Ok(self.line[start..self.pos].to_vec())
            }
        }
    }

    /// `nstring = string / nil`.
    pub(crate) fn nstring(&mut self) -> PResult<Option<Vec<u8>>> {
        if self.rest().len() >= 3
            && self.rest()[..3].eq_ignore_ascii_case(b"NIL")
            && !self.peek_at(3).is_some_and(is_atom_char)
        {
            self.pos += 3;
            return Ok(None);
        }
        self.string().map(Some)
    }

    /// `list-mailbox = 1*list-char / string`; list-char = ATOM-CHAR / list-wildcards / resp-specials.
    pub(crate) fn list_mailbox(&mut self) -> PResult<Vec<u8>> {
        match self.peek() {
            Some(b'"' | b'{') => self.string(),
            _ => {
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|b| is_astring_char(b) || b == b'%' || b == b'*')
                {
                    self.pos += 1;
                }
                if self.pos == start || self.peek().is_some_and(|b| b >= 0x80) {
                    return self.atom_error();
                }
                Ok(self.line[start..self.pos].to_vec())
            }
        }
    }

    /// `"(" item *(SP item) ")"` (or with `empty_ok`, also `"()"`), at most `max` items.
    pub(crate) fn paren_list<T>(
        &mut self,
        empty_ok: bool,
        max: usize,
        mut item: impl FnMut(&mut Self) -> PResult<T>,
    ) -> PResult<Vec<T>> {
        self.expect(b'(')?;
        let mut items = Vec::new();
        if self.eat(b')') {
            return if empty_ok {
                Ok(items)
            } else {
                err("Empty list")
            };
        }
        loop {
            if items.len() >= max {
                return err("Too many list elements");
            }
            items.push(item(self)?);
            if self.eat(b')') {
                return Ok(items);
            }
            self.sp()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> Vec<Fragment> {
        vec![Fragment::Line(s.as_bytes().to_vec())]
    }

    #[test]
    fn astrings() {
        let cases: &[(&str, Result<&[u8], &str>)] = &[
            ("abc]def rest", Ok(b"abc]def")),
            ("\"a \\\"b\\\\\" rest", Ok(b"a \"b\\")),
            ("\"caf\u{e9}\"", Ok("caf\u{e9}".as_bytes())),
            ("\"\"", Ok(b"")),
            ("\"a\\b\"", Err("Invalid escape in quoted string")),
            ("\"abc", Err("Missing '\"'")),
            ("\"abc\r\n", Err("Missing '\"'")),
            ("(x", Err("Invalid characters in atom")),
            ("\u{e9}", Err("8bit data in atom")),
            ("\r\n", Err("Missing arguments")),
        ];
        for (input, want) in cases {
            let frags = line(input);
            let mut c = Cursor::new(&frags).unwrap();
            let got = c.astring();
            assert_eq!(
                got.as_deref().map_err(String::as_str),
                want.as_ref().map(|v| *v).map_err(|e| *e),
                "{input:?}"
            );
        }
    }

    #[test]
    fn numbers() {
        let cases: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("4294967295", Some(4294967295)),
            ("4294967296", None),
            ("x", None),
        ];
        for (input, want) in cases {
            let frags = line(input);
            let mut c = Cursor::new(&frags).unwrap();
            assert_eq!(c.number().ok().map(u64::from), *want, "{input:?}");
        }
        let frags = line("9223372036854775807 9223372036854775808");
        let mut c = Cursor::new(&frags).unwrap();
        assert_eq!(c.number64(), Ok(i64::MAX as u64));
        c.sp().unwrap();
        assert!(c.number64().is_err());
    }

    #[test]
    fn literal_checks_length_and_position() {
        let ok = vec![
            Fragment::Line(b"{3}\r\n".to_vec()),
            Fragment::Literal(b"a\"b".to_vec()),
            Fragment::Line(b"\r\n".to_vec()),
        ];
        let mut c = Cursor::new(&ok).unwrap();
        assert_eq!(c.astring().unwrap(), b"a\"b");
        c.finish().unwrap();

        let short = vec![
            Fragment::Line(b"{4}\r\n".to_vec()),
            Fragment::Literal(b"abc".to_vec()),
            Fragment::Line(b"\r\n".to_vec()),
        ];
        assert_eq!(
            Cursor::new(&short).unwrap().astring().unwrap_err(),
            "Literal size mismatch"
        );
        let missing = vec![Fragment::Line(b"{3}\r\n".to_vec())];
        assert_eq!(
            Cursor::new(&missing).unwrap().astring().unwrap_err(),
            "Missing literal data"
        );
        let no_line = vec![
            Fragment::Line(b"{3}\r\n".to_vec()),
            Fragment::Literal(b"abc".to_vec()),
        ];
        assert_eq!(
            Cursor::new(&no_line).unwrap().astring().unwrap_err(),
            "Missing line after literal"
        );
        let not_at_end = vec![
            Fragment::Line(b"{3} x\r\n".to_vec()),
            Fragment::Literal(b"abc".to_vec()),
            Fragment::Line(b"\r\n".to_vec()),
        ];
        assert!(Cursor::new(&not_at_end).unwrap().astring().is_err());
        let nul = vec![
            Fragment::Line(b"{3}\r\n".to_vec()),
            Fragment::Literal(b"a\0b".to_vec()),
            Fragment::Line(b"\r\n".to_vec()),
        ];
        assert_eq!(
            Cursor::new(&nul).unwrap().astring().unwrap_err(),
            "NUL in literal"
        );
        let spooled = vec![
            Fragment::Line(b"{3}\r\n".to_vec()),
            Fragment::Spooled {
                path: "/tmp/x".into(),
                len: 3,
            },
            Fragment::Line(b"\r\n".to_vec()),
        ];
        assert!(Cursor::new(&spooled).unwrap().astring().is_err());
    }
}
