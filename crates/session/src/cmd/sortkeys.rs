//! Sort and thread keys kept in the store (RFC 5256): what SORT and THREAD need of a message,
//! computed once per body at delivery (`mailkeep_mime::sortkeys`, written by the store with
//! the body), so a SORT or THREAD over 100,000 messages reads one small row each instead of
//! parsing every ENVELOPE and, for THREAD=REFERENCES, reading every message's header.
//!
//! A message whose keys are not saved yet (mail stored before keys were kept at delivery, or
//! a row of an older format) gets them computed here from its stored ENVELOPE, sent date and
//! header, the first time a SORT or THREAD needs it, and saved: the backfill of older mail.
//!
//! The rows are read in place ([`Row`]): no string is copied per message.

use std::time::{Duration, Instant};

pub(crate) use mailkeep_mime::sortkeys::Row;
use mailkeep_mime::sortkeys::{Keys, header_part};

use super::sort::check_budget;
use crate::ctx::Ctx;
use crate::error::CmdResult;

/// Messages computed (and saved) per store round trip.
const BATCH: usize = 512;

/// How long one command may spend computing missing keys. Longer than the command's own
/// budget (`search::SEARCH_TIME_BUDGET`): this is done once per message, never again (saved
/// per batch, so even a command that runs out of time leaves its work behind), and a first
/// SORT of 100,000 older messages must not fail for it. Dovecot's first SORT of such a
/// mailbox (building its sort index) takes about as long.
const COMPUTE_BUDGET: Duration = Duration::from_secs(60);

/// The encoded keys of the view entries `idx` (ascending), in that order, each one a valid
/// row for [`rows`]: saved ones read in one store call, missing ones computed from the stored
/// parse and header and saved. A message expunged meanwhile gets empty keys (its
/// INTERNALDATE as its date), not saved. The second value counts the rows computed here.
pub(crate) async fn load(
    ctx: &Ctx<'_>,
    idx: &[usize],
    deadline: Instant,
) -> CmdResult<(Vec<Vec<u8>>, usize)> {
    let mailbox = ctx.sel.mailbox.id;
    let uids: Vec<u32> = idx.iter().map(|&i| ctx.sel.messages[i].uid).collect();
    let saved = ctx.store.sort_keys(mailbox, &uids).await?;
    check_budget(deadline)?;
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(idx.len());
    let mut saved = saved.into_iter().peekable();
    for &uid in &uids {
        while saved.next_if(|(u, _)| *u < uid).is_some() {}
        out.push(
            saved
                .next_if(|(u, _)| *u == uid)
                .map(|(_, k)| k)
                .filter(|k| Row::layout_ok(k))
                .unwrap_or_default(),
        );
    }
    let missing: Vec<usize> = (0..out.len()).filter(|&n| out[n].is_empty()).collect();
    let compute_deadline = deadline.max(Instant::now() + COMPUTE_BUDGET);
    for chunk in missing.chunks(BATCH) {
        check_budget(compute_deadline)?;
        let chunk_uids: Vec<u32> = chunk.iter().map(|&n| uids[n]).collect();
        let infos = ctx.store.parsed_infos(mailbox, &chunk_uids).await?;
        let mut found = infos.into_iter().peekable();
        let mut to_save = Vec::with_capacity(chunk.len());
        for &n in chunk {
            let uid = uids[n];
            while found.next_if(|(u, _)| *u < uid).is_some() {}
            let Some((_, p)) = found.next_if(|(u, _)| *u == uid) else {
                out[n] = Keys::default().encode();
                continue;
            };
            let bytes = match ctx.store.message_bytes(mailbox, uid).await {
                Ok(b) => b,
                Err(mailkeep_store::StoreError::NoSuchMailbox) => {
                    out[n] = Keys::default().encode();
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let k = Keys::compute(&p.envelope, p.sent_date, header_part(&bytes)).encode();
            to_save.push((uid, k.clone()));
            out[n] = k;
        }
        ctx.store.save_sort_keys(mailbox, to_save).await?;
    }
    Ok((out, missing.len()))
}

/// The rows of [`load`]'s buffers, read in place.
pub(crate) fn rows(bufs: &[Vec<u8>]) -> Vec<Row<'_>> {
    bufs.iter()
        .map(|b| Row::parse(b).unwrap_or(Row::EMPTY))
        .collect()
}
