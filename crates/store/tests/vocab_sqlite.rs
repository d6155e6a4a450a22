//! The search vocabulary: one per account, pruned after expunges, tokens capped in length,
//! and the upgrade from the shared vocabulary of schema version 3.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use mailkeep_store::conformance::message;
use mailkeep_store::sqlite::SqliteStore;
use mailkeep_store::{MailStore, MessageBytes};

fn vocab_has(dir: &Path, user: i64, term: &str) -> bool {
    let conn = rusqlite::Connection::open(dir.join("index.sqlite3")).unwrap();
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM search_vocab WHERE user_id = ?1 AND term = ?2)",
        rusqlite::params![user, term],
        |r| r.get(0),
    )
    .unwrap()
}

async fn account(store: &SqliteStore, name: &str) -> (i64, i64) {
    let u = store.create_user(name, "h").await.unwrap().id;
    let ib = store.get_mailbox(u, "INBOX").await.unwrap().unwrap().id;
    (u, ib)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vocabulary_is_per_account_and_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let (a, ia) = account(&store, "a").await;
    let (b, ib) = account(&store, "b").await;
    let (_, ua) = store
        .append(ia, vec![message("x", "zorblattian quuxification")])
        .await
        .unwrap();
    store
        .append(ib, vec![message("y", "plain words only")])
        .await
        .unwrap();
    assert_eq!(
        store.search_text(ia, &ua, "blatti", true).await.unwrap(),
        ua
    );
    assert!(vocab_has(dir.path(), a, "zorblattian"));
    assert!(
        !vocab_has(dir.path(), b, "zorblattian"),
        "one account's words are not in another's vocabulary"
    );
    assert!(
        store
            .search_text(ib, &[1], "blatti", true)
            .await
            .unwrap()
            .is_empty()
    );
    // b's words are in by b's search at the latest (a search indexes its own mailbox).
    assert!(vocab_has(dir.path(), b, "plain"));
    // The same body delivered to b too: its words become b's as well, by the next search
    // (or when the writer is idle), not in the delivery's commit.
    let (_, ub) = store
        .append(ib, vec![message("x", "zorblattian quuxification")])
        .await
        .unwrap();
    assert_eq!(
        store.search_text(ib, &ub, "blatti", true).await.unwrap(),
        ub
    );
    assert!(vocab_has(dir.path(), b, "zorblattian"));

    // After the expunge, a's words of that message are pruned (when the writer is idle);
    // b still has them, since b still has the message.
    store
        .append(ia, vec![message("kept", "remaining")])
        .await
        .unwrap();
    store.expunge(ia, &ua).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while vocab_has(dir.path(), a, "zorblattian") {
        assert!(
            Instant::now() < deadline,
            "expunged mail's words never pruned"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!vocab_has(dir.path(), a, "quuxification"));
    assert!(
        vocab_has(dir.path(), a, "subject"),
        "words still in a's mail stay"
    );
    assert!(vocab_has(dir.path(), b, "zorblattian"));
    assert!(store.check().await.unwrap().is_empty());
    store.delete_user("b").await.unwrap();
    assert!(!vocab_has(dir.path(), b, "plain"));
    assert!(store.check().await.unwrap().is_empty());
}

/// Words waiting to join an account's vocabulary when the server stopped (a crash: nothing
/// of them in memory any more) join it from the body's text after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_words_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let (_, ia) = account(&store, "a").await;
    let (b, ib) = account(&store, "b").await;
    let body = message("x", "zorblattian quuxification");
    store.append(ia, vec![body.clone()]).await.unwrap();
    let (_, ub) = store.append(ib, vec![body]).await.unwrap();
    drop(store);
    // As a crash between the delivery's commit and the flush leaves it.
    let conn = rusqlite::Connection::open(dir.path().join("index.sqlite3")).unwrap();
    conn.execute_batch(&format!(
        "DELETE FROM search_vocab WHERE user_id = {b};
         INSERT INTO search_vocab_pending(blob_id, user_id)
             SELECT blob_id, {b} FROM messages WHERE mailbox_id = {ib};"
    ))
    .unwrap();
    drop(conn);
    assert!(!vocab_has(dir.path(), b, "zorblattian"));
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(
        store.search_text(ib, &ub, "blatti", true).await.unwrap(),
        ub
    );
    assert!(vocab_has(dir.path(), b, "zorblattian"));
    assert!(store.check().await.unwrap().is_empty());
}

/// A body of random digits in one run (FTS5 cut it at 32 KiB, the vocabulary did not, and
/// `check()` failed forever).
fn long_run_message(len: usize) -> (mailkeep_store::NewMessage, String) {
    let mut x = 7u64;
    let digits: String = (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            char::from(b'0' + ((x >> 33) % 10) as u8)
        })
        .collect();
    (message("digits", &digits), digits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_tokens_are_capped_and_still_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let (_, ib) = account(&store, "a").await;
    let (m, digits) = long_run_message(300_000);
    let (_, uids) = store.append(ib, vec![m]).await.unwrap();
    store
        .append(ib, vec![message("other", "nothing long here 12345")])
        .await
        .unwrap();
    let problems = store.check().await.unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let all = [1, 2];
    for (needle, want) in [
        (&digits[200_000..200_040], uids.clone()), // infix past the cut
        (&digits[299_900..], uids.clone()),        // suffix past the cut
        (&digits[..40], uids.clone()),             // prefix within the cut
        (&digits[..200], uids.clone()),            // prefix beyond the cut
        (&digits[100..150], uids.clone()),         // infix within the cut
        ("99999999999999999999999999999", vec![]), // nowhere
        ("othin", vec![2]),
    ] {
        assert_eq!(
            store.search_text(ib, &all, needle, true).await.unwrap(),
            want,
            "needle of {} digits",
            needle.len()
        );
    }
    let whole_word = format!(" {} ", &digits[..200]);
    assert!(
        store
            .search_text(ib, &all, &whole_word, true)
            .await
            .unwrap()
            .is_empty(),
        "a whole word longer than the cut that is not the whole run"
    );
}

/// Makes a current index look like version 3: one shared vocabulary, tokens as FTS5 took them
/// (uncut).
fn downgrade_to_3(dir: &Path, long_body: i64, long_tokens: &str) {
    let conn = rusqlite::Connection::open(dir.join("index.sqlite3")).unwrap();
    conn.execute_batch(
        "DROP TABLE search_vocab; DROP TABLE search_vocab_prune;
         CREATE TABLE search_vocab(term TEXT PRIMARY KEY) WITHOUT ROWID;",
    )
    .unwrap();
    conn.execute("DELETE FROM search_body WHERE rowid = ?1", [long_body])
        .unwrap();
    conn.execute(
        "INSERT INTO search_body(rowid, text) VALUES (?1, ?2)",
        rusqlite::params![long_body, long_tokens],
    )
    .unwrap();
    conn.execute_batch(
        "INSERT OR IGNORE INTO search_vocab SELECT term FROM search_body_terms;
         INSERT OR IGNORE INTO search_vocab SELECT term FROM search_header_terms;
         PRAGMA user_version = 3;",
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_3_shared_vocabulary_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, ia, ib) = {
        let store = SqliteStore::open(dir.path()).unwrap();
        let (a, ia) = account(&store, "a").await;
        let (b, ib) = account(&store, "b").await;
        store
            .append(ia, vec![message("x", "zorblattian words")])
            .await
            .unwrap();
        store
            .append(ib, vec![message("y", "quuxification words")])
            .await
            .unwrap();
        (a, b, ia, ib)
    };
    let (m, digits) = long_run_message(40_000);
    let MessageBytes::Memory(data) = &m.data else {
        unreachable!()
    };
    {
        // Store the long body with the current code, then index it the old way.
        let store = SqliteStore::open(dir.path()).unwrap();
        store.append(ia, vec![m.clone()]).await.unwrap();
        assert!(store.check().await.unwrap().is_empty());
    }
    let conn = rusqlite::Connection::open(dir.path().join("index.sqlite3")).unwrap();
    let long_body: i64 = conn
        .query_row("SELECT max(id) FROM blobs", [], |r| r.get(0))
        .unwrap();
    drop(conn);
    assert!(data.len() > 40_000);
    downgrade_to_3(dir.path(), long_body, &digits);

    let store = SqliteStore::open(dir.path()).unwrap();
    let problems = store.check().await.unwrap();
    assert!(problems.is_empty(), "after the upgrade: {problems:?}");
    assert!(vocab_has(dir.path(), a, "zorblattian"));
    assert!(!vocab_has(dir.path(), b, "zorblattian"));
    assert!(vocab_has(dir.path(), b, "quuxification"));
    assert!(vocab_has(dir.path(), a, "words") && vocab_has(dir.path(), b, "words"));
    assert!(vocab_has(dir.path(), a, &digits[..128]));
    assert_eq!(
        store
            .search_text(ia, &[1, 2], "blatti", true)
            .await
            .unwrap(),
        vec![1]
    );
    assert_eq!(
        store.search_text(ib, &[1], "xificat", true).await.unwrap(),
        vec![1]
    );
    assert_eq!(
        store
            .search_text(ia, &[1, 2], &digits[30_000..30_030], true)
            .await
            .unwrap(),
        vec![2]
    );
    let conn = rusqlite::Connection::open(dir.path().join("index.sqlite3")).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 5);
}
