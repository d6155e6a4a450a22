//! Quotas: the SQL behind `MailStore::{set_quota, quota}` and the check that APPEND, COPY and
//! MOVE run inside their write transaction.
//!
//! Usage is a counter per account (`quota_usage`), kept by triggers on the `mailboxes` row
//! counters (`messages`, `size`) that every APPEND, COPY, MOVE, EXPUNGE and DELETE already
//! updates in its transaction. So usage changes in the same transaction as the mail, costs one
//! row update per write, and no write scans messages. It is recomputed from those counters at
//! every open (one row per mailbox), and `check` compares it with the messages themselves.
//!
//! A write that may grow an account takes a [`Guard`] first (its limits and usage before) and
//! checks it after its changes, still inside its savepoint: if a limited resource grew beyond
//! its limit the job fails with `OverQuota` and the writer rolls the savepoint back. Writes are
//! serialized by the writer thread, so concurrent deliveries cannot overshoot together. Usage
//! that did not grow (a MOVE within the account, an expunge) is never refused, even over the
//! limit (a limit lowered below the usage).

use rusqlite::{Connection, OptionalExtension, params};

use crate::quota::{Quota, QuotaLimits, QuotaSetting};
use crate::{MailboxId, Result, StoreError, UserId};

pub(super) const SCHEMA: &str = "
-- An account's own limits: NULL the configured default, 0 unlimited, n the limit (bytes for
-- storage).
CREATE TABLE IF NOT EXISTS quota_limits(
    user_id INTEGER PRIMARY KEY,
    storage INTEGER,
    messages INTEGER
);
-- An account's usage: the sums of its mailboxes' `messages` and `size` counters.
CREATE TABLE IF NOT EXISTS quota_usage(
    user_id INTEGER PRIMARY KEY,
    messages INTEGER NOT NULL DEFAULT 0,
    storage INTEGER NOT NULL DEFAULT 0
);
CREATE TRIGGER IF NOT EXISTS quota_usage_insert AFTER INSERT ON mailboxes
WHEN new.messages != 0 OR new.size != 0 BEGIN
    INSERT OR IGNORE INTO quota_usage(user_id) VALUES (new.user_id);
    UPDATE quota_usage SET messages = messages + new.messages, storage = storage + new.size
    WHERE user_id = new.user_id;
END;
CREATE TRIGGER IF NOT EXISTS quota_usage_update AFTER UPDATE OF messages, size ON mailboxes
WHEN new.messages != old.messages OR new.size != old.size BEGIN
    INSERT OR IGNORE INTO quota_usage(user_id) VALUES (new.user_id);
    UPDATE quota_usage SET messages = messages + new.messages - old.messages,
                           storage = storage + new.size - old.size
    WHERE user_id = new.user_id;
END;
CREATE TRIGGER IF NOT EXISTS quota_usage_delete AFTER DELETE ON mailboxes
WHEN old.messages != 0 OR old.size != 0 BEGIN
    UPDATE quota_usage SET messages = messages - old.messages, storage = storage - old.size
    WHERE user_id = old.user_id;
END;
CREATE TRIGGER IF NOT EXISTS quota_user_delete AFTER DELETE ON users BEGIN
    DELETE FROM quota_usage WHERE user_id = old.id;
    DELETE FROM quota_limits WHERE user_id = old.id;
END;
";

/// Creates the tables and recomputes every account's usage from its mailboxes' counters.
pub(super) fn open(conn: &Connection) -> Result<()> {
    conn.execute_batch(SCHEMA)?;
    let tx = conn.unchecked_transaction()?;
    tx.execute_batch(
        "DELETE FROM quota_usage;
         INSERT INTO quota_usage(user_id, messages, storage)
             SELECT user_id, sum(messages), sum(size) FROM mailboxes GROUP BY user_id;",
    )?;
    tx.commit()?;
    Ok(())
}

/// (storage bytes, messages) used by the account.
fn usage(conn: &Connection, user: UserId) -> Result<(u64, u64)> {
    let row: Option<(i64, i64)> = conn
        .prepare_cached("SELECT storage, messages FROM quota_usage WHERE user_id = ?1")?
        .query_row([user], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (s, m) = row.unwrap_or((0, 0));
    Ok((s.max(0) as u64, m.max(0) as u64))
}

/// The account's own settings (storage, messages).
fn settings(conn: &Connection, user: UserId) -> Result<(QuotaSetting, QuotaSetting)> {
    let row: Option<(Option<i64>, Option<i64>)> = conn
        .prepare_cached("SELECT storage, messages FROM quota_limits WHERE user_id = ?1")?
        .query_row([user], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (s, m) = row.unwrap_or((None, None));
    Ok((QuotaSetting::from_sql(s), QuotaSetting::from_sql(m)))
}

fn effective(own: (QuotaSetting, QuotaSetting), default: QuotaLimits) -> QuotaLimits {
    QuotaLimits {
        storage: own.0.effective(default.storage),
        messages: own.1.effective(default.messages),
    }
}

/// `MailStore::quota`.
pub(super) fn get(conn: &Connection, user: UserId, default: QuotaLimits) -> Result<Quota> {
    let tx = conn.unchecked_transaction()?;
    let exists = tx
        .prepare_cached("SELECT 1 FROM users WHERE id = ?1")?
        .exists([user])?;
    if !exists {
        return Err(StoreError::NoSuchUser);
    }
    let own = settings(&tx, user)?;
    let (storage_used, messages_used) = usage(&tx, user)?;
    Ok(Quota {
        storage_used,
        messages_used,
        storage_setting: own.0,
        messages_setting: own.1,
        limits: effective(own, default),
    })
}

/// `MailStore::set_quota`.
pub(super) fn set(
    conn: &Connection,
    name: &str,
    storage: Option<QuotaSetting>,
    messages: Option<QuotaSetting>,
) -> Result<()> {
    let user: UserId = conn
        .prepare_cached("SELECT id FROM users WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NoSuchUser)?;
    let (s, m) = settings(conn, user)?;
    let (s, m) = (storage.unwrap_or(s), messages.unwrap_or(m));
    if s == QuotaSetting::Default && m == QuotaSetting::Default {
        conn.prepare_cached("DELETE FROM quota_limits WHERE user_id = ?1")?
            .execute([user])?;
    } else {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO quota_limits(user_id, storage, messages) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![user, s.to_sql(), m.to_sql()])?;
    }
    Ok(())
}

/// An account's limits and usage before a write that may grow it.
pub(super) struct Guard {
    user: UserId,
    limits: QuotaLimits,
    before: (u64, u64),
}

impl Guard {
    /// For a write into `mailbox`; `None` if its account has no limit (or there is no such
    /// mailbox: the write itself says so).
    pub(super) fn of_mailbox(
        conn: &Connection,
        mailbox: MailboxId,
        default: QuotaLimits,
    ) -> Result<Option<Guard>> {
        let user: Option<UserId> = conn
            .prepare_cached("SELECT user_id FROM mailboxes WHERE id = ?1")?
            .query_row([mailbox], |r| r.get(0))
            .optional()?;
        match user {
            Some(user) => Guard::of_user(conn, user, default),
            None => Ok(None),
        }
    }

    /// For a write into the account `user`; `None` if it has no limit.
    pub(super) fn of_user(
        conn: &Connection,
        user: UserId,
        default: QuotaLimits,
    ) -> Result<Option<Guard>> {
        let limits = effective(settings(conn, user)?, default);
        if limits.is_unlimited() {
            return Ok(None);
        }
        Ok(Some(Guard {
            user,
            limits,
            before: usage(conn, user)?,
        }))
    }

    /// After the write: `OverQuota` if a limited resource grew beyond its limit.
    pub(super) fn check(guard: Option<Guard>, conn: &Connection) -> Result<()> {
        let Some(g) = guard else {
            return Ok(());
        };
        let after = usage(conn, g.user)?;
        let over = |limit: Option<u64>, before: u64, after: u64| {
            limit.is_some_and(|l| after > before && after > l)
        };
        if over(g.limits.storage, g.before.0, after.0)
            || over(g.limits.messages, g.before.1, after.1)
        {
            return Err(StoreError::OverQuota);
        }
        Ok(())
    }
}

/// `check`: every account's usage counter agrees with its messages.
pub(super) fn check(conn: &Connection, problems: &mut Vec<String>) -> Result<()> {
    let mut st = conn.prepare(
        "SELECT u.id, u.name, coalesce(q.storage, 0), coalesce(q.messages, 0),
                (SELECT coalesce(sum(m.size), 0) FROM messages m JOIN mailboxes b
                    ON b.id = m.mailbox_id WHERE b.user_id = u.id),
                (SELECT count(*) FROM messages m JOIN mailboxes b
                    ON b.id = m.mailbox_id WHERE b.user_id = u.id)
         FROM users u LEFT JOIN quota_usage q ON q.user_id = u.id",
    )?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (name, storage, messages, real_storage, real_messages): (String, i64, i64, i64, i64) =
            (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
        if (storage, messages) != (real_storage, real_messages) {
            problems.push(format!(
                "quota usage of {name}: {storage} bytes in {messages} messages counted, \
                 {real_storage} bytes in {real_messages} messages stored \
                 (recomputed at the next start)"
            ));
        }
    }
    Ok(())
}
