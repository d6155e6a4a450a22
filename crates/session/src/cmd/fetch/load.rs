//! Reading what a FETCH needs for each message: the stored parses, headers and object IDs
//! of the next messages in one store call each, then one message's bytes, parse and preview.

use std::collections::VecDeque;
use std::sync::Arc;

use mailkeep_mime::PartTree;
use mailkeep_store::{MessageObjects, ParsedInfo, StoreError};

use super::plan::Plan;
use crate::ctx::Ctx;

/// What was loaded for one message: only what the plan needs.
#[derive(Default)]
pub(super) struct Loaded {
    pub(super) bytes: Option<Arc<Vec<u8>>>,
    pub(super) parsed: Option<ParsedInfo>,
    pub(super) tree: Option<PartTree>,
    /// EMAILID, THREADID, SAVEDATE.
    pub(super) objects: Option<MessageObjects>,
    /// PREVIEW text; `None` for a LAZY one not kept at delivery.
    pub(super) preview: Option<String>,
}

/// Messages whose stored parse is read in one store call.
pub(super) const PARSE_BATCH: usize = 256;

/// The entry for `uid` from a batch read ahead in ascending UID order, dropping the entries
/// before it (messages skipped or left out). `None`: the store left `uid` out (expunged).
pub(super) fn take_uid<T>(batch: &mut VecDeque<(u32, T)>, uid: u32) -> Option<T> {
    while batch.front().is_some_and(|(u, _)| *u < uid) {
        batch.pop_front();
    }
    match batch.front() {
        Some((u, _)) if *u == uid => batch.pop_front().map(|(_, v)| v),
        _ => None,
    }
}

/// Header octets read in one store call for a header-only FETCH (at least one header).
const HEADER_BATCH_BYTES: u64 = 1 << 20;

/// The `(uid, header length)` of the message `uid` (with its stored parse, if found) and of
/// the following ones of `batch`, up to [`HEADER_BATCH_BYTES`]. Only the length is read from
/// each stored part tree (each message's load decodes its own tree). Stops at a tree it
/// cannot read: that message's own load reports it.
pub(super) fn header_batch(
    uid: u32,
    parsed: Option<&ParsedInfo>,
    batch: &VecDeque<(u32, ParsedInfo)>,
) -> Vec<(u32, u64)> {
    let mut wanted = Vec::new();
    let mut total = 0;
    let first = parsed.map(|p| (uid, p));
    for (u, p) in first.into_iter().chain(batch.iter().map(|(u, p)| (*u, p))) {
        let Some(len) = PartTree::header_len_from_bytes(&p.parts) else {
            break;
        };
        if !wanted.is_empty() && total + len > HEADER_BATCH_BYTES {
            break;
        }
        total += len;
        wanted.push((u, len));
    }
    wanted
}

/// Load the bytes and the stored parse of one message, each only if some item needs it.
/// `parsed` is the parse already read in a batch (a message missing from the batch was
/// expunged meanwhile: the single read reports it).
pub(super) async fn load(
    ctx: &Ctx<'_>,
    plan: &Plan,
    uid: u32,
    parsed: Option<ParsedInfo>,
    header: Option<Vec<u8>>,
) -> Result<Loaded, StoreError> {
    let mut loaded = Loaded::default();
    if plan.view_only() {
        return Ok(loaded);
    }
    let mailbox = ctx.sel.mailbox.id;
    if plan.needs_bytes && !plan.header_only {
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
            if plan.header_only {
                let header = match header {
                    Some(h) => h,
                    None => {
                        let end = tree.root.body_start;
                        let mut one = ctx.store.message_prefixes(mailbox, &[(uid, end)]).await?;
                        // Left out: expunged by another session meanwhile.
                        one.pop().ok_or(StoreError::NoSuchMailbox)?.1
                    }
                };
                loaded.bytes = Some(Arc::new(header));
            }
            loaded.tree = Some(tree);
        }
        loaded.parsed = Some(parsed);
    }
    if plan.needs_preview {
        loaded.preview = match ctx.store.preview(mailbox, uid).await? {
            Some(p) => Some(p),
            // Not kept at delivery (stored before previews were): LAZY says so with NIL
            // (RFC 8970 §4.1); otherwise it is made from the body now.
            None if plan.preview_lazy => None,
            None => {
                let bytes = match &loaded.bytes {
                    Some(b) if !plan.header_only => b.clone(),
                    _ => ctx.store.message_bytes(mailbox, uid).await?,
                };
                Some(if bytes.len() <= PREVIEW_INLINE_MAX {
                    mailkeep_mime::preview(&bytes)
                } else {
                    tokio::task::spawn_blocking(move || mailkeep_mime::preview(&bytes))
                        .await
                        .map_err(|e| StoreError::Internal(format!("preview: {e}")))?
                })
            }
        };
    }
    Ok(loaded)
}

/// Messages up to this size get a missing preview made on the session's own thread.
const PREVIEW_INLINE_MAX: usize = 64 << 10;
