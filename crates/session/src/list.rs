//! LIST (RFC 9051 §6.3.9, LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819, SPECIAL-USE RFC 6154)
//! and LSUB (RFC 3501 §6.3.9).

use std::collections::HashMap;

use mailkeep_proto::write::{self, Code};
use mailkeep_proto::{ListCommand, MailboxName};
use mailkeep_store::{Mailbox, User};

use crate::error::{CmdError, CmdResult};
use crate::selected::SelectedMailbox;
use crate::{Inner, Outcome, names, status_cmd};

/// One name LIST may return: an existing mailbox, a parent that only exists because it has
/// children, or (with SUBSCRIBED) a subscribed name.
#[derive(Default)]
struct Candidate<'a> {
    mailbox: Option<&'a Mailbox>,
    subscribed: bool,
    has_children: bool,
    /// Some descendant matches the selection criteria but not the pattern, so it is not
    /// returned itself (RECURSIVEMATCH's CHILDINFO, RFC 5258 §3.5).
    child_selected: bool,
    /// The name matches a pattern, once that has been tested.
    matched: Option<bool>,
}

/// Candidates matched between two yields to the runtime: a LIST over thousands of names
/// must not hold up the other sessions on the same worker.
const YIELD_EVERY: usize = 256;

pub(crate) async fn list(
    inner: &Inner,
    user: &User,
    sel: Option<&SelectedMailbox>,
    cmd: &ListCommand,
    out: &mut Vec<u8>,
) -> CmdResult<Outcome> {
    let selecting = cmd.select_subscribed || cmd.select_special_use;
    if cmd.select_recursive_match && !selecting {
        // RFC 5258 §3: RECURSIVEMATCH needs another selection option.
        return Err(CmdError::Bad(
            "RECURSIVEMATCH requires a selection option.".into(),
        ));
    }
    let enabled = &inner.enabled;
    let reference = names::decode_pattern(&cmd.reference, enabled)?;
    if !selecting && cmd.patterns.len() == 1 && cmd.patterns[0].is_empty() {
        // RFC 9051 §6.3.9: an empty pattern asks for the delimiter and the root name. The
        // root is the reference up to its first delimiter, as in RFC 3501's examples
        // ("/usr/staff/jones" -> "/") and Dovecot; "" when the reference has none.
        let root = reference.find(names::SEP).map_or("", |i| &reference[..=i]);
        out.extend_from_slice(b"* LIST (\\Noselect) \"/\" ");
        if root.is_empty() {
            out.extend_from_slice(b"\"\"");
        } else {
            write::mailbox(out, &names::encode(root, enabled));
        }
        out.extend_from_slice(b"\r\n");
        return Ok(Outcome::ok("List completed."));
    }
    let patterns = decode_patterns(&reference, &cmd.patterns, enabled)?;
    let mailboxes = inner.store.list_mailboxes(user.id).await?;
    let want_subs = cmd.select_subscribed || cmd.return_subscribed;
    let subscriptions = if want_subs {
        inner.store.subscriptions(user.id).await?
    } else {
        Vec::new()
    };

    // Names borrow from `mailboxes` and `subscriptions` (a parent is a prefix of its child):
    // nothing is copied per level.
    let mut cands: HashMap<&str, Candidate<'_>> = HashMap::new();
    for m in &mailboxes {
        cands.entry(m.name.as_str()).or_default().mailbox = Some(m);
        for p in names::parents(&m.name) {
            cands.entry(p).or_default().has_children = true;
        }
    }
    for s in &subscriptions {
        cands.entry(s.as_str()).or_default().subscribed = true;
    }
    // Which names meet the selection criteria, for RECURSIVEMATCH's CHILDINFO.
    let meets = |c: &Candidate<'_>| {
        (!cmd.select_subscribed || c.subscribed)
            && (!cmd.select_special_use || c.mailbox.is_some_and(|m| m.special_use.is_some()))
    };
    if cmd.select_recursive_match {
        // RFC 5258 §3.5: CHILDINFO only for a parent with a selected descendant that is not
        // returned itself (it does not match the pattern); otherwise it is redundant.
        let mut hidden: Vec<&str> = Vec::new();
        for (i, (name, c)) in cands.iter_mut().enumerate() {
            if i % YIELD_EVERY == YIELD_EVERY - 1 {
                tokio::task::yield_now().await;
            }
            if name.contains(names::SEP) && meets(c) {
                let matched = matches_any(&patterns, name);
                c.matched = Some(matched);
                if !matched {
                    hidden.push(name);
                }
            }
        }
        for n in hidden {
            for p in names::parents(n) {
                cands.entry(p).or_default().child_selected = true;
            }
        }
    }

    let rev1_basic = !cmd.extended && !enabled.imap4rev2;
    let mut order: Vec<&str> = Vec::new();
    for (i, (name, c)) in cands.iter().enumerate() {
        if i % YIELD_EVERY == YIELD_EVERY - 1 {
            tokio::task::yield_now().await;
        }
        let childinfo = cmd.select_recursive_match && c.child_selected;
        let include = if selecting {
            meets(c) || childinfo
        } else {
            // Plain LIST: existing mailboxes and the parents they imply.
            c.mailbox.is_some() || c.has_children
        };
        if include && c.matched.unwrap_or_else(|| matches_any(&patterns, name)) {
            order.push(name);
        }
    }
    order.sort_unstable_by_key(|n| (!names::is_inbox(n), *n));
    for name in order {
        let c = &cands[name];
        let childinfo = cmd.select_recursive_match && c.child_selected;
        let mut attrs: Vec<&str> = Vec::new();
        match c.mailbox {
            None if rev1_basic => attrs.push("\\Noselect"),
            None => attrs.push("\\NonExistent"),
            Some(_) => {}
        }
        attrs.push(if c.has_children {
            "\\HasChildren"
        } else {
            "\\HasNoChildren"
        });
        if c.subscribed && want_subs {
            attrs.push("\\Subscribed");
        }
        if let Some(su) = c.mailbox.and_then(|m| m.special_use.as_deref()) {
            attrs.push(su);
        }
        out.extend_from_slice(format!("* LIST ({}) \"/\" ", attrs.join(" ")).as_bytes());
        write::mailbox(out, &names::encode(name, enabled));
        if childinfo {
            let what = if cmd.select_subscribed {
                "\"SUBSCRIBED\""
            } else {
                "\"SPECIAL-USE\""
            };
            out.extend_from_slice(format!(" (\"CHILDINFO\" ({what}))").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if let (Some(items), Some(m)) = (&cmd.return_status, c.mailbox) {
            // RFC 5819: a STATUS after the LIST of each selectable mailbox.
            status_cmd::write_status(inner, sel, m, items, out).await?;
        }
    }
    Ok(Outcome::ok("List completed."))
}

/// The `* LIST` line of a mailbox being selected (IMAP4rev2, RFC 9051 §6.3.2), with the same
/// attributes a plain LIST gives it.
pub(crate) async fn write_selected(
    inner: &Inner,
    user: &User,
    mbox: &Mailbox,
    out: &mut Vec<u8>,
) -> CmdResult<()> {
    let all = inner.store.list_mailboxes(user.id).await?;
    let children = all.iter().any(|m| names::is_child_of(&m.name, &mbox.name));
    let mut attrs = vec![if children {
        "\\HasChildren"
    } else {
        "\\HasNoChildren"
    }];
    if let Some(su) = mbox.special_use.as_deref() {
        attrs.push(su);
    }
    out.extend_from_slice(format!("* LIST ({}) \"/\" ", attrs.join(" ")).as_bytes());
    write::mailbox(out, &names::encode(&mbox.name, &inner.enabled));
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// LSUB (RFC 3501 §6.3.9): subscribed names; a parent that `%` reaches but that is not itself
/// subscribed is returned with \Noselect.
pub(crate) async fn lsub(
    inner: &Inner,
    user: &User,
    reference: &MailboxName,
    pattern: &MailboxName,
    out: &mut Vec<u8>,
) -> CmdResult<Outcome> {
    let enabled = &inner.enabled;
    let reference = names::decode_pattern(reference, enabled)?;
    let patterns = decode_patterns(&reference, std::slice::from_ref(pattern), enabled)?;
    let subs = inner.store.subscriptions(user.id).await?;
    // name -> (subscribed and listed, a subscribed descendant is listed itself)
    let mut cands: HashMap<&str, (Option<bool>, bool)> = HashMap::new();
    for (i, s) in subs.iter().enumerate() {
        if i % YIELD_EVERY == YIELD_EVERY - 1 {
            tokio::task::yield_now().await;
        }
        let listed = matches_any(&patterns, s);
        cands.entry(s.as_str()).or_default().0 = Some(listed);
        for p in names::parents(s) {
            cands.entry(p).or_default().1 |= listed;
        }
    }
    let mut order: Vec<(&str, bool)> = Vec::new();
    for (i, (name, &(subscribed, child_listed))) in cands.iter().enumerate() {
        if i % YIELD_EVERY == YIELD_EVERY - 1 {
            tokio::task::yield_now().await;
        }
        match subscribed {
            Some(listed) => {
                if listed {
                    order.push((name, true));
                }
            }
            None if child_listed => {}
            None => {
                if matches_any(&patterns, name) {
                    order.push((name, false));
                }
            }
        }
    }
    order.sort_unstable_by_key(|(n, _)| (!names::is_inbox(n), *n));
    for (name, subscribed) in order {
        out.extend_from_slice(if subscribed {
            b"* LSUB () \"/\" "
        } else {
            b"* LSUB (\\Noselect) \"/\" "
        });
        write::mailbox(out, &names::encode(name, enabled));
        out.extend_from_slice(b"\r\n");
    }
    Ok(Outcome::ok("Lsub completed."))
}

/// Longest LIST/LSUB pattern (reference included), in bytes: a little more than the longest
/// name, which is all a pattern can usefully match.
const MAX_PATTERN_LEN: usize = names::MAX_NAME_LEN + 24;

/// Most pattern bytes in one LIST (`LIST "" (p1 p2 ...)`): every name is matched against each.
const MAX_PATTERNS_LEN: usize = 4 * MAX_PATTERN_LEN;

fn pattern_limit() -> CmdError {
    CmdError::No(Some(Code::Limit), "LIST pattern too long.".into())
}

fn matches_any(patterns: &[Pattern], name: &str) -> bool {
    patterns.iter().any(|p| p.matches(name))
}

fn decode_patterns(
    reference: &str,
    raw: &[MailboxName],
    enabled: &crate::enabled::Enabled,
) -> CmdResult<Vec<Pattern>> {
    let mut total = 0;
    raw.iter()
        .map(|p| {
            // Patterns are not names: no INBOX normalization here, [`Pattern`] handles it;
            // and bytes that are not modified UTF-7 only match nothing (RFC 9051 §6.3.9).
            let p = names::decode_pattern(p, enabled)?;
            let joined = join(reference, &p);
            total += joined.len();
            if joined.len() > MAX_PATTERN_LEN || total > MAX_PATTERNS_LEN {
                return Err(pattern_limit());
            }
            Ok(Pattern::new(&joined))
        })
        .collect()
}

/// Reference + pattern (RFC 9051 §6.3.9 leaves the details to the server: plain
/// concatenation, one separator where both sides bring one).
fn join(reference: &str, pattern: &str) -> String {
    if reference.ends_with(names::SEP) && pattern.starts_with(names::SEP) {
        format!("{reference}{}", &pattern[1..])
    } else {
        format!("{reference}{pattern}")
    }
}

/// A LIST pattern: `*` matches anything, `%` anything but the separator (RFC 9051 §6.3.9).
struct Pattern {
    text: Glob,
    /// The same with a case-insensitive `inbox` prefix spelled `INBOX`, for names under INBOX.
    inbox: Option<Glob>,
}

impl Pattern {
    fn new(p: &str) -> Pattern {
        let b = p.as_bytes();
        let inbox = (b.len() >= 5 && b[..5].eq_ignore_ascii_case(b"INBOX") && &b[..5] != b"INBOX")
            .then(|| {
                let mut v = b.to_vec();
                v[..5].copy_from_slice(b"INBOX");
                Glob::new(&v)
            });
        Pattern {
            text: Glob::new(b),
            inbox,
        }
    }

    fn matches(&self, name: &str) -> bool {
        let n = name.as_bytes();
        let under_inbox = names::is_inbox(name) || name.starts_with("INBOX/");
        self.text.matches(n) || (under_inbox && self.inbox.as_ref().is_some_and(|p| p.matches(n)))
    }
}

/// A wildcard pattern run as a bit-parallel NFA (shift-and, with self-loops for `*` and `%`):
/// one pass over the name, each byte costing a few word operations per 64 pattern bytes, so
/// `O(name × pattern / 64)` whatever the mix of wildcards, without backtracking or recursion.
///
/// State `i` means "the first `i` pattern items matched"; a run of wildcards is one item (`*`
/// if it holds a `*`, else `%`), so a wildcard is never followed by another.
struct Glob {
    /// Items: a literal byte, or `WILD_ANY` / `WILD_LEVEL`.
    len: usize,
    words: usize,
    /// Per byte value: the states whose next item is that literal byte (`256 × words`).
    lit: Vec<u64>,
    /// States whose next item is `*` (stays on any byte) / `%` (stays on any byte but `/`).
    any: Vec<u64>,
    level: Vec<u64>,
}

impl Glob {
    fn new(p: &[u8]) -> Glob {
        #[derive(PartialEq)]
        enum Item {
            Lit(u8),
            Any,
            Level,
        }
        let mut items: Vec<Item> = Vec::with_capacity(p.len());
        for &b in p {
            let item = match b {
                b'*' => Item::Any,
                b'%' => Item::Level,
                b => Item::Lit(b),
            };
            match (items.last_mut(), &item) {
                (Some(last @ Item::Level), Item::Any) => *last = Item::Any,
                (Some(Item::Any | Item::Level), Item::Any | Item::Level) => {}
                _ => items.push(item),
            }
        }
        let len = items.len();
        let words = len / 64 + 1;
        let mut g = Glob {
            len,
            words,
            lit: vec![0; 256 * words],
            any: vec![0; words],
            level: vec![0; words],
        };
        for (i, item) in items.iter().enumerate() {
            let (w, bit) = (i / 64, 1u64 << (i % 64));
            match item {
                Item::Lit(b) => g.lit[*b as usize * words + w] |= bit,
                Item::Any => g.any[w] |= bit,
                Item::Level => g.level[w] |= bit,
            }
        }
        g
    }

    /// Add state `i + 1` for every state `i` before a wildcard (it may match nothing).
    fn close(&self, row: &mut [u64]) {
        let mut carry = 0;
        for ((r, any), level) in row.iter_mut().zip(&self.any).zip(&self.level) {
            let wild = *r & (any | level);
            let shifted = (wild << 1) | carry;
            carry = wild >> 63;
            *r |= shifted;
        }
    }

    fn matches(&self, name: &[u8]) -> bool {
        let words = self.words;
        let mut row = vec![0u64; words];
        row[0] = 1;
        self.close(&mut row);
        let mut next = vec![0u64; words];
        for &b in name {
            let lit = &self.lit[b as usize * words..(b as usize + 1) * words];
            let mut carry = 0;
            let mut alive = 0;
            for w in 0..words {
                let step = row[w] & lit[w];
                let mut v = (step << 1) | carry;
                carry = step >> 63;
                v |= row[w] & self.any[w];
                if b != b'/' {
                    v |= row[w] & self.level[w];
                }
                next[w] = v;
                alive |= v;
            }
            if alive == 0 {
                return false;
            }
            self.close(&mut next);
            std::mem::swap(&mut row, &mut next);
        }
        row[self.len / 64] & (1u64 << (self.len % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The obvious exponential matcher, as the reference.
    fn naive(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') => (0..=n.len()).any(|k| naive(&p[1..], &n[k..])),
            Some(b'%') => (0..=n.len())
                .take_while(|&k| !n[..k].contains(&b'/'))
                .any(|k| naive(&p[1..], &n[k..])),
            Some(c) => n.first() == Some(c) && naive(&p[1..], &n[1..]),
        }
    }

    #[test]
    fn glob_agrees_with_naive() {
        // Every pattern and name up to a few bytes over a small alphabet.
        let alphabet = [b'a', b'/', b'*', b'%'];
        let mut patterns: Vec<Vec<u8>> = vec![vec![]];
        for _ in 0..5 {
            let mut more = Vec::new();
            for p in &patterns {
                for &c in &alphabet {
                    let mut q = p.clone();
                    q.push(c);
                    more.push(q);
                }
            }
            patterns.extend(more);
            patterns.sort();
            patterns.dedup();
        }
        let names: Vec<Vec<u8>> = patterns
            .iter()
            .filter(|p| !p.contains(&b'*') && !p.contains(&b'%'))
            .cloned()
            .collect();
        for p in &patterns {
            let g = Glob::new(p);
            for n in &names {
                assert_eq!(g.matches(n), naive(p, n), "{:?} vs {:?}", p, n);
            }
        }
    }

    #[test]
    fn wildcards() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "a/b/c", true),
            ("%", "a", true),
            ("%", "a/b", false),
            ("a/%", "a/b", true),
            ("a/%", "a/b/c", false),
            ("a*", "a/b/c", true),
            ("a%c", "abc", true),
            ("a%c", "a/c", false),
            ("", "", true),
            ("", "a", false),
            ("inbox", "INBOX", true),
            ("Inbox/%", "INBOX/x", true),
            ("inboxes", "INBOXes", false),
            (
                "*%*%*%*%*%*%*%*%*%*%x",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
        ];
        for (p, n, want) in cases {
            assert_eq!(Pattern::new(p).matches(n), *want, "{p} vs {n}");
        }
        // Words boundaries of the bit-parallel matcher: patterns of 63..=130 items.
        for len in [62, 63, 64, 65, 127, 128, 129] {
            let name = "a".repeat(len);
            assert!(Pattern::new(&name).matches(&name), "{len}");
            assert!(
                Pattern::new(&format!("{}%", &name[1..])).matches(&name),
                "{len}"
            );
            assert!(!Pattern::new(&format!("{name}b")).matches(&name), "{len}");
            assert!(Pattern::new(&format!("*{}*", &name[..len - 1])).matches(&name));
        }
        assert_eq!(join("a/", "/b"), "a/b");
        assert_eq!(join("a", "b"), "ab");
    }
}
