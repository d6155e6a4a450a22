//! CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 §4): searches kept up to date with `ADDTO` and
//! `REMOVEFROM` after `RETURN (UPDATE)`, until CANCELUPDATE or the mailbox is no longer
//! selected (the contexts live in the [`SelectedMailbox`]).
//!
//! A context keeps its search program and its result (UIDs in the requested order). Message
//! numbers and `$` in the program are turned into the UIDs they named when the command ran
//! (RFC 5267 §4.3: they are evaluated once). Each sync of the view ends with [`refresh`]:
//! the messages whose modseq is above the context's mark (new ones, and those whose flags
//! changed, by any session) are evaluated again, and the difference is sent. Expunged results
//! are removed by [`expunging`] before the EXPUNGE (or VANISHED) responses, so the message
//! numbers in a `REMOVEFROM` are still valid (RFC 5267 §4.3.4).
//!
//! SEARCH contexts use context position 0 (mailbox order); SORT contexts give positions:
//! removals are numbered in the list as it shrinks, and the list with its additions is sorted
//! again (sort values never change, so the old results keep their order) and the additions
//! inserted at their final positions, lowest first (RFC 5267 §4.3.3).

use std::collections::HashSet;
use std::time::Instant;

use mailkeep_proto::write::{self, Code, StatusKind};
use mailkeep_proto::{SearchKey, SearchReturn, SeqNum, SeqRange, SequenceSet, SortCriterion};

use super::{SEARCH_TIME_BUDGET, eval, key};
use crate::cmd::number_runs;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::selected::SelectedMailbox;

/// Live update contexts one session may hold in the selected mailbox by default
/// (`[limits] max_search_contexts`); RFC 5267 §4.3.1 asks for at least one.
pub const DEFAULT_MAX_CONTEXTS: usize = 10;

/// One `RETURN (UPDATE)` search or sort.
#[derive(Debug)]
pub(crate) struct SearchContext {
    pub tag: String,
    /// Results are UIDs (UID SEARCH, UID SORT, ESEARCH) rather than message numbers.
    uid: bool,
    /// More correlators after the TAG: ` MAILBOX "m" UIDVALIDITY n` for an RFC 7377 ESEARCH.
    correlators: String,
    charset: Option<String>,
    program: SearchKey,
    /// `Some` for a SORT context.
    sort: Option<Vec<SortCriterion>>,
    /// The result, UIDs in the requested order (ascending for SEARCH).
    results: Vec<u32>,
    /// Every message with a modseq up to this has been evaluated.
    checked: u64,
}

/// The searching command asks for updates.
pub(crate) fn wants_update(ret: Option<&[SearchReturn]>) -> bool {
    ret.is_some_and(|r| r.contains(&SearchReturn::Update))
}

/// RFC 5267 §4.3: UPDATE with the tag of a live context is rejected with BAD.
pub(crate) fn check_tag(
    sel: &SelectedMailbox,
    tag: &str,
    ret: Option<&[SearchReturn]>,
) -> CmdResult<()> {
    if wants_update(ret) && sel.contexts.iter().any(|c| c.tag == tag) {
        return Err(CmdError::Bad("Tag reuse".into()));
    }
    Ok(())
}

/// The return options shown in the answer: without SAVE, UPDATE and CONTEXT. `None` when
/// nothing is to be written (SAVE without other options, RFC 5182 §2.4); an empty list means
/// ALL (RFC 4731 §3.1), as for `RETURN (UPDATE)` alone.
pub(crate) fn shown(ret: &[SearchReturn]) -> Option<Vec<SearchReturn>> {
    let shown: Vec<SearchReturn> = ret
        .iter()
        .copied()
        .filter(|r| {
            !matches!(
                r,
                SearchReturn::Save | SearchReturn::Update | SearchReturn::Context
            )
        })
        .collect();
    if shown.is_empty() && ret.contains(&SearchReturn::Save) {
        return None;
    }
    Some(shown)
}

/// What a new context is made of.
pub(crate) struct NewContext<'a> {
    pub tag: &'a str,
    pub uid: bool,
    pub correlators: String,
    pub charset: Option<&'a str>,
    pub program: &'a SearchKey,
    pub sort: Option<&'a [SortCriterion]>,
    /// The result, UIDs in the requested order.
    pub results: Vec<u32>,
}

/// Start a context for a command that asked for UPDATE, or refuse with `* NO [NOUPDATE
/// "tag"]` past `limit` live contexts (RFC 5267 §4.3.1; the command itself succeeds).
pub(crate) fn register(
    sel: &mut SelectedMailbox,
    limit: usize,
    new: NewContext<'_>,
    out: &mut Vec<u8>,
) {
    if sel.contexts.len() >= limit.max(1) {
        refuse(
            out,
            new.tag,
            &format!("Too many update contexts (at most {}).", limit.max(1)),
        );
        return;
    }
    let checked = sel.messages.iter().map(|m| m.modseq).max().unwrap_or(0);
    sel.contexts.push(SearchContext {
        tag: new.tag.to_string(),
        uid: new.uid,
        correlators: new.correlators,
        charset: new.charset.map(str::to_string),
        program: freeze(new.program, sel),
        sort: new.sort.map(<[SortCriterion]>::to_vec),
        results: new.results,
        checked,
    });
}

/// `* NO [NOUPDATE "tag"] text` (RFC 5267 §4.3.1).
pub(crate) fn refuse(out: &mut Vec<u8>, tag: &str, text: &str) {
    let code = Code::Other(format!("NOUPDATE {}", quoted(tag)));
    write::status(out, None, StatusKind::No, Some(&code), text);
}

/// A quoted string of `s` (a tag or a correlator).
pub(crate) fn quoted(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// CANCELUPDATE (RFC 5267 §4.3.5): no more updates for these tags.
pub(crate) fn cancel(sel: &mut SelectedMailbox, tags: &[String]) {
    sel.contexts.retain(|c| !tags.contains(&c.tag));
}

/// The program with message numbers and `$` replaced by the UIDs they name now.
fn freeze(key: &SearchKey, sel: &SelectedMailbox) -> SearchKey {
    match key {
        SearchKey::SequenceSet(set) | SearchKey::Uid(set @ SequenceSet::Saved) => {
            let uid = matches!(key, SearchKey::Uid(_));
            let ranges = sel.resolve_ranges(set, uid, true).unwrap_or_default();
            let uids: Vec<u32> = ranges
                .iter()
                .flat_map(|&(a, b)| sel.messages[a..b].iter().map(|m| m.uid))
                .collect();
            uid_key(&uids)
        }
        SearchKey::Not(k) => SearchKey::Not(Box::new(freeze(k, sel))),
        SearchKey::Or(a, b) => SearchKey::Or(Box::new(freeze(a, sel)), Box::new(freeze(b, sel))),
        SearchKey::And(keys) => SearchKey::And(keys.iter().map(|k| freeze(k, sel)).collect()),
        k => k.clone(),
    }
}

/// `UID set` of ascending UIDs; a key matching nothing for none.
fn uid_key(uids: &[u32]) -> SearchKey {
    if uids.is_empty() {
        return SearchKey::Not(Box::new(SearchKey::All));
    }
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < uids.len() {
        let mut j = i;
        while j + 1 < uids.len() && uids[j].checked_add(1) == Some(uids[j + 1]) {
            j += 1;
        }
        ranges.push(if i == j {
            SeqRange::Single(SeqNum::Value(uids[i]))
        } else {
            SeqRange::Range(SeqNum::Value(uids[i]), SeqNum::Value(uids[j]))
        });
        i = j + 1;
    }
    SearchKey::Uid(SequenceSet::Ranges(ranges))
}

impl SearchContext {
    /// The number a result is shown as: its UID or its message number in the view.
    fn num(&self, sel: &SelectedMailbox, uid: u32) -> Option<u32> {
        if self.uid {
            Some(uid)
        } else {
            sel.seq_of_uid(uid)
        }
    }

    /// `* ESEARCH (TAG "t"...) [UID]` and the items, or nothing when there are none.
    fn write(&self, out: &mut Vec<u8>, items: &[String]) {
        if items.is_empty() {
            return;
        }
        out.extend_from_slice(
            format!("* ESEARCH (TAG {}{})", quoted(&self.tag), self.correlators).as_bytes(),
        );
        if self.uid {
            out.extend_from_slice(b" UID");
        }
        for item in items {
            out.push(b' ');
            out.extend_from_slice(item.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }

    /// `REMOVEFROM (...)` for the results in `gone` (a set of UIDs), taking them out. SEARCH
    /// contexts: position 0, mailbox order; SORT contexts: each run of removed results at its
    /// position in the list as it shrinks.
    fn remove(&mut self, sel: &SelectedMailbox, gone: &HashSet<u32>) -> Option<String> {
        if !self.results.iter().any(|u| gone.contains(u)) {
            return None;
        }
        let mut pairs: Vec<(usize, Vec<u32>)> = Vec::new();
        if self.sort.is_none() {
            let nums: Vec<u32> = self
                .results
                .iter()
                .filter(|u| gone.contains(u))
                .filter_map(|&u| self.num(sel, u))
                .collect();
            pairs.push((0, nums));
        } else {
            let mut removed = 0;
            let mut last: Option<usize> = None;
            for (i, u) in self.results.iter().enumerate() {
                if !gone.contains(u) {
                    continue;
                }
                let Some(n) = self.num(sel, *u) else {
                    continue;
                };
                let pos = i - removed + 1;
                match pairs.last_mut() {
                    Some((p, nums)) if last == Some(i.wrapping_sub(1)) && *p == pos => nums.push(n),
                    _ => pairs.push((pos, vec![n])),
                }
                last = Some(i);
                removed += 1;
            }
        }
        self.results.retain(|u| !gone.contains(u));
        Some(format!(
            "REMOVEFROM ({})",
            pairs_text(&pairs, self.sort.is_none())
        ))
    }
}

/// `pos set pos set ...`; SEARCH sets (mailbox order) are sorted first.
fn pairs_text(pairs: &[(usize, Vec<u32>)], mailbox_order: bool) -> String {
    pairs
        .iter()
        .filter(|(_, nums)| !nums.is_empty())
        .map(|(pos, nums)| {
            let mut nums = nums.clone();
            if mailbox_order {
                nums.sort_unstable();
            }
            format!("{pos} {}", number_runs(&nums))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Before the view drops `gone` (ascending UIDs, about to be announced as EXPUNGE or
/// VANISHED): `REMOVEFROM` for the contexts' results among them, while their message numbers
/// are still valid.
pub(crate) fn expunging(sel: &mut SelectedMailbox, gone: &[u32], out: &mut Vec<u8>) {
    if sel.contexts.is_empty() || gone.is_empty() {
        return;
    }
    let gone: HashSet<u32> = gone.iter().copied().collect();
    let mut contexts = std::mem::take(&mut sel.contexts);
    for c in &mut contexts {
        if let Some(item) = c.remove(sel, &gone) {
            c.write(out, &[item]);
        }
    }
    sel.contexts = contexts;
}

/// After a sync: evaluate again, for every context, the messages changed or added since its
/// last look, and send `REMOVEFROM` / `ADDTO` for the difference. A context that cannot be
/// kept (the evaluation failed or ran out of time) ends with `* NO [NOUPDATE "tag"]`.
pub(crate) async fn refresh(ctx: &mut Ctx<'_>, out: &mut Vec<u8>) {
    if ctx.sel.contexts.is_empty() {
        return;
    }
    let mut contexts = std::mem::take(&mut ctx.sel.contexts);
    let mut kept = Vec::with_capacity(contexts.len());
    for mut c in contexts.drain(..) {
        match refresh_one(ctx, &mut c, out).await {
            Ok(()) => kept.push(c),
            Err(e) => {
                tracing::debug!(tag = %c.tag, error = ?e, "update context dropped");
                refuse(out, &c.tag, "Cannot keep this search up to date any more.");
            }
        }
    }
    // Contexts are only added by commands, never during a sync.
    ctx.sel.contexts = kept;
}

async fn refresh_one(ctx: &mut Ctx<'_>, c: &mut SearchContext, out: &mut Vec<u8>) -> CmdResult<()> {
    let sel = &*ctx.sel;
    let top = sel.messages.iter().map(|m| m.modseq).max().unwrap_or(0);
    // Results the view no longer has were removed by `expunging`; this is only a guard.
    c.results.retain(|u| sel.seq_of_uid(*u).is_some());
    let candidates: Vec<usize> = sel
        .messages
        .iter()
        .enumerate()
        .filter(|(_, m)| m.modseq > c.checked && sel.pending_expunge.binary_search(&m.uid).is_err())
        .map(|(i, _)| i)
        .collect();
    if candidates.is_empty() {
        c.checked = c.checked.max(top);
        return Ok(());
    }
    let deadline = Instant::now() + SEARCH_TIME_BUDGET;
    let decoder = key::Decoder::new(c.charset.as_deref())?;
    let program = key::compile(&c.program, &decoder, ctx.sel)?;
    let matched: HashSet<usize> = {
        let mut evaluator = eval::Evaluator::new(ctx, deadline);
        evaluator
            .eval(&program, candidates.clone())
            .await?
            .into_iter()
            .collect()
    };
    let in_results: HashSet<u32> = c.results.iter().copied().collect();
    let sel = &*ctx.sel;
    let mut removed = HashSet::new();
    let mut added = Vec::new();
    for i in candidates {
        let uid = sel.messages[i].uid;
        match (in_results.contains(&uid), matched.contains(&i)) {
            (true, false) => {
                removed.insert(uid);
            }
            (false, true) => added.push(i),
            _ => {}
        }
    }
    let mut items = Vec::new();
    if let Some(item) = c.remove(sel, &removed) {
        items.push(item);
    }
    if !added.is_empty() {
        items.push(add(ctx, c, added, deadline).await?);
    }
    c.checked = c.checked.max(top);
    c.write(out, &items);
    Ok(())
}

/// Put the view entries `added` (ascending) into the result; the `ADDTO (...)` item.
async fn add(
    ctx: &Ctx<'_>,
    c: &mut SearchContext,
    added: Vec<usize>,
    deadline: Instant,
) -> CmdResult<String> {
    let sel = &*ctx.sel;
    let Some(criteria) = &c.sort else {
        let uids: Vec<u32> = added.iter().map(|&i| sel.messages[i].uid).collect();
        let nums: Vec<u32> = uids.iter().filter_map(|&u| c.num(sel, u)).collect();
        c.results.extend(uids);
        c.results.sort_unstable();
        return Ok(format!("ADDTO ({})", pairs_text(&[(0, nums)], true)));
    };
    let new: HashSet<u32> = added.iter().map(|&i| sel.messages[i].uid).collect();
    let mut idx: Vec<usize> = c
        .results
        .iter()
        .filter_map(|&u| sel.seq_of_uid(u).map(|s| s as usize - 1))
        .chain(added)
        .collect();
    idx.sort_unstable();
    let order = crate::cmd::sort::sorted(ctx, idx, criteria, deadline).await?;
    let mut pairs: Vec<(usize, Vec<u32>)> = Vec::new();
    let mut last: Option<usize> = None;
    for (p, &i) in order.iter().enumerate() {
        let uid = sel.messages[i].uid;
        if !new.contains(&uid) {
            continue;
        }
        let Some(n) = c.num(sel, uid) else {
            continue;
        };
        match pairs.last_mut() {
            Some((_, nums)) if last == Some(p.wrapping_sub(1)) => nums.push(n),
            _ => pairs.push((p + 1, vec![n])),
        }
        last = Some(p);
    }
    c.results = order.iter().map(|&i| sel.messages[i].uid).collect();
    Ok(format!("ADDTO ({})", pairs_text(&pairs, false)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_keys_and_shown_options() {
        assert_eq!(uid_key(&[]), SearchKey::Not(Box::new(SearchKey::All)));
        let v = SeqNum::Value;
        assert_eq!(
            uid_key(&[1, 2, 3, 7, 9, 10]),
            SearchKey::Uid(SequenceSet::Ranges(vec![
                SeqRange::Range(v(1), v(3)),
                SeqRange::Single(v(7)),
                SeqRange::Range(v(9), v(10)),
            ]))
        );
        use SearchReturn::*;
        assert_eq!(shown(&[Update]), Some(vec![]));
        assert_eq!(shown(&[Update, Count]), Some(vec![Count]));
        assert_eq!(shown(&[Context, Min]), Some(vec![Min]));
        assert_eq!(shown(&[Save, Update]), None);
        assert_eq!(shown(&[Save]), None);
        assert_eq!(quoted("a\"b"), "\"a\\\"b\"");
        assert_eq!(
            pairs_text(&[(0, vec![9, 3, 4]), (2, vec![])], true),
            "0 3:4,9"
        );
        assert_eq!(
            pairs_text(&[(1, vec![5, 3]), (4, vec![7])], false),
            "1 5,3 4 7"
        );
    }
}
