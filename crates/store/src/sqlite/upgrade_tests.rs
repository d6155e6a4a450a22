//! Upgrades of data directories written by earlier versions (`tests/fixtures/datadir-v<N>/`,
//! made by `tests/fixtures/make_datadir.py` with a build of each version), and the refusal of
//! a newer one.

use rusqlite::Connection;
use std::path::{Path, PathBuf};

use super::SqliteStore;
use super::schema::{SCHEMA_VERSION, backup_path};
use crate::{MailStore, flags};

fn fixture(version: i64) -> PathBuf {
    fixture_named(&format!("datadir-v{version}"))
}

fn fixture_named(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn user_version(index: &Path) -> i64 {
    Connection::open(index)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

fn flag_names(f: &crate::Flags) -> Vec<String> {
    let mut names: Vec<String> = [
        (flags::SEEN, "\\Seen"),
        (flags::ANSWERED, "\\Answered"),
        (flags::FLAGGED, "\\Flagged"),
        (flags::DELETED, "\\Deleted"),
        (flags::DRAFT, "\\Draft"),
    ]
    .iter()
    .filter(|(bit, _)| f.system & bit != 0)
    .map(|(_, n)| n.to_string())
    .chain(f.keywords.iter().cloned())
    .collect();
    names.sort();
    names
}

/// Opens a copy of the fixture of `version` with this code: upgraded in place, the old index
/// kept as `index.sqlite3.v<N>.bak`, `check` clean, every message as a client saw it before.
async fn upgrade_fixture(version: i64) {
    upgrade_fixture_at(&fixture(version), version).await;
}

/// `upgrade_fixture` of the fixture in `dir`, of format `version`. Where the fixture has
/// `objects.txt` (THREADID, SAVEDATE and PREVIEW as a client saw them), those too.
async fn upgrade_fixture_at(dir: &Path, version: i64) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(&dir.join("data"), &data);
    let expected = std::fs::read_to_string(dir.join("expected.txt")).unwrap();
    let index = data.join("index.sqlite3");
    assert_eq!(user_version(&index), version);

    let store = SqliteStore::open(&data).unwrap();
    assert_eq!(user_version(&index), SCHEMA_VERSION);
    let bak = backup_path(&index, version);
    if version < SCHEMA_VERSION {
        assert_eq!(user_version(&bak), version, "{}", bak.display());
    } else {
        assert!(!bak.exists());
    }
    assert_eq!(store.check().await.unwrap(), Vec::<String>::new());

    let user = store.get_user("alice").await.unwrap().expect("alice");
    let mut seen = 0;
    for line in expected.lines().filter(|l| !l.starts_with('#')) {
        let w: Vec<&str> = line.split(' ').collect();
        if w.len() < 4 {
            continue;
        }
        let (mailbox, uid, size, sha) = (w[0], w[1].parse::<u32>().unwrap(), w[2], w[3]);
        let mb = store.get_mailbox(user.id, mailbox).await.unwrap().unwrap();
        let meta = store.messages(mb.id).await.unwrap();
        let m = meta.iter().find(|m| m.uid == uid).expect("message");
        assert_eq!(m.size.to_string(), size);
        let mut want: Vec<String> = w[4..].iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(flag_names(&m.flags), want, "{mailbox} {uid}");
        let bytes = store.message_bytes(mb.id, uid).await.unwrap();
        assert_eq!(hex::encode(super::blobs::sha256(&bytes)), sha);
        seen += 1;
    }
    assert_eq!(seen, 5);
    if let Ok(objects) = std::fs::read_to_string(dir.join("objects.txt")) {
        let mut seen = 0;
        for line in objects.lines().filter(|l| !l.starts_with('#')) {
            let w: Vec<&str> = line.splitn(5, ' ').collect();
            let (mailbox, uid) = (w[0], w[1].parse::<u32>().unwrap());
            let mb = store.get_mailbox(user.id, mailbox).await.unwrap().unwrap();
            let got = store.message_objects(mb.id, &[uid]).await.unwrap();
            let o = &got.iter().find(|(u, _)| *u == uid).expect("objects").1;
            assert_eq!(o.thread_id.as_deref().unwrap_or("NIL"), w[2], "{line}");
            assert_eq!(o.save_date.to_string(), w[3], "{line}");
            let preview = store.preview(mb.id, uid).await.unwrap();
            assert_eq!(preview.as_deref(), Some(w[4]), "{line}");
            seen += 1;
        }
        assert_eq!(seen, 5);
    }
    // Search works on the upgraded index (the word index was rebuilt or carried over).
    let inbox = store.get_mailbox(user.id, "INBOX").await.unwrap().unwrap();
    let hits = store
        .search_text(inbox.id, &[1, 2, 3, 5], "noon", false)
        .await
        .unwrap();
    assert_eq!(hits, [1]);
    let hits = store
        .search_text(inbox.id, &[1, 2, 3, 5], "Quarterly", false)
        .await
        .unwrap();
    assert_eq!(hits, [2]);
    drop(store);
    // A second open finds nothing to do and leaves the backup alone.
    let store = SqliteStore::open(&data).unwrap();
    assert_eq!(store.check().await.unwrap(), Vec::<String>::new());
}

#[tokio::test]
async fn upgrades_v1() {
    upgrade_fixture(1).await;
}

#[tokio::test]
async fn upgrades_v2() {
    upgrade_fixture(2).await;
}

#[tokio::test]
async fn upgrades_v3() {
    upgrade_fixture(3).await;
}

#[tokio::test]
async fn upgrades_v4() {
    upgrade_fixture(4).await;
}

/// Version 4 as its last release wrote it, with the tables of THREADID, SAVEDATE and PREVIEW
/// that version 5 moved into the rows of `messages` and `blobs`.
#[tokio::test]
async fn upgrades_v4_with_objects() {
    upgrade_fixture_at(&fixture_named("datadir-v4-objects"), 4).await;
}

#[tokio::test]
async fn opens_v5() {
    upgrade_fixture(5).await;
}

/// An index from a newer version is refused with a message saying so, and left unchanged.
#[tokio::test]
async fn refuses_a_newer_index() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(&fixture(SCHEMA_VERSION).join("data"), &data);
    let index = data.join("index.sqlite3");
    Connection::open(&index)
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    let before = std::fs::read(&index).unwrap();
    let e = SqliteStore::open(&data).err().expect("refused").to_string();
    assert!(
        e.contains(&format!("version {}", SCHEMA_VERSION + 1))
            && e.contains("newer than this mailkeep knows"),
        "{e}"
    );
    assert_eq!(std::fs::read(&index).unwrap(), before);
}

/// An upgrade that fails part way leaves the index exactly as it was (one transaction), with
/// the copy made before it.
#[tokio::test]
async fn failed_upgrade_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    copy_dir(&fixture(3).join("data"), &data);
    let index = data.join("index.sqlite3");
    // Break a late step (the vocabulary rebuild reads the body index, whose structure record
    // this spoils) after an early one (the rename of the old vocabulary) has run.
    Connection::open(&index)
        .unwrap()
        .execute_batch("UPDATE search_body_data SET block = x'0501020304ffffffff' WHERE id = 10")
        .unwrap();
    assert!(SqliteStore::open(&data).is_err());
    let conn = Connection::open(&index).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE name LIKE 'search_vocab%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert_eq!((version, tables), (3, vec!["search_vocab".to_string()]));
    assert_eq!(user_version(&backup_path(&index, 3)), 3);
}
