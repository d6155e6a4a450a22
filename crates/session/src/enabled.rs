//! Extensions the client turned on with ENABLE (RFC 5161), in one place.

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Enabled {
    /// `ENABLE IMAP4rev2`: rev2 responses (no \Recent, ESEARCH for SEARCH, UTF-8 names...).
    pub imap4rev2: bool,
    pub condstore: bool,
    pub qresync: bool,
    /// `UTF8=ACCEPT` (RFC 6855); implied by IMAP4rev2 for mailbox names.
    pub utf8_accept: bool,
    /// `ENABLE UIDONLY` (RFC 9586): no message sequence numbers, in or out.
    pub uidonly: bool,
}

impl Enabled {
    /// Mailbox names are sent and received as UTF-8 rather than modified UTF-7.
    pub fn utf8_names(&self) -> bool {
        self.imap4rev2 || self.utf8_accept
    }
}
