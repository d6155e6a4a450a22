//! The embedded backend's quota guarantees: concurrent deliveries cannot overshoot a limit,
//! and the usage counters are checked by `check` and recomputed at open.

use mailkeep_store::conformance::message;
use mailkeep_store::sqlite::SqliteStore;
use mailkeep_store::{MailStore, QuotaLimits, QuotaSetting, StoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_stop_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let user = store.create_user("c", "h").await.unwrap().id;
    let ib = store.get_mailbox(user, "INBOX").await.unwrap().unwrap().id;
    store.set_default_quota(QuotaLimits {
        storage: None,
        messages: Some(10),
    });
    let mut tasks = Vec::new();
    for i in 0..32 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.append(ib, vec![message("t", &format!("body {i}"))]).await
        }));
    }
    let (mut ok, mut over) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::OverQuota) => over += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((ok, over), (10, 22));
    assert_eq!(store.messages(ib).await.unwrap().len(), 10);
    assert_eq!(store.quota(user).await.unwrap().messages_used, 10);
    assert!(store.check().await.unwrap().is_empty());
}

#[tokio::test]
async fn usage_is_checked_and_recomputed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let user = store.create_user("a", "h").await.unwrap().id;
    let ib = store.get_mailbox(user, "INBOX").await.unwrap().unwrap().id;
    store
        .append(ib, vec![message("a", "one"), message("b", "two")])
        .await
        .unwrap();
    store
        .set_quota(
            "a",
            Some(QuotaSetting::Limit(1 << 20)),
            Some(QuotaSetting::Unlimited),
        )
        .await
        .unwrap();
    let want = store.quota(user).await.unwrap();
    assert_eq!(want.messages_used, 2);
    let conn = rusqlite::Connection::open(dir.path().join("index.sqlite3")).unwrap();
    conn.execute_batch("UPDATE quota_usage SET storage = 7, messages = 99")
        .unwrap();
    let problems = store.check().await.unwrap().join("\n");
    assert!(problems.contains("quota usage of a"), "{problems}");
    drop(store);
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(
        store.quota(user).await.unwrap(),
        want,
        "recomputed, settings kept"
    );
    assert!(store.check().await.unwrap().is_empty());
}
