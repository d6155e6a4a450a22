//! The index schema and connection setup.
//!
//! Parsed info (ENVELOPE, BODYSTRUCTURE, part tree, search text) depends only on the message
//! bytes, so it lives with the blob (`blobs`, `search`) and is stored once however many
//! mailboxes hold a copy; `messages` rows stay small, which keeps SELECT's full scan fast.

use rusqlite::Connection;
use std::path::Path;

use super::writer::BUSY_TIMEOUT;
use super::{parsed, search};
use crate::Result;

/// Bumped with each incompatible schema change; `PRAGMA user_version` records it.
pub(super) const SCHEMA_VERSION: i64 = 5;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
-- AUTOINCREMENT: ids of deleted users and mailboxes are never handed out again, so a
-- session still holding one cannot reach someone else's data.
CREATE TABLE IF NOT EXISTS users(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mailboxes(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL,
    highest_modseq INTEGER NOT NULL,
    special_use TEXT,
    -- rev1 \\Recent: UIDs >= this are recent until a session claims them.
    recent_boundary INTEGER NOT NULL DEFAULT 1,
    -- STATUS counters, kept up to date by every change so STATUS reads one row.
    messages INTEGER NOT NULL DEFAULT 0,
    unseen INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    size INTEGER NOT NULL DEFAULT 0,
    UNIQUE(user_id, name)
);
CREATE TABLE IF NOT EXISTS subscriptions(
    user_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY(user_id, name)
) WITHOUT ROWID;
-- One row per distinct message body: in `bodies` if small, else the file
-- blobs/<hash[0..2]>/<hash[2..]>.
CREATE TABLE IF NOT EXISTS blobs(
    id INTEGER PRIMARY KEY,
    hash BLOB NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    refcount INTEGER NOT NULL,
    -- ENVELOPE, BODYSTRUCTURE, BODY and part tree, packed (see `parsed.rs`).
    parsed BLOB NOT NULL,
    sent_date INTEGER,
    -- PREVIEW text (RFC 8970), computed at delivery; NULL for mail stored before.
    preview TEXT
);
-- Packed (zstd) bodies kept in the index, id = blobs.id; bodies without a row are files.
CREATE TABLE IF NOT EXISTS bodies(
    id INTEGER PRIMARY KEY,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS messages(
    mailbox_id INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    blob_id INTEGER NOT NULL,
    size INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    keywords TEXT NOT NULL,
    modseq INTEGER NOT NULL,
    internal_date INTEGER NOT NULL,
    date_offset INTEGER NOT NULL,
    -- SAVEDATE (RFC 8514): when the row was written (APPEND, COPY, MOVE, delivery), Unix
    -- seconds; NULL for mail stored before version 5 kept it (reported as INTERNALDATE).
    saved INTEGER,
    -- THREADID (RFC 8474): the 12 bytes after its `T` (see `objects`); NULL for none.
    thread BLOB,
    PRIMARY KEY(mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_modseq ON messages(mailbox_id, modseq);
CREATE INDEX IF NOT EXISTS messages_blob ON messages(blob_id);
-- Tombstones. For EXPUNGE_GRACE after an expunge the body stays referenced (blob_id), so a
-- session that has not yet been told of the expunge can still FETCH it (RFC 2180 §4.1.1).
CREATE TABLE IF NOT EXISTS expunged(
    mailbox_id INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    blob_id INTEGER,
    expunged_at INTEGER,
    PRIMARY KEY(mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS expunged_modseq ON expunged(mailbox_id, modseq);
CREATE INDEX IF NOT EXISTS expunged_held ON expunged(expunged_at) WHERE blob_id IS NOT NULL;
";

/// Opens the writer connection and creates the schema.
pub(super) fn open_writer(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(crate::StoreError::Internal(format!(
            "journal_mode is {mode}, not wal"
        )));
    }
    // FULL: each commit fsyncs the WAL, so a returned APPEND survives power loss. Group commit
    // makes that one fsync per batch of writers rather than one per writer.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // After a burst, truncate the WAL back to this size at checkpoints instead of keeping it:
    // a WAL left at its peak is disk space users pay for (measured: 8 MiB after loading 4.5 MB
    // of mail with a 64 MiB limit). 4 MiB is the size of one default checkpoint interval.
    conn.pragma_update(None, "journal_size_limit", 4i64 << 20)?;
    // Each job of a batch runs in a savepoint, whose statement journal keeps a copy of every
    // page the job changes. SQLite writes that journal to a temporary file once it passes
    // 64 KiB, which a delivery touching a dozen tables does: a file write per page, in the
    // one writer thread (measured: 16-client APPEND 3,300 -> 4,700 msg/s with it in memory).
    // In memory it is bounded by what one job changes.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    refuse_newer(path, version)?;
    if (1..SCHEMA_VERSION).contains(&version) {
        // The index as it was, before anything changes it: the way back if the upgrade (or
        // the new version) disappoints. Kept if an earlier attempt made it already.
        let bak = backup_path(path, version);
        if !bak.exists() {
            let tmp = bak.with_extension("bak.tmp");
            let _ = std::fs::remove_file(&tmp);
            conn.execute("VACUUM INTO ?1", [tmp.to_string_lossy()])?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &bak)?;
            tracing::info!(
                from = version,
                to = SCHEMA_VERSION,
                backup = %bak.display(),
                "upgrading the index; the old one is kept"
            );
        }
    }
    // Every step of the upgrade in one transaction: a failure (or a crash) leaves the index
    // as it was. IMMEDIATE: a second process opening the same old index waits, then finds the
    // upgrade done.
    let tx = rusqlite::Transaction::new_unchecked(&conn, rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    refuse_newer(path, version)?;
    migrate(&tx, version)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    if (1..3).contains(&version) {
        // Give the old index's pages back to the file system.
        conn.execute_batch("VACUUM")?;
    }
    Ok(conn)
}

/// Version 5 keeps a message's save date and THREADID in its `messages` row and a body's
/// preview in its `blobs` row, where version 4 had a table for each (one with a second
/// index, one filled by a trigger): four fewer B-trees written by every delivery, each a
/// page more in every commit (measured: 16-client APPEND 3,300 -> 4,200 msg/s without them).
/// Their rows, where an index has them, move into the new columns.
fn move_objects_into_rows(tx: &Connection) -> Result<()> {
    for (table, column, ty) in [
        ("messages", "saved", "INTEGER"),
        ("messages", "thread", "BLOB"),
        ("blobs", "preview", "TEXT"),
    ] {
        let present = tx
            .prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?
            .exists([table, column])?;
        if !present {
            tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}"))?;
        }
    }
    tx.execute_batch(
        "DROP TRIGGER IF EXISTS objects_user_drop;
         DROP TRIGGER IF EXISTS save_dates_add;
         DROP TRIGGER IF EXISTS save_dates_drop;
         DROP TRIGGER IF EXISTS objects_blob_drop;",
    )?;
    let has = |table: &str| -> Result<bool> {
        Ok(tx
            .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?
            .exists([table])?)
    };
    if has("save_dates")? {
        tx.execute_batch(
            "UPDATE messages SET saved = s.saved FROM save_dates s
             WHERE s.mailbox_id = messages.mailbox_id AND s.uid = messages.uid;
             DROP TABLE save_dates;",
        )?;
    }
    if has("thread_ids")? {
        tx.execute_batch(
            "UPDATE messages SET thread = unhex(substr(t.thread, 2))
             FROM mailboxes b, thread_ids t
             WHERE b.id = messages.mailbox_id AND t.user_id = b.user_id
               AND t.blob_id = messages.blob_id;
             DROP TABLE thread_ids;",
        )?;
    }
    if has("previews")? {
        tx.execute_batch(
            "UPDATE blobs SET preview = p.preview FROM previews p WHERE p.blob_id = blobs.id;
             DROP TABLE previews;",
        )?;
    }
    Ok(())
}

/// Where the index of version `version` is copied before it is upgraded:
/// `index.sqlite3.v<version>.bak` beside it.
pub(super) fn backup_path(index: &Path, version: i64) -> std::path::PathBuf {
    let name = index
        .file_name()
        .map_or("index.sqlite3".into(), |n| n.to_string_lossy().into_owned());
    index.with_file_name(format!("{name}.v{version}.bak"))
}

fn refuse_newer(path: &Path, version: i64) -> Result<()> {
    if version > SCHEMA_VERSION {
        return Err(crate::StoreError::Cannot(format!(
            "{} has index format (schema) version {version}, newer than this mailkeep knows \
             ({SCHEMA_VERSION}): it was written by a newer release. Run that release (or newer), \
             or restore a backup made by this one; nothing was changed",
            path.display()
        )));
    }
    Ok(())
}

/// Brings an index of `version` (0: a new one) to `SCHEMA_VERSION`, inside the caller's
/// transaction.
fn migrate(tx: &Connection, version: i64) -> Result<()> {
    if version == 1 {
        // Version 2 keeps expunged bodies for a grace period.
        tx.execute_batch(
            "ALTER TABLE expunged ADD COLUMN blob_id INTEGER;
             ALTER TABLE expunged ADD COLUMN expunged_at INTEGER;",
        )?;
    }
    if version == 3 {
        // Version 4 keeps a search vocabulary per account (see `search`); the shared one is
        // replaced below, once the new tables exist.
        tx.execute_batch("ALTER TABLE search_vocab RENAME TO search_vocab_v3")?;
    }
    tx.execute_batch(SCHEMA)?;
    tx.execute_batch(search::SCHEMA)?;
    if (1..3).contains(&version) {
        // Version 3 replaces the trigram index and its stored text by word indexes, and packs
        // the parsed info of each body into one column.
        {
            let mut read = tx.prepare("SELECT rowid, header, body FROM search")?;
            let mut rows = read.query([])?;
            while let Some(r) = rows.next()? {
                let (header, body): (String, String) = (r.get(1)?, r.get(2)?);
                let text = header.clone() + &body;
                let tokens = search::Tokens::of(&text, header.len());
                search::index(tx, r.get(0)?, &tokens)?;
            }
        }
        tx.execute_batch(
            "DROP TABLE search;
             ALTER TABLE blobs ADD COLUMN parsed BLOB;",
        )?;
        {
            let mut read =
                tx.prepare("SELECT id, envelope, bodystructure, body, parts FROM blobs")?;
            let mut write = tx.prepare("UPDATE blobs SET parsed = ?2 WHERE id = ?1")?;
            let mut rows = read.query([])?;
            while let Some(r) = rows.next()? {
                let info = crate::ParsedInfo {
                    envelope: r.get(1)?,
                    bodystructure: r.get(2)?,
                    body: r.get(3)?,
                    parts: r.get(4)?,
                    ..Default::default()
                };
                write.execute(rusqlite::params![r.get::<_, i64>(0)?, parsed::pack(&info)?])?;
            }
        }
        tx.execute_batch(
            "ALTER TABLE blobs DROP COLUMN envelope;
             ALTER TABLE blobs DROP COLUMN bodystructure;
             ALTER TABLE blobs DROP COLUMN body;
             ALTER TABLE blobs DROP COLUMN parts;",
        )?;
    }
    if (1..4).contains(&version) {
        search::migrate_to_per_account_vocabulary(tx)?;
    }
    if (1..5).contains(&version) {
        move_objects_into_rows(tx)?;
    }
    Ok(())
}

/// Opens a read connection (WAL lets these run beside the writer).
pub(super) fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", true)?;
    // No memory map (mmap_size = 0): a read transaction that finds the WAL changed since the
    // connection's last one unmaps the whole file, and with writes going on that is nearly
    // every read: a munmap and a TLB shootdown on every core per read (4% of the server's CPU
    // under 16 APPENDing clients; 13% less CPU without it). The 100k-message SELECT and
    // FETCH 1:* (FLAGS) scans took the same time either way.
    conn.pragma_update(None, "mmap_size", 0i64)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}
