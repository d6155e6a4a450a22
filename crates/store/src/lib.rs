//! Mailkeep's storage: one [`MailStore`] trait in front of every backend.
//!
//! # Layout
//! - [`MailStore`] (this file): accounts, mailboxes, messages, flags and the modseq change log
//!   that the session and (later) CONDSTORE/QRESYNC read. Async, object-safe (`Arc<dyn MailStore>`).
//! - [`sqlite`]: the embedded default. SQLite (WAL) for the index; message bodies
//!   content-addressed and zstd-packed with a dictionary trained on the installation's own mail
//!   (identical messages stored once): small ones inside the index, big ones as files under
//!   `blobs/`. Writers share fsyncs (group commit).
//! - [`postgres`] (feature `postgres`): everything in PostgreSQL, for several nodes.
//! - [`flagops`]: STORE flag arithmetic and keyword normalization, shared by backends.
//! - [`notify`]: per-mailbox change notifications that wake only the sessions on that mailbox.
//! - [`conformance`]: the test suite every backend runs (`conformance::run_all(store)`).
//!
//! Messages are stored exactly as accepted after bare LF was turned into CRLF (done by the
//! caller, see `mailkeep_mime::normalize_crlf`, or by the store for a
//! [`MessageBytes::Received`] source), so sizes and byte offsets are of that form.
#![forbid(unsafe_code)]

pub mod conformance;
pub mod copy;
pub mod flagops;
mod keyrows;
pub mod notify;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod quota;
mod reader;
pub mod recipients;
pub mod sqlite;
pub mod twofa;

use async_trait::async_trait;
use std::sync::Arc;

pub use copy::{MessageState, StoredAppPassword};
pub use keyrows::KeyRows;
pub use notify::{MailboxEvent, Notifier};
pub use quota::{Quota, QuotaLimits, QuotaSetting};
pub use reader::MessageReader;
pub use recipients::Recipient;
pub use twofa::{AppPassword, TwoFactor};

pub type UserId = i64;
pub type MailboxId = i64;

/// Who is at fault when a store call fails.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The mailbox or message does not exist (any more). -> `NO [NONEXISTENT]`
    #[error("no such mailbox")]
    NoSuchMailbox,
    /// -> `NO [ALREADYEXISTS]`
    #[error("mailbox already exists")]
    AlreadyExists,
    #[error("no such user")]
    NoSuchUser,
    #[error("user already exists")]
    UserExists,
    /// The request cannot be done as asked (e.g. DELETE INBOX, rename into own child).
    /// -> `NO [CANNOT]`
    #[error("{0}")]
    Cannot(String),
    /// -> `NO [OVERQUOTA]`
    #[error("over quota")]
    OverQuota,
    /// Storage fault: I/O, SQL, corruption. -> `NO [SERVERBUG]`, details only in the log.
    #[error("storage fault: {0}")]
    Internal(String),
    /// The database server cannot be reached for now (restarting, connection lost): nothing
    /// was written, or the outcome of a commit is unknown; trying again later may work.
    /// -> `NO [UNAVAILABLE]` (RFC 5530). Only the PostgreSQL backend returns it.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Internal(e.to_string())
    }
}
impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Internal(e.to_string())
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// System flags as bits; keywords are kept as strings.
pub mod flags {
    pub const SEEN: u32 = 1;
    pub const ANSWERED: u32 = 2;
    pub const FLAGGED: u32 = 4;
    pub const DELETED: u32 = 8;
    pub const DRAFT: u32 = 16;
}

/// The flags of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// Bits from [`flags`].
    pub system: u32,
    /// Keywords, as first stored (case preserved), sorted, no duplicates (compared
    /// case-insensitively).
    pub keywords: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub name: String,
    /// PHC string (argon2id).
    pub password_hash: String,
}

/// An account's SCRAM-SHA-256 secrets (RFC 5802 §3): what a server needs to check a SCRAM
/// login and prove itself, never the password. Kept beside the password hash, dropped whenever
/// that hash changes (the keys are derived again from the next password set or login).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramKeys {
    /// PBKDF2 iterations (`i=`).
    pub iterations: u32,
    pub salt: Vec<u8>,
    /// H(ClientKey).
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub id: MailboxId,
    /// Full UTF-8 name with `/` as the hierarchy separator; INBOX is always spelled `INBOX`.
    pub name: String,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highest_modseq: u64,
    /// RFC 6154 attribute such as `\Sent`, if any.
    pub special_use: Option<String>,
    pub subscribed: bool,
}

/// Counters for STATUS and SELECT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailboxStatus {
    pub messages: u32,
    pub unseen: u32,
    pub deleted: u32,
    /// Sum of RFC822.SIZE of all messages (STATUS SIZE, RFC 8438).
    pub size: u64,
    pub uidnext: u32,
    pub uidvalidity: u32,
    pub highest_modseq: u64,
    /// Messages with UID >= the mailbox's recent boundary (see [`MailStore::claim_recent`]).
    pub recent: u32,
}

/// What the session keeps per message of the selected mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    pub uid: u32,
    pub flags: Flags,
    pub modseq: u64,
    /// RFC822.SIZE (bytes of the stored CRLF form).
    pub size: u64,
    /// INTERNALDATE: seconds since the epoch and the zone offset in minutes.
    pub internal_date: i64,
    pub internal_date_offset: i32,
}

/// What was computed from the message when it arrived (by `mailkeep-mime`), stored beside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedInfo {
    /// The IMAP text of ENVELOPE, `(` ... `)`.
    pub envelope: Vec<u8>,
    /// The IMAP text of BODYSTRUCTURE.
    pub bodystructure: Vec<u8>,
    /// The IMAP text of BODY (non-extensible).
    pub body: Vec<u8>,
    /// Serialized part tree (byte offsets of each part's header and body), opaque to the store.
    pub parts: Vec<u8>,
    /// Decoded searchable text (headers and text parts, UTF-8) for SEARCH TEXT/BODY. Given to
    /// the store at APPEND for its search index; reads leave it empty (the text is not kept).
    pub search_text: String,
    /// Offset in `search_text` where the body text starts (SEARCH BODY looks after it).
    pub search_body_offset: usize,
    /// Sent date from the Date: header (unix seconds), for SENTBEFORE/SENTON/SENTSINCE.
    pub sent_date: Option<i64>,
}

impl From<mailkeep_mime::Analysis> for ParsedInfo {
    /// What the store keeps of a message's MIME analysis.
    fn from(a: mailkeep_mime::Analysis) -> ParsedInfo {
        ParsedInfo {
            envelope: a.envelope,
            bodystructure: a.bodystructure,
            body: a.body,
            parts: a.parts.to_bytes(),
            search_text: a.search_text,
            search_body_offset: a.search_body_offset,
            sent_date: a.sent_date,
        }
    }
}

/// A message's object IDs (RFC 8474) and save date (RFC 8514).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageObjects {
    /// EMAILID: the same for every copy of the same stored body, so COPY and MOVE keep it.
    pub email_id: String,
    /// THREADID, given at delivery from the Message-ID / References / In-Reply-To links of
    /// the account's mail; `None` for mail stored before THREADIDs were kept (NIL).
    pub thread_id: Option<String>,
    /// SAVEDATE (unix seconds): when the message was put into this mailbox by APPEND,
    /// COPY, MOVE or delivery; INTERNALDATE for mail stored before save dates were kept.
    pub save_date: i64,
}

/// MAILBOXID (RFC 8474 §4): stays with the mailbox through RENAME, never given to another
/// (mailbox ids are never reused).
pub fn mailbox_object_id(mailbox: &Mailbox) -> String {
    format!("F{:x}-{:08x}", mailbox.id, mailbox.uidvalidity)
}

/// A message to add.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The message bytes (CRLF-normalized), or the message as received for the store to
    /// prepare ([`MessageBytes::Received`]).
    pub data: MessageBytes,
    pub flags: Flags,
    pub internal_date: i64,
    pub internal_date_offset: i32,
    /// Computed by the caller from `data`; ignored (computed by the store) for
    /// [`MessageBytes::Received`].
    pub parsed: ParsedInfo,
}

/// Message bytes in memory or in a file the store may read (and will not delete).
#[derive(Debug, Clone)]
pub enum MessageBytes {
    /// CRLF-normalized bytes.
    Memory(Arc<Vec<u8>>),
    /// A file holding the CRLF-normalized bytes.
    File(std::path::PathBuf),
    /// A file (an APPEND's spool file) holding the message exactly as the client sent it,
    /// `len` bytes. The store makes it ready itself, one message at a time, so an APPEND of
    /// many big messages never holds more than one in memory:
    /// [`mailkeep_mime::prepare_received`] (bare LF to CRLF; with `binary`, for a literal8,
    /// binary parts to base64 first), then the MIME analysis that `NewMessage::parsed` would
    /// have held.
    Received {
        path: std::path::PathBuf,
        len: u64,
        binary: bool,
    },
}

/// STORE operation on flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Replace,
    Add,
    Remove,
}

/// Result of a flag change for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagUpdate {
    pub uid: u32,
    pub flags: Flags,
    pub modseq: u64,
}

/// Result of `set_flags`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreFlagsResult {
    /// Messages whose flags were changed (or matched, for Replace) with their new state.
    pub updated: Vec<FlagUpdate>,
    /// UIDs that failed an UNCHANGEDSINCE test (RFC 7162 `MODIFIED`).
    pub modified: Vec<u32>,
}

/// Everything that changed in a mailbox after a modseq: what a session needs to catch up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Messages added or whose flags changed after `since`, ascending UID.
    pub changed: Vec<MessageMeta>,
    /// UIDs expunged after `since`, ascending.
    pub expunged: Vec<u32>,
    /// Tombstones up to this modseq may have been pruned: if `since` is below it, `expunged`
    /// can miss UIDs (RFC 7162 §3.2.6 then lets the server report every UID not present).
    pub pruned_modseq: u64,
    pub highest_modseq: u64,
    pub uidnext: u32,
}

/// What [`MailStore::append_to_claiming`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub uidvalidity: u32,
    /// The new messages' UIDs, in the order given.
    pub uids: Vec<u32>,
    /// UIDs made \Recent for the caller (ascending): the new ones and any others not yet
    /// claimed; empty if the mailbox was not the caller's selected one.
    pub claimed: Vec<u32>,
}

/// The storage interface. Every method is one transaction; methods that add or change mail
/// return only after the change is durable (fsync), and then notify sessions on that mailbox.
#[async_trait]
pub trait MailStore: Send + Sync + 'static {
    // ---- accounts ----
    /// Creates the user with an (unsubscribed) INBOX. Fails with UserExists.
    async fn create_user(&self, name: &str, password_hash: &str) -> Result<User>;
    async fn get_user(&self, name: &str) -> Result<Option<User>>;
    async fn list_users(&self) -> Result<Vec<User>>;
    async fn set_password(&self, name: &str, password_hash: &str) -> Result<()>;
    /// Deletes the user, their mailboxes and messages (blobs no longer referenced are removed).
    async fn delete_user(&self, name: &str) -> Result<()>;
    /// The account's SCRAM-SHA-256 keys, if any were stored since its password hash was last
    /// set (`set_password` drops them).
    async fn get_scram_keys(&self, name: &str) -> Result<Option<ScramKeys>>;
    /// Stores (replaces) or, with `None`, removes the account's SCRAM-SHA-256 keys. NoSuchUser
    /// if there is no such account.
    async fn set_scram_keys(&self, name: &str, keys: Option<&ScramKeys>) -> Result<()>;
    /// The account's SCRAM-SHA-1 keys (kept only where `[auth] scram_sha1` is on), dropped
    /// with the password hash as the SCRAM-SHA-256 ones.
    async fn get_scram_sha1_keys(&self, name: &str) -> Result<Option<ScramKeys>>;
    /// Stores (replaces) or, with `None`, removes the account's SCRAM-SHA-1 keys. NoSuchUser
    /// if there is no such account.
    async fn set_scram_sha1_keys(&self, name: &str, keys: Option<&ScramKeys>) -> Result<()>;
    /// This installation's random 32-byte secret called `name`, made at its first use and the
    /// same ever after (SCRAM derives stand-in salts of unknown users from it).
    async fn server_secret(&self, name: &str) -> Result<Vec<u8>>;

    // --- Second factor (TOTP) and app passwords (`twofa`) ---
    /// The account's TOTP secret, confirmed or not.
    async fn get_two_factor(&self, name: &str) -> Result<Option<TwoFactor>>;
    /// Store (replace) the account's TOTP secret and the hashes of its recovery codes (the old
    /// codes go), or with `None` remove the secret and every recovery code.
    async fn set_two_factor(
        &self,
        name: &str,
        tf: Option<&TwoFactor>,
        recovery_hashes: &[Vec<u8>],
    ) -> Result<()>;
    /// Record that TOTP step `step` was used: true if it is newer than the last one (and is now
    /// the last), false if it was used already or is older (a replayed code).
    async fn use_totp_step(&self, name: &str, step: i64) -> Result<bool>;
    /// Consume a recovery code by its hash: true if it was there (it is gone now).
    async fn use_recovery_code(&self, name: &str, hash: &[u8]) -> Result<bool>;
    /// Recovery codes not yet used.
    async fn recovery_codes_left(&self, name: &str) -> Result<u32>;
    /// A new app password (its keyed hash) named `label`; `AlreadyExists` if the account has
    /// one of that label, `NoSuchUser`.
    async fn add_app_password(
        &self,
        name: &str,
        label: &str,
        hash: &[u8],
        now: i64,
    ) -> Result<AppPassword>;
    /// The account's app passwords, oldest first.
    async fn list_app_passwords(&self, name: &str) -> Result<Vec<AppPassword>>;
    /// Remove the app password `label`; `Cannot` if there is none.
    async fn revoke_app_password(&self, name: &str, label: &str) -> Result<()>;
    /// The account's app password with this hash.
    async fn find_app_password(&self, name: &str, hash: &[u8]) -> Result<Option<AppPassword>>;
    /// Whether the app password `id` still exists (open sessions ask to notice revocation).
    async fn app_password_exists(&self, id: i64) -> Result<bool>;
    /// Set `last_used` to `now` unless it is less than `min_interval` seconds old.
    async fn touch_app_password(&self, id: i64, now: i64, min_interval: i64) -> Result<()>;

    // ---- mailboxes ----
    /// All mailboxes of the user, sorted by name.
    async fn list_mailboxes(&self, user: UserId) -> Result<Vec<Mailbox>>;
    /// Case-sensitive lookup, except that any case of `INBOX` finds INBOX.
    async fn get_mailbox(&self, user: UserId, name: &str) -> Result<Option<Mailbox>>;
    /// Creates the mailbox. Fails with AlreadyExists. Parents are not created here.
    async fn create_mailbox(
        &self,
        user: UserId,
        name: &str,
        special_use: Option<&str>,
    ) -> Result<Mailbox>;
    /// Deletes the mailbox and its messages.
    async fn delete_mailbox(&self, user: UserId, id: MailboxId) -> Result<()>;
    /// Renames one mailbox (not its children: the caller renames each). Renaming INBOX is the
    /// caller's business (RFC 9051 §6.3.6: it creates the new mailbox and moves the messages).
    async fn rename_mailbox(&self, user: UserId, id: MailboxId, new_name: &str) -> Result<()>;
    /// Subscriptions are names, kept even if the mailbox does not exist (RFC 9051 §6.3.7).
    async fn subscribe(&self, user: UserId, name: &str) -> Result<()>;
    async fn unsubscribe(&self, user: UserId, name: &str) -> Result<()>;
    async fn subscriptions(&self, user: UserId) -> Result<Vec<String>>;
    async fn status(&self, mailbox: MailboxId) -> Result<MailboxStatus>;

    // ---- messages ----
    /// Adds messages to a mailbox in one transaction (all or none, RFC 3502); returns
    /// (uidvalidity, assigned UIDs). The messages are read and packed one after the other:
    /// a backend must not hold all their bytes at once (a MULTIAPPEND may be gigabytes).
    async fn append(
        &self,
        mailbox: MailboxId,
        messages: Vec<NewMessage>,
    ) -> Result<(u32, Vec<u32>)>;
    /// `append` to the user's mailbox `name` (found as `get_mailbox` finds it); `None` if
    /// there is no such mailbox.
    async fn append_to(
        &self,
        user: UserId,
        name: &str,
        messages: Vec<NewMessage>,
    ) -> Result<Option<(u32, Vec<u32>)>> {
        match self.get_mailbox(user, name).await? {
            Some(mailbox) => self.append(mailbox.id, messages).await.map(Some),
            None => Ok(None),
        }
    }
    /// `append_to` from a session that has `selected` selected read-write: when the mailbox
    /// found is `selected`, \Recent is claimed in the same transaction (as `claim_recent
    /// (selected, true)` right after would), so the session's catching up after its APPEND
    /// has nothing left to claim. Returns also the UIDs claimed (empty for another mailbox).
    async fn append_to_claiming(
        &self,
        user: UserId,
        name: &str,
        messages: Vec<NewMessage>,
        selected: MailboxId,
    ) -> Result<Option<Appended>> {
        let Some(mailbox) = self.get_mailbox(user, name).await? else {
            return Ok(None);
        };
        let (uidvalidity, uids) = self.append(mailbox.id, messages).await?;
        let claimed = if mailbox.id == selected {
            self.claim_recent(selected, true).await?
        } else {
            Vec::new()
        };
        Ok(Some(Appended {
            uidvalidity,
            uids,
            claimed,
        }))
    }
    /// All messages of the mailbox, ascending UID (what SELECT loads).
    async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageMeta>>;
    /// What changed after `since` (a modseq); used to update a selected mailbox's view.
    async fn changes_since(&self, mailbox: MailboxId, since: u64) -> Result<Changes>;
    /// The stored bytes of a message.
    async fn message_bytes(&self, mailbox: MailboxId, uid: u32) -> Result<Arc<Vec<u8>>>;
    /// The stored bytes of a message as a stream (POP3 RETR, big FETCHes): a backend that
    /// keeps big bodies outside memory reads them a piece at a time. By default, the bytes of
    /// `message_bytes`.
    async fn message_reader(&self, mailbox: MailboxId, uid: u32) -> Result<MessageReader> {
        Ok(MessageReader::from_bytes(
            self.message_bytes(mailbox, uid).await?,
        ))
    }
    /// The parsed info computed when the message arrived, without the search text (left empty).
    async fn parsed_info(&self, mailbox: MailboxId, uid: u32) -> Result<ParsedInfo>;
    /// The parsed info of many messages in one call (FETCH ENVELOPE/BODYSTRUCTURE over a
    /// range, SEARCH on addresses), ascending UID, WITHOUT the search text (left empty).
    /// UIDs not in the mailbox are left out. `uids` must be ascending.
    async fn parsed_infos(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
    ) -> Result<Vec<(u32, ParsedInfo)>> {
        let mut out = Vec::with_capacity(uids.len());
        for &uid in uids {
            match self.parsed_info(mailbox, uid).await {
                Ok(mut p) => {
                    p.search_text.clear();
                    p.search_body_offset = 0;
                    out.push((uid, p));
                }
                Err(StoreError::NoSuchMailbox) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
    /// The first `len` octets of each `(uid, len)` (ascending UIDs), in one call: the headers
    /// a header-only FETCH over a range writes. `(uid, bytes)` ascending; a message shorter
    /// than `len` gives all of itself; UIDs not in the mailbox are left out. By default, one
    /// `message_reader` per message.
    async fn message_prefixes(
        &self,
        mailbox: MailboxId,
        wanted: &[(u32, u64)],
    ) -> Result<Vec<(u32, Vec<u8>)>> {
        let mut out = Vec::with_capacity(wanted.len());
        for &(uid, len) in wanted {
            match self.message_reader(mailbox, uid).await {
                Ok(r) => out.push((uid, reader::read_prefix(r, uid, len)?)),
                Err(StoreError::NoSuchMailbox) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
    /// Sort and thread keys (RFC 5256) saved for these messages' bodies, opaque to the store
    /// (the session computes and reads them): `(uid, keys)` ascending, only for the `uids`
    /// (ascending) that have some. Copies of a message share its keys.
    async fn sort_keys(&self, _mailbox: MailboxId, _uids: &[u32]) -> Result<KeyRows> {
        Ok(KeyRows::default())
    }
    /// Save sort and thread keys for the bodies of these messages, replacing earlier ones;
    /// UIDs no longer in the mailbox are skipped.
    async fn save_sort_keys(&self, _mailbox: MailboxId, _keys: Vec<(u32, Vec<u8>)>) -> Result<()> {
        Ok(())
    }
    /// Change flags of the given UIDs. `unchanged_since` implements RFC 7162 UNCHANGEDSINCE.
    async fn set_flags(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
        op: FlagOp,
        flags: &Flags,
        unchanged_since: Option<u64>,
    ) -> Result<StoreFlagsResult>;
    /// Removes the given UIDs; returns those that were removed, ascending. The removed
    /// messages' bytes and parse stay readable through `message_bytes` / `parsed_info` for a
    /// grace period (RFC 2180 §4.1.1), for sessions not yet told of the expunge.
    async fn expunge(&self, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<u32>>;
    /// Forget the tombstones of messages expunged at least `age` ago (RFC 7162 VANISHED data),
    /// raising each mailbox's `Changes::pruned_modseq`. Returns how many were forgotten.
    async fn prune_tombstones(&self, age: std::time::Duration) -> Result<u64>;
    /// Copies messages; returns (destination uidvalidity, [(source uid, new uid)]).
    async fn copy(
        &self,
        from: MailboxId,
        uids: &[u32],
        to: MailboxId,
    ) -> Result<(u32, Vec<(u32, u32)>)>;
    /// Copy then expunge in one transaction (RFC 6851).
    async fn move_messages(
        &self,
        from: MailboxId,
        uids: &[u32],
        to: MailboxId,
    ) -> Result<(u32, Vec<(u32, u32)>)>;
    /// UIDs among `uids` whose search text contains `needle` (case-insensitive substring).
    async fn search_text(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
        needle: &str,
        body_only: bool,
    ) -> Result<Vec<u32>>;

    /// `\Recent` (rev1): returns the UIDs that are recent for this session, claiming them so
    /// no other session sees them as recent (RFC 3501 §2.3.2). Read-only selects don't claim.
    async fn claim_recent(&self, mailbox: MailboxId, claim: bool) -> Result<Vec<u32>>;

    // ---- object IDs, save dates, previews (RFC 8474, RFC 8514, RFC 8970; see `sqlite::objects`) ----
    /// EMAILID, THREADID and SAVEDATE of the given messages (`uids` ascending), ascending
    /// UID; UIDs not in the mailbox are left out.
    async fn message_objects(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
    ) -> Result<Vec<(u32, MessageObjects)>>;
    /// The PREVIEW text computed at delivery (RFC 8970), if one was kept (not for mail stored
    /// before previews were). NoSuchMailbox if there is no such message.
    async fn preview(&self, mailbox: MailboxId, uid: u32) -> Result<Option<String>>;
    /// REPLACE (RFC 8508): appends `message` to the user's mailbox `name` and expunges `uid`
    /// from `from`, in one transaction. `None` if there is no mailbox `name` (nothing done);
    /// else (uidvalidity, new UID). NoSuchMailbox (nothing done) if `uid` is no longer in
    /// `from`.
    async fn replace(
        &self,
        from: MailboxId,
        uid: u32,
        user: UserId,
        name: &str,
        message: NewMessage,
    ) -> Result<Option<(u32, u32)>>;
    // ---- import (see `mailkeep-transfer`) ----
    /// The mailbox `name` made ready for an import: created if missing (with `uidvalidity`
    /// when given, else a fresh one); an existing mailbox that never held a message (UIDNEXT
    /// 1) takes `uidvalidity` as its own. Any other existing mailbox is returned unchanged: the
    /// caller compares its UIDVALIDITY to decide whether old UIDs can be kept. `Cannot` for a
    /// UIDVALIDITY of 0.
    async fn import_mailbox(
        &self,
        user: UserId,
        name: &str,
        special_use: Option<&str>,
        uidvalidity: Option<u32>,
    ) -> Result<Mailbox>;
    /// `append` with the UIDs given (one per message, strictly ascending, the first at least
    /// the mailbox's UIDNEXT), in one transaction; UIDNEXT becomes the last UID + 1. `Cannot`
    /// (and nothing stored) if the UIDs are not so. Returns the mailbox's UIDVALIDITY.
    async fn append_with_uids(
        &self,
        mailbox: MailboxId,
        messages: Vec<(u32, NewMessage)>,
    ) -> Result<u32>;

    // ---- URLAUTH mailbox access keys (RFC 4467 §2.4; see `sqlite::urlauth`) ----
    /// The access key of the user's mailbox: 32 random bytes, the secret of the URLAUTH
    /// INTERNAL mechanism. `None` if the mailbox has none (and `create` is false) or is not
    /// the user's; with `create`, one is made if missing (GENURLAUTH needs no RESETKEY first).
    /// The key goes with the mailbox: a deleted mailbox's URLs never verify again.
    async fn urlauth_key(
        &self,
        user: UserId,
        mailbox: MailboxId,
        create: bool,
    ) -> Result<Option<Vec<u8>>>;
    /// RESETKEY: a new key for the user's mailbox (`Some`; NoSuchMailbox if it is not the
    /// user's), or no key for any of the user's mailboxes (`None`). Either way every URL made
    /// with an old key stops verifying.
    async fn reset_urlauth_keys(&self, user: UserId, mailbox: Option<MailboxId>) -> Result<()>;
    // ---- copying a whole store (`mailkeep store copy`, see [`copy`]) ----
    /// Every installation secret (`server_secret`) as `(name, value)`, sorted by name.
    async fn server_secrets(&self) -> Result<Vec<(String, Vec<u8>)>>;
    /// Sets (replaces) the installation secret `name`.
    async fn set_server_secret(&self, name: &str, value: &[u8]) -> Result<()>;
    /// The hashes of the account's unused recovery codes, sorted. NoSuchUser.
    async fn recovery_code_hashes(&self, name: &str) -> Result<Vec<Vec<u8>>>;
    /// The account's app passwords with their keyed hashes, oldest first. NoSuchUser.
    async fn app_password_hashes(&self, name: &str) -> Result<Vec<StoredAppPassword>>;
    /// Adds an app password as it was stored elsewhere (label, hash, created, last used).
    /// `AlreadyExists` if the account has one of that label, `NoSuchUser`.
    async fn restore_app_password(&self, name: &str, app: &StoredAppPassword) -> Result<()>;
    /// The user's mailbox `mailbox.name` made as it was elsewhere: its id (MAILBOXID) when no
    /// other mailbox has it (else a fresh one), UIDVALIDITY and special use, empty. An
    /// existing mailbox of that name that never held a message (the INBOX `create_user`
    /// made) is replaced; `AlreadyExists` for any other. Mailboxes made later get ids and
    /// UIDVALIDITYs above these. Returns the mailbox as made.
    async fn restore_mailbox(&self, user: UserId, mailbox: &Mailbox) -> Result<Mailbox>;
    /// After `append_with_uids` filled a restored mailbox: each message's modseq and save
    /// date as they were, UIDNEXT and HIGHESTMODSEQ raised to the given ones (never lowered),
    /// no message `\Recent`, and every expunge up to HIGHESTMODSEQ treated as forgotten
    /// (the tombstones were not copied: a QRESYNC from before gets every missing UID).
    async fn restore_message_state(
        &self,
        mailbox: MailboxId,
        uidnext: u32,
        highest_modseq: u64,
        messages: &[MessageState],
    ) -> Result<()>;

    // ---- local domains and aliases (LMTP recipients, see [`recipients`]) ----
    /// Adds a local domain (given normalized: see `recipients::normalize_domain`). Fails with
    /// AlreadyExists.
    async fn add_domain(&self, domain: &str) -> Result<()>;
    /// Removes a local domain; `Cannot` if it is not one.
    async fn delete_domain(&self, domain: &str) -> Result<()>;
    /// Local domains, sorted.
    async fn list_domains(&self) -> Result<Vec<String>>;
    async fn is_local_domain(&self, domain: &str) -> Result<bool>;
    /// Adds an alias (normalized: see `recipients::normalize_alias`; `@domain` is a catch-all)
    /// for the account `target`. Fails with NoSuchUser or AlreadyExists.
    async fn add_alias(&self, address: &str, target: &str) -> Result<()>;
    /// Removes an alias; `Cannot` if there is none.
    async fn delete_alias(&self, address: &str) -> Result<()>;
    /// (alias, target account) pairs, sorted by alias.
    async fn list_aliases(&self) -> Result<Vec<(String, String)>>;
    /// The account an alias (normalized) points to.
    async fn alias_target(&self, address: &str) -> Result<Option<String>>;
    /// Where mail for an envelope address goes (see [`recipients::resolve`]); `separator`
    /// splits `user+detail` (empty: no detail).
    async fn resolve_recipient(&self, address: &str, separator: &str) -> Result<Recipient> {
        recipients::resolve(self, address, separator).await
    }

    // ---- quotas (RFC 9208; see [`quota`]) ----
    /// The limits of accounts without their own setting (`[quota]` of the configuration).
    /// Takes effect for the next write.
    fn set_default_quota(&self, limits: QuotaLimits);
    /// Changes the account's own quota setting; `None` leaves a resource as it is.
    /// Fails with NoSuchUser.
    async fn set_quota(
        &self,
        user: &str,
        storage: Option<QuotaSetting>,
        messages: Option<QuotaSetting>,
    ) -> Result<()>;
    /// The account's usage, own settings and effective limits. Usage counts every message of
    /// every mailbox (RFC822.SIZE), a message held by several accounts once for each.
    /// APPEND, COPY and MOVE that would take a limited resource above its limit fail with
    /// `OverQuota` and store nothing (checked in their write transaction); a MOVE within the
    /// account does not grow usage and is never refused.
    async fn quota(&self, user: UserId) -> Result<Quota>;

    // ---- notifications and checks ----
    fn notifier(&self) -> &Notifier;
    /// Integrity check (`mailkeep check`): index and blobs agree. Returns problems found.
    async fn check(&self) -> Result<Vec<String>>;
}

/// `uids` (ascending) are few for the range they span: a store looks each up rather than
/// reading the range.
pub(crate) fn sparse(uids: &[u32]) -> bool {
    match (uids.first(), uids.last()) {
        (Some(&lo), Some(&hi)) => u64::from(hi - lo) + 1 > uids.len() as u64 * 8,
        _ => false,
    }
}
