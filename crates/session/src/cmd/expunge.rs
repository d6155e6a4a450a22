//! EXPUNGE (RFC 9051 §6.4.3) and UID EXPUNGE (RFC 4315 §2.1, RFC 9051 §6.4.9).

use mailkeep_proto::SequenceSet;
use mailkeep_store::flags;

use super::read_only_error;
use crate::ctx::Ctx;
use crate::error::CmdResult;

/// Remove the messages marked `\Deleted` (only those also in `uids` for UID EXPUNGE), then let
/// sync write `* n EXPUNGE` (or VANISHED) for them and anything else pending.
pub(crate) async fn expunge(
    ctx: &mut Ctx<'_>,
    uids: Option<&SequenceSet>,
    out: &mut Vec<u8>,
) -> CmdResult<()> {
    if ctx.sel.read_only {
        return Err(read_only_error());
    }
    // A UID set never fails to resolve (UIDs not in the view are ignored).
    let candidates: Vec<usize> = match uids {
        Some(set) => super::resolve(ctx, set, true)?,
        None => (0..ctx.sel.messages.len()).collect(),
    };
    let deleted: Vec<u32> = candidates
        .into_iter()
        .map(|i| &ctx.sel.messages[i])
        .filter(|m| m.flags.system & flags::DELETED != 0)
        .map(|m| m.uid)
        .collect();
    if !deleted.is_empty() {
        let removed = ctx.store.expunge(ctx.sel.mailbox.id, &deleted).await?;
        // Removing mail is the one destructive command here: leave a trace of who did it.
        tracing::debug!(user = %ctx.user.name, mailbox = %ctx.sel.mailbox.name, count = removed.len(), "expunged");
    }
    crate::sync::sync(ctx, out, true).await
}
