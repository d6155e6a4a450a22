//! SORT and UID SORT (RFC 5256 §3), with ESORT return options (RFC 5267 §3) and the
//! DISPLAYFROM / DISPLAYTO keys (RFC 5957).
//!
//! The matching set comes from the SEARCH evaluator; the sort values come from the view (size,
//! INTERNALDATE) and from the stored ENVELOPE and sent date, read in batches of
//! [`BATCH`] messages per store call. Ties are broken by sequence number (RFC 5256 §3).
//! `PARTIAL` (RFC 9394) is not offered.

use std::cmp::Ordering;
use std::time::Instant;

use mailkeep_proto::write::Code;
use mailkeep_proto::{SearchKey, SearchReturn, SortCriterion, SortKey};

use super::collate::{EARLIEST_DATE, base_subject, casemap_key, lenient_date};
use super::search::address::{Addr, EnvelopeParts, decode_words, envelope_parts};
use super::search::{self, esearch};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};

/// Messages whose ENVELOPE is read in one store call.
pub(crate) const BATCH: usize = 1024;

/// What SORT and THREAD know of one matching message.
pub(crate) struct Info {
    /// RFC 5256 §2.2 sent date (unix seconds, UTC), INTERNALDATE when the Date: header is
    /// missing or unreadable.
    pub sent: i64,
    pub envelope: EnvelopeParts,
}

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

/// The sent date and ENVELOPE parts of the view entries `idx`, read in batches and handed to
/// `row` one by one, so only the rows (not the envelopes) are kept. A message whose parsed
/// data is gone (expunged meanwhile) gets its INTERNALDATE and an empty envelope.
pub(crate) async fn load_rows<T>(
    ctx: &Ctx<'_>,
    idx: &[usize],
    deadline: Instant,
    mut row: impl FnMut(usize, Info) -> T,
) -> CmdResult<Vec<T>> {
    let mut out = Vec::with_capacity(idx.len());
    for chunk in idx.chunks(BATCH) {
        check_budget(deadline)?;
        // View indexes ascend, so do their UIDs (parsed_infos wants them ascending).
        let uids: Vec<u32> = chunk.iter().map(|&i| ctx.sel.messages[i].uid).collect();
        let infos = ctx.store.parsed_infos(ctx.sel.mailbox.id, &uids).await?;
        let mut found = infos.into_iter().peekable();
        for (&i, &uid) in chunk.iter().zip(&uids) {
            let meta = &ctx.sel.messages[i];
            let mut info = Info {
                sent: meta.internal_date,
                envelope: EnvelopeParts::default(),
            };
            while found.peek().is_some_and(|(u, _)| *u < uid) {
                found.next();
            }
            if let Some((_, p)) = found.next_if(|(u, _)| *u == uid) {
                info.envelope = envelope_parts(&p.envelope).unwrap_or_default();
                // RFC 5256 §2.2: the Date: header's time, else INTERNALDATE. A date the
                // message parser could not read gets a lenient second reading; one before
                // 1900 counts as unreadable.
                let sent = p.sent_date.filter(|&t| t >= EARLIEST_DATE).or_else(|| {
                    p.sent_date
                        .is_none()
                        .then(|| info.envelope.date.as_deref().and_then(lenient_date))
                        .flatten()
                });
                if let Some(sent) = sent {
                    info.sent = sent;
                }
            }
            out.push(row(i, info));
        }
        if idx.len() > BATCH {
            tokio::task::yield_now().await;
        }
    }
    Ok(out)
}

/// One message's value under one sort key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Value {
    Num(i64),
    Str(String),
}

/// RFC 5957 §3: the display name (decoded) if not empty, else `mailbox@host`, else `mailbox`.
fn display(addr: Option<&Addr>) -> String {
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
fn mailbox(addr: Option<&Addr>) -> String {
    addr.and_then(|a| a.mailbox.clone()).unwrap_or_default()
}

fn value(key: SortKey, ctx: &Ctx<'_>, i: usize, info: &Info) -> Value {
    let meta = &ctx.sel.messages[i];
    let env = &info.envelope;
    let text = |s: &str| Value::Str(cap_key(casemap_key(s)));
    match key {
        SortKey::Arrival => Value::Num(meta.internal_date),
        SortKey::Size => Value::Num(meta.size.min(i64::MAX as u64) as i64),
        SortKey::Date => Value::Num(info.sent),
        SortKey::Subject => text(&base_subject(env.subject.as_deref().unwrap_or("")).0),
        SortKey::From => text(&mailbox(env.from.as_ref())),
        SortKey::To => text(&mailbox(env.to.as_ref())),
        SortKey::Cc => text(&mailbox(env.cc.as_ref())),
        SortKey::DisplayFrom => text(&display(env.from.as_ref())),
        SortKey::DisplayTo => text(&display(env.to.as_ref())),
    }
}

/// The view entries `idx` (ascending) in the order of `criteria`, ties by sequence number.
async fn sorted(
    ctx: &Ctx<'_>,
    idx: Vec<usize>,
    criteria: &[SortCriterion],
    deadline: Instant,
) -> CmdResult<Vec<usize>> {
    let needs_store = criteria
        .iter()
        .any(|c| !matches!(c.key, SortKey::Arrival | SortKey::Size));
    let values = |i: usize, info: Info| -> (usize, Vec<Value>) {
        let v = criteria
            .iter()
            .map(|c| value(c.key, ctx, i, &info))
            .collect();
        (i, v)
    };
    let mut rows: Vec<(usize, Vec<Value>)> = if needs_store {
        load_rows(ctx, &idx, deadline, values).await?
    } else {
        idx.iter()
            .map(|&i| {
                let info = Info {
                    sent: 0,
                    envelope: EnvelopeParts::default(),
                };
                values(i, info)
            })
            .collect()
    };
    check_budget(deadline)?;
    rows.sort_by(|(ia, a), (ib, b)| {
        for (n, c) in criteria.iter().enumerate() {
            let o = a[n].cmp(&b[n]);
            let o = if c.reverse { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        ia.cmp(ib)
    });
    Ok(rows.into_iter().map(|(i, _)| i).collect())
}

/// SORT / UID SORT: `* SORT ...`, or `* ESEARCH ...` in sort order with `RETURN (...)`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn sort(
    ctx: &mut Ctx<'_>,
    tag: &str,
    uid: bool,
    criteria: &[SortCriterion],
    charset: &str,
    program: &SearchKey,
    ret: Option<&[SearchReturn]>,
    out: &mut Vec<u8>,
) -> CmdResult<()> {
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
        if ret.iter().all(|r| *r == SearchReturn::Save) {
            return Ok(());
        }
    }
    let shown: Vec<SearchReturn> = ret
        .iter()
        .copied()
        .filter(|r| *r != SearchReturn::Save)
        .collect();
    // MIN and MAX are the first and last in sort order, ALL is in sort order (RFC 5267 §3.1).
    esearch::write_esearch(out, Some(tag), uid, &shown, &nums, modseq);
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
