//! QRESYNC (RFC 7162 §3.2): the SELECT/EXAMINE parameter, `VANISHED (EARLIER)` for it and for
//! `UID FETCH ... (CHANGEDSINCE n VANISHED)`.
//!
//! Expunged UIDs come from the store's tombstones while they are kept. Once a mailbox's
//! tombstones up to some modseq were pruned (`Changes::pruned_modseq`), a client asking about
//! an older modseq gets every UID of its range that is not present: RFC 7162 §3.2.6 allows
//! reporting UIDs the client never saw, and a client that drops them from its cache is right.

use mailkeep_proto::{QresyncParams, SeqNum, SeqRange, SequenceSet};
use mailkeep_store::{Changes, MailStore};

use crate::error::{CmdError, CmdResult};
use crate::flags;
use crate::selected::SelectedMailbox;

/// Inclusive UID ranges, ascending and disjoint.
type Ranges = Vec<(u32, u32)>;

/// The ranges of a sequence set, `*` standing for `largest`, sorted and merged.
fn ranges_of(set: &[SeqRange], largest: u32) -> Ranges {
    let val = |n: SeqNum| match n {
        SeqNum::Value(v) => v,
        SeqNum::Largest => largest,
    };
    let mut r: Ranges = set
        .iter()
        .map(|r| match *r {
            SeqRange::Single(n) => (val(n), val(n)),
            SeqRange::Range(a, b) => (val(a).min(val(b)), val(a).max(val(b))),
        })
        .collect();
    r.sort_unstable();
    let mut merged: Ranges = Vec::with_capacity(r.len());
    for (a, b) in r {
        match merged.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

/// `ranges` cut to `lo..=hi`.
fn clamp(ranges: &Ranges, lo: u32, hi: u32) -> Ranges {
    ranges
        .iter()
        .filter(|&&(a, b)| b >= lo && a <= hi)
        .map(|&(a, b)| (a.max(lo), b.min(hi)))
        .collect()
}

fn contains(ranges: &Ranges, uid: u32) -> bool {
    let i = ranges.partition_point(|&(_, b)| b < uid);
    ranges.get(i).is_some_and(|&(a, _)| a <= uid)
}

/// The UIDs of `within` that are not in `present` (ascending), as ranges: never one entry per
/// UID, since `within` may span four billion.
fn absent(within: &Ranges, present: impl Iterator<Item = u32>) -> Ranges {
    let mut out = Ranges::new();
    let mut present = present.peekable();
    for &(a, b) in within {
        let mut next = a;
        let mut done = false;
        while let Some(&u) = present.peek() {
            if u > b {
                break;
            }
            present.next();
            if u < next {
                continue;
            }
            if u > next {
                out.push((next, u - 1));
            }
            if u == b {
                // Also keeps `u + 1` from overflowing at u32::MAX.
                done = true;
                break;
            }
            next = u + 1;
        }
        if !done {
            out.push((next, b));
        }
    }
    out
}

fn write_ranges(out: &mut Vec<u8>, ranges: &Ranges) {
    for (i, &(a, b)) in ranges.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if a == b {
            out.extend_from_slice(a.to_string().as_bytes());
        } else {
            out.extend_from_slice(format!("{a}:{b}").as_bytes());
        }
    }
}

/// What vanished from `known` since `since`: exactly from the tombstones if they reach back
/// that far, else every UID of `known` below `uidnext` not in `present` (sorted view UIDs).
fn vanished(changes: &Changes, since: u64, known: &Ranges, present: &[u32]) -> Ranges {
    if since >= changes.pruned_modseq {
        let uids: Vec<u32> = changes
            .expunged
            .iter()
            .copied()
            .filter(|u| contains(known, *u))
            .collect();
        ranges_of(
            &uids
                .iter()
                .map(|u| SeqRange::Single(SeqNum::Value(*u)))
                .collect::<Vec<_>>(),
            0,
        )
    } else {
        absent(known, present.iter().copied())
    }
}

/// `* VANISHED (EARLIER) ...` for `UID FETCH set (...) (CHANGEDSINCE since VANISHED)`
/// (RFC 7162 §3.2.6), before any FETCH response.
pub(crate) async fn fetch_vanished(
    store: &dyn MailStore,
    sel: &SelectedMailbox,
    set: &SequenceSet,
    since: u64,
    out: &mut Vec<u8>,
) -> CmdResult<()> {
    let changes = store.changes_since(sel.mailbox.id, since).await?;
    let top = changes.uidnext.max(sel.mailbox.uidnext).saturating_sub(1);
    let known = match set {
        SequenceSet::Ranges(r) => clamp(&ranges_of(r, top), 1, top),
        SequenceSet::Saved => ranges_of(
            &sel.saved
                .iter()
                .map(|u| SeqRange::Single(SeqNum::Value(*u)))
                .collect::<Vec<_>>(),
            0,
        ),
    };
    let present: Vec<u32> = sel.messages.iter().map(|m| m.uid).collect();
    let gone = vanished(&changes, since, &known, &present);
    if !gone.is_empty() {
        out.extend_from_slice(b"* VANISHED (EARLIER) ");
        write_ranges(out, &gone);
        out.extend_from_slice(b"\r\n");
    }
    Ok(())
}

/// The syntactic checks RFC 7162 §3.2.5 wants before the mailbox is opened: `seq-match-data`
/// pairs a sequence set with a UID set of the same size, neither using `*` or `$`.
pub(crate) fn check_params(q: &QresyncParams) -> CmdResult<()> {
    let bad = |why: &str| Err(CmdError::Bad(format!("Invalid QRESYNC parameter: {why}.")));
    if q.uidvalidity == 0 {
        return bad("UIDVALIDITY 0");
    }
    if matches!(q.known_uids, Some(SequenceSet::Saved)) {
        return bad("$ as known UIDs");
    }
    if let Some((seqs, uids)) = &q.seq_match {
        let (SequenceSet::Ranges(seqs), SequenceSet::Ranges(uids)) = (seqs, uids) else {
            return bad("$ in sequence match data");
        };
        let count = |set: &[SeqRange]| -> Option<u64> {
            set.iter().try_fold(0u64, |n, r| match *r {
                SeqRange::Single(SeqNum::Value(_)) => Some(n + 1),
                SeqRange::Range(SeqNum::Value(a), SeqNum::Value(b)) => {
                    Some(n + u64::from(a.abs_diff(b)) + 1)
                }
                _ => None,
            })
        };
        match (count(seqs), count(uids)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(_), Some(_)) => return bad("sequence and UID sets differ in size"),
            _ => return bad("* in sequence match data"),
        }
    }
    Ok(())
}

/// Every value of a checked (no `*`) set in the order given, lazily.
fn values(set: &SequenceSet) -> impl Iterator<Item = u32> + '_ {
    let ranges: &[SeqRange] = match set {
        SequenceSet::Ranges(r) => r,
        SequenceSet::Saved => &[],
    };
    ranges.iter().flat_map(|r| {
        let (a, b, n) = match *r {
            SeqRange::Single(SeqNum::Value(v)) => (v, v, 1),
            SeqRange::Range(SeqNum::Value(a), SeqNum::Value(b)) => {
                (a, b, u64::from(a.abs_diff(b)) + 1)
            }
            _ => (0, 0, 0),
        };
        // In the order sent: `9:5` is 9, 8, 7, 6, 5.
        (0..n).map(move |i| {
            let i = i as u32;
            if a <= b { a + i } else { a - i }
        })
    })
}

/// The lowest UID the VANISHED answer needs (RFC 7162 §3.2.5.2): each pair of the client's
/// sequence match data that agrees with the view proves the client knows every expunge up to
/// that UID; the first pair that disagrees ends the proof.
fn first_unproven(sel: &SelectedMailbox, seq_match: &(SequenceSet, SequenceSet)) -> u32 {
    let mut lowest = 1;
    for (seq, uid) in values(&seq_match.0).zip(values(&seq_match.1)) {
        let matched = seq
            .checked_sub(1)
            .and_then(|i| sel.messages.get(i as usize))
            .is_some_and(|m| m.uid == uid);
        if !matched {
            break;
        }
        lowest = uid.saturating_add(1);
    }
    lowest
}

/// After SELECT/EXAMINE's usual responses (RFC 7162 §3.2.5.1): `* VANISHED (EARLIER)` for the
/// known UIDs expunged since the client's modseq, then `* n FETCH (UID FLAGS MODSEQ)` for the
/// known messages changed since. Nothing when the UIDVALIDITY differs.
pub(crate) async fn select_answer(
    store: &dyn MailStore,
    sel: &SelectedMailbox,
    q: &QresyncParams,
    rev1: bool,
    uidonly: bool,
    out: &mut Vec<u8>,
) -> CmdResult<()> {
    if q.uidvalidity != sel.mailbox.uidvalidity {
        return Ok(());
    }
    let changes = store.changes_since(sel.mailbox.id, q.modseq).await?;
    let top = sel.mailbox.uidnext.saturating_sub(1);
    let known = match &q.known_uids {
        Some(SequenceSet::Ranges(r)) => ranges_of(r, top),
        // An empty mailbox that never had a message: an empty set (top = 0).
        _ => clamp(&vec![(1, top)], 1, top),
    };
    let lowest = q.seq_match.as_ref().map_or(1, |sm| first_unproven(sel, sm));
    let narrowed = clamp(&known, lowest.max(1), top);
    let present: Vec<u32> = sel.messages.iter().map(|m| m.uid).collect();
    let gone = vanished(&changes, q.modseq, &narrowed, &present);
    if !gone.is_empty() {
        out.extend_from_slice(b"* VANISHED (EARLIER) ");
        write_ranges(out, &gone);
        out.extend_from_slice(b"\r\n");
    }
    for (i, m) in sel.messages.iter().enumerate() {
        if m.modseq <= q.modseq || !contains(&known, m.uid) {
            continue;
        }
        super::uidonly::fetch_prefix(out, uidonly, i as u32 + 1, m.uid);
        if !uidonly {
            out.extend_from_slice(format!("UID {} ", m.uid).as_bytes());
        }
        out.extend_from_slice(b"FLAGS ");
        flags::write_list(out, &m.flags, rev1 && sel.recent.contains(&m.uid));
        out.extend_from_slice(format!(" MODSEQ ({}))\r\n", m.modseq).as_bytes());
    }
    Ok(())
}

/// Whether the client's view may hold UIDs expunged without a tombstone left to say so: the
/// view's modseq is below the pruned horizon.
pub(crate) fn tombstones_pruned(changes: &Changes, view_modseq: u64) -> bool {
    changes.pruned_modseq > view_modseq
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_is_the_complement_in_ranges() {
        let within = vec![(1, 10), (20, 22)];
        assert_eq!(
            absent(&within, [2, 3, 7, 10, 21].into_iter()),
            vec![(1, 1), (4, 6), (8, 9), (20, 20), (22, 22)]
        );
        assert_eq!(absent(&within, std::iter::empty()), within);
        assert_eq!(
            absent(&vec![(1, u32::MAX)], [u32::MAX].into_iter()),
            vec![(1, u32::MAX - 1)]
        );
        assert_eq!(absent(&vec![(5, 5)], [5].into_iter()), vec![]);
        assert_eq!(absent(&vec![(5, 6)], [6].into_iter()), vec![(5, 5)]);
    }

    #[test]
    fn ranges_merge_and_clamp() {
        use SeqNum::*;
        let set = [
            SeqRange::Range(Value(9), Value(5)),
            SeqRange::Single(Value(10)),
            SeqRange::Single(Largest),
            SeqRange::Range(Value(1), Value(2)),
        ];
        let r = ranges_of(&set, 40);
        assert_eq!(r, vec![(1, 2), (5, 10), (40, 40)]);
        assert_eq!(clamp(&r, 6, 39), vec![(6, 10)]);
        assert!(contains(&r, 7) && !contains(&r, 3) && contains(&r, 40));
    }

    #[test]
    fn seq_match_sizes_must_agree() {
        use SeqNum::*;
        let q = |seqs: Vec<SeqRange>, uids: Vec<SeqRange>| QresyncParams {
            uidvalidity: 1,
            modseq: 1,
            known_uids: None,
            seq_match: Some((SequenceSet::Ranges(seqs), SequenceSet::Ranges(uids))),
        };
        let ok = q(
            vec![SeqRange::Range(Value(1), Value(3))],
            vec![
                SeqRange::Single(Value(4)),
                SeqRange::Range(Value(8), Value(9)),
            ],
        );
        assert!(check_params(&ok).is_ok());
        let short = q(
            vec![SeqRange::Range(Value(1), Value(3))],
            vec![SeqRange::Single(Value(4))],
        );
        assert!(check_params(&short).is_err());
        let star = q(
            vec![SeqRange::Range(Value(1), Largest)],
            vec![SeqRange::Range(Value(1), Value(3))],
        );
        assert!(check_params(&star).is_err());
        let huge = q(
            vec![SeqRange::Range(Value(1), Value(u32::MAX))],
            vec![SeqRange::Range(Value(1), Value(u32::MAX))],
        );
        assert!(check_params(&huge).is_ok());
    }
}
