//! Imports: mailboxes with a given UIDVALIDITY, appends with given UIDs.

use super::{inbox, kw, message, new_user};
use crate::{MailStore, StoreError, flags};

pub async fn import(store: &dyn MailStore) {
    let u = new_user(store, "import-a").await;

    // A new mailbox takes the UIDVALIDITY given.
    let mb = store
        .import_mailbox(u, "Lists/rust", None, Some(1234))
        .await
        .expect("import_mailbox creates");
    assert_eq!(
        mb.uidvalidity, 1234,
        "new mailbox takes the given UIDVALIDITY"
    );
    assert_eq!(mb.uidnext, 1);
    // Asked again: the same mailbox.
    let again = store
        .import_mailbox(u, "Lists/rust", None, Some(1234))
        .await
        .expect("import_mailbox again");
    assert_eq!(again.id, mb.id);

    // An empty INBOX takes it too; a fresh mailbox made later gets a different one.
    let ib = store
        .import_mailbox(u, "inbox", None, Some(777))
        .await
        .expect("import_mailbox INBOX");
    assert_eq!((ib.id, ib.uidvalidity), (inbox(store, u).await, 777));
    let other = store.create_mailbox(u, "Fresh", None).await.unwrap();
    assert!(other.uidvalidity != 1234 && other.uidvalidity != 777);
    // No UIDVALIDITY given: a fresh one.
    let plain = store.import_mailbox(u, "Plain", None, None).await.unwrap();
    assert!(plain.uidvalidity > 0);
    assert!(matches!(
        store.import_mailbox(u, "Zero", None, Some(0)).await,
        Err(StoreError::Cannot(_))
    ));

    // Appends with gaps in the UIDs keep them; UIDNEXT follows the last.
    let mut m1 = message("one", "first body");
    m1.flags = kw(flags::SEEN | flags::FLAGGED, &["$Junk", "work"]);
    let m2 = message("two", "second body");
    let v = store
        .append_with_uids(mb.id, vec![(5, m1), (9, m2)])
        .await
        .expect("append_with_uids");
    assert_eq!(v, 1234);
    let msgs = store.messages(mb.id).await.unwrap();
    assert_eq!(msgs.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![5, 9]);
    assert_eq!(
        msgs[0].flags,
        kw(flags::SEEN | flags::FLAGGED, &["$Junk", "work"])
    );
    assert_eq!(msgs[0].internal_date, 1_700_000_000);
    let st = store.status(mb.id).await.unwrap();
    assert_eq!((st.messages, st.unseen, st.uidnext), (2, 1, 10));
    assert_eq!(
        &store.message_bytes(mb.id, 9).await.unwrap()[..],
        b"Subject: two\r\nFrom: a@example.org\r\n\r\nsecond body\r\n"
    );

    // UIDs below UIDNEXT, or not ascending: refused, nothing stored.
    for uids in [[9u32, 12], [12, 11], [12, 12]] {
        let r = store
            .append_with_uids(
                mb.id,
                uids.iter().map(|&u| (u, message("x", "y"))).collect(),
            )
            .await;
        assert!(matches!(r, Err(StoreError::Cannot(_))), "{uids:?}: {r:?}");
    }
    assert_eq!(store.status(mb.id).await.unwrap().messages, 2);

    // A plain APPEND goes on after the imported UIDs.
    let (_, uids) = store
        .append(mb.id, vec![message("three", "b")])
        .await
        .unwrap();
    assert_eq!(uids, vec![10]);

    // A mailbox that held mail keeps its UIDVALIDITY.
    let kept = store
        .import_mailbox(u, "Lists/rust", None, Some(999))
        .await
        .unwrap();
    assert_eq!(
        kept.uidvalidity, 1234,
        "a mailbox with mail keeps its UIDVALIDITY"
    );

    // Sessions on the mailbox are woken by an import.
    let sub = store.notifier().subscribe(mb.id);
    store
        .append_with_uids(mb.id, vec![(20, message("four", "c"))])
        .await
        .unwrap();
    assert!(
        sub.receiver.has_changed().unwrap_or(false),
        "import notifies"
    );
}
