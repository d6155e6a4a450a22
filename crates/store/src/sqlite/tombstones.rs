//! Pruning the `expunged` tombstones (RFC 7162 §3.2.5.1, §3.2.6).
//!
//! Every expunge leaves a tombstone (mailbox, UID, modseq) so a resynchronizing client can be
//! told exactly what vanished. Tombstones older than the retention are deleted; per mailbox
//! the highest modseq deleted so far is remembered in `tombstone_horizon` (Cyrus calls it
//! "deletedmodseq"). A client asking about changes since a modseq below that horizon can no
//! longer get an exact answer: the session then reports every UID of the asked range that is
//! not present (the over-report RFC 7162 §3.2.6 allows), so the client stays correct.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::messages;
use super::writer::WriteCtx;
use crate::{MailboxId, Result};

/// Created at every open (idempotent), beside the main schema.
pub(super) const SCHEMA: &str = "
-- Highest modseq of a tombstone pruned from `expunged`, per mailbox. Mailbox ids are never
-- reused (AUTOINCREMENT); rows of deleted mailboxes are removed at the next prune.
CREATE TABLE IF NOT EXISTS tombstone_horizon(
    mailbox_id INTEGER PRIMARY KEY,
    pruned_modseq INTEGER NOT NULL
);
";

/// The highest modseq whose tombstones may have been pruned (0: every expunge is known).
pub(super) fn horizon(conn: &Connection, mailbox: MailboxId) -> Result<u64> {
    let v: Option<i64> = conn
        .prepare_cached("SELECT pruned_modseq FROM tombstone_horizon WHERE mailbox_id = ?1")?
        .query_row([mailbox], |r| r.get(0))
        .optional()?;
    Ok(v.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
}

/// Delete the tombstones of messages expunged at or before `cutoff` (unix seconds), first
/// releasing any body they still hold, and raise each mailbox's horizon. Tombstones without
/// an expunge time (made before version 2 of the schema) count as old. Returns how many
/// were deleted.
pub(super) fn prune(ctx: &mut WriteCtx<'_>, cutoff: i64) -> Result<u64> {
    messages::release_held(ctx, cutoff)?;
    let conn = ctx.conn;
    let gone: Vec<(i64, i64, i64)> = conn
        .prepare_cached(
            "SELECT mailbox_id, max(modseq), count(*) FROM expunged
             WHERE expunged_at IS NULL OR expunged_at <= ?1 GROUP BY mailbox_id",
        )?
        .query_map([cutoff], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut pruned = 0u64;
    for (mailbox, modseq, count) in gone {
        conn.prepare_cached(
            "INSERT INTO tombstone_horizon(mailbox_id, pruned_modseq) VALUES (?1, ?2)
             ON CONFLICT(mailbox_id) DO UPDATE
             SET pruned_modseq = max(pruned_modseq, excluded.pruned_modseq)",
        )?
        .execute(params![mailbox, modseq])?;
        // A body still held here would leak its reference: release_held above freed them.
        conn.prepare_cached(
            "DELETE FROM expunged WHERE mailbox_id = ?1 AND blob_id IS NULL
             AND (expunged_at IS NULL OR expunged_at <= ?2)",
        )?
        .execute(params![mailbox, cutoff])?;
        pruned += u64::try_from(count).unwrap_or(0);
    }
    conn.prepare_cached(
        "DELETE FROM tombstone_horizon WHERE mailbox_id NOT IN (SELECT id FROM mailboxes)",
    )?
    .execute([])?;
    Ok(pruned)
}

/// How long tombstones are kept, and when they were last pruned. Pruning is opportunistic:
/// it runs inside an expunge's own write job (tombstones only grow with expunges), at most
/// once per [`PRUNE_INTERVAL`] (or the retention, if shorter: 0 prunes at every expunge).
pub(super) struct Retention {
    secs: AtomicU64,
    last: AtomicI64,
}

/// Pruning more often would only cost the writer time.
const PRUNE_INTERVAL: u64 = 3600;

/// The default retention: 30 days (see `[store] tombstone_days`).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 86400);

impl Default for Retention {
    fn default() -> Self {
        Retention {
            secs: AtomicU64::new(DEFAULT_RETENTION.as_secs()),
            last: AtomicI64::new(0),
        }
    }
}

impl Retention {
    pub(super) fn set(&self, age: Duration) {
        self.secs.store(age.as_secs(), Ordering::Relaxed);
        self.last.store(0, Ordering::Relaxed);
    }

    /// The cutoff to prune at now, if a prune is due (and then it counts as done).
    pub(super) fn due(&self) -> Option<i64> {
        let secs = self.secs.load(Ordering::Relaxed);
        let now = now();
        let last = self.last.load(Ordering::Relaxed);
        let interval = i64::try_from(secs.min(PRUNE_INTERVAL)).unwrap_or(0);
        if now.saturating_sub(last) < interval {
            return None;
        }
        self.last.store(now, Ordering::Relaxed);
        Some(now.saturating_sub(i64::try_from(secs).unwrap_or(i64::MAX)))
    }
}

pub(super) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
