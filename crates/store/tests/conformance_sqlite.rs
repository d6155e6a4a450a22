//! The conformance suite and the embedded backend's own guarantees (durability across reopen,
//! concurrent appends, group commit, body deduplication on disk).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use mailkeep_store::conformance::{self, message};
use mailkeep_store::sqlite::SqliteStore;
use mailkeep_store::{MailStore, MessageBytes};
use sha2::Digest;

fn blob_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(dir.join("blobs")).unwrap() {
        for f in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let f = f.unwrap();
            if !f.file_name().to_string_lossy().starts_with('.') {
                out.push(f.path());
            }
        }
    }
    out
}

/// A body too big and too random to be kept in the index: it goes to a file.
fn file_message(subject: &str, seed: u64) -> mailkeep_store::NewMessage {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = seed;
    let body: String = (0..64 * 1024)
        .map(|i| {
            if i % 77 == 76 {
                return '\n';
            }
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            B64[(x >> 58) as usize] as char
        })
        .collect();
    message(subject, &body)
}

fn rows(dir: &Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(dir.join("index.sqlite3")).unwrap();
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

fn inline_bodies(dir: &Path) -> i64 {
    rows(dir, "bodies")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    conformance::run_all(store).await;
    // The index is in WAL mode (readers beside the writer) with a schema version.
    let conn = rusqlite::Connection::open(dir.path().join("index.sqlite3")).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 3);
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let user = store.create_user("c", "h").await.unwrap().id;
    let ib = store.get_mailbox(user, "INBOX").await.unwrap().unwrap().id;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for j in 0..4 {
                let (_, uids) = s
                    .append(
                        ib,
                        vec![message(&format!("t{i}"), &format!("body {i} {j}"))],
                    )
                    .await
                    .unwrap();
                got.extend(uids);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let uids = t.await.unwrap();
        assert!(
            uids.windows(2).all(|w| w[0] < w[1]),
            "each task sees ascending UIDs"
        );
        all.extend(uids);
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 64, "every append got its own UID");
    let stats = store.write_stats();
    let (commits, jobs) = (
        stats.commits.load(Ordering::SeqCst),
        stats.jobs.load(Ordering::SeqCst),
    );
    println!("64 concurrent appends: {jobs} write jobs in {commits} commits");
    assert!(commits <= jobs);
    drop(store);

    let store = SqliteStore::open(dir.path()).unwrap();
    let msgs = store.messages(ib).await.unwrap();
    assert_eq!(msgs.iter().map(|m| m.uid).collect::<Vec<_>>(), all);
    for m in &msgs {
        assert!(
            store
                .message_bytes(ib, m.uid)
                .await
                .unwrap()
                .starts_with(b"Subject: t")
        );
    }
    assert!(store.check().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_batches_writers() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let user = store.create_user("g", "h").await.unwrap().id;
    let ib = store.get_mailbox(user, "INBOX").await.unwrap().unwrap().id;
    let hold = store.hold_writer().await;
    let commits_before = store.write_stats().commits.load(Ordering::SeqCst);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.append(ib, vec![message("g", &format!("b{i}"))])
                .await
                .unwrap()
        }));
    }
    for _ in 0..1000 {
        if store.queued_writes() >= 16 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(store.queued_writes(), 16, "all appends wait for the writer");
    drop(hold);
    for t in tasks {
        t.await.unwrap();
    }
    let commits = store.write_stats().commits.load(Ordering::SeqCst) - commits_before;
    // The held job's transaction, then one for all 16 appends.
    assert!(commits <= 2, "16 appends took {commits} commits");
    assert_eq!(store.messages(ib).await.unwrap().len(), 16);
}

#[tokio::test]
async fn identical_bodies_share_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let a = store.create_user("a", "h").await.unwrap().id;
    let ia = store.get_mailbox(a, "INBOX").await.unwrap().unwrap().id;
    let other = store.create_mailbox(a, "o", None).await.unwrap().id;
    let (_, u1) = store
        .append(ia, vec![file_message("s", 1), file_message("s", 1)])
        .await
        .unwrap();
    store.copy(ia, &u1, other).await.unwrap();
    let files = blob_files(dir.path());
    assert_eq!(files.len(), 1);
    assert_eq!(inline_bodies(dir.path()), 0, "big bodies are files");
    // Named by the SHA-256 of the bytes, stored zstd-compressed.
    let bytes = store.message_bytes(ia, u1[0]).await.unwrap();
    let name = files[0]
        .strip_prefix(dir.path().join("blobs"))
        .unwrap()
        .to_string_lossy()
        .replace('/', "");
    assert_eq!(name, hex::encode(sha2::Sha256::digest(&*bytes)));
    assert!(
        std::fs::read(&files[0])
            .unwrap()
            .starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
        "zstd frame"
    );
    store.append(ia, vec![file_message("s", 2)]).await.unwrap();
    assert_eq!(blob_files(dir.path()).len(), 2);
    store.expunge(ia, &u1).await.unwrap();
    // Expunged bodies stay readable for a grace period; end it now.
    store
        .release_expunged(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        blob_files(dir.path()).len(),
        2,
        "the copies in `o` still use it"
    );
    store.delete_mailbox(a, other).await.unwrap();
    assert_eq!(
        blob_files(dir.path()).len(),
        1,
        "last reference gone, file gone"
    );
    assert!(store.check().await.unwrap().is_empty());
    let store: Arc<dyn MailStore> = store;
    store.delete_user("a").await.unwrap();
    assert_eq!(blob_files(dir.path()).len(), 0);
}

#[tokio::test]
async fn small_bodies_live_in_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let a = store.create_user("a", "h").await.unwrap().id;
    let ia = store.get_mailbox(a, "INBOX").await.unwrap().unwrap().id;
    let (_, uids) = store
        .append(
            ia,
            vec![
                message("s", "same"),
                message("s", "same"),
                message("t", "other"),
            ],
        )
        .await
        .unwrap();
    assert!(
        blob_files(dir.path()).is_empty(),
        "no file for small bodies"
    );
    assert_eq!(inline_bodies(dir.path()), 2, "identical bodies stored once");
    let MessageBytes::Memory(want) = message("s", "same").data else {
        unreachable!()
    };
    assert_eq!(*store.message_bytes(ia, uids[1]).await.unwrap(), *want);
    assert!(store.check().await.unwrap().is_empty());
    // Survives a reopen; damage is found by `check` as for files.
    drop(store);
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(*store.message_bytes(ia, uids[0]).await.unwrap(), *want);
    let conn = rusqlite::Connection::open(dir.path().join("index.sqlite3")).unwrap();
    let other = zstd::encode_all(&b"not the message"[..], 3).unwrap();
    conn.execute(
        "UPDATE bodies SET data = ?1 WHERE id = (SELECT min(id) FROM bodies)",
        [other],
    )
    .unwrap();
    let problems = store.check().await.unwrap().join("\n");
    assert!(problems.contains("has 15 bytes, index says"), "{problems}");
    conn.execute(
        "UPDATE bodies SET data = x'00' WHERE id = (SELECT max(id) FROM bodies)",
        [],
    )
    .unwrap();
    assert!(store.message_bytes(ia, uids[2]).await.is_err());
    // The last reference gone, the body goes with its row.
    store.expunge(ia, &uids).await.unwrap();
    store
        .release_expunged(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(inline_bodies(dir.path()), 0);
}

#[tokio::test]
async fn check_finds_damage() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let a = store.create_user("a", "h").await.unwrap().id;
    let ib = store.get_mailbox(a, "INBOX").await.unwrap().unwrap().id;
    store
        .append(ib, vec![file_message("1", 1), file_message("2", 2)])
        .await
        .unwrap();
    assert!(store.check().await.unwrap().is_empty());

    let files = blob_files(dir.path());
    assert_eq!(files.len(), 2);
    let other = zstd::encode_all(&b"not the message"[..], 3).unwrap();
    std::fs::write(&files[0], other).unwrap();
    std::fs::remove_file(&files[1]).unwrap();
    std::fs::create_dir_all(dir.path().join("blobs/00")).unwrap();
    std::fs::write(dir.path().join("blobs/00/").join("1".repeat(62)), b"stray").unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("index.sqlite3")).unwrap();
    conn.execute_batch(
        "UPDATE blobs SET refcount = 7; UPDATE mailboxes SET unseen = 99;
         DELETE FROM search_vocab WHERE term = 'subject'",
    )
    .unwrap();

    let problems = store.check().await.unwrap().join("\n");
    for want in [
        "has 15 bytes, index says",
        "missing",
        "refcount 7, referenced by 1",
        "STATUS counters disagree",
        "is not in the index",
        "words of search_header are missing from search_vocab",
    ] {
        assert!(problems.contains(want), "expected {want:?} in:\n{problems}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_is_truncated_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let user = store.create_user("w", "x").await.unwrap();
    let inbox = store.get_mailbox(user.id, "INBOX").await.unwrap().unwrap();
    let msgs = (0..50)
        .map(|i| message(&i.to_string(), "some words"))
        .collect();
    store.append(inbox.id, msgs).await.unwrap();
    let wal = dir.path().join("index.sqlite3-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::metadata(&wal).unwrap().len() > 0 {
        assert!(std::time::Instant::now() < deadline, "WAL not truncated");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Everything is still there, and writes go on.
    assert_eq!(store.messages(inbox.id).await.unwrap().len(), 50);
    store
        .append(inbox.id, vec![message("51", "x")])
        .await
        .unwrap();
    assert!(store.check().await.unwrap().is_empty());
}

#[tokio::test]
async fn only_new_mail_waits_for_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let user = store.create_user("d", "x").await.unwrap();
    let inbox = store.get_mailbox(user.id, "INBOX").await.unwrap().unwrap();
    let stats = store.write_stats();
    let counts = || {
        (
            stats.commits.load(Ordering::SeqCst),
            stats.durable_commits.load(Ordering::SeqCst),
        )
    };
    let (c0, d0) = counts();
    let (_, uids) = store
        .append(inbox.id, vec![message("a", "b")])
        .await
        .unwrap();
    let (c1, d1) = counts();
    assert_eq!((c1 - c0, d1 - d0), (1, 1), "APPEND is fsynced");
    let seen = mailkeep_store::Flags {
        system: mailkeep_store::flags::SEEN,
        keywords: Vec::new(),
    };
    store
        .set_flags(inbox.id, &uids, mailkeep_store::FlagOp::Add, &seen, None)
        .await
        .unwrap();
    store.expunge(inbox.id, &uids).await.unwrap();
    let (c2, d2) = counts();
    assert_eq!(
        (c2 - c1, d2 - d1),
        (2, 0),
        "flags and expunge ride on later fsyncs"
    );
    // Committed all the same: a new process sees them.
    drop(store);
    let store = SqliteStore::open(dir.path()).unwrap();
    assert!(store.messages(inbox.id).await.unwrap().is_empty());
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
