//! RFC 5322 §3.4 address lists for ENVELOPE, with Dovecot's repair rules: an address that
//! does not parse is kept, with `MISSING_MAILBOX` / `MISSING_DOMAIN` / `SYNTAX_ERROR`
//! filling the gaps (RFC 3501 §7.4.2 has no way to say "unparseable", and clients expect a
//! 4-tuple). Groups (RFC 5322 §3.4 `group`) become the RFC 3501 start marker
//! `(NIL NIL "name" NIL)` and end marker `(NIL NIL NIL NIL)`.

use crate::rfc822::{Lex, Parser};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    pub name: Option<Vec<u8>>,
    pub route: Option<Vec<u8>>,
    pub mailbox: Option<Vec<u8>>,
    pub domain: Option<Vec<u8>>,
}

struct Ctx<'a> {
    p: Parser<'a>,
    addr: Address,
    out: Vec<Address>,
    /// Scratch buffer shared between steps, like Dovecot's `ctx->str` (its content leaks from
    /// the local-part into a following display name, which the repair rules rely on).
    s: Vec<u8>,
}

impl Ctx<'_> {
    fn add(&mut self) {
        self.out.push(std::mem::take(&mut self.addr));
    }

    fn local_part(&mut self) -> Lex {
        self.s.clear();
        let r = if self.p.cur() == b'"' && !self.p.at_end() {
            self.p.parse_quoted_string(&mut self.s)
        } else {
            self.p.parse_dot_atom(&mut self.s)
        }?;
        self.addr.mailbox = Some(self.s.clone());
        Ok(r)
    }

    fn domain(&mut self) -> Lex {
        self.s.clear();
        let r = self.p.parse_domain(&mut self.s)?;
        self.addr.domain = Some(self.s.clone());
        Ok(r)
    }

    /// `obs-domain-list = "@" domain *(*(CFWS / ",") [CFWS] "@" domain)`
    fn domain_list(&mut self) -> Lex {
        self.s.clear();
        loop {
            if self.p.at_end() {
                return Ok(false);
            }
            if self.p.cur() != b'@' {
                break;
            }
            if !self.s.is_empty() {
                self.s.push(b',');
            }
            self.s.push(b'@');
            let mut d = std::mem::take(&mut self.s);
            let r = self.p.parse_domain(&mut d);
            self.s = d;
            if !r? {
                return Ok(false);
            }
            while self.p.skip_lwsp()? && self.p.cur() == b',' {
                self.p.pos += 1;
            }
        }
        self.addr.route = Some(self.s.clone());
        Ok(true)
    }

    /// `angle-addr = "<" [obs-route] addr-spec ">"`
    fn angle_addr(&mut self) -> Lex {
        self.p.pos += 1;
        if !self.p.skip_lwsp()? {
            return Err(());
        }
        if self.p.cur() == b'@' {
            if self.domain_list() == Ok(true) && self.p.cur() == b':' {
                self.p.pos += 1;
            } else {
                self.addr.route = Some(b"INVALID_ROUTE".to_vec());
                if self.p.at_end() {
                    return Err(());
                }
            }
            if !self.p.skip_lwsp()? {
                return Err(());
            }
        }
        if self.p.cur() != b'>' {
            if !self.local_part()? {
                return Err(());
            }
            if self.p.cur() == b'@' && !self.domain()? {
                return Err(());
            }
        }
        if self.p.cur() != b'>' || self.p.at_end() {
            return Err(());
        }
        self.p.pos += 1;
        self.p.skip_lwsp()
    }

    /// `name-addr = [display-name] angle-addr`
    fn name_addr(&mut self) -> Lex {
        self.s.clear();
        let mut s = std::mem::take(&mut self.s);
        let r = self.p.parse_phrase(&mut s);
        self.s = s;
        if r != Ok(true) || self.p.cur() != b'<' {
            return Err(());
        }
        self.addr.name = if self.s.is_empty() {
            None
        } else {
            Some(self.s.clone())
        };
        if self.angle_addr().is_err() {
            self.addr.domain = Some(b"SYNTAX_ERROR".to_vec());
        }
        Ok(!self.p.at_end())
    }

    /// `addr-spec = local-part "@" domain`, or a bare word / phrase that is repaired.
    fn addr_spec(&mut self) -> Lex {
        self.p.last_comment = Some(Vec::new());
        let quoted = self.p.cur() == b'"';
        let mut ret = self.local_part();
        let mut ret2: Option<Lex> = None;
        if ret != Ok(false) && self.p.cur() == b'@' && !self.p.at_end() {
            let r2 = self.domain();
            if r2 != Ok(true) {
                ret = r2;
            }
            ret2 = Some(r2);
        }
        let comment = self.p.last_comment.take().unwrap_or_default();
        if !comment.is_empty() {
            self.addr.name = Some(comment);
        } else if ret2.is_none() {
            // "user" alone is a mailbox, but "user more words" is a display name.
            self.s.push(b' ');
            let orig = self.s.len();
            let mut s = std::mem::take(&mut self.s);
            let _ = self.p.parse_phrase(&mut s);
            self.s = s;
            if self.s.len() != orig {
                self.addr.mailbox = None;
                self.addr.name = Some(self.s.clone());
            } else if !quoted {
                self.addr.domain = Some(Vec::new());
            }
            ret = Err(());
        }
        ret
    }

    fn add_fixed(&mut self) {
        if self.addr.mailbox.is_none() {
            self.addr.mailbox = Some(b"MISSING_MAILBOX".to_vec());
        }
        if self.addr.domain.as_ref().is_none_or(|d| d.is_empty()) {
            self.addr.domain = Some(b"MISSING_DOMAIN".to_vec());
        }
        self.add();
    }

    /// `mailbox = name-addr / addr-spec`
    fn mailbox(&mut self) -> Lex {
        let start = self.p.pos;
        let mut ret = self.name_addr();
        if ret.is_err() {
            self.p.pos = start;
            self.addr = Address::default();
            ret = self.addr_spec();
        }
        self.add_fixed();
        ret
    }

    /// `group = display-name ":" [group-list] ";" [CFWS]`; `Err` means "not a group".
    fn group(&mut self) -> Lex {
        self.s.clear();
        let mut s = std::mem::take(&mut self.s);
        let r = self.p.parse_phrase(&mut s);
        self.s = s;
        if r != Ok(true) || self.p.cur() != b':' {
            return Err(());
        }
        self.p.pos += 1;
        let mut ret = self.p.skip_lwsp();
        self.addr.mailbox = Some(self.s.clone());
        self.add();
        if ret == Ok(true) && self.p.cur() != b';' {
            loop {
                if self.mailbox() != Ok(true) {
                    ret = Err(());
                    break;
                }
                if self.p.cur() != b',' {
                    break;
                }
                self.p.pos += 1;
                if self.p.skip_lwsp() != Ok(true) {
                    ret = Err(());
                    break;
                }
            }
        }
        if ret.is_ok() {
            if self.p.at_end() || self.p.cur() != b';' {
                ret = Err(());
            } else {
                self.p.pos += 1;
                ret = self.p.skip_lwsp();
            }
        }
        self.add();
        Ok(ret != Ok(false))
    }

    fn address(&mut self) -> Lex {
        let start = self.p.pos;
        match self.group() {
            Err(()) => {
                self.p.pos = start;
                self.addr = Address::default();
                self.mailbox()
            }
            ok => ok,
        }
    }

    fn address_list(&mut self) {
        loop {
            if self.address() == Ok(false) {
                break;
            }
            if self.p.cur() != b',' || self.p.at_end() {
                break;
            }
            self.p.pos += 1;
            if self.p.skip_lwsp() != Ok(true) {
                break;
            }
        }
    }
}

/// Parse an address-list header value (unfolded or not) into ENVELOPE addresses.
pub fn parse_address_list(value: &[u8]) -> Vec<Address> {
    let mut p = Parser::new(value);
    p.nul_replacement = true;
    let mut ctx = Ctx {
        p,
        addr: Address::default(),
        out: Vec::new(),
        s: Vec::new(),
    };
    if ctx.p.skip_lwsp() != Ok(true) {
        return Vec::new();
    }
    ctx.address_list();
    ctx.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(v: &[Address]) -> String {
        let f = |o: &Option<Vec<u8>>| match o {
            None => "NIL".to_string(),
            Some(b) => format!("\"{}\"", String::from_utf8_lossy(b)),
        };
        v.iter()
            .map(|a| {
                format!(
                    "({} {} {} {})",
                    f(&a.name),
                    f(&a.route),
                    f(&a.mailbox),
                    f(&a.domain)
                )
            })
            .collect()
    }

    #[test]
    fn address_lists() {
        let cases: &[(&str, &str)] = &[
            ("a@b.c", "(NIL NIL \"a\" \"b.c\")"),
            ("Joe Q. <joe@x.org>", "(\"Joe Q.\" NIL \"joe\" \"x.org\")"),
            (
                "\"Doe, J\" <j@d>, k@e",
                "(\"Doe, J\" NIL \"j\" \"d\")(NIL NIL \"k\" \"e\")",
            ),
            ("j@d (Jane Doe)", "(\"Jane Doe\" NIL \"j\" \"d\")"),
            // RFC 5322 §3.4 group syntax -> RFC 3501 group markers.
            (
                "A Group: a@b, c@d;, e@f",
                "(NIL NIL \"A Group\" NIL)(NIL NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")(NIL NIL NIL NIL)(NIL NIL \"e\" \"f\")",
            ),
            (
                "undisclosed-recipients:;",
                "(NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)",
            ),
            // Encoded words stay encoded in ENVELOPE (Dovecot does not decode them).
            (
                "=?UTF-8?B?Rm9vLCBCYXI=?= <f@b>",
                "(\"=?UTF-8?B?Rm9vLCBCYXI=?=\" NIL \"f\" \"b\")",
            ),
            (
                "Big Bug bb@bug.com",
                "(\"Big Bug bb\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")",
            ),
            ("user", "(NIL NIL \"user\" \"MISSING_DOMAIN\")"),
            ("<@r1,@r2:a@b>", "(NIL \"@r1,@r2\" \"a\" \"b\")"),
            ("<>", "(NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(
                show(&parse_address_list(input.as_bytes())),
                *want,
                "{input}"
            );
        }
    }
}
