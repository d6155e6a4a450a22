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
//! mailbox); ORDEREDSUBJECT from an order kept the same way (`ordered`), or here over an
//! arena of nodes for a part of a mailbox. Every walk over threads (pruning, sorting,
//! writing) uses an explicit stack, so a reply chain thousands of messages deep cannot
//! overflow the stack.

use std::time::Instant;

use mailkeep_proto::{SearchKey, ThreadAlgorithm};

use super::search;
use super::sortkeys::{self, Row};
use crate::ctx::Ctx;
use crate::error::CmdResult;
use crate::orders::{self, Kind, Order, Token};
pub(crate) use links::Links;
use links::Message;

/// One matching message as threading sees it.
struct Msg<'a> {
    /// Message number or UID, as answered.
    num: u32,
    /// View index: the sequence-number tie-breaker.
    seq: usize,
    sent: i64,
    /// i;unicode-casemap key of the base subject (borrowed from the message's sort keys).
    subject: &'a str,
}

#[derive(Default)]
struct Node {
    /// Index into the message list; `None` for a dummy.
    msg: Option<usize>,
    parent: Option<usize>,
    children: Vec<usize>,
}

struct Forest<'a> {
    msgs: Vec<Msg<'a>>,
    nodes: Vec<Node>,
    roots: Vec<usize>,
}

impl<'a> Forest<'a> {
    fn new(msgs: Vec<Msg<'a>>) -> Self {
        Forest {
            msgs,
            nodes: Vec::new(),
            roots: Vec::new(),
        }
    }

    fn add(&mut self, msg: Option<usize>) -> usize {
        self.nodes.push(Node {
            msg,
            ..Node::default()
        });
        self.nodes.len() - 1
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    /// The (sent date, sequence number) a node sorts by: a dummy's first child's.
    fn date_key(&self, n: usize) -> (i64, usize) {
        let mut n = n;
        loop {
            match self.nodes[n].msg {
                Some(m) => return (self.msgs[m].sent, self.msgs[m].seq),
                None => match self.nodes[n].children.first() {
                    Some(&c) => n = c,
                    None => return (i64::MIN, usize::MAX),
                },
            }
        }
    }

    /// `(2)(3 6 (4 23)(44 7 96))`: RFC 5256 §4 `thread-list`s, one per root, with the
    /// messages' numbers.
    #[cfg(test)]
    fn write(&self, out: &mut Vec<u8>) {
        write_tokens(out, &self.tokens(), |n| n);
    }

    /// [`Forest::write`]'s answer in pieces, with each message's `num`.
    fn tokens(&self) -> Vec<Token> {
        let mut out = Vec::with_capacity(self.nodes.len() * 3);
        enum Op {
            Open,
            Close,
            Space,
            Node(usize),
        }
        let mut stack: Vec<Op> = Vec::new();
        for &r in self.roots.iter().rev() {
            stack.extend([Op::Close, Op::Node(r), Op::Open]);
        }
        while let Some(op) = stack.pop() {
            match op {
                Op::Open => out.push(Token::Open),
                Op::Close => out.push(Token::Close),
                Op::Space => out.push(Token::Space),
                Op::Node(n) => {
                    let node = &self.nodes[n];
                    let nested = |stack: &mut Vec<Op>| {
                        for &c in node.children.iter().rev() {
                            stack.extend([Op::Close, Op::Node(c), Op::Open]);
                        }
                    };
                    match node.msg {
                        None => nested(&mut stack),
                        Some(m) => {
                            out.push(Token::Uid(self.msgs[m].num));
                            match node.children[..] {
                                [] => {}
                                [c] => stack.extend([Op::Node(c), Op::Space]),
                                _ => {
                                    nested(&mut stack);
                                    stack.push(Op::Space);
                                }
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

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

/// ORDEREDSUBJECT (RFC 5256 §3): by base subject then sent date; each subject one thread whose
/// first message is the parent of all the others; threads by their first message's date.
fn ordered_subject(msgs: Vec<Msg<'_>>) -> Forest<'_> {
    let mut order: Vec<usize> = (0..msgs.len()).collect();
    // (subject, sent, seq) is unique per message: an unstable sort gives the same order.
    order.sort_unstable_by(|&a, &b| {
        let (x, y) = (&msgs[a], &msgs[b]);
        (x.subject, x.sent, x.seq).cmp(&(y.subject, y.sent, y.seq))
    });
    let mut f = Forest::new(msgs);
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && f.msgs[order[end]].subject == f.msgs[order[start]].subject {
            end += 1;
        }
        let root = f.add(Some(order[start]));
        for &m in &order[start + 1..end] {
            let child = f.add(Some(m));
            f.link(root, child);
        }
        f.roots.push(root);
        start = end;
    }
    let mut roots = std::mem::take(&mut f.roots);
    roots.sort_by_key(|&r| f.date_key(r));
    f.roots = roots;
    f
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
    if let Some(tokens) = ordered::tokens(ctx, idx, deadline).await? {
        return Ok(tokens);
    }
    let (keys, _) = sortkeys::load(ctx, idx, deadline).await?;
    let msgs = idx
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            let r = keys.row(n);
            let meta = &ctx.sel.messages[i];
            Msg {
                num: meta.uid,
                seq: i,
                sent: r.sent.unwrap_or(meta.internal_date),
                subject: r.string(Row::SUBJECT),
            }
        })
        .collect();
    Ok(ordered_subject(msgs).tokens())
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
    let kept = kept.filter(|l| {
        l.len() <= view.len() && l.nums().iter().zip(view.iter()).all(|(&u, m)| u == m.uid)
    });
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
