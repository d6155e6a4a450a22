//! BODY and BODYSTRUCTURE (RFC 9051 §7.5.2 `body`, RFC 3501 §7.4.2), written the way
//! Dovecot's `imap-bodystructure.c` writes them:
//!
//! - sizes are octets of the CRLF body, `lines` counts LFs (text/* and message/rfc822 only);
//! - text parts without a charset get `("charset" "us-ascii")` (RFC 2045 §5.2 default);
//! - parameter values are shown raw (RFC 2231 continuations merged, not decoded);
//! - a multipart with no parts is written with one empty text/plain part (RFC 9051 requires
//!   at least one);
//! - a multipart or message cut off by the nesting limit is `application/octet-stream`.

use crate::envelope::envelope;
use crate::parts::Node;
use crate::quote;

const EMPTY_BODY: &[u8] = b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)";
const EMPTY_BODYSTRUCTURE: &[u8] =
    b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)";

fn params(out: &mut Vec<u8>, params: &[(Vec<u8>, Vec<u8>)], default_charset: bool) {
    if !default_charset && params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    let mut seen_charset = false;
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        seen_charset |= k.eq_ignore_ascii_case(b"charset");
        quote::string(out, k);
        out.push(b' ');
        quote::string(out, v);
    }
    if default_charset && !seen_charset {
        if !params.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(b"\"charset\" \"us-ascii\"");
    }
    out.push(b')');
}

/// `body-ext-*` common tail: disposition, language, location.
fn common_ext(out: &mut Vec<u8>, n: &Node) {
    let d = &n.data;
    out.push(b' ');
    match &d.disposition {
        None => out.extend_from_slice(b"NIL"),
        Some(disp) => {
            out.push(b'(');
            quote::string(out, disp);
            out.push(b' ');
            params(out, &d.disposition_params, false);
            out.push(b')');
        }
    }
    out.push(b' ');
    match &d.language {
        None => out.extend_from_slice(b"NIL"),
        Some(langs) => {
            out.push(b'(');
            for (i, l) in langs.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                quote::string(out, l);
            }
            out.push(b')');
        }
    }
    out.push(b' ');
    quote::nstring_nolf(out, d.location.as_deref());
}

/// Part cut short by the nesting/part-count limits (Dovecot `part_is_truncated`).
fn is_truncated(n: &Node, parent_digest: bool) -> bool {
    match (&n.data.content_type, &n.data.content_subtype) {
        (Some(t), Some(s)) => {
            (t.eq_ignore_ascii_case(b"message") && s.eq_ignore_ascii_case(b"rfc822"))
                || t.eq_ignore_ascii_case(b"multipart")
        }
        _ => parent_digest,
    }
}

/// Dovecot caches "plain 7-bit ASCII" messages as a flag and writes their BODYSTRUCTURE from
/// a template (`imap_bodystructure_is_plain_7bit`), which normalizes the case of
/// `charset=US-ASCII` and `7BIT`.
fn is_plain_7bit(n: &Node) -> bool {
    let d = &n.data;
    let param_ok = match d.type_params.as_slice() {
        [] => true,
        [(k, v)] => k.eq_ignore_ascii_case(b"charset") && v.eq_ignore_ascii_case(b"us-ascii"),
        _ => false,
    };
    n.text
        && n.children.is_empty()
        && !n.multipart
        && d.content_subtype
            .as_ref()
            .is_none_or(|s| s.eq_ignore_ascii_case(b"plain"))
        && param_ok
        && d.id.is_none()
        && d.description.is_none()
        && d.cte
            .as_ref()
            .is_none_or(|c| c.eq_ignore_ascii_case(b"7bit"))
        && d.md5.is_none()
        && d.disposition.is_none()
        && d.language.is_none()
        && d.location.is_none()
}

/// Write the top-level `body` of a message (`extended` = BODYSTRUCTURE).
pub fn write_root(out: &mut Vec<u8>, msg: &[u8], root: &Node, extended: bool) {
    if is_plain_7bit(root) {
        let body = root.body(msg);
        let lines = body.iter().filter(|&&c| c == b'\n').count();
        let ext = if extended { " NIL NIL NIL NIL" } else { "" };
        out.extend_from_slice(
            format!(
                "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" {} {lines}{ext})",
                body.len()
            )
            .as_bytes(),
        );
        return;
    }
    write(out, msg, root, extended, false);
}

/// Write `body` for a node (`extended` = BODYSTRUCTURE).
pub fn write(out: &mut Vec<u8>, msg: &[u8], n: &Node, extended: bool, parent_digest: bool) {
    out.push(b'(');
    if n.multipart {
        write_multipart(out, msg, n, extended);
    } else {
        write_single(out, msg, n, extended, parent_digest);
    }
    out.push(b')');
}

fn write_multipart(out: &mut Vec<u8>, msg: &[u8], n: &Node, extended: bool) {
    if n.children.is_empty() {
        out.extend_from_slice(if extended {
            EMPTY_BODYSTRUCTURE
        } else {
            EMPTY_BODY
        });
    }
    for c in &n.children {
        write(out, msg, c, extended, n.digest);
    }
    out.push(b' ');
    quote::string(out, n.data.content_subtype.as_deref().unwrap_or(b""));
    if !extended {
        return;
    }
    out.push(b' ');
    params(out, &n.data.type_params, false);
    common_ext(out, n);
}

fn write_single(out: &mut Vec<u8>, msg: &[u8], n: &Node, extended: bool, parent_digest: bool) {
    let d = &n.data;
    let text;
    if n.rfc822 {
        out.extend_from_slice(b"\"message\" \"rfc822\"");
        text = false;
    } else if is_truncated(n, parent_digest) {
        out.extend_from_slice(b"\"application\" \"octet-stream\"");
        text = false;
    } else if let Some(t) = &d.content_type {
        text = t.eq_ignore_ascii_case(b"text");
        quote::string(out, t);
        out.push(b' ');
        quote::string(out, d.content_subtype.as_deref().unwrap_or(b""));
    } else {
        text = true;
        out.extend_from_slice(b"\"text\" \"plain\"");
    }
    out.push(b' ');
    params(out, &d.type_params, text);
    out.push(b' ');
    quote::nstring_nolf(out, d.id.as_deref());
    out.push(b' ');
    quote::nstring_nolf(out, d.description.as_deref());
    out.push(b' ');
    match &d.cte {
        Some(c) => quote::string(out, c),
        None => out.extend_from_slice(b"\"7bit\""),
    }
    let body = n.body(msg);
    out.extend_from_slice(format!(" {}", body.len()).as_bytes());
    let lines = body.iter().filter(|&&c| c == b'\n').count();
    if text {
        out.extend_from_slice(format!(" {lines}").as_bytes());
    } else if n.rfc822
        && let Some(child) = n.children.first()
    {
        out.extend_from_slice(b" ");
        out.extend_from_slice(&envelope(&child.fields));
        out.push(b' ');
        write(out, msg, child, extended, false);
        out.extend_from_slice(format!(" {lines}").as_bytes());
    }
    if !extended {
        return;
    }
    out.push(b' ');
    quote::nstring_nolf(out, d.md5.as_deref());
    common_ext(out, n);
}
