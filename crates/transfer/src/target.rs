//! Where imported messages go: one mailbox, filled in batches (one store transaction, so one
//! fsync, per batch), keeping the source's UIDs when the mailbox allows it.

use mailkeep_store::{MailStore, Mailbox, NewMessage, StoreError, UserId};

use crate::progress::{Folder, Progress};

/// Messages per store transaction.
pub const BATCH_MESSAGES: usize = 500;
/// Bytes per store transaction (whichever of the two comes first).
pub const BATCH_BYTES: u64 = 16 << 20;

/// What an import may take in (from the configuration).
#[derive(Debug, Clone, Copy)]
pub struct ImportOptions {
    /// Messages bigger than this are skipped (`[limits] max_message_size`).
    pub max_message_size: u64,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            max_message_size: 50 << 20,
        }
    }
}

/// The special-use attribute a folder gets by its name when an import creates it.
pub fn special_use_of(name: &str) -> Option<&'static str> {
    let leaf = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
    match leaf.as_str() {
        "sent" | "sent messages" | "sent items" | "sent mail" => Some("\\Sent"),
        "drafts" => Some("\\Drafts"),
        "trash" | "deleted messages" | "deleted items" => Some("\\Trash"),
        "junk" | "spam" => Some("\\Junk"),
        "archive" | "archives" => Some("\\Archive"),
        _ => None,
    }
}

/// One message waiting for its batch, with what progress and skips need to name it.
struct Pending {
    uid: Option<u32>,
    message: NewMessage,
    size: u64,
    name: String,
}

/// A mailbox being filled.
pub struct Target<'a> {
    store: &'a dyn MailStore,
    pub mailbox: Mailbox,
    /// The source's UIDs are kept (see [`Target::open`]).
    keep_uids: bool,
    pending: Vec<Pending>,
    bytes: u64,
}

impl<'a> Target<'a> {
    /// Opens (creating if needed) the user's mailbox `name`. With `uids` = the source's
    /// (UIDVALIDITY, lowest UID), the source's UIDs are kept when the mailbox is new or has
    /// never held a message (it then takes the source's UIDVALIDITY); otherwise the messages
    /// get the mailbox's next UIDs, after whatever it holds.
    pub async fn open(
        store: &'a dyn MailStore,
        user: UserId,
        name: &str,
        uids: Option<(u32, u32)>,
    ) -> Result<Target<'a>, StoreError> {
        let mailbox = store
            .import_mailbox(user, name, special_use_of(name), uids.map(|(v, _)| v))
            .await?;
        let keep_uids = uids
            .is_some_and(|(v, low)| v == mailbox.uidvalidity && low >= mailbox.uidnext && low > 0);
        Ok(Target {
            store,
            mailbox,
            keep_uids,
            pending: Vec::new(),
            bytes: 0,
        })
    }

    /// Whether the source's UIDs are kept.
    pub fn keeps_uids(&self) -> bool {
        self.keep_uids
    }

    /// Queues a message (`uid`: its UID in the source, used when UIDs are kept; they must
    /// come ascending). Writes a batch when one is full.
    pub async fn push(
        &mut self,
        progress: &mut Progress,
        folder: &mut Folder,
        uid: Option<u32>,
        message: NewMessage,
        size: u64,
        name: String,
    ) {
        self.bytes += size;
        self.pending.push(Pending {
            uid,
            message,
            size,
            name,
        });
        if self.pending.len() >= BATCH_MESSAGES || self.bytes >= BATCH_BYTES {
            self.flush(progress, folder).await;
        }
    }

    /// Writes what is queued in one transaction. If the store refuses the batch, each message
    /// is tried alone so that one bad message is skipped (and named), not the batch.
    pub async fn flush(&mut self, progress: &mut Progress, folder: &mut Folder) {
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        self.bytes = 0;
        let (count, bytes) = (batch.len() as u64, batch.iter().map(|p| p.size).sum());
        let keep = self.keep_uids && batch.iter().all(|p| p.uid.is_some());
        let all: Vec<_> = batch.iter().map(|p| (p.uid, p.message.clone())).collect();
        if self.write(keep, all).await.is_ok() {
            progress.advance(folder, count, bytes);
            return;
        }
        for p in batch {
            match self.write(keep, vec![(p.uid, p.message)]).await {
                Ok(()) => progress.advance(folder, 1, p.size),
                Err(e) => progress.skip(&format!("refused by the store: {e}"), p.name),
            }
        }
    }

    async fn write(
        &mut self,
        keep: bool,
        messages: Vec<(Option<u32>, NewMessage)>,
    ) -> Result<(), StoreError> {
        if keep {
            let msgs = messages
                .into_iter()
                .map(|(u, m)| (u.unwrap_or_default(), m))
                .collect();
            self.store.append_with_uids(self.mailbox.id, msgs).await?;
        } else {
            let msgs = messages.into_iter().map(|(_, m)| m).collect();
            self.store.append(self.mailbox.id, msgs).await?;
        }
        Ok(())
    }
}
