//! Text search, \\Recent, change notifications.

use super::{inbox, kw, message, new_user};
use crate::{FlagOp, MailStore, StoreError, flags};

pub async fn search(store: &dyn MailStore) {
    let u = new_user(store, "search-a").await;
    let ib = inbox(store, u).await;
    let msgs = vec![
        message("Meeting Notes", "The quarterly REPORT is attached."),
        message("Grüße aus Köln", "Viele GRÜSSE und bis bald"),
        message("report", "nothing here; see subject"),
        message("x", "ab"),
        message("日本語", "東京のレポート, v2.1-beta"),
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
    // Pieces of words: inside one, across a word boundary, prefix and suffix around spaces
    // and punctuation; words that are all there but not in this order are no match.
    assert_eq!(s("UARTER", true, all.clone()).await, [uids[0]]);
    assert_eq!(s("rly rep", true, all.clone()).await, [uids[0]]);
    assert_eq!(s("report is att", true, all.clone()).await, [uids[0]]);
    assert_eq!(s("attached.", true, all.clone()).await, [uids[0]]);
    assert_eq!(
        s("attached report", true, all.clone()).await,
        Vec::<u32>::new()
    );
    assert_eq!(
        s("quarterlyreport", true, all.clone()).await,
        Vec::<u32>::new()
    );
    assert_eq!(s("v2.1-b", true, all.clone()).await, [uids[4]]);
    assert_eq!(s("2.1", true, all.clone()).await, [uids[4]]);
    // No ASCII at all: every message is read.
    assert_eq!(s("レポート", true, all.clone()).await, [uids[4]]);
    assert_eq!(s("本語", false, all.clone()).await, [uids[4]]);
    assert_eq!(s("のレ", false, all.clone()).await, [uids[4]]);
    assert_eq!(
        s("Subject", true, all.clone()).await,
        [uids[2]],
        "header text is not body text"
    );

    // Another user's words are not this user's matches.
    let other_user = new_user(store, "search-b").await;
    let other_inbox = inbox(store, other_user).await;
    let (_, theirs) = store
        .append(other_inbox, vec![message("quarterly", "quarterly")])
        .await
        .unwrap();
    assert_eq!(s("quarterly", false, all.clone()).await, [uids[0]]);
    assert_eq!(
        store
            .search_text(other_inbox, &theirs, "report", false)
            .await
            .unwrap(),
        Vec::<u32>::new()
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
    append_claiming(store, u, ib).await;
    // Two sessions selecting at once: exactly one of them gets the new messages.
    let (_, newest) = store
        .append(ib, vec![message("4", "d"), message("5", "e")])
        .await
        .unwrap();
    let (a, b) = tokio::join!(store.claim_recent(ib, true), store.claim_recent(ib, true));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        a.is_empty() != b.is_empty(),
        "one claimer only: {a:?} {b:?}"
    );
    assert_eq!(if a.is_empty() { b } else { a }, newest);
}

/// An APPEND to the session's selected mailbox claims \Recent with it.
async fn append_claiming(store: &dyn MailStore, u: crate::UserId, ib: crate::MailboxId) {
    assert!(store.claim_recent(ib, true).await.unwrap().is_empty());
    // One not yet claimed (delivered while nobody looked): the claim takes it too.
    let (_, waiting) = store.append(ib, vec![message("w", "w")]).await.unwrap();
    let a = store
        .append_to_claiming(u, "inbox", vec![message("x", "x"), message("y", "y")], ib)
        .await
        .unwrap()
        .expect("INBOX exists");
    assert_eq!(a.uidvalidity, store.status(ib).await.unwrap().uidvalidity);
    assert_eq!(a.uids.len(), 2);
    let mut want = waiting.clone();
    want.extend(&a.uids);
    assert_eq!(a.claimed, want, "claimed with the append");
    assert!(
        store.claim_recent(ib, true).await.unwrap().is_empty(),
        "nothing left for another session"
    );
    assert_eq!(store.status(ib).await.unwrap().recent, 0);
    // To another mailbox than the selected one: nothing claimed there.
    let other = store.create_mailbox(u, "elsewhere", None).await.unwrap();
    let a = store
        .append_to_claiming(u, "elsewhere", vec![message("z", "z")], ib)
        .await
        .unwrap()
        .expect("exists");
    assert!(a.claimed.is_empty());
    assert_eq!(store.claim_recent(other.id, true).await.unwrap(), a.uids);
    assert!(
        store
            .append_to_claiming(u, "missing", vec![message("m", "m")], ib)
            .await
            .unwrap()
            .is_none()
    );
    store.delete_mailbox(u, other.id).await.unwrap();
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
    // The value is copied out first: a `watch::Ref` held across the await below would block
    // a notifier that sends meanwhile (PostgreSQL's listener hears this very change).
    let woken = *sub.receiver.borrow_and_update();
    assert_eq!(woken, store.status(ib).await.unwrap().highest_modseq);
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
    sub.receiver.borrow_and_update();
    let (_, map) = store.copy(ib, &[1], other.id).await.unwrap();
    assert!(
        other_sub.receiver.has_changed().unwrap_or(false),
        "copy wakes the destination"
    );
    assert!(
        !sub.receiver.has_changed().unwrap_or(true),
        "copy leaves the source alone"
    );
    store.expunge(other.id, &[map[0].1]).await.unwrap();
    let woken = *other_sub.receiver.borrow_and_update();
    assert_eq!(
        woken,
        store.status(other.id).await.unwrap().highest_modseq,
        "expunge wakes with the new HIGHESTMODSEQ"
    );
    every_change_wakes(store).await;
}

/// Each kind of change wakes the mailbox's sessions (an IDLE waits for nothing else).
async fn every_change_wakes(store: &dyn MailStore) {
    let u = new_user(store, "notify-b").await;
    let ib = inbox(store, u).await;
    let other = store.create_mailbox(u, "other", None).await.unwrap();
    let mut sub = store.notifier().subscribe(ib);
    let mut other_sub = store.notifier().subscribe(other.id);
    let (_, uids) = store
        .append(ib, vec![message("a", "one"), message("b", "two")])
        .await
        .unwrap();
    for rx in [&mut sub.receiver, &mut other_sub.receiver] {
        rx.borrow_and_update();
    }
    store.move_messages(ib, &uids[..1], other.id).await.unwrap();
    assert!(
        sub.receiver.has_changed().unwrap_or(false),
        "move wakes the source"
    );
    assert!(
        other_sub.receiver.has_changed().unwrap_or(false),
        "move wakes the destination"
    );
    sub.receiver.borrow_and_update();
    let replaced = store
        .replace(ib, uids[1], u, "INBOX", message("c", "three"))
        .await
        .unwrap();
    assert!(replaced.is_some());
    assert!(sub.receiver.has_changed().unwrap_or(false), "replace wakes");
    other_sub.receiver.borrow_and_update();
    store.delete_mailbox(u, other.id).await.unwrap();
    assert!(
        other_sub.receiver.has_changed().unwrap_or(false),
        "deleting a mailbox wakes its sessions"
    );
    sub.receiver.borrow_and_update();
    store.delete_user("notify-b").await.unwrap();
    assert!(
        sub.receiver.has_changed().unwrap_or(false),
        "deleting the user wakes its mailboxes' sessions"
    );
}
