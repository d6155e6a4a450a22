//! Where the bytes of message bodies live (`[store] bodies`): in the `bodies` table itself
//! (`postgres`, the default), in files named by their hash under a directory every node
//! shares (`dir`), or in an S3-compatible bucket (`s3`). Whichever holds them, a body is one
//! zstd frame named by the SHA-256 of its unpacked bytes, shared by every message holding it;
//! its row in `bodies` (size, parse, search text) stays in PostgreSQL, with an empty `data`
//! and a row in `body_files` naming the store that has the bytes.
//!
//! # Ordering
//! - A new body's file/object is written (a directory: temporary file, fsync, rename, fsync
//!   of the directory; S3: a PUT answered 200) before the transaction that inserts its row,
//!   and the message rows referring to it, commits. A crash in between leaves at most a file
//!   nothing refers to, which `mailkeep check` reports and removes once it is an hour old:
//!   never a reference to a missing file.
//! - A body whose last reference goes is queued in `body_deletions` by the same transaction
//!   that deletes its row; after the commit the queue is worked off ([`Bodies::reap`]; each
//!   node's upkeep also does it every minute, so a crash only delays it).
//! - Writing a new body and reaping a queued one take a transaction-scoped advisory lock on
//!   the hash (its first 8 bytes): the writer holds it until its commit, the reaper checks
//!   that no row came back while holding it. So a reaper never deletes a file a writer has
//!   just put back for a new row, on any node.
//!
//! Reads of a body look at `body_files`: bodies written while `bodies` said otherwise stay
//! readable as long as the node has that store configured (`bodies_dir`, `[store.s3]`), so a
//! change of `bodies` needs no migration of old mail.

use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use deadpool_postgres::Pool;
use tokio_postgres::Client;

use crate::{Result, StoreError};

/// Where new bodies go (`[store] bodies`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodiesKind {
    /// The `bodies` table (the default).
    #[default]
    Postgres,
    /// Files under [`BodiesConfig::dir`].
    Dir,
    /// Objects in the bucket of [`BodiesConfig::s3`].
    S3,
}

impl BodiesKind {
    /// The name in the configuration and in `body_files.store`.
    pub fn name(self) -> &'static str {
        match self {
            BodiesKind::Postgres => "postgres",
            BodiesKind::Dir => "dir",
            BodiesKind::S3 => "s3",
        }
    }
}

/// An S3-compatible bucket (`[store.s3]`).
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// `https://s3.eu-west-1.amazonaws.com`, `http://minio.internal:9000`, ...
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    /// Empty: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` from the environment.
    pub access_key: String,
    pub secret_key: String,
    /// `endpoint/bucket/key` (true) or `bucket.endpoint/key` (false).
    pub path_style: bool,
}

/// Where bodies go and which stores this node can read.
#[derive(Debug, Clone, Default)]
pub struct BodiesConfig {
    pub kind: BodiesKind,
    /// The directory of body files (needed by `kind = Dir`; readable whenever given).
    pub dir: Option<PathBuf>,
    /// The bucket (needed by `kind = S3`; readable whenever given).
    pub s3: Option<S3Settings>,
}

/// Tables of the external body stores, created at open (idempotent, no schema version).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS body_files(
    hash BYTEA PRIMARY KEY REFERENCES bodies(hash) ON DELETE CASCADE,
    store TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS body_deletions(
    hash BYTEA NOT NULL,
    store TEXT NOT NULL,
    queued_at BIGINT NOT NULL,
    PRIMARY KEY(hash, store)
);";

/// The migrations' advisory lock key: nodes starting together create the tables once.
const SCHEMA_LOCK: i64 = 0x6d61_696c_6b65_6570;

/// Creates the tables of this module if they are not there.
pub(super) async fn ensure_schema(client: &mut Client) -> Result<()> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
        .await?;
    tx.batch_execute(SCHEMA).await?;
    tx.commit().await?;
    Ok(())
}

/// The advisory lock key of a body: the first 8 bytes of its hash.
pub(super) fn lock_key(hash: &[u8]) -> i64 {
    let mut k = [0u8; 8];
    let n = hash.len().min(8);
    k[..n].copy_from_slice(&hash[..n]);
    i64::from_be_bytes(k)
}

/// What a running write transaction did to body files (see `write_tx`).
#[derive(Default)]
pub(super) struct TxBodies {
    /// It queued files for deletion: reap after the commit.
    pub released: AtomicBool,
    /// The files it wrote (store, hash): if it does not commit, they are orphans to delete.
    pub written: std::sync::Mutex<Vec<(String, Vec<u8>)>>,
}

tokio::task_local! {
    pub(super) static TX_BODIES: Arc<TxBodies>;
}

/// Notes that the running write transaction queued body files for deletion.
pub(super) fn note_released() {
    let _ = TX_BODIES.try_with(|t| t.released.store(true, Ordering::Relaxed));
}

/// Notes that the running write transaction wrote a body file.
fn note_written(store: &str, hash: &[u8]) {
    let _ = TX_BODIES.try_with(|t| {
        t.written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((store.to_string(), hash.to_vec()))
    });
}

/// How old an unreferenced file must be before `check` removes it: younger ones may belong to
/// a transaction still running on some node.
const ORPHAN_AGE: Duration = Duration::from_secs(3600);

/// The body stores of this node.
pub(crate) struct Bodies {
    kind: BodiesKind,
    dir: Option<DirStore>,
    s3: Option<Arc<S3Store>>,
}

impl Bodies {
    /// Bodies in the table only.
    pub(super) fn postgres() -> Bodies {
        Bodies {
            kind: BodiesKind::Postgres,
            dir: None,
            s3: None,
        }
    }

    /// Opens the stores `config` names; `Cannot` if the one new bodies go to is missing or
    /// unreachable.
    pub(super) async fn open(config: &BodiesConfig) -> Result<Bodies> {
        let dir = match &config.dir {
            Some(d) => Some(DirStore::open(d.clone())?),
            None => None,
        };
        let s3 = match &config.s3 {
            Some(s) => Some(Arc::new(S3Store::open(s)?)),
            None => None,
        };
        match config.kind {
            BodiesKind::Dir if dir.is_none() => {
                return Err(StoreError::Cannot(
                    "bodies = \"dir\" needs bodies_dir".into(),
                ));
            }
            BodiesKind::S3 if s3.is_none() => {
                return Err(StoreError::Cannot(
                    "bodies = \"s3\" needs [store.s3]".into(),
                ));
            }
            _ => {}
        }
        if let Some(s3) = &s3 {
            let s = s3.clone();
            blocking(move || s.head_bucket()).await?;
        }
        Ok(Bodies {
            kind: config.kind,
            dir,
            s3,
        })
    }

    /// Where new bodies go: `None` for the table.
    pub(super) fn new_store(&self) -> Option<&'static str> {
        (self.kind != BodiesKind::Postgres).then(|| self.kind.name())
    }

    /// The stores this node can reach.
    fn reachable(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.dir.is_some() {
            v.push("dir".to_string());
        }
        if self.s3.is_some() {
            v.push("s3".to_string());
        }
        v
    }

    /// Stores `packed` as the body `hash` in `store` (durably, before returning).
    pub(super) async fn put(&self, store: &str, hash: &[u8], packed: Vec<u8>) -> Result<()> {
        let hex = hex::encode(hash);
        note_written(store, hash);
        match store {
            "dir" => {
                let d = self.dir(store)?.clone();
                blocking(move || d.put(&hex, &packed)).await
            }
            _ => {
                let s = self.s3(store)?.clone();
                blocking(move || s.put(&hex, &packed)).await
            }
        }
    }

    /// The packed body `hash` from `store`; `None` if it is not there.
    pub(super) async fn get(&self, store: &str, hash: &[u8]) -> Result<Option<Vec<u8>>> {
        let hex = hex::encode(hash);
        match store {
            "dir" => {
                let d = self.dir(store)?.clone();
                blocking(move || d.get(&hex)).await
            }
            _ => {
                let s = self.s3(store)?.clone();
                blocking(move || s.get(&hex)).await
            }
        }
    }

    async fn delete(&self, store: &str, hex: String) -> Result<()> {
        match store {
            "dir" => {
                let d = self.dir(store)?.clone();
                blocking(move || d.delete(&hex)).await
            }
            _ => {
                let s = self.s3(store)?.clone();
                blocking(move || s.delete(&hex)).await
            }
        }
    }

    fn dir(&self, store: &str) -> Result<&DirStore> {
        self.dir.as_ref().ok_or_else(|| unreachable_store(store))
    }

    fn s3(&self, store: &str) -> Result<&Arc<S3Store>> {
        match store {
            "s3" => self.s3.as_ref().ok_or_else(|| unreachable_store(store)),
            other => Err(StoreError::Internal(format!(
                "unknown body store {other:?} in body_files"
            ))),
        }
    }

    /// After a write transaction that wrote `written` failed: queues those files for the
    /// reaper, which deletes the ones no row refers to (another transaction may have written
    /// the same body and committed).
    pub(super) async fn forget(&self, pool: &Pool, written: Vec<(String, Vec<u8>)>) -> Result<()> {
        if written.is_empty() {
            return Ok(());
        }
        let (stores, hashes): (Vec<String>, Vec<Vec<u8>>) = written.into_iter().unzip();
        pool.get()
            .await?
            .execute(
                "INSERT INTO body_deletions(hash, store, queued_at)
                 SELECT h, s, extract(epoch FROM now())::bigint
                 FROM unnest($1::bytea[], $2::text[]) AS t(h, s)
                 ON CONFLICT DO NOTHING",
                &[&hashes, &stores],
            )
            .await?;
        self.reap(pool).await.map(|_| ())
    }

    /// Deletes the files and objects of queued bodies that no row refers to any more; returns
    /// how many went. Queued bodies of stores this node cannot reach wait for a node that can.
    pub(super) async fn reap(&self, pool: &Pool) -> Result<u64> {
        const BATCH: i64 = 256;
        let stores = self.reachable();
        if stores.is_empty() {
            return Ok(0);
        }
        let mut removed = 0;
        loop {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let queued = tx
                .query(
                    "SELECT hash, store FROM body_deletions WHERE store = ANY($1)
                     ORDER BY hash LIMIT $2 FOR UPDATE SKIP LOCKED",
                    &[&stores, &BATCH],
                )
                .await?;
            if queued.is_empty() {
                return Ok(removed);
            }
            let (hashes, stores_of): (Vec<Vec<u8>>, Vec<String>) =
                queued.iter().map(|r| (r.get(0), r.get(1))).unzip();
            let keys: Vec<i64> = hashes.iter().map(|h| lock_key(h)).collect();
            // The locks first, in a statement of their own: the existence check below then
            // sees every writer that held one commit.
            let locked: Vec<Vec<u8>> = tx
                .query(
                    "SELECT h FROM unnest($1::bytea[], $2::bigint[]) AS t(h, k)
                     WHERE pg_try_advisory_xact_lock(k)",
                    &[&hashes, &keys],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let unused: Vec<Vec<u8>> = tx
                .query(
                    "SELECT h FROM unnest($1::bytea[]) AS t(h)
                     WHERE NOT EXISTS (SELECT 1 FROM bodies b WHERE b.hash = t.h)",
                    &[&locked],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let mut done_hashes = Vec::new();
            let mut done_stores = Vec::new();
            for (hash, store) in hashes.iter().zip(&stores_of) {
                if !locked.contains(hash) {
                    continue;
                }
                if unused.contains(hash) {
                    if let Err(e) = self.delete(store, hex::encode(hash)).await {
                        tracing::warn!(error = %e, body = %hex::encode(hash), "deleting a body file");
                        continue;
                    }
                    removed += 1;
                }
                // Deleted now, or referenced again (a new row took it back).
                done_hashes.push(hash.clone());
                done_stores.push(store.clone());
            }
            tx.execute(
                "DELETE FROM body_deletions d USING unnest($1::bytea[], $2::text[]) AS t(h, s)
                 WHERE d.hash = t.h AND d.store = t.s",
                &[&done_hashes, &done_stores],
            )
            .await?;
            tx.commit().await?;
            if done_hashes.is_empty() || (queued.len() as i64) < BATCH {
                return Ok(removed);
            }
        }
    }

    /// `mailkeep check`: files and objects no body row refers to. Those older than an hour
    /// are removed (under the body's lock, after a last look for a row) and reported.
    pub(super) async fn check_orphans(&self, client: &mut Client) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        for store in self.reachable() {
            let known: std::collections::HashSet<Vec<u8>> = client
                .query("SELECT hash FROM body_files WHERE store = $1", &[&store])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let listed = match store.as_str() {
                "dir" => {
                    let d = self.dir(&store)?.clone();
                    blocking(move || d.list()).await?
                }
                _ => {
                    let s = self.s3(&store)?.clone();
                    blocking(move || s.list()).await?
                }
            };
            for item in listed {
                let is_known = item.hash.as_ref().is_some_and(|h| known.contains(h));
                if is_known || item.age < ORPHAN_AGE {
                    continue;
                }
                let Some(hash) = item.hash else {
                    // A temporary file left by a crash while writing.
                    if store == "dir"
                        && let Some(d) = &self.dir
                    {
                        d.remove_path(&item.name)?;
                        problems.push(format!(
                            "temporary body file {}: left by a crash (removed)",
                            item.name
                        ));
                    }
                    continue;
                };
                let tx = client.transaction().await?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock_key(&hash)])
                    .await?;
                let referenced = tx
                    .query_opt(
                        "SELECT 1 FROM body_files WHERE hash = $1 AND store = $2",
                        &[&hash, &store],
                    )
                    .await?
                    .is_some();
                if !referenced {
                    self.delete(&store, hex::encode(&hash)).await?;
                    problems.push(format!(
                        "body file {} in {store}: referenced by nothing (removed)",
                        hex::encode(&hash)
                    ));
                }
                tx.commit().await?;
            }
        }
        Ok(problems)
    }
}

fn unreachable_store(store: &str) -> StoreError {
    StoreError::Internal(format!(
        "a body is in the {store:?} store, which this node has not configured \
         ([store] bodies_dir / [store.s3])"
    ))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Internal(format!("store task: {e}")))?
}

/// One file or object found in a store.
struct Listed {
    /// The body's hash, if the name is one.
    hash: Option<Vec<u8>>,
    /// The path under the store's root (or the object key).
    name: String,
    /// Time since it was last written.
    age: Duration,
}

/// The hash named by `name` (64 lower-case hex digits).
fn hash_of(name: &str) -> Option<Vec<u8>> {
    if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    hex::decode(name).ok()
}

// ---- a directory ----

/// Body files `root/ab/abcdef…` (the hash in hex, sharded by its first byte).
#[derive(Clone)]
struct DirStore {
    root: PathBuf,
}

impl DirStore {
    fn open(root: PathBuf) -> Result<DirStore> {
        std::fs::create_dir_all(&root)
            .map_err(|e| StoreError::Cannot(format!("bodies_dir {}: {e}", root.display())))?;
        Ok(DirStore { root })
    }

    fn path(&self, hex: &str) -> PathBuf {
        self.root.join(&hex[..2]).join(hex)
    }

    fn put(&self, hex: &str, packed: &[u8]) -> Result<()> {
        let shard = self.root.join(&hex[..2]);
        if !shard.is_dir() {
            std::fs::create_dir_all(&shard)?;
            sync_dir(&self.root)?;
        }
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&shard)?;
        tmp.write_all(packed)?;
        tmp.as_file().sync_all()?;
        tmp.persist(shard.join(hex))
            .map_err(|e| StoreError::Internal(format!("body file rename: {}", e.error)))?;
        sync_dir(&shard)
    }

    fn get(&self, hex: &str) -> Result<Option<Vec<u8>>> {
        match std::fs::read(self.path(hex)) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn delete(&self, hex: &str) -> Result<()> {
        self.remove_path(&format!("{}/{hex}", &hex[..2]))
    }

    fn remove_path(&self, name: &str) -> Result<()> {
        match std::fs::remove_file(self.root.join(name)) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    fn list(&self) -> Result<Vec<Listed>> {
        let now = SystemTime::now();
        let mut out = Vec::new();
        for shard in std::fs::read_dir(&self.root)? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            let shard_name = shard.file_name().to_string_lossy().into_owned();
            for f in std::fs::read_dir(shard.path())? {
                let f = f?;
                let name = f.file_name().to_string_lossy().into_owned();
                let modified = f.metadata()?.modified().unwrap_or(now);
                out.push(Listed {
                    hash: hash_of(&name).filter(|_| name.starts_with(&shard_name)),
                    name: format!("{shard_name}/{name}"),
                    age: now.duration_since(modified).unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    match std::fs::File::open(dir)?.sync_all() {
        // Some file systems cannot fsync a directory (EINVAL); they order renames themselves.
        Err(e) if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::Unsupported) => Ok(()),
        r => Ok(r?),
    }
}

// ---- an S3-compatible bucket ----

use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

/// How long a signed request stays valid.
const SIGNED_FOR: Duration = Duration::from_secs(300);

/// Objects `ab/abcdef…` (as the directory's files) in one bucket.
struct S3Store {
    bucket: Bucket,
    credentials: Credentials,
    agent: ureq::Agent,
}

impl S3Store {
    fn open(s: &S3Settings) -> Result<S3Store> {
        let cannot = |what: String| StoreError::Cannot(format!("[store.s3] {what}"));
        let endpoint: url::Url = s
            .endpoint
            .parse()
            .map_err(|e| cannot(format!("endpoint {:?}: {e}", s.endpoint)))?;
        let style = if s.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let region = if s.region.is_empty() {
            "us-east-1".to_string()
        } else {
            s.region.clone()
        };
        let bucket = Bucket::new(endpoint, style, s.bucket.clone(), region)
            .map_err(|e| cannot(format!("bucket {:?}: {e:?}", s.bucket)))?;
        let credentials = if s.access_key.is_empty() || s.secret_key.is_empty() {
            Credentials::from_env().ok_or_else(|| {
                cannot(
                    "access_key and secret_key (or AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY in the environment) are needed"
                        .into(),
                )
            })?
        } else {
            Credentials::new(s.access_key.clone(), s.secret_key.clone())
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Ok(S3Store {
            bucket,
            credentials,
            agent,
        })
    }

    fn key(hex: &str) -> String {
        format!("{}/{hex}", &hex[..2])
    }

    fn fail(what: &str, key: &str, resp: ureq::http::Response<ureq::Body>) -> StoreError {
        let status = resp.status();
        let mut text = String::new();
        let _ = resp
            .into_body()
            .into_reader()
            .take(512)
            .read_to_string(&mut text);
        StoreError::Internal(format!("S3 {what} {key}: HTTP {status}: {}", text.trim()))
    }

    fn head_bucket(&self) -> Result<()> {
        let url = self
            .bucket
            .head_bucket(Some(&self.credentials))
            .sign(SIGNED_FOR);
        let resp = self.agent.head(url.as_str()).call().map_err(|e| {
            StoreError::Cannot(format!("[store.s3] {}: {e}", self.bucket.base_url()))
        })?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(StoreError::Cannot(format!(
                "[store.s3] bucket {:?} at {}: HTTP {}",
                self.bucket.name(),
                self.bucket.base_url(),
                resp.status()
            )))
        }
    }

    fn put(&self, hex: &str, packed: &[u8]) -> Result<()> {
        let key = Self::key(hex);
        let url = self
            .bucket
            .put_object(Some(&self.credentials), &key)
            .sign(SIGNED_FOR);
        let resp = self
            .agent
            .put(url.as_str())
            .send(packed)
            .map_err(|e| StoreError::Internal(format!("S3 PUT {key}: {e}")))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(Self::fail("PUT", &key, resp))
        }
    }

    fn get(&self, hex: &str) -> Result<Option<Vec<u8>>> {
        let key = Self::key(hex);
        let url = self
            .bucket
            .get_object(Some(&self.credentials), &key)
            .sign(SIGNED_FOR);
        let resp = self
            .agent
            .get(url.as_str())
            .call()
            .map_err(|e| StoreError::Internal(format!("S3 GET {key}: {e}")))?;
        if resp.status() == 404 {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(Self::fail("GET", &key, resp));
        }
        let data = resp
            .into_body()
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .map_err(|e| StoreError::Internal(format!("S3 GET {key}: {e}")))?;
        Ok(Some(data))
    }

    fn delete(&self, hex: &str) -> Result<()> {
        let key = Self::key(hex);
        let url = self
            .bucket
            .delete_object(Some(&self.credentials), &key)
            .sign(SIGNED_FOR);
        let resp = self
            .agent
            .delete(url.as_str())
            .call()
            .map_err(|e| StoreError::Internal(format!("S3 DELETE {key}: {e}")))?;
        if resp.status().is_success() || resp.status() == 404 {
            Ok(())
        } else {
            Err(Self::fail("DELETE", &key, resp))
        }
    }

    fn list(&self) -> Result<Vec<Listed>> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = self.bucket.list_objects_v2(Some(&self.credentials));
            if let Some(t) = &token {
                action.with_continuation_token(t.clone());
            }
            let url = action.sign(SIGNED_FOR);
            let resp = self
                .agent
                .get(url.as_str())
                .call()
                .map_err(|e| StoreError::Internal(format!("S3 list: {e}")))?;
            if !resp.status().is_success() {
                return Err(Self::fail("list", "", resp));
            }
            let text = resp
                .into_body()
                .with_config()
                .limit(64 << 20)
                .read_to_string()
                .map_err(|e| StoreError::Internal(format!("S3 list: {e}")))?;
            let page = rusty_s3::actions::ListObjectsV2::parse_response(&text)
                .map_err(|e| StoreError::Internal(format!("S3 list: {e}")))?;
            for o in page.contents {
                let name = o.key.rsplit('/').next().unwrap_or("").to_string();
                let written = o
                    .last_modified
                    .as_deref()
                    .and_then(unix_time)
                    .unwrap_or(now);
                out.push(Listed {
                    hash: hash_of(&name).filter(|_| o.key == Self::key(&name)),
                    name: o.key,
                    age: Duration::from_secs(now.saturating_sub(written).max(0) as u64),
                });
            }
            match page.next_continuation_token {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }
}

/// Seconds since 1970 of an S3 `LastModified` (`2026-12-05T08:50:00.000Z`).
fn unix_time(s: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from civil (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_times() {
        assert_eq!(unix_time("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(unix_time("2026-12-05T08:50:00Z"), Some(1_796_460_600));
        assert_eq!(unix_time("2000-03-01T00:00:01.5Z"), Some(951_868_801));
        assert_eq!(unix_time("garbage"), None);
    }

    #[test]
    fn lock_keys() {
        assert_eq!(lock_key(&[0, 0, 0, 0, 0, 0, 1, 2, 9]), 0x0102);
        assert_eq!(lock_key(&[1]), 1 << 56);
    }

    #[test]
    fn dir_store_round_trip() {
        let t = tempfile::tempdir().unwrap();
        let d = DirStore::open(t.path().join("b")).unwrap();
        let hex = "ab".repeat(32);
        assert_eq!(d.get(&hex).unwrap(), None);
        d.put(&hex, b"packed").unwrap();
        assert_eq!(d.get(&hex).unwrap().as_deref(), Some(&b"packed"[..]));
        let listed = d.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].hash.as_deref(), Some(&[0xab; 32][..]));
        d.delete(&hex).unwrap();
        d.delete(&hex).unwrap();
        assert_eq!(d.get(&hex).unwrap(), None);
    }
}
