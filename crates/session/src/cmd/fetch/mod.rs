//! FETCH and UID FETCH (RFC 9051 §6.4.5, §7.5.2), with BINARY (RFC 3516) and CONDSTORE /
//! QRESYNC modifiers (RFC 7162 §3.1.4, §3.2.6).
//!
//! # Layout
//! - [`plan`]: which items are answered from the view and what must be loaded.
//! - [`section`]: body sections, partial ranges, BINARY, literals.
//! - this file: [`fetch`] (what happens before the first response) and [`FetchJob`], which
//!   writes the answer message by message and literal by literal, a bounded step at a time
//!   (the session hands each step to the server with `Flow::MoreOutput`). ENVELOPE,
//!   BODYSTRUCTURE and BODY are stored IMAP text (computed by `mailkeep-mime` at APPEND),
//!   written as is.

mod load;
pub(crate) mod plan;
pub(crate) mod section;

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use mailkeep_proto::write;
use mailkeep_proto::{FetchItem, FetchItems, FetchModifiers, SequenceSet};
use mailkeep_store::{FlagOp, Flags, MessageObjects, ParsedInfo, StoreError, flags};

use super::{apply_updates, condstore_active, enable_condstore, resolve, write_flags_item};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use load::{Loaded, PARSE_BATCH, header_batch, load, take_uid};
use plan::{Plan, part_label, section_label};

/// Output bytes one [`FetchJob::step`] writes (about: a step ends at the first item or chunk
/// boundary past it) before handing back to the caller.
pub(crate) const OUTPUT_STEP: usize = 128 * 1024;

/// How far a [`FetchJob::step`] got.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Every message was answered: the tagged line may follow.
    Done,
    /// The step's output budget is spent: write the output, then call `step` again.
    More,
}

/// A FETCH in progress, streamed message by message and literal by literal.
///
/// [`fetch`] does what must happen before the first response (resolving the set, VANISHED,
/// setting `\Seen`) and returns the job; each [`FetchJob::step`] then appends at most about
/// [`OUTPUT_STEP`] bytes to `out`. Between steps the job holds its cursor: the message
/// indexes still to answer, the current message (its bytes as one `Arc`, its parse, the
/// last section it cut out) and the remaining byte range of the literal being written. So a
/// FETCH costs one message (plus one section or decoded part of it) and one step of output,
/// whatever the number of messages or of partial items.
pub(crate) struct FetchJob {
    uid: bool,
    plan: Plan,
    idx: Vec<usize>,
    /// Position in `idx` of the next message to start.
    next: usize,
    seen_now: HashSet<u32>,
    with_modseq: bool,
    /// The stored parse (ENVELOPE, BODYSTRUCTURE, part tree) is read for a batch of messages
    /// at a time: one store round trip per batch instead of one per message.
    batch: VecDeque<(u32, ParsedInfo)>,
    /// The same for object IDs and save dates.
    objects: VecDeque<(u32, MessageObjects)>,
    /// For a header-only FETCH, the headers of the next messages of `batch`, read in one
    /// store call (a FETCH of 100 messages' header fields is then one or two round trips
    /// through the read pool, not 100 waits behind other sessions' reads), and the last
    /// UID asked for.
    headers: VecDeque<(u32, Vec<u8>)>,
    headers_until: Option<u32>,
    expunged_meanwhile: bool,
    cur: Option<Current>,
}

/// The message being written.
struct Current {
    loaded: Loaded,
    /// Index in `plan.content` of the next item to write.
    item: usize,
    /// Nothing written inside the parentheses yet (no separator before the next item).
    first: bool,
    /// The literal being written, if one was started.
    literal: Option<Literal>,
    /// The last section or decoded part cut out of the message, so repeated partials of
    /// one section cost one copy.
    cache: Option<(CacheKey, Arc<Vec<u8>>)>,
}

#[derive(PartialEq, Eq)]
enum CacheKey {
    Section(mailkeep_proto::Section),
    Binary(Vec<u32>),
}

/// The rest of a literal: `data[pos..end]`.
struct Literal {
    data: Arc<Vec<u8>>,
    pos: usize,
    end: usize,
    /// A `{n}` literal of content holding NUL: each NUL is written as 0x80 (see
    /// [`section::NUL_REPLACEMENT`]).
    replace_nul: bool,
}

pub(crate) async fn fetch(
    ctx: &mut Ctx<'_>,
    uid: bool,
    set: &SequenceSet,
    items: &FetchItems,
    modifiers: &FetchModifiers,
    out: &mut Vec<u8>,
) -> CmdResult<FetchJob> {
    let mut idx = resolve(ctx, set, uid)?;
    if let Some(range) = modifiers.partial {
        // RFC 9394 §3.3: a UID FETCH modifier; the range picks from the set's messages in
        // UID order, before CHANGEDSINCE narrows them (§3.4).
        if !uid {
            return Err(CmdError::Bad("PARTIAL requires UID FETCH".into()));
        }
        let keep = range.slice(idx.len());
        idx.truncate(keep.end);
        idx.drain(..keep.start);
    }
    if modifiers.vanished && (!uid || modifiers.changed_since.is_none() || !ctx.enabled.qresync) {
        // RFC 7162 §3.2.6: VANISHED only in UID FETCH with CHANGEDSINCE, after ENABLE QRESYNC.
        return Err(CmdError::Bad(
            "VANISHED requires UID FETCH, CHANGEDSINCE and QRESYNC".into(),
        ));
    }
    // RFC 9586 §3.3: with UIDONLY the UID leads every UIDFETCH response, and is repeated as
    // a data item only when asked for.
    let mut plan = Plan::new(
        items,
        uid && !ctx.enabled.uidonly,
        modifiers.changed_since.is_some(),
    );
    plan.utf8 = ctx.enabled.imap4rev2 || ctx.enabled.utf8_accept;
    if plan.has_modseq {
        enable_condstore(ctx, out);
    }
    if let Some(since) = modifiers.changed_since {
        idx.retain(|&i| ctx.sel.messages[i].modseq > since);
        if modifiers.vanished {
            super::qresync::fetch_vanished(&**ctx.store, ctx.sel, set, since, out).await?;
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

    Ok(FetchJob {
        uid,
        plan,
        idx,
        next: 0,
        seen_now,
        with_modseq: condstore_active(ctx),
        batch: VecDeque::new(),
        objects: VecDeque::new(),
        headers: VecDeque::new(),
        headers_until: None,
        expunged_meanwhile: false,
        cur: None,
    })
}

impl FetchJob {
    /// The text of the tagged OK.
    pub(crate) fn ok_text(&self) -> &'static str {
        if self.uid {
            "UID FETCH completed."
        } else {
            "FETCH completed."
        }
    }

    /// Append the next part of the answer to `out`: about [`OUTPUT_STEP`] bytes, stopping
    /// only between items or inside a literal. The view must not change between steps (no
    /// command runs in between: the server writes `out` and calls again).
    pub(crate) async fn step(
        &mut self,
        ctx: &mut Ctx<'_>,
        out: &mut Vec<u8>,
    ) -> CmdResult<Progress> {
        let limit = out.len() + OUTPUT_STEP;
        loop {
            if out.len() >= limit {
                return Ok(Progress::More);
            }
            let Some(cur) = &mut self.cur else {
                if self.next == self.idx.len() {
                    return self.end();
                }
                self.start_message(ctx, out).await?;
                continue;
            };
            if let Some(lit) = &mut cur.literal {
                let end = lit.end.min(lit.pos + (limit - out.len()));
                let chunk = &lit.data[lit.pos..end];
                if lit.replace_nul {
                    out.extend(chunk.iter().map(
                        |&b| {
                            if b == 0 { section::NUL_REPLACEMENT } else { b }
                        },
                    ));
                } else {
                    out.extend_from_slice(chunk);
                }
                lit.pos = end;
                if lit.pos == lit.end {
                    cur.literal = None;
                }
                continue;
            }
            if let Some(item) = self.plan.content.get(cur.item) {
                cur.item += 1;
                if !std::mem::take(&mut cur.first) {
                    out.push(b' ');
                }
                cur.literal = write_content_item(item, cur, self.plan.utf8, out)?;
                continue;
            }
            out.extend_from_slice(b")\r\n");
            self.cur = None;
        }
    }

    /// After the last message: OK, or NO if some were expunged meanwhile.
    fn end(&self) -> CmdResult<Progress> {
        if self.expunged_meanwhile {
            // RFC 5530 §3: EXPUNGEISSUED, not NONEXISTENT (which is about mailboxes).
            return Err(CmdError::No(
                Some(write::Code::ExpungeIssued),
                "Some messages were expunged by another session".into(),
            ));
        }
        Ok(Progress::Done)
    }

    /// Load the next message and write the start of its response with the view items.
    async fn start_message(&mut self, ctx: &mut Ctx<'_>, out: &mut Vec<u8>) -> CmdResult<()> {
        let n = self.next;
        self.next += 1;
        let i = self.idx[n];
        let uid_i = ctx.sel.messages[i].uid;
        let plan = &self.plan;
        if plan.needs_parsed && n.is_multiple_of(PARSE_BATCH) {
            let uids: Vec<u32> = self.idx[n..self.idx.len().min(n + PARSE_BATCH)]
                .iter()
                .map(|&j| ctx.sel.messages[j].uid)
                .collect();
            self.batch = ctx
                .store
                .parsed_infos(ctx.sel.mailbox.id, &uids)
                .await?
                .into();
        }
        let parsed = take_uid(&mut self.batch, uid_i);
        let header = if plan.header_only {
            if self.headers_until.is_none_or(|last| uid_i > last) {
                let wanted = header_batch(uid_i, parsed.as_ref(), &self.batch);
                self.headers_until = Some(wanted.last().map_or(uid_i, |w| w.0));
                self.headers = ctx
                    .store
                    .message_prefixes(ctx.sel.mailbox.id, &wanted)
                    .await?
                    .into();
            }
            take_uid(&mut self.headers, uid_i)
        } else {
            None
        };
        let plan = &self.plan;
        let mut objects = None;
        if plan.needs_objects {
            if n.is_multiple_of(PARSE_BATCH) {
                let uids: Vec<u32> = self.idx[n..self.idx.len().min(n + PARSE_BATCH)]
                    .iter()
                    .map(|&j| ctx.sel.messages[j].uid)
                    .collect();
                self.objects = ctx
                    .store
                    .message_objects(ctx.sel.mailbox.id, &uids)
                    .await?
                    .into();
            }
            objects = take_uid(&mut self.objects, uid_i);
            if objects.is_none() {
                // Expunged by another session meanwhile (see below).
                self.expunged_meanwhile = true;
                return Ok(());
            }
        }
        let loaded = match load(ctx, plan, uid_i, parsed, header).await {
            Ok(loaded) => loaded,
            // Expunged by another session since this one last heard: the EXPUNGE may not be
            // sent during FETCH (RFC 9051 §7.5.1), so answer the rest and say NO at the end
            // (RFC 2180 §4.1.2), never an empty body a client could cache.
            Err(StoreError::NoSuchMailbox) => {
                self.expunged_meanwhile = true;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let mut loaded = loaded;
        loaded.objects = objects;
        let mut cur = Current {
            loaded,
            item: 0,
            first: true,
            literal: None,
            cache: None,
        };
        // The one item that can fail once the message is loaded is BINARY (a CTE that cannot
        // be decoded): check before writing, so a NO never follows half a response.
        for item in &plan.content {
            if let FetchItem::Binary { part, .. } | FetchItem::BinarySize { part } = item {
                cur.binary(part)?;
            }
        }
        super::uidonly::fetch_prefix(out, ctx.enabled.uidonly, i as u32 + 1, uid_i);
        let mut sep = |out: &mut Vec<u8>| {
            if !std::mem::take(&mut cur.first) {
                out.push(b' ');
            }
        };
        for item in &plan.index {
            sep(out);
            write_index_item(ctx, i, item, out);
        }
        if self.seen_now.contains(&uid_i) {
            // The flags changed: say so even if FLAGS was not asked for (Dovecot puts it after
            // the view items), with MODSEQ under CONDSTORE (RFC 7162 §3.2), and the UID once
            // QRESYNC is on (RFC 7162 §3.2.4).
            if ctx.enabled.qresync && !ctx.enabled.uidonly && !plan.index.contains(&FetchItem::Uid)
            {
                sep(out);
                out.extend_from_slice(format!("UID {uid_i}").as_bytes());
            }
            if !plan.has_flags {
                sep(out);
                write_flags_item(ctx, i, out);
            }
            if self.with_modseq && !plan.has_modseq {
                sep(out);
                out.extend_from_slice(
                    format!("MODSEQ ({})", ctx.sel.messages[i].modseq).as_bytes(),
                );
            }
        }
        self.cur = Some(cur);
        Ok(())
    }
}

impl Current {
    fn bytes(&self) -> Arc<Vec<u8>> {
        self.loaded.bytes.clone().unwrap_or_default()
    }

    /// The content of `BODY[section]`: the message itself (no copy) or a cut-out section.
    fn section(&mut self, sec: &mailkeep_proto::Section) -> Arc<Vec<u8>> {
        if sec.part.is_empty() && sec.text.is_none() {
            return self.bytes();
        }
        let key = CacheKey::Section(sec.clone());
        if let Some((k, v)) = &self.cache
            && *k == key
        {
            return v.clone();
        }
        let bytes = self.bytes();
        let v = Arc::new(section::body_section(
            &bytes,
            self.loaded.tree.as_ref(),
            sec,
        ));
        self.cache = Some((key, v.clone()));
        v
    }

    /// The decoded content of `BINARY[part]`.
    fn binary(&mut self, part: &[u32]) -> CmdResult<Arc<Vec<u8>>> {
        let key = CacheKey::Binary(part.to_vec());
        if let Some((k, v)) = &self.cache
            && *k == key
        {
            return Ok(v.clone());
        }
        let bytes = self.bytes();
        let v = Arc::new(section::binary(&bytes, self.loaded.tree.as_ref(), part)?);
        self.cache = Some((key, v.clone()));
        Ok(v)
    }
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

/// Write one content item; for a body item, its label and the literal's announcement, and
/// return the literal's content for [`FetchJob::step`] to write in chunks.
fn write_content_item(
    item: &FetchItem,
    cur: &mut Current,
    utf8: bool,
    out: &mut Vec<u8>,
) -> CmdResult<Option<Literal>> {
    use super::objectid::{Item, write_object_item, write_preview};
    let parsed = cur.loaded.parsed.as_ref();
    let stored = |f: fn(&ParsedInfo) -> &[u8]| -> &[u8] {
        parsed.map(f).filter(|t| !t.is_empty()).unwrap_or(b"NIL")
    };
    match item {
        FetchItem::Envelope => {
            out.extend_from_slice(b"ENVELOPE ");
            out.extend_from_slice(stored(|p| &p.envelope));
        }
        FetchItem::BodyStructure => {
            out.extend_from_slice(b"BODYSTRUCTURE ");
            out.extend_from_slice(stored(|p| &p.bodystructure));
        }
        FetchItem::Body => {
            out.extend_from_slice(b"BODY ");
            out.extend_from_slice(stored(|p| &p.body));
        }
        FetchItem::Rfc822 => {
            out.extend_from_slice(b"RFC822 ");
            return Ok(Some(literal(out, cur.bytes(), None, false)));
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
            out.extend_from_slice(label.as_bytes());
            return Ok(Some(literal(out, cur.section(&sec), None, false)));
        }
        FetchItem::BodySection {
            section: sec,
            partial,
            ..
        } => {
            let label = format!(
                "BODY[{}]{} ",
                section_label(sec),
                section::partial_label(*partial)
            );
            out.extend_from_slice(label.as_bytes());
            return Ok(Some(literal(out, cur.section(sec), *partial, false)));
        }
        FetchItem::Binary { part, partial, .. } => {
            let content = cur.binary(part)?;
            let label = format!(
                "BINARY[{}]{} ",
                part_label(part),
                section::partial_label(*partial)
            );
            out.extend_from_slice(label.as_bytes());
            return Ok(Some(literal(out, content, *partial, true)));
        }
        FetchItem::BinarySize { part } => {
            let size = cur.binary(part)?.len();
            out.extend_from_slice(format!("BINARY.SIZE[{}] {}", part_label(part), size).as_bytes());
        }
        FetchItem::EmailId => write_object_item(out, Item::EmailId, cur.loaded.objects.as_ref()),
        FetchItem::ThreadId => write_object_item(out, Item::ThreadId, cur.loaded.objects.as_ref()),
        FetchItem::SaveDate => write_object_item(out, Item::SaveDate, cur.loaded.objects.as_ref()),
        FetchItem::Preview { .. } => write_preview(out, cur.loaded.preview.as_deref(), utf8),
        FetchItem::Uid
        | FetchItem::Flags
        | FetchItem::InternalDate
        | FetchItem::Rfc822Size
        | FetchItem::ModSeq => {}
    }
    Ok(None)
}

/// Announce the literal holding `<partial>` of `data` and return it to be written. Content
/// holding NUL goes in a `~{n}` literal8 for BINARY (RFC 3516 §4.2); elsewhere a `{n}` literal
/// may not carry NUL (RFC 9051 §4.3), so each NUL is replaced (see
/// [`section::NUL_REPLACEMENT`]).
fn literal(
    out: &mut Vec<u8>,
    data: Arc<Vec<u8>>,
    partial: Option<(u64, u64)>,
    binary: bool,
) -> Literal {
    let range = section::partial_range(data.len(), partial);
    let has_nul = data[range.clone()].contains(&0);
    section::literal_prefix(out, range.len(), binary && has_nul);
    Literal {
        data,
        pos: range.start,
        end: range.end,
        replace_nul: has_nul && !binary,
    }
}
