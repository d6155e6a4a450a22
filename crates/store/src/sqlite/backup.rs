//! `mailkeep backup DIR` and `mailkeep restore DIR`: an online snapshot of a data directory.
//!
//! A backup directory has the layout of a data directory (`index.sqlite3`, `blobs/dict/*.dict`,
//! `blobs/ab/cdef…`) plus `manifest.toml`, so it can itself be opened or checked.
//!
//! # Consistency while the server runs
//! One read transaction on a fresh connection fixes the snapshot: the list of body files is
//! read in it, every file is hard-linked (or copied, when `DIR` is on another file system) into
//! `DIR`, and then SQLite's online backup copies the index *from that same transaction*
//! (`sqlite3_backup_step` reuses a read transaction the source connection already has open).
//! So the copied index refers to exactly the files copied. A body file can vanish between the
//! snapshot and its link only when the writer collected it after a commit dropped its last
//! reference (an expunged message's body is held for an hour, so that takes a mailbox or
//! account deletion): the backup then starts over with a new snapshot; what was already linked
//! is kept. The start-up sweep never races a backup: the backing-up process has the store
//! open, so it holds the shared lock on `store.lock` and no other process can sweep.
//!
//! # Incremental
//! Body files are named by the SHA-256 of their content and never change: a file already in
//! `DIR` under the same name (and size) is skipped. Files of an earlier backup the new snapshot
//! no longer refers to are removed once the new index is in place, so `DIR` always holds one
//! consistent snapshot. Dictionaries are kept (they are never removed from a data directory
//! either).
//!
//! This is the embedded backend's own business (a PostgreSQL backend is backed up by
//! `pg_dump`), so these are `SqliteStore` functions, not `MailStore` methods.

use rusqlite::{Connection, OpenFlags};
use std::collections::HashSet;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use super::blobs::{DICT_DIR, Hash, hash_from_sql};
use crate::{Result, StoreError};

/// The backup directory's format (`format` in the manifest).
pub const BACKUP_FORMAT: u32 = 1;
/// The manifest's file name in a backup directory.
pub const MANIFEST: &str = "manifest.toml";
const INDEX: &str = "index.sqlite3";
/// Snapshots taken before giving up when body files keep vanishing under the backup.
const ATTEMPTS: usize = 5;

/// What a backup did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    /// Messages (not expunged) in the snapshot.
    pub messages: u64,
    /// Distinct bodies in the snapshot (in the index or in files).
    pub bodies: u64,
    /// Body and dictionary files hard-linked into the backup.
    pub linked: u64,
    /// Body and dictionary files copied (another file system).
    pub copied: u64,
    /// Body and dictionary files already in the backup from an earlier run.
    pub skipped: u64,
    /// Files of an earlier backup the snapshot no longer refers to, removed.
    pub removed: u64,
    /// Bytes of the index copy.
    pub index_bytes: u64,
    /// Bytes of the files hard-linked (no data written).
    pub linked_bytes: u64,
    /// Bytes of the files copied.
    pub copied_bytes: u64,
    /// Snapshots taken (more than one when files vanished under the backup).
    pub attempts: u64,
    pub elapsed: Duration,
}

impl std::fmt::Display for BackupSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} messages, {} bodies; blob files: {} linked, {} copied, {} skipped, {} removed; \
             bytes: {} index, {} linked, {} copied; {:.2} s",
            self.messages,
            self.bodies,
            self.linked,
            self.copied,
            self.skipped,
            self.removed,
            self.index_bytes,
            self.linked_bytes,
            self.copied_bytes,
            self.elapsed.as_secs_f64()
        )?;
        if self.attempts > 1 {
            write!(
                f,
                " ({} snapshots: files vanished under the first)",
                self.attempts
            )?;
        }
        Ok(())
    }
}

/// What a restore did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RestoreSummary {
    pub messages: u64,
    pub linked: u64,
    pub copied: u64,
    pub index_bytes: u64,
    pub linked_bytes: u64,
    pub copied_bytes: u64,
    pub elapsed: Duration,
}

impl std::fmt::Display for RestoreSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} messages; blob files: {} linked, {} copied; bytes: {} index, {} linked, {} copied; \
             {:.2} s",
            self.messages,
            self.linked,
            self.copied,
            self.index_bytes,
            self.linked_bytes,
            self.copied_bytes,
            self.elapsed.as_secs_f64()
        )
    }
}

/// How a file got into place.
enum Placed {
    Linked(u64),
    Copied(u64),
    Skipped,
}

/// Backs up the data directory `data_dir` (whose store the caller has open) into `dir`.
pub(super) fn backup(data_dir: &Path, dir: &Path) -> Result<BackupSummary> {
    let started = Instant::now();
    let mut summary = BackupSummary::default();
    let live = data_dir.canonicalize()?;
    let target = match dir.canonicalize() {
        Ok(p) => p,
        Err(_) => std::path::absolute(dir)?,
    };
    if target.starts_with(&live) || live.starts_with(&target) {
        return Err(StoreError::Cannot(format!(
            "the backup directory {} must be outside the data directory {} (and not hold it)",
            dir.display(),
            data_dir.display()
        )));
    }
    fs::create_dir_all(dir.join("blobs").join(DICT_DIR))?;
    let src = super::schema::open_reader(&data_dir.join(INDEX))?;
    let src_blobs = data_dir.join("blobs");
    let dst_blobs = dir.join("blobs");
    let mut synced_dirs = HashSet::new();

    let (files, tmp_index) = loop {
        summary.attempts += 1;
        let tx = src.unchecked_transaction()?;
        // The first read fixes the snapshot for the rest of the transaction.
        let (messages, bodies): (i64, i64) = tx.query_row(
            "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM blobs)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let files = file_hashes(&tx)?;
        // Dictionaries after the snapshot is fixed: a dictionary file is durable before any
        // body packed with it is committed, so every one this snapshot needs is there now.
        // (They are never removed, so none can vanish.)
        for entry in fs::read_dir(src_blobs.join(DICT_DIR))? {
            let entry = entry?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let to = dst_blobs.join(DICT_DIR).join(&name);
            count(&mut summary, place(&entry.path(), &to)?);
            synced_dirs.insert(dst_blobs.join(DICT_DIR));
        }
        let mut vanished = false;
        for hash in &files {
            let (shard, name) = shard_name(hash);
            let to_dir = dst_blobs.join(&shard);
            fs::create_dir_all(&to_dir)?;
            match place(&src_blobs.join(&shard).join(&name), &to_dir.join(&name)) {
                Ok(p) => count(&mut summary, p),
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    vanished = true;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
            synced_dirs.insert(to_dir);
        }
        if vanished {
            tx.rollback()?;
            if summary.attempts as usize >= ATTEMPTS {
                return Err(StoreError::Internal(format!(
                    "body files kept vanishing during the backup ({ATTEMPTS} snapshots); \
                     try again when fewer mailboxes are being deleted"
                )));
            }
            continue;
        }
        summary.messages = messages as u64;
        summary.bodies = bodies as u64;
        // The index, from the same read transaction.
        let tmp_index = dir.join(format!(".{INDEX}.tmp"));
        let _ = fs::remove_file(&tmp_index);
        {
            let mut dst = Connection::open(&tmp_index)?;
            {
                use rusqlite::backup::{Backup, StepResult};
                let b = Backup::new(&tx, &mut dst)?;
                // All pages in one step, from the transaction's snapshot.
                loop {
                    match b.step(-1)? {
                        StepResult::Done => break,
                        StepResult::More => {}
                        _ => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            }
            // A standalone file: no -wal beside it once closed.
            dst.pragma_update(None, "journal_mode", "DELETE")?;
        }
        tx.rollback()?;
        fs::File::open(&tmp_index)?.sync_all()?;
        summary.index_bytes = fs::metadata(&tmp_index)?.len();
        break (files, tmp_index);
    };
    for d in &synced_dirs {
        sync_dir(d)?;
    }
    fs::rename(&tmp_index, dir.join(INDEX))?;
    sync_dir(dir)?;

    // Now the backup's index is the new snapshot: drop what only the old one referred to.
    let keep: HashSet<String> = files.iter().map(hex::encode).collect();
    for shard in fs::read_dir(&dst_blobs)? {
        let shard = shard?;
        if !shard.file_type()?.is_dir() || shard.file_name() == DICT_DIR {
            continue;
        }
        let prefix = shard.file_name().to_string_lossy().into_owned();
        for f in fs::read_dir(shard.path())? {
            let f = f?;
            let name = f.file_name().to_string_lossy().into_owned();
            if !keep.contains(&format!("{prefix}{name}")) {
                fs::remove_file(f.path())?;
                summary.removed += 1;
            }
        }
    }

    summary.elapsed = started.elapsed();
    write_manifest(dir, &summary)?;
    Ok(summary)
}

/// The hashes of the bodies kept in files (not in the index) in the current snapshot.
fn file_hashes(conn: &Connection) -> Result<Vec<Hash>> {
    let mut st = conn
        .prepare("SELECT hash FROM blobs WHERE id NOT IN (SELECT id FROM bodies) ORDER BY hash")?;
    let hashes = st
        .query_map([], |r| r.get::<_, Vec<u8>>(0))?
        .map(|h| hash_from_sql(&h?))
        .collect::<Result<Vec<_>>>()?;
    Ok(hashes)
}

fn shard_name(hash: &Hash) -> (String, String) {
    let h = hex::encode(hash);
    (h[..2].to_string(), h[2..].to_string())
}

fn count(summary: &mut BackupSummary, p: Placed) {
    match p {
        Placed::Linked(n) => {
            summary.linked += 1;
            summary.linked_bytes += n;
        }
        Placed::Copied(n) => {
            summary.copied += 1;
            summary.copied_bytes += n;
        }
        Placed::Skipped => summary.skipped += 1,
    }
}

/// Puts the immutable file `from` at `to`: nothing if a file of the same size is there, else a
/// hard link, else (another file system) a copy, fsynced. `NotFound` means `from` is gone.
fn place(from: &Path, to: &Path) -> std::io::Result<Placed> {
    let len = fs::metadata(from)?.len();
    match fs::metadata(to) {
        Ok(m) if m.is_file() && m.len() == len => return Ok(Placed::Skipped),
        Ok(_) => fs::remove_file(to)?,
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    match fs::hard_link(from, to) {
        Ok(()) => return Ok(Placed::Linked(len)),
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(e),
        Err(_) => {} // another file system, or links not allowed: copy
    }
    let dir = to.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    let mut src = fs::File::open(from)?;
    std::io::copy(&mut src, tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    tmp.persist(to).map_err(|e| e.error)?;
    Ok(Placed::Copied(len))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    match fs::File::open(dir)?.sync_all() {
        Err(e) if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Unsupported) => Ok(()),
        r => r,
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn write_manifest(dir: &Path, s: &BackupSummary) -> Result<()> {
    let text = format!(
        "# A mailkeep backup: `mailkeep restore` this directory into an empty data directory.\n\
         format = {BACKUP_FORMAT}\n\
         schema = {}\n\
         created = {}\n\
         messages = {}\n\
         bodies = {}\n\
         files = {}\n",
        super::schema::SCHEMA_VERSION,
        now_secs(),
        s.messages,
        s.bodies,
        s.linked + s.copied + s.skipped,
    );
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())?;
    tmp.as_file().sync_all()?;
    tmp.persist(dir.join(MANIFEST))
        .map_err(|e| StoreError::Internal(format!("writing the manifest: {}", e.error)))?;
    sync_dir(dir)?;
    Ok(())
}

/// `key = number` from the manifest.
fn manifest_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().parse().ok())?
    })
}

/// Copies the backup in `from` into the data directory `to`, which must be empty or absent.
/// The caller then opens the store there (migrating an older index) and checks it.
pub(super) fn restore(from: &Path, to: &Path) -> Result<RestoreSummary> {
    let started = Instant::now();
    let manifest = fs::read_to_string(from.join(MANIFEST)).map_err(|e| {
        StoreError::Cannot(format!(
            "{} is not a mailkeep backup (no {MANIFEST}: {e})",
            from.display()
        ))
    })?;
    let format = manifest_value(&manifest, "format").unwrap_or(0);
    if format == 0 || format > u64::from(BACKUP_FORMAT) {
        return Err(StoreError::Cannot(format!(
            "backup format {format} is not one this program reads (1..={BACKUP_FORMAT})"
        )));
    }
    let schema = manifest_value(&manifest, "schema").unwrap_or(0);
    if schema > super::schema::SCHEMA_VERSION as u64 {
        return Err(StoreError::Cannot(format!(
            "the backup's index has schema version {schema}, newer than this program's ({})",
            super::schema::SCHEMA_VERSION
        )));
    }
    if to.exists() && fs::read_dir(to)?.next().is_some() {
        return Err(StoreError::Cannot(format!(
            "{} is not empty: restore only into an empty or new data directory",
            to.display()
        )));
    }
    fs::create_dir_all(to.join("blobs").join(DICT_DIR))?;
    let mut s = RestoreSummary::default();
    let placed = |p: Placed, s: &mut RestoreSummary| match p {
        Placed::Linked(n) => {
            s.linked += 1;
            s.linked_bytes += n;
        }
        Placed::Copied(n) => {
            s.copied += 1;
            s.copied_bytes += n;
        }
        Placed::Skipped => {}
    };
    // The index is copied, never linked: the restored server writes it.
    let tmp = to.join(format!(".{INDEX}.tmp"));
    fs::copy(from.join(INDEX), &tmp)?;
    fs::File::open(&tmp)?.sync_all()?;
    s.index_bytes = fs::metadata(&tmp)?.len();
    for shard in fs::read_dir(from.join("blobs"))? {
        let shard = shard?;
        if !shard.file_type()?.is_dir() {
            continue;
        }
        let to_dir = to.join("blobs").join(shard.file_name());
        fs::create_dir_all(&to_dir)?;
        for f in fs::read_dir(shard.path())? {
            let f = f?;
            if f.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            placed(place(&f.path(), &to_dir.join(f.file_name()))?, &mut s);
        }
        sync_dir(&to_dir)?;
    }
    sync_dir(&to.join("blobs"))?;
    let conn = Connection::open_with_flags(&tmp, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    s.messages =
        conn.query_row("SELECT count(*) FROM messages", [], |r| r.get::<_, i64>(0))? as u64;
    drop(conn);
    fs::rename(&tmp, to.join(INDEX))?;
    sync_dir(to)?;
    s.elapsed = started.elapsed();
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::message;
    use crate::sqlite::SqliteStore;
    use crate::{FlagOp, Flags, MailStore, flags};
    use std::sync::Arc;

    /// A body of `n` pseudo-random letters: packs to more than the index keeps inline.
    fn noise(seed: u64, n: usize) -> String {
        let mut x = seed | 1;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 76 == 75 {
                    '\n'
                } else {
                    (b'A' + (x % 52) as u8 % 26 + if x & 64 == 0 { 0 } else { 32 }) as char
                }
            })
            .collect()
    }

    /// Every account's mailboxes, messages (bytes) and flags.
    async fn contents(store: &SqliteStore) -> Vec<(String, String, u32, Flags, Vec<u8>)> {
        let mut out = Vec::new();
        for u in store.list_users().await.unwrap() {
            for mb in store.list_mailboxes(u.id).await.unwrap() {
                for m in store.messages(mb.id).await.unwrap() {
                    let bytes = store.message_bytes(mb.id, m.uid).await.unwrap();
                    out.push((
                        u.name.clone(),
                        mb.name.clone(),
                        m.uid,
                        m.flags,
                        bytes.to_vec(),
                    ));
                }
            }
        }
        out
    }

    async fn backup_of(store: &Arc<SqliteStore>, dir: &Path) -> BackupSummary {
        let (store, dir) = (store.clone(), dir.to_path_buf());
        tokio::task::spawn_blocking(move || store.backup(&dir))
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn backup_restore_incremental() {
        let tmp = tempfile::tempdir().unwrap();
        let (data, bk, restored) = (
            tmp.path().join("data"),
            tmp.path().join("bk"),
            tmp.path().join("restored"),
        );
        let store = SqliteStore::open(&data).unwrap();
        let alice = store.create_user("alice", "hash-a").await.unwrap();
        let bob = store.create_user("bob", "hash-b").await.unwrap();
        let inbox = store.get_mailbox(alice.id, "INBOX").await.unwrap().unwrap();
        let bob_inbox = store.get_mailbox(bob.id, "INBOX").await.unwrap().unwrap();
        let mut msgs = vec![message("small", "hello")];
        for i in 0..3 {
            msgs.push(message(&format!("big {i}"), &noise(i, 100_000)));
        }
        store.append(inbox.id, msgs).await.unwrap();
        store
            .append(bob_inbox.id, vec![message("big b", &noise(9, 100_000))])
            .await
            .unwrap();
        let seen = Flags {
            system: flags::SEEN | flags::FLAGGED,
            keywords: vec!["$Label1".into()],
        };
        store
            .set_flags(inbox.id, &[1, 3], FlagOp::Add, &seen, None)
            .await
            .unwrap();

        let first = backup_of(&store, &bk).await;
        assert_eq!((first.messages, first.bodies), (5, 5));
        assert_eq!(
            (first.linked, first.copied, first.skipped),
            (4, 0, 0),
            "{first}"
        );
        assert!(bk.join(MANIFEST).is_file() && bk.join(INDEX).is_file());

        // Incremental: only the new body file is linked; an expunged-and-released one goes.
        store
            .append(inbox.id, vec![message("big 4", &noise(4, 100_000))])
            .await
            .unwrap();
        store.expunge(bob_inbox.id, &[1]).await.unwrap();
        store.release_expunged(Duration::ZERO).await.unwrap();
        let second = backup_of(&store, &bk).await;
        assert_eq!(
            (second.linked, second.skipped, second.removed),
            (1, 3, 1),
            "{second}"
        );
        assert_eq!(second.messages, 5);

        let before = contents(&store).await;
        SqliteStore::restore(&bk, &restored).unwrap();
        let again = SqliteStore::open(&restored).unwrap();
        assert_eq!(contents(&again).await, before);
        assert_eq!(again.check().await.unwrap(), Vec::<String>::new());
        // The backup directory itself is a data directory that checks.
        drop(again);
        let in_backup = SqliteStore::open(&bk).unwrap();
        assert_eq!(in_backup.check().await.unwrap(), Vec::<String>::new());
        drop(in_backup);

        // A backup into the data directory (or around it) is refused.
        for inside in [data.clone(), data.join("bk"), tmp.path().to_path_buf()] {
            let s2 = store.clone();
            let e = tokio::task::spawn_blocking(move || s2.backup(&inside))
                .await
                .unwrap()
                .unwrap_err();
            assert!(e.to_string().contains("must be outside"), "{e}");
        }
        assert!(!data.join("bk").exists());

        // Restore refuses a non-empty target and a directory that is no backup.
        let e = SqliteStore::restore(&bk, &restored).unwrap_err();
        assert!(e.to_string().contains("not empty"), "{e}");
        let e = SqliteStore::restore(&data, &tmp.path().join("x")).unwrap_err();
        assert!(e.to_string().contains("not a mailkeep backup"), "{e}");
    }

    /// Bodies packed with the installation's trained zstd dictionary: the backup carries the
    /// dictionary, and the restored store reads them.
    #[tokio::test]
    async fn dictionary_travels_with_the_backup() {
        let tmp = tempfile::tempdir().unwrap();
        let (data, bk, restored) = (
            tmp.path().join("data"),
            tmp.path().join("bk"),
            tmp.path().join("restored"),
        );
        let store = SqliteStore::open(&data).unwrap();
        let u = store.create_user("u", "h").await.unwrap();
        let inbox = store.get_mailbox(u.id, "INBOX").await.unwrap().unwrap();
        let dict_dir = data.join("blobs").join(DICT_DIR);
        let has_dict = || fs::read_dir(&dict_dir).unwrap().next().is_some();
        let mut i = 0;
        while !has_dict() {
            assert!(i < 2000, "no dictionary trained");
            let batch = (i..i + 50)
                .map(|n| message(&format!("note {n}"), &noise(n, 1500 + n as usize % 700)))
                .collect();
            store.append(inbox.id, batch).await.unwrap();
            i += 50;
            if i >= 300 {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        // Packed with the dictionary, some in files.
        let batch = (0..5)
            .map(|n| message("after", &noise(5000 + n, 80_000)))
            .chain((0..5).map(|n| message("after", &noise(6000 + n, 1000))))
            .collect();
        store.append(inbox.id, batch).await.unwrap();
        let s = backup_of(&store, &bk).await;
        assert!(
            fs::read_dir(bk.join("blobs").join(DICT_DIR))
                .unwrap()
                .next()
                .is_some(),
            "{s}"
        );
        let before = contents(&store).await;
        SqliteStore::restore(&bk, &restored).unwrap();
        let again = SqliteStore::open(&restored).unwrap();
        assert_eq!(again.check().await.unwrap(), Vec::<String>::new());
        assert_eq!(contents(&again).await, before);
    }

    /// Body files collected between the snapshot and their link make the backup take a new
    /// snapshot rather than write an index that refers to missing files.
    #[tokio::test]
    async fn vanished_file_retakes_the_snapshot() {
        let tmp = tempfile::tempdir().unwrap();
        let (data, bk) = (tmp.path().join("data"), tmp.path().join("bk"));
        let store = SqliteStore::open(&data).unwrap();
        let u = store.create_user("u", "h").await.unwrap();
        let inbox = store.get_mailbox(u.id, "INBOX").await.unwrap().unwrap();
        store
            .append(inbox.id, vec![message("big", &noise(1, 100_000))])
            .await
            .unwrap();
        // A file the index names but that is gone: every snapshot fails, then a clear error.
        let conn = Connection::open(data.join(INDEX)).unwrap();
        let hash: Vec<u8> = conn
            .query_row("SELECT hash FROM blobs", [], |r| r.get(0))
            .unwrap();
        let (shard, name) = shard_name(&hash_from_sql(&hash).unwrap());
        fs::remove_file(data.join("blobs").join(shard).join(name)).unwrap();
        let s2 = store.clone();
        let e = tokio::task::spawn_blocking(move || s2.backup(&bk))
            .await
            .unwrap()
            .unwrap_err();
        assert!(e.to_string().contains("vanishing"), "{e}");
    }

    /// What the consistency rests on: SQLite's backup copies the snapshot of a read
    /// transaction the source connection already has open, not the newest state.
    #[test]
    fn online_backup_copies_the_open_snapshot() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db");
        let w = Connection::open(&path).unwrap();
        w.pragma_update(None, "journal_mode", "WAL").unwrap();
        w.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        let r = Connection::open(&path).unwrap();
        let tx = r.unchecked_transaction().unwrap();
        let n: i64 = tx
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        w.execute("INSERT INTO t VALUES (2)", []).unwrap();
        let mut dst = Connection::open(tmp.path().join("copy")).unwrap();
        {
            let b = rusqlite::backup::Backup::new(&tx, &mut dst).unwrap();
            assert_eq!(b.step(-1).unwrap(), rusqlite::backup::StepResult::Done);
        }
        let copied: i64 = dst
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(copied, 1);
    }
}
