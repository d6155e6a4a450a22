//! Sort and thread keys (RFC 5256): saved per body (over those kept at delivery), read back
//! for the wanted UIDs only,
//! shared by copies, replaced on save, and gone with the message's body.

use super::{inbox, message, new_user};
use crate::MailStore;

/// The UIDs of `uids` that `sort_keys` answers for.
async fn keyed(store: &dyn MailStore, mailbox: crate::MailboxId, uids: &[u32]) -> Vec<u32> {
    let got = store.sort_keys(mailbox, uids).await.unwrap().to_vec();
    got.into_iter().map(|(u, _)| u).collect()
}

pub async fn sort_keys(store: &dyn MailStore) {
    let u = new_user(store, "sortkeys-a").await;
    let ib = inbox(store, u).await;
    let (_, uids) = store
        .append(
            ib,
            (1..=4)
                .map(|i| message(&format!("s{i}"), &format!("sort body {i}")))
                .collect(),
        )
        .await
        .unwrap();
    // Keys computed at delivery (`sortkeys_delivery`), replaced by what is saved below.
    assert_eq!(store.sort_keys(ib, &uids).await.unwrap().to_vec().len(), 4);
    store
        .save_sort_keys(
            ib,
            vec![(uids[0], b"k1".to_vec()), (uids[2], b"k3".to_vec())],
        )
        .await
        .unwrap();
    let got = store.sort_keys(ib, &uids).await.unwrap().to_vec();
    assert_eq!(
        got.iter().map(|(u, _)| *u).collect::<Vec<_>>(),
        uids,
        "ascending"
    );
    assert_eq!(
        (&got[0], &got[2]),
        (&(uids[0], b"k1".to_vec()), &(uids[2], b"k3".to_vec())),
        "saved keys replace the delivered ones"
    );
    assert_eq!(
        keyed(store, ib, &[uids[1], uids[2]]).await,
        [uids[1], uids[2]],
        "only the wanted UIDs"
    );
    assert!(store.sort_keys(ib, &[]).await.unwrap().to_vec().is_empty());
    // A few UIDs far apart (looked up one by one), one of them beyond the mailbox's.
    let (_, more) = store
        .append(
            ib,
            (0..40)
                .map(|i| message(&format!("m{i}"), &format!("more body {i}")))
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(
        keyed(store, ib, &[uids[1], more[39], 4_000_000]).await,
        [uids[1], more[39]],
        "a few UIDs far apart"
    );
    store
        .save_sort_keys(
            ib,
            vec![(uids[2], b"k3b".to_vec()), (999_999, b"x".to_vec())],
        )
        .await
        .unwrap();
    assert_eq!(
        store.sort_keys(ib, &[uids[2]]).await.unwrap().to_vec(),
        [(uids[2], b"k3b".to_vec())],
        "a save replaces; a missing UID is skipped"
    );

    // A copy has the same body, so the same keys.
    let other = store
        .create_mailbox(u, "sortkeys-other", None)
        .await
        .unwrap()
        .id;
    let (_, pairs) = store.copy(ib, &[uids[0]], other).await.unwrap();
    let copied = pairs[0].1;
    assert_eq!(
        store.sort_keys(other, &[copied]).await.unwrap().to_vec(),
        [(copied, b"k1".to_vec())],
        "copies share their body's keys"
    );

    // An expunged message has no keys to read.
    store.expunge(ib, &[uids[0]]).await.unwrap();
    store.expunge(other, &[copied]).await.unwrap();
    assert!(
        store
            .sort_keys(ib, &uids[..1])
            .await
            .unwrap()
            .to_vec()
            .is_empty()
    );
    store.delete_user("sortkeys-a").await.unwrap();
}
