//! The store conformance suite: every backend runs [`run_all`] against a fresh store.
//!
//! Each part creates its own users (names prefixed by the part), so the parts can run on one
//! store in any order. Failures panic with a message naming the broken rule.

use std::sync::Arc;

use crate::{
    FlagOp, Flags, MailStore, MailboxId, MessageBytes, NewMessage, ParsedInfo, StoreError, UserId,
    flags,
};

/// Runs every part of the suite.
pub async fn run_all(store: Arc<dyn MailStore>) {
    users(&*store).await;
    assert_clean(&*store, "users").await;
    mailboxes(&*store).await;
    assert_clean(&*store, "mailboxes").await;
    subscriptions(&*store).await;
    assert_clean(&*store, "subscriptions").await;
    append(&*store).await;
    assert_clean(&*store, "append").await;
    flag_changes(&*store).await;
    assert_clean(&*store, "flag_changes").await;
    expunge(&*store).await;
    assert_clean(&*store, "expunge").await;
    copy_and_move(&*store).await;
    assert_clean(&*store, "copy_and_move").await;
    dedup(&*store).await;
    assert_clean(&*store, "dedup").await;
    search(&*store).await;
    assert_clean(&*store, "search").await;
    recent(&*store).await;
    assert_clean(&*store, "recent").await;
    notifications(&*store).await;
    assert_clean(&*store, "notifications").await;
    delete_user(&*store).await;
    assert_clean(&*store, "delete_user").await;
}

async fn assert_clean(store: &dyn MailStore, after: &str) {
    let problems = store.check().await.expect("check");
    assert!(problems.is_empty(), "check() after {after}: {problems:?}");
}

/// A message with a `Subject`, a body and matching parsed info.
pub fn message(subject: &str, body: &str) -> NewMessage {
    let data = format!("Subject: {subject}\r\nFrom: a@example.org\r\n\r\n{body}\r\n").into_bytes();
    let header_text = format!("Subject: {subject}\nFrom: a@example.org\n");
    NewMessage {
        data: MessageBytes::Memory(Arc::new(data)),
        flags: Flags::default(),
        internal_date: 1_700_000_000,
        internal_date_offset: 60,
        parsed: ParsedInfo {
            envelope: format!("(NIL \"{subject}\" NIL NIL NIL NIL NIL NIL NIL NIL)").into_bytes(),
            bodystructure: b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 4 1)".to_vec(),
            body: b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 4 1)".to_vec(),
            parts: vec![1, 2, 3],
            search_body_offset: header_text.len(),
            search_text: header_text + body,
            sent_date: Some(1_699_999_999),
        },
    }
}

fn kw(system: u32, keywords: &[&str]) -> Flags {
    Flags {
        system,
        keywords: keywords.iter().map(|s| s.to_string()).collect(),
    }
}

async fn new_user(store: &dyn MailStore, name: &str) -> UserId {
    store
        .create_user(name, "$argon2id$x")
        .await
        .expect("create_user")
        .id
}

async fn inbox(store: &dyn MailStore, user: UserId) -> MailboxId {
    store
        .get_mailbox(user, "INBOX")
        .await
        .expect("get INBOX")
        .expect("INBOX exists")
        .id
}

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

pub async fn append(store: &dyn MailStore) {
    let u = new_user(store, "append-a").await;
    let ib = inbox(store, u).await;
    let before = store.status(ib).await.unwrap();
    assert_eq!((before.messages, before.uidnext), (0, 1));
    let mut m1 = message("one", "first body");
    m1.flags = kw(flags::SEEN, &["$Label", "$label"]);
    let (v1, uids1) = store.append(ib, vec![m1.clone()]).await.unwrap();
    let (v2, uids2) = store
        .append(
            ib,
            vec![message("two", "second"), message("three", "third")],
        )
        .await
        .unwrap();
    assert_eq!((v1, v2), (before.uidvalidity, before.uidvalidity));
    assert_eq!(uids1.len() + uids2.len(), 3);
    let all: Vec<u32> = uids1.iter().chain(&uids2).copied().collect();
    assert!(
        all.windows(2).all(|w| w[0] < w[1]),
        "UIDs strictly ascending: {all:?}"
    );
    let st = store.status(ib).await.unwrap();
    assert_eq!(st.messages, 3);
    assert_eq!(st.unseen, 2);
    assert!(st.uidnext > all[2]);
    assert!(st.highest_modseq > before.highest_modseq);

    let msgs = store.messages(ib).await.unwrap();
    assert_eq!(msgs.iter().map(|m| m.uid).collect::<Vec<_>>(), all);
    assert_eq!(
        msgs[0].flags,
        kw(flags::SEEN, &["$Label"]),
        "keywords deduped case-insensitively"
    );
    assert!(
        msgs[0].modseq < msgs[1].modseq,
        "a later append has a higher modseq"
    );
    assert!(msgs.iter().all(|m| m.modseq <= st.highest_modseq));
    let MessageBytes::Memory(data) = &m1.data else {
        unreachable!()
    };
    assert_eq!(msgs[0].size, data.len() as u64);
    assert_eq!(st.size, msgs.iter().map(|m| m.size).sum::<u64>());
    assert_eq!(
        (msgs[0].internal_date, msgs[0].internal_date_offset),
        (1_700_000_000, 60)
    );
    assert_eq!(*store.message_bytes(ib, all[0]).await.unwrap(), **data);
    assert_eq!(store.parsed_info(ib, all[0]).await.unwrap(), m1.parsed);
    assert!(matches!(
        store.message_bytes(ib, 999).await,
        Err(StoreError::NoSuchMailbox)
    ));
    assert!(matches!(
        store.parsed_info(ib, 999).await,
        Err(StoreError::NoSuchMailbox)
    ));
    assert!(matches!(
        store.append(-5, vec![message("x", "y")]).await,
        Err(StoreError::NoSuchMailbox)
    ));
    let (_, none) = store.append(ib, Vec::new()).await.unwrap();
    assert!(none.is_empty());

    // From a file.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("msg.eml");
    std::fs::write(&path, b"Subject: file\r\n\r\nfrom a file\r\n").expect("write");
    let mut m = message("file", "from a file");
    m.data = MessageBytes::File(path);
    let (_, u4) = store.append(ib, vec![m]).await.unwrap();
    assert_eq!(
        *store.message_bytes(ib, u4[0]).await.unwrap(),
        b"Subject: file\r\n\r\nfrom a file\r\n"
    );
    assert!(u4[0] > all[2]);
}

pub async fn flag_changes(store: &dyn MailStore) {
    let u = new_user(store, "flags-a").await;
    let ib = inbox(store, u).await;
    let (_, uids) = store
        .append(
            ib,
            vec![message("1", "a"), message("2", "b"), message("3", "c")],
        )
        .await
        .unwrap();
    let m0 = store.status(ib).await.unwrap().highest_modseq;

    let r = store
        .set_flags(
            ib,
            &uids[..2],
            FlagOp::Add,
            &kw(flags::SEEN, &["Foo"]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.updated.len(), 2);
    assert!(r.modified.is_empty());
    let m1 = r.updated[0].modseq;
    assert!(m1 > m0);
    assert_eq!(store.status(ib).await.unwrap().highest_modseq, m1);
    assert_eq!(r.updated[1].flags, kw(flags::SEEN, &["Foo"]));

    // Adding what is there changes nothing and bumps nothing.
    let r = store
        .set_flags(ib, &uids[..1], FlagOp::Add, &kw(0, &["FOO"]), None)
        .await
        .unwrap();
    assert!(r.updated.is_empty());
    assert_eq!(store.status(ib).await.unwrap().highest_modseq, m1);

    let r = store
        .set_flags(
            ib,
            &uids[..1],
            FlagOp::Remove,
            &kw(flags::SEEN, &["foo"]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.updated[0].flags, kw(0, &[]));
    let m2 = r.updated[0].modseq;
    assert!(m2 > m1);

    // Replace lists every matched message, changed or not.
    let r = store
        .set_flags(ib, &uids, FlagOp::Replace, &kw(flags::SEEN, &["Foo"]), None)
        .await
        .unwrap();
    assert_eq!(r.updated.iter().map(|x| x.uid).collect::<Vec<_>>(), uids);
    assert_eq!(
        r.updated[1].modseq, m1,
        "unchanged message keeps its modseq"
    );
    let m3 = r.updated[0].modseq;
    assert!(m3 > m2);

    // UNCHANGEDSINCE (RFC 7162 §3.1.3): uids[0] and uids[2] changed at m3 > m1.
    let r = store
        .set_flags(ib, &uids, FlagOp::Add, &kw(flags::FLAGGED, &[]), Some(m1))
        .await
        .unwrap();
    assert_eq!(r.modified, [uids[0], uids[2]]);
    assert_eq!(
        r.updated.iter().map(|x| x.uid).collect::<Vec<_>>(),
        [uids[1]]
    );
    let m4 = r.updated[0].modseq;

    let ch = store.changes_since(ib, m3).await.unwrap();
    assert_eq!(
        ch.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [uids[1]]
    );
    assert_eq!(
        ch.changed[0].flags,
        kw(flags::SEEN | flags::FLAGGED, &["Foo"])
    );
    assert_eq!(ch.highest_modseq, m4);
    assert!(ch.expunged.is_empty());
    let all = store.changes_since(ib, 0).await.unwrap();
    assert_eq!(all.changed.len(), 3);

    // Unknown UIDs are ignored; a missing mailbox is an error.
    let r = store
        .set_flags(ib, &[9999], FlagOp::Add, &kw(flags::SEEN, &[]), None)
        .await
        .unwrap();
    assert!(r.updated.is_empty() && r.modified.is_empty());
    let err = store
        .set_flags(-1, &[1], FlagOp::Add, &kw(flags::SEEN, &[]), None)
        .await;
    assert!(matches!(err, Err(StoreError::NoSuchMailbox)));
    let st = store.status(ib).await.unwrap();
    assert_eq!((st.unseen, st.deleted), (0, 0));
    store
        .set_flags(ib, &uids[..1], FlagOp::Add, &kw(flags::DELETED, &[]), None)
        .await
        .unwrap();
    assert_eq!(store.status(ib).await.unwrap().deleted, 1);
}

pub async fn expunge(store: &dyn MailStore) {
    let u = new_user(store, "expunge-a").await;
    let ib = inbox(store, u).await;
    let (_, uids) = store
        .append(
            ib,
            vec![
                message("1", "a"),
                message("2", "b"),
                message("3", "c"),
                message("4", "d"),
            ],
        )
        .await
        .unwrap();
    let before = store.status(ib).await.unwrap().highest_modseq;
    let removed = store
        .expunge(ib, &[uids[2], uids[0], 12345, uids[2]])
        .await
        .unwrap();
    assert_eq!(removed, [uids[0], uids[2]]);
    let msgs: Vec<u32> = store
        .messages(ib)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(msgs, [uids[1], uids[3]]);
    let ch = store.changes_since(ib, before).await.unwrap();
    assert_eq!(ch.expunged, [uids[0], uids[2]]);
    assert!(ch.changed.is_empty());
    assert!(ch.highest_modseq > before);
    assert!(store.expunge(ib, &[uids[0]]).await.unwrap().is_empty());
    assert!(matches!(
        store.message_bytes(ib, uids[0]).await,
        Err(StoreError::NoSuchMailbox)
    ));
    // UIDs are never reused.
    let (_, next) = store.append(ib, vec![message("5", "e")]).await.unwrap();
    assert!(next[0] > uids[3]);
    let st = store.status(ib).await.unwrap();
    assert_eq!(st.messages, 3);
}

pub async fn copy_and_move(store: &dyn MailStore) {
    let u = new_user(store, "copy-a").await;
    let ib = inbox(store, u).await;
    let dst = store.create_mailbox(u, "dst", None).await.unwrap();
    let mut m = message("1", "copied body");
    m.flags = kw(flags::FLAGGED, &["$K"]);
    let (_, src) = store
        .append(
            ib,
            vec![m, message("2", "moved body"), message("3", "stays")],
        )
        .await
        .unwrap();
    store
        .append(dst.id, vec![message("pre", "existing")])
        .await
        .unwrap();

    let (v, map) = store.copy(ib, &[src[0], 777], dst.id).await.unwrap();
    assert_eq!(v, dst.uidvalidity);
    assert_eq!(map.len(), 1);
    assert_eq!(map[0].0, src[0]);
    assert!(
        map[0].1 >= 2,
        "copy gets a new UID after the existing message"
    );
    let d = store.messages(dst.id).await.unwrap();
    let copied = d.iter().find(|x| x.uid == map[0].1).expect("copy present");
    assert_eq!(copied.flags, kw(flags::FLAGGED, &["$K"]));
    assert_eq!(
        store.messages(ib).await.unwrap().len(),
        3,
        "copy leaves the source"
    );
    assert_eq!(
        store.message_bytes(dst.id, map[0].1).await.unwrap(),
        store.message_bytes(ib, src[0]).await.unwrap()
    );
    assert_eq!(
        store
            .parsed_info(dst.id, map[0].1)
            .await
            .unwrap()
            .search_text,
        "Subject: 1\nFrom: a@example.org\ncopied body"
    );

    let src_modseq = store.status(ib).await.unwrap().highest_modseq;
    let (_, mv) = store.move_messages(ib, &[src[1]], dst.id).await.unwrap();
    assert_eq!(mv.len(), 1);
    assert!(mv[0].1 > map[0].1);
    let left: Vec<u32> = store
        .messages(ib)
        .await
        .unwrap()
        .iter()
        .map(|x| x.uid)
        .collect();
    assert_eq!(left, [src[0], src[2]]);
    assert_eq!(
        store.changes_since(ib, src_modseq).await.unwrap().expunged,
        [src[1]]
    );
    assert_eq!(
        &store.message_bytes(dst.id, mv[0].1).await.unwrap()[..],
        b"Subject: 2\r\nFrom: a@example.org\r\n\r\nmoved body\r\n"
    );
    assert_eq!(store.status(dst.id).await.unwrap().messages, 3);

    // Copy into the same mailbox is a plain copy with a new UID.
    let (_, same) = store.copy(ib, &[src[2]], ib).await.unwrap();
    assert!(same[0].1 > src[2]);
    assert!(matches!(
        store.copy(ib, &[src[0]], -7).await,
        Err(StoreError::NoSuchMailbox)
    ));
    assert!(matches!(
        store.move_messages(-7, &[1], ib).await,
        Err(StoreError::NoSuchMailbox)
    ));
}

pub async fn dedup(store: &dyn MailStore) {
    let a = new_user(store, "dedup-a").await;
    let b = new_user(store, "dedup-b").await;
    let (ia, ibx) = (inbox(store, a).await, inbox(store, b).await);
    let (_, ua) = store
        .append(ia, vec![message("same", "identical bytes")])
        .await
        .unwrap();
    let (_, ub) = store
        .append(ibx, vec![message("same", "identical bytes")])
        .await
        .unwrap();
    let problems = store.check().await.unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    store.expunge(ia, &ua).await.unwrap();
    // The other reference keeps the body.
    assert!(
        store
            .message_bytes(ibx, ub[0])
            .await
            .unwrap()
            .ends_with(b"identical bytes\r\n")
    );
    assert_eq!(
        store
            .search_text(ibx, &ub, "identical", false)
            .await
            .unwrap(),
        ub
    );
    store.expunge(ibx, &ub).await.unwrap();
    let (_, again) = store
        .append(ia, vec![message("same", "identical bytes")])
        .await
        .unwrap();
    assert!(
        store
            .message_bytes(ia, again[0])
            .await
            .unwrap()
            .ends_with(b"identical bytes\r\n")
    );
    let problems = store.check().await.unwrap();
    assert!(problems.is_empty(), "{problems:?}");
}

pub async fn search(store: &dyn MailStore) {
    let u = new_user(store, "search-a").await;
    let ib = inbox(store, u).await;
    let msgs = vec![
        message("Meeting Notes", "The quarterly REPORT is attached."),
        message("Grüße aus Köln", "Viele GRÜSSE und bis bald"),
        message("report", "nothing here; see subject"),
        message("x", "ab"),
    ];
    let (_, uids) = store.append(ib, msgs).await.unwrap();
    let all = uids.clone();
    let s = |needle: &'static str, body_only: bool, within: Vec<u32>| async move {
        store
            .search_text(ib, &within, needle, body_only)
            .await
            .unwrap()
    };
    assert_eq!(s("report", false, all.clone()).await, [uids[0], uids[2]]);
    assert_eq!(
        s("RePoRt", true, all.clone()).await,
        [uids[0]],
        "body only, case-insensitive"
    );
    assert_eq!(
        s("köln", false, all.clone()).await,
        [uids[1]],
        "non-ASCII case folding"
    );
    assert_eq!(s("grüsse", true, all.clone()).await, [uids[1]]);
    assert_eq!(
        s("quarterly report", false, all.clone()).await,
        [uids[0]],
        "phrase with space"
    );
    assert_eq!(
        s("say \"hi\"", false, all.clone()).await,
        Vec::<u32>::new(),
        "quotes are literal"
    );
    assert_eq!(
        s("report", false, vec![uids[2], uids[3]]).await,
        [uids[2]],
        "limited to the given UIDs"
    );
    // Short needles (below the trigram length) still match substrings.
    assert_eq!(s("AB", true, all.clone()).await, [uids[3]]);
    assert_eq!(s("ü", false, all.clone()).await, [uids[1]]);
    assert_eq!(
        s("", false, all.clone()).await,
        all,
        "the empty string is in every message"
    );
    assert_eq!(s("report", false, Vec::new()).await, Vec::<u32>::new());
    assert_eq!(
        s("Subject", true, all.clone()).await,
        [uids[2]],
        "header text is not body text"
    );

    store.expunge(ib, &[uids[0]]).await.unwrap();
    assert_eq!(
        s("report", false, all.clone()).await,
        [uids[2]],
        "expunged messages are not found"
    );
    let other = store.create_mailbox(u, "other", None).await.unwrap();
    let (_, moved) = store.move_messages(ib, &[uids[2]], other.id).await.unwrap();
    assert!(s("report", false, all.clone()).await.is_empty());
    let found = store
        .search_text(other.id, &[moved[0].1], "report", false)
        .await
        .unwrap();
    assert_eq!(
        found,
        [moved[0].1],
        "moved messages are found in their new mailbox"
    );
    store.delete_mailbox(u, other.id).await.unwrap();
    assert!(matches!(
        store.search_text(other.id, &[1], "report", false).await,
        Err(StoreError::NoSuchMailbox)
    ));
}

pub async fn recent(store: &dyn MailStore) {
    let u = new_user(store, "recent-a").await;
    let ib = inbox(store, u).await;
    let (_, uids) = store
        .append(ib, vec![message("1", "a"), message("2", "b")])
        .await
        .unwrap();
    assert_eq!(store.status(ib).await.unwrap().recent, 2);
    assert_eq!(
        store.claim_recent(ib, false).await.unwrap(),
        uids,
        "peek does not claim"
    );
    assert_eq!(store.claim_recent(ib, true).await.unwrap(), uids);
    assert!(
        store.claim_recent(ib, true).await.unwrap().is_empty(),
        "only the first session sees them"
    );
    assert_eq!(store.status(ib).await.unwrap().recent, 0);
    let (_, more) = store.append(ib, vec![message("3", "c")]).await.unwrap();
    assert_eq!(store.status(ib).await.unwrap().recent, 1);
    assert_eq!(store.claim_recent(ib, true).await.unwrap(), more);
    assert!(matches!(
        store.claim_recent(-3, true).await,
        Err(StoreError::NoSuchMailbox)
    ));
}

pub async fn notifications(store: &dyn MailStore) {
    let u = new_user(store, "notify-a").await;
    let ib = inbox(store, u).await;
    let other = store.create_mailbox(u, "other", None).await.unwrap();
    let mut sub = store.notifier().subscribe(ib);
    let mut other_sub = store.notifier().subscribe(other.id);
    sub.receiver.borrow_and_update();
    other_sub.receiver.borrow_and_update();
    store
        .append(ib, vec![message("n", "notify")])
        .await
        .unwrap();
    assert!(
        sub.receiver.has_changed().unwrap_or(false),
        "append wakes the mailbox's sessions"
    );
    assert_eq!(
        *sub.receiver.borrow_and_update(),
        store.status(ib).await.unwrap().highest_modseq
    );
    assert!(
        !other_sub.receiver.has_changed().unwrap_or(true),
        "other mailboxes are not woken"
    );
    store
        .set_flags(ib, &[1], FlagOp::Add, &kw(flags::SEEN, &[]), None)
        .await
        .unwrap();
    assert!(
        sub.receiver.has_changed().unwrap_or(false),
        "flag change wakes"
    );
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
