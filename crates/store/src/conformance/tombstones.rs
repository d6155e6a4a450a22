//! Expunge tombstones and their pruning (RFC 7162 §3.2.5.1, §3.2.6): `changes_since` reports
//! expunged UIDs exactly until their tombstones are pruned, and then says so through
//! `pruned_modseq`, so a session can fall back to reporting every UID not present.

use std::time::Duration;

use super::{inbox, message, new_user};
use crate::MailStore;

/// Runs last in [`super::run_all`]: pruning with a zero age forgets every tombstone of the store.
pub async fn tombstones(store: &dyn MailStore) {
    let u = new_user(store, "tomb-a").await;
    let ib = inbox(store, u).await;
    let (_, uids) = store
        .append(
            ib,
            (1..=5)
                .map(|i| message(&i.to_string(), "tombstone body"))
                .collect(),
        )
        .await
        .unwrap();
    let start = store.status(ib).await.unwrap().highest_modseq;
    assert_eq!(
        store.expunge(ib, &[uids[1]]).await.unwrap(),
        [uids[1]],
        "expunge one"
    );
    let first = store.status(ib).await.unwrap().highest_modseq;
    let ch = store.changes_since(ib, start).await.unwrap();
    assert_eq!(ch.expunged, [uids[1]], "a fresh tombstone is reported");
    assert_eq!(ch.pruned_modseq, 0, "nothing pruned yet");

    // Tombstones younger than the age stay.
    store
        .prune_tombstones(Duration::from_secs(3600))
        .await
        .unwrap();
    let ch = store.changes_since(ib, start).await.unwrap();
    assert_eq!(ch.expunged, [uids[1]], "a young tombstone survives pruning");
    assert_eq!(ch.pruned_modseq, 0);

    // Age zero: every tombstone goes, and the horizon is the modseq of the expunge.
    let pruned = store.prune_tombstones(Duration::ZERO).await.unwrap();
    assert!(pruned >= 1, "pruned {pruned}");
    let ch = store.changes_since(ib, start).await.unwrap();
    assert!(ch.expunged.is_empty(), "a pruned tombstone is gone");
    assert_eq!(
        ch.pruned_modseq, first,
        "horizon = modseq of the pruned expunge"
    );
    assert!(
        store.message_bytes(ib, uids[1]).await.is_err(),
        "a pruned tombstone holds no body"
    );
    // The rest of the mailbox is untouched.
    let left: Vec<u32> = store
        .messages(ib)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(left, [uids[0], uids[2], uids[3], uids[4]]);

    // Later expunges are exact again for a client at or above the horizon.
    store.expunge(ib, &[uids[3]]).await.unwrap();
    let ch = store.changes_since(ib, first).await.unwrap();
    assert_eq!(
        ch.expunged,
        [uids[3]],
        "expunges after the horizon are reported"
    );
    assert_eq!(
        ch.pruned_modseq, first,
        "the horizon only moves when pruning"
    );

    // Another mailbox's horizon is its own.
    let other = store.create_mailbox(u, "other", None).await.unwrap().id;
    let ch = store.changes_since(other, 0).await.unwrap();
    assert_eq!(ch.pruned_modseq, 0, "horizons are per mailbox");

    // Pruning again never lowers the horizon; deleting the mailbox leaves nothing behind.
    store.prune_tombstones(Duration::ZERO).await.unwrap();
    let ch = store.changes_since(ib, 0).await.unwrap();
    assert!(
        ch.pruned_modseq > first,
        "horizon rises with the second prune"
    );
    store.delete_mailbox(u, other).await.unwrap();
    store.prune_tombstones(Duration::ZERO).await.unwrap();
}
