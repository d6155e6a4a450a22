//! What `mailkeep store copy` moves between two stores beyond the everyday trait methods:
//! stored secrets as they are (hashes, never the passwords) and the per-message state an
//! APPEND cannot give (modseq, save date). See the "copying a whole store" methods of
//! [`crate::MailStore`].

/// An app password as stored: its keyed hash (under the installation secret
/// `app-passwords`, which is copied too) and dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAppPassword {
    pub label: String,
    pub hash: Vec<u8>,
    /// Unix seconds.
    pub created: i64,
    pub last_used: Option<i64>,
}

/// The state of one message that `append_with_uids` does not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageState {
    pub uid: u32,
    pub modseq: u64,
    /// SAVEDATE, unix seconds.
    pub save_date: i64,
}
