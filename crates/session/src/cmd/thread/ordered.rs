//! THREAD=ORDEREDSUBJECT from an order kept between commands ([`crate::orders`]).
//!
//! ORDEREDSUBJECT sorts the messages by base subject, then sent date, then sequence number
//! (RFC 5256 §3); each run of one subject is a thread whose first message is the parent of
//! the others, and the threads go by their first message's sent date. That order is SORT
//! (SUBJECT DATE)'s, and like it, it never changes for messages already stored. So the
//! mailbox's order is kept ([`Order::Subjects`]) with each message's run (a group number) and
//! sent date. New mail is inserted by SORT's binary searches and joins the run of a
//! neighbour with the same subject, or starts one; expunges need nothing; a subset of the
//! mailbox keeps the order and runs of the whole. A THREAD after new mail then reads the keys
//! of the new messages and of the few it is compared with, not of the whole mailbox.
//!
//! The first order of a mailbox is made without reading its keys when a SORT (SUBJECT) and a
//! THREAD=REFERENCES of it were kept ([`from_kept`]), as Dovecot's first ORDEREDSUBJECT uses
//! the sort index its SORT built; otherwise from every message's keys.

use std::time::Instant;

use mailkeep_proto::{SortCriterion, SortKey};
use mailkeep_store::MessageMeta;

use super::super::sort::{self, check_budget};
use super::super::sortkeys::{self, Row};
use crate::ctx::Ctx;
use crate::error::CmdResult;
use crate::orders::{self, Kind, Order, Positions, Token};

/// SORT's criteria for ORDEREDSUBJECT's order (ties by sequence number, as SORT's).
const CRITERIA: [SortCriterion; 2] = [
    SortCriterion {
        key: SortKey::Subject,
        reverse: false,
    },
    SortCriterion {
        key: SortKey::Date,
        reverse: false,
    },
];

/// One message in ORDEREDSUBJECT's order: view index, run, sent date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    at: usize,
    group: u32,
    sent: i64,
}

/// ORDEREDSUBJECT's answer for the view entries `idx` (ascending), from the mailbox's kept
/// order (made or brought up to date here); `None` when the mailbox is too small to keep one
/// or `idx` too small a part of it (threaded alone then).
pub(super) async fn tokens(
    ctx: &Ctx<'_>,
    idx: &[usize],
    deadline: Instant,
) -> CmdResult<Option<Vec<Token>>> {
    let view = &ctx.sel.messages;
    if view.len() < orders::MIN_KEPT || idx.len() * 2 < view.len() {
        return Ok(None);
    }
    let kept = ctx.orders.get(&ctx.sel.mailbox, &Kind::Subjects);
    // The kept order is put back only when it changed (new mail, or a new order).
    let (entries, changed) = match kept.as_deref() {
        Some(Order::Subjects { uids, groups, sent }) => {
            let (base, new) = split(view, uids, groups, sent);
            if new.is_empty() {
                ctx.orders.hit();
                (base, false)
            } else if new.len() <= sort::MAX_INSERTED.min(view.len() / 4) {
                ctx.orders.hit();
                (insert(ctx, base, new, deadline).await?, true)
            } else {
                (whole(ctx, deadline).await?, true)
            }
        }
        _ => (whole(ctx, deadline).await?, true),
    };
    let tokens = answer(view, &entries, idx);
    if changed {
        ctx.orders.put(
            &ctx.sel.mailbox,
            Kind::Subjects,
            Order::Subjects {
                uids: entries.iter().map(|e| view[e.at].uid).collect(),
                groups: entries.iter().map(|e| e.group).collect(),
                sent: entries.iter().map(|e| e.sent).collect(),
            },
        );
    }
    Ok(Some(tokens))
}

/// The kept order's entries still in the view (in order), and the view entries it lacks.
fn split(
    view: &[MessageMeta],
    uids: &[u32],
    groups: &[u32],
    sent: &[i64],
) -> (Vec<Entry>, Vec<usize>) {
    let positions = Positions::new(view);
    let mut kept = vec![false; view.len()];
    let mut base = Vec::with_capacity(view.len());
    for ((&uid, &group), &sent) in uids.iter().zip(groups).zip(sent) {
        if let Some(at) = positions.get(uid) {
            kept[at] = true;
            base.push(Entry { at, group, sent });
        }
    }
    let new = (0..view.len()).filter(|&i| !kept[i]).collect();
    (base, new)
}

/// The whole view in ORDEREDSUBJECT's order, runs numbered from 0.
async fn whole(ctx: &Ctx<'_>, deadline: Instant) -> CmdResult<Vec<Entry>> {
    if let Some(entries) = from_kept(ctx) {
        ctx.orders.hit();
        return Ok(entries);
    }
    let all: Vec<usize> = (0..ctx.sel.messages.len()).collect();
    entries(ctx, &all, deadline).await
}

/// ORDEREDSUBJECT's answer for the view entries `idx` (ascending) threaded alone, from their
/// keys: a part of the mailbox, or a mailbox too small to keep an order for.
pub(super) async fn alone(
    ctx: &Ctx<'_>,
    idx: &[usize],
    deadline: Instant,
) -> CmdResult<Vec<Token>> {
    let entries = entries(ctx, idx, deadline).await?;
    Ok(answer(&ctx.sel.messages, &entries, idx))
}

/// The view entries `idx` (ascending) in ORDEREDSUBJECT's order, from their keys.
async fn entries(ctx: &Ctx<'_>, idx: &[usize], deadline: Instant) -> CmdResult<Vec<Entry>> {
    let view = &ctx.sel.messages;
    let (keys, _) = sortkeys::load(ctx, idx, deadline).await?;
    let rows: Vec<(&str, i64)> = idx
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            let r = keys.row(n);
            (
                r.string(Row::SUBJECT),
                r.sent.unwrap_or(view[i].internal_date),
            )
        })
        .collect();
    check_budget(deadline)?;
    let mut entries = runs(&rows);
    for e in &mut entries {
        e.at = idx[e.at];
    }
    Ok(entries)
}

/// The whole view in ORDEREDSUBJECT's order from what other commands kept of the mailbox,
/// without reading its keys: SORT (SUBJECT)'s order puts equal base subjects together (ties
/// by sequence number), and REFERENCES's links have every message's base subject (hashed)
/// and sent date, so each run is found and put in date order in memory. `None` unless both
/// are kept and hold every message of the view.
fn from_kept(ctx: &Ctx<'_>) -> Option<Vec<Entry>> {
    let view = &ctx.sel.messages;
    let by_subject = Kind::Sort(vec![CRITERIA[0]]);
    let sorted = ctx.orders.get(&ctx.sel.mailbox, &by_subject)?;
    let Order::Sort(uids) = &*sorted else {
        return None;
    };
    let links = ctx.orders.get(&ctx.sel.mailbox, &Kind::Links)?;
    let Order::Links(links) = &*links else {
        return None;
    };
    // The links' messages are the view's, in order: a message's number there is its view
    // position.
    if links.len() != view.len() || !links.leads(view) {
        return None;
    }
    let (order, new) = orders::split(view, uids);
    if !new.is_empty() {
        return None;
    }
    let mut out: Vec<Entry> = Vec::with_capacity(order.len());
    for (group, run) in order
        .chunk_by(|&a, &b| links.subject(a) == links.subject(b))
        .enumerate()
    {
        let first = out.len();
        out.extend(run.iter().map(|&at| Entry {
            at,
            group: group as u32,
            sent: links.sent(at),
        }));
        out[first..].sort_unstable_by_key(|e| (e.sent, e.at));
    }
    Some(out)
}

/// Entries `0..rows.len()` with these (subject, sent date) in ORDEREDSUBJECT's order, ties by
/// index, runs of one subject numbered from 0.
fn runs(rows: &[(&str, i64)]) -> Vec<Entry> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_unstable_by(|&a, &b| (rows[a], a).cmp(&(rows[b], b)));
    let mut out = Vec::with_capacity(order.len());
    let mut group = 0;
    for (n, &at) in order.iter().enumerate() {
        if n > 0 && rows[order[n - 1]].0 != rows[at].0 {
            group += 1;
        }
        out.push(Entry {
            at,
            group,
            sent: rows[at].1,
        });
    }
    out
}

/// `base` (in order) with the view entries `new` inserted where they sort, each in the run
/// of a neighbour with the same subject or in a run of its own.
async fn insert(
    ctx: &Ctx<'_>,
    base: Vec<Entry>,
    new: Vec<usize>,
    deadline: Instant,
) -> CmdResult<Vec<Entry>> {
    let view = &ctx.sel.messages;
    let mut known: Vec<Option<Entry>> = vec![None; view.len()];
    let mut next_group = 0;
    for e in &base {
        known[e.at] = Some(*e);
        next_group = next_group.max(e.group + 1);
    }
    let order = sort::insert(
        ctx,
        base.iter().map(|e| e.at).collect(),
        new,
        &CRITERIA,
        deadline,
    )
    .await?;
    // The keys of the new entries and of their neighbours, in one read.
    let mut wanted = Vec::new();
    for (p, &at) in order.iter().enumerate() {
        if known[at].is_none() {
            wanted.extend(p.checked_sub(1).map(|q| order[q]));
            wanted.push(at);
            wanted.extend(order.get(p + 1));
        }
    }
    wanted.sort_unstable();
    wanted.dedup();
    let (keys, _) = sortkeys::load(ctx, &wanted, deadline).await?;
    let row = |at: usize| {
        wanted
            .binary_search(&at)
            .map_or(Row::EMPTY, |n| keys.row(n))
    };
    let mut out = Vec::with_capacity(order.len());
    for (p, &at) in order.iter().enumerate() {
        if let Some(e) = known[at] {
            out.push(e);
            continue;
        }
        let r = row(at);
        let subject = r.string(Row::SUBJECT);
        let same = |q: usize| row(order[q]).string(Row::SUBJECT) == subject;
        // The entry before is placed already (new ones too, left to right); a new entry after
        // joins this one's run when it is placed.
        let group = match (p.checked_sub(1), order.get(p + 1)) {
            (Some(q), _) if same(q) => out[q].group,
            (_, Some(&next)) if known[next].is_some() && same(p + 1) => {
                known[next].map_or(0, |e| e.group)
            }
            _ => {
                next_group += 1;
                next_group - 1
            }
        };
        let e = Entry {
            at,
            group,
            sent: r.sent.unwrap_or(view[at].internal_date),
        };
        known[at] = Some(e);
        out.push(e);
    }
    Ok(out)
}

/// The answer for the view entries `idx` (ascending) from the whole view's `entries`: each
/// run's first message is the parent of the rest, and runs go by their first message's sent
/// date, then sequence number.
fn answer(view: &[MessageMeta], entries: &[Entry], idx: &[usize]) -> Vec<Token> {
    let mut wanted = vec![false; view.len()];
    for &i in idx {
        wanted[i] = true;
    }
    let chosen: Vec<Entry> = entries.iter().copied().filter(|e| wanted[e.at]).collect();
    // (sent, sequence, first, end) of each run.
    let mut runs = Vec::new();
    let mut start = 0;
    while start < chosen.len() {
        let mut end = start + 1;
        while end < chosen.len() && chosen[end].group == chosen[start].group {
            end += 1;
        }
        runs.push((chosen[start].sent, chosen[start].at, start, end));
        start = end;
    }
    runs.sort_unstable();
    let uid = |n: usize| Token::Uid(view[chosen[n].at].uid);
    let mut out = Vec::with_capacity(chosen.len() * 3);
    for (_, _, start, end) in runs {
        out.extend([Token::Open, uid(start)]);
        match end - start {
            1 => {}
            2 => out.extend([Token::Space, uid(start + 1)]),
            _ => {
                out.push(Token::Space);
                for n in start + 1..end {
                    out.extend([Token::Open, uid(n), Token::Close]);
                }
            }
        }
        out.push(Token::Close);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::tests::meta;
    use mailkeep_mime::collate::{base_subject, casemap_key};

    /// `runs` of these rows, with the view entries `idx` (ascending) as their positions.
    fn entries_of(rows: &[(&str, i64)], idx: &[usize]) -> Vec<Entry> {
        let chosen: Vec<(&str, i64)> = idx.iter().map(|&i| rows[i]).collect();
        let mut entries = runs(&chosen);
        for e in &mut entries {
            e.at = idx[e.at];
        }
        entries
    }

    #[test]
    fn ordered_subject_threads() {
        let messages = [
            (10, "b"),
            (5, "Re: a"),
            (1, "a"),
            (20, "re: B"),
            (30, "c"),
            (7, "[fwd: a]"),
        ];
        let keys: Vec<String> = messages
            .iter()
            .map(|(_, s)| casemap_key(&base_subject(s).0))
            .collect();
        let rows: Vec<(&str, i64)> = messages
            .iter()
            .zip(&keys)
            .map(|(&(sent, _), k)| (k.as_str(), sent))
            .collect();
        let view: Vec<MessageMeta> = (1..=6).map(meta).collect();
        let all: Vec<usize> = (0..6).collect();
        let mut out = Vec::new();
        super::super::write_tokens(&mut out, &answer(&view, &runs(&rows), &all), |n| n);
        assert_eq!(String::from_utf8(out).unwrap(), "(3 (2)(6))(1 4)(5)");
    }

    /// The kept order of the whole view answers for a part of it as that part threaded alone,
    /// over subjects and dates that repeat.
    #[test]
    fn kept_order_answers_a_part_as_threaded_alone() {
        let subjects = ["", "A", "B", "C", "a"];
        let n = 300;
        let rows: Vec<(&str, i64)> = (0..n)
            .map(|i| (subjects[(i * 7) % 5], ((i * 13) % 11) as i64))
            .collect();
        let view: Vec<MessageMeta> = (0..n as u32).map(|i| meta(i * 2 + 1)).collect();
        let whole = runs(&rows);
        for step in [1, 2, 3, 7] {
            let idx: Vec<usize> = (0..n).step_by(step).collect();
            assert_eq!(
                answer(&view, &whole, &idx),
                answer(&view, &entries_of(&rows, &idx), &idx),
                "every {step}th message"
            );
        }
    }
}
