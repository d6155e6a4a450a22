//! The MIME part tree with byte offsets (RFC 2045, RFC 2046 §5.1), parsed the way Dovecot's
//! `message-parser.c` does, so that BODYSTRUCTURE sizes and `BODY[section]` ranges agree with
//! it on broken mail too:
//!
//! - a boundary line is `--` + a known boundary as a *prefix* of the line (RFC 2046 §5.1.1);
//!   the longest matching boundary of any open multipart wins, the newest on a tie, so a
//!   nested part may reuse its parent's boundary;
//! - the CRLF before a boundary line belongs to the boundary, except when the boundary is the
//!   first line of a body;
//! - a boundary line also ends a header that has no blank line;
//! - a multipart without a boundary parameter is not a multipart;
//! - nesting is capped at [`MAX_NESTING`] levels and [`MAX_PARTS`] parts; deeper multiparts
//!   and messages are kept as opaque leaves (no recursion, no panic on any input).

use crate::header::{self, Field};
use crate::rfc822::{self, Parser};

/// Dovecot's default `mail_max_nested_mime_parts` / `mail_max_total_mime_parts`.
pub const MAX_NESTING: usize = 100;
pub const MAX_PARTS: usize = 10_000;
/// RFC 2046 §5.1.1: boundaries are at most 70 characters; longer ones are truncated.
const BOUNDARY_MAX: usize = 70;

/// What `message-part-data` collects from Content-* fields (first occurrence wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartData {
    pub content_type: Option<Vec<u8>>,
    pub content_subtype: Option<Vec<u8>>,
    pub type_params: Vec<(Vec<u8>, Vec<u8>)>,
    pub id: Option<Vec<u8>>,
    pub description: Option<Vec<u8>>,
    pub cte: Option<Vec<u8>>,
    pub md5: Option<Vec<u8>>,
    pub disposition: Option<Vec<u8>>,
    pub disposition_params: Vec<(Vec<u8>, Vec<u8>)>,
    pub language: Option<Vec<Vec<u8>>>,
    pub location: Option<Vec<u8>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Node {
    pub header_start: usize,
    /// End of the header, blank line included (= start of the body).
    pub header_end: usize,
    pub body_end: usize,
    pub fields: Vec<Field>,
    pub multipart: bool,
    pub rfc822: bool,
    pub text: bool,
    pub digest: bool,
    pub data: PartData,
    pub children: Vec<Node>,
}

impl Node {
    pub fn body<'a>(&self, msg: &'a [u8]) -> &'a [u8] {
        &msg[self.header_end.min(self.body_end)..self.body_end]
    }
}

/// A boundary line found while scanning.
#[derive(Debug, Clone, Copy)]
struct Found {
    /// Index of the boundary in the open-boundary stack.
    idx: usize,
    close: bool,
    /// Where the content before the boundary ends (before the CRLF that belongs to it).
    cut: usize,
    /// Start of the line after the boundary line.
    next: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Parent {
    Root,
    Multipart { digest: bool },
    Message,
}

struct Ctx<'a> {
    msg: &'a [u8],
    stack: Vec<Vec<u8>>,
    total_parts: usize,
}

/// Parse a (CRLF-normalized) message into its part tree.
pub fn parse(msg: &[u8]) -> Node {
    let mut ctx = Ctx {
        msg,
        stack: Vec::new(),
        total_parts: 1,
    };
    let (mut root, _) = ctx.part(0, 0, Parent::Root);
    root.body_end = root.body_end.max(root.header_end);
    root
}

impl Ctx<'_> {
    /// Is the line at `ls` a boundary of an open multipart? Returns (stack index, close).
    fn boundary_at(&self, ls: usize) -> Option<(usize, bool)> {
        if self.stack.is_empty() || self.total_parts >= MAX_PARTS {
            return None;
        }
        let rest = &self.msg[ls..];
        let line = header::strip_eol(&rest[..header::line_len(self.msg, ls)]);
        let data = line.strip_prefix(b"--")?;
        let mut best: Option<usize> = None;
        for (i, b) in self.stack.iter().enumerate().rev() {
            if data.starts_with(b) && best.is_none_or(|j| self.stack[j].len() < b.len()) {
                best = Some(i);
                if b.len() == data.len() {
                    break;
                }
            }
        }
        let i = best?;
        let len = self.stack[i].len();
        Some((i, data.len() >= len + 2 && &data[len..len + 2] == b"--"))
    }

    fn newline_before(&self, pos: usize) -> usize {
        if pos > 0 && self.msg[pos - 1] == b'\n' {
            if pos > 1 && self.msg[pos - 2] == b'\r' {
                2
            } else {
                1
            }
        } else {
            0
        }
    }

    fn found(&self, ls: usize, first: bool, (idx, close): (usize, bool)) -> Found {
        let cut = if first {
            ls
        } else {
            ls - self.newline_before(ls)
        };
        Found {
            idx,
            close,
            cut,
            next: ls + header::line_len(self.msg, ls),
        }
    }

    /// Scan body lines from `from` for a boundary line.
    fn scan(&self, from: usize) -> Option<Found> {
        if self.stack.is_empty() || self.total_parts >= MAX_PARTS {
            return None;
        }
        let msg = self.msg;
        let mut ls = from;
        while ls < msg.len() {
            if msg[ls] == b'-'
                && let Some(b) = self.boundary_at(ls)
            {
                return Some(self.found(ls, ls == from, b));
            }
            match header::memchr(b'\n', &msg[ls..]) {
                Some(i) => ls += i + 1,
                None => break,
            }
        }
        None
    }

    /// Parse the header at `start`; returns fields, header end, and a boundary that cut it.
    fn header(&self, start: usize) -> (Vec<Field>, usize, Option<Found>) {
        let msg = self.msg;
        let mut fields: Vec<Field> = Vec::new();
        let mut pos = start;
        while pos < msg.len() {
            if msg[pos] == b'-'
                && let Some(b) = self.boundary_at(pos)
            {
                // The header loses its last CRLF, but for the enclosing parts that CRLF stays
                // in the body (Dovecot's accounting; visible in message/rfc822 sizes).
                let f = self.found(pos, true, b);
                return (
                    fields,
                    pos - self.newline_before(pos).min(pos - start),
                    Some(f),
                );
            }
            let n = header::line_len(msg, pos);
            let line = &msg[pos..pos + n];
            if header::is_blank_line(line) {
                return (fields, pos + n, None);
            }
            match fields.last_mut() {
                Some(f) if line[0] == b' ' || line[0] == b'\t' => header::continue_field(f, line),
                _ => fields.push(header::new_field(line, pos)),
            }
            pos += n;
        }
        (fields, msg.len(), None)
    }

    fn part(&mut self, start: usize, depth: usize, parent: Parent) -> (Node, Option<Found>) {
        let (fields, header_end, cut) = self.header(start);
        let mut node = Node {
            header_start: start,
            header_end,
            body_end: header_end,
            ..Node::default()
        };
        let mut is_mime = matches!(parent, Parent::Multipart { .. });
        let mut seen_ct = false;
        let mut boundary: Option<Vec<u8>> = None;
        for f in &fields {
            if f.name.eq_ignore_ascii_case(b"Mime-Version") {
                is_mime = true;
            } else if f.name.eq_ignore_ascii_case(b"Content-Type") {
                is_mime = true;
                if !seen_ct {
                    seen_ct = true;
                    boundary = self.flags_from_content_type(&mut node, &f.value);
                }
            }
        }
        if !is_mime {
            node.multipart = false;
            node.rfc822 = false;
            node.text = false;
            node.digest = false;
            boundary = None;
        }
        if !seen_ct || !is_mime {
            if parent == (Parent::Multipart { digest: true }) {
                node.rfc822 = true;
            } else {
                node.text = true;
            }
        }
        if is_mime {
            node.data = part_data(&fields);
        }
        node.fields = fields;
        if let Some(f) = cut {
            return (node, Some(f));
        }
        let body_start = header_end;
        let too_deep = depth + 1 >= MAX_NESTING;
        if node.multipart {
            if too_deep {
                node.multipart = false;
            } else if let Some(b) = boundary {
                return self.multipart_body(node, b, depth);
            }
            // A multipart without a boundary stays a multipart with no parts (written as one
            // empty text/plain part); its body is opaque.
        }
        if node.rfc822 {
            if too_deep || self.total_parts >= MAX_PARTS {
                node.rfc822 = false;
            } else {
                self.total_parts += 1;
                let (child, found) = self.part(body_start, depth + 1, Parent::Message);
                node.body_end = found.map_or(self.msg.len(), |f| f.cut);
                node.children.push(child);
                return (node, found);
            }
        }
        let found = self.scan(body_start);
        node.body_end = found.map_or(self.msg.len(), |f| f.cut);
        (node, found)
    }

    /// Message-parser view of Content-Type: sets the multipart/rfc822/text flags, returns the
    /// boundary parameter of a multipart.
    fn flags_from_content_type(&self, node: &mut Node, value: &[u8]) -> Option<Vec<u8>> {
        let mut p = Parser::new(value);
        let _ = p.skip_lwsp();
        let ct = rfc822::parse_content_type(&mut p);
        let (ty, sub) = ct
            .as_ref()
            .map(|(t, s)| (t.as_slice(), s.as_slice()))
            .unwrap_or((b"", b""));
        if ty.eq_ignore_ascii_case(b"message") && sub.eq_ignore_ascii_case(b"rfc822") {
            node.rfc822 = true;
        } else if ty.eq_ignore_ascii_case(b"text") {
            node.text = true;
        } else if ty.eq_ignore_ascii_case(b"multipart") {
            node.multipart = true;
            node.digest = sub.eq_ignore_ascii_case(b"digest");
        }
        if ct.is_err() || !node.multipart {
            return None;
        }
        p.parse_params()
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(b"boundary"))
            .map(|(_, mut v)| {
                v.truncate(BOUNDARY_MAX);
                v
            })
    }

    fn multipart_body(
        &mut self,
        mut node: Node,
        boundary: Vec<u8>,
        depth: usize,
    ) -> (Node, Option<Found>) {
        let my = self.stack.len();
        self.stack.push(boundary);
        let mut found = self.scan(node.header_end);
        loop {
            match found {
                None => {
                    node.body_end = self.msg.len();
                    self.stack.truncate(my);
                    return (node, None);
                }
                Some(f) if f.idx == my && f.close => {
                    // Closing delimiter: the epilogue runs to an outer boundary or the end.
                    self.stack.truncate(my);
                    let outer = self.scan(f.next);
                    node.body_end = outer.map_or(self.msg.len(), |o| o.cut);
                    return (node, outer);
                }
                Some(f) if f.idx == my => {
                    self.total_parts += 1;
                    let (child, next) = self.part(
                        f.next,
                        depth + 1,
                        Parent::Multipart {
                            digest: node.digest,
                        },
                    );
                    node.children.push(child);
                    found = next;
                    if let Some(n) = next
                        && n.idx < my
                    {
                        node.body_end = n.cut;
                        self.stack.truncate(my);
                        return (node, next);
                    }
                }
                Some(f) => {
                    node.body_end = f.cut;
                    self.stack.truncate(my);
                    return (node, Some(f));
                }
            }
        }
    }
}

/// Content-* fields as Dovecot's message-part-data reads them (first occurrence wins).
fn part_data(fields: &[Field]) -> PartData {
    let mut d = PartData::default();
    for f in fields {
        if f.name.len() < 8 || !f.name[..8].eq_ignore_ascii_case(b"Content-") {
            continue;
        }
        let name = &f.name[8..];
        let v = &f.value;
        let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
        if is(b"ID") && d.id.is_none() {
            d.id = Some(v.clone());
        } else if is(b"MD5") && d.md5.is_none() {
            d.md5 = Some(v.clone());
        } else if is(b"Type") && d.content_type.is_none() {
            let mut p = Parser::new(v);
            let _ = p.skip_lwsp();
            match rfc822::parse_content_type(&mut p) {
                Ok((t, s)) => {
                    d.content_type = Some(t);
                    d.content_subtype = Some(s);
                    d.type_params = p.parse_params();
                }
                Err(()) => {
                    d.content_type = Some(Vec::new());
                    d.content_subtype = Some(Vec::new());
                }
            }
        } else if is(b"Transfer-Encoding") && d.cte.is_none() {
            let mut p = Parser::new(v);
            let _ = p.skip_lwsp();
            let mut tok = Vec::new();
            if p.parse_mime_token(&mut tok).is_ok() && p.skip_lwsp() == Ok(false) && !tok.is_empty()
            {
                d.cte = Some(tok);
            }
        } else if is(b"Language") && d.language.is_none() {
            d.language = parse_language(v);
        } else if is(b"Location") && d.location.is_none() {
            d.location = Some(v.clone());
        } else if is(b"Description") && d.description.is_none() {
            d.description = Some(v.clone());
        } else if is(b"Disposition") && d.disposition.is_none() {
            let mut p = Parser::new(v);
            let _ = p.skip_lwsp();
            let mut tok = Vec::new();
            if p.parse_mime_token(&mut tok).is_ok() {
                d.disposition = Some(tok);
                d.disposition_params = p.parse_params();
            }
        }
    }
    d
}

/// `Content-Language: 1#Language-tag` (RFC 3282).
fn parse_language(v: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut p = Parser::new(v);
    let _ = p.skip_lwsp();
    let mut langs = Vec::new();
    loop {
        let mut tok = Vec::new();
        if p.parse_atom(&mut tok).is_err() {
            break;
        }
        langs.push(tok);
        if p.at_end() || p.cur() != b',' {
            break;
        }
        p.pos += 1;
        let _ = p.skip_lwsp();
    }
    if langs.is_empty() { None } else { Some(langs) }
}
