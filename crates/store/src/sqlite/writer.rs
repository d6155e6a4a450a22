//! Group commit: one thread owns the write connection and drains a queue of write jobs,
//! running every job that is waiting in a single transaction (each in its own savepoint, so
//! one failing job does not undo the others) and paying one WAL fsync for the lot.
//!
//! After the commit it wakes the sessions of changed mailboxes, deletes body files whose last
//! reference went away (rechecking the index, since a later job in the batch may have added
//! the same body again), and only then answers the callers.

use rusqlite::{Connection, TransactionBehavior};
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;

use super::blobs::{BlobDir, Hash};
use super::search::{self, Indexer};
use crate::{MailboxId, Notifier, Result, StoreError};

/// Most jobs in one transaction: bounds the latency a job can add to the others.
const MAX_BATCH: usize = 256;

/// After this long without writes, the WAL is checkpointed and truncated to zero bytes: a WAL
/// left at its peak size is disk space every installation pays for while nothing happens.
const IDLE_CHECKPOINT: Duration = Duration::from_millis(500);
/// How long the idle checkpoint waits for readers; busy readers mean "try at the next idle".
const IDLE_CHECKPOINT_WAIT: Duration = Duration::from_millis(50);
/// After this long without writes, bodies waiting for the search index are indexed.
const IDLE_INDEX: Duration = Duration::from_millis(20);
/// Between writes, waiting bodies are indexed only while the writer was busy (with write
/// jobs or indexing) for less than this share of the last `LOAD_WINDOW`: under a heavy load,
/// indexing waits for idle time or for a search of the mailbox (see `search`), and delivery
/// goes first. (Indexing counts: else a writer alternating between jobs and long flushes
/// would look lightly loaded and go on flushing.)
const LIGHT_LOAD: f64 = 0.5;
const LOAD_WINDOW: Duration = Duration::from_millis(250);
/// At shutdown, waiting bodies are indexed for at most this long.
const SHUTDOWN_INDEX: Duration = Duration::from_secs(2);
/// The write connection's usual busy timeout (see `schema::open_writer`).
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// What a write job sees: the connection (inside its savepoint) and what to do after commit.
pub(super) struct WriteCtx<'a> {
    pub conn: &'a Connection,
    pub blobs: &'a BlobDir,
    /// (mailbox, new highest modseq) to announce once committed.
    pub notify: Vec<(MailboxId, u64)>,
    /// Bodies that may have lost their last reference (or were written for a failed job).
    pub gc: Vec<Hash>,
    /// The search index's writer state (see `search::Indexer`).
    pub index: &'a mut Indexer,
}

type Completion = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
type JobFn = Box<dyn FnOnce(&mut WriteCtx<'_>) -> (bool, Completion) + Send>;

struct Job {
    /// The commit must be fsynced before the caller hears of it.
    durable: bool,
    run: JobFn,
}

/// Counters for tests and metrics.
#[derive(Debug, Default)]
pub struct WriteStats {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Of those, the ones fsynced at commit (the others ride on a later fsync).
    pub durable_commits: AtomicU64,
    /// Write jobs run.
    pub jobs: AtomicU64,
    /// Jobs waiting in the queue.
    pub queued: AtomicUsize,
    /// Commits that only moved waiting bodies into the search index (not in `commits`).
    pub index_commits: AtomicU64,
    /// Bodies committed but not yet in the search index (0: none).
    pub search_waiting: AtomicUsize,
    /// The writer keeps no more tokens for waiting bodies (`search::Indexer::full`): an
    /// APPEND need not compute them.
    pub tokens_full: AtomicBool,
    /// Tests: no indexing at idle or between writes, only for searches (and at shutdown).
    #[cfg(test)]
    pub index_paused: AtomicBool,
}

impl WriteStats {
    fn index_paused(&self) -> bool {
        #[cfg(test)]
        return self.index_paused.load(Ordering::SeqCst);
        #[cfg(not(test))]
        false
    }
}

pub(super) struct Writer {
    sender: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    pub stats: Arc<WriteStats>,
}

impl Writer {
    pub(super) fn start(
        conn: Connection,
        blobs: BlobDir,
        notifier: Arc<Notifier>,
    ) -> Result<Writer> {
        let (sender, rx) = mpsc::channel::<Job>();
        let stats = Arc::new(WriteStats::default());
        // Known before the first job: a search right after opening indexes what still waits.
        let index = Indexer::open(&conn);
        stats
            .search_waiting
            .store(index.waiting(), Ordering::SeqCst);
        let st = stats.clone();
        let thread = std::thread::Builder::new()
            .name("mailkeep-store-writer".into())
            .spawn(move || writer_loop(conn, rx, blobs, notifier, st, index))?;
        Ok(Writer {
            sender: Some(sender),
            thread: Some(thread),
            stats,
        })
    }

    /// Runs `f` on the writer thread; returns once its transaction is committed and fsynced.
    pub(super) async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T> + Send + 'static,
    {
        self.submit(true, f).await
    }

    /// Like `run`, for changes that need not survive a power loss on their own (flags,
    /// expunges, \Recent claims): committed, so a crash of the process keeps them, but the WAL
    /// is fsynced only by the next durable commit or checkpoint. Dovecot's default
    /// (`mail_fsync = optimized`) fsyncs its index no more than this.
    pub(super) async fn run_relaxed<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T> + Send + 'static,
    {
        self.submit(false, f).await
    }

    async fn submit<T, F>(&self, durable: bool, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let run: JobFn = Box::new(move |ctx| {
            let r = f(ctx);
            let ok = r.is_ok();
            let done: Completion = Box::new(move |status| {
                let out = match (r, status) {
                    (Ok(v), Ok(())) => Ok(v),
                    (Ok(_), Err(e)) => Err(StoreError::Internal(e)),
                    (Err(e), _) => Err(e),
                };
                let _ = tx.send(out);
            });
            (ok, done)
        });
        let job = Job { durable, run };
        let sender = self.sender.as_ref().ok_or_else(stopped)?;
        self.stats.queued.fetch_add(1, Ordering::SeqCst);
        if sender.send(job).is_err() {
            self.stats.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(stopped());
        }
        // A dropped sender means the job never ran to a commit (e.g. BEGIN failed).
        rx.await
            .map_err(|_| StoreError::Internal("write was not committed".into()))?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has finished what is queued.
        self.sender.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Internal("store writer stopped".into())
}

fn writer_loop(
    mut conn: Connection,
    rx: mpsc::Receiver<Job>,
    blobs: BlobDir,
    notifier: Arc<Notifier>,
    stats: Arc<WriteStats>,
    mut index: Indexer,
) {
    let mut written = false;
    let mut load = Load::new();
    // `open_writer` sets synchronous = FULL.
    let mut sync = Sync { full: true };
    loop {
        let idle = if index.waiting() > 0 || index.prune_waiting {
            IDLE_INDEX
        } else {
            IDLE_CHECKPOINT
        };
        let first = match rx.recv_timeout(idle) {
            Ok(job) => job,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if index.waiting() > 0 && !stats.index_paused() {
                    let started = std::time::Instant::now();
                    flush_index(&mut conn, &blobs, &mut index, &mut sync, &stats);
                    load.busy(started);
                    // The flush grew the WAL: truncate it once idle, as after a write.
                    written = true;
                } else if index.prune_waiting {
                    prune_vocabulary(&mut conn, &blobs, &mut index, &mut sync);
                    written = true;
                } else if written && truncate_wal(&conn) {
                    written = false;
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Leave little for the next start to compute again, but do not hold up a
                // shutdown for long: after a heavy load many bodies may wait, and the next
                // start indexes what is left when it is idle.
                let deadline = std::time::Instant::now() + SHUTDOWN_INDEX;
                while index.waiting() > 0 && std::time::Instant::now() < deadline {
                    if !flush_index(&mut conn, &blobs, &mut index, &mut sync, &stats) {
                        break;
                    }
                }
                break;
            }
        };
        written = true;
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        stats.queued.fetch_sub(batch.len(), Ordering::SeqCst);
        stats.jobs.fetch_add(batch.len() as u64, Ordering::SeqCst);
        let mut notify = Vec::new();
        let mut gc = Vec::new();
        let mut done = Vec::new();
        let jobs = batch.len();
        let durable = batch.iter().any(|j| j.durable);
        sync.set(&conn, durable);
        let started = std::time::Instant::now();
        let status = run_batch(
            &mut conn,
            &blobs,
            batch,
            &mut notify,
            &mut gc,
            &mut done,
            &mut index,
        );
        if status.is_err() {
            index.rolled_back();
        }
        stats
            .search_waiting
            .store(index.waiting(), Ordering::SeqCst);
        stats.tokens_full.store(index.full(), Ordering::Relaxed);
        load.busy(started);
        tracing::debug!(
            jobs,
            elapsed_us = started.elapsed().as_micros() as u64,
            "store commit"
        );
        if status.is_ok() {
            stats.commits.fetch_add(1, Ordering::SeqCst);
            if durable {
                stats.durable_commits.fetch_add(1, Ordering::SeqCst);
            }
            let mut latest: HashMap<MailboxId, u64> = HashMap::new();
            for (mb, modseq) in notify {
                let e = latest.entry(mb).or_insert(modseq);
                *e = (*e).max(modseq);
            }
            for (mb, modseq) in latest {
                notifier.notify(mb, modseq);
            }
        } else if let Err(e) = &status {
            tracing::error!(error = %e, "store commit failed");
        }
        if !durable && !gc.is_empty() {
            // A body file goes only once the commit that dropped it cannot be undone.
            if let Err(e) = sync_wal(&conn) {
                tracing::error!(error = %e, "syncing the WAL; body files kept");
                gc.clear();
            }
        }
        collect_garbage(&conn, &blobs, gc);
        for (d, job_status) in done {
            d(status.clone().and(job_status));
        }
        if index.waiting() >= Indexer::FLUSH_AT
            && stats.queued.load(Ordering::SeqCst) == 0
            && load.light()
            && !stats.index_paused()
        {
            let started = std::time::Instant::now();
            flush_index(&mut conn, &blobs, &mut index, &mut sync, &stats);
            load.busy(started);
        }
    }
}

/// The share of recent time the writer spent busy (running write jobs or indexing), not
/// waiting for jobs.
struct Load {
    window_start: std::time::Instant,
    busy: Duration,
    /// The share in the last complete window.
    last: f64,
}

impl Load {
    fn new() -> Load {
        Load {
            window_start: std::time::Instant::now(),
            busy: Duration::ZERO,
            last: 0.0,
        }
    }

    /// A batch that started at `started` has just finished.
    fn busy(&mut self, started: std::time::Instant) {
        self.busy_until(started, std::time::Instant::now());
    }

    fn busy_until(&mut self, started: std::time::Instant, now: std::time::Instant) {
        self.busy += now.saturating_duration_since(started.max(self.window_start));
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= LOAD_WINDOW {
            self.last = self.busy.as_secs_f64() / elapsed.as_secs_f64();
            self.window_start = now;
            self.busy = Duration::ZERO;
        }
    }

    /// Light enough to index between writes.
    fn light(&self) -> bool {
        self.last < LIGHT_LOAD
    }
}

/// The connection's `synchronous` setting: FULL for commits that must be durable on their own.
struct Sync {
    full: bool,
}

impl Sync {
    fn set(&mut self, conn: &Connection, full: bool) {
        if full != self.full {
            let level = if full { "FULL" } else { "NORMAL" };
            match conn.pragma_update(None, "synchronous", level) {
                Ok(()) => self.full = full,
                Err(e) => tracing::error!(error = %e, "setting synchronous"),
            }
        }
    }
}

/// Indexes a batch of waiting bodies in a transaction of its own. It need not be durable by
/// itself: lost with a power cut, the bodies are still in `search_pending`. True if done.
fn flush_index(
    conn: &mut Connection,
    blobs: &BlobDir,
    index: &mut Indexer,
    sync: &mut Sync,
    stats: &WriteStats,
) -> bool {
    sync.set(conn, false);
    let started = std::time::Instant::now();
    let r = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::from)
        .and_then(|tx| {
            let n = index.flush(&tx, blobs, Indexer::BATCH)?;
            tx.commit()?;
            Ok(n)
        });
    let ok = match r {
        Ok(n) => {
            stats.index_commits.fetch_add(1, Ordering::SeqCst);
            tracing::debug!(
                bodies = n,
                elapsed_us = started.elapsed().as_micros() as u64,
                "search index flush"
            );
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "indexing waiting bodies");
            index.rolled_back();
            false
        }
    };
    stats
        .search_waiting
        .store(index.waiting(), Ordering::SeqCst);
    stats.tokens_full.store(index.full(), Ordering::Relaxed);
    ok
}

/// Prunes a batch of words from an account's search vocabulary (see `search::prune_words`),
/// in a transaction of its own that first indexes every waiting body. Not durable by itself:
/// lost, the account is still marked for pruning.
fn prune_vocabulary(conn: &mut Connection, blobs: &BlobDir, index: &mut Indexer, sync: &mut Sync) {
    sync.set(conn, false);
    let started = std::time::Instant::now();
    let r = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::from)
        .and_then(|tx| {
            index.flush(&tx, blobs, usize::MAX)?;
            let pruned = search::prune_words(&tx, &mut index.known, search::PRUNE_BATCH)?;
            tx.commit()?;
            Ok(pruned)
        });
    match r {
        Ok(None) => index.prune_waiting = false,
        Ok(Some(words)) => tracing::debug!(
            words,
            elapsed_us = started.elapsed().as_micros() as u64,
            "search vocabulary pruned"
        ),
        Err(e) => {
            tracing::error!(error = %e, "pruning the search vocabulary");
            index.rolled_back();
            // Not retried at once: the next write (or restart) tries again.
            index.prune_waiting = false;
        }
    }
}

/// fsyncs the WAL after a commit made with synchronous = NORMAL.
fn sync_wal(conn: &Connection) -> std::io::Result<()> {
    let db = conn
        .path()
        .ok_or_else(|| std::io::Error::other("in-memory database"))?;
    std::fs::File::open(format!("{db}-wal"))?.sync_all()
}

/// `wal_checkpoint(TRUNCATE)` without making writers wait behind readers: true when done.
fn truncate_wal(conn: &Connection) -> bool {
    let _ = conn.busy_timeout(IDLE_CHECKPOINT_WAIT);
    let r = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    });
    let _ = conn.busy_timeout(BUSY_TIMEOUT);
    match r {
        // First column: 1 when a reader or writer kept the checkpoint from finishing.
        Ok(busy) => busy == 0,
        Err(e) => {
            tracing::debug!(error = %e, "idle WAL checkpoint");
            false
        }
    }
}

fn run_batch(
    conn: &mut Connection,
    blobs: &BlobDir,
    mut batch: Vec<Job>,
    notify: &mut Vec<(MailboxId, u64)>,
    gc: &mut Vec<Hash>,
    done: &mut Vec<(Completion, std::result::Result<(), String>)>,
    index: &mut Indexer,
) -> std::result::Result<(), String> {
    let mut tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    if batch.len() == 1 {
        // A lone job needs no savepoint (whose journal copies every page it changes): if it
        // fails, the transaction is rolled back whole.
        let job = batch.pop().expect("one job");
        let Some(run) = run_job(&tx, blobs, job, index) else {
            return Err("store write job panicked".into());
        };
        gc.extend(run.gc);
        let st = if run.ok {
            tx.commit().map_err(|e| e.to_string())
        } else {
            drop(tx);
            Ok(())
        };
        if run.ok && st.is_ok() {
            notify.extend(run.notify);
        } else {
            index.rolled_back();
        }
        done.push((run.done, Ok(())));
        return st;
    }
    for job in batch {
        let Ok(sp) = tx.savepoint() else {
            continue; // dropping the job tells its caller it was not committed
        };
        let Some(run) = run_job(&sp, blobs, job, index) else {
            continue;
        };
        gc.extend(run.gc);
        // A failed job's savepoint is rolled back when dropped.
        let st = if run.ok {
            sp.commit().map_err(|e| e.to_string())
        } else {
            Ok(())
        };
        if run.ok && st.is_ok() {
            notify.extend(run.notify);
        } else {
            // Its vocabulary and `search_pending` changes were rolled back with it.
            index.rolled_back();
        }
        done.push((run.done, st));
    }
    tx.commit().map_err(|e| e.to_string())
}

/// What running one job left: whether it succeeded, its completion, and what to do after
/// the commit.
struct JobRun {
    ok: bool,
    done: Completion,
    notify: Vec<(MailboxId, u64)>,
    gc: Vec<Hash>,
}

/// Runs one job on `conn`; `None` if it panicked (its completion is dropped, which tells its
/// caller it was not committed; the caller rolls back what it wrote).
fn run_job(conn: &Connection, blobs: &BlobDir, job: Job, index: &mut Indexer) -> Option<JobRun> {
    let mut ctx = WriteCtx {
        conn,
        blobs,
        notify: Vec::new(),
        gc: Vec::new(),
        index: &mut *index,
    };
    let Ok((ok, done)) = catch_unwind(AssertUnwindSafe(|| (job.run)(&mut ctx))) else {
        tracing::error!("store write job panicked");
        index.rolled_back();
        return None;
    };
    Some(JobRun {
        ok,
        done,
        notify: ctx.notify,
        gc: ctx.gc,
    })
}

/// Deletes the files of bodies no longer in the index. Runs on the writer thread, so no job
/// can add a reference in between the check and the removal.
fn collect_garbage(conn: &Connection, blobs: &BlobDir, mut gc: Vec<Hash>) {
    gc.sort_unstable();
    gc.dedup();
    for h in gc {
        let present = conn
            .prepare_cached("SELECT 1 FROM blobs WHERE hash = ?1")
            .and_then(|mut s| s.exists([&h[..]]));
        match present {
            Ok(false) => {
                if let Err(e) = blobs.remove(&h) {
                    tracing::warn!(error = %e, "removing unreferenced blob");
                }
            }
            Ok(true) => {}
            Err(e) => tracing::warn!(error = %e, "checking blob reference"),
        }
    }
}

#[cfg(test)]
mod tests;
