//! The embedded backend: SQLite (WAL) for the index and small bodies, content-addressed zstd
//! files for big bodies.
//!
//! # Layout
//! - `schema`: tables and connection setup.
//! - `writer`: the single writer thread and group commit; every change is a job run there.
//! - `pool`: read connections, used from tokio's blocking threads.
//! - `blobs`: packing bodies (zstd, trained dictionary) and body files (`blobs/ab/cdef…`).
//! - `accounts`, `messages`, `reads`, `check`: the SQL of each trait method.
//! - `search`: the word index behind SEARCH TEXT/BODY.
//! - `quota`: per-account limits and usage counters, checked inside APPEND/COPY/MOVE.
//! - `backup`: `mailkeep backup`/`restore`, an online snapshot with the body files it needs.
//! - `import`: mailboxes with a given UIDVALIDITY and appends with given UIDs (imports).
//! - `watch`: notices commits of other processes (an import) and wakes their mailboxes' sessions.
//! - `sweep`: at open, removes body files left by a crash (and the data directory's lock).
//!
//! # Durability
//! An APPEND packs (zstd) each body on the caller's blocking thread. A body of at most
//! `prepare::INLINE_MAX` packed bytes (most mail) goes into the index with the message row;
//! a bigger one is written to its file, fsynced with its directory, before the index change is
//! queued. The writer commits with `synchronous=FULL` (one WAL fsync per batch) and only then
//! answers. So a returned APPEND/COPY survives a crash, and a crash in between leaves at worst
//! an unreferenced body file, removed at the next open (`sweep`). Body files are deleted after
//! the commit that dropped their last reference.
//!
//! Flag changes, expunges and \\Recent claims are committed without an fsync of their own
//! (`Writer::run_relaxed`): a crash of the process keeps them; a power loss may undo the ones
//! made since the last durable commit or checkpoint, as with Dovecot's default
//! `mail_fsync = optimized`. Never a message: anything that adds mail is durable.
//!
//! One process should write a data directory at a time: SQLite itself copes with several,
//! but body-file collection assumes it sees every reference being added.

mod accounts;
mod backup;
mod blobs;
mod check;
mod copy;
mod domains;
mod import;
mod messages;
mod objects;
mod parsed;
mod pool;
mod prepare;
mod quota;
mod reads;
mod schema;
mod search;
mod secrets;
mod sortkeys;
mod sweep;
mod tombstones;
mod twofa;
#[cfg(test)]
mod upgrade_tests;
mod urlauth;
mod watch;
mod writer;

use async_trait::async_trait;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub use self::backup::{BACKUP_FORMAT, BackupSummary, RestoreSummary};
use self::blobs::BlobDir;
use self::pool::ReadPool;
pub use self::tombstones::DEFAULT_RETENTION as DEFAULT_TOMBSTONE_RETENTION;
pub use self::writer::WriteStats;
use self::writer::Writer;
use crate::{
    Changes, FlagOp, Flags, MailStore, Mailbox, MailboxId, MailboxStatus, MessageBytes,
    MessageMeta, MessageObjects, NewMessage, Notifier, ParsedInfo, Quota, QuotaLimits,
    QuotaSetting, Result, ScramKeys, StoreFlagsResult, User, UserId,
};

pub struct SqliteStore {
    // Dropped first: joining the writer thread finishes queued writes before the rest goes.
    writer: Writer,
    readers: Arc<ReadPool>,
    blobs: BlobDir,
    notifier: Arc<Notifier>,
    /// Limits of accounts without their own (`MailStore::set_default_quota`).
    default_quota: std::sync::Mutex<QuotaLimits>,
    /// How long expunge tombstones are kept (see `tombstones`).
    tombstones: tombstones::Retention,
    /// Shared `flock` on `data_dir/store.lock` while open (see `sweep`).
    _lock: std::fs::File,
}

impl SqliteStore {
    /// SCRAM keys of one kind (`sha1`: SCRAM-SHA-1, else SCRAM-SHA-256).
    async fn scram_keys(&self, sha1: bool, name: &str) -> Result<Option<ScramKeys>> {
        let name = name.to_owned();
        self.readers
            .run_quick(move |c| secrets::get_scram_keys(c, sha1, &name))
            .await
    }

    async fn put_scram_keys(&self, sha1: bool, name: &str, keys: Option<&ScramKeys>) -> Result<()> {
        let (name, keys) = (name.to_owned(), keys.cloned());
        self.writer
            .run(move |ctx| secrets::set_scram_keys(ctx.conn, sha1, &name, keys.as_ref()))
            .await
    }

    /// Opens (creating if needed) `data_dir/index.sqlite3` and `data_dir/blobs/`.
    ///
    /// If no other process has the directory open, body files that no commit refers to (left by
    /// a crash between writing a body and committing it) and temporary files are removed first
    /// (see `sweep`).
    pub fn open(data_dir: &Path) -> Result<Arc<SqliteStore>> {
        let started = std::time::SystemTime::now();
        std::fs::create_dir_all(data_dir)?;
        let (lock, alone) = sweep::lock(data_dir)?;
        let index = data_dir.join("index.sqlite3");
        let blobs = BlobDir::open(data_dir.join("blobs"))?;
        let conn = schema::open_writer(&index)?;
        conn.execute_batch(domains::SCHEMA)?;
        quota::open(&conn)?;
        conn.execute_batch(tombstones::SCHEMA)?;
        conn.execute_batch(secrets::SCHEMA)?;
        conn.execute_batch(twofa::SCHEMA)?;
        conn.execute_batch(objects::SCHEMA)?;
        conn.execute_batch(sortkeys::SCHEMA)?;
        conn.execute_batch(urlauth::SCHEMA)?;
        if alone {
            match sweep::sweep(&conn, &blobs, started) {
                Ok(swept) if swept.files > 0 => tracing::info!(
                    files = swept.files,
                    bytes = swept.bytes,
                    "removed body files no commit refers to (left by a crash)"
                ),
                Ok(_) => {}
                // What is left is only disk space (and a `check` complaint): still serve.
                Err(e) => tracing::warn!(error = %e, "sweeping unreferenced body files"),
            }
            sweep::share(&lock);
        }
        let notifier = Arc::new(Notifier::default());
        let writer = Writer::start(conn, blobs.clone(), notifier.clone())?;
        watch::start(index.clone(), Arc::downgrade(&notifier));
        Ok(Arc::new(SqliteStore {
            writer,
            readers: ReadPool::new(index),
            blobs,
            notifier,
            default_quota: std::sync::Mutex::new(QuotaLimits::default()),
            tombstones: tombstones::Retention::default(),
            _lock: lock,
        }))
    }

    /// Takes a consistent snapshot of this store (the index and the body files it refers to)
    /// into `dir`, incrementally if `dir` holds an earlier backup (see `backup.rs`). Blocks:
    /// call from a blocking thread. The SQLite backend's own: a PostgreSQL backend is backed
    /// up by its own tools, so this is not a `MailStore` method.
    pub fn backup(&self, dir: &Path) -> Result<BackupSummary> {
        backup::backup(self.data_dir(), dir)
    }

    /// Copies the backup in `from` into the data directory `to` (absent or empty). Open the
    /// store there afterwards (which migrates an older index) and `check` it.
    pub fn restore(from: &Path, to: &Path) -> Result<RestoreSummary> {
        backup::restore(from, to)
    }

    fn data_dir(&self) -> &Path {
        self.blobs.root().parent().unwrap_or(Path::new("."))
    }

    /// Commit and job counters of the writer (group commit: commits <= jobs).
    pub fn write_stats(&self) -> &WriteStats {
        &self.writer.stats
    }

    /// Blocks the writer thread until the returned guard is dropped, so tests can queue jobs
    /// and observe them committed together.
    #[doc(hidden)]
    pub async fn hold_writer(self: &Arc<Self>) -> WriterHold {
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let store = self.clone();
        let handle = tokio::spawn(async move {
            store
                .writer
                .run(move |_ctx| {
                    let _ = started_tx.send(());
                    let _ = release_rx.recv();
                    Ok(())
                })
                .await
        });
        let _ = started_rx.await;
        WriterHold {
            _release: release_tx,
            _job: handle,
        }
    }

    /// Release the bodies still held for messages expunged at least `age` ago (every one with
    /// `Duration::ZERO`). This runs by itself after each expunge with a one-hour grace period
    /// (RFC 2180 §4.1.1: sessions not yet told of an expunge may still FETCH the message).
    pub async fn release_expunged(&self, age: std::time::Duration) -> Result<()> {
        let cutoff = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
            - age.as_secs() as i64;
        self.writer
            .run_relaxed(move |ctx| messages::release_held(ctx, cutoff))
            .await
    }

    /// Keep expunge tombstones for `age` (default [`DEFAULT_TOMBSTONE_RETENTION`]); older ones
    /// are pruned now and then by an expunge. `Duration::ZERO` prunes at every expunge.
    pub fn set_tombstone_retention(&self, age: std::time::Duration) {
        self.tombstones.set(age);
    }

    /// Hashes, packs and (if big) writes the bodies of messages about to be appended.
    async fn prepare(&self, msgs: Vec<NewMessage>) -> Result<Vec<prepare::Prepared>> {
        let blobs = self.blobs.clone();
        // Small bodies pack into the index without touching a file: that is quicker done here
        // than handed to a blocking thread and back. Bigger ones may be written and fsynced.
        let small = msgs.iter().try_fold(0usize, |total, m| match &m.data {
            MessageBytes::Memory(d) => Some(total + d.len()),
            MessageBytes::File(_) | MessageBytes::Received { .. } => None,
        });
        // The writer keeps no more tokens for bodies waiting to be indexed: do not compute them.
        let tokens_max = if self.writer.stats.tokens_full.load(Ordering::Relaxed) {
            0
        } else {
            prepare::TOKENS_KEPT_MAX
        };
        let prepared = if small.is_some_and(|n| n <= prepare::PREPARE_INLINE_MAX) {
            prepare::prepare(&blobs, msgs, tokens_max)
        } else {
            tokio::task::spawn_blocking(move || prepare::prepare_parallel(&blobs, msgs, tokens_max))
                .await
                .map_err(|e| crate::StoreError::Internal(format!("append task: {e}")))?
        };
        match prepared {
            Ok(p) => Ok(p),
            Err((e, written)) => {
                if !written.is_empty() {
                    // Best effort: the bodies already written are unreferenced; let GC look.
                    let collect = move |ctx: &mut writer::WriteCtx<'_>| {
                        ctx.gc.extend(written);
                        Ok(())
                    };
                    let _ = self.writer.run(collect).await;
                }
                Err(e)
            }
        }
    }

    /// Indexes the bodies committed but still waiting for the search index (see `search`):
    /// every one, or with `mailbox` only that mailbox's, what a search of it needs. A batch
    /// per write job, so that other writes are not held up behind a long backlog.
    async fn index_waiting(&self, mailbox: Option<MailboxId>) -> Result<()> {
        const BATCH: usize = search::Indexer::BATCH;
        while self.writer.stats.search_waiting.load(Ordering::SeqCst) > 0 {
            let n = self
                .writer
                .run_relaxed(move |ctx| match mailbox {
                    Some(mb) => ctx.index.flush_mailbox(ctx.conn, ctx.blobs, mb, BATCH),
                    None => ctx.index.flush(ctx.conn, ctx.blobs, BATCH),
                })
                .await?;
            if n < BATCH {
                break;
            }
        }
        Ok(())
    }

    fn default_quota(&self) -> QuotaLimits {
        *self
            .default_quota
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Jobs waiting for the writer thread.
    pub fn queued_writes(&self) -> usize {
        self.writer.stats.queued.load(Ordering::SeqCst)
    }
}

/// See [`SqliteStore::hold_writer`].
pub struct WriterHold {
    _release: std::sync::mpsc::Sender<()>,
    _job: tokio::task::JoinHandle<Result<()>>,
}

impl SqliteStore {
    /// APPEND to the user's mailbox `name`, found by the writer in the append's transaction
    /// (no read round trip first: 4% of the server's CPU under an APPEND load). When that
    /// mailbox is `claim_in` (the caller's selected one), \Recent is claimed in the same
    /// job: otherwise a read and a write job of its own after each APPEND (40% of the
    /// writer's jobs under the stress mix).
    async fn append_named(
        &self,
        user: UserId,
        name: &str,
        msgs: Vec<NewMessage>,
        claim_in: Option<MailboxId>,
    ) -> Result<Option<crate::Appended>> {
        let prepared = self.prepare(msgs).await?;
        let name = name.to_owned();
        let limits = self.default_quota();
        self.writer
            .run(move |ctx| {
                let guard = quota::Guard::of_user(ctx.conn, user, limits)?;
                let Some(mailbox) = accounts::get_mailbox(ctx.conn, user, &name)? else {
                    // The bodies `prepare` wrote are unreferenced: let GC recheck them.
                    ctx.gc.extend(prepared.iter().map(|m| m.hash));
                    return Ok(None);
                };
                let (uidvalidity, uids) = messages::append(ctx, mailbox.id, prepared)?;
                quota::Guard::check(guard, ctx.conn)?;
                let claimed = if claim_in == Some(mailbox.id) {
                    reads::claim_recent(ctx.conn, mailbox.id, true)?
                } else {
                    Vec::new()
                };
                Ok(Some(crate::Appended {
                    uidvalidity,
                    uids,
                    claimed,
                }))
            })
            .await
    }
}

#[async_trait]
impl MailStore for SqliteStore {
    async fn create_user(&self, name: &str, password_hash: &str) -> Result<User> {
        let (name, hash) = (name.to_owned(), password_hash.to_owned());
        self.writer
            .run(move |ctx| accounts::create_user(ctx, &name, &hash))
            .await
    }

    async fn get_user(&self, name: &str) -> Result<Option<User>> {
        let name = name.to_owned();
        // One row by key: on the caller's thread when a connection is free (LMTP resolves
        // each recipient with it; a blocking-thread hand-off cost more than the read).
        self.readers
            .run_quick(move |c| accounts::get_user(c, &name))
            .await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.readers.run(accounts::list_users).await
    }

    async fn set_password(&self, name: &str, password_hash: &str) -> Result<()> {
        let (name, hash) = (name.to_owned(), password_hash.to_owned());
        self.writer
            .run(move |ctx| accounts::set_password(ctx.conn, &name, &hash))
            .await
    }

    async fn delete_user(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.writer
            .run(move |ctx| accounts::delete_user(ctx, &name))
            .await
    }

    async fn get_scram_keys(&self, name: &str) -> Result<Option<ScramKeys>> {
        self.scram_keys(false, name).await
    }

    async fn set_scram_keys(&self, name: &str, keys: Option<&ScramKeys>) -> Result<()> {
        self.put_scram_keys(false, name, keys).await
    }

    async fn get_scram_sha1_keys(&self, name: &str) -> Result<Option<ScramKeys>> {
        self.scram_keys(true, name).await
    }

    async fn set_scram_sha1_keys(&self, name: &str, keys: Option<&ScramKeys>) -> Result<()> {
        self.put_scram_keys(true, name, keys).await
    }

    async fn server_secret(&self, name: &str) -> Result<Vec<u8>> {
        let name = name.to_owned();
        let known = {
            let name = name.clone();
            self.readers
                .run_quick(move |c| secrets::get_server_secret(c, &name))
                .await?
        };
        match known {
            Some(s) => Ok(s),
            None => {
                self.writer
                    .run(move |ctx| secrets::server_secret(ctx.conn, &name))
                    .await
            }
        }
    }

    async fn get_two_factor(&self, name: &str) -> Result<Option<crate::TwoFactor>> {
        let name = name.to_owned();
        self.readers
            .run_quick(move |c| twofa::get_two_factor(c, &name))
            .await
    }

    async fn set_two_factor(
        &self,
        name: &str,
        tf: Option<&crate::TwoFactor>,
        recovery_hashes: &[Vec<u8>],
    ) -> Result<()> {
        let (name, tf, rec) = (name.to_owned(), tf.cloned(), recovery_hashes.to_vec());
        self.writer
            .run(move |ctx| twofa::set_two_factor(ctx.conn, &name, tf.as_ref(), &rec))
            .await
    }

    async fn use_totp_step(&self, name: &str, step: i64) -> Result<bool> {
        let name = name.to_owned();
        self.writer
            .run(move |ctx| twofa::use_totp_step(ctx.conn, &name, step))
            .await
    }

    async fn use_recovery_code(&self, name: &str, hash: &[u8]) -> Result<bool> {
        let (name, hash) = (name.to_owned(), hash.to_vec());
        self.writer
            .run(move |ctx| twofa::use_recovery_code(ctx.conn, &name, &hash))
            .await
    }

    async fn recovery_codes_left(&self, name: &str) -> Result<u32> {
        let name = name.to_owned();
        self.readers
            .run_quick(move |c| twofa::recovery_codes_left(c, &name))
            .await
    }

    async fn add_app_password(
        &self,
        name: &str,
        label: &str,
        hash: &[u8],
        now: i64,
    ) -> Result<crate::AppPassword> {
        let (name, label, hash) = (name.to_owned(), label.to_owned(), hash.to_vec());
        self.writer
            .run(move |ctx| twofa::add_app_password(ctx.conn, &name, &label, &hash, now))
            .await
    }

    async fn list_app_passwords(&self, name: &str) -> Result<Vec<crate::AppPassword>> {
        let name = name.to_owned();
        self.readers
            .run_quick(move |c| twofa::list_app_passwords(c, &name))
            .await
    }

    async fn revoke_app_password(&self, name: &str, label: &str) -> Result<()> {
        let (name, label) = (name.to_owned(), label.to_owned());
        self.writer
            .run(move |ctx| twofa::revoke_app_password(ctx.conn, &name, &label))
            .await
    }

    async fn find_app_password(
        &self,
        name: &str,
        hash: &[u8],
    ) -> Result<Option<crate::AppPassword>> {
        let (name, hash) = (name.to_owned(), hash.to_vec());
        self.readers
            .run_quick(move |c| twofa::find_app_password(c, &name, &hash))
            .await
    }

    async fn app_password_exists(&self, id: i64) -> Result<bool> {
        self.readers
            .run_quick(move |c| twofa::app_password_exists(c, id))
            .await
    }

    async fn touch_app_password(&self, id: i64, now: i64, min_interval: i64) -> Result<()> {
        self.writer
            .run(move |ctx| twofa::touch_app_password(ctx.conn, id, now, min_interval))
            .await
    }

    async fn list_mailboxes(&self, user: UserId) -> Result<Vec<Mailbox>> {
        // One user's rows of the mailbox table: as small a read as `get_mailbox`.
        self.readers
            .run_quick(move |c| accounts::list_mailboxes(c, user))
            .await
    }

    async fn get_mailbox(&self, user: UserId, name: &str) -> Result<Option<Mailbox>> {
        let name = name.to_owned();
        self.readers
            .run_quick(move |c| accounts::get_mailbox(c, user, &name))
            .await
    }

    async fn create_mailbox(
        &self,
        user: UserId,
        name: &str,
        special_use: Option<&str>,
    ) -> Result<Mailbox> {
        let (name, su) = (name.to_owned(), special_use.map(str::to_owned));
        self.writer
            .run(move |ctx| accounts::create_mailbox(ctx.conn, user, &name, su.as_deref()))
            .await
    }

    async fn delete_mailbox(&self, user: UserId, id: MailboxId) -> Result<()> {
        self.writer
            .run(move |ctx| accounts::delete_mailbox(ctx, user, id))
            .await
    }

    async fn rename_mailbox(&self, user: UserId, id: MailboxId, new_name: &str) -> Result<()> {
        let name = new_name.to_owned();
        self.writer
            .run(move |ctx| accounts::rename_mailbox(ctx.conn, user, id, &name))
            .await
    }

    async fn subscribe(&self, user: UserId, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.writer
            .run(move |ctx| accounts::subscribe(ctx.conn, user, &name, true))
            .await
    }

    async fn unsubscribe(&self, user: UserId, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.writer
            .run(move |ctx| accounts::subscribe(ctx.conn, user, &name, false))
            .await
    }

    async fn subscriptions(&self, user: UserId) -> Result<Vec<String>> {
        self.readers
            .run_quick(move |c| accounts::subscriptions(c, user))
            .await
    }

    async fn status(&self, mailbox: MailboxId) -> Result<MailboxStatus> {
        // The mailbox's counters and a count over its newest messages.
        self.readers
            .run_quick(move |c| reads::status(c, mailbox))
            .await
    }

    async fn append(&self, mailbox: MailboxId, msgs: Vec<NewMessage>) -> Result<(u32, Vec<u32>)> {
        let prepared = self.prepare(msgs).await?;
        let limits = self.default_quota();
        self.writer
            .run(move |ctx| {
                let guard = quota::Guard::of_mailbox(ctx.conn, mailbox, limits)?;
                let done = messages::append(ctx, mailbox, prepared)?;
                quota::Guard::check(guard, ctx.conn)?;
                Ok(done)
            })
            .await
    }

    async fn append_to(
        &self,
        user: UserId,
        name: &str,
        msgs: Vec<NewMessage>,
    ) -> Result<Option<(u32, Vec<u32>)>> {
        let done = self.append_named(user, name, msgs, None).await?;
        Ok(done.map(|a| (a.uidvalidity, a.uids)))
    }

    async fn append_to_claiming(
        &self,
        user: UserId,
        name: &str,
        msgs: Vec<NewMessage>,
        selected: MailboxId,
    ) -> Result<Option<crate::Appended>> {
        self.append_named(user, name, msgs, Some(selected)).await
    }

    async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageMeta>> {
        self.readers.run(move |c| reads::messages(c, mailbox)).await
    }

    async fn changes_since(&self, mailbox: MailboxId, since: u64) -> Result<Changes> {
        // After every command: usually no row or a few, read through the recent part of an
        // index, so on the session's thread (a hand-off cost more: 2-3% of the server's CPU
        // in the stress mix). A view far behind reads more, as a SELECT would, once.
        self.readers
            .run_quick(move |c| reads::changes_since(c, mailbox, since))
            .await
    }

    async fn message_bytes(&self, mailbox: MailboxId, uid: u32) -> Result<Arc<Vec<u8>>> {
        let blobs = self.blobs.clone();
        self.readers
            .run(move |c| reads::message_bytes(c, &blobs, mailbox, uid))
            .await
    }

    async fn message_reader(&self, mailbox: MailboxId, uid: u32) -> Result<crate::MessageReader> {
        let blobs = self.blobs.clone();
        self.readers
            .run(move |c| reads::message_reader(c, &blobs, mailbox, uid))
            .await
    }

    async fn message_prefixes(
        &self,
        mailbox: MailboxId,
        wanted: &[(u32, u64)],
    ) -> Result<Vec<(u32, Vec<u8>)>> {
        let blobs = self.blobs.clone();
        let wanted = wanted.to_vec();
        self.readers
            .run(move |c| reads::message_prefixes(c, &blobs, mailbox, &wanted))
            .await
    }

    async fn parsed_info(&self, mailbox: MailboxId, uid: u32) -> Result<ParsedInfo> {
        self.readers
            .run(move |c| reads::parsed_info(c, mailbox, uid))
            .await
    }

    async fn parsed_infos(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
    ) -> Result<Vec<(u32, ParsedInfo)>> {
        let uids = uids.to_vec();
        self.readers
            .run(move |c| reads::parsed_infos(c, mailbox, &uids))
            .await
    }

    async fn sort_keys(&self, mailbox: MailboxId, uids: &[u32]) -> Result<crate::KeyRows> {
        let uids = uids.to_vec();
        self.readers
            .run(move |c| sortkeys::sort_keys(c, mailbox, &uids))
            .await
    }

    async fn save_sort_keys(&self, mailbox: MailboxId, keys: Vec<(u32, Vec<u8>)>) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        // Derived data: losing it to a power cut only means computing it again.
        self.writer
            .run_relaxed(move |ctx| sortkeys::save_sort_keys(ctx.conn, mailbox, &keys))
            .await
    }

    async fn set_flags(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
        op: FlagOp,
        flags: &Flags,
        unchanged_since: Option<u64>,
    ) -> Result<StoreFlagsResult> {
        let (uids, flags) = (uids.to_vec(), flags.clone());
        self.writer
            .run_relaxed(move |ctx| {
                messages::set_flags(ctx, mailbox, &uids, op, &flags, unchanged_since)
            })
            .await
    }

    async fn expunge(&self, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<u32>> {
        let uids = uids.to_vec();
        let prune_due = self.tombstones.due();
        self.writer
            .run_relaxed(move |ctx| {
                let removed = messages::expunge(ctx, mailbox, &uids)?;
                if let Some(cutoff) = prune_due {
                    tombstones::prune(ctx, cutoff)?;
                }
                Ok(removed)
            })
            .await
    }

    async fn copy(
        &self,
        from: MailboxId,
        uids: &[u32],
        to: MailboxId,
    ) -> Result<(u32, Vec<(u32, u32)>)> {
        let uids = uids.to_vec();
        let limits = self.default_quota();
        self.writer
            .run(move |ctx| {
                let guard = quota::Guard::of_mailbox(ctx.conn, to, limits)?;
                let done = messages::copy(ctx, from, &uids, to)?;
                quota::Guard::check(guard, ctx.conn)?;
                Ok(done)
            })
            .await
    }

    async fn move_messages(
        &self,
        from: MailboxId,
        uids: &[u32],
        to: MailboxId,
    ) -> Result<(u32, Vec<(u32, u32)>)> {
        let uids = uids.to_vec();
        let limits = self.default_quota();
        let prune_due = self.tombstones.due();
        self.writer
            .run(move |ctx| {
                let guard = quota::Guard::of_mailbox(ctx.conn, to, limits)?;
                let done = messages::move_messages(ctx, from, &uids, to)?;
                quota::Guard::check(guard, ctx.conn)?;
                if let Some(cutoff) = prune_due {
                    tombstones::prune(ctx, cutoff)?;
                }
                Ok(done)
            })
            .await
    }

    async fn prune_tombstones(&self, age: std::time::Duration) -> Result<u64> {
        let cutoff =
            tombstones::now().saturating_sub(i64::try_from(age.as_secs()).unwrap_or(i64::MAX));
        self.writer
            .run_relaxed(move |ctx| tombstones::prune(ctx, cutoff))
            .await
    }

    async fn search_text(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
        needle: &str,
        body_only: bool,
    ) -> Result<Vec<u32>> {
        self.index_waiting(Some(mailbox)).await?;
        let (uids, needle) = (uids.to_vec(), needle.to_owned());
        let blobs = self.blobs.clone();
        self.readers
            .run(move |c| search::search_text(c, &blobs, mailbox, &uids, &needle, body_only))
            .await
    }

    async fn claim_recent(&self, mailbox: MailboxId, claim: bool) -> Result<Vec<u32>> {
        if claim {
            // Most SELECTs find nothing new to claim: answer those without queueing a write.
            let unclaimed = self
                .readers
                .run_quick(move |c| {
                    let st = messages::mailbox_state(c, mailbox)?;
                    Ok(st.recent_boundary < st.uidnext)
                })
                .await?;
            if !unclaimed {
                return Ok(Vec::new());
            }
            self.writer
                .run_relaxed(move |ctx| reads::claim_recent(ctx.conn, mailbox, true))
                .await
        } else {
            self.readers
                .run(move |c| reads::claim_recent(c, mailbox, false))
                .await
        }
    }

    async fn message_objects(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
    ) -> Result<Vec<(u32, MessageObjects)>> {
        let uids = uids.to_vec();
        self.readers
            .run(move |c| objects::message_objects(c, mailbox, &uids))
            .await
    }

    async fn urlauth_key(
        &self,
        user: UserId,
        mailbox: MailboxId,
        create: bool,
    ) -> Result<Option<Vec<u8>>> {
        let known = self
            .readers
            .run_quick(move |c| urlauth::get_key(c, user, mailbox))
            .await?;
        if known.is_some() || !create {
            return Ok(known);
        }
        self.writer
            .run(move |ctx| urlauth::create_key(ctx.conn, user, mailbox))
            .await
    }

    async fn reset_urlauth_keys(&self, user: UserId, mailbox: Option<MailboxId>) -> Result<()> {
        self.writer
            .run(move |ctx| urlauth::reset(ctx.conn, user, mailbox))
            .await
    }

    async fn preview(&self, mailbox: MailboxId, uid: u32) -> Result<Option<String>> {
        self.readers
            .run(move |c| objects::preview(c, mailbox, uid))
            .await
    }

    async fn replace(
        &self,
        from: MailboxId,
        uid: u32,
        user: UserId,
        name: &str,
        message: NewMessage,
    ) -> Result<Option<(u32, u32)>> {
        let prepared = self.prepare(vec![message]).await?;
        let name = name.to_owned();
        let limits = self.default_quota();
        self.writer
            .run(move |ctx| {
                // The message to replace must still be there (RFC 8508 §3.4: nothing is done
                // if it cannot be removed).
                if messages::select_rows(ctx.conn, from, &[uid])?.is_empty() {
                    ctx.gc.extend(prepared.iter().map(|m| m.hash));
                    return Err(crate::StoreError::NoSuchMailbox);
                }
                let guard = quota::Guard::of_user(ctx.conn, user, limits)?;
                let Some((uidvalidity, uids)) = messages::append_to(ctx, user, &name, prepared)?
                else {
                    return Ok(None);
                };
                messages::expunge(ctx, from, &[uid])?;
                quota::Guard::check(guard, ctx.conn)?;
                Ok(uids.first().map(|&u| (uidvalidity, u)))
            })
            .await
    }

    async fn import_mailbox(
        &self,
        user: UserId,
        name: &str,
        special_use: Option<&str>,
        uidvalidity: Option<u32>,
    ) -> Result<Mailbox> {
        let (name, su) = (name.to_owned(), special_use.map(str::to_owned));
        self.writer
            .run(move |ctx| import::import_mailbox(ctx, user, &name, su.as_deref(), uidvalidity))
            .await
    }

    async fn append_with_uids(
        &self,
        mailbox: MailboxId,
        msgs: Vec<(u32, NewMessage)>,
    ) -> Result<u32> {
        let (uids, msgs): (Vec<u32>, Vec<NewMessage>) = msgs.into_iter().unzip();
        import::check_ascending(&uids)?;
        let prepared = self.prepare(msgs).await?;
        let limits = self.default_quota();
        self.writer
            .run(move |ctx| {
                let guard = quota::Guard::of_mailbox(ctx.conn, mailbox, limits)?;
                let done = import::append_with_uids(ctx, mailbox, &uids, prepared)?;
                quota::Guard::check(guard, ctx.conn)?;
                Ok(done)
            })
            .await
    }

    async fn server_secrets(&self) -> Result<Vec<(String, Vec<u8>)>> {
        self.readers.run_quick(copy::server_secrets).await
    }

    async fn set_server_secret(&self, name: &str, value: &[u8]) -> Result<()> {
        let (name, value) = (name.to_owned(), value.to_vec());
        self.writer
            .run(move |ctx| copy::set_server_secret(ctx.conn, &name, &value))
            .await
    }

    async fn recovery_code_hashes(&self, name: &str) -> Result<Vec<Vec<u8>>> {
        let name = name.to_owned();
        self.readers
            .run_quick(move |c| copy::recovery_code_hashes(c, &name))
            .await
    }

    async fn app_password_hashes(&self, name: &str) -> Result<Vec<crate::StoredAppPassword>> {
        let name = name.to_owned();
        self.readers
            .run_quick(move |c| copy::app_password_hashes(c, &name))
            .await
    }

    async fn restore_app_password(&self, name: &str, app: &crate::StoredAppPassword) -> Result<()> {
        let (name, app) = (name.to_owned(), app.clone());
        self.writer
            .run(move |ctx| copy::restore_app_password(ctx.conn, &name, &app))
            .await
    }

    async fn restore_mailbox(&self, user: UserId, mailbox: &Mailbox) -> Result<Mailbox> {
        let mailbox = mailbox.clone();
        self.writer
            .run(move |ctx| copy::restore_mailbox(ctx, user, &mailbox))
            .await
    }

    async fn restore_message_state(
        &self,
        mailbox: MailboxId,
        uidnext: u32,
        highest_modseq: u64,
        messages: &[crate::MessageState],
    ) -> Result<()> {
        let messages = messages.to_vec();
        self.writer
            .run(move |ctx| {
                copy::restore_message_state(ctx, mailbox, uidnext, highest_modseq, &messages)
            })
            .await
    }

    async fn add_domain(&self, domain: &str) -> Result<()> {
        let d = domain.to_owned();
        self.writer
            .run(move |ctx| domains::add_domain(ctx.conn, &d))
            .await
    }

    async fn delete_domain(&self, domain: &str) -> Result<()> {
        let d = domain.to_owned();
        self.writer
            .run(move |ctx| domains::delete_domain(ctx.conn, &d))
            .await
    }

    async fn list_domains(&self) -> Result<Vec<String>> {
        self.readers.run(domains::list_domains).await
    }

    async fn is_local_domain(&self, domain: &str) -> Result<bool> {
        let d = domain.to_owned();
        self.readers
            .run_quick(move |c| domains::is_local_domain(c, &d))
            .await
    }

    async fn add_alias(&self, address: &str, target: &str) -> Result<()> {
        let (a, t) = (address.to_owned(), target.to_owned());
        self.writer
            .run(move |ctx| domains::add_alias(ctx.conn, &a, &t))
            .await
    }

    async fn delete_alias(&self, address: &str) -> Result<()> {
        let a = address.to_owned();
        self.writer
            .run(move |ctx| domains::delete_alias(ctx.conn, &a))
            .await
    }

    async fn list_aliases(&self) -> Result<Vec<(String, String)>> {
        self.readers.run(domains::list_aliases).await
    }

    async fn alias_target(&self, address: &str) -> Result<Option<String>> {
        let a = address.to_owned();
        self.readers
            .run_quick(move |c| domains::alias_target(c, &a))
            .await
    }

    fn set_default_quota(&self, limits: QuotaLimits) {
        *self
            .default_quota
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = limits;
    }

    async fn set_quota(
        &self,
        user: &str,
        storage: Option<QuotaSetting>,
        messages: Option<QuotaSetting>,
    ) -> Result<()> {
        let name = user.to_owned();
        self.writer
            .run(move |ctx| quota::set(ctx.conn, &name, storage, messages))
            .await
    }

    async fn quota(&self, user: UserId) -> Result<Quota> {
        let limits = self.default_quota();
        self.readers
            .run_quick(move |c| quota::get(c, user, limits))
            .await
    }

    fn notifier(&self) -> &Notifier {
        &self.notifier
    }

    async fn check(&self) -> Result<Vec<String>> {
        // The index is checked as a search would see it.
        self.index_waiting(None).await?;
        let blobs = self.blobs.clone();
        self.readers.run(move |c| check::check(c, &blobs)).await
    }
}
