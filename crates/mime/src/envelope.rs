//! ENVELOPE (RFC 9051 §7.5.2, RFC 3501 §7.4.2): `(date subject from sender reply-to to cc
//! bcc in-reply-to message-id)`.
//!
//! Strings are the raw header values: RFC 2047 encoded words are *not* decoded and 8-bit bytes
//! are passed through as literals, as Dovecot does (RFC 3501 leaves decoding to the client).
//! Sender and Reply-To default to From (RFC 3501 §7.4.2).

use crate::address::{Address, parse_address_list};
use crate::header::Field;
use crate::quote;

#[derive(Debug, Default)]
struct Envelope {
    date: Option<Vec<u8>>,
    subject: Option<Vec<u8>>,
    message_id: Option<Vec<u8>>,
    in_reply_to: Option<Vec<u8>>,
    from: Option<Vec<Address>>,
    sender: Option<Vec<Address>>,
    reply_to: Option<Vec<Address>>,
    to: Option<Vec<Address>>,
    cc: Option<Vec<Address>>,
    bcc: Option<Vec<Address>>,
}

/// NUL bytes become U+FFFD (Dovecot's `message_header_strdup`).
fn header_str(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    for &c in v {
        if c == 0 {
            out.extend_from_slice("\u{FFFD}".as_bytes());
        } else {
            out.push(c);
        }
    }
    out
}

fn collect(fields: &[Field]) -> Envelope {
    let mut e = Envelope::default();
    for f in fields {
        let n = f.name.to_ascii_lowercase();
        let str_slot = match n.as_slice() {
            b"date" => Some(&mut e.date),
            b"subject" => Some(&mut e.subject),
            b"message-id" => Some(&mut e.message_id),
            b"in-reply-to" => Some(&mut e.in_reply_to),
            _ => None,
        };
        // Dovecot 2.3.19: a repeated string field replaces the earlier one, while repeated
        // address fields are concatenated.
        if let Some(slot) = str_slot {
            *slot = Some(header_str(&f.value));
            continue;
        }
        let addr_slot = match n.as_slice() {
            b"from" => &mut e.from,
            b"sender" => &mut e.sender,
            b"reply-to" => &mut e.reply_to,
            b"to" => &mut e.to,
            b"cc" => &mut e.cc,
            b"bcc" => &mut e.bcc,
            _ => continue,
        };
        addr_slot
            .get_or_insert_with(Vec::new)
            .extend(parse_address_list(&f.value));
    }
    e
}

fn write_addresses(out: &mut Vec<u8>, list: Option<&Vec<Address>>) {
    let Some(list) = list.filter(|l| !l.is_empty()) else {
        out.extend_from_slice(b"NIL");
        return;
    };
    out.push(b'(');
    for a in list {
        out.push(b'(');
        match &a.name {
            None => out.extend_from_slice(b"NIL"),
            Some(n) => quote::string_for_humans(out, n),
        }
        out.push(b' ');
        quote::nstring_nolf(out, a.route.as_deref());
        out.push(b' ');
        quote::nstring_nolf(out, a.mailbox.as_deref());
        out.push(b' ');
        quote::nstring_nolf(out, a.domain.as_deref());
        out.push(b')');
    }
    out.push(b')');
}

/// The ENVELOPE of a header, parenthesized.
pub fn envelope(fields: &[Field]) -> Vec<u8> {
    let e = collect(fields);
    let mut out = Vec::with_capacity(256);
    out.push(b'(');
    quote::nstring_nolf(&mut out, e.date.as_deref());
    out.push(b' ');
    match &e.subject {
        None => out.extend_from_slice(b"NIL"),
        Some(s) => quote::string_for_humans(&mut out, s),
    }
    let nonempty = |l: &Option<Vec<Address>>| l.as_ref().filter(|v| !v.is_empty()).cloned();
    let from = nonempty(&e.from);
    let sender = nonempty(&e.sender).or_else(|| from.clone());
    let reply_to = nonempty(&e.reply_to).or_else(|| from.clone());
    for list in [&from, &sender, &reply_to, &e.to, &e.cc, &e.bcc] {
        out.push(b' ');
        write_addresses(&mut out, list.as_ref());
    }
    out.push(b' ');
    quote::nstring_nolf(&mut out, e.in_reply_to.as_deref());
    out.push(b' ');
    quote::nstring_nolf(&mut out, e.message_id.as_deref());
    out.push(b')');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::parse_fields;

    #[test]
    fn envelopes() {
        let cases: &[(&str, &str)] = &[
            ("", "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
            (
                "From: A <a@b>\r\nSubject: =?UTF-8?Q?caf=C3=A9?=\r\nTo: x@y\r\n\r\n",
                "(NIL \"=?UTF-8?Q?caf=C3=A9?=\" ((\"A\" NIL \"a\" \"b\")) ((\"A\" NIL \"a\" \"b\")) \
                 ((\"A\" NIL \"a\" \"b\")) ((NIL NIL \"x\" \"y\")) NIL NIL NIL NIL)",
            ),
            (
                "Date: d\r\nSender: s@t\r\nReply-To: g: ;\r\nMessage-ID: <m@x>\r\n\r\n",
                "(\"d\" NIL NIL ((NIL NIL \"s\" \"t\")) ((NIL NIL \"g\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL NIL \"<m@x>\")",
            ),
        ];
        for (hdr, want) in cases {
            let f = parse_fields(hdr.as_bytes(), 0, hdr.len());
            assert_eq!(String::from_utf8(envelope(&f)).unwrap(), *want, "{hdr}");
        }
    }
}
