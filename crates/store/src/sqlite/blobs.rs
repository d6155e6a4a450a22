//! Message bodies: content-addressed by SHA-256, zstd level 3, at `blobs/ab/cdef…`.
//!
//! A file is written to a temporary name, fsynced, renamed into place and its directory
//! fsynced before the index row referring to it is committed, so a committed message always
//! has its body on disk. Files are removed only by the writer thread, after the commit that
//! dropped the last reference (see `writer.rs`).

use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{MessageBytes, Result, StoreError};

pub(super) type Hash = [u8; 32];

const ZSTD_LEVEL: i32 = 3;

#[derive(Debug, Clone)]
pub(super) struct BlobDir {
    root: PathBuf,
}

impl BlobDir {
    /// Creates `root` and its 256 shard directories, so writes never create directories.
    pub(super) fn open(root: PathBuf) -> Result<BlobDir> {
        fs::create_dir_all(&root)?;
        let mut created = false;
        for i in 0..=255u8 {
            let shard = root.join(hex::encode([i]));
            if !shard.is_dir() {
                fs::create_dir(&shard)?;
                created = true;
            }
        }
        if created {
            sync_dir(&root)?;
            if let Some(parent) = root.parent() {
                sync_dir(parent)?;
            }
        }
        Ok(BlobDir { root })
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    pub(super) fn path(&self, hash: &Hash) -> PathBuf {
        let h = hex::encode(hash);
        self.root.join(&h[..2]).join(&h[2..])
    }

    pub(super) fn exists(&self, hash: &Hash) -> bool {
        self.path(hash).is_file()
    }

    /// Writes the compressed body unless a file for `hash` is already there. Durable on return.
    pub(super) fn store(&self, hash: &Hash, data: &[u8]) -> Result<()> {
        let path = self.path(hash);
        if path.is_file() {
            return Ok(());
        }
        let shard = path
            .parent()
            .ok_or_else(|| StoreError::Internal("blob path".into()))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(shard)?;
        let compressed = zstd::bulk::compress(data, ZSTD_LEVEL)?;
        tmp.write_all(&compressed)?;
        tmp.as_file().sync_all()?;
        tmp.persist(&path)
            .map_err(|e| StoreError::Internal(format!("blob rename: {e}")))?;
        sync_dir(shard)
    }

    /// Reads and decompresses a body; `size` is the recorded length (a capacity hint and check).
    pub(super) fn load(&self, hash: &Hash, size: u64) -> Result<Vec<u8>> {
        let compressed = match fs::read(self.path(hash)) {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(StoreError::Internal(format!(
                    "blob {} missing",
                    hex::encode(hash)
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 30));
        // Read at most one byte past the recorded size: a damaged file cannot balloon memory.
        let decoder = zstd::stream::read::Decoder::new(&compressed[..])?;
        decoder.take(size.saturating_add(1)).read_to_end(&mut out)?;
        if out.len() as u64 != size {
            return Err(StoreError::Internal(format!(
                "blob {} has {} bytes, index says {size}",
                hex::encode(hash),
                out.len()
            )));
        }
        Ok(out)
    }

    /// Removes a body file; a missing file is not an error.
    pub(super) fn remove(&self, hash: &Hash) -> Result<()> {
        match fs::remove_file(self.path(hash)) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

pub(super) fn sha256(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

pub(super) fn load_source(src: &MessageBytes) -> Result<Arc<Vec<u8>>> {
    match src {
        MessageBytes::Memory(b) => Ok(b.clone()),
        MessageBytes::File(p) => Ok(Arc::new(fs::read(p)?)),
    }
}

pub(super) fn hash_from_sql(v: &[u8]) -> Result<Hash> {
    v.try_into()
        .map_err(|_| StoreError::Internal("bad blob hash in index".into()))
}

fn sync_dir(dir: &Path) -> Result<()> {
    match File::open(dir)?.sync_all() {
        // Some file systems cannot fsync a directory (EINVAL); they order renames themselves.
        Err(e) if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Unsupported) => Ok(()),
        r => Ok(r?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_load_remove() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(dir.path().join("blobs")).unwrap();
        let data = b"Subject: hi\r\n\r\nbody\r\n".repeat(10);
        let h = sha256(&data);
        blobs.store(&h, &data).unwrap();
        blobs.store(&h, &data).unwrap(); // second store is a no-op
        let p = blobs.path(&h);
        assert!(p.starts_with(dir.path().join("blobs").join(&hex::encode(h)[..2])));
        assert_eq!(blobs.load(&h, data.len() as u64).unwrap(), data);
        assert!(blobs.load(&h, 3).is_err(), "size mismatch must be reported");
        blobs.remove(&h).unwrap();
        blobs.remove(&h).unwrap();
        assert!(blobs.load(&h, data.len() as u64).is_err());
    }
}
