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

use mailkeep_store::{KeyRows, MailboxId};

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

/// Reads at or above this many rows are split in two, read side by side on two of the
/// store's readers: a first SORT or THREAD of 100,000 messages waits on this read.
const PARALLEL_READ: usize = 20_000;

/// The keys of some view entries: entry `n`'s row is `chunks[c][start..start + len]` for its
/// span `(c, start, len)`. The store's reads are chunks (kept as read, not copied together),
/// and rows computed here go in a chunk of their own.
#[derive(Default)]
pub(crate) struct KeyBuf {
    chunks: Vec<Vec<u8>>,
    spans: Vec<(u32, usize, usize)>,
}

impl KeyBuf {
    /// Entry `n`'s keys ([`Row::EMPTY`] for an entry not loaded or a damaged row).
    pub(crate) fn row(&self, n: usize) -> Row<'_> {
        self.bytes(n).and_then(Row::parse).unwrap_or(Row::EMPTY)
    }

    fn bytes(&self, n: usize) -> Option<&[u8]> {
        let &(c, start, len) = self.spans.get(n)?;
        self.chunks.get(c as usize)?.get(start..start + len)
    }

    /// Every entry's keys, in order.
    #[cfg(test)]
    pub(crate) fn rows(&self) -> Vec<Row<'_>> {
        (0..self.spans.len()).map(|n| self.row(n)).collect()
    }

    /// Sets entry `n`'s row, in the last chunk.
    fn set(&mut self, n: usize, row: &[u8]) {
        let c = self.chunks.len() - 1;
        let chunk = &mut self.chunks[c];
        self.spans[n] = (c as u32, chunk.len(), row.len());
        chunk.extend_from_slice(row);
    }

    /// A buffer of these rows (tests).
    #[cfg(test)]
    pub(crate) fn of(rows: &[Vec<u8>]) -> KeyBuf {
        let mut k = KeyBuf {
            chunks: vec![Vec::new()],
            spans: vec![(0, 0, 0); rows.len()],
        };
        for (n, r) in rows.iter().enumerate() {
            k.set(n, r);
        }
        k
    }
}

/// The saved keys of `uids` (ascending), in one store read or, for many, two side by side.
async fn read(ctx: &Ctx<'_>, mailbox: MailboxId, uids: &[u32]) -> CmdResult<Vec<KeyRows>> {
    if uids.len() < PARALLEL_READ {
        return Ok(vec![ctx.store.sort_keys(mailbox, uids).await?]);
    }
    let (a, b) = uids.split_at(uids.len() / 2);
    let (a, b) = tokio::join!(
        ctx.store.sort_keys(mailbox, a),
        ctx.store.sort_keys(mailbox, b)
    );
    Ok(vec![a?, b?])
}

/// The keys of the view entries `idx` (ascending), each one a valid row: saved ones read
/// from the store, missing ones computed from the stored parse and header and saved. A
/// message expunged meanwhile gets empty keys (its INTERNALDATE as its date), not saved. The
/// second value counts the rows computed here.
pub(crate) async fn load(
    ctx: &Ctx<'_>,
    idx: &[usize],
    deadline: Instant,
) -> CmdResult<(KeyBuf, usize)> {
    let mailbox = ctx.sel.mailbox.id;
    let uids: Vec<u32> = idx.iter().map(|&i| ctx.sel.messages[i].uid).collect();
    let saved = read(ctx, mailbox, &uids).await?;
    check_budget(deadline)?;
    let mut spans = Vec::with_capacity(uids.len());
    let mut wanted = uids.iter().peekable();
    for (c, part) in saved.iter().enumerate() {
        for (at, &uid) in part.uids().iter().enumerate() {
            while wanted.next_if(|&&u| u < uid).is_some() {
                spans.push((0, 0, 0));
            }
            if wanted.next_if(|&&u| u == uid).is_some() {
                let (start, end) = part.span(at);
                spans.push((c as u32, start, end - start));
            }
        }
    }
    spans.resize(uids.len(), (0, 0, 0));
    let mut chunks: Vec<Vec<u8>> = saved.into_iter().map(KeyRows::into_data).collect();
    // Rows computed below go in a chunk of their own.
    chunks.push(Vec::new());
    let mut out = KeyBuf { chunks, spans };
    let missing: Vec<usize> = (0..uids.len())
        .filter(|&n| !out.bytes(n).is_some_and(Row::layout_ok))
        .collect();
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
                out.set(n, &Keys::default().encode());
                continue;
            };
            let bytes = match ctx.store.message_bytes(mailbox, uid).await {
                Ok(b) => b,
                Err(mailkeep_store::StoreError::NoSuchMailbox) => {
                    out.set(n, &Keys::default().encode());
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let k = Keys::compute(&p.envelope, p.sent_date, header_part(&bytes)).encode();
            out.set(n, &k);
            to_save.push((uid, k));
        }
        ctx.store.save_sort_keys(mailbox, to_save).await?;
    }
    Ok((out, missing.len()))
}
