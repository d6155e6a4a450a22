//! What `mailkeep store copy` needs of a store: secrets read and written as stored,
//! mailboxes made with a given id and UIDVALIDITY, modseqs and save dates set afterwards.

use super::{inbox, message, new_user};
use crate::{MailStore, Mailbox, MessageState, StoreError, StoredAppPassword, TwoFactor};

pub async fn copy_support(store: &dyn MailStore) {
    // Installation secrets: listed, and replaced as given.
    let made = store.server_secret("copy-test").await.unwrap();
    let all = store.server_secrets().await.expect("server_secrets");
    assert!(all.contains(&("copy-test".to_string(), made)));
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "sorted by name");
    store
        .set_server_secret("copy-test", &[7; 32])
        .await
        .unwrap();
    assert_eq!(store.server_secret("copy-test").await.unwrap(), vec![7; 32]);
    store.set_server_secret("copy-new", &[9; 32]).await.unwrap();
    assert_eq!(store.server_secret("copy-new").await.unwrap(), vec![9; 32]);

    // Recovery code and app password hashes as stored.
    let a = new_user(store, "storecopy-a").await;
    let tf = TwoFactor {
        secret: vec![1; 20],
        enabled: true,
        last_step: 5,
    };
    store
        .set_two_factor("storecopy-a", Some(&tf), &[vec![3; 32], vec![2; 32]])
        .await
        .unwrap();
    assert_eq!(
        store.recovery_code_hashes("storecopy-a").await.unwrap(),
        vec![vec![2; 32], vec![3; 32]]
    );
    assert!(matches!(
        store.recovery_code_hashes("storecopy-nobody").await,
        Err(StoreError::NoSuchUser)
    ));
    let ap = store
        .add_app_password("storecopy-a", "Phone", &[4; 32], 100)
        .await
        .unwrap();
    store.touch_app_password(ap.id, 200, 0).await.unwrap();
    let want = StoredAppPassword {
        label: "Phone".into(),
        hash: vec![4; 32],
        created: 100,
        last_used: Some(200),
    };
    assert_eq!(
        store.app_password_hashes("storecopy-a").await.unwrap(),
        vec![want.clone()]
    );
    let b = new_user(store, "storecopy-b").await;
    store
        .restore_app_password("storecopy-b", &want)
        .await
        .unwrap();
    let found = store
        .find_app_password("storecopy-b", &[4; 32])
        .await
        .unwrap()
        .expect("restored app password found by its hash");
    assert_eq!(
        (found.label.as_str(), found.created, found.last_used),
        ("Phone", 100, Some(200))
    );
    assert!(matches!(
        store.restore_app_password("storecopy-b", &want).await,
        Err(StoreError::AlreadyExists)
    ));
    assert!(matches!(
        store.restore_app_password("storecopy-nobody", &want).await,
        Err(StoreError::NoSuchUser)
    ));

    // Mailboxes with their ids: the empty INBOX is replaced; a taken id gives a fresh one.
    let old_inbox = inbox(store, b).await;
    let x = old_inbox + 10_000;
    let spec = |id, name: &str, uidvalidity, special_use: Option<&str>| Mailbox {
        id,
        name: name.into(),
        uidvalidity,
        uidnext: 1,
        highest_modseq: 1,
        special_use: special_use.map(str::to_owned),
        subscribed: false,
    };
    let ib = store
        .restore_mailbox(b, &spec(x, "INBOX", 4242, None))
        .await
        .expect("restore INBOX");
    assert_eq!(
        (ib.id, ib.name.as_str(), ib.uidvalidity),
        (x, "INBOX", 4242)
    );
    assert_eq!(inbox(store, b).await, x, "the INBOX is the restored one");
    let sent = store
        .restore_mailbox(b, &spec(x + 1, "Sent", 4243, Some("\\Sent")))
        .await
        .unwrap();
    assert_eq!(sent.id, x + 1);
    assert_eq!(sent.special_use.as_deref(), Some("\\Sent"));
    let other = store
        .restore_mailbox(a, &spec(x, "Other", 4244, None))
        .await
        .expect("a taken id: a fresh one");
    assert!(other.id != x && other.id != x + 1 && other.uidvalidity == 4244);
    let later = store.create_mailbox(b, "Later", None).await.unwrap();
    assert!(
        later.id > x + 1,
        "ids handed out later stay above the restored"
    );
    assert!(![4242, 4243, 4244].contains(&later.uidvalidity));
    assert!(matches!(
        store.restore_mailbox(b, &spec(x, "Zero", 0, None)).await,
        Err(StoreError::Cannot(_))
    ));

    // Filled, then its modseqs, save dates, UIDNEXT and HIGHESTMODSEQ as they were.
    store
        .append_with_uids(
            ib.id,
            vec![
                (3, message("three", "body 3")),
                (7, message("seven", "body 7")),
            ],
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .restore_mailbox(b, &spec(x + 5, "INBOX", 4242, None))
            .await,
        Err(StoreError::AlreadyExists)
    ));
    let states = [
        MessageState {
            uid: 3,
            modseq: 11,
            save_date: 1_600_000_000,
        },
        MessageState {
            uid: 7,
            modseq: 40,
            save_date: 1_650_000_000,
        },
    ];
    store
        .restore_message_state(ib.id, 20, 50, &states)
        .await
        .expect("restore_message_state");
    let msgs = store.messages(ib.id).await.unwrap();
    assert_eq!(
        msgs.iter().map(|m| (m.uid, m.modseq)).collect::<Vec<_>>(),
        vec![(3, 11), (7, 40)]
    );
    let st = store.status(ib.id).await.unwrap();
    assert_eq!((st.uidnext, st.highest_modseq, st.recent), (20, 50, 0));
    let objs = store.message_objects(ib.id, &[3, 7]).await.unwrap();
    assert_eq!(
        objs.iter()
            .map(|(u, o)| (*u, o.save_date))
            .collect::<Vec<_>>(),
        vec![(3, 1_600_000_000), (7, 1_650_000_000)]
    );
    let ch = store.changes_since(ib.id, 11).await.unwrap();
    assert_eq!(
        ch.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        vec![7]
    );
    assert!(
        ch.pruned_modseq >= 50,
        "expunges before the copy count as forgotten"
    );
    // Never lowered; an unknown message or mailbox is refused.
    store.restore_message_state(ib.id, 2, 3, &[]).await.unwrap();
    let st = store.status(ib.id).await.unwrap();
    assert_eq!((st.uidnext, st.highest_modseq), (20, 50));
    let ghost = [MessageState {
        uid: 99,
        modseq: 1,
        save_date: 0,
    }];
    assert!(matches!(
        store.restore_message_state(ib.id, 20, 50, &ghost).await,
        Err(StoreError::NoSuchMailbox)
    ));
    assert!(matches!(
        store.restore_message_state(x + 999, 20, 50, &[]).await,
        Err(StoreError::NoSuchMailbox)
    ));
    // The mailbox still works as any other: the next APPEND gets UID 20 and a higher modseq.
    let (_, uids) = store
        .append(ib.id, vec![message("next", "body next")])
        .await
        .unwrap();
    assert_eq!(uids, vec![20]);
    let msgs = store.messages(ib.id).await.unwrap();
    assert!(msgs.last().unwrap().modseq > 50);
}
