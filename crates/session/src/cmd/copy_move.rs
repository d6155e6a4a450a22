//! COPY, UID COPY (RFC 9051 §6.4.7) and MOVE, UID MOVE (RFC 6851), with COPYUID (RFC 4315).

use mailkeep_proto::SequenceSet;
use mailkeep_proto::write::{self, Code, StatusKind};
use mailkeep_store::Mailbox;

use super::{number_runs, read_only_error, resolve};
use crate::ctx::Ctx;
use crate::error::CmdResult;

/// `COPYUID uidvalidity source-uids dest-uids`, pairs in source UID order (RFC 4315 §3: the
/// n-th source UID became the n-th destination UID).
fn copyuid(uidvalidity: u32, mut pairs: Vec<(u32, u32)>) -> Code {
    pairs.sort_unstable();
    let src: Vec<u32> = pairs.iter().map(|p| p.0).collect();
    let dst: Vec<u32> = pairs.iter().map(|p| p.1).collect();
    Code::CopyUid {
        uidvalidity,
        source: number_runs(&src),
        dest: number_runs(&dst),
    }
}

fn uids_of(ctx: &Ctx<'_>, set: &SequenceSet, uid: bool) -> CmdResult<Vec<u32>> {
    Ok(resolve(ctx, set, uid)?
        .into_iter()
        .map(|i| ctx.sel.messages[i].uid)
        .collect())
}

/// COPY: returns `COPYUID` for the tagged OK; copying nothing is a plain OK.
/// The new messages of a copy into the selected mailbox itself are announced by the next sync.
pub(crate) async fn copy(
    ctx: &mut Ctx<'_>,
    uid: bool,
    set: &SequenceSet,
    dest: &Mailbox,
    out: &mut Vec<u8>,
) -> CmdResult<Option<Code>> {
    let _ = out;
    let uids = uids_of(ctx, set, uid)?;
    if uids.is_empty() {
        return Ok(None);
    }
    let (uidvalidity, pairs) = ctx.store.copy(ctx.sel.mailbox.id, &uids, dest.id).await?;
    if pairs.is_empty() {
        return Ok(None);
    }
    Ok(Some(copyuid(uidvalidity, pairs)))
}

/// MOVE: RFC 6851 §4.3 sends COPYUID in an untagged OK before the expunges, since the tagged OK
/// comes after them.
pub(crate) async fn move_(
    ctx: &mut Ctx<'_>,
    uid: bool,
    set: &SequenceSet,
    dest: &Mailbox,
    out: &mut Vec<u8>,
) -> CmdResult<()> {
    let uids = uids_of(ctx, set, uid)?;
    if ctx.sel.read_only {
        return Err(read_only_error());
    }
    if uids.is_empty() {
        return Ok(());
    }
    let (uidvalidity, pairs) = ctx
        .store
        .move_messages(ctx.sel.mailbox.id, &uids, dest.id)
        .await?;
    if !pairs.is_empty() {
        write::status(
            out,
            None,
            StatusKind::Ok,
            Some(&copyuid(uidvalidity, pairs)),
            "Moved UIDs.",
        );
    }
    crate::sync::sync(ctx, out, true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copyuid_pairs_in_source_order() {
        let code = copyuid(7, vec![(5, 12), (1, 10), (2, 11), (9, 20)]);
        assert_eq!(
            code,
            Code::CopyUid {
                uidvalidity: 7,
                source: "1:2,5,9".into(),
                dest: "10:12,20".into()
            }
        );
    }
}
