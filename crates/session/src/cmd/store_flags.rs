//! STORE and UID STORE (RFC 9051 §6.4.6), with UNCHANGEDSINCE (RFC 7162 §3.1.3).

use mailkeep_proto::write::Code;
use mailkeep_proto::{Flag, SequenceSet, StoreAction};
use mailkeep_store::FlagOp;

use super::{
    apply_updates, condstore_active, enable_condstore, number_runs, read_only_error, resolve,
};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};

/// STORE: change the flags, then answer `* n FETCH (FLAGS ...)` for every message of the set
/// (unless `.SILENT`) with its flags after the change. Returns `MODIFIED` for the tagged OK when
/// UNCHANGEDSINCE rejected some messages (RFC 7162 §3.1.3).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn store(
    ctx: &mut Ctx<'_>,
    uid: bool,
    set: &SequenceSet,
    action: StoreAction,
    silent: bool,
    flag_list: &[Flag],
    unchanged_since: Option<u64>,
    out: &mut Vec<u8>,
) -> CmdResult<Option<Code>> {
    let idx = resolve(ctx, set, uid)?;
    let named_any = !idx.is_empty();
    let wanted = crate::flags::from_wire(flag_list)?;
    if ctx.sel.read_only {
        return Err(read_only_error());
    }
    if unchanged_since.is_some() {
        enable_condstore(ctx, out);
    }
    // Messages another session expunged, known from an earlier sync but not yet announced
    // (no EXPUNGE during STORE): no FETCH for them, and a STORE that named only such messages
    // fails unless .SILENT (RFC 2180 §4.2.1, §4.2.2; EXPUNGEISSUED from RFC 5530). UID STORE
    // may announce the EXPUNGE itself (RFC 9051 §7.5.1), so it just says OK.
    let pending = &ctx.sel.pending_expunge;
    let idx: Vec<usize> = idx
        .into_iter()
        .filter(|&i| pending.binary_search(&ctx.sel.messages[i].uid).is_err())
        .collect();
    if idx.is_empty() {
        if silent || uid || !named_any {
            return Ok(None);
        }
        return Err(CmdError::No(
            Some(Code::ExpungeIssued),
            "The messages were expunged by another session".into(),
        ));
    }
    let uids: Vec<u32> = idx.iter().map(|&i| ctx.sel.messages[i].uid).collect();
    let op = match action {
        StoreAction::Replace => FlagOp::Replace,
        StoreAction::Add => FlagOp::Add,
        StoreAction::Remove => FlagOp::Remove,
    };
    let result = ctx
        .store
        .set_flags(ctx.sel.mailbox.id, &uids, op, &wanted, unchanged_since)
        .await?;
    apply_updates(ctx, &result.updated);
    // A keyword new to this mailbox is announced before the FETCH lines that use it, as
    // Dovecot does (RFC 9051 §7.3.5).
    let used = result.updated.iter().flat_map(|u| &u.flags.keywords);
    if ctx.sel.learn_keywords(used.map(String::as_str)) {
        ctx.sel.write_flag_lists(out, false);
    }

    let with_modseq = condstore_active(ctx);
    // RFC 7162 §3.1.3: with UNCHANGEDSINCE, a message that was updated is reported with its new
    // MODSEQ even under .SILENT, so the client learns the value it must use next time.
    let report_silent_modseq = silent && unchanged_since.is_some();
    for &i in &idx {
        let m = &ctx.sel.messages[i];
        if result.modified.contains(&m.uid) {
            continue;
        }
        let updated = result.updated.iter().any(|u| u.uid == m.uid);
        if silent && !(report_silent_modseq && updated) {
            continue;
        }
        let mut items: Vec<u8> = Vec::new();
        // RFC 7162 §3.2.4: with QRESYNC every untagged FETCH carries the UID.
        if (uid || ctx.enabled.qresync) && !ctx.enabled.uidonly {
            items.extend_from_slice(format!("UID {} ", m.uid).as_bytes());
        }
        if !silent {
            super::write_flags_item(ctx, i, &mut items);
            items.push(b' ');
        }
        if with_modseq {
            items.extend_from_slice(format!("MODSEQ ({}) ", m.modseq).as_bytes());
        }
        if items.last() == Some(&b' ') {
            items.pop();
        }
        super::uidonly::fetch_prefix(out, ctx.enabled.uidonly, i as u32 + 1, m.uid);
        out.extend_from_slice(&items);
        out.extend_from_slice(b")\r\n");
    }

    if result.modified.is_empty() {
        return Ok(None);
    }
    // MODIFIED lists UIDs for UID STORE and sequence numbers for STORE (RFC 7162 §3.1.3).
    let mut nums: Vec<u32> = if uid {
        result.modified.clone()
    } else {
        result
            .modified
            .iter()
            .filter_map(|u| ctx.sel.seq_of_uid(*u))
            .collect()
    };
    nums.sort_unstable();
    nums.dedup();
    Ok(Some(Code::Modified(number_runs(&nums))))
}
