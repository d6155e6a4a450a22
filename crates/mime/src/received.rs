//! A message as an APPEND delivered it, made ready to store: bare LF turned into CRLF, and for
//! a `literal8` (RFC 3516 §4.4) the parts with `Content-Transfer-Encoding: binary` turned into
//! base64 first, as Dovecot does when it saves such a message.
//!
//! RFC 3516 §4.4 lets the server change the transfer encoding of what a literal8 carried, but
//! the change "MUST NOT result in a loss of data". Turning bare LF into CRLF inside a binary
//! part changes its bytes (`BINARY[1]` would give back 9 bytes where 7 were sent), and keeping
//! it as sent would leave bare LF and NUL in the stored message, which `BODY[]` cannot carry
//! as a plain literal. Base64 keeps every byte and is 7-bit clean; the part's header says so,
//! and RFC822.SIZE and BODYSTRUCTURE then describe the stored form.

use base64::Engine;
use std::borrow::Cow;

use crate::parts::{self, Node};

/// Base64 lines are at most 76 characters (RFC 2045 §6.8).
const LINE: usize = 76;

/// The stored form of a received message: bare LF turned into CRLF; with `binary` (it came as
/// a literal8), the body of every leaf part whose Content-Transfer-Encoding is `binary` is
/// base64-encoded before that, and its Content-Transfer-Encoding field rewritten to `base64`.
/// Borrowed if nothing changes.
pub fn prepare_received(data: &[u8], binary: bool) -> Cow<'_, [u8]> {
    if binary && let Some(encoded) = binary_parts_to_base64(data) {
        return match crate::normalize_crlf(&encoded) {
            Cow::Borrowed(_) => Cow::Owned(encoded),
            Cow::Owned(v) => Cow::Owned(v),
        };
    }
    crate::normalize_crlf(data)
}

/// The message with its binary leaf parts base64-encoded; `None` if it has none.
fn binary_parts_to_base64(msg: &[u8]) -> Option<Vec<u8>> {
    let root = parts::parse(msg);
    let mut edits: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    collect(&root, msg, &mut edits);
    if edits.is_empty() {
        return None;
    }
    edits.sort_by_key(|e| e.0);
    let grown: usize = edits.iter().map(|e| e.2.len()).sum();
    let mut out = Vec::with_capacity(msg.len() + grown / 3);
    let mut pos = 0;
    for (start, end, with) in edits {
        if start < pos {
            continue; // cannot happen (parts do not overlap); never write twice
        }
        out.extend_from_slice(&msg[pos..start]);
        out.extend_from_slice(&with);
        pos = end;
    }
    out.extend_from_slice(&msg[pos..]);
    Some(out)
}

/// Edits (byte range, replacement) that turn each binary leaf under `n` into base64.
fn collect(n: &Node, msg: &[u8], edits: &mut Vec<(usize, usize, Vec<u8>)>) {
    if !n.children.is_empty() {
        for c in &n.children {
            collect(c, msg, edits);
        }
        return;
    }
    // Decided as BINARY decides it (the last Content-Transfer-Encoding field), so what is
    // converted is exactly what BINARY[part] would have served as sent.
    if n.multipart || crate::section::encoding_of(&n.fields) != "binary" {
        return;
    }
    // A header cut short by a boundary has no body to encode.
    if n.header_end > n.body_end {
        return;
    }
    // Every Content-Transfer-Encoding field of the part says base64 afterwards.
    for field in n
        .fields
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case(b"Content-Transfer-Encoding"))
    {
        let mut header = b"Content-Transfer-Encoding: base64".to_vec();
        if msg[..field.end].ends_with(b"\n") {
            header.extend_from_slice(b"\r\n");
        }
        edits.push((field.start, field.end, header));
    }
    let body = &msg[n.header_end..n.body_end];
    let encoded = base64::engine::general_purpose::STANDARD.encode(body);
    let mut wrapped = Vec::with_capacity(encoded.len() + encoded.len() / LINE * 2 + 2);
    for (i, line) in encoded.as_bytes().chunks(LINE).enumerate() {
        if i > 0 {
            wrapped.extend_from_slice(b"\r\n");
        }
        wrapped.extend_from_slice(line);
    }
    edits.push((n.header_end, n.body_end, wrapped));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example: 7 bytes with bare LF (and a NUL) in a binary part.
    #[test]
    fn binary_part_is_kept_byte_exact() {
        let sent = b"a\nb\0c\nd";
        let mut msg = b"From: x@y\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nhi\n--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: binary\n\n".to_vec();
        msg.extend_from_slice(sent);
        msg.extend_from_slice(b"\n--b--\n");
        let stored = prepare_received(&msg, true).into_owned();
        assert!(!stored.contains(&0), "no NUL stored");
        assert!(
            !stored.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
            "no bare LF stored"
        );
        assert!(
            stored
                .windows(33)
                .any(|w| w == b"Content-Transfer-Encoding: base64")
        );
        let a = crate::analyze(&stored);
        assert_eq!(crate::binary(&stored, &a.parts, &[2]).unwrap(), sent);
        assert_eq!(crate::binary(&stored, &a.parts, &[1]).unwrap(), b"hi");
        // Without literal8 the message is only CRLF-normalized, as before.
        let plain = prepare_received(&msg, false).into_owned();
        assert_eq!(plain, crate::normalize_crlf(&msg).into_owned());
    }

    #[test]
    fn single_part_and_untouched_messages() {
        let msg = b"MIME-Version: 1.0\r\nContent-Transfer-Encoding: BINARY\r\n\r\n\x00\x01\n\xff";
        let stored = prepare_received(msg, true).into_owned();
        let a = crate::analyze(&stored);
        assert_eq!(
            crate::binary(&stored, &a.parts, &[1]).unwrap(),
            b"\x00\x01\n\xff"
        );
        let text = b"Subject: x\r\n\r\nhello\r\n";
        assert!(matches!(prepare_received(text, true), Cow::Borrowed(_)));
        // Long binary bodies are wrapped at 76 characters.
        let head = b"MIME-Version: 1.0\r\nContent-Transfer-Encoding: binary\r\n\r\n";
        let mut big = head.to_vec();
        big.extend((0..1000u32).map(|i| (i % 256) as u8));
        let stored = prepare_received(&big, true).into_owned();
        let a = crate::analyze(&stored);
        assert_eq!(
            crate::binary(&stored, &a.parts, &[1]).unwrap(),
            &big[head.len()..]
        );
        assert!(stored.split(|&b| b == b'\n').all(|l| l.len() <= 78));
    }
}
