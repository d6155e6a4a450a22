//! Start-up sweep of body files no commit refers to.
//!
//! A body file is written (and fsynced) before the index change that refers to it is committed
//! (see `blobs.rs`). A process killed in between leaves the file behind, and a temporary file
//! (`.tmp-…`) if it was killed while writing one. Nothing would ever delete them: they cost disk
//! space and made `check()` fail after every crash.
//!
//! So at open, before the store serves anything, every file under `blobs/` that the index does
//! not know is removed, as is every temporary file. That is safe only while no other process
//! has the data directory open: another one may have written a body whose commit is still to
//! come. Every open store holds a shared `flock` on `data_dir/store.lock`; the sweep runs only
//! when an exclusive lock on it can be had (no other store open: a `mailkeep check` or
//! `mailkeep user` run beside the server skips it), and then only on files last modified
//! before the open itself began, so nothing this process writes later can be touched.

use rusqlite::Connection;
use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::Path;
use std::time::SystemTime;

use super::blobs::{BlobDir, DICT_DIR};
use crate::Result;

/// The lock file every open store holds shared.
const LOCK_FILE: &str = "store.lock";

/// What a sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Swept {
    pub files: u64,
    pub bytes: u64,
}

/// Takes the data directory's lock: exclusively if no other store has it open (then `true`:
/// this process may sweep), else shared. Call [`share`] after the sweep.
pub(super) fn lock(data_dir: &Path) -> Result<(File, bool)> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data_dir.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => Ok((file, true)),
        Err(fs::TryLockError::WouldBlock) => {
            if let Err(e) = file.lock_shared() {
                tracing::warn!(error = %e, "cannot lock the data directory");
            }
            Ok((file, false))
        }
        // A file system without locks: the store works, without the sweep.
        Err(fs::TryLockError::Error(e)) => {
            tracing::warn!(error = %e, "cannot lock the data directory; no start-up sweep");
            Ok((file, false))
        }
    }
}

/// Turns the exclusive lock into a shared one, so other stores (`mailkeep check`) can open.
pub(super) fn share(file: &File) {
    // flock converts the lock in place; another process may slip in between, which only
    // means it also sees an exclusive holder and skips its sweep.
    if let Err(e) = file.lock_shared() {
        tracing::warn!(error = %e, "cannot share the data directory lock");
    }
}

/// Removes body files the index does not refer to and temporary files, both only if last
/// modified before `before`. Runs before the writer starts, on its connection.
pub(super) fn sweep(conn: &Connection, blobs: &BlobDir, before: SystemTime) -> Result<Swept> {
    let mut swept = Swept::default();
    let mut known = conn.prepare("SELECT 1 FROM blobs WHERE hash = ?1")?;
    for shard in fs::read_dir(blobs.root())? {
        let shard = shard?;
        if !shard.file_type()?.is_dir() {
            continue;
        }
        let shard_name = shard.file_name().to_string_lossy().into_owned();
        let is_dict = shard_name == DICT_DIR;
        for f in fs::read_dir(shard.path())? {
            let f = f?;
            let name = f.file_name().to_string_lossy().into_owned();
            let meta = match f.metadata() {
                Ok(m) if m.is_file() => m,
                _ => continue,
            };
            if meta.modified().is_ok_and(|m| m > before) {
                continue;
            }
            let remove = if name.starts_with(".tmp-") {
                true
            } else if is_dict {
                false // dictionaries are never removed (see `blobs.rs`)
            } else {
                match hex::decode(format!("{shard_name}{name}")) {
                    Ok(hash) if hash.len() == 32 => !known.exists([&hash[..]])?,
                    _ => {
                        tracing::warn!(file = %f.path().display(), "not a body file; left alone");
                        false
                    }
                }
            };
            if remove {
                match fs::remove_file(f.path()) {
                    Ok(()) => {
                        swept.files += 1;
                        swept.bytes += meta.len();
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(swept)
}
