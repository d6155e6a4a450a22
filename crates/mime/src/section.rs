//! `BODY[section]` and `BINARY[section]` (RFC 9051 §6.4.5, RFC 3516) served from the stored
//! [`PartTree`] byte ranges, and the tree's storage format.
//!
//! Part numbering (RFC 9051 §6.4.5): the parts of a multipart are numbered from 1; a
//! non-multipart message has a single part 1, its body; a message/rfc822 part's sub-parts are
//! those of the encapsulated message.

use crate::decode::{self, DecodeError};
use crate::header;
use crate::parts::Node;
use crate::{BinaryError, Part, PartTree, SectionError, SectionSpec};

/// Build the stored tree from the parsed one.
pub fn to_part(n: &Node) -> Part {
    Part {
        header_start: n.header_start as u64,
        body_start: n.header_end as u64,
        body_end: n.body_end as u64,
        encoding: encoding_of(&n.fields),
        is_message: n.rfc822 && !n.children.is_empty(),
        is_multipart: n.multipart,
        children: n.children.iter().map(to_part).collect(),
    }
}

/// Content-Transfer-Encoding token, lowercased; `7bit` when absent (RFC 2045 §6.1).
pub(crate) fn encoding_of(fields: &[header::Field]) -> String {
    // The last field wins, as in Dovecot's binary conversion.
    let Some(f) = fields
        .iter()
        .rev()
        .find(|f| f.name.eq_ignore_ascii_case(b"Content-Transfer-Encoding"))
    else {
        return "7bit".to_string();
    };
    let mut p = crate::rfc822::Parser::new(&f.value);
    let _ = p.skip_lwsp();
    let mut tok = Vec::new();
    let _ = p.parse_mime_token(&mut tok);
    let mut enc = String::from_utf8_lossy(&tok).to_ascii_lowercase();
    // Known encodings are short ASCII tokens; anything longer is unknown whatever its tail,
    // and must fit the stored tree's one-byte length on a character boundary.
    if enc.len() > MAX_ENCODING_LEN {
        let mut end = MAX_ENCODING_LEN;
        while !enc.is_char_boundary(end) {
            end -= 1;
        }
        enc.truncate(end);
    }
    enc
}

/// Longest Content-Transfer-Encoding kept (the stored part tree allows 255 bytes).
const MAX_ENCODING_LEN: usize = 64;

const FORMAT_VERSION: u8 = 1;
/// Deeper trees cannot come from `analyze` (nesting is capped at 100); refuse them when loading.
const MAX_STORED_DEPTH: usize = 256;

fn put_part(out: &mut Vec<u8>, p: &Part) {
    for v in [p.header_start, p.body_start, p.body_end] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.push(u8::from(p.is_message) | (u8::from(p.is_multipart) << 1));
    let enc = p.encoding.as_bytes();
    let enc = &enc[..enc.len().min(255)];
    out.push(enc.len() as u8);
    out.extend_from_slice(enc);
    out.extend_from_slice(&(p.children.len() as u32).to_le_bytes());
    for c in &p.children {
        put_part(out, c);
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn part(&mut self, depth: usize) -> Option<Part> {
        if depth > MAX_STORED_DEPTH {
            return None;
        }
        let header_start = self.u64()?;
        let body_start = self.u64()?;
        let body_end = self.u64()?;
        let flags = *self.take(1)?.first()?;
        let n = *self.take(1)?.first()? as usize;
        let encoding = String::from_utf8(self.take(n)?.to_vec()).ok()?;
        let count = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        // Each child needs at least 30 bytes: reject counts the input cannot hold.
        if count > self.b.len().saturating_sub(self.pos) / 30 {
            return None;
        }
        let mut children = Vec::with_capacity(count);
        for _ in 0..count {
            children.push(self.part(depth + 1)?);
        }
        Some(Part {
            header_start,
            body_start,
            body_end,
            encoding,
            is_message: flags & 1 != 0,
            is_multipart: flags & 2 != 0,
            children,
        })
    }
}

pub fn tree_to_bytes(t: &PartTree) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    put_part(&mut out, &t.root);
    out
}

/// The root's `body_start` (the message header's length) from a stored tree, read without
/// decoding the rest of it.
pub fn stored_header_len(b: &[u8]) -> Option<u64> {
    if b.first() != Some(&FORMAT_VERSION) {
        return None;
    }
    // After the version: the root's header_start, then its body_start (see `put_part`).
    Some(u64::from_le_bytes(b.get(9..17)?.try_into().ok()?))
}

pub fn tree_from_bytes(b: &[u8]) -> Option<PartTree> {
    if b.first() != Some(&FORMAT_VERSION) {
        return None;
    }
    let mut r = Reader { b, pos: 1 };
    let root = r.part(0)?;
    (r.pos == b.len()).then_some(PartTree { root })
}

/// The part a 1-based path names.
fn resolve<'a>(tree: &'a PartTree, path: &[u32]) -> Option<&'a Part> {
    let mut cur = &tree.root;
    for (i, &k) in path.iter().enumerate() {
        // Below a message/rfc822 part the numbers address the encapsulated message; the
        // top-level message's part 1 is its own body even when that body is a message.
        if i > 0 && cur.is_message {
            cur = cur.children.first()?;
        }
        if cur.is_multipart {
            cur = cur.children.get((k as usize).checked_sub(1)?)?;
        } else if k != 1 {
            return None;
        }
    }
    Some(cur)
}

fn range(msg: &[u8], a: u64, b: u64) -> Vec<u8> {
    let len = msg.len() as u64;
    let (a, b) = (a.min(len) as usize, b.min(len) as usize);
    msg[a.min(b)..b].to_vec()
}

pub fn section(
    msg: &[u8],
    tree: &PartTree,
    path: &[u32],
    spec: SectionSpec<'_>,
) -> Result<Vec<u8>, SectionError> {
    let part = resolve(tree, path).ok_or(SectionError::NoSuchPart)?;
    // HEADER/TEXT of a message/rfc822 part refer to the encapsulated message.
    let message = if path.is_empty() {
        part
    } else if part.is_message {
        part.children.first().ok_or(SectionError::NoSuchPart)?
    } else {
        part
    };
    match spec {
        SectionSpec::Full if path.is_empty() => Ok(msg.to_vec()),
        SectionSpec::Full => Ok(range(msg, part.body_start, part.body_end)),
        SectionSpec::Mime if path.is_empty() => Err(SectionError::NoSuchPart),
        SectionSpec::Mime => Ok(range(msg, part.header_start, part.body_start)),
        SectionSpec::Header => Ok(range(msg, message.header_start, message.body_start)),
        SectionSpec::Text => Ok(range(msg, message.body_start, message.body_end)),
        SectionSpec::HeaderFields(names) | SectionSpec::HeaderFieldsNot(names) => {
            let keep = matches!(spec, SectionSpec::HeaderFields(_));
            let hdr = range(msg, message.header_start, message.body_start);
            Ok(header::filter_fields(&hdr, 0, hdr.len(), names, keep))
        }
    }
}

/// How BINARY treats a part's Content-Transfer-Encoding (Dovecot `message_decoder_parse_cte`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cte {
    Identity,
    Base64,
    Qp,
}

fn cte(p: &Part) -> Result<Cte, BinaryError> {
    match p.encoding.as_str() {
        "7bit" | "8bit" | "binary" => Ok(Cte::Identity),
        "base64" => Ok(Cte::Base64),
        "quoted-printable" => Ok(Cte::Qp),
        _ => Err(BinaryError::UnknownCte),
    }
}

/// Append the decoded form of a part (RFC 3516 §4.1): leaves are decoded; a multipart or
/// message keeps its structure with each leaf decoded and its header saying
/// `Content-Transfer-Encoding: binary`, as Dovecot produces it.
fn append_binary(
    msg: &[u8],
    p: &Part,
    include_header: bool,
    out: &mut Vec<u8>,
) -> Result<(), BinaryError> {
    let cte = cte(p)?;
    if include_header {
        let hdr = range(msg, p.header_start, p.body_start);
        if cte == Cte::Identity {
            out.extend_from_slice(&hdr);
        } else {
            let names = [b"Content-Transfer-Encoding".to_vec()];
            let mut kept = header::filter_fields(&hdr, 0, hdr.len(), &names, false);
            kept.truncate(kept.len() - 2);
            out.extend_from_slice(&kept);
            out.extend_from_slice(b"Content-Transfer-Encoding: binary\r\n");
            if hdr.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    // A message/rfc822 part is not allowed an encoding (RFC 2046 §5.2.1), but when it has
    // one, its structure was parsed from encoded text: decode the body as a whole.
    if p.children.is_empty() || cte != Cte::Identity {
        let body = range(msg, p.body_start, p.body_end);
        let decoded = match cte {
            Cte::Identity => body,
            Cte::Base64 => decode::base64(&body).map_err(map_err)?,
            Cte::Qp => decode::quoted_printable(&body).map_err(map_err)?,
        };
        out.extend_from_slice(&decoded);
        return Ok(());
    }
    let mut pos = p.body_start;
    for c in &p.children {
        out.extend_from_slice(&range(msg, pos, c.header_start));
        append_binary(msg, c, true, out)?;
        pos = pos.max(c.body_end);
    }
    out.extend_from_slice(&range(msg, pos, p.body_end));
    Ok(())
}

fn map_err(e: DecodeError) -> BinaryError {
    match e {
        DecodeError::Invalid | DecodeError::Premature => BinaryError::Invalid,
    }
}

pub fn binary(msg: &[u8], tree: &PartTree, path: &[u32]) -> Result<Vec<u8>, BinaryError> {
    let part = resolve(tree, path).ok_or(BinaryError::NoSuchPart)?;
    // Dovecot decodes the whole message whenever a BINARY item is fetched, so one bad part
    // anywhere fails BINARY for every part.
    let mut whole = Vec::new();
    append_binary(msg, &tree.root, true, &mut whole)?;
    if path.is_empty() {
        return Ok(whole);
    }
    let mut out = Vec::new();
    append_binary(msg, part, false, &mut out)?;
    Ok(out)
}
