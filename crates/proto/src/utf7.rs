//! Modified UTF-7 (RFC 3501 §5.1.3) for mailbox names of IMAP4rev1 clients.

/// Decode a modified UTF-7 mailbox name to UTF-8. `None` if it is not valid modified UTF-7.
pub fn decode(name: &[u8]) -> Option<String> {
    let _ = name;
    todo!("proto agent")
}

/// Encode a UTF-8 mailbox name as modified UTF-7.
pub fn encode(name: &str) -> String {
    let _ = name;
    todo!("proto agent")
}
