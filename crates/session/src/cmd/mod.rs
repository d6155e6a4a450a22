//! Selected-state commands: FETCH, SEARCH, STORE, COPY, MOVE, EXPUNGE (RFC 9051 §6.4).
//!
//! Each handler writes only untagged responses into `out`; the dispatcher writes the tagged
//! line (with the response code a handler returns, or [`CmdError::write`] on failure).
//! None of them lets the view drop messages except through `crate::sync::sync` with
//! expunges allowed, and only EXPUNGE and MOVE call that (RFC 9051 §7.5.1).

pub(crate) mod catenate;
pub(crate) mod copy_move;
pub(crate) mod expunge;
pub(crate) mod fetch;
pub(crate) mod multisearch;
pub(crate) mod objectid;
pub(crate) mod qresync;
pub(crate) mod quota;
pub(crate) mod replace;
pub(crate) mod search;
pub(crate) mod sort;
pub(crate) mod sortkeys;
pub(crate) mod store_flags;
pub(crate) mod thread;
pub(crate) mod uidonly;
pub(crate) mod urlauth;

use mailkeep_proto::SequenceSet;
use mailkeep_proto::write::{self, Code, StatusKind};
use mailkeep_store::FlagUpdate;

use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::selected::SetError;

/// `FLAGS (...)` of view entry `i`, with `\Recent` for IMAP4rev1 clients (RFC 3501 §2.3.2;
/// IMAP4rev2 dropped it).
pub(crate) fn write_flags_item(ctx: &Ctx<'_>, i: usize, out: &mut Vec<u8>) {
    let m = &ctx.sel.messages[i];
    let recent = !ctx.enabled.imap4rev2 && ctx.sel.recent.contains(&m.uid);
    out.extend_from_slice(b"FLAGS ");
    crate::flags::write_list(out, &m.flags, recent);
}

/// The sequence set could not be resolved: RFC 9051 §6.4.5 makes an invalid message number BAD.
pub(crate) fn resolve(ctx: &Ctx<'_>, set: &SequenceSet, uid: bool) -> CmdResult<Vec<usize>> {
    ctx.sel.resolve(set, uid).map_err(|e| match e {
        SetError::InvalidSequence => CmdError::Bad("Invalid messageset".into()),
    })
}

/// Apply flag updates the session made itself to its view, so the next sync does not report
/// them again (sync skips entries whose modseq already equals the store's).
pub(crate) fn apply_updates(ctx: &mut Ctx<'_>, updates: &[FlagUpdate]) {
    for u in updates {
        if let Some(seq) = ctx.sel.seq_of_uid(u.uid) {
            let m = &mut ctx.sel.messages[seq as usize - 1];
            m.flags = u.flags.clone();
            m.modseq = u.modseq;
        }
    }
}

/// CONDSTORE is in effect for this mailbox (ENABLE, SELECT (CONDSTORE), or an enabling command).
pub(crate) fn condstore_active(ctx: &Ctx<'_>) -> bool {
    ctx.sel.condstore || ctx.enabled.condstore || ctx.enabled.qresync
}

/// A CONDSTORE enabling command (FETCH MODSEQ/CHANGEDSINCE, SEARCH MODSEQ, STORE
/// UNCHANGEDSINCE). RFC 7162 §3.1: the first one in a session MUST make the server send
/// HIGHESTMODSEQ for the selected mailbox.
pub(crate) fn enable_condstore(ctx: &mut Ctx<'_>, out: &mut Vec<u8>) {
    if condstore_active(ctx) {
        return;
    }
    ctx.sel.condstore = true;
    let highest = ctx
        .sel
        .modseq
        .max(ctx.sel.messages.iter().map(|m| m.modseq).max().unwrap_or(0));
    write_highest_modseq(out, highest);
}

/// `* OK [HIGHESTMODSEQ n] Highest` (RFC 7162 §3.1.2.1), worded as Dovecot does.
pub(crate) fn write_highest_modseq(out: &mut Vec<u8>, modseq: u64) {
    write::status(
        out,
        None,
        StatusKind::Ok,
        Some(&Code::HighestModSeq(modseq)),
        "Highest",
    );
}

/// Numbers as a compact set in the order given: runs of consecutive ascending numbers become
/// `a:b` (`1:3,7,9:10`). For sorted input this is the canonical `sequence-set`; for COPYUID's
/// destination list it keeps the pairing with the source list (RFC 4315 §3).
pub(crate) fn number_runs(nums: &[u32]) -> String {
    let mut s = String::new();
    let mut i = 0;
    while i < nums.len() {
        let start = nums[i];
        let mut j = i;
        while j + 1 < nums.len() && nums[j].checked_add(1) == Some(nums[j + 1]) {
            j += 1;
        }
        if !s.is_empty() {
            s.push(',');
        }
        if j > i {
            s.push_str(&format!("{}:{}", start, nums[j]));
        } else {
            s.push_str(&start.to_string());
        }
        i = j + 1;
    }
    s
}

/// `NO [READ-ONLY]`: the mailbox was selected with EXAMINE or may not be changed.
pub(crate) fn read_only_error() -> CmdError {
    CmdError::No(Some(Code::ReadOnly), "Mailbox is read-only".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_runs_compacts() {
        let cases: &[(&[u32], &str)] = &[
            (&[], ""),
            (&[5], "5"),
            (&[1, 2, 3, 7, 9, 10], "1:3,7,9:10"),
            (&[4, 3], "4,3"),
            (&[u32::MAX - 1, u32::MAX], "4294967294:4294967295"),
        ];
        for (input, want) in cases {
            assert_eq!(number_runs(input), *want, "{input:?}");
        }
    }
}
