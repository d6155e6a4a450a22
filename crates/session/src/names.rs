//! Mailbox names on the wire and in the store (RFC 9051 §5.1, RFC 3501 §5.1.3).
//!
//! The store keeps UTF-8 names with `/` as the hierarchy separator and INBOX spelled `INBOX`.
//! IMAP4rev1 clients send and receive modified UTF-7; IMAP4rev2 and UTF8=ACCEPT clients UTF-8.

use mailkeep_proto::utf7;

use crate::enabled::Enabled;
use crate::error::{CmdError, CmdResult};

/// The hierarchy separator (RFC 9051 §5.1.1).
pub(crate) const SEP: char = '/';

/// Longest mailbox name, in bytes of UTF-8 (CREATE, RENAME with its children, SUBSCRIBE).
pub(crate) const MAX_NAME_LEN: usize = 1000;

/// Most hierarchy levels in a name: every level is a parent LIST and LSUB may have to show,
/// so the levels of a name bound the work one name costs.
pub(crate) const MAX_NAME_LEVELS: usize = 32;

/// A name from the client to the store's form. A name that decodes to a control character
/// (`&AAA-` is NUL) is refused: no string on the wire may hold one (RFC 9051 §4.3), so it
/// could not be named back to the client.
pub(crate) fn decode(raw: &[u8], enabled: &Enabled) -> CmdResult<String> {
    let name = decode_lenient(raw, enabled)?;
    if has_control(&name) {
        return Err(CmdError::No(
            Some(mailkeep_proto::write::Code::Cannot),
            "Mailbox name contains control characters".into(),
        ));
    }
    Ok(name)
}

/// [`decode`] without the control-character check: only to let UNSUBSCRIBE remove a name
/// stored before names were checked.
pub(crate) fn decode_lenient(raw: &[u8], enabled: &Enabled) -> CmdResult<String> {
    Ok(normalize_inbox(&decode_raw(raw, enabled)?))
}

/// A LIST/LSUB pattern or reference: not a mailbox name (RFC 9051 §6.3.9), so bytes that are
/// not valid modified UTF-7 are taken as they are (they then match nothing) instead of
/// refusing the command.
pub(crate) fn decode_pattern(raw: &[u8], enabled: &Enabled) -> CmdResult<String> {
    match decode_raw(raw, enabled) {
        Ok(s) => Ok(s),
        Err(_) if !enabled.utf8_names() && raw.is_ascii() => {
            Ok(String::from_utf8_lossy(raw).into_owned())
        }
        Err(e) => Err(e),
    }
}

pub(crate) fn has_control(name: &str) -> bool {
    name.chars().any(char::is_control)
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
    if enabled.utf8_names() || name.is_ascii() && !name.contains('&') && !has_control(name) {
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

/// A name given to CREATE, RENAME or SUBSCRIBE: trailing separators stripped (RFC 9051
/// §6.3.4), and no empty levels, wildcards or control characters (Dovecot refuses those too);
/// longer or deeper than the limits is `NO [LIMIT]`.
pub(crate) fn for_create(name: &str) -> CmdResult<String> {
    let name = name.trim_end_matches(SEP);
    let bad = name.is_empty()
        || name.split(SEP).any(|level| level.is_empty())
        || name.chars().any(|c| c == '*' || c == '%' || c.is_control());
    if bad {
        return Err(CmdError::No(
            Some(mailkeep_proto::write::Code::Cannot),
            "Invalid mailbox name".into(),
        ));
    }
    check_size(name)?;
    Ok(name.to_string())
}

/// `NO [LIMIT]` for a name longer than [`MAX_NAME_LEN`] or deeper than [`MAX_NAME_LEVELS`].
pub(crate) fn check_size(name: &str) -> CmdResult<()> {
    if name.len() > MAX_NAME_LEN || name.matches(SEP).count() >= MAX_NAME_LEVELS {
        return Err(CmdError::No(
            Some(mailkeep_proto::write::Code::Limit),
            format!(
                "Mailbox name too long (at most {MAX_NAME_LEN} bytes, {MAX_NAME_LEVELS} levels)"
            ),
        ));
    }
    Ok(())
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
        assert!(for_create(&"x".repeat(MAX_NAME_LEN)).is_ok());
        assert!(for_create(&"x".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(for_create(&["a"; MAX_NAME_LEVELS].join("/")).is_ok());
        assert!(for_create(&["a"; MAX_NAME_LEVELS + 1].join("/")).is_err());
        assert!(for_create("a\0b").is_err());
        let rev1 = Enabled::default();
        assert!(decode(b"&AAA-", &rev1).is_err());
        assert!(decode(b"a&AB8-", &rev1).is_err());
        assert_eq!(decode_lenient(b"&AAA-", &rev1).unwrap(), "\0");
        assert_eq!(encode("\0", &rev1), "&AAA-");
        assert!(decode_raw(b"&'+,-", &rev1).is_err());
        assert_eq!(decode_pattern(b"&'+,-", &rev1).unwrap(), "&'+,-");
        assert_eq!(parents("a/b/c").collect::<Vec<_>>(), ["a", "a/b"]);
        assert!(is_child_of("a/b", "a"));
        assert!(!is_child_of("ab", "a"));
        assert!(!is_child_of("a", "a"));
    }
}
