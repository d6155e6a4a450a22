//! A small pool of read connections. WAL lets them read beside the writer and each other, so
//! reads of different users never wait on one lock; they run on tokio's blocking threads.

use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

use super::schema::open_reader;
use crate::{Result, StoreError};

/// Reads running at once (and connections kept). More would only queue for the few cores
/// while holding blocking threads and connections; extra readers wait on the async side.
const MAX_READERS: usize = 16;

pub(super) struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl ReadPool {
    pub(super) fn new(path: PathBuf) -> Arc<ReadPool> {
        Arc::new(ReadPool {
            path,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(MAX_READERS)),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => open_reader(&self.path)?,
        };
        self.with_conn(conn, f)
    }

    /// Runs `f` with `conn`, then keeps `conn` for the next read.
    fn with_conn<T>(
        &self,
        conn: Connection,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        let r = f(&conn);
        // A connection left inside a transaction (panic or early return) is not reused.
        if conn.is_autocommit() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < MAX_READERS {
                idle.push(conn);
            }
        }
        r
    }

    /// Runs `f`, a lookup of a row or two by key, on the caller's thread if a connection is
    /// free (else as `run`): a round trip through a blocking thread costs two thread wake-ups,
    /// more than such a read. WAL readers do not wait for the writer.
    pub(super) async fn run_quick<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        if let Ok(_permit) = self.permits.try_acquire() {
            let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            if let Some(conn) = idle {
                return self.with_conn(conn, f);
            }
        }
        self.run(f).await
    }

    /// Runs `f` with a read connection on a blocking thread.
    pub(super) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let permit = self.permits.clone().acquire_owned().await;
        let permit = permit.map_err(|_| StoreError::Internal("read pool closed".into()))?;
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            pool.with(f)
        })
        .await
        .map_err(|e| StoreError::Internal(format!("read task: {e}")))?
    }
}
