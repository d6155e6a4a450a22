//! RFC 5322 / RFC 2045 lexical tokens (atoms, quoted strings, comments, MIME tokens) and
//! Content-Type parameter lists with RFC 2231 continuations.
//!
//! The rules follow Dovecot's `rfc822-parser.c` and `rfc2231-parser.c` closely, because
//! ENVELOPE and BODYSTRUCTURE must print what a Dovecot server prints for the same (often
//! broken) input. Return values mirror Dovecot's: `Ok(true)` = more input follows, `Ok(false)`
//! = end of input reached, `Err(())` = syntax error.

/// Result of a lexer step: `Ok(true)` more data, `Ok(false)` at end, `Err(())` broken.
pub type Lex = Result<bool, ()>;

/// A `(name, value)` parameter, bytes as in the header.
pub type Param = (Vec<u8>, Vec<u8>);

const UNICODE_REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// RFC 5322 §3.2.3 atext, plus 8-bit bytes (Dovecot accepts raw UTF-8 in atoms).
pub fn is_atext(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&c) || c >= 0x80
}

/// RFC 2045 §5.1 token characters: any CHAR except SPACE, CTLs and tspecials.
fn is_token_char(c: u8) -> bool {
    c > b' ' && c != 0x7f && !b"()<>@,;:\\\"/[]?=".contains(&c)
}

pub struct Parser<'a> {
    pub data: &'a [u8],
    pub pos: usize,
    /// Text of the last comment skipped (used for `addr (Name)`), when tracking is on.
    pub last_comment: Option<Vec<u8>>,
    /// Replace NUL bytes in quoted strings and comments (Dovecot uses U+FFFD).
    pub nul_replacement: bool,
}

impl<'a> Parser<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Parser {
            data,
            pos: 0,
            last_comment: None,
            nul_replacement: false,
        }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// Current byte, or 0 at the end (Dovecot reads the terminating NUL there).
    pub fn cur(&self) -> u8 {
        self.data.get(self.pos).copied().unwrap_or(0)
    }

    fn more(&self) -> Lex {
        Ok(self.pos < self.data.len())
    }

    /// Skip a (nested) comment starting at `(`; remembers its text in `last_comment`.
    pub fn skip_comment(&mut self) -> Lex {
        let mut level = 1;
        let track = self.last_comment.is_some();
        let mut text = Vec::new();
        self.pos += 1;
        let mut start = self.pos;
        while self.pos < self.data.len() {
            match self.data[self.pos] {
                0 if track && self.nul_replacement => {
                    text.extend_from_slice(&self.data[start..self.pos]);
                    text.extend_from_slice(UNICODE_REPLACEMENT);
                    start = self.pos + 1;
                }
                b'(' => level += 1,
                b')' => {
                    level -= 1;
                    if level == 0 {
                        if track {
                            text.extend_from_slice(&self.data[start..self.pos]);
                            self.last_comment = Some(text);
                        }
                        self.pos += 1;
                        return self.more();
                    }
                }
                b'\n' if track => {
                    // Folding whitespace: drop the (CR)LF.
                    let mut end = self.pos;
                    if end > start && self.data[end - 1] == b'\r' {
                        end -= 1;
                    }
                    text.extend_from_slice(&self.data[start..end]);
                    start = self.pos + 1;
                }
                b'\\' => {
                    self.pos += 1;
                    if self.pos >= self.data.len() {
                        return Err(());
                    }
                    if matches!(self.data[self.pos], b'\r' | b'\n' | 0) {
                        self.pos -= 1;
                    } else if track {
                        text.extend_from_slice(&self.data[start..self.pos - 1]);
                        start = self.pos;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        Err(())
    }

    /// Skip CFWS (RFC 5322 §3.2.2).
    pub fn skip_lwsp(&mut self) -> Lex {
        while self.pos < self.data.len() {
            match self.data[self.pos] {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'(' => {
                    self.skip_comment()?;
                }
                _ => break,
            }
        }
        self.more()
    }

    /// `atom = [CFWS] 1*atext [CFWS]`
    pub fn parse_atom(&mut self, out: &mut Vec<u8>) -> Lex {
        if self.at_end() || !is_atext(self.cur()) {
            return Err(());
        }
        let start = self.pos;
        while self.pos < self.data.len() && is_atext(self.data[self.pos]) {
            self.pos += 1;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        if self.at_end() {
            Ok(false)
        } else {
            self.skip_lwsp()
        }
    }

    /// `dot-atom`, allowing CFWS around the dots as RFC 822 did.
    pub fn parse_dot_atom(&mut self, out: &mut Vec<u8>) -> Lex {
        if self.at_end() || !is_atext(self.cur()) {
            return Err(());
        }
        let mut start = self.pos;
        self.pos += 1;
        while self.pos < self.data.len() {
            if is_atext(self.data[self.pos]) {
                self.pos += 1;
                continue;
            }
            out.extend_from_slice(&self.data[start..self.pos]);
            if !self.skip_lwsp()? {
                return Ok(false);
            }
            if self.cur() != b'.' {
                return Ok(true);
            }
            self.pos += 1;
            out.push(b'.');
            if !self.skip_lwsp()? {
                return Ok(false);
            }
            start = self.pos;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        Ok(false)
    }

    /// RFC 2045 token (Dovecot's `rfc822_parse_mime_token`); may be empty.
    pub fn parse_mime_token(&mut self, out: &mut Vec<u8>) -> Lex {
        let start = self.pos;
        while self.pos < self.data.len() && is_token_char(self.data[self.pos]) {
            self.pos += 1;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        self.skip_lwsp()
    }

    /// `quoted-string`; folding (CR)LF is removed, quoted-pairs unescaped.
    pub fn parse_quoted_string(&mut self, out: &mut Vec<u8>) -> Lex {
        self.pos += 1;
        let mut start = self.pos;
        while self.pos < self.data.len() {
            match self.data[self.pos] {
                0 if self.nul_replacement => {
                    out.extend_from_slice(&self.data[start..self.pos]);
                    out.extend_from_slice(UNICODE_REPLACEMENT);
                    start = self.pos + 1;
                }
                b'"' => {
                    out.extend_from_slice(&self.data[start..self.pos]);
                    self.pos += 1;
                    return self.skip_lwsp();
                }
                b'\n' => {
                    let mut end = self.pos;
                    if end > start && self.data[end - 1] == b'\r' {
                        end -= 1;
                    }
                    out.extend_from_slice(&self.data[start..end]);
                    start = self.pos + 1;
                }
                b'\\' => {
                    self.pos += 1;
                    if self.pos >= self.data.len() {
                        return Err(());
                    }
                    if matches!(self.data[self.pos], b'\r' | b'\n' | 0) {
                        self.pos -= 1;
                    } else {
                        out.extend_from_slice(&self.data[start..self.pos - 1]);
                        start = self.pos;
                    }
                }
                _ => {}
            }
            self.pos += 1;
        }
        Err(())
    }

    /// Atom that may also contain dots (obs-phrase); may be empty.
    fn parse_atom_or_dot(&mut self, out: &mut Vec<u8>) -> Lex {
        let start = self.pos;
        while self.pos < self.data.len()
            && (is_atext(self.data[self.pos]) || self.data[self.pos] == b'.')
        {
            self.pos += 1;
        }
        out.extend_from_slice(&self.data[start..self.pos]);
        if self.at_end() {
            Ok(false)
        } else {
            self.skip_lwsp()
        }
    }

    /// `phrase = 1*word / obs-phrase`; words are joined with single spaces.
    pub fn parse_phrase(&mut self, out: &mut Vec<u8>) -> Lex {
        if self.at_end() {
            return Ok(false);
        }
        if self.cur() == b'.' {
            return Err(());
        }
        loop {
            let more = if self.cur() == b'"' {
                self.parse_quoted_string(out)?
            } else {
                self.parse_atom_or_dot(out)?
            };
            if !more {
                return Ok(false);
            }
            let c = self.cur();
            if !is_atext(c) && c != b'"' && c != b'.' {
                break;
            }
            out.push(b' ');
        }
        self.skip_lwsp()
    }

    /// `domain-literal` starting at `[`.
    fn parse_domain_literal(&mut self, out: &mut Vec<u8>) -> Lex {
        let start = self.pos;
        let mut seg = start;
        self.pos += 1;
        while self.pos < self.data.len() {
            match self.data[self.pos] {
                b'\\' => {
                    self.pos += 1;
                    if self.pos >= self.data.len() {
                        break;
                    }
                }
                b']' => {
                    self.pos += 1;
                    out.extend_from_slice(&self.data[seg..self.pos]);
                    return self.skip_lwsp();
                }
                b'\n' => {
                    let mut end = self.pos;
                    if end > seg && self.data[end - 1] == b'\r' {
                        end -= 1;
                    }
                    out.extend_from_slice(&self.data[seg..end]);
                    seg = self.pos + 1;
                }
                _ => {}
            }
            self.pos += 1;
        }
        Err(())
    }

    /// `"@" domain` where domain = dot-atom / domain-literal.
    pub fn parse_domain(&mut self, out: &mut Vec<u8>) -> Lex {
        self.pos += 1;
        if !self.skip_lwsp()? {
            return Err(());
        }
        if self.cur() == b'[' {
            self.parse_domain_literal(out)
        } else {
            self.parse_dot_atom(out)
        }
    }

    /// `;` attribute `=` value (RFC 2045 §5.1); returns `Ok(None)` at the end of input.
    fn parse_content_param(&mut self) -> Result<Option<Param>, ()> {
        if self.at_end() {
            return Ok(None);
        }
        if self.cur() != b';' {
            return Err(());
        }
        self.pos += 1;
        if !self.skip_lwsp()? {
            return Err(());
        }
        let mut key = Vec::new();
        if !self.parse_mime_token(&mut key)? {
            return Err(());
        }
        if self.cur() != b'=' {
            return Err(());
        }
        self.pos += 1;
        let mut value = Vec::new();
        let ret = match self.skip_lwsp() {
            Err(()) => Err(()),
            Ok(false) => Ok(false),
            Ok(true) if self.cur() == b'"' => self.parse_quoted_string(&mut value),
            Ok(true) if self.cur() == b'=' => {
                // Broken input seen in the wild: name==?utf-8?b?...?= unquoted.
                while self.pos < self.data.len()
                    && !matches!(self.data[self.pos], b';' | b' ' | b'\t' | b'\r' | b'\n')
                {
                    value.push(self.data[self.pos]);
                    self.pos += 1;
                }
                Ok(true)
            }
            Ok(true) => self.parse_mime_token(&mut value),
        };
        match ret {
            Err(()) => Err(()),
            Ok(_) => Ok(Some((key, value))),
        }
    }

    /// Parameter list after a Content-Type/Disposition value, RFC 2231 continuations merged
    /// (values are not decoded: BODYSTRUCTURE shows `name*` with the raw `charset''%XX` value,
    /// as Dovecot does).
    pub fn parse_params(&mut self) -> Vec<Param> {
        struct Cont {
            key: Vec<u8>,
            idx: u32,
            extended: bool,
            value: Vec<u8>,
        }
        let mut result = Vec::new();
        let mut conts: Vec<Cont> = Vec::new();
        // Dovecot reuses one struct across iterations: a bare `name*` keeps the previous index.
        let mut idx: u32 = 0;
        loop {
            let (key, value) = match self.parse_content_param() {
                Ok(None) => break,
                Ok(Some(kv)) => kv,
                Err(()) => {
                    if self.at_end() {
                        break;
                    }
                    self.pos += 1;
                    continue;
                }
            };
            let Some(star) = key.iter().position(|&c| c == b'*') else {
                result.push((key, value));
                continue;
            };
            let mut p = star;
            if p + 1 < key.len() {
                p += 1;
                idx = 0;
                while p < key.len() && key[p].is_ascii_digit() {
                    idx = idx.wrapping_mul(10).wrapping_add(u32::from(key[p] - b'0'));
                    p += 1;
                }
            }
            let extended = p < key.len() && key[p] == b'*';
            if extended {
                p += 1;
            }
            if p < key.len() {
                result.push((key, value));
            } else {
                conts.push(Cont {
                    key: key[..star].to_vec(),
                    idx,
                    extended,
                    value,
                });
            }
        }
        if conts.is_empty() {
            return result;
        }
        conts.sort_by(|a, b| {
            a.key
                .to_ascii_lowercase()
                .cmp(&b.key.to_ascii_lowercase())
                .then(a.idx.cmp(&b.idx))
        });
        let mut i = 0;
        while i < conts.len() {
            let mut j = i;
            let mut ok = true;
            let mut have_extended = false;
            let mut next_idx = 0u32;
            while j < conts.len() && conts[j].key.eq_ignore_ascii_case(&conts[i].key) {
                if conts[j].idx != next_idx {
                    ok = false;
                }
                have_extended |= conts[j].extended;
                next_idx = next_idx.wrapping_add(1);
                j += 1;
            }
            if !ok {
                for c in &conts[i..j] {
                    let mut k = c.key.clone();
                    k.extend_from_slice(format!("*{}", c.idx).as_bytes());
                    if c.extended {
                        k.push(b'*');
                    }
                    result.push((k, c.value.clone()));
                }
            } else {
                let mut v = Vec::new();
                if !conts[i].extended && have_extended {
                    v.extend_from_slice(b"''");
                }
                for c in &conts[i..j] {
                    v.extend_from_slice(&c.value);
                }
                let mut k = conts[i].key.clone();
                if have_extended {
                    k.push(b'*');
                }
                result.push((k, v));
            }
            i = j;
        }
        result
    }
}

/// Content-Type `type/subtype` (Dovecot `rfc822_parse_content_type`). On a syntax error the
/// result is empty and the parameters must not be read.
pub fn parse_content_type(p: &mut Parser<'_>) -> Result<(Vec<u8>, Vec<u8>), ()> {
    if !p.skip_lwsp()? {
        return Err(());
    }
    let mut ty = Vec::new();
    if !p.parse_mime_token(&mut ty)? || ty.is_empty() || p.cur() != b'/' {
        return Err(());
    }
    p.pos += 1;
    if !p.skip_lwsp()? {
        return Err(());
    }
    let mut sub = Vec::new();
    let more = p.parse_mime_token(&mut sub)?;
    // Anything but parameters after the subtype makes the whole value invalid (Dovecot).
    if sub.is_empty() || (more && p.cur() != b';') {
        return Err(());
    }
    Ok((ty, sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(s: &str) -> Vec<(String, String)> {
        let mut p = Parser::new(s.as_bytes());
        p.parse_params()
            .into_iter()
            .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
            .collect()
    }

    #[test]
    fn rfc2231_params() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("; charset=us-ascii", &[("charset", "us-ascii")]),
            ("; name=\"a b.txt\"", &[("name", "a b.txt")]),
            // RFC 2231 §3 continuations are merged, not decoded (Dovecot shows them raw).
            ("; name*1=\"b\"; name*0=\"a\"", &[("name", "ab")]),
            (
                "; title*=us-ascii'en'This%20is",
                &[("title*", "us-ascii'en'This%20is")],
            ),
            (
                "; t*0*=us-ascii'en'A%20; t*1=B",
                &[("t*", "us-ascii'en'A%20B")],
            ),
            // Missing index: left as separate parameters.
            ("; n*0=a; n*2=c", &[("n*0", "a"), ("n*2", "c")]),
            // Dovecot resyncs one byte past a broken parameter, which here swallows the `;`
            // before `b`: what follows is lost, as in Dovecot.
            ("; a=1; broken; b=2", &[("a", "1")]),
            ("; a=", &[("a", "")]),
        ];
        for (input, want) in cases {
            let got = params(input);
            let want: Vec<(String, String)> = want
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(got, want, "{input}");
        }
    }

    #[test]
    fn content_type() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("text/plain", Some(("text", "plain"))),
            (" TEXT / HTML ; x=y", Some(("TEXT", "HTML"))),
            ("application-x-gzip; name=a", None),
            ("multipart/mixed boundary=x", None),
            ("", None),
        ];
        for (input, want) in cases {
            let mut p = Parser::new(input.as_bytes());
            let got = parse_content_type(&mut p).ok();
            let got =
                got.map(|(a, b)| (String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap()));
            assert_eq!(
                got,
                want.map(|(a, b)| (a.to_string(), b.to_string())),
                "{input}"
            );
        }
    }
}
