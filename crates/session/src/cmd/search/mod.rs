//! SEARCH and UID SEARCH (RFC 9051 §6.4.4, RFC 3501 §6.4.4), with ESEARCH return options
//! (RFC 4731), SEARCHRES `$` (RFC 5182) and the MODSEQ key (RFC 7162 §3.1.5).
//!
//! # Layout
//! - [`key`]: compiles the parsed key (decode CHARSET strings, resolve sets) into a [`key::Key`].
//! - [`eval`]: evaluates it over the view, cheap keys first.
//! - [`esearch`]: writes `* SEARCH` or `* ESEARCH`.

pub(crate) mod address;
pub(crate) mod context;
pub(crate) mod esearch;
pub(crate) mod eval;
pub(crate) mod key;

use std::time::{Duration, Instant};

use mailkeep_proto::write::Code;
use mailkeep_proto::{SearchKey, SearchReturn};

use super::enable_condstore;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};

/// Most keys in one SEARCH, nested ones included (`NO [LIMIT]` above): real clients send a
/// handful, and every key costs a pass over the candidates.
pub(crate) const MAX_SEARCH_KEYS: usize = 1000;

/// Longest one SEARCH may evaluate before it gives up with `NO [LIMIT]`.
pub(crate) const SEARCH_TIME_BUDGET: Duration = Duration::from_secs(10);

/// SEARCH / UID SEARCH (RFC 9051 §6.4.4): `tag` is the command's, for the ESEARCH correlator
/// (`* ESEARCH (TAG "a1") ...`, RFC 4731 §3.1).
/// With `RETURN (UPDATE)` the result is kept up to date (RFC 5267 §4.3, [`context`]), unless
/// the session already holds `max_contexts` contexts.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn search(
    ctx: &mut Ctx<'_>,
    max_contexts: usize,
    tag: &str,
    uid: bool,
    charset: Option<&str>,
    criteria: &SearchKey,
    ret: Option<&[SearchReturn]>,
    out: &mut Vec<u8>,
) -> CmdResult<()> {
    context::check_tag(ctx.sel, tag, ret)?;
    let save = ret.is_some_and(|r| r.contains(&SearchReturn::Save));
    let result = run(ctx, charset, criteria).await;
    let Matches { uids, nums, modseq } = matches(ctx, uid, ret, result, out)?;

    if let Some(ret) = ret {
        if save {
            ctx.sel.saved = esearch::saved_subset(ret, &uids);
        }
        // RFC 5182 §2.4: SAVE alone asks for no ESEARCH response.
        if let Some(shown) = context::shown(ret) {
            esearch::write_esearch(out, Some(tag), uid, &shown, &nums, modseq);
        }
        if context::wants_update(Some(ret)) {
            let new = context::NewContext {
                tag,
                uid,
                correlators: String::new(),
                charset,
                program: criteria,
                sort: None,
                results: uids,
            };
            context::register(ctx.sel, max_contexts, new, out);
        }
    } else if ctx.enabled.imap4rev2 {
        // RFC 9051 §6.4.4: an IMAP4rev2 SEARCH without RETURN answers ESEARCH with ALL.
        esearch::write_esearch(out, Some(tag), uid, &[SearchReturn::All], &nums, modseq);
    } else {
        esearch::write_search(out, &nums, modseq);
    }
    Ok(())
}

/// What SEARCH and SORT answer with: the matches' UIDs, the numbers shown (UIDs or sequence
/// numbers) in the order evaluated, and the MODSEQ result when a MODSEQ key was used.
pub(crate) struct Matches {
    pub uids: Vec<u32>,
    pub nums: Vec<u32>,
    pub modseq: Option<u64>,
}

/// Turns an evaluation's result (view indexes in answer order, and whether a MODSEQ key was
/// used) into [`Matches`]. A failed command with SAVE empties `$` unless it was BAD (RFC 9051
/// §6.4.4.1, RFC 5182 §2.4); a MODSEQ key enables CONDSTORE (RFC 7162 §3.1), and MODSEQ is the
/// highest of the messages the answer returns (RFC 4731 §3.2).
pub(crate) fn matches(
    ctx: &mut Ctx<'_>,
    uid: bool,
    ret: Option<&[SearchReturn]>,
    result: CmdResult<(Vec<usize>, bool)>,
    out: &mut Vec<u8>,
) -> CmdResult<Matches> {
    let save = ret.is_some_and(|r| r.contains(&SearchReturn::Save));
    let (idx, modseq_key) = match result {
        Ok(r) => r,
        Err(e) => {
            if save && !matches!(e, CmdError::Bad(_) | CmdError::BadCode(..)) {
                ctx.sel.saved.clear();
            }
            return Err(e);
        }
    };
    if modseq_key {
        enable_condstore(ctx, out);
    }
    let modseq = modseq_key
        .then(|| {
            returned(ret, &idx)
                .map(|i| ctx.sel.messages[i].modseq)
                .max()
        })
        .flatten();
    let uids: Vec<u32> = idx.iter().map(|&i| ctx.sel.messages[i].uid).collect();
    let nums: Vec<u32> = if uid {
        uids.clone()
    } else {
        idx.iter().map(|&i| i as u32 + 1).collect()
    };
    Ok(Matches { uids, nums, modseq })
}

/// The view indexes the answer returns, whose highest modseq is the MODSEQ result (RFC 4731
/// §3.2): with MIN and/or MAX but neither ALL nor COUNT only the minimum and/or maximum,
/// otherwise every match.
pub(crate) fn returned<'a>(
    ret: Option<&[SearchReturn]>,
    idx: &'a [usize],
) -> Box<dyn Iterator<Item = usize> + 'a> {
    let Some(ret) = ret.filter(|r| !r.is_empty()) else {
        return Box::new(idx.iter().copied());
    };
    let has = |r: SearchReturn| ret.contains(&r);
    if has(SearchReturn::All) || has(SearchReturn::Count) {
        return Box::new(idx.iter().copied());
    }
    let (min, max) = (has(SearchReturn::Min), has(SearchReturn::Max));
    let part = esearch::partial(ret);
    if !min && !max && part.is_none() {
        // SAVE alone: nothing is shown, the value is unused.
        return Box::new(idx.iter().copied());
    }
    let first = idx.first().copied().filter(|_| min);
    let last = idx.last().copied().filter(|_| max);
    // RFC 9394: the messages PARTIAL returns count too.
    let slice = part.map_or(&idx[..0], |p| &idx[p.slice(idx.len())]);
    Box::new(first.into_iter().chain(last).chain(slice.iter().copied()))
}

/// Compile and evaluate: the matching view indexes (ascending) and whether a MODSEQ key was used.
pub(crate) async fn run(
    ctx: &Ctx<'_>,
    charset: Option<&str>,
    criteria: &SearchKey,
) -> CmdResult<(Vec<usize>, bool)> {
    run_until(ctx, charset, criteria, Instant::now() + SEARCH_TIME_BUDGET).await
}

/// [`run`] with a deadline of the caller's (`NO [LIMIT]` past it).
pub(crate) async fn run_until(
    ctx: &Ctx<'_>,
    charset: Option<&str>,
    criteria: &SearchKey,
    deadline: Instant,
) -> CmdResult<(Vec<usize>, bool)> {
    if key::count(criteria) > MAX_SEARCH_KEYS {
        return Err(CmdError::No(
            Some(Code::Limit),
            format!("Too many search keys (at most {MAX_SEARCH_KEYS})."),
        ));
    }
    let decoder = key::Decoder::new(charset)?;
    let program = key::compile(criteria, &decoder, ctx.sel)?;
    let all: Vec<usize> = (0..ctx.sel.messages.len()).collect();
    let mut evaluator = eval::Evaluator::new(ctx, deadline);
    let idx = evaluator.eval(&program, all).await?;
    Ok((idx, program.has_modseq()))
}
