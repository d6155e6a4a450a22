//! What an import needs beyond APPEND (as `sqlite::import`): a mailbox with the UIDVALIDITY
//! the mail had before, so clients keep their caches. Appends with given UIDs are
//! `messages::append` with `given`.

use super::cached;
use deadpool_postgres::Transaction;

use super::accounts;
use crate::{Mailbox, MailboxId, Result, StoreError, UserId};

/// See `MailStore::import_mailbox`. Returns the mailbox and, if its UIDVALIDITY changed, the
/// change to announce (sessions on the empty mailbox must hear of it).
pub(super) async fn import_mailbox(
    tx: &Transaction<'_>,
    user: UserId,
    name: &str,
    special_use: Option<&str>,
    uidvalidity: Option<u32>,
) -> Result<(Mailbox, Vec<(MailboxId, u64)>)> {
    if uidvalidity == Some(0) {
        return Err(StoreError::Cannot("UIDVALIDITY 0 is not valid".into()));
    }
    let mailbox = match accounts::get_mailbox(tx, user, name).await? {
        Some(m) => m,
        None => accounts::create_mailbox(tx, user, name, special_use).await?,
    };
    let Some(v) = uidvalidity else {
        return Ok((mailbox, Vec::new()));
    };
    // Changed only while the mailbox never held a message (its row locked meanwhile).
    let changed = tx
        .execute(
            &cached(
                tx,
                "UPDATE mailboxes SET uidvalidity = $2
             WHERE id = $1 AND uidnext = 1 AND uidvalidity <> $2",
            )
            .await?,
            &[&mailbox.id, &i64::from(v)],
        )
        .await?;
    if changed == 0 {
        let now = accounts::get_mailbox(tx, user, name).await?;
        return Ok((now.unwrap_or(mailbox), Vec::new()));
    }
    // Mailboxes made later get a UIDVALIDITY above this one (see `next_uidvalidity`).
    tx.execute(
        &cached(
            tx,
            "UPDATE meta SET value = greatest(value, $1) WHERE key = 'uidvalidity'",
        )
        .await?,
        &[&i64::from(v)],
    )
    .await?;
    let notify = vec![(mailbox.id, mailbox.highest_modseq)];
    Ok((
        Mailbox {
            uidvalidity: v,
            ..mailbox
        },
        notify,
    ))
}
