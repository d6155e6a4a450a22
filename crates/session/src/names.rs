//! Mailbox names on the wire and in the store (RFC 9051 §5.1, RFC 3501 §5.1.3).
//!
//! The store keeps UTF-8 names with `/` as the hierarchy separator and INBOX spelled `INBOX`.
//! IMAP4rev1 clients send and receive modified UTF-7; IMAP4rev2 and UTF8=ACCEPT clients UTF-8.

use mailkeep_proto::utf7;

use crate::enabled::Enabled;
use crate::error::{CmdError, CmdResult};

/// The hierarchy separator (RFC 9051 §5.1.1).
pub(crate) const SEP: char = '/';

/// A name from the client to the store's form.
pub(crate) fn decode(raw: &[u8], enabled: &Enabled) -> CmdResult<String> {
    Ok(normalize_inbox(&decode_raw(raw, enabled)?))
}

/// UTF-8 from the wire form, without INBOX normalization (LIST patterns, references).
pub(crate) fn decode_raw(raw: &[u8], enabled: &Enabled) -> CmdResult<String> {
    let name = if enabled.utf8_names() {
        match std::str::from_utf8(raw) {
            Ok(s) => s.to_string(),
            Err(_) => return Err(CmdError::Bad("Mailbox name is not valid UTF-8".into())),
        }
    } else if raw.is_ascii() {
        // Dovecot's answer to invalid modified UTF-7 from a rev1 client.
        utf7::decode(raw)
            .ok_or_else(|| CmdError::No(None, "Mailbox name is not valid mUTF-7".into()))?
    } else {
        // 8-bit names from a rev1 client that did not ENABLE UTF8=ACCEPT: take UTF-8 as is,
        // as Dovecot does, rather than refuse names that some clients do send.
        std::str::from_utf8(raw)
            .map_err(|_| CmdError::No(None, "Mailbox name is not valid mUTF-7".into()))?
            .to_string()
    };
    Ok(name)
}

/// A store name for the client.
pub(crate) fn encode(name: &str, enabled: &Enabled) -> String {
    if enabled.utf8_names() || name.is_ascii() && !name.contains('&') {
        name.to_string()
    } else {
        utf7::encode(name)
    }
}

/// INBOX is case-insensitive (RFC 9051 §5.1), also as the first level of a hierarchy.
pub(crate) fn normalize_inbox(name: &str) -> String {
    let first = name.split(SEP).next().unwrap_or("");
    if first.eq_ignore_ascii_case("INBOX") && first != "INBOX" {
        format!("INBOX{}", &name[first.len()..])
    } else {
        name.to_string()
    }
}

pub(crate) fn is_inbox(name: &str) -> bool {
    name == "INBOX"
}

/// A name given to CREATE or RENAME: trailing separators stripped (RFC 9051 §6.3.4), and no
/// empty levels, wildcards or control characters (Dovecot refuses those too).
pub(crate) fn for_create(name: &str) -> CmdResult<String> {
    let name = name.trim_end_matches(SEP);
    let bad = name.is_empty()
        || name.split(SEP).any(|level| level.is_empty())
        || name.chars().any(|c| c == '*' || c == '%' || c.is_control())
        || name.len() > 1000;
    if bad {
        return Err(CmdError::No(
            Some(mailkeep_proto::write::Code::Cannot),
            "Invalid mailbox name".into(),
        ));
    }
    Ok(name.to_string())
}

/// The parents of a name, shortest first: `a/b/c` -> `a`, `a/b`.
pub(crate) fn parents(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices(SEP).map(move |(i, _)| &name[..i])
}

/// True if `name` is a strict descendant of `parent`.
pub(crate) fn is_child_of(name: &str, parent: &str) -> bool {
    name.len() > parent.len() + 1
        && name.starts_with(parent)
        && name[parent.len()..].starts_with(SEP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbox_and_create_names() {
        assert_eq!(normalize_inbox("inbox"), "INBOX");
        assert_eq!(normalize_inbox("Inbox/Sub"), "INBOX/Sub");
        assert_eq!(normalize_inbox("Inboxes"), "Inboxes");
        assert_eq!(for_create("a/b/").unwrap(), "a/b");
        assert!(for_create("a//b").is_err());
        assert!(for_create("/").is_err());
        assert!(for_create("a*").is_err());
        assert_eq!(parents("a/b/c").collect::<Vec<_>>(), ["a", "a/b"]);
        assert!(is_child_of("a/b", "a"));
        assert!(!is_child_of("ab", "a"));
        assert!(!is_child_of("a", "a"));
    }
}
