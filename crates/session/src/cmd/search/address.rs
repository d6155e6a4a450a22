//! FROM, TO, CC, BCC: RFC 9051 §6.4.4 matches them against "the envelope structure's" field, so
//! the text searched is the parsed address list from the stored ENVELOPE, written back as
//! `name <mailbox@host>` (display names RFC 2047-decoded), as Dovecot does. A broken address is
//! searched as the envelope has it (`MISSING_MAILBOX`...), not as the raw header line.

/// ENVELOPE field positions (RFC 9051 §7.5.2).
pub(crate) fn envelope_field(header: &str) -> Option<usize> {
    Some(match header {
        "from" => 2,
        "sender" => 3,
        "reply-to" => 4,
        "to" => 5,
        "cc" => 6,
        "bcc" => 7,
        _ => return None,
    })
}

pub(crate) use mailkeep_mime::envelope_read::envelope_addresses;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_fields() {
        assert_eq!(envelope_field("cc"), Some(6));
        assert_eq!(envelope_field("subject"), None);
    }
}
