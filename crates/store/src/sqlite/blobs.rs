//! Message bodies: content-addressed by SHA-256, packed with zstd level 3. Small packed bodies
//! are kept in the index (`bodies` table, see `prepare::INLINE_MAX`); big ones are files at
//! `blobs/ab/cdef…`. This module packs and unpacks both kinds and owns the files.
//!
//! A file is written to a temporary name, fsynced, renamed into place and its directory
//! fsynced before the index row referring to it is committed, so a committed message always
//! has its body on disk. Files are removed only by the writer thread, after the commit that
//! dropped the last reference (see `writer.rs`).
//!
//! Dictionaries: small messages compress poorly on their own, since what they share (Received
//! chains, MIME boilerplate) is not in a fresh zstd window. So while no dictionary exists,
//! `store` keeps the first bytes of the bodies it writes as samples; once there are enough, a
//! background thread trains a zstd dictionary from them once, writes it to
//! `blobs/dict/<seq>.dict` (same temp/fsync/rename/fsync dance as bodies) and only then
//! makes it the one new bodies are compressed with, so no body ever depends on a dictionary
//! that is not durable. The frame of each body names its dictionary by zstd dictionary id;
//! `load` picks the matching one, and bodies written without one load as before. All
//! dictionary files are loaded at open, the highest `<seq>` is current; a dictionary file that
//! cannot be read is an error there, because bodies need it. Dictionaries are never removed.
//! The hash, and so the file name, is always of the uncompressed bytes.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use zstd::dict::{CDict, DDict, DecoderDictionary, EncoderDictionary};

use crate::{MessageBytes, Result, StoreError};

pub(super) type Hash = [u8; 32];

const ZSTD_LEVEL: i32 = 3;

/// Subdirectory of the blob root holding dictionaries; not a shard.
pub(super) const DICT_DIR: &str = "dict";

/// When and how the dictionary is trained (`BlobDir::open` uses the defaults).
#[derive(Debug, Clone, Copy)]
pub(super) struct DictPolicy {
    /// Bodies to sample before training.
    pub min_samples: usize,
    /// Bytes kept from the start of each body: headers are where messages look alike.
    pub sample_len: usize,
    /// Sample memory cap; reaching it ends sampling early (training starts with what is there).
    pub max_sample_bytes: usize,
    /// Largest dictionary to train.
    pub max_dict_size: usize,
}

impl Default for DictPolicy {
    fn default() -> Self {
        DictPolicy {
            // Measured on generated mail: a dictionary from 200 bodies packs within 0.3% of
            // one from 1,000, and the bodies before it are packed without one.
            min_samples: 256,
            sample_len: 16 << 10,
            max_sample_bytes: 8 << 20,
            max_dict_size: 64 << 10,
        }
    }
}

/// Cheap to clone: all clones share the dictionaries and the sample buffer.
#[derive(Clone)]
pub(super) struct BlobDir {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    policy: DictPolicy,
    /// Highest dictionary file number seen at open; a new one is written after it.
    last_seq: u64,
    /// What new bodies are compressed with; `None` until a dictionary exists.
    current: RwLock<Option<Arc<CurrentDict>>>,
    /// Every dictionary on disk, by zstd dictionary id, for reading bodies.
    decoders: RwLock<HashMap<u32, Arc<DecoderDictionary<'static>>>>,
    /// The same dictionaries' bytes, for streams (see `stream`).
    raw: RwLock<HashMap<u32, Arc<[u8]>>>,
    sampling: Mutex<Sampling>,
}

struct CurrentDict {
    id: u32,
    encoder: EncoderDictionary<'static>,
}

thread_local! {
    // One zstd context per thread, kept: creating one per body (and its ~1 MiB workspace at
    // level 3) showed in the APPEND profile. The dictionary is passed per call, so a context
    // never outlives or pins one.
    static COMPRESSOR: std::cell::RefCell<zstd::zstd_safe::CCtx<'static>> =
        std::cell::RefCell::new(zstd::zstd_safe::CCtx::create());
    // The same for reading bodies back (a decompression context is ~100 KiB).
    static DECOMPRESSOR: std::cell::RefCell<zstd::zstd_safe::DCtx<'static>> =
        std::cell::RefCell::new(zstd::zstd_safe::DCtx::create());
}

/// Bodies up to this size are unpacked in one call into a buffer of their recorded size.
const WHOLE_MAX: usize = 1 << 30;

enum Sampling {
    /// No dictionary yet: the starts of written bodies, and their total size.
    Collecting { samples: Vec<Vec<u8>>, bytes: usize },
    /// A dictionary exists, is being trained, or training failed in this process.
    Off,
}

/// A dictionary file's content, checked and prepared for both directions.
struct Prepared {
    id: u32,
    raw: Arc<[u8]>,
    encoder: EncoderDictionary<'static>,
    decoder: DecoderDictionary<'static>,
}

impl std::fmt::Debug for BlobDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobDir")
            .field("root", &self.inner.root)
            .field("dictionary", &self.dictionary_id())
            .finish()
    }
}

impl BlobDir {
    pub(super) fn open(root: PathBuf) -> Result<BlobDir> {
        BlobDir::open_with(root, DictPolicy::default())
    }

    /// Creates the directories if needed and loads every dictionary; the highest is current.
    pub(super) fn open_with(root: PathBuf, policy: DictPolicy) -> Result<BlobDir> {
        create_dirs(&root)?;
        let dicts = dict::read_dictionaries(&root.join(DICT_DIR))?;
        let last_seq = dicts.last().map_or(0, |(seq, _)| *seq);
        let mut decoders = HashMap::new();
        let mut raw = HashMap::new();
        let mut current = None;
        for (_, p) in dicts {
            decoders.insert(p.id, Arc::new(p.decoder));
            raw.insert(p.id, p.raw);
            current = Some(Arc::new(CurrentDict {
                id: p.id,
                encoder: p.encoder,
            }));
        }
        let sampling = match current {
            Some(_) => Sampling::Off,
            None => Sampling::Collecting {
                samples: Vec::new(),
                bytes: 0,
            },
        };
        Ok(BlobDir {
            inner: Arc::new(Inner {
                root,
                policy,
                last_seq,
                current: RwLock::new(current),
                decoders: RwLock::new(decoders),
                raw: RwLock::new(raw),
                sampling: Mutex::new(sampling),
            }),
        })
    }

    pub(super) fn root(&self) -> &Path {
        &self.inner.root
    }

    pub(super) fn path(&self, hash: &Hash) -> PathBuf {
        let h = hex::encode(hash);
        self.inner.root.join(&h[..2]).join(&h[2..])
    }

    pub(super) fn exists(&self, hash: &Hash) -> bool {
        self.path(hash).is_file()
    }

    /// Writes the compressed body unless a file for `hash` is already there. Durable on return.
    pub(super) fn store(&self, hash: &Hash, data: &[u8]) -> Result<()> {
        if self.exists(hash) {
            return Ok(());
        }
        let packed = self.pack(data)?;
        self.write(hash, &packed)
    }

    /// Compresses a new body (with the current dictionary, if any) and keeps a sample of it
    /// while no dictionary exists. The result goes to `write` or inline into the index.
    pub(super) fn pack(&self, data: &[u8]) -> Result<Vec<u8>> {
        let packed = self.compress(data)?;
        self.sample(data);
        Ok(packed)
    }

    /// Writes a packed body as the file for `hash` unless it is there. Durable on return.
    pub(super) fn write(&self, hash: &Hash, packed: &[u8]) -> Result<()> {
        let path = self.path(hash);
        if path.is_file() {
            return Ok(());
        }
        let shard = path
            .parent()
            .ok_or_else(|| StoreError::Internal("blob path".into()))?;
        if !shard.is_dir() {
            match fs::create_dir(shard) {
                Err(e) if e.kind() != ErrorKind::AlreadyExists => return Err(e.into()),
                _ => sync_dir(&self.inner.root)?,
            }
        }
        write_synced_temp(shard, packed)?
            .persist(&path)
            .map_err(|e| StoreError::Internal(format!("blob rename: {e}")))?;
        sync_dir(shard)
    }

    /// Reads and decompresses a body file; `size` is the recorded length (a capacity hint and
    /// check).
    pub(super) fn load(&self, hash: &Hash, size: u64) -> Result<Vec<u8>> {
        let compressed = fs::read(self.path(hash)).map_err(|e| file_error(hash, e))?;
        self.unpack(hash, &compressed, size)
    }

    /// Decompresses a packed body of `hash` (from its file or from the index).
    pub(super) fn unpack(&self, hash: &Hash, compressed: &[u8], size: u64) -> Result<Vec<u8>> {
        let dict = self.frame_decoder(hash, compressed)?;
        let out = match usize::try_from(size) {
            // In one call, into a buffer of the recorded size, with this thread's context:
            // creating a context per body was 4% of the stress mix and 14% of the session
            // fuzzer. A frame that holds more than `size` bytes fails here.
            Ok(len) if len <= WHOLE_MAX => DECOMPRESSOR.with_borrow_mut(|d| {
                let mut out = Vec::with_capacity(len);
                let done = match &dict {
                    None => d.decompress(&mut out, compressed),
                    Some(dict) => d.decompress_using_ddict(&mut out, compressed, dict.as_ddict()),
                };
                done.map(|_| out).map_err(|code| {
                    StoreError::Internal(format!(
                        "blob {}: {}",
                        hex::encode(hash),
                        zstd::zstd_safe::get_error_name(code)
                    ))
                })
            })?,
            // A recorded size this large is damage or a giant: read as a stream, at most one
            // byte past the recorded size, so damaged data cannot balloon memory.
            _ => {
                let mut out = Vec::with_capacity(WHOLE_MAX);
                let limit = size.saturating_add(1);
                match &dict {
                    None => zstd::stream::read::Decoder::new(compressed)?
                        .take(limit)
                        .read_to_end(&mut out)?,
                    Some(dict) => {
                        zstd::stream::read::Decoder::with_prepared_dictionary(compressed, dict)?
                            .take(limit)
                            .read_to_end(&mut out)?
                    }
                };
                out
            }
        };
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

    /// The zstd id of the dictionary new bodies are compressed with.
    fn dictionary_id(&self) -> Option<u32> {
        read(&self.inner.current).as_ref().map(|d| d.id)
    }

    /// The prepared dictionary the zstd frame starting with `frame` was packed with, if any.
    fn frame_decoder(
        &self,
        hash: &Hash,
        frame: &[u8],
    ) -> Result<Option<Arc<DecoderDictionary<'static>>>> {
        match zstd::zstd_safe::get_dict_id_from_frame(frame) {
            None => Ok(None),
            Some(id) => self
                .decoder(id.get())
                .map(Some)
                .ok_or_else(|| no_dictionary(hash, id.get())),
        }
    }

    fn decoder(&self, id: u32) -> Option<Arc<DecoderDictionary<'static>>> {
        let found = read(&self.inner.decoders).get(&id).cloned();
        found.or_else(|| {
            self.load_new_dictionaries();
            read(&self.inner.decoders).get(&id).cloned()
        })
    }

    /// The bytes of dictionary `id` (for streams), loading new dictionary files if needed.
    pub(super) fn raw_dictionary(&self, id: u32) -> Option<Arc<[u8]>> {
        let found = read(&self.inner.raw).get(&id).cloned();
        found.or_else(|| {
            self.load_new_dictionaries();
            read(&self.inner.raw).get(&id).cloned()
        })
    }

    fn compress(&self, data: &[u8]) -> Result<Vec<u8>> {
        // Cloned out of the lock, so installing a dictionary never waits for a compression.
        let current = read(&self.inner.current).clone();
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(data.len()));
        COMPRESSOR
            .with(|cctx| {
                let mut cctx = cctx.borrow_mut();
                match &current {
                    Some(d) => cctx.compress_using_cdict(&mut out, data, d.encoder.as_cdict()),
                    None => cctx.compress(&mut out, data, ZSTD_LEVEL),
                }
            })
            .map_err(|code| {
                std::io::Error::other(zstd::zstd_safe::get_error_name(code).to_string())
            })?;
        Ok(out)
    }
}

/// Creates `root` and `dict/`; shard directories come with their first file.
fn create_dirs(root: &Path) -> Result<()> {
    fs::create_dir_all(root)?;
    // Shard directories are made by the first file written there: most bodies live in the
    // index, and 256 empty directories are 1 MiB for nothing.
    let dict = root.join(DICT_DIR);
    if !dict.is_dir() {
        fs::create_dir(&dict)?;
        sync_dir(root)?;
        if let Some(parent) = root.parent() {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// A temporary file in `dir` holding `bytes`, fsynced, ready to be renamed into place.
fn write_synced_temp(dir: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

// Every critical section is a single push, insert or assignment, so a lock poisoned by a
// panicking thread still guards consistent state and is used as is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn sha256(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

/// The bytes to store for a message source (see [`MessageBytes`]).
pub(super) fn load_source(src: &MessageBytes) -> Result<Arc<Vec<u8>>> {
    match src {
        MessageBytes::Memory(b) => Ok(b.clone()),
        MessageBytes::File(p) => Ok(Arc::new(fs::read(p)?)),
        MessageBytes::Received { path, len, binary } => {
            let mut raw = Vec::with_capacity(usize::try_from(*len).unwrap_or(0).min(1 << 30));
            File::open(path)?.take(*len).read_to_end(&mut raw)?;
            if raw.len() as u64 != *len {
                return Err(StoreError::Internal(format!(
                    "message file {} has {} bytes, {len} expected",
                    path.display(),
                    raw.len()
                )));
            }
            // The raw bytes go as soon as the stored form exists: one copy at a time.
            Ok(Arc::new(
                match mailkeep_mime::prepare_received(&raw, *binary) {
                    std::borrow::Cow::Borrowed(_) => None,
                    std::borrow::Cow::Owned(v) => Some(v),
                }
                .unwrap_or(raw),
            ))
        }
    }
}

pub(super) fn hash_from_sql(v: &[u8]) -> Result<Hash> {
    v.try_into()
        .map_err(|_| StoreError::Internal("bad blob hash in index".into()))
}

/// An error opening or reading the file of body `hash`: a missing file is named as such.
fn file_error(hash: &Hash, e: std::io::Error) -> StoreError {
    if e.kind() == ErrorKind::NotFound {
        StoreError::Internal(format!("blob {} missing", hex::encode(hash)))
    } else {
        e.into()
    }
}

fn no_dictionary(hash: &Hash, id: u32) -> StoreError {
    StoreError::Internal(format!(
        "blob {} needs zstd dictionary {id}, which is missing",
        hex::encode(hash)
    ))
}

fn sync_dir(dir: &Path) -> Result<()> {
    match File::open(dir)?.sync_all() {
        // Some file systems cannot fsync a directory (EINVAL); they order renames themselves.
        Err(e) if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Unsupported) => Ok(()),
        r => Ok(r?),
    }
}

mod dict;
mod stream;

#[cfg(test)]
mod tests;
