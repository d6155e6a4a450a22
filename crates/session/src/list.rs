//! LIST (RFC 9051 §6.3.9, LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819, SPECIAL-USE RFC 6154)
//! and LSUB (RFC 3501 §6.3.9).

use std::collections::BTreeMap;

use mailkeep_proto::{ListCommand, MailboxName, write};
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
    /// Some descendant matches the selection criteria (RECURSIVEMATCH, RFC 5258 §3.5).
    child_selected: bool,
}

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
    let reference = names::decode_raw(&cmd.reference, enabled)?;
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

    let mut cands: BTreeMap<String, Candidate<'_>> = BTreeMap::new();
    for m in &mailboxes {
        cands.entry(m.name.clone()).or_default().mailbox = Some(m);
        for p in names::parents(&m.name) {
            cands.entry(p.to_string()).or_default().has_children = true;
        }
    }
    for s in &subscriptions {
        cands.entry(s.clone()).or_default().subscribed = true;
    }
    // Which names meet the selection criteria, for RECURSIVEMATCH's CHILDINFO.
    let meets = |c: &Candidate<'_>| {
        (!cmd.select_subscribed || c.subscribed)
            && (!cmd.select_special_use || c.mailbox.is_some_and(|m| m.special_use.is_some()))
    };
    let selected_names: Vec<String> = cands
        .iter()
        .filter(|(_, c)| meets(c))
        .map(|(n, _)| n.clone())
        .collect();
    if cmd.select_recursive_match {
        for n in &selected_names {
            for p in names::parents(n) {
                cands.entry(p.to_string()).or_default().child_selected = true;
            }
        }
    }

    let rev1_basic = !cmd.extended && !enabled.imap4rev2;
    let mut order: Vec<&String> = cands.keys().collect();
    order.sort_by_key(|n| (!names::is_inbox(n), n.as_str()));
    for name in order {
        let c = &cands[name];
        if !patterns.iter().any(|p| p.matches(name)) {
            continue;
        }
        let childinfo = cmd.select_recursive_match && c.child_selected;
        let include = if selecting {
            meets(c) || childinfo
        } else {
            // Plain LIST: existing mailboxes and the parents they imply.
            c.mailbox.is_some() || c.has_children
        };
        if !include {
            continue;
        }
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
    let reference = names::decode_raw(reference, enabled)?;
    let patterns = decode_patterns(&reference, std::slice::from_ref(pattern), enabled)?;
    let subs = inner.store.subscriptions(user.id).await?;
    let mut cands: BTreeMap<String, bool> = BTreeMap::new();
    for s in &subs {
        cands.insert(s.clone(), true);
        for p in names::parents(s) {
            cands.entry(p.to_string()).or_insert(false);
        }
    }
    let mut order: Vec<(&String, &bool)> = cands.iter().collect();
    order.sort_by_key(|(n, _)| (!names::is_inbox(n), n.as_str()));
    for (name, subscribed) in order {
        if !patterns.iter().any(|p| p.matches(name)) {
            continue;
        }
        if !subscribed {
            let child_listed = subs
                .iter()
                .any(|s| names::is_child_of(s, name) && patterns.iter().any(|p| p.matches(s)));
            if child_listed {
                continue;
            }
        }
        out.extend_from_slice(if *subscribed {
            b"* LSUB () \"/\" "
        } else {
            b"* LSUB (\\Noselect) \"/\" "
        });
        write::mailbox(out, &names::encode(name, enabled));
        out.extend_from_slice(b"\r\n");
    }
    Ok(Outcome::ok("Lsub completed."))
}

fn decode_patterns(
    reference: &str,
    raw: &[MailboxName],
    enabled: &crate::enabled::Enabled,
) -> CmdResult<Vec<Pattern>> {
    raw.iter()
        .map(|p| {
            // Patterns are not names: no INBOX normalization here, [`Pattern`] handles it.
            let p = names::decode_raw(p, enabled)?;
            Ok(Pattern::new(&join(reference, &p)))
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
    text: Vec<u8>,
    /// The same with a case-insensitive `inbox` prefix spelled `INBOX`, for names under INBOX.
    inbox: Option<Vec<u8>>,
}

impl Pattern {
    fn new(p: &str) -> Pattern {
        let b = p.as_bytes();
        let inbox = (b.len() >= 5 && b[..5].eq_ignore_ascii_case(b"INBOX")).then(|| {
            let mut v = b.to_vec();
            v[..5].copy_from_slice(b"INBOX");
            v
        });
        Pattern {
            text: b.to_vec(),
            inbox,
        }
    }

    fn matches(&self, name: &str) -> bool {
        let n = name.as_bytes();
        let under_inbox = names::is_inbox(name) || name.starts_with("INBOX/");
        glob(&self.text, n) || (under_inbox && self.inbox.as_deref().is_some_and(|p| glob(p, n)))
    }
}

/// Wildcard match in O(pattern × name) (no backtracking blow-up on `*%*%*...`).
fn glob(p: &[u8], n: &[u8]) -> bool {
    // row[j]: p[..i] matches n[..j]
    let mut row = vec![false; n.len() + 1];
    row[0] = true;
    for &pc in p {
        let mut next = vec![false; n.len() + 1];
        match pc {
            b'*' | b'%' => {
                next[0] = row[0];
                for j in 1..=n.len() {
                    let extend = next[j - 1] && (pc == b'*' || n[j - 1] != b'/');
                    next[j] = row[j] || extend;
                }
            }
            c => {
                for j in 1..=n.len() {
                    next[j] = row[j - 1] && n[j - 1] == c;
                }
            }
        }
        row = next;
    }
    row[n.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(join("a/", "/b"), "a/b");
        assert_eq!(join("a", "b"), "ab");
    }
}
