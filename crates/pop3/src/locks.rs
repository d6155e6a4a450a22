//! The maildrop lock of RFC 1939 §8: one POP3 session per account at a time. It locks POP3
//! sessions out of each other only; IMAP sessions go on (POP3 works on a snapshot anyway).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use mailkeep_store::UserId;

/// The accounts whose maildrop a POP3 session holds. One per server (per store).
#[derive(Debug, Default)]
pub struct Maildrops {
    held: Mutex<HashSet<UserId>>,
}

impl Maildrops {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Lock the account's maildrop, or `None` if another POP3 session has it.
    pub fn try_lock(self: &Arc<Self>, user: UserId) -> Option<MaildropLock> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if !held.insert(user) {
            return None;
        }
        Some(MaildropLock {
            owner: self.clone(),
            user,
        })
    }

    /// Whether the account's maildrop is locked (tests).
    pub fn is_locked(&self, user: UserId) -> bool {
        self.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&user)
    }
}

/// Held while a session is in the TRANSACTION state; released when dropped (QUIT, or the
/// connection going away).
#[derive(Debug)]
pub struct MaildropLock {
    owner: Arc<Maildrops>,
    user: UserId,
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        self.owner
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.user);
    }
}
