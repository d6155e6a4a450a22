//! The selected mailbox as one session sees it: sequence numbers, flags, \Recent, the saved
//! search result, and the subscription that wakes the session when another one changes it.
//!
//! The view changes only when the session applies store changes ([`SelectedMailbox::sync`],
//! owned by the state-machine module), so sequence numbers stay stable during FETCH, STORE and
//! SEARCH (RFC 9051 §7.4.1: no EXPUNGE then).

use std::collections::HashSet;

use mailkeep_proto::{SeqNum, SeqRange, SequenceSet};
use mailkeep_store::notify::Subscription;
use mailkeep_store::{Mailbox, MessageMeta};

pub struct SelectedMailbox {
    pub mailbox: Mailbox,
    /// EXAMINE, or SELECT of a mailbox the user may not change.
    pub read_only: bool,
    /// The messages as this session last told the client: index = sequence number - 1.
    pub messages: Vec<MessageMeta>,
    /// The highest modseq this view has applied.
    pub modseq: u64,
    /// UIDs that are \Recent for this session (rev1).
    pub recent: HashSet<u32>,
    /// RFC 5182 `$`: UIDs saved by `SEARCH RETURN (SAVE)`.
    pub saved: Vec<u32>,
    /// CONDSTORE was enabled for this mailbox (SELECT (CONDSTORE), ENABLE CONDSTORE, or a
    /// command that implies it).
    pub condstore: bool,
    pub subscription: Subscription,
}

/// Why a message set is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetError {
    /// A sequence number beyond the number of messages (RFC 9051 §6.4.5 says BAD).
    InvalidSequence,
}

impl SelectedMailbox {
    pub fn exists(&self) -> u32 {
        self.messages.len() as u32
    }

    /// Sequence number (1-based) of a UID in this view.
    pub fn seq_of_uid(&self, uid: u32) -> Option<u32> {
        self.messages.binary_search_by_key(&uid, |m| m.uid).ok().map(|i| i as u32 + 1)
    }

    /// The messages a set refers to, as indexes into `messages`, ascending, no duplicates.
    ///
    /// With `uid`: UIDs not in the view are ignored, and `*` is the largest UID (so `n:*`
    /// always includes the last message, RFC 9051 §6.4.8). Without `uid`: sequence numbers;
    /// one beyond the number of messages is an error, `*` is the last message. `$` is the
    /// saved result (RFC 5182), always UIDs.
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<usize>, SetError> {
        let ranges = match set {
            SequenceSet::Saved => {
                let mut idx: Vec<usize> = self
                    .saved
                    .iter()
                    .filter_map(|u| self.seq_of_uid(*u).map(|s| s as usize - 1))
                    .collect();
                idx.sort_unstable();
                idx.dedup();
                return Ok(idx);
            }
            SequenceSet::Ranges(r) => r,
        };
        let n = self.messages.len();
        let mut out: Vec<usize> = Vec::new();
        if uid {
            let largest = self.messages.last().map(|m| m.uid).unwrap_or(0);
            let val = |s: SeqNum| match s {
                SeqNum::Value(v) => v,
                SeqNum::Largest => largest,
            };
            for r in ranges {
                let (a, b) = match *r {
                    SeqRange::Single(x) => (val(x), val(x)),
                    SeqRange::Range(x, y) => (val(x).min(val(y)), val(x).max(val(y))),
                };
                let start = self.messages.partition_point(|m| m.uid < a);
                let end = self.messages.partition_point(|m| m.uid <= b);
                out.extend(start..end);
            }
        } else {
            let val = |s: SeqNum| -> Result<usize, SetError> {
                match s {
                    SeqNum::Value(v) if v == 0 || v as usize > n => Err(SetError::InvalidSequence),
                    SeqNum::Value(v) => Ok(v as usize),
                    SeqNum::Largest if n == 0 => Err(SetError::InvalidSequence),
                    SeqNum::Largest => Ok(n),
                }
            };
            for r in ranges {
                let (a, b) = match *r {
                    SeqRange::Single(x) => (val(x)?, val(x)?),
                    SeqRange::Range(x, y) => {
                        let (x, y) = (val(x)?, val(y)?);
                        (x.min(y), x.max(y))
                    }
                };
                out.extend(a - 1..b);
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}
