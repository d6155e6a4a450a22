//! URLAUTH mailbox access keys: made on demand, random, one per mailbox of its owner only,
//! replaced or removed by RESETKEY, gone with the mailbox.

use super::{inbox, new_user};
use crate::{MailStore, StoreError};

pub async fn urlauth_keys(store: &dyn MailStore) {
    let a = new_user(store, "urlauth-a").await;
    let b = new_user(store, "urlauth-b").await;
    let a_inbox = inbox(store, a).await;
    let b_inbox = inbox(store, b).await;
    let a_sent = store
        .create_mailbox(a, "Sent", None)
        .await
        .expect("create Sent")
        .id;

    assert_eq!(
        store.urlauth_key(a, a_inbox, false).await.unwrap(),
        None,
        "no key until one is asked for"
    );
    let k1 = store.urlauth_key(a, a_inbox, true).await.unwrap().unwrap();
    assert!(k1.len() >= 16, "a key has at least 128 bits");
    assert_eq!(
        store.urlauth_key(a, a_inbox, true).await.unwrap(),
        Some(k1.clone()),
        "the same key until reset"
    );
    assert_eq!(
        store.urlauth_key(a, a_inbox, false).await.unwrap(),
        Some(k1.clone())
    );
    let k_sent = store.urlauth_key(a, a_sent, true).await.unwrap().unwrap();
    assert_ne!(k1, k_sent, "one key per mailbox");

    // Another account's mailbox: no key, none made, none reset.
    assert_eq!(store.urlauth_key(b, a_inbox, true).await.unwrap(), None);
    assert_eq!(store.urlauth_key(b, a_inbox, false).await.unwrap(), None);
    assert!(matches!(
        store.reset_urlauth_keys(b, Some(a_inbox)).await,
        Err(StoreError::NoSuchMailbox)
    ));
    assert_eq!(
        store.urlauth_key(a, a_inbox, false).await.unwrap(),
        Some(k1.clone()),
        "another account's RESETKEY leaves the key alone"
    );
    let kb = store.urlauth_key(b, b_inbox, true).await.unwrap().unwrap();
    assert_ne!(kb, k1);

    // RESETKEY mailbox: a new key for that mailbox only.
    store.reset_urlauth_keys(a, Some(a_inbox)).await.unwrap();
    let k2 = store.urlauth_key(a, a_inbox, false).await.unwrap().unwrap();
    assert_ne!(k1, k2, "a reset key is a new key");
    assert_eq!(
        store.urlauth_key(a, a_sent, false).await.unwrap(),
        Some(k_sent.clone())
    );

    // RESETKEY: every key of the account goes, other accounts' stay.
    store.reset_urlauth_keys(a, None).await.unwrap();
    assert_eq!(store.urlauth_key(a, a_inbox, false).await.unwrap(), None);
    assert_eq!(store.urlauth_key(a, a_sent, false).await.unwrap(), None);
    assert_eq!(
        store.urlauth_key(b, b_inbox, false).await.unwrap(),
        Some(kb)
    );
    let k3 = store.urlauth_key(a, a_inbox, true).await.unwrap().unwrap();
    assert_ne!(k3, k2);

    // A deleted mailbox takes its key along; a new one of the same name starts without.
    store.urlauth_key(a, a_sent, true).await.unwrap().unwrap();
    store.delete_mailbox(a, a_sent).await.unwrap();
    assert_eq!(store.urlauth_key(a, a_sent, false).await.unwrap(), None);
    let again = store.create_mailbox(a, "Sent", None).await.unwrap().id;
    assert_eq!(store.urlauth_key(a, again, false).await.unwrap(), None);

    for name in ["urlauth-a", "urlauth-b"] {
        store.delete_user(name).await.unwrap();
    }
    assert_eq!(store.urlauth_key(a, a_inbox, false).await.unwrap(), None);
}
