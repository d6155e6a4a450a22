//! REPLACE and UID REPLACE (RFC 8508): APPEND of the new message and expunge of the old one
//! in one store transaction, answered like APPEND (APPENDUID, RFC 4315) and MOVE (EXPUNGE).

use mailkeep_proto::write::{self, Code, StatusKind};
use mailkeep_proto::{AppendMessage, SeqNum};

use super::read_only_error;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};

/// `max_message_size` is APPENDLIMIT: the new message meets the same limit as APPEND's.
pub(crate) async fn replace(
    ctx: &mut Ctx<'_>,
    uid: bool,
    number: SeqNum,
    raw: &[u8],
    message: AppendMessage,
    max_message_size: u64,
    out: &mut Vec<u8>,
) -> CmdResult<()> {
    let old = match (uid, number) {
        (true, SeqNum::Value(u)) => match ctx.sel.seq_of_uid(u) {
            Some(_) => u,
            None => {
                return Err(CmdError::No(
                    Some(Code::Nonexistent),
                    "No such message to replace.".into(),
                ));
            }
        },
        (_, n) => {
            let len = ctx.sel.messages.len();
            let i = match n {
                SeqNum::Value(v) => v as usize,
                SeqNum::Largest => len,
            };
            if i == 0 || i > len {
                // RFC 9051 §6.4.5 treats a message number out of range as BAD.
                return Err(CmdError::Bad("Invalid message number".into()));
            }
            ctx.sel.messages[i - 1].uid
        }
    };
    if ctx.sel.read_only {
        return Err(read_only_error());
    }
    if message.data.len() > max_message_size {
        return Err(CmdError::No(
            Some(Code::TooBig),
            "Message too large.".into(),
        ));
    }
    let name = crate::names::decode(raw, ctx.enabled)?;
    // RFC 8508 §4.2: CATENATE works in REPLACE as in APPEND.
    let message = super::catenate::resolve(
        &**ctx.store,
        ctx.user,
        Some(&ctx.sel.mailbox),
        message,
        max_message_size,
    )
    .await?;
    let new = crate::append::prepare(message).await?;
    let replaced = match ctx
        .store
        .replace(ctx.sel.mailbox.id, old, ctx.user.id, &name, new)
        .await
    {
        // Expunged by another session meanwhile: it cannot be removed, so nothing is added.
        Err(mailkeep_store::StoreError::NoSuchMailbox) => {
            return Err(CmdError::No(
                Some(Code::ExpungeIssued),
                "The message to replace was expunged.".into(),
            ));
        }
        r => r?,
    };
    let Some((uidvalidity, new_uid)) = replaced else {
        return Err(CmdError::No(
            Some(Code::TryCreate),
            "Mailbox doesn't exist.".into(),
        ));
    };
    write::status(
        out,
        None,
        StatusKind::Ok,
        Some(&Code::AppendUid {
            uidvalidity,
            uids: new_uid.to_string(),
        }),
        "Replacement Message ready",
    );
    // EXISTS (when the target is this mailbox) and the old message's EXPUNGE, as MOVE does.
    crate::sync::sync(ctx, out, true).await
}
