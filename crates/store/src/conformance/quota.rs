//! Quotas: usage kept by every write, limits from the account or the default, enforced in
//! APPEND, COPY and MOVE (all or nothing), a MOVE within the account never refused.

use super::{inbox, message, new_user};
use crate::{MailStore, QuotaLimits, QuotaSetting, StoreError};

/// RFC822.SIZE of `message(subject, body)`.
fn size_of(subject: &str, body: &str) -> u64 {
    match message(subject, body).data {
        crate::MessageBytes::Memory(d) => d.len() as u64,
        _ => unreachable!(),
    }
}

pub async fn quota(store: &dyn MailStore) {
    let alice = new_user(store, "quota-alice").await;
    let bob = new_user(store, "quota-bob").await;
    let ia = inbox(store, alice).await;
    let ib = inbox(store, bob).await;
    let other = store
        .create_mailbox(alice, "quota-o", None)
        .await
        .unwrap()
        .id;

    // Nothing set: no limits, no usage.
    let q = store.quota(alice).await.unwrap();
    assert_eq!((q.storage_used, q.messages_used), (0, 0));
    assert_eq!(q.limits, QuotaLimits::default(), "unlimited by default");
    assert_eq!(q.storage_setting, QuotaSetting::Default);

    // Usage follows APPEND, COPY, MOVE, EXPUNGE and DELETE.
    let one = size_of("q", "body one");
    let (_, uids) = store
        .append(ia, vec![message("q", "body one"), message("q", "body one")])
        .await
        .unwrap();
    let used = |s, m| async move {
        let q = store.quota(alice).await.unwrap();
        assert_eq!((q.storage_used, q.messages_used), (s, m), "usage");
    };
    used(2 * one, 2).await;
    // An identical message held twice (deduplicated on disk) counts twice, as users see it.
    store.copy(ia, &uids[..1], other).await.unwrap();
    used(3 * one, 3).await;
    store.move_messages(ia, &uids[1..], other).await.unwrap();
    used(3 * one, 3).await;
    store.expunge(ia, &uids[..1]).await.unwrap();
    used(2 * one, 2).await;
    // Bob's usage is his own.
    store.append(ib, vec![message("b", "bob")]).await.unwrap();
    assert_eq!(store.quota(bob).await.unwrap().messages_used, 1);
    used(2 * one, 2).await;

    // The default applies to accounts without a setting of their own.
    store.set_default_quota(QuotaLimits {
        storage: None,
        messages: Some(3),
    });
    let q = store.quota(alice).await.unwrap();
    assert_eq!(q.limits.messages, Some(3));
    store.append(ia, vec![message("q", "three")]).await.unwrap();
    used(2 * one + size_of("q", "three"), 3).await;
    // At the limit: one more is refused, nothing stored.
    let before = store.status(ia).await.unwrap();
    assert!(
        matches!(
            store.append(ia, vec![message("q", "four")]).await,
            Err(StoreError::OverQuota)
        ),
        "APPEND over the message limit"
    );
    assert_eq!(store.status(ia).await.unwrap(), before, "nothing stored");
    assert!(matches!(
        store
            .append_to(alice, "INBOX", vec![message("q", "four")])
            .await,
        Err(StoreError::OverQuota)
    ));
    let in_other = store.messages(other).await.unwrap();
    let other_uids: Vec<u32> = in_other.iter().map(|m| m.uid).collect();
    assert!(matches!(
        store.copy(other, &other_uids[..1], ia).await,
        Err(StoreError::OverQuota)
    ));
    used(2 * one + size_of("q", "three"), 3).await;
    // A MOVE within the account does not grow usage: allowed at (or over) the limit.
    store.move_messages(other, &other_uids, ia).await.unwrap();
    used(2 * one + size_of("q", "three"), 3).await;

    // The account's own setting overrides the default, both ways.
    store
        .set_quota("quota-alice", None, Some(QuotaSetting::Unlimited))
        .await
        .unwrap();
    assert_eq!(store.quota(alice).await.unwrap().limits.messages, None);
    store.append(ia, vec![message("q", "four")]).await.unwrap();
    store
        .set_quota("quota-alice", None, Some(QuotaSetting::Default))
        .await
        .unwrap();
    assert_eq!(store.quota(alice).await.unwrap().limits.messages, Some(3));
    store.set_default_quota(QuotaLimits::default());

    // Storage: a MULTIAPPEND that would cross the limit is refused as a whole.
    let q = store.quota(alice).await.unwrap();
    let limit = q.storage_used + one + one / 2;
    store
        .set_quota("quota-alice", Some(QuotaSetting::Limit(limit)), None)
        .await
        .unwrap();
    let q = store.quota(alice).await.unwrap();
    assert_eq!(q.storage_setting, QuotaSetting::Limit(limit));
    assert_eq!(q.limits.storage, Some(limit));
    let count = q.messages_used;
    assert!(matches!(
        store
            .append(ia, vec![message("q", "body one"), message("q", "body one")])
            .await,
        Err(StoreError::OverQuota)
    ));
    assert_eq!(store.quota(alice).await.unwrap().messages_used, count);
    store
        .append(ia, vec![message("q", "body one")])
        .await
        .unwrap();
    // Lowered below the usage: expunges and moves still work, adding does not.
    store
        .set_quota("quota-alice", Some(QuotaSetting::Limit(1)), None)
        .await
        .unwrap();
    let all: Vec<u32> = store
        .messages(ia)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    store.move_messages(ia, &all[..1], other).await.unwrap();
    assert!(matches!(
        store.append(ia, vec![message("q", "x")]).await,
        Err(StoreError::OverQuota)
    ));
    store.expunge(ia, &all[1..2]).await.unwrap();
    // Bob is not limited by Alice's setting.
    store.append(ib, vec![message("b", "bob 2")]).await.unwrap();

    // Deleting a mailbox gives its usage back.
    let q = store.quota(alice).await.unwrap();
    let in_other = store.messages(other).await.unwrap();
    store.delete_mailbox(alice, other).await.unwrap();
    let after = store.quota(alice).await.unwrap();
    assert_eq!(after.messages_used, q.messages_used - in_other.len() as u64);
    assert_eq!(
        after.storage_used,
        q.storage_used - in_other.iter().map(|m| m.size).sum::<u64>()
    );

    // Clearing both settings; unknown accounts.
    store
        .set_quota(
            "quota-alice",
            Some(QuotaSetting::Default),
            Some(QuotaSetting::Default),
        )
        .await
        .unwrap();
    assert_eq!(
        store.quota(alice).await.unwrap().limits,
        QuotaLimits::default()
    );
    assert!(matches!(
        store
            .set_quota("quota-nobody", Some(QuotaSetting::Limit(5)), None)
            .await,
        Err(StoreError::NoSuchUser)
    ));
    store.delete_user("quota-bob").await.unwrap();
    assert!(matches!(
        store.quota(bob).await,
        Err(StoreError::NoSuchUser)
    ));
}
