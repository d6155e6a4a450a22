//! PostgreSQL's side of `mailkeep store copy` (see `crate::copy`, and `sqlite::copy` for the
//! embedded store's): secrets read and written as stored, mailboxes made with a given id,
//! and per-message modseqs and save dates set after an import.

use super::cached;
use deadpool_postgres::{GenericClient, Transaction};

use super::accounts;
use crate::{Mailbox, MailboxId, MessageState, Result, StoreError, StoredAppPassword, UserId};

async fn user_id<C: GenericClient>(c: &C, name: &str) -> Result<i64> {
    c.query_opt(
        &cached(c, "SELECT id FROM users WHERE name = $1").await?,
        &[&name],
    )
    .await?
    .map(|r| r.get(0))
    .ok_or(StoreError::NoSuchUser)
}

pub(super) async fn server_secrets<C: GenericClient>(c: &C) -> Result<Vec<(String, Vec<u8>)>> {
    Ok(c.query(
        &cached(
            c,
            "SELECT name, value FROM server_secrets ORDER BY name COLLATE \"C\"",
        )
        .await?,
        &[],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}

pub(super) async fn set_server_secret<C: GenericClient>(
    c: &C,
    name: &str,
    value: &[u8],
) -> Result<()> {
    c.execute(
        &cached(
            c,
            "INSERT INTO server_secrets(name, value) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .await?,
        &[&name, &value],
    )
    .await?;
    Ok(())
}

pub(super) async fn recovery_code_hashes<C: GenericClient>(
    c: &C,
    name: &str,
) -> Result<Vec<Vec<u8>>> {
    let id = user_id(c, name).await?;
    Ok(c.query(
        &cached(
            c,
            "SELECT hash FROM recovery_codes WHERE user_id = $1 ORDER BY hash",
        )
        .await?,
        &[&id],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

pub(super) async fn app_password_hashes<C: GenericClient>(
    c: &C,
    name: &str,
) -> Result<Vec<StoredAppPassword>> {
    let id = user_id(c, name).await?;
    Ok(c.query(
        &cached(
            c,
            "SELECT label, hash, created, last_used FROM app_passwords
             WHERE user_id = $1 ORDER BY id",
        )
        .await?,
        &[&id],
    )
    .await?
    .iter()
    .map(|r| StoredAppPassword {
        label: r.get(0),
        hash: r.get(1),
        created: r.get(2),
        last_used: r.get(3),
    })
    .collect())
}

pub(super) async fn restore_app_password<C: GenericClient>(
    c: &C,
    name: &str,
    app: &StoredAppPassword,
) -> Result<()> {
    let id = user_id(c, name).await?;
    let n = c
        .execute(
            &cached(
                c,
                "INSERT INTO app_passwords(user_id, label, hash, created, last_used)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, label) DO NOTHING",
            )
            .await?,
            &[&id, &app.label, &app.hash, &app.created, &app.last_used],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::AlreadyExists);
    }
    Ok(())
}

/// See `MailStore::restore_mailbox`. Returns the mailbox and the changes to announce.
pub(super) async fn restore_mailbox(
    tx: &Transaction<'_>,
    user: UserId,
    want: &Mailbox,
) -> Result<(Mailbox, Vec<(MailboxId, u64)>)> {
    if want.uidvalidity == 0 {
        return Err(StoreError::Cannot("UIDVALIDITY 0 is not valid".into()));
    }
    // The account's row first (the lock order of every writer).
    if tx
        .query_opt(
            &cached(tx, "SELECT 1 FROM users WHERE id = $1 FOR UPDATE").await?,
            &[&user],
        )
        .await?
        .is_none()
    {
        return Err(StoreError::NoSuchUser);
    }
    let name = accounts::normalize_name(&want.name);
    if name.is_empty() {
        return Err(StoreError::Cannot("empty mailbox name".into()));
    }
    let mut changed = Vec::new();
    if let Some(old) = accounts::get_mailbox(tx, user, name).await? {
        // Never held a message (locked: no append can start meanwhile): only its row.
        let gone = tx
            .execute(
                &cached(tx, "DELETE FROM mailboxes WHERE id = $1 AND uidnext = 1").await?,
                &[&old.id],
            )
            .await?;
        if gone == 0 {
            return Err(StoreError::AlreadyExists);
        }
        changed.push((old.id, old.highest_modseq + 1));
    }
    let uidvalidity = i64::from(want.uidvalidity);
    let given = tx
        .query_opt(
            &cached(
                tx,
                "INSERT INTO mailboxes(id, user_id, name, uidvalidity, uidnext, highest_modseq,
                                   special_use)
             OVERRIDING SYSTEM VALUE
             SELECT $1::bigint, $2::bigint, $3::text, $4::bigint, 1, 1, $5::text
             WHERE $1::bigint > 0 AND NOT EXISTS (SELECT 1 FROM mailboxes WHERE id = $1::bigint)
             ON CONFLICT DO NOTHING RETURNING id",
            )
            .await?,
            &[&want.id, &user, &name, &uidvalidity, &want.special_use],
        )
        .await?;
    let id: i64 = match given {
        Some(row) => {
            // Identity values handed out later stay above every id given here.
            tx.execute(
                &cached(tx, "SELECT setval(s.seq, greatest($1::bigint, coalesce(pg_sequence_last_value(s.seq), 0)))
                 FROM (SELECT pg_get_serial_sequence('mailboxes', 'id')::regclass AS seq) s").await?,
                &[&want.id],
            )
            .await?;
            row.get(0)
        }
        None => tx
            .query_one(
                &cached(
                    tx,
                    "INSERT INTO mailboxes(user_id, name, uidvalidity, uidnext, highest_modseq,
                                       special_use)
                 VALUES ($1, $2, $3, 1, 1, $4) RETURNING id",
                )
                .await?,
                &[&user, &name, &uidvalidity, &want.special_use],
            )
            .await?
            .get(0),
    };
    // Mailboxes made later get a UIDVALIDITY above this one (see `next_uidvalidity`).
    tx.execute(
        &cached(
            tx,
            "UPDATE meta SET value = greatest(value, $1) WHERE key = 'uidvalidity'",
        )
        .await?,
        &[&uidvalidity],
    )
    .await?;
    let made = accounts::get_mailbox(tx, user, name)
        .await?
        .filter(|m| m.id == id)
        .ok_or_else(|| StoreError::Internal("restored mailbox vanished".into()))?;
    Ok((made, changed))
}

/// See `MailStore::restore_message_state`.
pub(super) async fn restore_message_state(
    tx: &Transaction<'_>,
    mailbox: MailboxId,
    uidnext: u32,
    highest_modseq: u64,
    messages: &[MessageState],
) -> Result<((), Vec<(MailboxId, u64)>)> {
    let Some(row) = tx
        .query_opt(
            &cached(
                tx,
                "SELECT uidnext, highest_modseq FROM mailboxes WHERE id = $1 FOR UPDATE",
            )
            .await?,
            &[&mailbox],
        )
        .await?
    else {
        return Err(StoreError::NoSuchMailbox);
    };
    let (cur_uidnext, cur_modseq): (i64, i64) = (row.get(0), row.get(1));
    let uids: Vec<i64> = messages.iter().map(|m| i64::from(m.uid)).collect();
    let modseqs: Vec<i64> = messages
        .iter()
        .map(|m| i64::try_from(m.modseq).unwrap_or(i64::MAX).max(1))
        .collect();
    let saved: Vec<i64> = messages.iter().map(|m| m.save_date).collect();
    let n = tx
        .execute(
            &cached(
                tx,
                "UPDATE messages m SET modseq = v.modseq, saved = v.saved
             FROM unnest($2::bigint[], $3::bigint[], $4::bigint[]) AS v(uid, modseq, saved)
             WHERE m.mailbox_id = $1 AND m.uid = v.uid",
            )
            .await?,
            &[&mailbox, &uids, &modseqs, &saved],
        )
        .await?;
    if n != messages.len() as u64 {
        return Err(StoreError::NoSuchMailbox);
    }
    let top = modseqs
        .iter()
        .copied()
        .chain([
            i64::try_from(highest_modseq).unwrap_or(i64::MAX),
            cur_modseq,
        ])
        .max()
        .unwrap_or(cur_modseq);
    let uidnext = i64::from(uidnext).max(cur_uidnext);
    tx.execute(
        &cached(
            tx,
            "UPDATE mailboxes SET uidnext = $2, highest_modseq = $3, recent_boundary = $2,
                              pruned_modseq = greatest(pruned_modseq, $3)
         WHERE id = $1",
        )
        .await?,
        &[&mailbox, &uidnext, &top],
    )
    .await?;
    Ok(((), vec![(mailbox, top as u64)]))
}
