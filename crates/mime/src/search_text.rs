//! Text for SEARCH (RFC 9051 §6.4.4): header values decoded from RFC 2047 (via mail-parser),
//! then the text/* parts decoded from their transfer encoding and charset. Unlike ENVELOPE,
//! SEARCH compares decoded text, so `SUBJECT "Москва"` finds an encoded Subject.

use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::parsers::MessageStream;
use mail_parser::{DateTime, HeaderValue};

use crate::address::parse_address_list;
use crate::decode;
use crate::header::{self, Field};
use crate::parts::Node;

/// Decode one (possibly folded) unstructured header value: RFC 2047 encoded words are decoded,
/// folds unfolded; raw 8-bit text is taken as UTF-8 where valid.
pub fn decode_value(value: &[u8]) -> String {
    let mut v = Vec::with_capacity(value.len() + 2);
    v.extend_from_slice(value);
    v.extend_from_slice(b"\r\n");
    match MessageStream::new(&v).parse_unstructured() {
        HeaderValue::Text(t) => t.into_owned(),
        _ => String::new(),
    }
}

const ADDRESS_FIELDS: [&str; 6] = ["from", "to", "cc", "bcc", "sender", "reply-to"];

/// Address fields are searched in a normalized form, `Name <mailbox@domain>, ...`, after
/// the ENVELOPE repair rules (Dovecot's `message_address_write`): `FROM "domain"` then finds
/// `From: user` (written `user@MISSING_DOMAIN`) and not the garbled `Big Bug bb@bug.com`.
fn write_addresses(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut in_group = false;
    let mut first = true;
    for a in parse_address_list(value) {
        if !first {
            out.extend_from_slice(b", ");
        }
        first = false;
        match (&a.domain, &a.mailbox) {
            (None, Some(group)) if !in_group => {
                out.extend_from_slice(group);
                out.extend_from_slice(b": ");
                first = true;
                in_group = true;
            }
            (None, _) => {
                out.truncate(out.len().saturating_sub(2));
                out.push(b';');
                in_group = false;
            }
            (Some(domain), mailbox) => {
                let mailbox = mailbox.as_deref().unwrap_or_default();
                match (&a.name, &a.route) {
                    (None, None) => {}
                    (name, route) => {
                        out.extend_from_slice(name.as_deref().unwrap_or_default());
                        out.extend_from_slice(b" <");
                        if let Some(r) = route {
                            out.extend_from_slice(r);
                            out.push(b':');
                        }
                    }
                }
                out.extend_from_slice(mailbox);
                out.push(b'@');
                out.extend_from_slice(domain);
                if a.name.is_some() || a.route.is_some() {
                    out.push(b'>');
                }
            }
        }
    }
    out
}

/// Decoded values of the header fields named `name` in the top-level header.
pub fn header_values(msg: &[u8], name: &str) -> Vec<String> {
    field_values(&header_fields(msg), name)
}

/// The fields of a message's (or part's) header, for several `field_values` calls without
/// parsing it again.
pub fn header_fields(msg: &[u8]) -> Vec<Field> {
    header::parse_fields(msg, 0, header_end(msg))
}

/// `header_values` of fields already parsed.
pub fn field_values(fields: &[Field], name: &str) -> Vec<String> {
    let address = ADDRESS_FIELDS.iter().any(|a| a.eq_ignore_ascii_case(name));
    fields
        .iter()
        .filter(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|f| {
            if address {
                decode_value(&write_addresses(&f.value))
            } else {
                decode_value(&f.value)
            }
        })
        .collect()
}

fn header_end(msg: &[u8]) -> usize {
    let mut pos = 0;
    while pos < msg.len() {
        let n = header::line_len(msg, pos);
        if header::is_blank_line(&msg[pos..pos + n]) {
            return pos + n;
        }
        pos += n;
    }
    msg.len()
}

fn push_headers(out: &mut String, fields: &[Field]) {
    for f in fields {
        out.push_str(&String::from_utf8_lossy(&f.name));
        out.push_str(": ");
        out.push_str(&decode_value(&f.value));
        out.push('\n');
    }
}

/// Body text of a leaf text part: transfer decoding (lenient: raw bytes when broken), then
/// the charset (RFC 2046 §4.1.2, us-ascii/UTF-8 when unknown).
pub(crate) fn part_text(msg: &[u8], n: &Node) -> String {
    let body = n.body(msg);
    // Dovecot's message decoder: the last Content-Transfer-Encoding counts; a body in an
    // unknown encoding is not searched; broken base64 is searched up to the damage, broken
    // quoted-printable with the bad sequences left as they are.
    let bytes = match crate::section::encoding_of(&n.fields).as_str() {
        "7bit" | "8bit" | "binary" => body.to_vec(),
        "base64" => decode::base64_prefix(body),
        "quoted-printable" => decode::quoted_printable_lenient(body),
        _ => Vec::new(),
    };
    let charset = n
        .data
        .type_params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(b"charset"))
        .map(|(_, v)| v.as_slice());
    // As Dovecot: us-ascii, no charset and unknown charsets are read as UTF-8, so raw 8-bit
    // UTF-8 text is found.
    match charset {
        None => String::from_utf8_lossy(&bytes).into_owned(),
        Some(c) if c.eq_ignore_ascii_case(b"us-ascii") || c.eq_ignore_ascii_case(b"ascii") => {
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Some(c) => match charset_decoder(c) {
            Some(dec) => dec(&bytes),
            None => String::from_utf8_lossy(&bytes).into_owned(),
        },
    }
}

/// Dovecot searches the bodies of text/* and message/* parts (delivery-status, partial...),
/// judged by the *last* Content-Type field; no Content-Type means text/plain (RFC 2045 §5.2),
/// or message/rfc822 in a digest (RFC 2046 §5.1.5).
fn is_searchable(n: &Node) -> bool {
    let Some(f) = n
        .fields
        .iter()
        .rev()
        .find(|f| f.name.eq_ignore_ascii_case(b"Content-Type"))
    else {
        return true;
    };
    let mut p = crate::rfc822::Parser::new(&f.value);
    let _ = p.skip_lwsp();
    match crate::rfc822::parse_content_type(&mut p) {
        Ok((t, _)) => t.eq_ignore_ascii_case(b"text") || t.eq_ignore_ascii_case(b"message"),
        Err(()) => false,
    }
}

fn push_body(out: &mut String, msg: &[u8], n: &Node) {
    if n.multipart {
        for c in &n.children {
            push_body(out, msg, c);
        }
    } else if n.rfc822 {
        // BODY does not look at the headers of an attached message, only its bodies.
        if let Some(c) = n.children.first() {
            push_body(out, msg, c);
        }
    } else if is_searchable(n) {
        out.push_str(&part_text(msg, n));
        out.push('\n');
    }
}

/// `(search_text, body_offset)`: decoded header fields, then decoded text of text/* parts.
pub fn search_text(msg: &[u8], root: &Node) -> (String, usize) {
    let mut out = String::new();
    push_headers(&mut out, &root.fields);
    let offset = out.len();
    push_body(&mut out, msg, root);
    (out, offset)
}

/// RFC 5322 §3.3 date-time to unix seconds.
pub fn parse_date(value: &str) -> Option<i64> {
    let mut v = value.trim().to_string();
    v.push('\n');
    let dt = DateTime::parse_rfc822(&v)?;
    dt.is_valid().then(|| dt.to_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let cases: &[(&str, Option<i64>)] = &[
            ("Thu, 1 Jan 1970 00:00:00 +0000", Some(0)),
            ("Wed, 10 Jun 2015 22:05:37 -0400", Some(1_433_988_337)),
            ("Sun, 25 Mar 2007 04:00:00 +0300", Some(1_174_784_400)),
            ("garbage", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_date(input), *want, "{input}");
        }
    }

    #[test]
    fn decoded_headers() {
        let msg = b"Subject: =?UTF-8?B?0JzQvtGB0LrQstCw?=\r\n =?ISO-8859-1?Q?caf=E9?=\r\nX: y\r\n\r\nbody";
        assert_eq!(
            header_values(msg, "subject"),
            vec!["Москваcafé".to_string()]
        );
        assert_eq!(header_values(msg, "x"), vec!["y".to_string()]);
        assert!(header_values(msg, "to").is_empty());
    }
}
