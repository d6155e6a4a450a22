//! Indexing on demand, through a store: a search indexes the mailbox it searches, and the
//! tokens waiting in memory are bounded.

use std::sync::atomic::Ordering;

use crate::MailStore;
use crate::conformance::message;
use crate::sqlite::SqliteStore;

async fn waiting_bodies(store: &SqliteStore) -> i64 {
    store
        .readers
        .run(|c| Ok(c.query_row("SELECT count(*) FROM search_pending", [], |r| r.get(0))?))
        .await
        .unwrap()
}

/// With no idle time to index in, a search indexes the bodies of the mailbox it searches and
/// finds them; another mailbox's bodies go on waiting until it is searched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_indexes_the_mailbox_it_searches() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    store
        .writer
        .stats
        .index_paused
        .store(true, Ordering::SeqCst);
    let u = store.create_user("lazy", "h").await.unwrap().id;
    let inbox = store.get_mailbox(u, "INBOX").await.unwrap().unwrap().id;
    let other = store.create_mailbox(u, "Other", None).await.unwrap().id;
    let (_, in_uids) = store
        .append(
            inbox,
            vec![message("a", "quokka marsupial"), message("b", "wombat")],
        )
        .await
        .unwrap();
    let (_, other_uids) = store
        .append(other, vec![message("c", "platypus monotreme")])
        .await
        .unwrap();
    assert_eq!(waiting_bodies(&store).await, 3);

    let found = store
        .search_text(inbox, &in_uids, "okka", true)
        .await
        .unwrap();
    assert_eq!(found, vec![in_uids[0]], "an infix, through the vocabulary");
    assert_eq!(
        waiting_bodies(&store).await,
        1,
        "only the searched mailbox was indexed"
    );
    // The other mailbox's word is not in the index yet: searching INBOX does not find it.
    assert!(
        store
            .search_text(inbox, &in_uids, "platypus", true)
            .await
            .unwrap()
            .is_empty()
    );
    let found = store
        .search_text(other, &other_uids, "monotrem", true)
        .await
        .unwrap();
    assert_eq!(found, other_uids);
    assert_eq!(waiting_bodies(&store).await, 0);
    assert!(store.check().await.unwrap().is_empty());
}

/// Past `Indexer::KEEP_MAX` bytes of waiting tokens, new bodies' tokens are not kept (and
/// APPENDs stop computing them); those bodies are indexed from their text and found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_tokens_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let stats = &store.writer.stats;
    stats.index_paused.store(true, Ordering::SeqCst);
    let u = store.create_user("bound", "h").await.unwrap().id;
    let inbox = store.get_mailbox(u, "INBOX").await.unwrap().unwrap().id;
    let mut uids = Vec::new();
    // About 2 KiB of distinct words each; the bound is 16 KiB in tests.
    for i in 0..20 {
        let body: String = (0..150).map(|w| format!("m{i}w{w} ")).collect();
        let (_, u) = store
            .append(inbox, vec![message(&format!("s{i}"), &body)])
            .await
            .unwrap();
        uids.extend(u);
    }
    assert!(
        stats.tokens_full.load(Ordering::SeqCst),
        "the bound was reached"
    );
    assert_eq!(waiting_bodies(&store).await, 20);
    for i in [0, 9, 19] {
        let found = store
            .search_text(inbox, &uids, &format!("m{i}w149"), true)
            .await
            .unwrap();
        assert_eq!(found, vec![uids[i]], "message {i}");
    }
    assert!(
        !stats.tokens_full.load(Ordering::SeqCst),
        "all indexed, none kept"
    );
    assert!(store.check().await.unwrap().is_empty());
}
