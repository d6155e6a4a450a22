//! What is kept of a message at delivery beside its analysis: the PREVIEW text (RFC 8970) and
//! the message IDs that place it in a thread (RFC 8474 THREADID).

use crate::header::Field;
use crate::parts::{self, Node};
use crate::search_text::{field_values, header_fields, part_text};

/// RFC 8970 §3.3: "SHOULD limit ... to 200 preview characters".
pub const PREVIEW_CHARS: usize = 200;

/// Most referenced IDs kept per message (a References field can be made arbitrarily long).
pub const MAX_REFERENCES: usize = 64;

/// The PREVIEW text and thread IDs of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryInfo {
    /// At most [`PREVIEW_CHARS`] characters of UTF-8 text; empty when there is no text part.
    pub preview: String,
    /// The Message-ID, normalized as THREAD normalizes it.
    pub message_id: Option<String>,
    /// The IDs of References, else In-Reply-To's first (RFC 5256 §3), at most
    /// [`MAX_REFERENCES`] (the nearest ancestors kept).
    pub references: Vec<String>,
}

/// Preview and thread IDs of a CRLF-normalized message (parses it once).
pub fn delivery_info(message: &[u8]) -> DeliveryInfo {
    let root = parts::parse(message);
    let (message_id, references) = thread_refs_of(&root.fields);
    delivery_of(message, &root, message_id, references)
}

/// Preview and thread IDs of a message parsed as `root`, with the thread IDs of its header
/// (as [`thread_refs`] gives them): at most [`MAX_REFERENCES`] references kept.
pub(crate) fn delivery_of(
    message: &[u8],
    root: &Node,
    message_id: Option<String>,
    mut references: Vec<String>,
) -> DeliveryInfo {
    if references.len() > MAX_REFERENCES {
        references.drain(..references.len() - MAX_REFERENCES);
    }
    DeliveryInfo {
        preview: preview_of(message, root),
        message_id,
        references,
    }
}

/// The PREVIEW text of a CRLF-normalized message (RFC 8970 §3.3): the first text/plain part,
/// else the first text/html part converted to plain text (that is not an attachment),
/// whitespace collapsed, quoted lines (`>`) left out, cut to [`PREVIEW_CHARS`] characters.
pub fn preview(message: &[u8]) -> String {
    preview_of(message, &parts::parse(message))
}

fn preview_of(message: &[u8], root: &Node) -> String {
    let Some((node, html)) = first_text(root, false).or_else(|| first_text(root, true)) else {
        return String::new();
    };
    let text = part_text(message, node);
    let text = if html { html_to_text(&text) } else { text };
    squeeze(&text)
}

/// The first inline leaf of type text/plain (`html` false) or text/html, depth first, not
/// looking into attached messages.
fn first_text(n: &Node, html: bool) -> Option<(&Node, bool)> {
    if n.multipart {
        return n.children.iter().find_map(|c| first_text(c, html));
    }
    if n.rfc822 {
        return None;
    }
    let attachment = n
        .data
        .disposition
        .as_deref()
        .is_some_and(|d| d.eq_ignore_ascii_case(b"attachment"));
    if attachment {
        return None;
    }
    let (t, s) = match (&n.data.content_type, &n.data.content_subtype) {
        (Some(t), Some(s)) => (t.as_slice(), s.as_slice()),
        (None, _) => (&b"text"[..], &b"plain"[..]),
        (Some(t), None) => (t.as_slice(), &b""[..]),
    };
    let want: &[u8] = if html { b"html" } else { b"plain" };
    (t.eq_ignore_ascii_case(b"text") && s.eq_ignore_ascii_case(want)).then_some((n, html))
}

/// Lines of the text without quoted ones (`>`) and signature (after `-- `), whitespace runs
/// as one space, cut to [`PREVIEW_CHARS`] characters.
fn squeeze(text: &str) -> String {
    let mut out = String::new();
    let mut chars = 0;
    let mut space = false;
    for line in text.lines() {
        if line == "-- " || line == "--" {
            break;
        }
        if line.trim_start().starts_with('>') {
            continue;
        }
        for c in line.chars().chain(std::iter::once(' ')) {
            if c.is_whitespace() || c.is_control() {
                space = !out.is_empty();
                continue;
            }
            if std::mem::take(&mut space) {
                if chars + 1 >= PREVIEW_CHARS {
                    return out;
                }
                out.push(' ');
                chars += 1;
            }
            out.push(c);
            chars += 1;
            if chars >= PREVIEW_CHARS {
                return out;
            }
        }
    }
    out
}

/// HTML to plain text, roughly: tags dropped (with the content of `<head>`, `<style>` and
/// `<script>`), block tags as spaces, the common entities decoded.
fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len().min(64 << 10));
    let mut rest = html;
    // Enough for a preview: the text is cut at 200 characters anyway.
    let budget = 64 << 10;
    while !rest.is_empty() && out.len() < budget {
        let Some(lt) = rest.find('<') else {
            decode_entities(&mut out, rest);
            break;
        };
        decode_entities(&mut out, &rest[..lt]);
        rest = &rest[lt..];
        let (tag, end) = match rest.find('>') {
            Some(e) => (&rest[1..e], e + 1),
            None => (&rest[1..], rest.len()),
        };
        let closing = tag.starts_with('/');
        let tag = tag.trim_start_matches('/');
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        rest = &rest[end..];
        if tag.starts_with("!--") {
            // A comment: skip to its end.
            let close = rest.find("-->").map_or(rest.len(), |e| e + 3);
            rest = &rest[close..];
            continue;
        }
        let skips = matches!(name.as_str(), "head" | "style" | "script" | "title");
        if skips && !closing && !tag.ends_with('/') {
            let close = format!("</{name}");
            let lower = rest.to_ascii_lowercase();
            rest = &rest[lower.find(&close).unwrap_or(rest.len())..];
            continue;
        }
        out.push(' ');
    }
    out
}

fn decode_entities(out: &mut String, s: &str) {
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest.as_bytes()[..rest.len().min(12)]
            .iter()
            .position(|&b| b == b';');
        let Some(end) = end else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..end];
        let c = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            _ => ent
                .strip_prefix("#x")
                .or_else(|| ent.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
}

/// The Message-ID of a header and the IDs it refers to: References, else In-Reply-To's first
/// valid one (RFC 5256 §3 REFERENCES), normalized by [`msg_ids`].
pub fn thread_refs(header: &[u8]) -> (Option<String>, Vec<String>) {
    // Parsed once for the three fields (it was parsed for each: a tenth of the CPU of
    // preparing a 5 KB APPEND went to reading these three fields).
    thread_refs_of(&header_fields(header))
}

/// [`thread_refs`] of a header already parsed (a message's top-level fields).
pub(crate) fn thread_refs_of(fields: &[Field]) -> (Option<String>, Vec<String>) {
    let first = |name: &str| -> Option<String> {
        field_values(fields, name)
            .iter()
            .find_map(|v| msg_ids(v).into_iter().next())
    };
    let mut references: Vec<String> = field_values(fields, "references")
        .first()
        .map(|v| msg_ids(v))
        .unwrap_or_default();
    if references.is_empty() {
        references.extend(first("in-reply-to"));
    }
    (first("message-id"), references)
}

/// The valid msg-ids of a header value (`<left@right>`), normalized: comments and folding
/// whitespace dropped, quoting undone, so `<"a b"@x>` equals `<a b@x>`... spaces removed.
pub fn msg_ids(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = value.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'(' => {
                // A comment, possibly nested.
                let mut depth = 0usize;
                while i < b.len() {
                    match b[i] {
                        b'\\' => i += 1,
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                i += 1;
            }
            b'<' => {
                let mut id = String::new();
                let mut j = i + 1;
                let mut closed = false;
                while j < b.len() {
                    match b[j] {
                        b'>' => {
                            closed = true;
                            break;
                        }
                        b'<' => break,
                        b'\\' if j + 1 < b.len() => {
                            j += 1;
                            id.push(b[j] as char);
                        }
                        b'"' | b' ' | b'\t' | b'\r' | b'\n' => {}
                        _ => {
                            // Copy one UTF-8 character whole.
                            let len = utf8_len(b[j]);
                            let end = (j + len).min(b.len());
                            id.push_str(&String::from_utf8_lossy(&b[j..end]));
                            j = end - 1;
                        }
                    }
                    j += 1;
                }
                if closed {
                    let at = id.find('@');
                    if at.is_some_and(|p| p > 0 && p + 1 < id.len()) {
                        out.push(id);
                    }
                    i = j + 1;
                } else {
                    i = j.max(i + 1);
                }
            }
            _ => i += 1,
        }
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xF7 => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_preview_squeezes_and_skips_quotes() {
        let m =
            b"Subject: x\r\n\r\nHello   there,\r\n\r\n> quoted\r\nsecond\tline\r\n-- \r\nsig\r\n";
        assert_eq!(preview(m), "Hello there, second line");
    }

    #[test]
    fn preview_is_cut_at_200_characters() {
        let body = "\u{e9}".repeat(500);
        let m = format!("Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n");
        let p = preview(m.as_bytes());
        assert_eq!(p.chars().count(), PREVIEW_CHARS);
        assert!(p.len() <= 2 * PREVIEW_CHARS);
    }

    #[test]
    fn html_and_multipart() {
        let m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: image/png\r\n\r\nxx\r\n--b\r\n\
Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
<html><head><style>p{}</style></head><body><p>Caf=C3=A9 &amp; <b>tea</b></p></body></html>\r\n--b--\r\n";
        assert_eq!(preview(m), "Caf\u{e9} & tea");
        let none = b"Content-Type: image/png\r\n\r\nxx\r\n";
        assert_eq!(preview(none), "");
    }

    #[test]
    fn thread_ids_of_a_reply() {
        let h = b"Message-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\n\r\n";
        let d = delivery_info(h);
        assert_eq!(d.message_id.as_deref(), Some("b@x"));
        assert_eq!(d.references, vec!["a@x".to_string()]);
        let refs: String = (0..100).map(|i| format!("<{i}@x> ")).collect();
        let h = format!("References: {refs}\r\n\r\n");
        let d = delivery_info(h.as_bytes());
        assert_eq!(d.references.len(), MAX_REFERENCES);
        assert_eq!(d.references.last().map(String::as_str), Some("99@x"));
    }
}
