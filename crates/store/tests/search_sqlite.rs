//! The embedded backend's search index: upgrades from older index versions, the index
//! following bodies through expunge and redelivery, and bodies waiting to be indexed.

mod common;

use std::path::Path;

use common::{file_message, rows};
use mailkeep_store::MailStore;
use mailkeep_store::conformance::message;
use mailkeep_store::sqlite::SqliteStore;

/// Makes a current index look like versions 1 and 2 here: the trigram `search` table holding
/// each body's text instead of the word indexes, parsed info in four plain columns.
fn downgrade_search(conn: &rusqlite::Connection) {
    conn.execute_batch(
        "ALTER TABLE blobs ADD COLUMN envelope BLOB NOT NULL DEFAULT x'';
         ALTER TABLE blobs ADD COLUMN bodystructure BLOB NOT NULL DEFAULT x'';
         ALTER TABLE blobs ADD COLUMN body BLOB NOT NULL DEFAULT x'';
         ALTER TABLE blobs ADD COLUMN parts BLOB NOT NULL DEFAULT x'';
         UPDATE blobs SET envelope = CAST('(env)' AS BLOB), bodystructure = CAST('(bs)' AS BLOB),
             body = CAST('(b)' AS BLOB), parts = x'010203';
         ALTER TABLE blobs DROP COLUMN parsed;
         DROP TABLE search_header_terms; DROP TABLE search_body_terms;
         DROP TABLE search_header; DROP TABLE search_body;
         CREATE VIRTUAL TABLE search USING fts5(header, body, tokenize = 'trigram');
         INSERT INTO search(rowid, header, body)
             SELECT id, 'Subject: old\nFrom: a@example.org\n', 'kept from version two'
             FROM blobs;
         PRAGMA user_version = 2;",
    )
    .unwrap();
}

#[tokio::test]
async fn version_2_index_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let user = store.create_user("u", "x").await.unwrap();
    let inbox = store.get_mailbox(user.id, "INBOX").await.unwrap().unwrap();
    store
        .append(inbox.id, vec![message("old", "kept from version two")])
        .await
        .unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(dir.path().join("index.sqlite3")).unwrap();
    downgrade_search(&conn);
    drop(conn);
    let size_before = std::fs::metadata(dir.path().join("index.sqlite3"))
        .unwrap()
        .len();
    let store = SqliteStore::open(dir.path()).unwrap();
    // The old index's words moved to the new tables: found by index alone and by confirming.
    for (needle, body_only, want) in [
        ("version", true, vec![1]),
        ("from version", true, vec![1]),
        ("old", false, vec![1]),
        ("old", true, vec![]),
        ("absent", false, vec![]),
    ] {
        assert_eq!(
            store
                .search_text(inbox.id, &[1], needle, body_only)
                .await
                .unwrap(),
            want,
            "{needle:?} body_only={body_only}"
        );
    }
    // The parsed info moved into the packed column.
    let info = store.parsed_info(inbox.id, 1).await.unwrap();
    assert_eq!(
        (info.envelope, info.bodystructure, info.body, info.parts),
        (
            b"(env)".to_vec(),
            b"(bs)".to_vec(),
            b"(b)".to_vec(),
            vec![1, 2, 3]
        )
    );
    assert!(store.check().await.unwrap().is_empty());
    drop(store);
    let conn = rusqlite::Connection::open(dir.path().join("index.sqlite3")).unwrap();
    let old: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'search'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old, 0, "the trigram table is dropped");
    let size_after = std::fs::metadata(dir.path().join("index.sqlite3"))
        .unwrap()
        .len();
    assert!(
        size_after <= size_before,
        "{size_after} > {size_before}: not vacuumed"
    );
}

#[tokio::test]
async fn version_1_index_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path()).unwrap());
    // Make it look like a version 1 index: tombstones without held bodies.
    let conn = rusqlite::Connection::open(dir.path().join("index.sqlite3")).unwrap();
    conn.execute_batch(
        "DROP INDEX expunged_held;
         ALTER TABLE expunged DROP COLUMN expunged_at;
         ALTER TABLE expunged DROP COLUMN blob_id;",
    )
    .unwrap();
    downgrade_search(&conn);
    conn.execute_batch("PRAGMA user_version = 1").unwrap();
    drop(conn);
    let store = SqliteStore::open(dir.path()).unwrap();
    let user = store.create_user("u", "x").await.unwrap();
    let inbox = store.get_mailbox(user.id, "INBOX").await.unwrap().unwrap();
    let (_, uids) = store
        .append(inbox.id, vec![message("a", "b")])
        .await
        .unwrap();
    assert_eq!(store.expunge(inbox.id, &uids).await.unwrap(), uids);
    assert!(store.check().await.unwrap().is_empty());
}

/// The search index follows bodies through expunge, collection and a second delivery of the
/// same bytes (a new body row, the words already in the vocabulary).
#[tokio::test]
async fn search_index_follows_expunge_and_redelivery() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let user = store.create_user("s", "x").await.unwrap();
    let inbox = store.get_mailbox(user.id, "INBOX").await.unwrap().unwrap();
    let msg = || message("quarterly", "the zanzibarian report, final");
    let (_, first) = store.append(inbox.id, vec![msg()]).await.unwrap();
    let found = |uids: Vec<u32>, needle: &'static str| {
        let store = store.clone();
        async move {
            store
                .search_text(inbox.id, &uids, needle, true)
                .await
                .unwrap()
        }
    };
    assert_eq!(found(first.clone(), "zibar").await, first);
    assert_eq!(found(first.clone(), "zanzibarian report,").await, first);
    store.expunge(inbox.id, &first).await.unwrap();
    store
        .release_expunged(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert!(found(first.clone(), "zibar").await.is_empty());
    let (_, again) = store.append(inbox.id, vec![msg()]).await.unwrap();
    assert_ne!(again, first);
    assert_eq!(found(again.clone(), "zibar").await, again);
    assert_eq!(found(again.clone(), "ARIAN REP").await, again);
    assert!(found(again.clone(), "report, finalx").await.is_empty());
    assert!(store.check().await.unwrap().is_empty());
}

fn waiting_for_index(dir: &Path) -> i64 {
    rows(dir, "search_pending")
}

/// Indexing waits for a quiet moment, but a search never misses a committed body: what waits
/// is indexed first, a body that waited through a restart is indexed from its text, and one
/// that goes before it is indexed leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_bodies_are_indexed_before_search_and_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (inbox, uids) = {
        let store = SqliteStore::open(dir.path()).unwrap();
        let user = store.create_user("p", "x").await.unwrap();
        let inbox = store
            .get_mailbox(user.id, "INBOX")
            .await
            .unwrap()
            .unwrap()
            .id;
        let mut msgs = vec![
            message("alpha", "the walrus said"),
            message("beta", "of cabbages and kings"),
        ];
        msgs.push(file_message("gamma", 7));
        let (_, uids) = store.append(inbox, msgs).await.unwrap();
        // Searched at once: found although the writer had no quiet moment yet.
        let hits = store
            .search_text(inbox, &uids, "cabbage", true)
            .await
            .unwrap();
        assert_eq!(hits, vec![uids[1]]);
        // Appended and expunged before anything indexed it.
        let (_, gone) = store
            .append(inbox, vec![message("delta", "ephemeral vanishing words")])
            .await
            .unwrap();
        store.expunge(inbox, &gone).await.unwrap();
        store
            .release_expunged(std::time::Duration::ZERO)
            .await
            .unwrap();
        assert!(store.check().await.unwrap().is_empty());
        (inbox, uids)
    };
    // Closing indexed everything that waited.
    assert_eq!(waiting_for_index(dir.path()), 0);

    // As if the process had stopped with every body still waiting.
    let conn = rusqlite::Connection::open(dir.path().join("index.sqlite3")).unwrap();
    conn.execute_batch(
        "DELETE FROM search_header WHERE rowid IN (SELECT id FROM blobs);
         DELETE FROM search_body WHERE rowid IN (SELECT id FROM blobs);
         INSERT INTO search_pending(blob_id) SELECT id FROM blobs;",
    )
    .unwrap();
    drop(conn);
    assert_eq!(waiting_for_index(dir.path()), 3);
    let store = SqliteStore::open(dir.path()).unwrap();
    for (needle, want) in [("walrus", uids[0]), ("kings", uids[1]), ("gamma", uids[2])] {
        let hits = store
            .search_text(inbox, &uids, needle, false)
            .await
            .unwrap();
        assert_eq!(hits, vec![want], "{needle}");
    }
    assert!(
        store
            .search_text(inbox, &uids, "ephemeral", false)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.check().await.unwrap().is_empty());
    drop(store);
    assert_eq!(waiting_for_index(dir.path()), 0);
}

/// Bodies left waiting by a stop are indexed when the writer is idle after the next start, and
/// the WAL those idle flushes grow is truncated too, without waiting for a write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_indexing_after_restart_leaves_the_wal_truncated() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        let user = store.create_user("t", "x").await.unwrap();
        let inbox = store.get_mailbox(user.id, "INBOX").await.unwrap().unwrap();
        let msgs = (0..40)
            .map(|i| message(&format!("m{i}"), "words to index again"))
            .collect();
        store.append(inbox.id, msgs).await.unwrap();
    }
    let conn = rusqlite::Connection::open(dir.path().join("index.sqlite3")).unwrap();
    conn.execute_batch(
        "DELETE FROM search_header WHERE rowid IN (SELECT id FROM blobs);
         DELETE FROM search_body WHERE rowid IN (SELECT id FROM blobs);
         INSERT INTO search_pending(blob_id) SELECT id FROM blobs;
         PRAGMA wal_checkpoint(TRUNCATE);",
    )
    .unwrap();
    drop(conn);
    assert_eq!(waiting_for_index(dir.path()), 40);
    let store = SqliteStore::open(dir.path()).unwrap();
    let wal = dir.path().join("index.sqlite3-wal");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let waiting = waiting_for_index(dir.path());
        let wal_len = std::fs::metadata(&wal).map_or(0, |m| m.len());
        if waiting == 0 && wal_len == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{waiting} bodies waiting, WAL {wal_len} bytes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(store.check().await.unwrap().is_empty());
}
