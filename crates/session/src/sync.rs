//! Bringing the selected view up to date with the store (RFC 9051 §7.4, RFC 2180 §4).

use mailkeep_proto::write;

use crate::ctx::Ctx;
use crate::error::CmdResult;
use crate::flags;

/// Apply what changed in the store since the view's modseq and write the untagged responses:
/// `* n EXISTS` (+ `* n RECENT` for rev1) for new messages, `* n FETCH (FLAGS ...)` for flag
/// changes made by others (a view entry whose modseq already equals the store's is skipped: the
/// session made that change itself and has answered for it), and `* n EXPUNGE` (or VANISHED
/// with QRESYNC) for removed messages, only when `allow_expunge` (never during FETCH, STORE,
/// SEARCH: RFC 9051 §7.5.1); otherwise expunges stay pending until a later call allows them.
pub(crate) async fn sync(
    ctx: &mut Ctx<'_>,
    out: &mut Vec<u8>,
    allow_expunge: bool,
) -> CmdResult<()> {
    let store = ctx.store;
    let changes = store
        .changes_since(ctx.sel.mailbox.id, ctx.sel.modseq)
        .await?;
    let sel = &mut *ctx.sel;
    let rev1 = !ctx.enabled.imap4rev2;

    // Expunges first become pending; they are announced below if allowed.
    // Kept sorted, so lookups below are binary searches even after a mass expunge.
    for uid in &changes.expunged {
        if sel.seq_of_uid(*uid).is_some() {
            sel.pending_expunge.push(*uid);
        }
    }
    if crate::cmd::qresync::tombstones_pruned(&changes, sel.modseq) {
        // Tombstones this view had not yet applied were pruned: whatever the view holds that
        // the mailbox no longer does was expunged.
        let present: Vec<u32> = store
            .messages(sel.mailbox.id)
            .await?
            .iter()
            .map(|m| m.uid)
            .collect();
        for m in &sel.messages {
            if present.binary_search(&m.uid).is_err() {
                sel.pending_expunge.push(m.uid);
            }
        }
    }
    sel.pending_expunge.sort_unstable();
    sel.pending_expunge.dedup();

    // Flag changes and new messages (ascending UID).
    let last_uid = sel.messages.last().map_or(0, |m| m.uid);
    let mut new_messages = Vec::new();
    let mut flag_changes: Vec<u32> = Vec::new();
    for meta in changes.changed {
        if meta.uid > last_uid {
            new_messages.push(meta);
            continue;
        }
        let Some(seq) = sel.seq_of_uid(meta.uid) else {
            continue;
        };
        let entry = &mut sel.messages[seq as usize - 1];
        if entry.modseq >= meta.modseq || sel.pending_expunge.binary_search(&meta.uid).is_ok() {
            continue;
        }
        let changed = entry.flags != meta.flags;
        entry.flags = meta.flags;
        entry.modseq = meta.modseq;
        if changed || sel.condstore {
            flag_changes.push(meta.uid);
        }
    }

    // A keyword nobody used before: the client learns it from a new FLAGS (RFC 9051 §7.3.5).
    let changed = flag_changes
        .iter()
        .filter_map(|&uid| sel.seq_of_uid(uid))
        .map(|seq| &sel.messages[seq as usize - 1]);
    let used: Vec<String> = changed
        .chain(&new_messages)
        .flat_map(|m| m.flags.keywords.iter().cloned())
        .collect();
    if sel.learn_keywords(used.iter().map(String::as_str)) {
        sel.write_flag_lists(out, false);
    }

    for uid in flag_changes {
        let Some(seq) = sel.seq_of_uid(uid) else {
            continue;
        };
        let m = &sel.messages[seq as usize - 1];
        crate::cmd::uidonly::fetch_prefix(out, ctx.enabled.uidonly, seq, uid);
        if ctx.enabled.qresync && !ctx.enabled.uidonly {
            // RFC 7162 §3.2.4: with QRESYNC every FETCH carries the UID.
            out.extend_from_slice(format!("UID {uid} ").as_bytes());
        }
        out.extend_from_slice(b"FLAGS ");
        write::flag_list(
            out,
            &flags::to_wire(&m.flags, rev1 && sel.recent.contains(&uid)),
        );
        if sel.condstore {
            // RFC 7162 §3.1.4.1: unsolicited FETCH carries MODSEQ once CONDSTORE is on.
            out.extend_from_slice(format!(" MODSEQ ({})", m.modseq).as_bytes());
        }
        out.extend_from_slice(b")\r\n");
    }

    if allow_expunge && !sel.pending_expunge.is_empty() {
        let gone = std::mem::take(&mut sel.pending_expunge);
        // RFC 5267 §4.3.4: REMOVEFROM before the EXPUNGE, while the numbers are valid.
        crate::cmd::search::context::expunging(sel, &gone, out);
        // RFC 9586 §3.4, §3.6: UIDONLY announces expunges as VANISHED too.
        if ctx.enabled.qresync || ctx.enabled.uidonly {
            out.extend_from_slice(b"* VANISHED ");
            write::number_set(out, &gone);
            out.extend_from_slice(b"\r\n");
        } else {
            // Highest sequence number first, so each number is still valid when the client
            // reads it.
            let seqs: Vec<u32> = gone.iter().filter_map(|u| sel.seq_of_uid(*u)).collect();
            for seq in seqs.iter().rev() {
                out.extend_from_slice(format!("* {seq} EXPUNGE\r\n").as_bytes());
            }
        }
        // One pass over the view, not one shift per message.
        sel.messages.retain(|m| gone.binary_search(&m.uid).is_err());
        for uid in &gone {
            sel.recent.remove(uid);
        }
    }

    if !new_messages.is_empty() {
        let mut recent = store.claim_recent(sel.mailbox.id, !sel.read_only).await?;
        recent.append(&mut sel.claimed);
        // Only messages the view now holds: one claimed and expunged before this look is
        // not counted in RECENT.
        let new_uid = |u: &u32| new_messages.binary_search_by_key(u, |m| m.uid).is_ok();
        sel.recent.extend(recent.into_iter().filter(new_uid));
        sel.messages.extend(new_messages);
        out.extend_from_slice(format!("* {} EXISTS\r\n", sel.exists()).as_bytes());
        if rev1 {
            out.extend_from_slice(format!("* {} RECENT\r\n", sel.recent.len()).as_bytes());
        }
    }

    sel.modseq = sel.modseq.max(changes.highest_modseq);
    sel.mailbox.highest_modseq = sel.modseq;
    sel.mailbox.uidnext = sel.mailbox.uidnext.max(changes.uidnext);
    // RFC 5267 §4.3.3: ADDTO after the EXISTS that made its numbers valid.
    crate::cmd::search::context::refresh(ctx, out).await;
    Ok(())
}
