//! Bringing the selected view up to date with the store (RFC 9051 §7.4, RFC 2180 §4).

use crate::ctx::Ctx;
use crate::error::CmdResult;

/// Apply what changed in the store since the view's modseq and write the untagged responses:
/// `* n EXISTS` (+ `* n RECENT` for rev1) for new messages, `* n FETCH (FLAGS ...)` for flag
/// changes made by others (a view entry whose modseq already equals the store's is skipped: the
/// session made that change itself and has answered for it), and `* n EXPUNGE` (or VANISHED
/// with QRESYNC) for removed messages, only when `allow_expunge` (never during FETCH, STORE,
/// SEARCH: RFC 9051 §7.5.1); otherwise expunges stay pending until a later call allows them.
pub(crate) async fn sync(ctx: &mut Ctx<'_>, out: &mut Vec<u8>, allow_expunge: bool) -> CmdResult<()> {
    let _ = (ctx, out, allow_expunge);
    todo!("session state-machine helper")
}
