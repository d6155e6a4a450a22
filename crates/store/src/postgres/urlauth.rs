//! URLAUTH mailbox access keys (RFC 4467 §2.4), as `sqlite::urlauth`: table `urlauth_keys`
//! (migration 3), one random 32-byte key per mailbox, deleted with the mailbox by its foreign
//! key.

use super::cached;
use deadpool_postgres::GenericClient;

use crate::{MailboxId, Result, StoreError, UserId};

/// 32 bytes from PostgreSQL's random source (as `server_secret`: no pgcrypto needed).
const RANDOM_KEY: &str = "sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text \
                          || gen_random_uuid()::text, 'UTF8'))";

pub(super) async fn get_key<C: GenericClient>(
    c: &C,
    user: UserId,
    mailbox: MailboxId,
) -> Result<Option<Vec<u8>>> {
    Ok(c.query_opt(
        &cached(
            c,
            "SELECT key FROM urlauth_keys WHERE mailbox_id = $1 AND user_id = $2",
        )
        .await?,
        &[&mailbox, &user],
    )
    .await?
    .map(|r| r.get(0)))
}

pub(super) async fn create_key<C: GenericClient>(
    c: &C,
    user: UserId,
    mailbox: MailboxId,
) -> Result<Option<Vec<u8>>> {
    c.execute(
        &format!(
            "INSERT INTO urlauth_keys(mailbox_id, user_id, key)
             SELECT id, user_id, {RANDOM_KEY} FROM mailboxes WHERE id = $1 AND user_id = $2
             ON CONFLICT DO NOTHING"
        ),
        &[&mailbox, &user],
    )
    .await?;
    get_key(c, user, mailbox).await
}

pub(super) async fn reset<C: GenericClient>(
    c: &C,
    user: UserId,
    mailbox: Option<MailboxId>,
) -> Result<()> {
    match mailbox {
        None => {
            c.execute(
                &cached(c, "DELETE FROM urlauth_keys WHERE user_id = $1").await?,
                &[&user],
            )
            .await?;
        }
        Some(mailbox) => {
            let n = c
                .execute(
                    &format!(
                        "INSERT INTO urlauth_keys(mailbox_id, user_id, key)
                         SELECT id, user_id, {RANDOM_KEY} FROM mailboxes
                         WHERE id = $1 AND user_id = $2
                         ON CONFLICT (mailbox_id) DO UPDATE SET key = excluded.key"
                    ),
                    &[&mailbox, &user],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::NoSuchMailbox);
            }
        }
    }
    Ok(())
}
