//! Accounts, mailboxes, subscriptions, domains and aliases, SCRAM keys and server secrets,
//! second factors and app passwords, quota settings.

use super::cached;
use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Row;

use super::is_unique_violation;
use super::messages::{drop_mailbox, usage};
use crate::{
    AppPassword, Mailbox, MailboxId, Quota, QuotaLimits, QuotaSetting, Result, ScramKeys,
    StoreError, TwoFactor, User, UserId,
};

pub(super) const INBOX: &str = "INBOX";

/// Any case of `INBOX` means INBOX (RFC 9051 §5.1).
pub(super) fn normalize_name(name: &str) -> &str {
    if name.eq_ignore_ascii_case(INBOX) {
        INBOX
    } else {
        name
    }
}

fn user_from_row(r: &Row) -> User {
    User {
        id: r.get(0),
        name: r.get(1),
        password_hash: r.get(2),
    }
}

pub(super) async fn get_user<C: GenericClient>(c: &C, name: &str) -> Result<Option<User>> {
    let row = c
        .query_opt(
            &cached(
                c,
                "SELECT id, name, password_hash FROM users WHERE name = $1",
            )
            .await?,
            &[&name],
        )
        .await?;
    Ok(row.as_ref().map(user_from_row))
}

async fn user_id<C: GenericClient>(c: &C, name: &str) -> Result<i64> {
    c.query_opt(
        &cached(c, "SELECT id FROM users WHERE name = $1").await?,
        &[&name],
    )
    .await?
    .map(|r| r.get(0))
    .ok_or(StoreError::NoSuchUser)
}

pub(super) async fn list_users<C: GenericClient>(c: &C) -> Result<Vec<User>> {
    let rows = c
        .query(
            &cached(c, "SELECT id, name, password_hash FROM users ORDER BY name").await?,
            &[],
        )
        .await?;
    Ok(rows.iter().map(user_from_row).collect())
}

async fn require_user<C: GenericClient>(c: &C, user: UserId) -> Result<()> {
    match c
        .query_opt(
            &cached(c, "SELECT 1 FROM users WHERE id = $1").await?,
            &[&user],
        )
        .await?
    {
        Some(_) => Ok(()),
        None => Err(StoreError::NoSuchUser),
    }
}

pub(super) async fn create_user(tx: &Transaction<'_>, name: &str, hash: &str) -> Result<User> {
    let row = tx
        .query_opt(
            &cached(
                tx,
                "INSERT INTO users(name, password_hash) VALUES ($1, $2)
             ON CONFLICT (name) DO NOTHING RETURNING id",
            )
            .await?,
            &[&name, &hash],
        )
        .await?;
    let Some(row) = row else {
        return Err(StoreError::UserExists);
    };
    let id: i64 = row.get(0);
    // Every account has an INBOX (RFC 9051 §5.1), so sessions never need to create it.
    create_mailbox(tx, id, INBOX, None).await?;
    Ok(User {
        id,
        name: name.to_owned(),
        password_hash: hash.to_owned(),
    })
}

pub(super) async fn set_password(tx: &Transaction<'_>, name: &str, hash: &str) -> Result<()> {
    let row = tx
        .query_opt(
            &cached(
                tx,
                "UPDATE users SET password_hash = $2 WHERE name = $1 RETURNING id",
            )
            .await?,
            &[&name, &hash],
        )
        .await?;
    let Some(row) = row else {
        return Err(StoreError::NoSuchUser);
    };
    // SCRAM keys were derived from the old password: they go with it.
    let id: i64 = row.get(0);
    for table in ["scram_keys", "scram_sha1_keys"] {
        tx.execute(&format!("DELETE FROM {table} WHERE user_id = $1"), &[&id])
            .await?;
    }
    Ok(())
}

pub(super) async fn delete_user(
    tx: &Transaction<'_>,
    name: &str,
) -> Result<((), Vec<(MailboxId, u64)>)> {
    let id: i64 = tx
        .query_opt(
            &cached(tx, "SELECT id FROM users WHERE name = $1 FOR UPDATE").await?,
            &[&name],
        )
        .await?
        .map(|r| r.get(0))
        .ok_or(StoreError::NoSuchUser)?;
    let ids: Vec<i64> = tx
        .query(
            &cached(
                tx,
                "SELECT id FROM mailboxes WHERE user_id = $1 ORDER BY id",
            )
            .await?,
            &[&id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut changed = Vec::new();
    for mb in ids {
        if let Some(modseq) = drop_mailbox(tx, mb).await? {
            changed.push((mb, modseq));
        }
    }
    // Its aliases go with it: left behind, they would deliver to a later account that
    // happens to get the same name.
    tx.execute(
        &cached(tx, "DELETE FROM aliases WHERE target = $1").await?,
        &[&name],
    )
    .await?;
    // Subscriptions, keys, second factors and app passwords cascade.
    tx.execute(
        &cached(tx, "DELETE FROM users WHERE id = $1").await?,
        &[&id],
    )
    .await?;
    Ok(((), changed))
}

const MAILBOX_COLS: &str = "m.id, m.name, m.uidvalidity, m.uidnext, m.highest_modseq, m.special_use, \
     EXISTS(SELECT 1 FROM subscriptions s WHERE s.user_id = m.user_id AND s.name = m.name)";

fn mailbox_from_row(r: &Row) -> Mailbox {
    Mailbox {
        id: r.get(0),
        name: r.get(1),
        uidvalidity: r.get::<_, i64>(2) as u32,
        uidnext: r.get::<_, i64>(3) as u32,
        highest_modseq: r.get::<_, i64>(4) as u64,
        special_use: r.get(5),
        subscribed: r.get(6),
    }
}

pub(super) async fn list_mailboxes<C: GenericClient>(c: &C, user: UserId) -> Result<Vec<Mailbox>> {
    require_user(c, user).await?;
    let sql = format!(
        "SELECT {MAILBOX_COLS} FROM mailboxes m WHERE m.user_id = $1 ORDER BY m.name COLLATE \"C\""
    );
    Ok(c.query(&cached(c, &sql).await?, &[&user])
        .await?
        .iter()
        .map(mailbox_from_row)
        .collect())
}

pub(super) async fn get_mailbox<C: GenericClient>(
    c: &C,
    user: UserId,
    name: &str,
) -> Result<Option<Mailbox>> {
    let sql =
        format!("SELECT {MAILBOX_COLS} FROM mailboxes m WHERE m.user_id = $1 AND m.name = $2");
    Ok(
        c.query_opt(&cached(c, &sql).await?, &[&user, &normalize_name(name)])
            .await?
            .as_ref()
            .map(mailbox_from_row),
    )
}

/// The mailbox `id` of `user`, locked for the rest of the transaction.
async fn lock_mailbox(tx: &Transaction<'_>, user: UserId, id: MailboxId) -> Result<Mailbox> {
    let sql = format!(
        "SELECT {MAILBOX_COLS} FROM mailboxes m WHERE m.id = $1 AND m.user_id = $2 FOR UPDATE"
    );
    tx.query_opt(&cached(tx, &sql).await?, &[&id, &user])
        .await?
        .as_ref()
        .map(mailbox_from_row)
        .ok_or(StoreError::NoSuchMailbox)
}

/// A UIDVALIDITY never handed out before in this database: the current time, or one more
/// than the last one if that is not smaller (the row lock orders concurrent creators).
async fn next_uidvalidity(tx: &Transaction<'_>) -> Result<u32> {
    let v: i64 = tx
        .query_one(
            &cached(
                tx,
                "UPDATE meta SET value = greatest(value + 1, extract(epoch FROM now())::bigint, 1)
             WHERE key = 'uidvalidity' RETURNING value",
            )
            .await?,
            &[],
        )
        .await?
        .get(0);
    u32::try_from(v).map_err(|_| StoreError::Internal("UIDVALIDITY space exhausted".into()))
}

pub(super) async fn create_mailbox(
    tx: &Transaction<'_>,
    user: UserId,
    name: &str,
    special_use: Option<&str>,
) -> Result<Mailbox> {
    require_user(tx, user).await?;
    let name = normalize_name(name);
    if name.is_empty() {
        return Err(StoreError::Cannot("empty mailbox name".into()));
    }
    if get_mailbox(tx, user, name).await?.is_some() {
        return Err(StoreError::AlreadyExists);
    }
    let uidvalidity = i64::from(next_uidvalidity(tx).await?);
    let row = tx
        .query_opt(
            &cached(tx, "INSERT INTO mailboxes(user_id, name, uidvalidity, uidnext, highest_modseq, special_use)
             VALUES ($1, $2, $3, 1, 1, $4) ON CONFLICT (user_id, name) DO NOTHING RETURNING id").await?,
            &[&user, &name, &uidvalidity, &special_use],
        )
        .await?;
    let Some(row) = row else {
        return Err(StoreError::AlreadyExists);
    };
    let id: i64 = row.get(0);
    lock_mailbox(tx, user, id).await
}

pub(super) async fn delete_mailbox(
    tx: &Transaction<'_>,
    user: UserId,
    id: MailboxId,
) -> Result<((), Vec<(MailboxId, u64)>)> {
    let mb = lock_mailbox(tx, user, id).await?;
    if mb.name == INBOX {
        return Err(StoreError::Cannot("INBOX cannot be deleted".into()));
    }
    let changed = drop_mailbox(tx, id).await?.map(|m| (id, m));
    Ok(((), changed.into_iter().collect()))
}

pub(super) async fn rename_mailbox(
    tx: &Transaction<'_>,
    user: UserId,
    id: MailboxId,
    new_name: &str,
) -> Result<()> {
    let mb = lock_mailbox(tx, user, id).await?;
    if mb.name == INBOX {
        return Err(StoreError::Cannot(
            "renaming INBOX is done by moving its messages".into(),
        ));
    }
    let new_name = normalize_name(new_name);
    if new_name.is_empty() {
        return Err(StoreError::Cannot("empty mailbox name".into()));
    }
    if get_mailbox(tx, user, new_name).await?.is_some() {
        return Err(StoreError::AlreadyExists);
    }
    match tx
        .execute(
            &cached(tx, "UPDATE mailboxes SET name = $2 WHERE id = $1").await?,
            &[&id, &new_name],
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn subscribe<C: GenericClient>(
    c: &C,
    user: UserId,
    name: &str,
    on: bool,
) -> Result<()> {
    require_user(c, user).await?;
    let sql = if on {
        "INSERT INTO subscriptions(user_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM subscriptions WHERE user_id = $1 AND name = $2"
    };
    match c
        .execute(&cached(c, sql).await?, &[&user, &normalize_name(name)])
        .await
    {
        Ok(_) => Ok(()),
        // The account went meanwhile.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) => {
            Err(StoreError::NoSuchUser)
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn subscriptions<C: GenericClient>(c: &C, user: UserId) -> Result<Vec<String>> {
    require_user(c, user).await?;
    Ok(c.query(
        &cached(
            c,
            "SELECT name FROM subscriptions WHERE user_id = $1 ORDER BY name COLLATE \"C\"",
        )
        .await?,
        &[&user],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

// ---- domains and aliases ----

pub(super) async fn add_domain<C: GenericClient>(c: &C, name: &str) -> Result<()> {
    let n = c
        .execute(
            &cached(
                c,
                "INSERT INTO domains(name) VALUES ($1) ON CONFLICT DO NOTHING",
            )
            .await?,
            &[&name],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::AlreadyExists);
    }
    Ok(())
}

pub(super) async fn delete_domain<C: GenericClient>(c: &C, name: &str) -> Result<()> {
    let n = c
        .execute(
            &cached(c, "DELETE FROM domains WHERE name = $1").await?,
            &[&name],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::Cannot(format!("no such domain {name}")));
    }
    Ok(())
}

pub(super) async fn list_domains<C: GenericClient>(c: &C) -> Result<Vec<String>> {
    Ok(c.query(
        &cached(c, "SELECT name FROM domains ORDER BY name COLLATE \"C\"").await?,
        &[],
    )
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

pub(super) async fn is_local_domain<C: GenericClient>(c: &C, name: &str) -> Result<bool> {
    Ok(c.query_opt(
        &cached(c, "SELECT 1 FROM domains WHERE name = $1").await?,
        &[&name],
    )
    .await?
    .is_some())
}

pub(super) async fn add_alias(tx: &Transaction<'_>, address: &str, target: &str) -> Result<()> {
    // The account is locked so it cannot go between the check and the insert.
    if tx
        .query_opt(
            &cached(tx, "SELECT 1 FROM users WHERE name = $1 FOR KEY SHARE").await?,
            &[&target],
        )
        .await?
        .is_none()
    {
        return Err(StoreError::NoSuchUser);
    }
    let n = tx
        .execute(
            &cached(
                tx,
                "INSERT INTO aliases(address, target) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .await?,
            &[&address, &target],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::AlreadyExists);
    }
    Ok(())
}

pub(super) async fn delete_alias<C: GenericClient>(c: &C, address: &str) -> Result<()> {
    let n = c
        .execute(
            &cached(c, "DELETE FROM aliases WHERE address = $1").await?,
            &[&address],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::Cannot(format!("no such alias {address}")));
    }
    Ok(())
}

pub(super) async fn list_aliases<C: GenericClient>(c: &C) -> Result<Vec<(String, String)>> {
    Ok(c.query(
        &cached(
            c,
            "SELECT address, target FROM aliases ORDER BY address COLLATE \"C\"",
        )
        .await?,
        &[],
    )
    .await?
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect())
}

pub(super) async fn alias_target<C: GenericClient>(c: &C, address: &str) -> Result<Option<String>> {
    Ok(c.query_opt(
        &cached(c, "SELECT target FROM aliases WHERE address = $1").await?,
        &[&address],
    )
    .await?
    .map(|r| r.get(0)))
}

// ---- SCRAM keys and server secrets ----

/// The table of one kind of SCRAM keys: `scram_keys` (SHA-256) or `scram_sha1_keys`.
fn keys_table(sha1: bool) -> &'static str {
    if sha1 {
        "scram_sha1_keys"
    } else {
        "scram_keys"
    }
}

pub(super) async fn get_scram_keys<C: GenericClient>(
    c: &C,
    sha1: bool,
    name: &str,
) -> Result<Option<ScramKeys>> {
    let sql = format!(
        "SELECT k.iterations, k.salt, k.stored_key, k.server_key
         FROM {} k JOIN users u ON u.id = k.user_id WHERE u.name = $1",
        keys_table(sha1)
    );
    let row = c.query_opt(&cached(c, &sql).await?, &[&name]).await?;
    Ok(row.map(|r| ScramKeys {
        iterations: r.get::<_, i64>(0) as u32,
        salt: r.get(1),
        stored_key: r.get(2),
        server_key: r.get(3),
    }))
}

pub(super) async fn set_scram_keys<C: GenericClient>(
    c: &C,
    sha1: bool,
    name: &str,
    keys: Option<&ScramKeys>,
) -> Result<()> {
    let id = user_id(c, name).await?;
    match keys {
        Some(k) => {
            let sql = format!(
                "INSERT INTO {}(user_id, iterations, salt, stored_key, server_key)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (user_id) DO UPDATE SET iterations = excluded.iterations,
                    salt = excluded.salt, stored_key = excluded.stored_key,
                    server_key = excluded.server_key",
                keys_table(sha1)
            );
            c.execute(
                &cached(c, &sql).await?,
                &[
                    &id,
                    &i64::from(k.iterations),
                    &k.salt,
                    &k.stored_key,
                    &k.server_key,
                ],
            )
            .await?;
        }
        None => {
            let sql = format!("DELETE FROM {} WHERE user_id = $1", keys_table(sha1));
            c.execute(&cached(c, &sql).await?, &[&id]).await?;
        }
    }
    Ok(())
}

/// The secret `name`, made now (32 bytes from PostgreSQL's strong random source, which
/// `gen_random_uuid` uses) if it does not exist yet; the first node to make it wins.
pub(super) async fn server_secret<C: GenericClient>(c: &C, name: &str) -> Result<Vec<u8>> {
    c.execute(
        &cached(
            c,
            "INSERT INTO server_secrets(name, value)
         VALUES ($1, sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text
                                       || gen_random_uuid()::text, 'UTF8')))
         ON CONFLICT DO NOTHING",
        )
        .await?,
        &[&name],
    )
    .await?;
    c.query_opt(
        &cached(c, "SELECT value FROM server_secrets WHERE name = $1").await?,
        &[&name],
    )
    .await?
    .map(|r| r.get(0))
    .ok_or_else(|| StoreError::Internal("server secret vanished".into()))
}

// ---- second factor and app passwords ----

pub(super) async fn get_two_factor<C: GenericClient>(
    c: &C,
    name: &str,
) -> Result<Option<TwoFactor>> {
    let row = c
        .query_opt(
            &cached(
                c,
                "SELECT t.secret, t.enabled, t.last_step
             FROM totp_secrets t JOIN users u ON u.id = t.user_id WHERE u.name = $1",
            )
            .await?,
            &[&name],
        )
        .await?;
    Ok(row.map(|r| TwoFactor {
        secret: r.get(0),
        enabled: r.get(1),
        last_step: r.get(2),
    }))
}

pub(super) async fn set_two_factor(
    tx: &Transaction<'_>,
    name: &str,
    tf: Option<&TwoFactor>,
    recovery: &[Vec<u8>],
) -> Result<()> {
    let id = user_id(tx, name).await?;
    tx.execute(
        &cached(tx, "DELETE FROM recovery_codes WHERE user_id = $1").await?,
        &[&id],
    )
    .await?;
    match tf {
        Some(t) => {
            tx.execute(
                &cached(
                    tx,
                    "INSERT INTO totp_secrets(user_id, secret, enabled, last_step)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret,
                    enabled = excluded.enabled, last_step = excluded.last_step",
                )
                .await?,
                &[&id, &t.secret, &t.enabled, &t.last_step],
            )
            .await?;
            for h in recovery {
                tx.execute(
                    &cached(
                        tx,
                        "INSERT INTO recovery_codes(user_id, hash) VALUES ($1, $2)
                     ON CONFLICT DO NOTHING",
                    )
                    .await?,
                    &[&id, h],
                )
                .await?;
            }
        }
        None => {
            tx.execute(
                &cached(tx, "DELETE FROM totp_secrets WHERE user_id = $1").await?,
                &[&id],
            )
            .await?;
        }
    }
    Ok(())
}

pub(super) async fn use_totp_step<C: GenericClient>(c: &C, name: &str, step: i64) -> Result<bool> {
    let id = user_id(c, name).await?;
    let n = c
        .execute(
            &cached(
                c,
                "UPDATE totp_secrets SET last_step = $2 WHERE user_id = $1 AND last_step < $2",
            )
            .await?,
            &[&id, &step],
        )
        .await?;
    Ok(n == 1)
}

pub(super) async fn use_recovery_code<C: GenericClient>(
    c: &C,
    name: &str,
    hash: &[u8],
) -> Result<bool> {
    let id = user_id(c, name).await?;
    let n = c
        .execute(
            &cached(
                c,
                "DELETE FROM recovery_codes WHERE user_id = $1 AND hash = $2",
            )
            .await?,
            &[&id, &hash],
        )
        .await?;
    Ok(n == 1)
}

pub(super) async fn recovery_codes_left<C: GenericClient>(c: &C, name: &str) -> Result<u32> {
    let n: i64 = c
        .query_one(
            &cached(
                c,
                "SELECT count(*) FROM recovery_codes r JOIN users u ON u.id = r.user_id
             WHERE u.name = $1",
            )
            .await?,
            &[&name],
        )
        .await?
        .get(0);
    Ok(n as u32)
}

fn app_password_from_row(r: &Row) -> AppPassword {
    AppPassword {
        id: r.get(0),
        label: r.get(1),
        created: r.get(2),
        last_used: r.get(3),
    }
}

pub(super) async fn add_app_password<C: GenericClient>(
    c: &C,
    name: &str,
    label: &str,
    hash: &[u8],
    now: i64,
) -> Result<AppPassword> {
    let id = user_id(c, name).await?;
    let row = c
        .query_opt(
            &cached(
                c,
                "INSERT INTO app_passwords(user_id, label, hash, created) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, label) DO NOTHING RETURNING id",
            )
            .await?,
            &[&id, &label, &hash, &now],
        )
        .await?;
    let Some(row) = row else {
        return Err(StoreError::AlreadyExists);
    };
    Ok(AppPassword {
        id: row.get(0),
        label: label.to_owned(),
        created: now,
        last_used: None,
    })
}

pub(super) async fn list_app_passwords<C: GenericClient>(
    c: &C,
    name: &str,
) -> Result<Vec<AppPassword>> {
    Ok(c.query(
        &cached(
            c,
            "SELECT a.id, a.label, a.created, a.last_used
         FROM app_passwords a JOIN users u ON u.id = a.user_id WHERE u.name = $1 ORDER BY a.id",
        )
        .await?,
        &[&name],
    )
    .await?
    .iter()
    .map(app_password_from_row)
    .collect())
}

pub(super) async fn revoke_app_password<C: GenericClient>(
    c: &C,
    name: &str,
    label: &str,
) -> Result<()> {
    let id = user_id(c, name).await?;
    let n = c
        .execute(
            &cached(
                c,
                "DELETE FROM app_passwords WHERE user_id = $1 AND label = $2",
            )
            .await?,
            &[&id, &label],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::Cannot(format!(
            "{name} has no app password labelled {label:?}"
        )));
    }
    Ok(())
}

pub(super) async fn find_app_password<C: GenericClient>(
    c: &C,
    name: &str,
    hash: &[u8],
) -> Result<Option<AppPassword>> {
    Ok(c.query_opt(
        &cached(
            c,
            "SELECT a.id, a.label, a.created, a.last_used
         FROM app_passwords a JOIN users u ON u.id = a.user_id WHERE u.name = $1 AND a.hash = $2",
        )
        .await?,
        &[&name, &hash],
    )
    .await?
    .as_ref()
    .map(app_password_from_row))
}

pub(super) async fn app_password_exists<C: GenericClient>(c: &C, id: i64) -> Result<bool> {
    Ok(c.query_opt(
        &cached(c, "SELECT 1 FROM app_passwords WHERE id = $1").await?,
        &[&id],
    )
    .await?
    .is_some())
}

pub(super) async fn touch_app_password<C: GenericClient>(
    c: &C,
    id: i64,
    now: i64,
    min_interval: i64,
) -> Result<()> {
    c.execute(
        &cached(
            c,
            "UPDATE app_passwords SET last_used = $2
         WHERE id = $1 AND (last_used IS NULL OR last_used <= $2::bigint - $3::bigint)",
        )
        .await?,
        &[&id, &now, &min_interval],
    )
    .await?;
    Ok(())
}

// ---- quotas ----

pub(super) async fn set_quota<C: GenericClient>(
    c: &C,
    name: &str,
    storage: Option<QuotaSetting>,
    messages: Option<QuotaSetting>,
) -> Result<()> {
    let id = user_id(c, name).await?;
    if let Some(s) = storage {
        c.execute(
            &cached(c, "UPDATE users SET quota_storage = $2 WHERE id = $1").await?,
            &[&id, &s.to_sql()],
        )
        .await?;
    }
    if let Some(m) = messages {
        c.execute(
            &cached(c, "UPDATE users SET quota_messages = $2 WHERE id = $1").await?,
            &[&id, &m.to_sql()],
        )
        .await?;
    }
    Ok(())
}

/// The account's own settings (NoSuchUser if it is gone); `lock` holds the account row for
/// the rest of the transaction, so writers checking its quota go one at a time.
pub(super) async fn quota_settings<C: GenericClient>(
    c: &C,
    user: UserId,
    lock: bool,
) -> Result<(QuotaSetting, QuotaSetting)> {
    let sql = if lock {
        "SELECT quota_storage, quota_messages FROM users WHERE id = $1 FOR NO KEY UPDATE"
    } else {
        "SELECT quota_storage, quota_messages FROM users WHERE id = $1"
    };
    let row = c
        .query_opt(&cached(c, sql).await?, &[&user])
        .await?
        .ok_or(StoreError::NoSuchUser)?;
    Ok((
        QuotaSetting::from_sql(row.get(0)),
        QuotaSetting::from_sql(row.get(1)),
    ))
}

pub(super) async fn quota<C: GenericClient>(
    c: &C,
    user: UserId,
    default: QuotaLimits,
) -> Result<Quota> {
    let (storage_setting, messages_setting) = quota_settings(c, user, false).await?;
    let (storage_used, messages_used) = usage(c, user).await?;
    Ok(Quota {
        storage_used,
        messages_used,
        storage_setting,
        messages_setting,
        limits: QuotaLimits {
            storage: storage_setting.effective(default.storage),
            messages: messages_setting.effective(default.messages),
        },
    })
}
