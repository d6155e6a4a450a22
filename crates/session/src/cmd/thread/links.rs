//! THREAD=REFERENCES and REFS (RFC 5256 §3) over compact arrays, with step 1 kept between
//! commands.
//!
//! Step 1 (the Message-ID table and the links from each message's references) is the costly
//! part of REFERENCES: every message's keys are read and every Message-ID and reference is
//! looked up. Its result depends only on the messages threaded and their order, and
//! messages are taken in sequence order, so new mail at the end of a mailbox continues it
//! where it stopped: [`Links`] is that state, kept for the whole mailbox
//! ([`crate::orders::Order::Links`]) and extended with the keys of the new messages only.
//! An expunge (a message gone from the middle) makes the next THREAD start it again.
//!
//! Steps 2 to 6 see the whole forest (new mail can merge threads anywhere), so they run each
//! time, in time linear in the messages plus the sorts: a dummy's pruning (step 3) is the
//! nearest message ancestor of each message, found once per node, and children are kept in
//! one array per level rather than one list per node.
//!
//! Message-IDs and base subjects are compared by 64-bit hashes, so the kept state holds no
//! strings: two different IDs among the 130,000 of a large mailbox share a hash with a
//! probability around 10⁻⁹.

use ahash::AHashMap as HashMap;
use std::time::Instant;

use mailkeep_mime::sortkeys::Refs;
use mailkeep_store::MessageMeta;

use super::super::sort::check_budget;
use crate::error::CmdResult;
use crate::orders::Token;

/// No node or message.
const NONE: u32 = u32::MAX;

/// The hash of a Message-ID or of a base subject's collation key.
fn hash(s: &str) -> u64 {
    // Fixed seeds: hashes are compared within one process only.
    static STATE: std::sync::LazyLock<ahash::RandomState> = std::sync::LazyLock::new(|| {
        ahash::RandomState::with_seeds(
            0x6d61_696c_6b65_6570,
            0x7468_7265_6164_7321,
            0x5246_4335_3235_3633,
            0x7265_6665_7265_6e63,
        )
    });
    STATE.hash_one(s)
}

/// One message as threading sees it (its sort keys).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Message<'a> {
    /// UID (or message number) as answered.
    pub(crate) num: u32,
    pub(crate) sent: i64,
    /// i;unicode-casemap key of the base subject ("" for none).
    pub(crate) subject: &'a str,
    /// The base subject extraction removed a reply or forward marker.
    pub(crate) reply: bool,
    pub(crate) id: Option<&'a str>,
    pub(crate) refs: Refs<'a>,
}

/// REFERENCES step 1 over some messages, in the order they were added (sequence order).
/// Messages are numbered from 0 in that order; nodes are the messages and the dummies made
/// for Message-IDs referenced but not (yet) present.
#[derive(Clone, Debug, Default)]
pub(crate) struct Links {
    /// Per message: UID as answered, sent date, base subject hash (0: no subject), reply.
    nums: Vec<u32>,
    sent: Vec<i64>,
    subject: Vec<u64>,
    reply: Vec<bool>,
    /// Per node: its message (`NONE` for a dummy), parent (`NONE` for none), and how many
    /// children it has.
    node_msg: Vec<u32>,
    parent: Vec<u32>,
    kids: Vec<u32>,
    /// Node by Message-ID hash.
    by_id: HashMap<u64, u32>,
}

impl Links {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Links {
            nums: Vec::with_capacity(n),
            sent: Vec::with_capacity(n),
            subject: Vec::with_capacity(n),
            reply: Vec::with_capacity(n),
            node_msg: Vec::with_capacity(n + n / 4),
            parent: Vec::with_capacity(n + n / 4),
            kids: Vec::with_capacity(n + n / 4),
            by_id: HashMap::with_capacity(n + n / 4),
        }
    }

    /// Messages added so far.
    pub(crate) fn len(&self) -> usize {
        self.nums.len()
    }

    /// Whether these are the first messages of `view`, in order (no expunge since).
    pub(crate) fn leads(&self, view: &[MessageMeta]) -> bool {
        self.len() <= view.len() && self.nums.iter().zip(view).all(|(&u, m)| u == m.uid)
    }

    /// Message `m`'s base subject hash (0: no subject) and sent date.
    pub(crate) fn subject(&self, m: usize) -> u64 {
        self.subject[m]
    }

    pub(crate) fn sent(&self, m: usize) -> i64 {
        self.sent[m]
    }

    /// Memory held, roughly (for the cache's bound).
    pub(crate) fn bytes(&self) -> usize {
        self.nums.capacity() * 4
            + self.sent.capacity() * 8
            + self.subject.capacity() * 8
            + self.reply.capacity()
            + self.node_msg.capacity() * 12
            + self.by_id.capacity() * 17
    }

    fn add_node(&mut self, msg: u32) -> u32 {
        self.node_msg.push(msg);
        self.parent.push(NONE);
        self.kids.push(0);
        (self.node_msg.len() - 1) as u32
    }

    fn is_dummy(&self, n: u32) -> bool {
        self.node_msg[n as usize] == NONE
    }

    /// Is `a` the same node as `b` or one of its ancestors?
    fn is_ancestor_or_self(&self, a: u32, b: u32) -> bool {
        // A node without children is nobody's ancestor: no walk (keeps a long chain linear).
        if a != b && self.kids[a as usize] == 0 {
            return false;
        }
        let mut cur = b;
        while cur != NONE {
            if cur == a {
                return true;
            }
            cur = self.parent[cur as usize];
        }
        false
    }

    fn link(&mut self, parent: u32, child: u32) {
        self.parent[child as usize] = parent;
        self.kids[parent as usize] += 1;
    }

    fn unlink(&mut self, child: u32) {
        let p = std::mem::replace(&mut self.parent[child as usize], NONE);
        if p != NONE {
            self.kids[p as usize] -= 1;
        }
    }

    /// Step 1 for `messages`, added after those already here.
    pub(crate) fn extend<'a>(
        &mut self,
        messages: impl IntoIterator<Item = Message<'a>>,
        deadline: Instant,
    ) -> CmdResult<()> {
        // The message (counted from 1) whose references last reached each node: a reference
        // listed twice is skipped without walking its chain again.
        let mut seen: Vec<u32> = Vec::new();
        let mut steps = 0usize;
        for msg in messages {
            let m = self.nums.len() as u32;
            if m % 256 == 255 {
                check_budget(deadline)?;
            }
            self.nums.push(msg.num);
            self.sent.push(msg.sent);
            self.subject.push(match msg.subject {
                "" => 0,
                s => hash(s).max(1),
            });
            self.reply.push(msg.reply);
            let node = match msg.id.map(hash) {
                Some(id) => match self.by_id.get(&id).copied() {
                    // A dummy made for an earlier reference: this message fills it.
                    Some(n) if self.is_dummy(n) => {
                        self.node_msg[n as usize] = m;
                        n
                    }
                    // A duplicate ID: this message gets a unique one.
                    Some(_) => self.add_node(m),
                    None => {
                        let n = self.add_node(m);
                        self.by_id.insert(id, n);
                        n
                    }
                },
                None => self.add_node(m),
            };
            let mut prev = NONE;
            let stamp = m + 1;
            for id in msg.refs.iter() {
                steps += 1;
                if steps.is_multiple_of(256) {
                    check_budget(deadline)?;
                }
                let id = hash(id);
                let cur = match self.by_id.get(&id) {
                    Some(&n) => n,
                    None => {
                        let n = self.add_node(NONE);
                        self.by_id.insert(id, n);
                        n
                    }
                };
                // An ID listed twice adds no link but could make the loop checks below walk
                // the same chain again and again.
                if seen.len() <= cur as usize {
                    seen.resize(self.node_msg.len(), 0);
                }
                if std::mem::replace(&mut seen[cur as usize], stamp) == stamp {
                    continue;
                }
                // (1.A) Keep an existing parent; never make a loop.
                if prev != NONE
                    && self.parent[cur as usize] == NONE
                    && !self.is_ancestor_or_self(cur, prev)
                {
                    self.link(prev, cur);
                }
                prev = cur;
            }
            // (1.B) The last reference is the parent, replacing any parent set before.
            self.unlink(node);
            if prev != NONE && !self.is_ancestor_or_self(node, prev) {
                self.link(prev, node);
            }
        }
        Ok(())
    }

    /// Steps 2 to 6: the threads, REFERENCES's (`by_subject`) or REFS's (no subject
    /// grouping, threads by their newest message), as THREAD's answer.
    pub(crate) fn thread(&self, by_subject: bool, deadline: Instant) -> CmdResult<Vec<Token>> {
        let mut f = self.pruned();
        check_budget(deadline)?;
        if by_subject {
            f.group_by_subject(self);
        }
        f.sort(self);
        if !by_subject {
            f.sort_roots_by_newest(self);
        }
        Ok(f.tokens(self))
    }

    /// The (sent date, message number) a message sorts by.
    fn date(&self, m: u32) -> (i64, u32) {
        (self.sent[m as usize], m)
    }

    /// Steps 2 to 4: the forest of messages after the dummies are pruned, roots by date.
    fn pruned(&self) -> Forest {
        let nodes = self.node_msg.len();
        let msgs = self.nums.len();
        // (3) A node's nearest ancestor that is a message (`NONE`: none, only dummies up
        // to its root), and its root; found once per node, from the root down.
        const UNSET: u32 = NONE - 1;
        let mut anc = vec![UNSET; nodes];
        let mut root = vec![NONE; nodes];
        let mut path = Vec::new();
        for start in 0..nodes as u32 {
            let mut cur = start;
            while cur != NONE && anc[cur as usize] == UNSET {
                path.push(cur);
                cur = self.parent[cur as usize];
            }
            while let Some(x) = path.pop() {
                let p = self.parent[x as usize];
                if p == NONE {
                    anc[x as usize] = NONE;
                    root[x as usize] = x;
                } else {
                    anc[x as usize] = if self.is_dummy(p) { anc[p as usize] } else { p };
                    root[x as usize] = root[p as usize];
                }
            }
        }
        // A message's parent is its nearest message ancestor. The others are at the top:
        // roots themselves, or under a dummy root (dummy, message), gathered below.
        let mut parent = vec![NONE; msgs];
        let mut count = vec![0u32; msgs + 1];
        let mut roots = Vec::new();
        let mut under_dummy: Vec<(u32, u32)> = Vec::new();
        for n in 0..nodes {
            let m = self.node_msg[n];
            if m == NONE {
                continue;
            }
            match anc[n] {
                NONE if root[n] == n as u32 => roots.push(Item::Msg(m)),
                NONE => under_dummy.push((root[n], m)),
                a => {
                    let p = self.node_msg[a as usize];
                    parent[m as usize] = p;
                    count[p as usize] += 1;
                }
            }
        }
        // Children of each message, in one array, each set by date (step 6 for them).
        let mut start = Vec::with_capacity(msgs + 1);
        let mut at = 0u32;
        for &c in &count {
            start.push(at);
            at += c;
        }
        let mut fill = start.clone();
        let mut children = vec![0u32; at as usize];
        for (m, &p) in parent.iter().enumerate() {
            if p != NONE {
                children[fill[p as usize] as usize] = m as u32;
                fill[p as usize] += 1;
            }
        }
        for m in 0..msgs {
            let set = &mut children[start[m] as usize..start[m + 1] as usize];
            if set.len() > 1 {
                set.sort_unstable_by_key(|&c| self.date(c));
            }
        }
        // A dummy root keeps its top messages if it has two or more; one alone is promoted.
        under_dummy.sort_unstable_by_key(|&(d, m)| (d, self.date(m)));
        let mut dummies = Vec::new();
        for group in under_dummy.chunk_by(|a, b| a.0 == b.0) {
            if let [(_, m)] = group {
                roots.push(Item::Msg(*m));
            } else {
                roots.push(Item::Dummy(dummies.len() as u32));
                dummies.push(group.iter().map(|&(_, m)| Item::Msg(m)).collect());
            }
        }
        let mut f = Forest {
            start,
            children,
            extra: HashMap::new(),
            dummies,
            roots,
        };
        // (4) The top level by date.
        f.sort_roots(self);
        f
    }
}

/// A node of the pruned forest: a message, or a dummy (index into [`Forest::dummies`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Item {
    Msg(u32),
    Dummy(u32),
}

/// Which nodes step 5 placed under another (or merged away).
struct Placed {
    msgs: Vec<bool>,
    dummies: Vec<bool>,
}

impl Placed {
    fn get(&self, item: Item) -> bool {
        match item {
            Item::Msg(m) => self.msgs[m as usize],
            Item::Dummy(d) => self.dummies[d as usize],
        }
    }

    fn set(&mut self, item: Item) {
        match item {
            Item::Msg(m) => self.msgs[m as usize] = true,
            Item::Dummy(d) => self.dummies[d as usize] = true,
        }
    }
}

/// Message `m`'s children from step 3, in `children[start[m]..start[m + 1]]`.
fn own_kids<'a>(start: &[u32], children: &'a [u32], m: u32) -> &'a [u32] {
    &children[start[m as usize] as usize..start[m as usize + 1] as usize]
}

/// The threads after step 3: each message's children in `children[start[m]..start[m + 1]]`
/// (by date), children linked to a message by step 5 in `extra`, each dummy's children.
struct Forest {
    start: Vec<u32>,
    children: Vec<u32>,
    extra: HashMap<u32, Vec<u32>>,
    dummies: Vec<Vec<Item>>,
    roots: Vec<Item>,
}

impl Forest {
    /// The date a node sorts by: a dummy's first child's (children sorted first).
    fn date(&self, l: &Links, item: Item) -> (i64, u32) {
        let mut item = item;
        loop {
            match item {
                Item::Msg(m) => return l.date(m),
                Item::Dummy(d) => match self.dummies[d as usize].first() {
                    Some(&c) => item = c,
                    None => return (i64::MIN, NONE),
                },
            }
        }
    }

    /// The roots by date. Each root's date is read once, not at every comparison: random
    /// reads into the per-message arrays are what a sort of 25,000 roots spends its time on.
    fn sort_roots(&mut self, l: &Links) {
        let mut keyed: Vec<((i64, u32), Item)> =
            self.roots.iter().map(|&r| (self.date(l, r), r)).collect();
        keyed.sort_unstable_by_key(|&(date, _)| date);
        self.roots = keyed.into_iter().map(|(_, r)| r).collect();
    }

    fn kids(&self, m: u32) -> &[u32] {
        match self.extra.get(&m) {
            Some(v) => v,
            None => own_kids(&self.start, &self.children, m),
        }
    }

    /// (5) Threads whose first message has the same base subject are gathered (RFC 5256 §3
    /// REFERENCES step 5, A to C).
    fn group_by_subject(&mut self, l: &Links) {
        let subject = |f: &Forest, r: Item| -> Option<u64> {
            match r {
                Item::Msg(m) => Some(m),
                Item::Dummy(d) => match f.dummies[d as usize].first() {
                    Some(&Item::Msg(c)) => Some(c),
                    _ => None,
                },
            }
            .map(|m| l.subject[m as usize])
            .filter(|&s| s != 0)
        };
        let is_reply = |r: Item| matches!(r, Item::Msg(m) if l.reply[m as usize]);
        let is_dummy = |r: Item| matches!(r, Item::Dummy(_));
        // Each root's subject, read once.
        let subjects: Vec<Option<u64>> = self.roots.iter().map(|&r| subject(self, r)).collect();
        let mut table: HashMap<u64, Item> = HashMap::with_capacity(self.roots.len());
        for (&r, &s) in self.roots.iter().zip(&subjects) {
            let Some(s) = s else {
                continue;
            };
            match table.get(&s).copied() {
                None => {
                    table.insert(s, r);
                }
                Some(t) => {
                    if !is_dummy(t) && (is_dummy(r) || (is_reply(t) && !is_reply(r))) {
                        table.insert(s, r);
                    }
                }
            }
        }
        // Roots that were gathered under another, or merged into another dummy.
        let mut placed = Placed {
            msgs: vec![false; l.len()],
            dummies: vec![false; self.dummies.len()],
        };
        let roots = self.roots.clone();
        for (&r, &s) in roots.iter().zip(&subjects) {
            if placed.get(r) {
                continue;
            }
            let Some(s) = s else {
                continue;
            };
            let Some(&t) = table.get(&s) else {
                continue;
            };
            if t == r {
                continue;
            }
            match (t, r) {
                (Item::Dummy(td), Item::Dummy(rd)) => {
                    let moved = std::mem::take(&mut self.dummies[rd as usize]);
                    self.dummies[td as usize].extend(moved);
                }
                (Item::Dummy(td), _) => self.dummies[td as usize].push(r),
                (Item::Msg(tm), Item::Msg(rm)) if is_reply(r) && !is_reply(t) => {
                    // A message's first linked child starts its list from its own children.
                    let (start, children) = (&self.start, &self.children);
                    self.extra
                        .entry(tm)
                        .or_insert_with(|| own_kids(start, children, tm).to_vec())
                        .push(rm);
                }
                _ => {
                    let d = Item::Dummy(self.dummies.len() as u32);
                    self.dummies.push(vec![t, r]);
                    placed.dummies.push(false);
                    placed.set(t);
                    table.insert(s, d);
                    self.roots.push(d);
                }
            }
            placed.set(r);
        }
        let mut roots = std::mem::take(&mut self.roots);
        roots.retain(|&r| !placed.get(r));
        self.roots = roots;
    }

    /// (6) Every sibling set by date (messages' own children are sorted already), dummies
    /// before the dummies holding them, then the roots.
    fn sort(&mut self, l: &Links) {
        let mut extra = std::mem::take(&mut self.extra);
        for kids in extra.values_mut() {
            kids.sort_unstable_by_key(|&c| l.date(c));
        }
        self.extra = extra;
        // A dummy's dummy children were made before it: in index order, they are sorted first.
        for d in 0..self.dummies.len() {
            let mut kids = std::mem::take(&mut self.dummies[d]);
            kids.sort_by_key(|&c| self.date(l, c));
            self.dummies[d] = kids;
        }
        self.sort_roots(l);
    }

    /// REFS: the threads by the sent date of their newest message (then as before).
    fn sort_roots_by_newest(&mut self, l: &Links) {
        let mut newest = Vec::with_capacity(self.roots.len());
        let mut stack = Vec::new();
        for &r in &self.roots {
            let mut max = i64::MIN;
            stack.push(r);
            while let Some(item) = stack.pop() {
                match item {
                    Item::Msg(m) => {
                        max = max.max(l.sent[m as usize]);
                        stack.extend(self.kids(m).iter().map(|&c| Item::Msg(c)));
                    }
                    Item::Dummy(d) => stack.extend(&self.dummies[d as usize]),
                }
            }
            newest.push((max, self.date(l, r), r));
        }
        newest.sort_unstable_by_key(|&(max, date, _)| (max, date));
        self.roots = newest.into_iter().map(|(_, _, r)| r).collect();
    }

    /// `(2)(3 6 (4 23)(44 7 96))`: RFC 5256 §4 `thread-list`s, one per root.
    fn tokens(&self, l: &Links) -> Vec<Token> {
        enum Op {
            Open,
            Close,
            Space,
            Node(Item),
        }
        let mut out = Vec::with_capacity(l.len() * 3);
        let mut stack: Vec<Op> = Vec::new();
        for &r in self.roots.iter().rev() {
            stack.extend([Op::Close, Op::Node(r), Op::Open]);
        }
        let nested = |stack: &mut Vec<Op>, kids: &mut dyn DoubleEndedIterator<Item = Item>| {
            for c in kids.rev() {
                stack.extend([Op::Close, Op::Node(c), Op::Open]);
            }
        };
        while let Some(op) = stack.pop() {
            match op {
                Op::Open => out.push(Token::Open),
                Op::Close => out.push(Token::Close),
                Op::Space => out.push(Token::Space),
                Op::Node(Item::Dummy(d)) => {
                    nested(&mut stack, &mut self.dummies[d as usize].iter().copied())
                }
                Op::Node(Item::Msg(m)) => {
                    out.push(Token::Uid(l.nums[m as usize]));
                    match self.kids(m) {
                        [] => {}
                        &[c] => stack.extend([Op::Node(Item::Msg(c)), Op::Space]),
                        kids => {
                            nested(&mut stack, &mut kids.iter().map(|&c| Item::Msg(c)));
                            stack.push(Op::Space);
                        }
                    }
                }
            }
        }
        out
    }
}
