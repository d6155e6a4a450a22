//! The conformance suite and the embedded backend's own guarantees (durability across reopen,
//! concurrent appends, group commit, body deduplication on disk).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use mailkeep_store::conformance::{self, message};
use mailkeep_store::sqlite::SqliteStore;
use mailkeep_store::{MailStore, MessageBytes};
use sha2::Digest;

mod common;
use common::{blob_files, file_message, inline_bodies};

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
    assert_eq!(version, 5);
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
