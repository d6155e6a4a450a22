//! Changes made by other processes on the same data directory (`mailkeep import` while the
//! server runs): the writer's notifications reach only sessions of its own process, so a
//! thread looks at `PRAGMA data_version` of a read connection every [`INTERVAL`]; when another
//! connection committed, the mailboxes some session watches are read again and those whose
//! HIGHESTMODSEQ is above what their sessions were last told are notified.
//!
//! `data_version` changes with commits of the process's own writer too; those mailboxes'
//! sessions were told already, so the modseq comparison keeps them from a second wake-up.

use std::path::PathBuf;
use std::sync::Weak;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

use super::schema::open_reader;
use crate::Notifier;

/// How often the watcher looks for other processes' commits.
pub(super) const INTERVAL: Duration = Duration::from_millis(500);

/// Starts the watcher thread; it ends by itself once the store (its notifier) is gone.
pub(super) fn start(index: PathBuf, notifier: Weak<Notifier>) {
    let spawned = std::thread::Builder::new()
        .name("mailkeep-store-watch".into())
        .spawn(move || run(&index, &notifier));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot watch for other processes' writes");
    }
}

fn run(index: &std::path::Path, notifier: &Weak<Notifier>) {
    let mut conn: Option<Connection> = None;
    let mut last: Option<i64> = None;
    loop {
        std::thread::sleep(INTERVAL);
        let Some(notifier) = notifier.upgrade() else {
            return;
        };
        if conn.is_none() {
            conn = open_reader(index).ok();
        }
        let Some(c) = conn.as_ref() else { continue };
        match check(c, &notifier, &mut last) {
            Ok(()) => {}
            Err(e) => {
                tracing::debug!(error = %e, "watching for other processes' writes");
                conn = None;
            }
        }
    }
}

/// One look: if the database changed since `last`, notify the watched mailboxes that moved on.
fn check(conn: &Connection, notifier: &Notifier, last: &mut Option<i64>) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA data_version", [], |r| r.get(0))?;
    if *last == Some(version) {
        return Ok(());
    }
    *last = Some(version);
    let watched = notifier.watched();
    if watched.is_empty() {
        return Ok(());
    }
    let mut st = conn.prepare_cached("SELECT highest_modseq FROM mailboxes WHERE id = ?1")?;
    for (mailbox, told) in watched {
        let now: Option<i64> = st.query_row([mailbox], |r| r.get(0)).optional()?;
        match now {
            Some(m) if m as u64 > told => notifier.notify(mailbox, m as u64),
            // Deleted by another process: its sessions find out when they look.
            None => notifier.notify(mailbox, told + 1),
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::MailStore;
    use crate::conformance::message;
    use crate::sqlite::SqliteStore;
    use std::time::Duration;

    /// A write by another store on the same directory (another process, in effect) wakes the
    /// sessions watching that mailbox in this one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_writers_are_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let a = SqliteStore::open(dir.path()).unwrap();
        let user = a.create_user("w", "h").await.unwrap().id;
        let inbox = a.get_mailbox(user, "INBOX").await.unwrap().unwrap().id;
        let (_, first) = a.append(inbox, vec![message("x", "y")]).await.unwrap();
        assert_eq!(first, vec![1]);
        let mut sub = a.notifier().subscribe(inbox);
        // What this process did itself was told already (the watcher adds nothing).
        sub.receiver.borrow_and_update();
        let b = SqliteStore::open(dir.path()).unwrap();
        b.append(inbox, vec![message("from b", "z")]).await.unwrap();
        let want = b.status(inbox).await.unwrap().highest_modseq;
        let woke = tokio::time::timeout(Duration::from_secs(3), async {
            while *sub.receiver.borrow_and_update() < want {
                sub.receiver.changed().await.unwrap();
            }
        })
        .await;
        assert!(woke.is_ok(), "a write by another store wakes the session");
        assert_eq!(a.messages(inbox).await.unwrap().len(), 2);
    }
}
