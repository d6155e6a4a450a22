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
//! Threads live in an arena of nodes; every walk over them (pruning, sorting, writing) uses
//! an explicit stack, so a reply chain thousands of messages deep cannot overflow the stack.

use ahash::AHashMap as HashMap;
use std::time::Instant;

use mailkeep_proto::{SearchKey, ThreadAlgorithm};

use super::search;
use super::sort::check_budget;
use super::sortkeys::{self, Row};
use crate::ctx::Ctx;
use crate::error::CmdResult;
use crate::orders::{self, Kind, Order, Token};
use mailkeep_mime::sortkeys::Refs;

/// One matching message as threading sees it.
struct Msg<'a> {
    /// Message number or UID, as answered.
    num: u32,
    /// View index: the sequence-number tie-breaker.
    seq: usize,
    sent: i64,
    /// i;unicode-casemap key of the base subject (borrowed from the message's sort keys).
    subject: &'a str,
    /// The base subject extraction removed a reply/forward marker.
    reply: bool,
}

/// What REFERENCES reads of a message's keys: its Message-ID and references (borrowed from
/// the row; the rest of the row is not kept).
#[derive(Clone, Copy)]
struct Links<'a> {
    id: Option<&'a str>,
    refs: Refs<'a>,
}

impl<'a> Links<'a> {
    fn of(row: &Row<'a>) -> Links<'a> {
        Links {
            id: row.message_id,
            refs: row.refs(),
        }
    }
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

    fn is_dummy(&self, n: usize) -> bool {
        self.nodes[n].msg.is_none()
    }

    /// Is `a` the same node as `b` or one of its ancestors?
    fn is_ancestor_or_self(&self, a: usize, b: usize) -> bool {
        // A node without children is nobody's ancestor: no walk (keeps a long chain linear).
        if a != b && self.nodes[a].children.is_empty() {
            return false;
        }
        let mut cur = Some(b);
        while let Some(c) = cur {
            if c == a {
                return true;
            }
            cur = self.nodes[c].parent;
        }
        false
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.nodes[child].parent = Some(parent);
        self.nodes[parent].children.push(child);
    }

    fn unlink(&mut self, child: usize) {
        if let Some(p) = self.nodes[child].parent.take() {
            self.nodes[p].children.retain(|&c| c != child);
        }
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

    /// Nodes under `roots`, children before parents.
    fn post_order(&self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.nodes.len());
        let mut stack: Vec<(usize, bool)> = self.roots.iter().rev().map(|&r| (r, false)).collect();
        while let Some((n, expanded)) = stack.pop() {
            if expanded {
                out.push(n);
            } else {
                stack.push((n, true));
                stack.extend(self.nodes[n].children.iter().rev().map(|&c| (c, false)));
            }
        }
        out
    }

    /// RFC 5256 §3 REFERENCES step 6: every sibling set by sent date, youngest sets first.
    fn sort_all(&mut self) {
        for n in self.post_order() {
            let mut children = std::mem::take(&mut self.nodes[n].children);
            children.sort_by_key(|&c| self.date_key(c));
            self.nodes[n].children = children;
        }
        let mut roots = std::mem::take(&mut self.roots);
        roots.sort_by_key(|&r| self.date_key(r));
        self.roots = roots;
    }

    /// REFS: the threads by the sent date of their newest message (then as before).
    fn sort_roots_by_newest(&mut self) {
        let mut newest = vec![i64::MIN; self.nodes.len()];
        for n in self.post_order() {
            let own = self.nodes[n].msg.map_or(i64::MIN, |m| self.msgs[m].sent);
            let kids = self.nodes[n].children.iter().map(|&c| newest[c]).max();
            newest[n] = own.max(kids.unwrap_or(i64::MIN));
        }
        let mut roots = std::mem::take(&mut self.roots);
        roots.sort_by_key(|&r| (newest[r], self.date_key(r)));
        self.roots = roots;
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

/// REFERENCES (RFC 5256 §3), steps 1 to 6. `refs[i]` (its Message-ID and references) belongs
/// to `msgs[i]`; messages are in sequence order. `by_subject` false is REFS: no step 5,
/// threads by their newest message.
fn references<'a>(
    msgs: Vec<Msg<'a>>,
    refs: &[Links<'a>],
    by_subject: bool,
    deadline: Instant,
) -> CmdResult<Forest<'a>> {
    let mut f = Forest::new(msgs);
    let mut by_id: HashMap<&'a str, usize> = HashMap::with_capacity(refs.len() * 2);
    let mut steps = 0usize;
    // The message (counted from 1) whose references last reached each node: a reference
    // listed twice is skipped without hashing it again.
    let mut seen: Vec<u32> = Vec::new();
    // (1) Links from the references.
    for (m, r) in refs.iter().enumerate() {
        if m % 256 == 255 {
            check_budget(deadline)?;
        }
        let node = match r.id {
            Some(id) => match by_id.get(id) {
                // A dummy made for an earlier reference: this message fills it.
                Some(&n) if f.is_dummy(n) => {
                    f.nodes[n].msg = Some(m);
                    n
                }
                // A duplicate ID: this message gets a unique one.
                Some(_) => f.add(Some(m)),
                None => {
                    let n = f.add(Some(m));
                    by_id.insert(id, n);
                    n
                }
            },
            None => f.add(Some(m)),
        };
        let mut prev: Option<usize> = None;
        let stamp = m as u32 + 1;
        for id in r.refs.iter() {
            steps += 1;
            if steps.is_multiple_of(256) {
                check_budget(deadline)?;
            }
            let cur = match by_id.get(id) {
                Some(&n) => n,
                None => {
                    let n = f.add(None);
                    by_id.insert(id, n);
                    n
                }
            };
            // An ID listed twice adds no link but could make the loop checks below walk the
            // same chain again and again.
            if seen.len() <= cur {
                seen.resize(f.nodes.len(), 0);
            }
            if std::mem::replace(&mut seen[cur], stamp) == stamp {
                continue;
            }
            // (1.A) Keep an existing parent; never make a loop.
            if let Some(p) = prev
                && f.nodes[cur].parent.is_none()
                && !f.is_ancestor_or_self(cur, p)
            {
                f.link(p, cur);
            }
            prev = Some(cur);
        }
        // (1.B) The last reference is the parent, replacing any parent set before.
        f.unlink(node);
        if let Some(p) = prev
            && !f.is_ancestor_or_self(node, p)
        {
            f.link(p, node);
        }
    }
    // (2) The messages without parent are the roots.
    f.roots = (0..f.nodes.len())
        .filter(|&n| f.nodes[n].parent.is_none())
        .collect();
    // (3) Prune dummies: childless ones go, the others give their children to their parent
    // (at the top level only a single child is promoted).
    for n in f.post_order() {
        let children = std::mem::take(&mut f.nodes[n].children);
        let mut kept = Vec::with_capacity(children.len());
        for c in children {
            if f.is_dummy(c) {
                let grand = std::mem::take(&mut f.nodes[c].children);
                for &g in &grand {
                    f.nodes[g].parent = Some(n);
                }
                kept.extend(grand);
            } else {
                kept.push(c);
            }
        }
        f.nodes[n].children = kept;
    }
    check_budget(deadline)?;
    let mut roots = Vec::with_capacity(f.roots.len());
    for r in std::mem::take(&mut f.roots) {
        if !f.is_dummy(r) {
            roots.push(r);
            continue;
        }
        match f.nodes[r].children[..] {
            [] => {}
            [c] => {
                f.nodes[c].parent = None;
                f.nodes[r].children.clear();
                roots.push(c);
            }
            _ => roots.push(r),
        }
    }
    f.roots = roots;
    // (4) Top level by sent date (a dummy by its earliest child).
    for &r in &f.roots.clone() {
        if f.is_dummy(r) {
            let mut children = std::mem::take(&mut f.nodes[r].children);
            children.sort_by_key(|&c| f.date_key(c));
            f.nodes[r].children = children;
        }
    }
    let mut roots = std::mem::take(&mut f.roots);
    roots.sort_by_key(|&r| f.date_key(r));
    f.roots = roots;
    if !by_subject {
        f.sort_all();
        f.sort_roots_by_newest();
        return Ok(f);
    }
    // (5) Gather the threads that share a base subject.
    let thread_subject = |f: &Forest, n: usize| -> Option<usize> {
        match f.nodes[n].msg {
            Some(m) => Some(m),
            None => f.nodes[n].children.first().and_then(|&c| f.nodes[c].msg),
        }
        .filter(|&m| !f.msgs[m].subject.is_empty())
    };
    let is_reply = |f: &Forest, n: usize| f.nodes[n].msg.is_some_and(|m| f.msgs[m].reply);
    let mut table: HashMap<&'a str, usize> = HashMap::with_capacity(f.roots.len());
    for &r in &f.roots {
        let Some(m) = thread_subject(&f, r) else {
            continue;
        };
        let subject = f.msgs[m].subject;
        match table.get(subject).copied() {
            None => {
                table.insert(subject, r);
            }
            Some(t) => {
                if !f.is_dummy(t) && (f.is_dummy(r) || (is_reply(&f, t) && !is_reply(&f, r))) {
                    table.insert(subject, r);
                }
            }
        }
    }
    let mut gone = vec![false; f.nodes.len()];
    for r in f.roots.clone() {
        if gone[r] || f.nodes[r].parent.is_some() {
            continue;
        }
        let Some(m) = thread_subject(&f, r) else {
            continue;
        };
        let subject = f.msgs[m].subject;
        let Some(&t) = table.get(subject) else {
            continue;
        };
        if t == r {
            continue;
        }
        if f.is_dummy(t) && f.is_dummy(r) {
            for c in std::mem::take(&mut f.nodes[r].children) {
                f.nodes[c].parent = Some(t);
                f.nodes[t].children.push(c);
            }
            gone[r] = true;
        } else if f.is_dummy(t) || (is_reply(&f, r) && !is_reply(&f, t)) {
            f.link(t, r);
        } else {
            let d = f.add(None);
            gone.push(false);
            f.link(d, t);
            f.link(d, r);
            table.insert(subject, d);
            f.roots.push(d);
        }
    }
    let roots: Vec<usize> = f
        .roots
        .iter()
        .copied()
        .filter(|&r| !gone[r] && f.nodes[r].parent.is_none())
        .collect();
    f.roots = roots;
    // (6) Every sibling set by sent date.
    f.sort_all();
    Ok(f)
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
    if algorithm == ThreadAlgorithm::OrderedSubject
        && let Some(tokens) = ordered::tokens(ctx, idx, deadline).await?
    {
        return Ok(tokens);
    }
    let (keys, computed) = sortkeys::load(ctx, idx, deadline).await?;
    // Keys computed for the first time may have used up the command's budget: threading gets
    // one of its own.
    let deadline = if computed > 0 {
        deadline.max(Instant::now() + search::SEARCH_TIME_BUDGET)
    } else {
        deadline
    };
    let by_refs = algorithm != ThreadAlgorithm::OrderedSubject;
    let mut msgs = Vec::with_capacity(idx.len());
    let mut links = Vec::with_capacity(if by_refs { idx.len() } else { 0 });
    for (n, &i) in idx.iter().enumerate() {
        let r = keys.row(n);
        let meta = &ctx.sel.messages[i];
        msgs.push(Msg {
            num: meta.uid,
            seq: i,
            sent: r.sent.unwrap_or(meta.internal_date),
            subject: r.string(Row::SUBJECT),
            reply: r.reply,
        });
        if by_refs {
            links.push(Links::of(&r));
        }
    }
    let forest = match algorithm {
        ThreadAlgorithm::OrderedSubject => ordered_subject(msgs),
        ThreadAlgorithm::References | ThreadAlgorithm::Refs => {
            let by_subject = algorithm == ThreadAlgorithm::References;
            references(msgs, &links, by_subject, deadline)?
        }
    };
    Ok(forest.tokens())
}

mod ordered;
#[cfg(test)]
mod tests;
