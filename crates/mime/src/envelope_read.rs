//! Reading the stored ENVELOPE text back (SEARCH FROM/TO/CC/BCC, SORT keys).
//!
//! FROM, TO, CC, BCC: RFC 9051 §6.4.4 matches them against "the envelope structure's" field, so
//! the text searched is the parsed address list from the stored ENVELOPE, written back as
//! `name <mailbox@host>` (display names RFC 2047-decoded), as Dovecot does. A broken address is
//! searched as the envelope has it (`MISSING_MAILBOX`...), not as the raw header line.

/// One parsed IMAP value of the ENVELOPE text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Nil,
    Str(Vec<u8>),
    List(Vec<Value>),
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn skip_space(&mut self) {
        while self
            .b
            .get(self.i)
            .is_some_and(|c| *c == b' ' || *c == b'\r' || *c == b'\n')
        {
            self.i += 1;
        }
    }

    fn value(&mut self, depth: u32) -> Option<Value> {
        self.skip_space();
        match *self.b.get(self.i)? {
            b'(' if depth < 8 => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_space();
                    if *self.b.get(self.i)? == b')' {
                        self.i += 1;
                        return Some(Value::List(items));
                    }
                    items.push(self.value(depth + 1)?);
                }
            }
            b'"' => {
                self.i += 1;
                let mut s = Vec::new();
                loop {
                    match *self.b.get(self.i)? {
                        b'\\' => {
                            s.push(*self.b.get(self.i + 1)?);
                            self.i += 2;
                        }
                        b'"' => {
                            self.i += 1;
                            return Some(Value::Str(s));
                        }
                        c => {
                            s.push(c);
                            self.i += 1;
                        }
                    }
                }
            }
            b'{' => {
                let close = self.i + self.b[self.i..].iter().position(|c| *c == b'}')?;
                let n: usize = std::str::from_utf8(&self.b[self.i + 1..close])
                    .ok()?
                    .trim_end_matches('+')
                    .parse()
                    .ok()?;
                let start = close + 3; // "}\r\n"
                let s = self.b.get(start..start.checked_add(n)?)?.to_vec();
                self.i = start + n;
                Some(Value::Str(s))
            }
            _ => {
                let start = self.i;
                while self.b.get(self.i).is_some_and(|c| !b" ()\r\n".contains(c)) {
                    self.i += 1;
                }
                let atom = &self.b[start..self.i];
                if atom.is_empty() {
                    return None;
                }
                Some(if atom.eq_ignore_ascii_case(b"NIL") {
                    Value::Nil
                } else {
                    Value::Str(atom.to_vec())
                })
            }
        }
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(String::from_utf8_lossy(s).into_owned()),
        _ => None,
    }
}

/// RFC 2047-decode a display name with the same decoder the header keys use.
pub fn decode_words(name: &str) -> String {
    let header = format!("X: {name}\r\n\r\n");
    crate::header_values(header.as_bytes(), "x")
        .into_iter()
        .next()
        .unwrap_or_else(|| name.to_string())
}

/// One address of an ENVELOPE (RFC 9051 §7.5.2), NIL fields as `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addr {
    pub name: Option<String>,
    pub mailbox: Option<String>,
    pub host: Option<String>,
}

/// What SORT and THREAD read from an ENVELOPE: the date and subject as stored (not yet RFC 2047
/// decoded) and the first address of From, To and Cc.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvelopeParts {
    /// The Date: header as written.
    pub date: Option<String>,
    pub subject: Option<String>,
    pub from: Option<Addr>,
    pub to: Option<Addr>,
    pub cc: Option<Addr>,
}

/// Read [`EnvelopeParts`] from the IMAP text of an ENVELOPE; `None` if it cannot be read.
pub fn envelope_parts(envelope: &[u8]) -> Option<EnvelopeParts> {
    let mut r = Reader { b: envelope, i: 0 };
    let Value::List(fields) = r.value(0)? else {
        return None;
    };
    let first = |field: usize| -> Option<Addr> {
        let Value::List(addrs) = fields.get(field)? else {
            return None;
        };
        // The first entry as it stands: a group's start `(NIL NIL "group" NIL)` gives the
        // group name as its mailbox (RFC 5256 "addr-mailbox of the first address", as Dovecot
        // sorts `To: undisclosed-recipients:;`).
        let Value::List(parts) = addrs.first()? else {
            return None;
        };
        let get = |i: usize| parts.get(i).and_then(text);
        Some(Addr {
            name: get(0),
            mailbox: get(2),
            host: get(3),
        })
    };
    Some(EnvelopeParts {
        date: fields.first().and_then(text),
        subject: fields.get(1).and_then(text),
        from: first(2),
        to: first(5),
        cc: first(6),
    })
}

/// The address list at `field` of an ENVELOPE, as searchable text: `name <mailbox@host>` per
/// address, `group: ... ;` around group members (RFC 9051 §7.5.2 group syntax). `None` when
/// the field is NIL or the envelope cannot be read.
pub fn envelope_addresses(envelope: &[u8], field: usize) -> Option<String> {
    let mut r = Reader { b: envelope, i: 0 };
    let Value::List(fields) = r.value(0)? else {
        return None;
    };
    let Value::List(addrs) = fields.get(field)? else {
        return None;
    };
    let mut out: Vec<String> = Vec::new();
    for a in addrs {
        let Value::List(parts) = a else { continue };
        let get = |i: usize| parts.get(i).and_then(text);
        let (name, route, mailbox, host) = (get(0), get(1), get(2), get(3));
        match (mailbox, host) {
            // Start of a group: (NIL NIL "group" NIL).
            (Some(group), None) => out.push(format!("{group}:")),
            // End of a group: (NIL NIL NIL NIL).
            (None, None) => out.push(";".into()),
            (mailbox, Some(host)) => {
                let spec = format!("{}@{host}", mailbox.unwrap_or_default());
                // A source route is written `<@route:mailbox@host>` (RFC 5322 obs-route), as
                // Dovecot writes it back.
                out.push(match (name, route) {
                    (Some(n), r) if !n.is_empty() => {
                        let r = r.map(|r| format!("{r}:")).unwrap_or_default();
                        format!("{} <{r}{spec}>", decode_words(&n))
                    }
                    (_, Some(r)) => format!("<{r}:{spec}>"),
                    _ => spec,
                });
            }
        }
    }
    Some(out.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_envelope_addresses() {
        let env = b"(\"Fri, 11 Jul 2003\" \"Is dinner ready?\" ((\"Joe SixPack\" NIL \"joe\" \"football.example.com\")) NIL ((NIL \"@route\" \"u\" \"d\")) ((NIL NIL \"grp\" NIL)(NIL NIL \"a\" \"b.c\")(NIL NIL NIL NIL)) ((\"=?utf-8?q?caf=C3=A9?=\" NIL \"x\" \"y\")) ((\"Big Bug bb\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")) NIL {5}\r\n<a@b>)";
        let cases = [
            (2, Some("Joe SixPack <joe@football.example.com>")),
            (3, None),
            (5, Some("grp:, a@b.c, ;")),
            (6, Some("café <x@y>")),
            (7, Some("Big Bug bb <MISSING_MAILBOX@MISSING_DOMAIN>")),
            (4, Some("<@route:u@d>")),
        ];
        for (field, want) in cases {
            assert_eq!(
                envelope_addresses(env, field).as_deref(),
                want,
                "field {field}"
            );
        }
        assert_eq!(envelope_addresses(b"(garbage", 2), None);
        let parts = envelope_parts(env).unwrap();
        assert_eq!(parts.subject.as_deref(), Some("Is dinner ready?"));
        let from = parts.from.unwrap();
        assert_eq!(from.name.as_deref(), Some("Joe SixPack"));
        assert_eq!(from.mailbox.as_deref(), Some("joe"));
        // A group's start marker is the first To address: its mailbox is the group name.
        let to = parts.to.unwrap();
        assert_eq!((to.mailbox.as_deref(), to.host), (Some("grp"), None));
        assert_eq!(parts.cc.unwrap().host.as_deref(), Some("y"));
        assert_eq!(envelope_parts(b"(garbage"), None);
    }
}
