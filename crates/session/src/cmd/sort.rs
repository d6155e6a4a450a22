//! SORT and UID SORT (RFC 5256 §3), with ESORT return options (RFC 5267 §3) and the
//! DISPLAYFROM / DISPLAYTO keys (RFC 5957).
//!
//! The matching set comes from the SEARCH evaluator; the sort values come from the view (size,
//! INTERNALDATE) and from the sort keys kept in the store (`super::sortkeys`: collation keys
//! and sent date, computed once per message). Ties are broken by sequence number (RFC 5256
//! §3). `PARTIAL` (RFC 9394, RFC 5267 §4.4) counts in sort order.

use std::cmp::Ordering;
use std::time::Instant;

use mailkeep_proto::write::Code;
use mailkeep_proto::{SearchKey, SearchReturn, SortCriterion, SortKey};

use super::search::address::{Addr, decode_words};
use super::search::{self, esearch};
use super::sortkeys::{self, Fields, Keys};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};

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

/// Longest string key kept per message, in bytes: a key decides the order by its first
/// [`MAX_KEY_BYTES`] bytes, so a mailbox of huge subjects cannot make a SORT hold them all.
pub(crate) const MAX_KEY_BYTES: usize = 1024;

/// `s` cut to at most [`MAX_KEY_BYTES`] bytes on a character boundary.
pub(crate) fn cap_key(mut s: String) -> String {
    if s.len() > MAX_KEY_BYTES {
        let mut end = MAX_KEY_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// RFC 5957 §3: the display name (decoded) if not empty, else `mailbox@host`, else `mailbox`.
pub(crate) fn display(addr: Option<&Addr>) -> String {
    let Some(a) = addr else {
        return String::new();
    };
    if let Some(name) = a.name.as_deref() {
        let name = if name.contains("=?") {
            decode_words(name)
        } else {
            name.to_string()
        };
        if !name.is_empty() {
            return name;
        }
    }
    match (&a.mailbox, &a.host) {
        (Some(m), Some(h)) => format!("{m}@{h}"),
        (Some(m), None) => m.clone(),
        _ => String::new(),
    }
}

/// RFC 5256 §3: the `addr-mailbox` of the first address.
pub(crate) fn mailbox(addr: Option<&Addr>) -> String {
    addr.and_then(|a| a.mailbox.clone()).unwrap_or_default()
}

/// How view entries `idx[a]` and `idx[b]` compare under one sort key (`keys[n]` belongs to
/// `idx[n]`; empty when only view values are needed).
fn compare(
    key: SortKey,
    ctx: &Ctx<'_>,
    idx: &[usize],
    keys: &[Keys],
    a: usize,
    b: usize,
) -> Ordering {
    let meta = |n: usize| &ctx.sel.messages[idx[n]];
    let sent = |n: usize| keys[n].sent.unwrap_or(meta(n).internal_date);
    match key {
        SortKey::Arrival => meta(a).internal_date.cmp(&meta(b).internal_date),
        SortKey::Size => meta(a).size.cmp(&meta(b).size),
        SortKey::Date => sent(a).cmp(&sent(b)),
        SortKey::Subject => keys[a].subject.cmp(&keys[b].subject),
        SortKey::From => keys[a].from.cmp(&keys[b].from),
        SortKey::To => keys[a].to.cmp(&keys[b].to),
        SortKey::Cc => keys[a].cc.cmp(&keys[b].cc),
        SortKey::DisplayFrom => keys[a].display_from.cmp(&keys[b].display_from),
        SortKey::DisplayTo => keys[a].display_to.cmp(&keys[b].display_to),
    }
}

/// The view entries `idx` (ascending) in the order of `criteria`, ties by sequence number.
pub(crate) async fn sorted(
    ctx: &Ctx<'_>,
    idx: Vec<usize>,
    criteria: &[SortCriterion],
    deadline: Instant,
) -> CmdResult<Vec<usize>> {
    let needs_store = criteria
        .iter()
        .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size));
    let fields = criteria.iter().fold(Fields(0), |f, c| {
        f.with(match c.key {
            SortKey::Subject => Fields::SUBJECT,
            SortKey::From => Fields::FROM,
            SortKey::To => Fields::TO,
            SortKey::Cc => Fields::CC,
            SortKey::DisplayFrom => Fields::DISPLAY_FROM,
            SortKey::DisplayTo => Fields::DISPLAY_TO,
            SortKey::Arrival | SortKey::Size | SortKey::Date => Fields(0),
        })
    });
    let keys = if needs_store {
        sortkeys::load(ctx, &idx, fields, deadline).await?
    } else {
        Vec::new()
    };
    let mut order: Vec<usize> = (0..idx.len()).collect();
    order.sort_by(|&a, &b| {
        for c in criteria {
            let o = compare(c.key, ctx, &idx, &keys, a, b);
            let o = if c.reverse { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        idx[a].cmp(&idx[b])
    });
    Ok(order.into_iter().map(|n| idx[n]).collect())
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
    out.extend_from_slice(b"* SORT");
    for n in nums {
        out.extend_from_slice(format!(" {n}").as_bytes());
    }
    if let (Some(m), false) = (modseq, nums.is_empty()) {
        out.extend_from_slice(format!(" (MODSEQ {m})").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_values() {
        let a = |name: Option<&str>, mailbox: Option<&str>, host: Option<&str>| Addr {
            name: name.map(Into::into),
            mailbox: mailbox.map(Into::into),
            host: host.map(Into::into),
        };
        let cases = [
            (Some(a(Some("Joe"), Some("j"), Some("x.org"))), "Joe"),
            (Some(a(Some("=?utf-8?q?Andr=C3=A9?="), None, None)), "André"),
            (Some(a(Some(""), Some("j"), Some("x.org"))), "j@x.org"),
            (Some(a(None, Some("j"), None)), "j"),
            (Some(a(None, None, Some("x.org"))), ""),
            (None, ""),
        ];
        for (addr, want) in cases {
            assert_eq!(display(addr.as_ref()), want, "{addr:?}");
        }
        assert_eq!(mailbox(Some(&a(Some("Joe"), Some("j"), Some("x")))), "j");
        assert_eq!(mailbox(None), "");
    }

    #[test]
    fn sort_lines() {
        let mut out = Vec::new();
        write_sort(&mut out, &[], Some(4));
        write_sort(&mut out, &[5, 3, 4], None);
        write_sort(&mut out, &[2], Some(9));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "* SORT\r\n* SORT 5 3 4\r\n* SORT 2 (MODSEQ 9)\r\n"
        );
    }
}
