//! Timing of the calls a large mailbox makes hot. Ignored by default; run with
//! `cargo test -p mailkeep-store --release --test perf_sqlite -- --ignored --nocapture`.

use std::time::Instant;

use mailkeep_store::conformance::message;
use mailkeep_store::sqlite::SqliteStore;
use mailkeep_store::{FlagOp, Flags, MailStore, flags};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "timing; run explicitly"]
async fn messages_100k() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let user = store.create_user("p", "h").await.unwrap().id;
    let ib = store.get_mailbox(user, "INBOX").await.unwrap().unwrap().id;
    let t = Instant::now();
    for batch in 0..100 {
        let msgs = (0..1000)
            .map(|i| {
                let mut m = message("perf", &format!("body {}", (batch * 1000 + i) % 50));
                if i % 3 == 0 {
                    m.flags = Flags {
                        system: flags::SEEN,
                        keywords: vec!["$Label1".into()],
                    };
                }
                m
            })
            .collect();
        store.append(ib, msgs).await.unwrap();
    }
    println!("append 100k in batches of 1000: {:?}", t.elapsed());
    // The machine is shared: report the best of ten.
    let mut best = std::time::Duration::MAX;
    for _ in 0..10 {
        let t = Instant::now();
        let all = store.messages(ib).await.unwrap();
        best = best.min(t.elapsed());
        assert_eq!(all.len(), 100_000);
    }
    println!("messages(): 100000 in {best:?} (best of 10)");
    let t = Instant::now();
    let st = store.status(ib).await.unwrap();
    println!("status(): {:?} ({} unseen)", t.elapsed(), st.unseen);
    let uids: Vec<u32> = (1..=100_000).collect();
    let t = Instant::now();
    let r = store
        .set_flags(
            ib,
            &uids[..1000],
            FlagOp::Add,
            &Flags {
                system: flags::FLAGGED,
                keywords: vec![],
            },
            None,
        )
        .await
        .unwrap();
    println!("set_flags 1000: {:?}", t.elapsed());
    let t = Instant::now();
    let ch = store
        .changes_since(ib, r.updated[0].modseq - 1)
        .await
        .unwrap();
    println!("changes_since (1000 changed): {:?}", t.elapsed());
    assert_eq!(ch.changed.len(), 1000);
    let t = Instant::now();
    let found = store.search_text(ib, &uids, "body 7", true).await.unwrap();
    println!(
        "search_text over 100k (trigram): {} in {:?}",
        found.len(),
        t.elapsed()
    );
    let t = Instant::now();
    let found = store.search_text(ib, &uids, "y 7", true).await.unwrap();
    println!(
        "search_text 'y 7' (trigram): {} in {:?}",
        found.len(),
        t.elapsed()
    );
    let t = Instant::now();
    let found = store.search_text(ib, &uids, "7", true).await.unwrap();
    println!(
        "search_text '7' (scan): {} in {:?}",
        found.len(),
        t.elapsed()
    );
    let t = Instant::now();
    for &uid in &uids[..10_000] {
        store.parsed_info(ib, uid).await.unwrap();
    }
    println!("parsed_info x10000 (sequential): {:?}", t.elapsed());
    let t = Instant::now();
    for &uid in &uids[..10_000] {
        store.message_bytes(ib, uid).await.unwrap();
    }
    println!("message_bytes x10000 (sequential): {:?}", t.elapsed());
    let t = Instant::now();
    store.expunge(ib, &uids[..1000]).await.unwrap();
    println!("expunge 1000: {:?}", t.elapsed());
}
