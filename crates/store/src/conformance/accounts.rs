//! Users, mailboxes, subscriptions.

use super::{inbox, message, new_user};
use crate::{MailStore, StoreError};

pub async fn users(store: &dyn MailStore) {
    let u = store.create_user("users-a", "h1").await.expect("create");
    assert!(matches!(
        store.create_user("users-a", "h2").await,
        Err(StoreError::UserExists)
    ));
    let got = store
        .get_user("users-a")
        .await
        .unwrap()
        .expect("get_user finds the user");
    assert_eq!(got, u);
    assert!(store.get_user("users-nobody").await.unwrap().is_none());
    store.set_password("users-a", "h3").await.unwrap();
    assert_eq!(
        store
            .get_user("users-a")
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "h3"
    );
    assert!(matches!(
        store.set_password("users-nobody", "x").await,
        Err(StoreError::NoSuchUser)
    ));
    assert!(
        store
            .list_users()
            .await
            .unwrap()
            .iter()
            .any(|x| x.name == "users-a")
    );
    // A new account has an INBOX.
    let list = store.list_mailboxes(u.id).await.unwrap();
    assert_eq!(
        list.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["INBOX"]
    );
    assert!(matches!(
        store.delete_user("users-nobody").await,
        Err(StoreError::NoSuchUser)
    ));
}

pub async fn mailboxes(store: &dyn MailStore) {
    let u = new_user(store, "mbox-a").await;
    let other = new_user(store, "mbox-b").await;
    for case in ["inbox", "Inbox", "INBOX"] {
        let mb = store
            .get_mailbox(u, case)
            .await
            .unwrap()
            .expect("any case of INBOX finds INBOX");
        assert_eq!(mb.name, "INBOX");
    }
    assert!(matches!(
        store.create_mailbox(u, "inBox", None).await,
        Err(StoreError::AlreadyExists)
    ));
    let b = store.create_mailbox(u, "b", None).await.unwrap();
    let a = store
        .create_mailbox(u, "a/child", Some("\\Sent"))
        .await
        .unwrap();
    assert_eq!(a.special_use.as_deref(), Some("\\Sent"));
    assert_eq!((b.uidnext, b.name.as_str()), (1, "b"));
    assert!(matches!(
        store.create_mailbox(u, "b", None).await,
        Err(StoreError::AlreadyExists)
    ));
    // Other names are case-sensitive.
    assert!(store.get_mailbox(u, "B").await.unwrap().is_none());
    store
        .create_mailbox(u, "B", None)
        .await
        .expect("B differs from b");
    let names: Vec<String> = store
        .list_mailboxes(u)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["B", "INBOX", "a/child", "b"], "sorted by name");
    assert!(
        store
            .list_mailboxes(other)
            .await
            .unwrap()
            .iter()
            .all(|m| m.name == "INBOX")
    );

    // Rename.
    assert!(matches!(
        store.rename_mailbox(u, b.id, "B").await,
        Err(StoreError::AlreadyExists)
    ));
    assert!(matches!(
        store.rename_mailbox(u, b.id, "inbox").await,
        Err(StoreError::AlreadyExists)
    ));
    store.rename_mailbox(u, b.id, "c").await.unwrap();
    let c = store.get_mailbox(u, "c").await.unwrap().expect("renamed");
    assert_eq!((c.id, c.uidvalidity), (b.id, b.uidvalidity));
    assert!(store.get_mailbox(u, "b").await.unwrap().is_none());
    let ib = inbox(store, u).await;
    assert!(matches!(
        store.rename_mailbox(u, ib, "x").await,
        Err(StoreError::Cannot(_))
    ));
    assert!(matches!(
        store.rename_mailbox(other, c.id, "y").await,
        Err(StoreError::NoSuchMailbox)
    ));

    // Delete.
    assert!(matches!(
        store.delete_mailbox(u, ib).await,
        Err(StoreError::Cannot(_))
    ));
    assert!(matches!(
        store.delete_mailbox(other, c.id).await,
        Err(StoreError::NoSuchMailbox)
    ));
    store
        .append(c.id, vec![message("x", "to be deleted")])
        .await
        .unwrap();
    store.delete_mailbox(u, c.id).await.unwrap();
    assert!(store.get_mailbox(u, "c").await.unwrap().is_none());
    assert!(matches!(
        store.delete_mailbox(u, c.id).await,
        Err(StoreError::NoSuchMailbox)
    ));
    assert!(matches!(
        store.status(c.id).await,
        Err(StoreError::NoSuchMailbox)
    ));
    assert!(matches!(
        store.messages(c.id).await,
        Err(StoreError::NoSuchMailbox)
    ));

    // UIDVALIDITY differs when a name is reused (RFC 9051 §2.3.1.1).
    let again = store.create_mailbox(u, "c", None).await.unwrap();
    assert_ne!(again.uidvalidity, c.uidvalidity);
    assert_ne!(again.id, c.id);
    // Ids are not reused, even for the newest mailbox: a session may still hold the old one.
    let newest = store.create_mailbox(u, "newest", None).await.unwrap();
    store.delete_mailbox(u, newest.id).await.unwrap();
    let next = store.create_mailbox(u, "newer", None).await.unwrap();
    assert_ne!(next.id, newest.id, "mailbox id reused");
    assert!(matches!(
        store.status(newest.id).await,
        Err(StoreError::NoSuchMailbox)
    ));
}

pub async fn subscriptions(store: &dyn MailStore) {
    let u = new_user(store, "subs-a").await;
    store.create_mailbox(u, "real", None).await.unwrap();
    store.subscribe(u, "real").await.unwrap();
    store
        .subscribe(u, "ghost")
        .await
        .expect("subscribing to a missing name is allowed");
    store
        .subscribe(u, "ghost")
        .await
        .expect("subscribing twice is harmless");
    assert_eq!(store.subscriptions(u).await.unwrap(), ["ghost", "real"]);
    let real = store.get_mailbox(u, "real").await.unwrap().unwrap();
    assert!(real.subscribed);
    assert!(
        !store
            .get_mailbox(u, "INBOX")
            .await
            .unwrap()
            .unwrap()
            .subscribed
    );
    store.unsubscribe(u, "ghost").await.unwrap();
    assert_eq!(store.subscriptions(u).await.unwrap(), ["real"]);
    // Deleting the mailbox keeps the subscription (RFC 9051 §6.3.9).
    store.delete_mailbox(u, real.id).await.unwrap();
    assert_eq!(store.subscriptions(u).await.unwrap(), ["real"]);
}

pub async fn delete_user(store: &dyn MailStore) {
    let u = new_user(store, "deluser-a").await;
    let ib = inbox(store, u).await;
    let extra = store.create_mailbox(u, "extra", None).await.unwrap();
    store
        .append(ib, vec![message("d", "gone soon")])
        .await
        .unwrap();
    store
        .append(extra.id, vec![message("e", "also gone")])
        .await
        .unwrap();
    store.subscribe(u, "extra").await.unwrap();
    store.delete_user("deluser-a").await.unwrap();
    assert!(store.get_user("deluser-a").await.unwrap().is_none());
    assert!(matches!(
        store.status(ib).await,
        Err(StoreError::NoSuchMailbox)
    ));
    assert!(matches!(
        store.messages(extra.id).await,
        Err(StoreError::NoSuchMailbox)
    ));
    // The name can be used again, starting empty.
    let again = new_user(store, "deluser-a").await;
    assert!(store.subscriptions(again).await.unwrap().is_empty());
    assert_eq!(
        store
            .status(inbox(store, again).await)
            .await
            .unwrap()
            .messages,
        0
    );
}
