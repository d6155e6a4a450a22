//! What the differential test and the differential fuzz target (`fuzz/fuzz_targets/oracle.rs`)
//! share: both parsers' views of a command reduced to what they must agree on.
#![allow(dead_code)]

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::CommandBody as Theirs;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet as TheirSet};
use mailkeep_proto::frame::{Fragment, literal_announcement};
use mailkeep_proto::{CommandBody as Ours, SeqNum, SeqRange, SequenceSet, parse_command};

/// Cut a command written with its literals inline into the fragments the server hands over.
pub fn fragments(mut input: &[u8]) -> Vec<Fragment> {
    let mut out = Vec::new();
    loop {
        let end = input
            .iter()
            .position(|&b| b == b'\n')
            .map_or(input.len(), |i| i + 1);
        let (line, rest) = input.split_at(end);
        out.push(Fragment::Line(line.to_vec()));
        input = rest;
        match literal_announcement(line) {
            Ok(Some(a)) if a.len as usize <= input.len() => {
                let (lit, rest) = input.split_at(a.len as usize);
                out.push(Fragment::Literal(lit.to_vec()));
                input = rest;
            }
            _ => return out,
        }
    }
}

/// What both parsers must agree on.
#[derive(Debug, PartialEq)]
pub struct Key {
    pub tag: String,
    pub name: &'static str,
    pub uid: bool,
    pub mailbox: Option<Vec<u8>>,
    /// Sequence set as sorted, merged inclusive ranges (`*` = u32::MAX): imap-codec normalizes.
    pub set: Option<Vec<(u32, u32)>>,
}

fn merge(mut ranges: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    ranges.sort();
    let mut out: Vec<(u32, u32)> = Vec::new();
    for (a, b) in ranges {
        match out.last_mut() {
            Some(last) if u64::from(a) <= u64::from(last.1) + 1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

fn our_set(set: &SequenceSet) -> Vec<(u32, u32)> {
    let n = |x: &SeqNum| match x {
        SeqNum::Value(v) => *v,
        SeqNum::Largest => u32::MAX,
    };
    let SequenceSet::Ranges(ranges) = set else {
        panic!("$ is not in imap-codec")
    };
    merge(
        ranges
            .iter()
            .map(|r| match r {
                SeqRange::Single(a) => (n(a), n(a)),
                SeqRange::Range(a, b) => (n(a).min(n(b)), n(a).max(n(b))),
            })
            .collect(),
    )
}

fn their_set(set: &TheirSet) -> Vec<(u32, u32)> {
    let n = |x: &SeqOrUid| match x {
        SeqOrUid::Value(v) => v.get(),
        SeqOrUid::Asterisk => u32::MAX,
    };
    merge(
        set.0
            .as_ref()
            .iter()
            .map(|s| match s {
                Sequence::Single(a) => (n(a), n(a)),
                Sequence::Range(a, b) => (n(a).min(n(b)), n(a).max(n(b))),
            })
            .collect(),
    )
}

fn their_mailbox(m: &Mailbox<'_>) -> Vec<u8> {
    match m {
        Mailbox::Inbox => b"INBOX".to_vec(),
        Mailbox::Other(o) => o.as_ref().to_vec(),
    }
}

/// imap-codec folds INBOX; compare it folded.
fn fold_inbox(m: &[u8]) -> Vec<u8> {
    if m.eq_ignore_ascii_case(b"INBOX") {
        b"INBOX".to_vec()
    } else {
        m.to_vec()
    }
}

pub fn ours(input: &[u8]) -> Result<Key, String> {
    let cmd = parse_command(&fragments(input)).map_err(|e| e.message)?;
    let (uid, mailbox, set) = match &cmd.body {
        Ours::Select { mailbox, .. }
        | Ours::Examine { mailbox, .. }
        | Ours::Create { mailbox, .. } => (false, Some(mailbox), None),
        Ours::Delete(m) | Ours::Subscribe(m) | Ours::Unsubscribe(m) => (false, Some(m), None),
        Ours::Rename { from, .. } => (false, Some(from), None),
        Ours::Status { mailbox, .. } | Ours::Append { mailbox, .. } => (false, Some(mailbox), None),
        Ours::List(l) => (false, Some(&l.reference), None),
        Ours::Lsub { reference, .. } => (false, Some(reference), None),
        Ours::UidExpunge(set) => (true, None, Some(set)),
        Ours::Search { uid, .. } => (*uid, None, None),
        Ours::Fetch { uid, set, .. } | Ours::Store { uid, set, .. } => (*uid, None, Some(set)),
        Ours::Copy { uid, set, mailbox } | Ours::Move { uid, set, mailbox } => {
            (*uid, Some(mailbox), Some(set))
        }
        _ => (false, None, None),
    };
    let name = match cmd.body {
        Ours::UidExpunge(_) => "EXPUNGE",
        ref b => b.name(),
    };
    Ok(Key {
        tag: cmd.tag,
        name,
        uid,
        mailbox: mailbox.map(|m| fold_inbox(m)),
        set: set.map(our_set),
    })
}

pub fn theirs(input: &[u8]) -> Result<Key, String> {
    let (rest, cmd) = CommandCodec::default()
        .decode(input)
        .map_err(|e| format!("{e:?}"))?;
    if !rest.is_empty() {
        return Err(format!("left over: {rest:?}"));
    }
    let (uid, mailbox, set) = match &cmd.body {
        Theirs::Select { mailbox, .. }
        | Theirs::Examine { mailbox, .. }
        | Theirs::Create { mailbox }
        | Theirs::Delete { mailbox }
        | Theirs::Subscribe { mailbox }
        | Theirs::Unsubscribe { mailbox }
        | Theirs::Status { mailbox, .. }
        | Theirs::Append { mailbox, .. } => (false, Some(their_mailbox(mailbox)), None),
        Theirs::Rename { from, .. } => (false, Some(their_mailbox(from)), None),
        Theirs::List { reference, .. } | Theirs::Lsub { reference, .. } => {
            (false, Some(their_mailbox(reference)), None)
        }
        Theirs::ExpungeUid { sequence_set } => (true, None, Some(their_set(sequence_set))),
        Theirs::Search { uid, .. } => (*uid, None, None),
        Theirs::Fetch {
            uid, sequence_set, ..
        }
        | Theirs::Store {
            uid, sequence_set, ..
        } => (*uid, None, Some(their_set(sequence_set))),
        Theirs::Copy {
            uid,
            sequence_set,
            mailbox,
        }
        | Theirs::Move {
            uid,
            sequence_set,
            mailbox,
        } => (
            *uid,
            Some(their_mailbox(mailbox)),
            Some(their_set(sequence_set)),
        ),
        _ => (false, None, None),
    };
    Ok(Key {
        tag: cmd.tag.inner().to_string(),
        name: cmd.body.name(),
        uid,
        mailbox,
        set,
    })
}
