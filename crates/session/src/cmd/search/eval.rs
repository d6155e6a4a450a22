//! Evaluating a compiled search program over a set of view indexes.
//!
//! Keys that need only the view (flags, UIDs, sizes, dates, modseq) are tested per message in
//! memory; header keys load the message header once per message and cache it for the rest of
//! the search; TEXT and BODY go to the store's text index over the remaining candidates.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate};
use mailkeep_store::{MessageMeta, MessageObjects, flags};

use super::key::{Key, fold};
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use mailkeep_proto::write::Code;

/// What the in-memory test of one message needs from the view.
pub(crate) struct MsgView<'a> {
    pub index: usize,
    pub meta: &'a MessageMeta,
    pub recent: bool,
}

/// The date of a time in its own zone ("disregarding time and timezone", RFC 9051 §6.4.4:
/// Dovecot takes the date as written in the stamp's zone).
pub(crate) fn local_date(unix: i64, offset_minutes: i32) -> Option<NaiveDate> {
    DateTime::from_timestamp(unix + offset_minutes as i64 * 60, 0).map(|d| d.date_naive())
}

/// Test a key from the view alone; `None` if the key needs message content.
pub(crate) fn match_view(key: &Key, m: &MsgView<'_>) -> Option<bool> {
    let meta = m.meta;
    Some(match key {
        Key::All => true,
        Key::Flag(bit, set) => (meta.flags.system & bit != 0) == *set,
        Key::Keyword(k, set) => {
            meta.flags
                .keywords
                .iter()
                .any(|x| x.eq_ignore_ascii_case(k))
                == *set
        }
        Key::Recent(set) => m.recent == *set,
        Key::New => m.recent && meta.flags.system & flags::SEEN == 0,
        Key::Larger(n) => meta.size > *n,
        Key::Smaller(n) => meta.size < *n,
        Key::Internal(cmp, arg) => local_date(meta.internal_date, meta.internal_date_offset)
            .is_some_and(|d| cmp.test(d, *arg)),
        Key::Within(older, at) => {
            if *older {
                meta.internal_date <= *at
            } else {
                meta.internal_date >= *at
            }
        }
        Key::Indexes(set) => crate::selected::ranges_contain(set, m.index),
        Key::ModSeq(n) => meta.modseq >= *n,
        Key::Not(k) => !match_view(k, m)?,
        Key::Or(a, b) => match_view(a, m)? || match_view(b, m)?,
        Key::And(v) => {
            let mut all = true;
            for k in v {
                all &= match_view(k, m)?;
            }
            all
        }
        Key::Sent(..)
        | Key::Header(..)
        | Key::Address(..)
        | Key::Text(_)
        | Key::Body(_)
        | Key::Saved(..)
        | Key::EmailId(_)
        | Key::ThreadId(_) => {
            return None;
        }
    })
}

/// SAVEDBEFORE/SAVEDON/SAVEDSINCE (the save date's day in the server's zone, as FETCH
/// SAVEDATE writes it), EMAILID, THREADID.
pub(crate) fn match_object(key: &Key, o: &MessageObjects) -> bool {
    match key {
        Key::Saved(cmp, arg) => {
            let offset = crate::cmd::objectid::local_offset_minutes(o.save_date);
            local_date(o.save_date, offset).is_some_and(|d| cmp.test(d, *arg))
        }
        Key::EmailId(id) => o.email_id == *id,
        Key::ThreadId(id) => o.thread_id.as_deref() == Some(id.as_str()),
        _ => false,
    }
}

/// Header-level tests on a message header (the bytes up to and including the blank line).
pub(crate) fn match_header(key: &Key, header: &[u8]) -> bool {
    match key {
        Key::Header(name, needle) => {
            let values = mailkeep_mime::header_values(header, name);
            // RFC 9051 §6.4.4 HEADER: an empty string matches every message with the field.
            values
                .iter()
                .any(|v| needle.is_empty() || fold(v).contains(needle.as_str()))
        }
        Key::Sent(cmp, arg) => sent_date(header).is_some_and(|d| cmp.test(d, *arg)),
        _ => false,
    }
}

/// The Date: header's date in the header's own zone.
fn sent_date(header: &[u8]) -> Option<NaiveDate> {
    let value = mailkeep_mime::header_values(header, "date")
        .into_iter()
        .next()?;
    let unix = mailkeep_mime::parse_rfc5322_date(&value)?;
    local_date(unix, zone_minutes(&value))
}

/// The `+hhmm` / `-hhmm` zone of an RFC 5322 date (0 for obsolete names like GMT or EST,
/// which this rarely matters for).
fn zone_minutes(value: &str) -> i32 {
    let Some(tok) = value.split_whitespace().rev().find(|t| {
        let b = t.as_bytes();
        b.len() == 5 && (b[0] == b'+' || b[0] == b'-') && b[1..].iter().all(u8::is_ascii_digit)
    }) else {
        return 0;
    };
    let n: i32 = tok[1..].parse().unwrap_or(0);
    let minutes = (n / 100) * 60 + n % 100;
    if tok.starts_with('-') {
        -minutes
    } else {
        minutes
    }
}

/// The header part of a message: up to and including the first empty line (all of it if none).
pub(crate) fn header_part(message: &[u8]) -> &[u8] {
    if message.starts_with(b"\r\n") {
        return &message[..2];
    }
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => &message[..p + 4],
        None => message,
    }
}

type EvalFuture<'s> = Pin<Box<dyn Future<Output = CmdResult<Vec<usize>>> + Send + 's>>;

/// Candidates tested in memory between two yields to the runtime, so a long evaluation lets
/// the other sessions on the same worker run.
const CHUNK: usize = 1024;

/// One search run over the view, with a cache of headers already loaded.
pub(crate) struct Evaluator<'c, 'a> {
    pub ctx: &'c Ctx<'a>,
    headers: HashMap<u32, Arc<[u8]>>,
    envelopes: HashMap<u32, Arc<[u8]>>,
    /// EMAILID, THREADID and save date of messages looked at (RFC 8474, RFC 8514).
    objects: HashMap<u32, MessageObjects>,
    /// Past this the search answers `NO [LIMIT]`.
    deadline: Instant,
}

impl<'c, 'a> Evaluator<'c, 'a> {
    pub(crate) fn new(ctx: &'c Ctx<'a>, deadline: Instant) -> Self {
        Evaluator {
            ctx,
            headers: HashMap::new(),
            envelopes: HashMap::new(),
            objects: HashMap::new(),
            deadline,
        }
    }

    /// `NO [LIMIT]` once the time budget is spent.
    fn check_budget(&self) -> CmdResult<()> {
        if Instant::now() > self.deadline {
            return Err(CmdError::No(
                Some(Code::Limit),
                "Search took too long, narrow it down.".into(),
            ));
        }
        Ok(())
    }

    /// The candidates that match a key testable from the view alone, a chunk at a time with a
    /// yield and a budget check between chunks.
    async fn filter_view(&self, key: &Key, cand: Vec<usize>) -> CmdResult<Vec<usize>> {
        let mut out = Vec::new();
        for chunk in cand.chunks(CHUNK) {
            self.check_budget()?;
            out.extend(
                chunk
                    .iter()
                    .copied()
                    .filter(|&i| match_view(key, &self.view(i)).unwrap_or(false)),
            );
            if cand.len() > CHUNK {
                tokio::task::yield_now().await;
            }
        }
        Ok(out)
    }

    fn view(&self, i: usize) -> MsgView<'c> {
        let meta = &self.ctx.sel.messages[i];
        MsgView {
            index: i,
            meta,
            recent: self.ctx.sel.recent.contains(&meta.uid),
        }
    }

    /// The candidates (ascending view indexes) that match `key`, ascending.
    pub(crate) fn eval<'s>(&'s mut self, key: &'s Key, cand: Vec<usize>) -> EvalFuture<'s> {
        Box::pin(async move {
            if cand.is_empty() {
                return Ok(cand);
            }
            self.check_budget()?;
            if matches!(key, Key::All) {
                return Ok(cand);
            }
            if key.cost() == 0 {
                return self.filter_view(key, cand).await;
            }
            match key {
                Key::And(children) => {
                    let mut order: Vec<&Key> = children.iter().collect();
                    order.sort_by_key(|k| k.cost());
                    let mut cur = cand;
                    for k in order {
                        cur = self.eval(k, cur).await?;
                        if cur.is_empty() {
                            break;
                        }
                    }
                    Ok(cur)
                }
                Key::Or(a, b) => {
                    let (first, second) = if a.cost() <= b.cost() { (a, b) } else { (b, a) };
                    let hit = self.eval(first, cand.clone()).await?;
                    let hit_set: HashSet<usize> = hit.iter().copied().collect();
                    let rest: Vec<usize> = cand
                        .iter()
                        .copied()
                        .filter(|i| !hit_set.contains(i))
                        .collect();
                    let more: HashSet<usize> = self.eval(second, rest).await?.into_iter().collect();
                    Ok(cand
                        .into_iter()
                        .filter(|i| hit_set.contains(i) || more.contains(i))
                        .collect())
                }
                Key::Not(k) => {
                    let hit: HashSet<usize> =
                        self.eval(k, cand.clone()).await?.into_iter().collect();
                    Ok(cand.into_iter().filter(|i| !hit.contains(i)).collect())
                }
                Key::Text(needle) | Key::Body(needle) => {
                    let body_only = matches!(key, Key::Body(_));
                    let uids: Vec<u32> =
                        cand.iter().map(|&i| self.ctx.sel.messages[i].uid).collect();
                    let found: HashSet<u32> = if needle.is_empty() {
                        // An empty string is a substring of every text.
                        uids.iter().copied().collect()
                    } else {
                        let store = self.ctx.store;
                        store
                            .search_text(self.ctx.sel.mailbox.id, &uids, needle, body_only)
                            .await?
                            .into_iter()
                            .collect()
                    };
                    Ok(cand
                        .into_iter()
                        .filter(|&i| found.contains(&self.ctx.sel.messages[i].uid))
                        .collect())
                }
                Key::Address(field, needle) => {
                    self.prefetch_envelopes(&cand).await?;
                    let mut out = Vec::new();
                    for (n, i) in cand.into_iter().enumerate() {
                        if n % CHUNK == CHUNK - 1 {
                            self.check_budget()?;
                            tokio::task::yield_now().await;
                        }
                        let envelope = self.envelope(i).await?;
                        let text = super::address::envelope_addresses(&envelope, *field);
                        if text.is_some_and(|t| fold(&t).contains(needle.as_str())) {
                            out.push(i);
                        }
                    }
                    Ok(out)
                }
                Key::Saved(..) | Key::EmailId(_) | Key::ThreadId(_) => {
                    self.prefetch_objects(&cand).await?;
                    Ok(cand
                        .into_iter()
                        .filter(|&i| {
                            let uid = self.ctx.sel.messages[i].uid;
                            self.objects.get(&uid).is_some_and(|o| match_object(key, o))
                        })
                        .collect())
                }
                Key::Header(..) | Key::Sent(..) => {
                    let mut out = Vec::new();
                    for (n, i) in cand.into_iter().enumerate() {
                        if n % 64 == 63 {
                            self.check_budget()?;
                        }
                        let header = self.header(i).await?;
                        if match_header(key, &header) {
                            out.push(i);
                        }
                    }
                    Ok(out)
                }
                // Every other key has cost 0 and was handled above.
                _ => self.filter_view(key, cand).await,
            }
        })
    }

    /// Read the object IDs and save dates of the candidates not cached yet, a batch per call.
    async fn prefetch_objects(&mut self, cand: &[usize]) -> CmdResult<()> {
        let missing: Vec<u32> = cand
            .iter()
            .map(|&i| self.ctx.sel.messages[i].uid)
            .filter(|u| !self.objects.contains_key(u))
            .collect();
        for chunk in missing.chunks(1024) {
            self.check_budget()?;
            let found = self
                .ctx
                .store
                .message_objects(self.ctx.sel.mailbox.id, chunk)
                .await?;
            self.objects.extend(found);
        }
        Ok(())
    }

    /// Read the ENVELOPEs of the candidates not cached yet in one store call per batch.
    async fn prefetch_envelopes(&mut self, cand: &[usize]) -> CmdResult<()> {
        let missing: Vec<u32> = cand
            .iter()
            .map(|&i| self.ctx.sel.messages[i].uid)
            .filter(|u| !self.envelopes.contains_key(u))
            .collect();
        for chunk in missing.chunks(1024) {
            let infos = self
                .ctx
                .store
                .parsed_infos(self.ctx.sel.mailbox.id, chunk)
                .await?;
            for (uid, info) in infos {
                self.envelopes.insert(uid, Arc::from(info.envelope));
            }
        }
        Ok(())
    }

    async fn envelope(&mut self, i: usize) -> CmdResult<Arc<[u8]>> {
        let uid = self.ctx.sel.messages[i].uid;
        if let Some(e) = self.envelopes.get(&uid) {
            return Ok(e.clone());
        }
        let parsed = self
            .ctx
            .store
            .parsed_info(self.ctx.sel.mailbox.id, uid)
            .await?;
        let e: Arc<[u8]> = Arc::from(parsed.envelope);
        self.envelopes.insert(uid, e.clone());
        Ok(e)
    }

    async fn header(&mut self, i: usize) -> CmdResult<Arc<[u8]>> {
        let uid = self.ctx.sel.messages[i].uid;
        if let Some(h) = self.headers.get(&uid) {
            return Ok(h.clone());
        }
        let bytes = self
            .ctx
            .store
            .message_bytes(self.ctx.sel.mailbox.id, uid)
            .await?;
        let h: Arc<[u8]> = Arc::from(header_part(&bytes));
        self.headers.insert(uid, h.clone());
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::super::key::DateCmp;
    use super::*;
    use mailkeep_store::Flags;

    fn meta(
        uid: u32,
        system: u32,
        kw: &[&str],
        size: u64,
        date: i64,
        off: i32,
        modseq: u64,
    ) -> MessageMeta {
        MessageMeta {
            uid,
            flags: Flags {
                system,
                keywords: kw.iter().map(|s| s.to_string()).collect(),
            },
            modseq,
            size,
            internal_date: date,
            internal_date_offset: off,
        }
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn view_keys() {
        // 2024-01-01 23:30 UTC; in +0100 it is already 2024-01-02.
        let late = 1_704_151_800;
        let m1 = meta(
            7,
            flags::SEEN | flags::FLAGGED,
            &["$Work"],
            1000,
            late,
            60,
            5,
        );
        let m2 = meta(9, 0, &[], 10, late, 0, 12);
        let v1 = MsgView {
            index: 0,
            meta: &m1,
            recent: false,
        };
        let v2 = MsgView {
            index: 1,
            meta: &m2,
            recent: true,
        };
        let set = vec![(1, 2)];
        let k = |x| Box::new(x);
        let cases: Vec<(Key, bool, bool)> = vec![
            (Key::All, true, true),
            (Key::Flag(flags::SEEN, true), true, false),
            (Key::Flag(flags::SEEN, false), false, true),
            (Key::Keyword("$work".into(), true), true, false),
            (Key::Keyword("$work".into(), false), false, true),
            (Key::Recent(true), false, true),
            (Key::New, false, true),
            (Key::Larger(999), true, false),
            (Key::Larger(1000), false, false),
            (Key::Smaller(11), false, true),
            (Key::Internal(DateCmp::On, d(2024, 1, 2)), true, false),
            (Key::Internal(DateCmp::On, d(2024, 1, 1)), false, true),
            (Key::Internal(DateCmp::Before, d(2024, 1, 2)), false, true),
            (Key::Internal(DateCmp::Since, d(2024, 1, 2)), true, false),
            // OLDER/YOUNGER: inclusive at the second (RFC 5032 §2); both messages at `late`.
            (Key::Within(true, late), true, true),
            (Key::Within(true, late - 1), false, false),
            (Key::Within(false, late), true, true),
            (Key::Within(false, late + 1), false, false),
            (Key::Indexes(set), false, true),
            (Key::ModSeq(6), false, true),
            (Key::Not(k(Key::Flag(flags::FLAGGED, true))), false, true),
            (
                Key::Or(k(Key::Smaller(11)), k(Key::Flag(flags::FLAGGED, true))),
                true,
                true,
            ),
            (
                Key::And(vec![Key::Larger(5), Key::Flag(flags::SEEN, false)]),
                false,
                true,
            ),
            (Key::And(vec![]), true, true),
        ];
        for (key, want1, want2) in cases {
            assert_eq!(match_view(&key, &v1), Some(want1), "{key:?} on m1");
            assert_eq!(match_view(&key, &v2), Some(want2), "{key:?} on m2");
        }
        assert_eq!(match_view(&Key::Text("x".into()), &v1), None);
        assert_eq!(
            match_view(&Key::Not(k(Key::Header("a".into(), "b".into()))), &v1),
            None
        );
    }

    #[test]
    fn zones_and_headers() {
        assert_eq!(zone_minutes("Fri, 11 Jul 2003 21:00:37 -0700 (PDT)"), -420);
        assert_eq!(zone_minutes("1 Jan 2024 00:00 +0530"), 330);
        assert_eq!(zone_minutes("1 Jan 2024 00:00 GMT"), 0);
        assert_eq!(header_part(b"A: b\r\n\r\nbody"), b"A: b\r\n\r\n");
        assert_eq!(header_part(b"\r\nbody"), b"\r\n");
        assert_eq!(header_part(b"A: b\r\n"), b"A: b\r\n");
        assert_eq!(local_date(0, -60), Some(d(1969, 12, 31)));
    }

    /// The in-memory part of a search over a big view: answered, and `NO [LIMIT]` once the
    /// time budget is spent.
    #[tokio::test]
    async fn budget_ends_a_long_search() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn mailkeep_store::MailStore> =
            mailkeep_store::sqlite::SqliteStore::open(dir.path()).unwrap();
        let notifier = mailkeep_store::notify::Notifier::default();
        let mailbox = mailkeep_store::Mailbox {
            id: 7,
            name: "INBOX".into(),
            uidvalidity: 1,
            uidnext: 1,
            highest_modseq: 1,
            special_use: None,
            subscribed: true,
        };
        let messages: Vec<MessageMeta> = (1..=20_000)
            .map(|u| meta(u, 0, &[], u as u64, 0, 0, u as u64))
            .collect();
        let mut sel = crate::selected::SelectedMailbox::new(
            mailbox,
            false,
            messages,
            Default::default(),
            false,
            notifier.subscribe(7),
        );
        let enabled = crate::enabled::Enabled::default();
        let user = mailkeep_store::User {
            id: Default::default(),
            name: "a".into(),
            password_hash: String::new(),
        };
        let orders = crate::orders::OrderCache::new();
        let ctx = Ctx {
            store: &store,
            enabled: &enabled,
            orders: &orders,
            user: &user,
            sel: &mut sel,
        };
        let key = Key::And(vec![
            Key::Larger(10),
            Key::Not(Box::new(Key::ModSeq(15_000))),
        ]);
        let all: Vec<usize> = (0..20_000).collect();
        let later = Instant::now() + std::time::Duration::from_secs(60);
        let hit = Evaluator::new(&ctx, later).eval(&key, all.clone()).await;
        assert_eq!(hit.unwrap().len(), 15_000 - 11);
        let past = Instant::now() - std::time::Duration::from_millis(1);
        let err = Evaluator::new(&ctx, past)
            .eval(&key, all)
            .await
            .unwrap_err();
        assert!(matches!(err, CmdError::No(Some(Code::Limit), _)), "{err:?}");
    }

    #[test]
    fn costs_order_cheap_first() {
        let and = Key::And(vec![
            Key::Text("x".into()),
            Key::Flag(flags::SEEN, true),
            Key::Header("a".into(), "".into()),
        ]);
        let mut order: Vec<u8> = match &and {
            Key::And(v) => v.iter().map(Key::cost).collect(),
            _ => unreachable!(),
        };
        order.sort();
        assert_eq!(order, vec![0, 2, 3]);
        assert_eq!(and.cost(), 3);
        assert!(Key::Not(Box::new(Key::ModSeq(3))).has_modseq());
    }
}
