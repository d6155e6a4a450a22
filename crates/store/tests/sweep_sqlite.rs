//! The start-up sweep: body files no commit refers to and temporary files (what a crash leaves)
//! are removed when the store opens alone, so `check()` passes after a crash.

use mailkeep_store::MailStore;
use mailkeep_store::sqlite::SqliteStore;

mod common;
use common::{blob_files, file_message};

/// Files as a process killed between writing bodies and committing them leaves them.
fn plant_strays(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let blobs = dir.join("blobs");
    std::fs::create_dir_all(blobs.join("00")).unwrap();
    std::fs::create_dir_all(blobs.join("ff")).unwrap();
    let strays = vec![
        blobs.join("00").join("1".repeat(62)),
        blobs.join("ff").join("a".repeat(62)),
        blobs.join("ff").join(".tmp-AbCdEf"),
        blobs.join("dict").join(".tmp-XyZ123"),
    ];
    for p in &strays {
        std::fs::write(p, vec![7u8; 100_000]).unwrap();
    }
    strays
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_sweeps_unreferenced_files() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        let a = store.create_user("a", "h").await.unwrap().id;
        let ib = store.get_mailbox(a, "INBOX").await.unwrap().unwrap().id;
        store
            .append(ib, vec![file_message("1", 1), file_message("2", 2)])
            .await
            .unwrap();
    }
    let kept = blob_files(dir.path());
    assert_eq!(kept.len(), 2);
    let strays = plant_strays(dir.path());
    // A file that is not named like a body is not ours to judge: left alone.
    let odd = dir.path().join("blobs/00/notes.txt");
    std::fs::write(&odd, b"x").unwrap();

    let store = SqliteStore::open(dir.path()).unwrap();
    for p in &strays {
        assert!(!p.exists(), "{} was not swept", p.display());
    }
    assert!(odd.exists());
    std::fs::remove_file(&odd).unwrap();
    let mut now = blob_files(dir.path());
    now.sort();
    let mut kept = kept;
    kept.sort();
    assert_eq!(now, kept, "referenced body files are kept");
    assert!(store.check().await.unwrap().is_empty());
    let a = store.get_user("a").await.unwrap().unwrap().id;
    let ib = store.get_mailbox(a, "INBOX").await.unwrap().unwrap().id;
    for uid in [1, 2] {
        store.message_bytes(ib, uid).await.unwrap();
    }
}

/// A second store opened beside a running one (`mailkeep check` next to the server) must not
/// sweep: the running one may have written a body whose commit is still to come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sweep_while_another_store_has_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = SqliteStore::open(dir.path()).unwrap();
    let strays = plant_strays(dir.path());
    let second = SqliteStore::open(dir.path()).unwrap();
    for p in &strays {
        assert!(
            p.exists(),
            "{} was swept under a running store",
            p.display()
        );
    }
    drop(second);
    drop(first);
    let _third = SqliteStore::open(dir.path()).unwrap();
    for p in &strays {
        assert!(!p.exists(), "{} was not swept once alone", p.display());
    }
}
