//! SORT and UID SORT (RFC 5256 §3), with ESORT return options (RFC 5267 §3) and the
//! DISPLAYFROM / DISPLAYTO keys (RFC 5957).
//!
//! The matching set comes from the SEARCH evaluator; the sort values come from the view (size,
//! INTERNALDATE) and from the sort keys kept in the store (`super::sortkeys`: collation keys
//! and sent date, computed once per body at delivery), read in place: each criterion becomes
//! one column of integers or borrowed strings, and positions are sorted, not messages. Ties
//! are broken by sequence number (RFC 5256 §3). `PARTIAL` (RFC 9394, RFC 5267 §4.4) counts in
//! sort order.

use std::cmp::Ordering;
use std::time::Instant;

use mailkeep_proto::write::Code;
use mailkeep_proto::{SearchKey, SearchReturn, SortCriterion, SortKey};
use mailkeep_store::MessageMeta;

use super::search::{self, esearch};
use super::sortkeys::{self, KeyBuf, Row};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::orders::{self, Kind, Order};

/// `NO [LIMIT]` once the command's time budget is spent.
pub(crate) fn check_budget(deadline: Instant) -> CmdResult<()> {
    if Instant::now() > deadline {
        return Err(CmdError::No(
            Some(Code::Limit),
            "Sorting took too long, narrow the search down.".into(),
        ));
    }
    Ok(())
}

/// One sort criterion's values, one per matching message (strings borrowed from the rows).
enum Column<'a> {
    Int(Vec<i64>),
    /// Each string with its first 8 bytes as a big-endian number: most comparisons are
    /// decided by the numbers, and only ties compare the strings (memcmp was 14% of a SORT
    /// (SUBJECT) over 100,000 messages).
    Str(Vec<(u64, &'a str)>),
}

impl Column<'_> {
    fn cmp(&self, a: usize, b: usize) -> Ordering {
        match self {
            Column::Int(v) => v[a].cmp(&v[b]),
            Column::Str(v) => v[a].0.cmp(&v[b].0).then_with(|| v[a].1.cmp(v[b].1)),
        }
    }
}

/// The first 8 bytes of `s`, zero-padded, as a big-endian number: ordered as the strings are
/// (a shorter string's padding sorts before any byte, and equal prefixes fall back to the
/// strings themselves).
fn prefix(s: &str) -> u64 {
    let mut b = [0u8; 8];
    let n = s.len().min(8);
    b[..n].copy_from_slice(&s.as_bytes()[..n]);
    u64::from_be_bytes(b)
}

/// The view entries `idx` (ascending) in the order of `criteria`, ties by sequence number.
///
/// From the order kept for the mailbox if it has all of them (see [`crate::orders`]). If not,
/// and `idx` is at least half of a large mailbox, the order of the whole mailbox is made and
/// kept for the next SORT: new mail is inserted into the kept order (a binary search each,
/// reading the keys of the messages it compares with), or the whole mailbox is sorted when
/// nothing is kept or most of it is new. A smaller subset is sorted alone.
pub(crate) async fn sorted(
    ctx: &Ctx<'_>,
    idx: Vec<usize>,
    criteria: &[SortCriterion],
    deadline: Instant,
) -> CmdResult<Vec<usize>> {
    let kind = Kind::Sort(criteria.to_vec());
    let view = &ctx.sel.messages;
    let kept = ctx.orders.get(&ctx.sel.mailbox, &kind);
    let kept = match kept.as_deref() {
        Some(Order::Sort(uids)) => Some(orders::split(view, uids)),
        _ => None,
    };
    let kept = match kept {
        // Every message asked for is in the kept order.
        Some((base, new)) if !orders::meet(&new, &idx) => {
            ctx.orders.hit();
            return Ok(orders::subset(view.len(), base, &idx));
        }
        kept => kept,
    };
    if view.len() < orders::MIN_KEPT || idx.len() * 2 < view.len() {
        return sort_now(ctx, idx, criteria, deadline).await;
    }
    let all = match kept {
        Some((base, new)) if new.len() <= MAX_INSERTED.min(view.len() / 4) => {
            insert(ctx, base, new, criteria, deadline).await?
        }
        _ => sort_now(ctx, (0..view.len()).collect(), criteria, deadline).await?,
    };
    let uids: Vec<u32> = all.iter().map(|&i| view[i].uid).collect();
    ctx.orders.put(&ctx.sel.mailbox, kind, Order::Sort(uids));
    // `all` has every view entry once.
    Ok(orders::subset(view.len(), all, &idx))
}

/// Most messages taken into a kept order by insertion (a binary search each); with more
/// new mail (or more than a quarter of the mailbox) the mailbox is sorted again.
pub(crate) const MAX_INSERTED: usize = 5_000;

/// The view entries `base` (in the order of `criteria`) with the entries `new` (ascending)
/// inserted where they sort.
pub(crate) async fn insert(
    ctx: &Ctx<'_>,
    base: Vec<usize>,
    new: Vec<usize>,
    criteria: &[SortCriterion],
    deadline: Instant,
) -> CmdResult<Vec<usize>> {
    let view = &ctx.sel.messages;
    // The new entries in sort order, by the keys read once for the searches too.
    let new_keys = Keyed::load(ctx, new.clone(), criteria, deadline).await?;
    let mut new = new;
    new.sort_unstable_by(|&a, &b| {
        compare(view, criteria, (a, new_keys.row(a)), (b, new_keys.row(b)))
    });
    // Binary searches side by side: each round reads the keys of every search's midpoint at
    // once, so 100,000 messages take 17 store reads whatever the number of new ones.
    let (mut lo, mut hi) = (vec![0; new.len()], vec![base.len(); new.len()]);
    loop {
        let open: Vec<usize> = (0..new.len()).filter(|&k| lo[k] < hi[k]).collect();
        if open.is_empty() {
            break;
        }
        check_budget(deadline)?;
        let mut mids: Vec<usize> = open.iter().map(|&k| base[(lo[k] + hi[k]) / 2]).collect();
        mids.sort_unstable();
        mids.dedup();
        let mid_keys = Keyed::load(ctx, mids, criteria, deadline).await?;
        for k in open {
            let mid = (lo[k] + hi[k]) / 2;
            let (a, b) = (new[k], base[mid]);
            let o = compare(view, criteria, (a, new_keys.row(a)), (b, mid_keys.row(b)));
            if o == Ordering::Greater {
                lo[k] = mid + 1;
            } else {
                hi[k] = mid;
            }
        }
    }
    // `new` is in sort order, so its insertion points ascend.
    let mut out = Vec::with_capacity(base.len() + new.len());
    let mut k = 0;
    for (at, &b) in base.iter().enumerate() {
        while k < new.len() && lo[k] == at {
            out.push(new[k]);
            k += 1;
        }
        out.push(b);
    }
    out.extend_from_slice(&new[k..]);
    Ok(out)
}

/// The sort keys of some view entries (ascending), when `criteria` need the store's.
struct Keyed {
    idx: Vec<usize>,
    keys: KeyBuf,
}

impl Keyed {
    async fn load(
        ctx: &Ctx<'_>,
        idx: Vec<usize>,
        criteria: &[SortCriterion],
        deadline: Instant,
    ) -> CmdResult<Keyed> {
        let keys = if needs_store(criteria) {
            sortkeys::load(ctx, &idx, deadline).await?.0
        } else {
            KeyBuf::default()
        };
        Ok(Keyed { idx, keys })
    }

    /// The keys of view entry `i` (one of those loaded).
    fn row(&self, i: usize) -> Row<'_> {
        self.idx
            .binary_search(&i)
            .map_or(Row::EMPTY, |at| self.keys.row(at))
    }
}

fn needs_store(criteria: &[SortCriterion]) -> bool {
    criteria
        .iter()
        .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size))
}

/// The order of view entries `a` and `b` (with their keys) by `criteria`, ties by sequence
/// number: as [`sort_now`] orders them.
fn compare(
    view: &[MessageMeta],
    criteria: &[SortCriterion],
    (a, ra): (usize, Row<'_>),
    (b, rb): (usize, Row<'_>),
) -> Ordering {
    let (ma, mb) = (&view[a], &view[b]);
    for c in criteria {
        let string = |at: usize| ra.string(at).cmp(rb.string(at));
        let o = match c.key {
            SortKey::Arrival => ma.internal_date.cmp(&mb.internal_date),
            SortKey::Size => ma.size.cmp(&mb.size),
            SortKey::Date => ra
                .sent
                .unwrap_or(ma.internal_date)
                .cmp(&rb.sent.unwrap_or(mb.internal_date)),
            SortKey::Subject => string(Row::SUBJECT),
            SortKey::From => string(Row::FROM),
            SortKey::To => string(Row::TO),
            SortKey::Cc => string(Row::CC),
            SortKey::DisplayFrom => string(Row::DISPLAY_FROM),
            SortKey::DisplayTo => string(Row::DISPLAY_TO),
        };
        let o = if c.reverse { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.cmp(&b)
}

/// [`sorted`] without the kept orders.
async fn sort_now(
    ctx: &Ctx<'_>,
    idx: Vec<usize>,
    criteria: &[SortCriterion],
    deadline: Instant,
) -> CmdResult<Vec<usize>> {
    let keys = if needs_store(criteria) {
        sortkeys::load(ctx, &idx, deadline).await?.0
    } else {
        KeyBuf::default()
    };
    let meta = |n: usize| &ctx.sel.messages[idx[n]];
    let n = idx.len();
    // Each column parses the rows it needs in place (no table of parsed rows).
    let strings = |at: usize| {
        Column::Str(
            (0..n)
                .map(|i| {
                    let s = keys.row(i).string(at);
                    (prefix(s), s)
                })
                .collect(),
        )
    };
    let columns: Vec<(Column<'_>, bool)> = criteria
        .iter()
        .map(|c| {
            let col = match c.key {
                SortKey::Arrival => Column::Int((0..n).map(|i| meta(i).internal_date).collect()),
                SortKey::Size => Column::Int((0..n).map(|i| meta(i).size as i64).collect()),
                SortKey::Date => Column::Int(
                    (0..n)
                        .map(|i| keys.row(i).sent.unwrap_or(meta(i).internal_date))
                        .collect(),
                ),
                SortKey::Subject => strings(Row::SUBJECT),
                SortKey::From => strings(Row::FROM),
                SortKey::To => strings(Row::TO),
                SortKey::Cc => strings(Row::CC),
                SortKey::DisplayFrom => strings(Row::DISPLAY_FROM),
                SortKey::DisplayTo => strings(Row::DISPLAY_TO),
            };
            (col, c.reverse)
        })
        .collect();
    check_budget(deadline)?;
    let mut order: Vec<u32> = (0..n as u32).collect();
    // `idx` ascends, so the position is the sequence-number tie-breaker.
    order.sort_unstable_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        for (col, reverse) in &columns {
            let o = col.cmp(a, b);
            let o = if *reverse { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        a.cmp(&b)
    });
    Ok(order.into_iter().map(|n| idx[n as usize]).collect())
}

/// SORT / UID SORT: `* SORT ...`, or `* ESEARCH ...` in sort order with `RETURN (...)`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn sort(
    ctx: &mut Ctx<'_>,
    max_contexts: usize,
    tag: &str,
    uid: bool,
    criteria: &[SortCriterion],
    charset: &str,
    program: &SearchKey,
    ret: Option<&[SearchReturn]>,
    out: &mut Vec<u8>,
) -> CmdResult<()> {
    search::context::check_tag(ctx.sel, tag, ret)?;
    let save = ret.is_some_and(|r| r.contains(&SearchReturn::Save));
    let deadline = Instant::now() + search::SEARCH_TIME_BUDGET;
    let result = match search::run(ctx, Some(charset), program).await {
        Ok((idx, modseq_key)) => sorted(ctx, idx, criteria, deadline)
            .await
            .map(|idx| (idx, modseq_key)),
        Err(e) => Err(e),
    };
    // MIN and MAX are the first and last in sort order (RFC 5267 §3.1): MODSEQ is theirs.
    let search::Matches { uids, nums, modseq } = search::matches(ctx, uid, ret, result, out)?;
    let Some(ret) = ret else {
        write_sort(out, &nums, modseq);
        return Ok(());
    };
    if save {
        let mut saved = esearch::saved_subset(ret, &uids);
        saved.sort_unstable();
        ctx.sel.saved = saved;
    }
    // MIN and MAX are the first and last in sort order, ALL is in sort order (RFC 5267 §3.1).
    if let Some(shown) = search::context::shown(ret) {
        esearch::write_esearch(out, Some(tag), uid, &shown, &nums, modseq);
    }
    if search::context::wants_update(Some(ret)) {
        let new = search::context::NewContext {
            tag,
            uid,
            correlators: String::new(),
            charset: Some(charset),
            program,
            sort: Some(criteria),
            results: uids,
        };
        search::context::register(ctx.sel, max_contexts, new, out);
    }
    Ok(())
}

/// `* SORT 5 3 4 1 2` (RFC 5256 §4), with `(MODSEQ n)` after a MODSEQ key (RFC 7162 §3.1.5).
fn write_sort(out: &mut Vec<u8>, nums: &[u32], modseq: Option<u64>) {
    out.reserve(8 + nums.len() * 7);
    out.extend_from_slice(b"* SORT");
    for &n in nums {
        out.push(b' ');
        mailkeep_proto::write::number(out, u64::from(n));
    }
    if let (Some(m), false) = (modseq, nums.is_empty()) {
        out.extend_from_slice(b" (MODSEQ ");
        mailkeep_proto::write::number(out, m);
        out.push(b')');
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_order_as_the_strings() {
        let words = [
            "",
            "a",
            "a\0",
            "ab",
            "abcdefgh",
            "abcdefghi",
            "abcdefgi",
            "b",
            "\u{e9}t\u{e9}",
            "zzzzzzzzzz",
        ];
        for x in words {
            for y in words {
                let col = Column::Str(vec![(prefix(x), x), (prefix(y), y)]);
                assert_eq!(col.cmp(0, 1), x.cmp(y), "{x:?} vs {y:?}");
            }
        }
    }

    #[test]
    fn sort_lines() {
        let mut out = Vec::new();
        write_sort(&mut out, &[], Some(4));
        write_sort(&mut out, &[5, 3, 4], None);
        write_sort(&mut out, &[2], Some(9));
        write_sort(&mut out, &[0, 10, 4_294_967_295], Some(u64::MAX));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "* SORT\r\n* SORT 5 3 4\r\n* SORT 2 (MODSEQ 9)\r\n\
             * SORT 0 10 4294967295 (MODSEQ 18446744073709551615)\r\n"
        );
    }
}
