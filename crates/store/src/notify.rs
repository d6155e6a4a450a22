//! Per-mailbox change notifications: a session subscribes to the mailbox it has selected and is
//! woken only by changes to that mailbox. No global lock across users: one map entry per
//! mailbox with a live subscriber, removed when the last subscriber goes away.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::watch;

use crate::MailboxId;

/// What a subscriber is told: the mailbox's highest modseq after the change.
pub type MailboxEvent = u64;

#[derive(Default)]
pub struct Notifier {
    senders: Mutex<HashMap<MailboxId, Weak<watch::Sender<MailboxEvent>>>>,
}

/// A subscription; dropping it unsubscribes.
pub struct Subscription {
    // Keeps the sender alive while any session watches the mailbox.
    _sender: Arc<watch::Sender<MailboxEvent>>,
    pub receiver: watch::Receiver<MailboxEvent>,
}

impl Notifier {
    pub fn subscribe(&self, mailbox: MailboxId) -> Subscription {
        let mut map = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get(&mailbox).and_then(Weak::upgrade) {
            let receiver = s.subscribe();
            return Subscription {
                _sender: s,
                receiver,
            };
        }
        let (tx, rx) = watch::channel(0);
        let tx = Arc::new(tx);
        map.insert(mailbox, Arc::downgrade(&tx));
        // Drop entries whose last subscriber went away, so the map stays small.
        if map.len() > 64 && map.len().is_power_of_two() {
            map.retain(|_, w| w.strong_count() > 0);
        }
        Subscription {
            _sender: tx,
            receiver: rx,
        }
    }

    /// The mailboxes some session watches, each with the last modseq it was told of (0: none
    /// yet). Used to pass on changes made by other processes (`sqlite::watch`).
    pub fn watched(&self) -> Vec<(MailboxId, MailboxEvent)> {
        let map = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        map.iter()
            .filter_map(|(&id, w)| w.upgrade().map(|s| (id, *s.borrow())))
            .collect()
    }

    /// Like [`Notifier::notify`], but only if `modseq` is above the last one announced for
    /// the mailbox: a change heard from elsewhere (another node) that this process announced
    /// already wakes nobody twice.
    pub fn notify_newer(&self, mailbox: MailboxId, modseq: u64) {
        let map = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get(&mailbox).and_then(Weak::upgrade) {
            s.send_if_modified(|v| {
                let newer = modseq > *v;
                if newer {
                    *v = modseq;
                }
                newer
            });
        }
    }

    /// Tell every session on `mailbox` that it changed.
    pub fn notify(&self, mailbox: MailboxId, modseq: u64) {
        let map = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get(&mailbox).and_then(Weak::upgrade) {
            s.send_replace(modseq);
        }
    }
}
