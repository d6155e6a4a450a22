//! Sort orders and thread answers kept between commands, for every session of a server.
//!
//! What SORT sorts on never changes once a message is stored: its sent date, size,
//! INTERNALDATE and the collation keys of its addresses and base subject. A UID names one
//! message for the life of its mailbox's UIDVALIDITY, and ties go by sequence number, which
//! follows the UIDs. So the order one SORT computed over a mailbox is also the order of any
//! subset of those messages: the next SORT with the same criteria, from this session or
//! another (a webmail opens one per page), over the whole mailbox or part of it, filters the
//! kept order. It does not read 100,000 key rows again. Expunges need nothing. A message the
//! kept order lacks (new mail) makes the next SORT compute the order again.
//!
//! THREAD's answer depends on the exact set threaded (a missing parent changes the tree), so
//! it is kept for one set of UIDs and reused only for that set.
//!
//! Only mailboxes of at least [`MIN_KEPT`] messages are kept (smaller ones sort quickly), and
//! at most [`MAX_BYTES`] in all: the least recently used go first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mailkeep_proto::{SortCriterion, ThreadAlgorithm};
use mailkeep_store::{Mailbox, MailboxId, MessageMeta};

use crate::cmd::thread::Links;

/// Orders of fewer messages are not kept.
pub const MIN_KEPT: usize = 1_000;

/// What all kept orders may take (UIDs, thread tokens, REFERENCES's links); all that a
/// mailbox of 100,000 messages can keep is about 14 MiB.
pub const MAX_BYTES: usize = 32 << 20;

/// What an order is of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Sort(Vec<SortCriterion>),
    Thread(ThreadAlgorithm),
    /// THREAD=ORDEREDSUBJECT's order of the whole mailbox, with its runs.
    Subjects,
    /// THREAD=REFERENCES's (and REFS's) step 1 over the whole mailbox.
    Links,
}

/// One piece of a THREAD answer (RFC 5256 §4), with UIDs for the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    Open,
    Close,
    Space,
    Uid(u32),
}

#[derive(Debug)]
pub(crate) enum Order {
    /// UIDs in sort order.
    Sort(Vec<u32>),
    /// The UIDs threaded (ascending) and the answer.
    Thread { set: Vec<u32>, tokens: Vec<Token> },
    /// UIDs by base subject, sent date and UID, with each one's run of equal subjects (a
    /// number) and sent date.
    Subjects {
        uids: Vec<u32>,
        groups: Vec<u32>,
        sent: Vec<i64>,
    },
    /// The Message-ID table and links of every message, in sequence order.
    Links(Links),
}

impl Order {
    fn bytes(&self) -> usize {
        match self {
            Order::Sort(v) => v.len() * 4,
            Order::Thread { set, tokens } => set.len() * 4 + tokens.len() * 8,
            Order::Subjects { uids, .. } => uids.len() * 16,
            Order::Links(l) => l.bytes(),
        }
    }
}

struct Entry {
    mailbox: MailboxId,
    uidvalidity: u32,
    kind: Kind,
    order: Arc<Order>,
}

/// The server's kept orders (one per server, shared by its sessions).
#[derive(Default)]
pub struct OrderCache {
    /// Least recently used first.
    entries: Mutex<Vec<Entry>>,
    /// Commands answered from a kept order.
    hits: AtomicU64,
}

impl OrderCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The kept order of `kind` for `mailbox`, if any (it becomes the most recently used).
    pub(crate) fn get(&self, mailbox: &Mailbox, kind: &Kind) -> Option<Arc<Order>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let at = entries.iter().position(|e| {
            e.mailbox == mailbox.id && e.uidvalidity == mailbox.uidvalidity && &e.kind == kind
        })?;
        let entry = entries.remove(at);
        let order = entry.order.clone();
        entries.push(entry);
        Some(order)
    }

    /// The kept order of `kind` for `mailbox`, no longer kept (to be changed and put back).
    pub(crate) fn take(&self, mailbox: &Mailbox, kind: &Kind) -> Option<Arc<Order>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let at = entries.iter().position(|e| {
            e.mailbox == mailbox.id && e.uidvalidity == mailbox.uidvalidity && &e.kind == kind
        })?;
        Some(entries.remove(at).order)
    }

    /// Keeps `order` of `kind` for `mailbox`, in place of the one kept before.
    pub(crate) fn put(&self, mailbox: &Mailbox, kind: Kind, order: Order) {
        let size = order.bytes();
        if size > MAX_BYTES {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|e| {
            !(e.mailbox == mailbox.id && e.uidvalidity == mailbox.uidvalidity && e.kind == kind)
        });
        let mut total: usize = entries.iter().map(|e| e.order.bytes()).sum::<usize>() + size;
        while total > MAX_BYTES && !entries.is_empty() {
            total -= entries.remove(0).order.bytes();
        }
        entries.push(Entry {
            mailbox: mailbox.id,
            uidvalidity: mailbox.uidvalidity,
            kind,
            order: Arc::new(order),
        });
    }

    /// Counts a command answered from a kept order.
    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Commands answered from a kept order so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Bytes kept (for tests and logs).
    pub fn bytes(&self) -> usize {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.iter().map(|e| e.order.bytes()).sum()
    }
}

/// Where each UID is in a view (ascending UIDs): a table indexed by UID when the UIDs are
/// dense enough (a SORT of 100,000 messages spent half its time in binary searches), else a
/// binary search.
pub(crate) struct Positions<'a> {
    messages: &'a [MessageMeta],
    first: u32,
    /// Position + 1 by `uid - first`; 0 for none. Empty: binary search.
    table: Vec<u32>,
}

impl<'a> Positions<'a> {
    pub(crate) fn new(messages: &'a [MessageMeta]) -> Self {
        let (first, last) = match (messages.first(), messages.last()) {
            (Some(f), Some(l)) => (f.uid, l.uid),
            _ => (0, 0),
        };
        let span = (last - first) as usize + 1;
        let table = if !messages.is_empty() && span <= messages.len().saturating_mul(4) {
            let mut t = vec![0u32; span];
            for (at, m) in messages.iter().enumerate() {
                t[(m.uid - first) as usize] = at as u32 + 1;
            }
            t
        } else {
            Vec::new()
        };
        Positions {
            messages,
            first,
            table,
        }
    }

    pub(crate) fn get(&self, uid: u32) -> Option<usize> {
        if self.table.is_empty() {
            return self.messages.binary_search_by_key(&uid, |m| m.uid).ok();
        }
        let at = *self.table.get(uid.checked_sub(self.first)? as usize)?;
        at.checked_sub(1).map(|p| p as usize)
    }
}

/// The view positions of the kept sort order `uids` (those still in the view, in that order)
/// and the view positions the kept order lacks (ascending).
pub(crate) fn split(messages: &[MessageMeta], uids: &[u32]) -> (Vec<usize>, Vec<usize>) {
    let positions = Positions::new(messages);
    let mut base = Vec::with_capacity(messages.len());
    base.extend(uids.iter().filter_map(|&uid| positions.get(uid)));
    // UIDs are unique: a kept order with as many of the view's UIDs as the view lacks none.
    if base.len() == messages.len() {
        return (base, Vec::new());
    }
    let mut kept = vec![false; messages.len()];
    for &at in &base {
        kept[at] = true;
    }
    let new = (0..messages.len()).filter(|&i| !kept[i]).collect();
    (base, new)
}

/// Whether one of the ascending view positions `a` is also in `b` (ascending).
pub(crate) fn meet(a: &[usize], b: &[usize]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

/// `order` (view positions, among them all of `idx`) restricted to the view entries `idx`
/// (ascending) of a view of `len` messages.
pub(crate) fn subset(len: usize, order: Vec<usize>, idx: &[usize]) -> Vec<usize> {
    if idx.len() == len {
        return order;
    }
    let mut wanted = vec![false; len];
    for &i in idx {
        wanted[i] = true;
    }
    order.into_iter().filter(|&at| wanted[at]).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use mailkeep_proto::SortKey;

    fn mailbox(id: i64, uidvalidity: u32) -> Mailbox {
        Mailbox {
            id,
            name: "INBOX".into(),
            uidvalidity,
            uidnext: 1,
            highest_modseq: 1,
            special_use: None,
            subscribed: false,
        }
    }

    fn by(key: SortKey) -> Kind {
        Kind::Sort(vec![SortCriterion {
            key,
            reverse: false,
        }])
    }

    /// A view entry with only its UID set (the kept orders' tests and ORDEREDSUBJECT's).
    pub(crate) fn meta(uid: u32) -> MessageMeta {
        MessageMeta {
            uid,
            flags: Default::default(),
            modseq: 1,
            size: 1,
            internal_date: 0,
            internal_date_offset: 0,
        }
    }

    #[test]
    fn kept_per_mailbox_uidvalidity_and_criteria() {
        let c = OrderCache::new();
        let a = mailbox(1, 7);
        c.put(&a, by(SortKey::Subject), Order::Sort(vec![3, 1, 2]));
        assert!(c.get(&a, &by(SortKey::Subject)).is_some());
        assert!(c.get(&a, &by(SortKey::From)).is_none());
        assert!(c.get(&mailbox(1, 8), &by(SortKey::Subject)).is_none());
        assert!(c.get(&mailbox(2, 7), &by(SortKey::Subject)).is_none());
        // A new order replaces the old one.
        c.put(&a, by(SortKey::Subject), Order::Sort(vec![1]));
        assert_eq!(c.bytes(), 4);
    }

    #[test]
    fn least_recently_used_goes_first() {
        let c = OrderCache::new();
        let n = MAX_BYTES / 4 / 2;
        c.put(&mailbox(1, 1), by(SortKey::Size), Order::Sort(vec![0; n]));
        c.put(&mailbox(2, 1), by(SortKey::Size), Order::Sort(vec![0; n]));
        // Using the first makes the second the oldest.
        assert!(c.get(&mailbox(1, 1), &by(SortKey::Size)).is_some());
        c.put(&mailbox(3, 1), by(SortKey::Size), Order::Sort(vec![0; 10]));
        assert!(c.get(&mailbox(1, 1), &by(SortKey::Size)).is_some());
        assert!(c.get(&mailbox(2, 1), &by(SortKey::Size)).is_none());
        assert!(c.get(&mailbox(3, 1), &by(SortKey::Size)).is_some());
        assert!(c.bytes() <= MAX_BYTES);
    }

    #[test]
    fn filters_a_subset_and_misses_new_mail() {
        let view: Vec<MessageMeta> = [2, 4, 6, 8].into_iter().map(meta).collect();
        // Kept: 8 6 2 4, plus 5, expunged since.
        let (base, new) = split(&view, &[8, 5, 6, 2, 4]);
        assert_eq!((&base[..], &new[..]), (&[3, 2, 0, 1][..], &[][..]));
        assert_eq!(subset(4, base.clone(), &[0, 1, 2, 3]), vec![3, 2, 0, 1]);
        assert_eq!(subset(4, base, &[0, 3]), vec![3, 0]);
        // UID 6 is not in the kept order: new mail, which a SORT of 0:2 needs and of 0, 3
        // does not.
        let (base, new) = split(&view, &[8, 5, 2, 4]);
        assert_eq!((&base[..], &new[..]), (&[3, 0, 1][..], &[2][..]));
        assert!(meet(&new, &[0, 1, 2]));
        assert!(!meet(&new, &[0, 3]));
        // Sparse UIDs: binary search; UIDs beyond the view's either way.
        let sparse: Vec<MessageMeta> = [2, 90, 1000].into_iter().map(meta).collect();
        assert!(Positions::new(&sparse).table.is_empty());
        let (base, new) = split(&sparse, &[1000, 7, 2, 90, 5000]);
        assert_eq!(subset(3, base, &[0, 2]), vec![2, 0]);
        assert!(new.is_empty());
        assert_eq!(Positions::new(&view).get(9), None);
        assert_eq!(Positions::new(&view).get(1), None);
        assert_eq!(Positions::new(&view).get(8), Some(3));
    }
}
