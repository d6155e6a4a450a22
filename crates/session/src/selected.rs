//! The selected mailbox as one session sees it: sequence numbers, flags, \Recent, the saved
//! search result, and the subscription that wakes the session when another one changes it.
//!
//! The view changes only when the session applies store changes ([`SelectedMailbox::sync`],
//! owned by the state-machine module), so sequence numbers stay stable during FETCH, STORE and
//! SEARCH (RFC 9051 §7.4.1: no EXPUNGE then).

use std::collections::HashSet;

use mailkeep_proto::write::Code;
use mailkeep_proto::{CommandBody, SeqNum, SeqRange, SequenceSet};
use mailkeep_store::notify::Subscription;
use mailkeep_store::{Mailbox, MessageMeta, User};

use crate::cmd;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::state::Transition;
use crate::{Inner, Outcome, authenticated, names};

/// Selected-state dispatch (RFC 9051 §6.4): the data commands run in `cmd` with a [`Ctx`];
/// everything else falls back to the authenticated state's handlers.
pub(crate) async fn handle(
    inner: &mut Inner,
    user: &User,
    sel: &mut SelectedMailbox,
    tag: &str,
    body: CommandBody,
    out: &mut Vec<u8>,
) -> Outcome {
    let result: CmdResult<Outcome> = match body {
        CommandBody::Check => Ok(Outcome::ok("Check completed.")),
        CommandBody::Close => {
            // RFC 9051 §6.4.1: silently expunge \Deleted messages when read-write.
            if !sel.read_only {
                let mut ctx = cmd_ctx(inner, user, sel);
                if let Err(e) = cmd::expunge::expunge(&mut ctx, None, &mut Vec::new()).await {
                    return Outcome::err(e);
                }
            }
            Ok(Outcome::ok("Close completed.").then(Transition::Unselect))
        }
        CommandBody::Unselect => Ok(Outcome::ok("Unselect completed.").then(Transition::Unselect)),
        CommandBody::Expunge => {
            let mut ctx = cmd_ctx(inner, user, sel);
            cmd::expunge::expunge(&mut ctx, None, out)
                .await
                .map(|()| Outcome::ok("Expunge completed."))
        }
        CommandBody::UidExpunge(set) => {
            let mut ctx = cmd_ctx(inner, user, sel);
            cmd::expunge::expunge(&mut ctx, Some(&set), out)
                .await
                .map(|()| Outcome::ok("Expunge completed."))
        }
        CommandBody::Fetch {
            uid,
            set,
            items,
            modifiers,
        } => {
            let mut ctx = cmd_ctx(inner, user, sel);
            match cmd::fetch::fetch(&mut ctx, uid, &set, &items, &modifiers, out).await {
                Ok(mut job) => match job.step(&mut ctx, out).await {
                    Ok(cmd::fetch::Progress::Done) => Ok(Outcome::ok(job.ok_text())),
                    // The rest is written by `Session::resume_output`.
                    Ok(cmd::fetch::Progress::More) => Ok(Outcome::more(job)),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            }
        }
        CommandBody::Search {
            uid,
            charset,
            criteria,
            ret,
        } => {
            let limit = inner.max_search_contexts;
            let mut ctx = cmd_ctx(inner, user, sel);
            cmd::search::search(
                &mut ctx,
                limit,
                tag,
                uid,
                charset.as_deref(),
                &criteria,
                ret.as_deref(),
                out,
            )
            .await
            .map(|()| {
                Outcome::ok(if uid {
                    "UID SEARCH completed."
                } else {
                    "SEARCH completed."
                })
            })
        }
        CommandBody::Sort {
            uid,
            criteria,
            charset,
            search,
            ret,
        } => {
            let limit = inner.max_search_contexts;
            let mut ctx = cmd_ctx(inner, user, sel);
            cmd::sort::sort(
                &mut ctx,
                limit,
                tag,
                uid,
                &criteria,
                &charset,
                &search,
                ret.as_deref(),
                out,
            )
            .await
            .map(|()| {
                Outcome::ok(if uid {
                    "UID SORT completed."
                } else {
                    "SORT completed."
                })
            })
        }
        CommandBody::CancelUpdate(tags) => {
            cmd::search::context::cancel(sel, &tags);
            Ok(Outcome::ok("No further updates."))
        }
        CommandBody::Thread {
            uid,
            algorithm,
            charset,
            search,
        } => {
            let mut ctx = cmd_ctx(inner, user, sel);
            cmd::thread::thread(&mut ctx, uid, algorithm, &charset, &search, out)
                .await
                .map(|()| {
                    Outcome::ok(if uid {
                        "UID THREAD completed."
                    } else {
                        "THREAD completed."
                    })
                })
        }
        CommandBody::Store {
            uid,
            set,
            action,
            silent,
            flags,
            unchanged_since,
        } => {
            let mut ctx = cmd_ctx(inner, user, sel);
            cmd::store_flags::store(
                &mut ctx,
                uid,
                &set,
                action,
                silent,
                &flags,
                unchanged_since,
                out,
            )
            .await
            .map(|code| {
                Outcome::ok_code(
                    code,
                    if uid {
                        "UID STORE completed."
                    } else {
                        "STORE completed."
                    },
                )
            })
        }
        CommandBody::Copy { uid, set, mailbox } => match destination(inner, user, &mailbox).await {
            Ok(dest) => {
                let mut ctx = cmd_ctx(inner, user, sel);
                cmd::copy_move::copy(&mut ctx, uid, &set, &dest, out)
                    .await
                    .map(|code| {
                        Outcome::ok_code(
                            code,
                            if uid {
                                "UID COPY completed."
                            } else {
                                "COPY completed."
                            },
                        )
                    })
            }
            Err(e) => Err(e),
        },
        CommandBody::Move { uid, set, mailbox } => match destination(inner, user, &mailbox).await {
            Ok(dest) => {
                let mut ctx = cmd_ctx(inner, user, sel);
                cmd::copy_move::move_(&mut ctx, uid, &set, &dest, out)
                    .await
                    .map(|()| {
                        Outcome::ok(if uid {
                            "UID MOVE completed."
                        } else {
                            "MOVE completed."
                        })
                    })
            }
            Err(e) => Err(e),
        },
        CommandBody::Replace {
            uid,
            number,
            mailbox,
            message,
        } => {
            let limit = inner.config.max_message_size;
            let mut ctx = cmd_ctx(inner, user, sel);
            cmd::replace::replace(&mut ctx, uid, number, &mailbox, message, limit, out)
                .await
                .map(|()| Outcome::ok("Replace completed."))
        }
        body => return authenticated::handle(inner, user, Some(sel), tag, body, out).await,
    };
    result.unwrap_or_else(Outcome::err)
}

/// The context the `cmd` handlers run in.
fn cmd_ctx<'a>(inner: &'a Inner, user: &'a User, sel: &'a mut SelectedMailbox) -> Ctx<'a> {
    Ctx {
        store: &inner.store,
        enabled: &inner.enabled,
        orders: &inner.orders,
        user,
        sel,
    }
}

/// The target of COPY/MOVE: `NO [TRYCREATE]` when missing (RFC 9051 §6.4.7).
async fn destination(inner: &Inner, user: &User, raw: &[u8]) -> CmdResult<Mailbox> {
    let name = names::decode(raw, &inner.enabled)?;
    inner
        .store
        .get_mailbox(user.id, &name)
        .await?
        .ok_or_else(|| CmdError::No(Some(Code::TryCreate), "Mailbox doesn't exist.".into()))
}

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
    /// UIDs this session claimed as \Recent before its view has them (an APPEND to this
    /// mailbox claims with the append): added to `recent` when the view catches up.
    pub(crate) claimed: Vec<u32>,
    /// UIDs another session expunged that this client has not been told about yet (EXPUNGE
    /// is not allowed during FETCH, STORE, SEARCH): they stay in `messages` until then.
    pub pending_expunge: Vec<u32>,
    /// Keywords announced in the last `* FLAGS` (a new one means a new `* FLAGS`).
    pub keywords: Vec<String>,
    /// RFC 5267 update contexts (`RETURN (UPDATE)`): they end with the selection.
    pub(crate) contexts: Vec<cmd::search::context::SearchContext>,
}

/// Why a message set is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetError {
    /// A sequence number beyond the number of messages (RFC 9051 §6.4.5 says BAD).
    InvalidSequence,
}

impl SelectedMailbox {
    pub(crate) fn new(
        mailbox: Mailbox,
        read_only: bool,
        messages: Vec<MessageMeta>,
        recent: HashSet<u32>,
        condstore: bool,
        subscription: Subscription,
    ) -> Self {
        let mut keywords: Vec<String> = Vec::new();
        for m in &messages {
            for k in &m.flags.keywords {
                if !keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                    keywords.push(k.clone());
                }
            }
        }
        keywords.sort();
        let modseq = messages
            .iter()
            .map(|m| m.modseq)
            .max()
            .unwrap_or(0)
            .max(mailbox.highest_modseq);
        SelectedMailbox {
            mailbox,
            read_only,
            messages,
            modseq,
            recent,
            saved: Vec::new(),
            condstore,
            subscription,
            claimed: Vec::new(),
            pending_expunge: Vec::new(),
            keywords,
            contexts: Vec::new(),
        }
    }

    /// `* FLAGS (...)` and `* OK [PERMANENTFLAGS (...)]` for the flags this mailbox uses
    /// (RFC 9051 §7.3.5, §7.1): at SELECT, and again whenever a new keyword appears (then a
    /// read-only mailbox's empty PERMANENTFLAGS is not repeated: it has not changed).
    pub fn write_flag_lists(&self, out: &mut Vec<u8>, at_select: bool) {
        use mailkeep_proto::write::{self, Code, StatusKind};
        let mut all = crate::flags::system_flags();
        all.extend(
            self.keywords
                .iter()
                .map(|k| mailkeep_proto::Flag::Keyword(k.clone())),
        );
        out.extend_from_slice(b"* FLAGS ");
        write::flag_list(out, &all);
        out.extend_from_slice(b"\r\n");
        if self.read_only && at_select {
            let code = Code::PermanentFlags(vec![], false);
            write::status(out, None, StatusKind::Ok, Some(&code), "Read-only mailbox.");
        } else if !self.read_only {
            let code = Code::PermanentFlags(all, true);
            write::status(out, None, StatusKind::Ok, Some(&code), "Flags permitted.");
        }
    }

    /// Adds the keywords in `used` that the client has not been told of yet; true if there
    /// were any, in which case the caller announces them with
    /// [`SelectedMailbox::write_flag_lists`]. The view's keywords were learned at SELECT, so
    /// `used` need only hold those of messages new to the view or whose flags changed (a
    /// scan of the whole view took a millisecond per 100,000 messages, at every change).
    pub fn learn_keywords<'a>(&mut self, used: impl IntoIterator<Item = &'a str>) -> bool {
        let mut new_keyword = false;
        for k in used {
            if !self.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                self.keywords.push(k.to_string());
                new_keyword = true;
            }
        }
        if new_keyword {
            self.keywords.sort();
        }
        new_keyword
    }

    pub fn exists(&self) -> u32 {
        self.messages.len() as u32
    }

    /// Sequence number (1-based) of a UID in this view.
    pub fn seq_of_uid(&self, uid: u32) -> Option<u32> {
        self.messages
            .binary_search_by_key(&uid, |m| m.uid)
            .ok()
            .map(|i| i as u32 + 1)
    }

    /// The messages a set refers to, as indexes into `messages`, ascending, no duplicates.
    ///
    /// With `uid`: UIDs not in the view are ignored, and `*` is the largest UID (so `n:*`
    /// always includes the last message, RFC 9051 §6.4.8). Without `uid`: sequence numbers;
    /// one beyond the number of messages is an error, `*` is the last message. `$` is the
    /// saved result (RFC 5182), always UIDs.
    pub fn resolve(&self, set: &SequenceSet, uid: bool) -> Result<Vec<usize>, SetError> {
        let ranges = self.resolve_ranges(set, uid, false)?;
        let mut out = Vec::with_capacity(ranges.iter().map(|r| r.1 - r.0).sum());
        for (a, b) in ranges {
            out.extend(a..b);
        }
        Ok(out)
    }

    /// The same as [`SelectedMailbox::resolve`] as half-open index ranges `[a, b)`, sorted,
    /// merged and disjoint: the set's ranges are merged before anything is expanded, so a set
    /// that names `1:*` 16,000 times costs 16,000 pairs, not 16,000 times the mailbox.
    /// `lenient`: sequence numbers beyond the mailbox match nothing instead of being an error
    /// (SEARCH).
    pub fn resolve_ranges(
        &self,
        set: &SequenceSet,
        uid: bool,
        lenient: bool,
    ) -> Result<Vec<(usize, usize)>, SetError> {
        let ranges = match set {
            SequenceSet::Saved => {
                let mut idx: Vec<usize> = self
                    .saved
                    .iter()
                    .filter_map(|u| self.seq_of_uid(*u).map(|s| s as usize - 1))
                    .collect();
                idx.sort_unstable();
                return Ok(merge(idx.into_iter().map(|i| (i, i + 1)).collect()));
            }
            SequenceSet::Ranges(r) => r,
        };
        let n = self.messages.len();
        let mut pairs: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
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
                if start < end {
                    pairs.push((start, end));
                }
            }
        } else if lenient {
            let val = |s: SeqNum| match s {
                SeqNum::Value(v) => v as usize,
                SeqNum::Largest => n,
            };
            for r in ranges {
                let (a, b) = match *r {
                    SeqRange::Single(x) => (val(x), val(x)),
                    SeqRange::Range(x, y) => (val(x).min(val(y)), val(x).max(val(y))),
                };
                let (a, b) = (a.max(1), b.min(n));
                if a <= b {
                    pairs.push((a - 1, b));
                }
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
                pairs.push((a - 1, b));
            }
        }
        Ok(merge(pairs))
    }
}

/// Sort half-open ranges and merge the overlapping and adjacent ones.
pub(crate) fn merge(mut pairs: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    pairs.sort_unstable();
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(pairs.len().min(64));
    for (a, b) in pairs {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Whether index `i` is in sorted, disjoint half-open ranges.
pub(crate) fn ranges_contain(ranges: &[(usize, usize)], i: usize) -> bool {
    let k = ranges.partition_point(|r| r.1 <= i);
    ranges.get(k).is_some_and(|r| r.0 <= i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_before_expansion() {
        assert_eq!(merge(vec![]), vec![]);
        assert_eq!(
            merge(vec![(5, 9), (0, 2), (2, 3), (7, 12), (20, 21), (0, 1)]),
            vec![(0, 3), (5, 12), (20, 21)]
        );
        // 16,000 copies of the whole mailbox stay one range.
        assert_eq!(merge(vec![(0, 65_536); 16_000]), vec![(0, 65_536)]);
        let r = [(0, 3), (5, 12), (20, 21)];
        let inside: Vec<usize> = (0..25).filter(|&i| ranges_contain(&r, i)).collect();
        assert_eq!(inside, [0, 1, 2, 5, 6, 7, 8, 9, 10, 11, 20]);
        assert!(!ranges_contain(&[], 0));
    }
}
