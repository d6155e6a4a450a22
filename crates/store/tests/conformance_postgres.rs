//! The conformance suite and the PostgreSQL backend's own guarantees (several nodes on one
//! database), against a throwaway PostgreSQL started by the test (see
//! `mailkeep_store::postgres::testing`).
#![cfg(feature = "postgres")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use mailkeep_store::MailStore;
use mailkeep_store::conformance::{self, message};
use mailkeep_store::postgres::PgStore;
use mailkeep_store::postgres::testing::TestPostgres;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let url = pg.create_database("conformance").await;
    let store = PgStore::open(&url, 8).await.expect("open");
    let started = Instant::now();
    conformance::run_all(store).await;
    println!("conformance suite on PostgreSQL: {:?}", started.elapsed());
}

/// Two stores on one database, as two nodes.
async fn two_nodes(pg: &TestPostgres, db: &str) -> (Arc<PgStore>, Arc<PgStore>) {
    let url = pg.create_database(db).await;
    let a = PgStore::open(&url, 4).await.expect("open node A");
    let b = PgStore::open(&url, 4).await.expect("open node B");
    (a, b)
}

/// Waits (at most `within`) for the subscription to be woken; returns the modseq it got.
async fn woken(
    sub: &mut mailkeep_store::notify::Subscription,
    within: Duration,
    what: &str,
) -> u64 {
    tokio::time::timeout(within, sub.receiver.changed())
        .await
        .unwrap_or_else(|_| panic!("{what}: not woken within {within:?}"))
        .expect("notifier alive");
    *sub.receiver.borrow_and_update()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_on_one_node_wakes_the_other() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let (a, b) = two_nodes(&pg, "wake").await;
    let user = a.create_user("n", "h").await.unwrap().id;
    let ib = a.get_mailbox(user, "INBOX").await.unwrap().unwrap().id;
    let other = a.create_mailbox(user, "other", None).await.unwrap().id;
    let mut sub = b.notifier().subscribe(ib);
    let mut other_sub = b.notifier().subscribe(other);
    sub.receiver.borrow_and_update();
    other_sub.receiver.borrow_and_update();

    let second = Duration::from_secs(1);
    let started = Instant::now();
    let (_, uids) = a.append(ib, vec![message("x", "y")]).await.unwrap();
    let got = woken(&mut sub, second, "APPEND on A").await;
    println!("APPEND on A heard on B after {:?}", started.elapsed());
    assert_eq!(got, b.status(ib).await.unwrap().highest_modseq);
    assert_eq!(
        b.messages(ib).await.unwrap().len(),
        1,
        "B reads what A wrote"
    );
    let seen = mailkeep_store::Flags {
        system: mailkeep_store::flags::SEEN,
        keywords: Vec::new(),
    };
    a.set_flags(ib, &uids, mailkeep_store::FlagOp::Add, &seen, None)
        .await
        .unwrap();
    woken(&mut sub, second, "flag change on A").await;
    a.expunge(ib, &uids).await.unwrap();
    let got = woken(&mut sub, second, "EXPUNGE on A").await;
    assert_eq!(got, a.status(ib).await.unwrap().highest_modseq);
    assert!(
        !other_sub.receiver.has_changed().unwrap(),
        "other mailboxes are not woken"
    );

    // Many changes in a burst wake B's sessions without a backlog: the last modseq arrives.
    for i in 0..20 {
        a.append(ib, vec![message("burst", &i.to_string())])
            .await
            .unwrap();
    }
    let want = a.status(ib).await.unwrap().highest_modseq;
    let deadline = Instant::now() + second;
    while *sub.receiver.borrow() != want {
        assert!(Instant::now() < deadline, "last of a burst not heard");
        let _ = tokio::time::timeout(Duration::from_millis(50), sub.receiver.changed()).await;
    }

    // The listening connection is lost: B connects again and wakes every watched mailbox,
    // since what changed meanwhile was not heard.
    let (client, conn) = tokio_postgres::connect(&pg.url("wake"), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    sub.receiver.borrow_and_update();
    let killed: i64 = client
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(killed >= 2, "listeners of A and B terminated: {killed}");
    // Written straight into the database: no node announces it.
    client
        .execute(
            "UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = $1",
            &[&ib],
        )
        .await
        .unwrap();
    let got = woken(&mut sub, Duration::from_secs(5), "after a reconnect").await;
    assert_eq!(got, b.status(ib).await.unwrap().highest_modseq);
    // And it hears changes again.
    a.append(ib, vec![message("again", "z")]).await.unwrap();
    woken(&mut sub, second, "APPEND after the reconnect").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uids_and_modseqs_are_unique_across_nodes() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let (a, b) = two_nodes(&pg, "unique").await;
    let user = a.create_user("c", "h").await.unwrap().id;
    let ib = a.get_mailbox(user, "INBOX").await.unwrap().unwrap().id;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
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
                // Flag changes in between, from both nodes, take modseqs too.
                let seen = mailkeep_store::Flags {
                    system: mailkeep_store::flags::SEEN,
                    keywords: Vec::new(),
                };
                s.set_flags(ib, &got, mailkeep_store::FlagOp::Add, &seen, None)
                    .await
                    .unwrap();
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let uids = t.await.unwrap();
        assert!(uids.windows(2).all(|w| w[0] < w[1]), "ascending per writer");
        all.extend(uids);
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 48, "every append got its own UID");
    let msgs = b.messages(ib).await.unwrap();
    assert_eq!(msgs.iter().map(|m| m.uid).collect::<Vec<_>>(), all);
    let st = a.status(ib).await.unwrap();
    assert_eq!(st.uidnext, all[47] + 1);
    assert_eq!(st.messages, 48);
    assert_eq!(st.unseen, 0);
    assert!(msgs.iter().all(|m| m.modseq <= st.highest_modseq));
    assert!(a.check().await.unwrap().is_empty());
}

#[tokio::test]
async fn migrations_run_once_and_newer_schemas_are_refused() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let url = pg.create_database("migrate").await;
    // Every migration, in order (whatever their number today).
    let all: Vec<i32> = mailkeep_store::postgres::schema::MIGRATIONS
        .iter()
        .map(|m| m.0)
        .collect();
    assert_eq!(all, (1..=all.len() as i32).collect::<Vec<_>>());
    assert_eq!(PgStore::migrate(&url).await.unwrap(), all);
    assert!(PgStore::migrate(&url).await.unwrap().is_empty());
    drop(PgStore::open(&url, 2).await.expect("open after migrate"));
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let versions: Vec<i32> = client
        .query("SELECT version FROM mailkeep_schema ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, all);
    client
        .execute("INSERT INTO mailkeep_schema(version) VALUES (999)", &[])
        .await
        .unwrap();
    match PgStore::open(&url, 2).await {
        Err(mailkeep_store::StoreError::Cannot(m)) => assert!(m.contains("999"), "{m}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a newer schema was opened"),
    }
}

#[tokio::test]
async fn check_finds_damage() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let url = pg.create_database("damage").await;
    let store = PgStore::open(&url, 2).await.unwrap();
    let a = store.create_user("a", "h").await.unwrap().id;
    let ib = store.get_mailbox(a, "INBOX").await.unwrap().unwrap().id;
    store
        .append(ib, vec![message("1", "one"), message("2", "two")])
        .await
        .unwrap();
    assert!(store.check().await.unwrap().is_empty());
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let other = zstd::encode_all(&b"not the message"[..], 3).unwrap();
    client
        .batch_execute(
            "INSERT INTO bodies(hash, size, data, envelope, bodystructure, body, parts)
                VALUES ('\\x00', 0, '', '', '', '', '');
             INSERT INTO search(hash, header, body) VALUES ('\\x00', '', '');
             UPDATE mailboxes SET unseen = 99;",
        )
        .await
        .unwrap();
    client
        .execute(
            "UPDATE bodies SET data = $1 WHERE hash = (SELECT hash FROM bodies ORDER BY hash DESC LIMIT 1)",
            &[&other],
        )
        .await
        .unwrap();
    let problems = store.check().await.unwrap().join("\n");
    for want in [
        "body 00: referenced by nothing",
        "STATUS counters disagree",
        "has 15 bytes, index says",
    ] {
        assert!(problems.contains(want), "expected {want:?} in:\n{problems}");
    }
}

/// Writers that share bodies (the same two messages appended in opposite orders, expunged
/// and let go of again) from two nodes: a batch takes its bodies in hash order, as letting go
/// of them does, so PostgreSQL finds no deadlock; everything completes and the check is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shared_bodies_under_concurrency() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let (a, b) = two_nodes(&pg, "shared").await;
    let url = pg.url("shared");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let user = s.create_user(&format!("u{i}"), "h").await.unwrap().id;
            let ib = s.get_mailbox(user, "INBOX").await.unwrap().unwrap().id;
            for round in 0..15 {
                let (x, y) = (message("x", "shared x"), message("y", "shared y"));
                let batch = if (i + round) % 2 == 0 {
                    vec![x, y]
                } else {
                    vec![y, x]
                };
                let (_, uids) = s.append(ib, batch).await.expect("append");
                s.expunge(ib, &uids).await.expect("expunge");
            }
            s.prune_tombstones(Duration::ZERO).await.expect("prune");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(a.check().await.unwrap().is_empty());
    // A backend reports its statistics when it ends: close both nodes' connections first.
    drop((a, b));
    let c = sql(&url).await;
    let mut deadlocks = -1;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        deadlocks = c
            .query_one(
                "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        if deadlocks > 0 {
            break;
        }
    }
    assert_eq!(deadlocks, 0, "PostgreSQL found deadlocks");
}

/// Mail stored under schema version 1 (before save dates, threads and previews were kept):
/// after the migration to version 2 it reports its INTERNALDATE as SAVEDATE, no THREADID
/// (NIL) and no kept preview, and the check finds nothing wrong.
#[tokio::test]
async fn mail_from_schema_1_after_the_migration() {
    use sha2::Digest;
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let url = pg.create_database("v1data").await;
    let (mut client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let tx = client.transaction().await.unwrap();
    tx.batch_execute(
        "CREATE TABLE mailkeep_schema(version INT PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .unwrap();
    tx.batch_execute(mailkeep_store::postgres::schema::MIGRATIONS[0].1)
        .await
        .unwrap();
    tx.execute("INSERT INTO mailkeep_schema(version) VALUES (1)", &[])
        .await
        .unwrap();
    let data = b"Message-ID: <old@x>\r\nSubject: old\r\n\r\nold body\r\n";
    let hash = sha2::Sha256::digest(data).to_vec();
    let packed = zstd::encode_all(&data[..], 3).unwrap();
    let size = data.len() as i64;
    tx.batch_execute("INSERT INTO users(name, password_hash) VALUES ('old', 'h');")
        .await
        .unwrap();
    tx.execute(
        "INSERT INTO mailboxes(user_id, name, uidvalidity, uidnext, highest_modseq, messages,
            unseen, size) SELECT id, 'INBOX', 7, 2, 1, 1, 1, $1 FROM users",
        &[&size],
    )
    .await
    .unwrap();
    tx.execute(
        "INSERT INTO bodies(hash, size, data, envelope, bodystructure, body, parts)
         VALUES ($1, $2, $3, '', '', '', '')",
        &[&hash, &size, &packed],
    )
    .await
    .unwrap();
    tx.execute(
        "INSERT INTO search(hash, header, body) VALUES ($1, '', '')",
        &[&hash],
    )
    .await
    .unwrap();
    tx.execute(
        "INSERT INTO messages(mailbox_id, uid, body_hash, size, flags, keywords, modseq,
            internal_date, date_offset)
         SELECT id, 1, $1, $2, 0, '{}', 1, 1500000000, 0 FROM mailboxes",
        &[&hash, &size],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let store = PgStore::open(&url, 2).await.expect("open migrates");
    let user = store.get_user("old").await.unwrap().unwrap().id;
    let ib = store.get_mailbox(user, "INBOX").await.unwrap().unwrap().id;
    let objs = store.message_objects(ib, &[1]).await.unwrap();
    assert_eq!(objs.len(), 1);
    let o = &objs[0].1;
    assert_eq!(o.save_date, 1_500_000_000, "INTERNALDATE stands in");
    assert_eq!(o.thread_id, None, "no THREADID for older mail");
    assert_eq!(o.email_id, format!("M{}", hex::encode(&hash[..12])));
    assert_eq!(store.preview(ib, 1).await.unwrap(), None);
    // New mail gets all three.
    let (_, uids) = store
        .append(ib, vec![with_message_id("<new@x>", "new body")])
        .await
        .unwrap();
    let n = store.message_objects(ib, &uids).await.unwrap();
    assert!(n[0].1.thread_id.is_some() && n[0].1.save_date > 1_500_000_000);
    assert_eq!(
        store.preview(ib, uids[0]).await.unwrap().as_deref(),
        Some("new body")
    );
    assert!(store.check().await.unwrap().is_empty());
}

/// A message with a Message-ID, analyzed as the session would.
fn with_message_id(id: &str, body: &str) -> mailkeep_store::NewMessage {
    let data = format!("Message-ID: {id}\r\nSubject: s\r\n\r\n{body}\r\n").into_bytes();
    mailkeep_store::NewMessage {
        parsed: mailkeep_store::ParsedInfo::from(mailkeep_mime::analyze(&data)),
        data: mailkeep_store::MessageBytes::Memory(Arc::new(data)),
        flags: mailkeep_store::Flags::default(),
        internal_date: 1_700_000_000,
        internal_date_offset: 0,
    }
}

/// REPLACE counts the quota net (RFC 8508 §3.4): at the message limit, replacing one
/// message by another is allowed, a plain APPEND is not; a refused REPLACE changes nothing.
#[tokio::test]
async fn replace_counts_the_quota_net() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let url = pg.create_database("replacequota").await;
    let store = PgStore::open(&url, 2).await.unwrap();
    store.set_default_quota(mailkeep_store::QuotaLimits {
        storage: None,
        messages: Some(2),
    });
    let user = store.create_user("q", "h").await.unwrap().id;
    let ib = store.get_mailbox(user, "INBOX").await.unwrap().unwrap().id;
    let (_, uids) = store
        .append(ib, vec![message("1", "one"), message("2", "two")])
        .await
        .unwrap();
    assert!(matches!(
        store.append(ib, vec![message("3", "three")]).await,
        Err(mailkeep_store::StoreError::OverQuota)
    ));
    let (_, new_uid) = store
        .replace(ib, uids[0], user, "INBOX", message("1b", "one again"))
        .await
        .expect("replace at the limit")
        .expect("INBOX exists");
    let uids_now: Vec<u32> = store
        .messages(ib)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(uids_now, [uids[1], new_uid]);
    assert!(store.check().await.unwrap().is_empty());
}

/// Deliveries on two nodes at once into one account whose messages name the same
/// Message-IDs in different orders (thread links written by both): none fails (a lost race
/// is run again), every message gets a THREADID, and a reply delivered afterwards joins its
/// parent's thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thread_links_under_concurrency() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let (a, b) = two_nodes(&pg, "threads").await;
    let user = a.create_user("t", "h").await.unwrap().id;
    let ib = a.get_mailbox(user, "INBOX").await.unwrap().unwrap().id;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            for round in 0..10 {
                let refs = if (i + round) % 2 == 0 {
                    "<p1@t> <p2@t> <p3@t>"
                } else {
                    "<p3@t> <p2@t> <p1@t>"
                };
                let m = with_headers(
                    &format!("Message-ID: <m{i}-{round}@t>\r\nReferences: {refs}\r\n"),
                    &format!("body {i} {round}"),
                );
                s.append(ib, vec![m]).await.expect("append");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let uids: Vec<u32> = a
        .messages(ib)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(uids.len(), 60);
    let objs = a.message_objects(ib, &uids).await.unwrap();
    assert!(objs.iter().all(|(_, o)| o.thread_id.is_some()));
    let (_, late) = b
        .append(
            ib,
            vec![with_headers("In-Reply-To: <m3-7@t>\r\n", "late reply")],
        )
        .await
        .unwrap();
    let mut parent = None;
    for (uid, o) in &objs {
        let bytes = a.message_bytes(ib, *uid).await.unwrap();
        if bytes.starts_with(b"Message-ID: <m3-7@t>") {
            parent = o.thread_id.clone();
        }
    }
    let late_obj = a.message_objects(ib, &late).await.unwrap();
    assert!(parent.is_some());
    assert_eq!(
        late_obj[0].1.thread_id, parent,
        "a reply joins its parent's thread"
    );
    assert!(a.check().await.unwrap().is_empty());
}

fn with_headers(headers: &str, body: &str) -> mailkeep_store::NewMessage {
    let data = format!("{headers}Subject: s\r\n\r\n{body}\r\n").into_bytes();
    mailkeep_store::NewMessage {
        parsed: mailkeep_store::ParsedInfo::from(mailkeep_mime::analyze(&data)),
        data: mailkeep_store::MessageBytes::Memory(Arc::new(data)),
        flags: mailkeep_store::Flags::default(),
        internal_date: 1_700_000_000,
        internal_date_offset: 0,
    }
}

// ---- bodies outside the database (`[store] bodies = "dir"`) ----

use mailkeep_store::postgres::{BodiesConfig, BodiesKind};

fn in_dir(dir: &std::path::Path) -> BodiesConfig {
    BodiesConfig {
        kind: BodiesKind::Dir,
        dir: Some(dir.to_path_buf()),
        s3: None,
    }
}

/// The body files under `dir` (not temporary ones).
fn body_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v = Vec::new();
    for shard in std::fs::read_dir(dir).unwrap() {
        for f in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if !p.file_name().unwrap().to_string_lossy().starts_with('.') {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

async fn sql(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// Every `body_files` row has its file, every file has its row, and no bytes are in the table.
async fn files_agree(url: &str, dir: &std::path::Path) -> usize {
    let c = sql(url).await;
    let rows: Vec<String> = c
        .query(
            "SELECT encode(hash, 'hex') FROM body_files WHERE store = 'dir' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let files: Vec<String> = body_files(dir)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(rows, files, "body_files rows and files on disk");
    let in_table: i64 = c
        .query_one("SELECT count(*) FROM bodies WHERE length(data) > 0", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(in_table, 0, "no body bytes in the table");
    files.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_with_bodies_in_a_directory() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let url = pg.create_database("conformance_dir").await;
    let dir = tempfile::tempdir().unwrap();
    let bodies = dir.path().join("bodies");
    let store = PgStore::open_with(&url, 8, &in_dir(&bodies))
        .await
        .expect("open");
    let started = Instant::now();
    conformance::run_all(store.clone()).await;
    println!(
        "conformance suite on PostgreSQL, bodies in a directory: {:?}",
        started.elapsed()
    );
    let n = files_agree(&url, &bodies).await;
    println!("{n} body files left by the suite");
    assert!(store.check().await.unwrap().is_empty());
}

/// Two nodes on one directory: a body is written once, read byte-exact by the other node,
/// and its file goes with its last reference, right after the commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bodies_in_a_directory_shared_by_two_nodes() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let url = pg.create_database("bodies_dir").await;
    let dir = tempfile::tempdir().unwrap();
    let bodies = dir.path().join("bodies");
    let a = PgStore::open_with(&url, 4, &in_dir(&bodies)).await.unwrap();
    let b = PgStore::open_with(&url, 4, &in_dir(&bodies)).await.unwrap();
    let user = a.create_user("d", "h").await.unwrap().id;
    let ib = a.get_mailbox(user, "INBOX").await.unwrap().unwrap().id;
    let other = b.create_mailbox(user, "other", None).await.unwrap().id;
    let (_, u1) = a.append(ib, vec![message("same", "shared")]).await.unwrap();
    let (_, u2) = b
        .append(other, vec![message("same", "shared")])
        .await
        .unwrap();
    let (_, u3) = b.append(ib, vec![message("own", "alone")]).await.unwrap();
    assert_eq!(files_agree(&url, &bodies).await, 2, "the shared body once");
    let want = b"Subject: same\r\nFrom: a@example.org\r\n\r\nshared\r\n";
    assert_eq!(&**b.message_bytes(ib, u1[0]).await.unwrap(), want);
    assert_eq!(&**a.message_bytes(other, u2[0]).await.unwrap(), want);

    // One reference goes: the file stays for the other.
    a.expunge(ib, &u1).await.unwrap();
    a.prune_tombstones(Duration::ZERO).await.unwrap();
    assert_eq!(files_agree(&url, &bodies).await, 2);
    // The last one goes: the file is deleted by the time the call returns.
    b.expunge(other, &u2).await.unwrap();
    b.prune_tombstones(Duration::ZERO).await.unwrap();
    assert_eq!(files_agree(&url, &bodies).await, 1);
    // Deleting a mailbox lets go of its bodies too.
    a.delete_mailbox(user, other).await.unwrap();
    a.expunge(ib, &u3).await.unwrap();
    // Held by the tombstone for the expunge grace period, then gone.
    assert_eq!(files_agree(&url, &bodies).await, 1);
    b.prune_tombstones(Duration::ZERO).await.unwrap();
    assert_eq!(files_agree(&url, &bodies).await, 0);
    assert!(a.check().await.unwrap().is_empty());
    let c = sql(&url).await;
    let queued: i64 = c
        .query_one("SELECT count(*) FROM body_deletions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(queued, 0, "the deletion queue is worked off");
}

/// What a crash leaves (a file written for a transaction that never committed; a deletion
/// queued but not done) is found: the orphan by `check` once an hour old, the queued
/// deletion by the next reap. A missing file is reported, never silently served.
#[tokio::test]
async fn bodies_in_a_directory_after_a_crash() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let url = pg.create_database("bodies_crash").await;
    let dir = tempfile::tempdir().unwrap();
    let bodies = dir.path().join("bodies");
    let store = PgStore::open_with(&url, 2, &in_dir(&bodies)).await.unwrap();
    let user = store.create_user("c", "h").await.unwrap().id;
    let ib = store.get_mailbox(user, "INBOX").await.unwrap().unwrap().id;
    let (_, uids) = store
        .append(ib, vec![message("1", "one"), message("2", "two")])
        .await
        .unwrap();
    assert!(store.check().await.unwrap().is_empty());

    // An orphan: written, its transaction never committed.
    let shard = bodies.join("ee");
    std::fs::create_dir_all(&shard).unwrap();
    let orphan = shard.join("ee".repeat(32));
    std::fs::write(&orphan, b"x").unwrap();
    assert!(
        store.check().await.unwrap().is_empty(),
        "young: may be in flight"
    );
    let old = std::time::SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&orphan)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let problems = store.check().await.unwrap().join("\n");
    assert!(
        problems.contains("referenced by nothing (removed)"),
        "{problems}"
    );
    assert!(!orphan.exists());
    assert!(store.check().await.unwrap().is_empty());

    // A queued deletion whose node stopped before doing it: the next reap does it.
    let c = sql(&url).await;
    let queue = |hash: String| {
        let c = &c;
        async move {
            c.execute(
                "INSERT INTO body_deletions(hash, store, queued_at)
                 VALUES (decode($1, 'hex'), 'dir', 0)",
                &[&hash],
            )
            .await
            .unwrap();
        }
    };
    let gone = bodies.join("dd").join("dd".repeat(32));
    std::fs::create_dir_all(gone.parent().unwrap()).unwrap();
    std::fs::write(&gone, b"x").unwrap();
    queue("dd".repeat(32)).await;
    // A queued body that is referenced again (a new row took it back) keeps its file.
    let victim = body_files(&bodies)
        .into_iter()
        .find(|p| *p != gone)
        .unwrap();
    queue(victim.file_name().unwrap().to_string_lossy().into_owned()).await;
    assert_eq!(store.reap_bodies().await.unwrap(), 1);
    assert!(!gone.exists());
    assert!(victim.exists());
    let queued: i64 = c
        .query_one("SELECT count(*) FROM body_deletions", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(queued, 0);
    assert!(store.check().await.unwrap().is_empty());

    // A missing file is a problem, and a read of it fails rather than returning other bytes.
    std::fs::remove_file(&victim).unwrap();
    let problems = store.check().await.unwrap().join("\n");
    assert!(
        problems.contains("missing from the dir store"),
        "{problems}"
    );
    let mut failed = 0;
    for uid in &uids {
        failed += usize::from(store.message_bytes(ib, *uid).await.is_err());
    }
    assert_eq!(failed, 1);
}

/// Writers on two nodes that share bodies, with the last reference going and coming back all
/// the time (append, expunge, prune, on both nodes at once): a file is never deleted under a
/// row that refers to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bodies_in_a_directory_under_concurrency() {
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let url = pg.create_database("bodies_race").await;
    let dir = tempfile::tempdir().unwrap();
    let bodies = dir.path().join("bodies");
    let a = PgStore::open_with(&url, 4, &in_dir(&bodies)).await.unwrap();
    let b = PgStore::open_with(&url, 4, &in_dir(&bodies)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let user = s.create_user(&format!("r{i}"), "h").await.unwrap().id;
            let ib = s.get_mailbox(user, "INBOX").await.unwrap().unwrap().id;
            for round in 0..12 {
                let (x, y) = (message("x", "shared x"), message("y", "shared y"));
                let batch = if (i + round) % 2 == 0 {
                    vec![x, y]
                } else {
                    vec![y, x]
                };
                let (_, uids) = s.append(ib, batch).await.expect("append");
                for uid in &uids {
                    let bytes = s.message_bytes(ib, *uid).await.expect("read back");
                    assert!(bytes.starts_with(b"Subject: "));
                }
                s.expunge(ib, &uids).await.expect("expunge");
                s.prune_tombstones(Duration::ZERO).await.expect("prune");
            }
            // One message of each kind stays.
            s.append(ib, vec![message("x", "shared x")]).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    a.reap_bodies().await.unwrap();
    assert_eq!(files_agree(&url, &bodies).await, 1);
    assert!(a.check().await.unwrap().is_empty());
}
