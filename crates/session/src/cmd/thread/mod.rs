//! THREAD and UID THREAD (RFC 5256 §3): ORDEREDSUBJECT and REFERENCES, and REFS
//! (draft-ietf-morg-inthread): REFERENCES without the subject grouping of its step 5, the
//! threads ordered by their newest message. Dovecot 2.3 answers the same on the shapes
//! checked in the tests (it is the only server offering REFS that clients meet).
//!
//! The matching set comes from the SEARCH evaluator; sent dates, base subjects and the
//! normalized Message-ID and references (RFC 5256 §3: References, else In-Reply-To) from the
//! sort keys kept in the store (`super::sortkeys`, computed once per message, as SORT reads
//! them).
//!
//! REFERENCES and REFS are threaded in `links` (step 1 kept between commands for a whole
//! mailbox), ORDEREDSUBJECT in `ordered` (its order kept the same way). Every walk over
//! threads (pruning, sorting, writing) uses an explicit stack, so a reply chain thousands of
//! messages deep cannot overflow the stack.

use std::time::Instant;

use mailkeep_proto::{SearchKey, ThreadAlgorithm};

use super::search;
use super::sortkeys::{self, Row};
use crate::ctx::Ctx;
use crate::error::CmdResult;
use crate::orders::{self, Kind, Order, Token};
pub(crate) use links::Links;
use links::Message;

/// Writes THREAD's answer from `tokens`, each message as `num(uid)`.
fn write_tokens(out: &mut Vec<u8>, tokens: &[Token], num: impl Fn(u32) -> u32) {
    out.reserve(tokens.len() * 4);
    for t in tokens {
        match *t {
            Token::Open => out.push(b'('),
            Token::Close => out.push(b')'),
            Token::Space => out.push(b' '),
            Token::Uid(u) => mailkeep_proto::write::number(out, u64::from(num(u))),
        }
    }
}

/// THREAD / UID THREAD: `* THREAD ...`.
pub(crate) async fn thread(
    ctx: &mut Ctx<'_>,
    uid: bool,
    algorithm: ThreadAlgorithm,
    charset: &str,
    program: &SearchKey,
    out: &mut Vec<u8>,
) -> CmdResult<()> {
    let deadline = Instant::now() + search::SEARCH_TIME_BUDGET;
    let (idx, _) = search::run(ctx, Some(charset), program).await?;
    let view = &ctx.sel.messages;
    let set: Vec<u32> = idx.iter().map(|&i| view[i].uid).collect();
    let kind = Kind::Thread(algorithm);
    let kept = ctx.orders.get(&ctx.sel.mailbox, &kind);
    let kept = match kept.as_deref() {
        Some(Order::Thread { set: s, tokens }) if *s == set => Some(tokens),
        _ => None,
    };
    let mut computed = None;
    let tokens: &[Token] = match kept {
        Some(tokens) => {
            ctx.orders.hit();
            tokens
        }
        None => computed.insert(threads(ctx, &idx, algorithm, deadline).await?),
    };
    out.extend_from_slice(b"* THREAD");
    if !tokens.is_empty() {
        out.push(b' ');
    }
    if uid {
        write_tokens(out, tokens, |u| u);
    } else {
        let positions = orders::Positions::new(view);
        write_tokens(out, tokens, |u| {
            positions.get(u).map_or(0, |at| at as u32 + 1)
        });
    }
    out.extend_from_slice(b"\r\n");
    if let Some(tokens) = computed
        && set.len() >= orders::MIN_KEPT
    {
        ctx.orders
            .put(&ctx.sel.mailbox, kind, Order::Thread { set, tokens });
    }
    Ok(())
}

/// The threads of the view entries `idx` by `algorithm`, with UIDs.
async fn threads(
    ctx: &Ctx<'_>,
    idx: &[usize],
    algorithm: ThreadAlgorithm,
    deadline: Instant,
) -> CmdResult<Vec<Token>> {
    if algorithm != ThreadAlgorithm::OrderedSubject {
        return by_references(ctx, idx, algorithm == ThreadAlgorithm::References, deadline).await;
    }
    match ordered::tokens(ctx, idx, deadline).await? {
        Some(tokens) => Ok(tokens),
        None => ordered::alone(ctx, idx, deadline).await,
    }
}

/// REFERENCES (`by_subject`) or REFS over the view entries `idx`. Over a whole mailbox large
/// enough to keep, step 1 continues from the state kept for it ([`Links`]) with the new
/// messages' keys only, and is kept again; otherwise it is computed here for `idx`.
async fn by_references(
    ctx: &Ctx<'_>,
    idx: &[usize],
    by_subject: bool,
    deadline: Instant,
) -> CmdResult<Vec<Token>> {
    let view = &ctx.sel.messages;
    if idx.len() < view.len() || view.len() < orders::MIN_KEPT {
        let (links, deadline) = linked(ctx, idx, Links::with_capacity(idx.len()), deadline).await?;
        return links.thread(by_subject, deadline);
    }
    let kept = ctx
        .orders
        .take(&ctx.sel.mailbox, &Kind::Links)
        .and_then(|order| match std::sync::Arc::try_unwrap(order) {
            Ok(Order::Links(l)) => Some(l),
            Ok(_) => None,
            Err(shared) => match &*shared {
                Order::Links(l) => Some(l.clone()),
                _ => None,
            },
        });
    // Usable when its messages are the view's first ones (no expunge since).
    let kept = kept.filter(|l| l.leads(view));
    let (base, from) = match kept {
        Some(l) => {
            ctx.orders.hit();
            let n = l.len();
            (l, n)
        }
        None => (Links::with_capacity(view.len()), 0),
    };
    let (links, deadline) = linked(ctx, &idx[from..], base, deadline).await?;
    let tokens = links.thread(by_subject, deadline)?;
    ctx.orders
        .put(&ctx.sel.mailbox, Kind::Links, Order::Links(links));
    Ok(tokens)
}

/// `links` extended with the view entries `idx` (ascending, after those in it), and the
/// command's deadline (a new budget when keys were computed for the first time).
async fn linked(
    ctx: &Ctx<'_>,
    idx: &[usize],
    mut links: Links,
    deadline: Instant,
) -> CmdResult<(Links, Instant)> {
    if idx.is_empty() {
        return Ok((links, deadline));
    }
    let (keys, computed) = sortkeys::load(ctx, idx, deadline).await?;
    // Keys computed for the first time may have used up the command's budget: threading gets
    // one of its own.
    let deadline = if computed > 0 {
        deadline.max(Instant::now() + search::SEARCH_TIME_BUDGET)
    } else {
        deadline
    };
    let view = &ctx.sel.messages;
    links.extend(
        idx.iter().enumerate().map(|(n, &i)| {
            let r = keys.row(n);
            Message {
                num: view[i].uid,
                sent: r.sent.unwrap_or(view[i].internal_date),
                subject: r.string(Row::SUBJECT),
                reply: r.reply,
                id: r.message_id,
                refs: r.refs(),
            }
        }),
        deadline,
    )?;
    Ok((links, deadline))
}

mod links;
mod ordered;
#[cfg(test)]
mod tests;
