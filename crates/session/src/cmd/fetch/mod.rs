//! FETCH and UID FETCH (RFC 9051 §6.4.5, §7.5.2), with BINARY (RFC 3516) and CONDSTORE /
//! QRESYNC modifiers (RFC 7162 §3.1.4, §3.2.6).
//!
//! # Layout
//! - [`plan`]: which items are answered from the view and what must be loaded.
//! - [`section`]: body sections, partial ranges, BINARY, literals.
//! - this file: the per-message loop. ENVELOPE, BODYSTRUCTURE and BODY are stored IMAP text
//!   (computed by `mailkeep-mime` at APPEND), written as is.

pub(crate) mod plan;
pub(crate) mod section;

use std::collections::HashSet;
use std::sync::Arc;

use mailkeep_mime::PartTree;
use mailkeep_proto::write;
use mailkeep_proto::{FetchItem, FetchItems, FetchModifiers, SeqNum, SeqRange, SequenceSet};
use mailkeep_store::{FlagOp, Flags, ParsedInfo, StoreError, flags};

use super::{
    apply_updates, condstore_active, enable_condstore, number_runs, resolve, write_flags_item,
};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use plan::{Plan, part_label, section_label};

/// What was loaded for one message: only what the plan needs.
#[derive(Default)]
struct Loaded {
    bytes: Option<Arc<Vec<u8>>>,
    parsed: Option<ParsedInfo>,
    tree: Option<PartTree>,
}

pub(crate) async fn fetch(
    ctx: &mut Ctx<'_>,
    uid: bool,
    set: &SequenceSet,
    items: &FetchItems,
    modifiers: &FetchModifiers,
    out: &mut Vec<u8>,
) -> CmdResult<()> {
    let mut idx = resolve(ctx, set, uid)?;
    if modifiers.vanished && (!uid || modifiers.changed_since.is_none() || !ctx.enabled.qresync) {
        // RFC 7162 §3.2.6: VANISHED only in UID FETCH with CHANGEDSINCE, after ENABLE QRESYNC.
        return Err(CmdError::Bad(
            "VANISHED requires UID FETCH, CHANGEDSINCE and QRESYNC".into(),
        ));
    }
    let plan = Plan::new(items, uid, modifiers.changed_since.is_some());
    if plan.has_modseq {
        enable_condstore(ctx, out);
    }
    if let Some(since) = modifiers.changed_since {
        idx.retain(|&i| ctx.sel.messages[i].modseq > since);
        if modifiers.vanished {
            write_vanished(ctx, set, since, out).await?;
        }
    }

    // Set \Seen for the whole set in one store call before writing anything, so an explicit
    // FLAGS item already shows it (RFC 9051 §6.4.5). A read-only mailbox keeps its flags.
    let mut seen_now: HashSet<u32> = HashSet::new();
    if plan.sets_seen && !ctx.sel.read_only {
        let unseen: Vec<u32> = idx
            .iter()
            .map(|&i| &ctx.sel.messages[i])
            .filter(|m| m.flags.system & flags::SEEN == 0)
            .map(|m| m.uid)
            .collect();
        if !unseen.is_empty() {
            let seen = Flags {
                system: flags::SEEN,
                keywords: Vec::new(),
            };
            let r = ctx
                .store
                .set_flags(ctx.sel.mailbox.id, &unseen, FlagOp::Add, &seen, None)
                .await?;
            apply_updates(ctx, &r.updated);
            seen_now.extend(r.updated.iter().map(|u| u.uid));
        }
    }

    let with_modseq = condstore_active(ctx);
    // The stored parse (ENVELOPE, BODYSTRUCTURE, part tree) is read for a batch of messages
    // at a time: one store round trip per batch instead of one per message.
    let mut batch: std::collections::VecDeque<(u32, ParsedInfo)> = Default::default();
    let mut expunged_meanwhile = false;
    let mut line = Vec::new();
    for (n, &i) in idx.iter().enumerate() {
        let uid_i = ctx.sel.messages[i].uid;
        if plan.needs_parsed && n % PARSE_BATCH == 0 {
            let uids: Vec<u32> = idx[n..idx.len().min(n + PARSE_BATCH)]
                .iter()
                .map(|&j| ctx.sel.messages[j].uid)
                .collect();
            batch = ctx
                .store
                .parsed_infos(ctx.sel.mailbox.id, &uids)
                .await?
                .into();
        }
        let mut parsed = None;
        while let Some((u, _)) = batch.front() {
            if *u > uid_i {
                break;
            }
            let (u, p) = batch.pop_front().expect("front exists");
            if u == uid_i {
                parsed = Some(p);
            }
        }
        let loaded = match load(ctx, &plan, uid_i, parsed).await {
            Ok(loaded) => loaded,
            // Expunged by another session since this one last heard: the EXPUNGE may not be
            // sent during FETCH (RFC 9051 §7.5.1), so answer the rest and say NO at the end
            // (RFC 2180 §4.1.2), never an empty body a client could cache.
            Err(StoreError::NoSuchMailbox) => {
                expunged_meanwhile = true;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        // Built apart and appended whole, so an error never leaves half a response in `out`.
        line.clear();
        line.extend_from_slice(b"* ");
        write::number(&mut line, i as u64 + 1);
        line.extend_from_slice(b" FETCH (");
        let mut first = true;
        let mut sep = |line: &mut Vec<u8>| {
            if !std::mem::take(&mut first) {
                line.push(b' ');
            }
        };
        for item in &plan.index {
            sep(&mut line);
            write_index_item(ctx, i, item, &mut line);
        }
        if seen_now.contains(&uid_i) {
            // The flags changed: say so even if FLAGS was not asked for (Dovecot puts it after
            // the view items), with MODSEQ under CONDSTORE (RFC 7162 §3.2).
            if !plan.has_flags {
                sep(&mut line);
                write_flags_item(ctx, i, &mut line);
            }
            if with_modseq && !plan.has_modseq {
                sep(&mut line);
                line.extend_from_slice(
                    format!("MODSEQ ({})", ctx.sel.messages[i].modseq).as_bytes(),
                );
            }
        }
        for item in &plan.content {
            sep(&mut line);
            write_content_item(item, &loaded, &mut line)?;
        }
        line.extend_from_slice(b")\r\n");
        out.extend_from_slice(&line);
    }
    if expunged_meanwhile {
        // RFC 5530 §3: EXPUNGEISSUED, not NONEXISTENT (which is about mailboxes).
        return Err(CmdError::No(
            Some(write::Code::ExpungeIssued),
            "Some messages were expunged by another session".into(),
        ));
    }
    Ok(())
}

/// Messages whose stored parse is read in one store call.
const PARSE_BATCH: usize = 256;

/// Load the bytes and the stored parse of one message, each only if some item needs it.
/// `parsed` is the parse already read in a batch (a message missing from the batch was
/// expunged meanwhile: the single read reports it).
async fn load(
    ctx: &Ctx<'_>,
    plan: &Plan,
    uid: u32,
    parsed: Option<ParsedInfo>,
) -> Result<Loaded, StoreError> {
    let mut loaded = Loaded::default();
    if plan.view_only() {
        return Ok(loaded);
    }
    let mailbox = ctx.sel.mailbox.id;
    if plan.needs_bytes {
        loaded.bytes = Some(ctx.store.message_bytes(mailbox, uid).await?);
    }
    if plan.needs_parsed {
        let parsed = match parsed {
            Some(p) => p,
            None => ctx.store.parsed_info(mailbox, uid).await?,
        };
        if plan.needs_bytes {
            let tree = PartTree::from_bytes(&parsed.parts).ok_or_else(|| {
                StoreError::Internal(format!("unreadable part tree of UID {uid}"))
            })?;
            loaded.tree = Some(tree);
        }
        loaded.parsed = Some(parsed);
    }
    Ok(loaded)
}

fn write_index_item(ctx: &Ctx<'_>, i: usize, item: &FetchItem, line: &mut Vec<u8>) {
    let m = &ctx.sel.messages[i];
    match item {
        FetchItem::Uid => {
            line.extend_from_slice(b"UID ");
            write::number(line, u64::from(m.uid));
        }
        FetchItem::Flags => write_flags_item(ctx, i, line),
        FetchItem::InternalDate => {
            line.extend_from_slice(b"INTERNALDATE ");
            write::date_time(line, m.internal_date, m.internal_date_offset);
        }
        FetchItem::Rfc822Size => {
            line.extend_from_slice(b"RFC822.SIZE ");
            write::number(line, m.size);
        }
        FetchItem::ModSeq => {
            line.extend_from_slice(b"MODSEQ (");
            write::number(line, m.modseq);
            line.push(b')');
        }
        _ => {}
    }
}

fn write_content_item(item: &FetchItem, loaded: &Loaded, line: &mut Vec<u8>) -> CmdResult<()> {
    let empty: &[u8] = &[];
    let bytes: &[u8] = loaded
        .bytes
        .as_deref()
        .map(|v| v.as_slice())
        .unwrap_or(empty);
    let tree = loaded.tree.as_ref();
    let parsed = loaded.parsed.as_ref();
    let stored = |f: fn(&ParsedInfo) -> &[u8]| -> Vec<u8> {
        parsed
            .map(f)
            .filter(|t| !t.is_empty())
            .unwrap_or(b"NIL")
            .to_vec()
    };
    match item {
        FetchItem::Envelope => {
            line.extend_from_slice(b"ENVELOPE ");
            line.extend_from_slice(&stored(|p| &p.envelope));
        }
        FetchItem::BodyStructure => {
            line.extend_from_slice(b"BODYSTRUCTURE ");
            line.extend_from_slice(&stored(|p| &p.bodystructure));
        }
        FetchItem::Body => {
            line.extend_from_slice(b"BODY ");
            line.extend_from_slice(&stored(|p| &p.body));
        }
        FetchItem::Rfc822 => {
            line.extend_from_slice(b"RFC822 ");
            section::literal(line, bytes);
        }
        FetchItem::Rfc822Header | FetchItem::Rfc822Text => {
            let (label, text) = if *item == FetchItem::Rfc822Header {
                ("RFC822.HEADER ", mailkeep_proto::SectionText::Header)
            } else {
                ("RFC822.TEXT ", mailkeep_proto::SectionText::Text)
            };
            let sec = mailkeep_proto::Section {
                part: Vec::new(),
                text: Some(text),
            };
            line.extend_from_slice(label.as_bytes());
            section::literal(line, &section::body_section(bytes, tree, &sec));
        }
        FetchItem::BodySection {
            section: sec,
            partial,
            ..
        } => {
            let content = section::body_section(bytes, tree, sec);
            let label = format!(
                "BODY[{}]{} ",
                section_label(sec),
                section::partial_label(*partial)
            );
            line.extend_from_slice(label.as_bytes());
            section::literal(line, section::partial(&content, *partial));
        }
        FetchItem::Binary { part, partial, .. } => {
            let content = section::binary(bytes, tree, part)?;
            let label = format!(
                "BINARY[{}]{} ",
                part_label(part),
                section::partial_label(*partial)
            );
            line.extend_from_slice(label.as_bytes());
            section::literal8_if_needed(line, section::partial(&content, *partial));
        }
        FetchItem::BinarySize { part } => {
            let size = section::binary(bytes, tree, part)?.len();
            line.extend_from_slice(
                format!("BINARY.SIZE[{}] {}", part_label(part), size).as_bytes(),
            );
        }
        FetchItem::Uid
        | FetchItem::Flags
        | FetchItem::InternalDate
        | FetchItem::Rfc822Size
        | FetchItem::ModSeq => {}
    }
    Ok(())
}

/// `* VANISHED (EARLIER) uids`: messages of the requested UID set expunged after `since`
/// (RFC 7162 §3.2.6).
async fn write_vanished(
    ctx: &Ctx<'_>,
    set: &SequenceSet,
    since: u64,
    out: &mut Vec<u8>,
) -> CmdResult<()> {
    let changes = ctx.store.changes_since(ctx.sel.mailbox.id, since).await?;
    let gone: Vec<u32> = changes
        .expunged
        .into_iter()
        .filter(|u| uid_in_set(ctx, set, *u))
        .collect();
    if !gone.is_empty() {
        out.extend_from_slice(
            format!("* VANISHED (EARLIER) {}\r\n", number_runs(&gone)).as_bytes(),
        );
    }
    Ok(())
}

/// Whether a UID (possibly no longer in the view) is in a UID set; `*` is open-ended here since
/// an expunged UID may be larger than any UID left.
fn uid_in_set(ctx: &Ctx<'_>, set: &SequenceSet, uid: u32) -> bool {
    let ranges = match set {
        SequenceSet::Saved => return ctx.sel.saved.contains(&uid),
        SequenceSet::Ranges(r) => r,
    };
    let val = |s: SeqNum| match s {
        SeqNum::Value(v) => v,
        SeqNum::Largest => u32::MAX,
    };
    ranges.iter().any(|r| match *r {
        SeqRange::Single(x) => val(x) == uid || x == SeqNum::Largest,
        SeqRange::Range(a, b) => (val(a).min(val(b))..=val(a).max(val(b))).contains(&uid),
    })
}
