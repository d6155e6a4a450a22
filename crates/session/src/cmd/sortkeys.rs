//! Sort and thread keys kept in the store (RFC 5256): what SORT and THREAD need of a message,
//! computed once and saved per body, so a SORT or THREAD over 100,000 messages reads one
//! small row each instead of parsing every ENVELOPE and, for THREAD=REFERENCES, reading every
//! message's header.
//!
//! A message whose keys are not saved yet (mail that arrived before keys existed, or by a
//! path that does not compute them) gets them computed here from its stored ENVELOPE, sent
//! date and header, the first time a SORT or THREAD needs it, and saved.
//!
//! The keys are the collation keys the commands compare (i;unicode-casemap of the base
//! subject and of the first From/To/Cc mailbox and display name, cut at
//! [`super::sort::MAX_KEY_BYTES`]), the sent date and the normalized Message-ID and
//! references. The row format is private to this module and starts with [`VERSION`]: a row of
//! another version is computed again.

use std::time::{Duration, Instant};

use super::collate::{EARLIEST_DATE, base_subject, casemap_key, lenient_date};
use super::search::address::envelope_parts;
use super::search::eval::header_part;
use super::sort::{cap_key, check_budget, display, mailbox};
use super::thread::{Refs, refs_of};
use crate::ctx::Ctx;
use crate::error::CmdResult;

/// The row format's version (its first byte).
const VERSION: u8 = 1;

/// Messages computed (and saved) per store round trip.
const BATCH: usize = 512;

/// How long one command may spend computing missing keys. Longer than the command's own
/// budget (`search::SEARCH_TIME_BUDGET`): this is done once per message, never again (saved
/// per batch, so even a command that runs out of time leaves its work behind), and a first
/// SORT of 100,000 older messages must not fail for it. Dovecot's first SORT of such a
/// mailbox (building its sort index) takes about as long.
const COMPUTE_BUDGET: Duration = Duration::from_secs(60);

/// Which of [`Keys`]' strings a command needs: the others are left empty when a saved row
/// is read (a SORT (DATE) of 100,000 messages then allocates nothing per message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fields(pub u8);

impl Fields {
    pub const SUBJECT: Fields = Fields(1);
    pub const FROM: Fields = Fields(2);
    pub const TO: Fields = Fields(4);
    pub const CC: Fields = Fields(8);
    pub const DISPLAY_FROM: Fields = Fields(16);
    pub const DISPLAY_TO: Fields = Fields(32);
    pub const REFS: Fields = Fields(64);
    #[cfg(test)]
    pub const ALL: Fields = Fields(127);

    pub fn with(self, o: Fields) -> Fields {
        Fields(self.0 | o.0)
    }
    fn has(self, o: Fields) -> bool {
        self.0 & o.0 != 0
    }
}

/// One message's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Keys {
    /// The Date: header's time (RFC 5256 §2.2); `None`: use INTERNALDATE.
    pub sent: Option<i64>,
    /// The base subject extraction removed a reply/forward marker.
    pub reply: bool,
    pub subject: String,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub display_from: String,
    pub display_to: String,
    pub refs: Refs,
}

impl Keys {
    /// The keys of a message from its stored parse and its header.
    pub(crate) fn compute(envelope: &[u8], sent_date: Option<i64>, header: &[u8]) -> Keys {
        let env = envelope_parts(envelope).unwrap_or_default();
        // RFC 5256 §2.2: the Date: header's time, else INTERNALDATE. A date the message
        // parser could not read gets a lenient second reading; one before 1900 counts as
        // unreadable.
        let sent = sent_date.filter(|&t| t >= EARLIEST_DATE).or_else(|| {
            sent_date
                .is_none()
                .then(|| env.date.as_deref().and_then(lenient_date))
                .flatten()
        });
        let (base, reply) = base_subject(env.subject.as_deref().unwrap_or(""));
        let key = |s: &str| cap_key(casemap_key(s));
        Keys {
            sent,
            reply,
            subject: key(&base),
            from: key(&mailbox(env.from.as_ref())),
            to: key(&mailbox(env.to.as_ref())),
            cc: key(&mailbox(env.cc.as_ref())),
            display_from: key(&display(env.from.as_ref())),
            display_to: key(&display(env.to.as_ref())),
            refs: refs_of(header),
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(VERSION);
        match self.sent {
            Some(t) => {
                out.push(1);
                out.extend_from_slice(&t.to_le_bytes());
            }
            None => out.push(0),
        }
        out.push(self.reply as u8);
        let strings = [
            &self.subject,
            &self.from,
            &self.to,
            &self.cc,
            &self.display_from,
            &self.display_to,
        ];
        for s in strings {
            put(&mut out, s);
        }
        match &self.refs.message_id {
            Some(id) => {
                out.push(1);
                put(&mut out, id);
            }
            None => out.push(0),
        }
        out.extend_from_slice(&(self.refs.references.len() as u32).to_le_bytes());
        for r in &self.refs.references {
            put(&mut out, r);
        }
        out
    }

    /// `None` for a row of another version or a damaged one (then it is computed again).
    #[cfg(test)]
    pub(crate) fn decode(b: &[u8]) -> Option<Keys> {
        Self::decode_fields(b, Fields::ALL)
    }

    /// [`Keys::decode`] of the `fields` wanted; the other strings are left empty (but checked).
    pub(crate) fn decode_fields(b: &[u8], fields: Fields) -> Option<Keys> {
        let mut r = Reader { b, i: 0 };
        if r.byte()? != VERSION {
            return None;
        }
        let sent = match r.byte()? {
            0 => None,
            _ => Some(i64::from_le_bytes(r.take(8)?.try_into().ok()?)),
        };
        let reply = r.byte()? != 0;
        let mut field = |f: Fields| r.string(fields.has(f));
        let mut k = Keys {
            sent,
            reply,
            subject: field(Fields::SUBJECT)?,
            from: field(Fields::FROM)?,
            to: field(Fields::TO)?,
            cc: field(Fields::CC)?,
            display_from: field(Fields::DISPLAY_FROM)?,
            display_to: field(Fields::DISPLAY_TO)?,
            refs: Refs::default(),
        };
        let refs = fields.has(Fields::REFS);
        if r.byte()? != 0 {
            let id = r.string(refs)?;
            k.refs.message_id = refs.then_some(id);
        }
        let n = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
        // Each reference takes at least its 4-byte length: a damaged count cannot allocate.
        if n > (b.len() - r.i) / 4 {
            return None;
        }
        if refs {
            k.refs.references.reserve(n);
        }
        for _ in 0..n {
            let s = r.string(refs)?;
            if refs {
                k.refs.references.push(s);
            }
        }
        (r.i == b.len()).then_some(k)
    }
}

fn put(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.i..self.i.checked_add(n)?)?;
        self.i += n;
        Some(s)
    }
    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    /// The next string, or an empty one when not `wanted` (still checked to be UTF-8).
    fn string(&mut self, wanted: bool) -> Option<String> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        let s = std::str::from_utf8(self.take(n)?).ok()?;
        Some(if wanted { s.to_owned() } else { String::new() })
    }
}

/// The keys of the view entries `idx` (ascending), in that order (of saved rows only the
/// `fields` wanted; computed ones are whole): saved ones read in one
/// store call, missing ones computed from the stored parse and header and saved. A message
/// expunged meanwhile gets empty keys (its INTERNALDATE as its date), not saved.
pub(crate) async fn load(
    ctx: &Ctx<'_>,
    idx: &[usize],
    fields: Fields,
    deadline: Instant,
) -> CmdResult<Vec<Keys>> {
    let mailbox = ctx.sel.mailbox.id;
    let uids: Vec<u32> = idx.iter().map(|&i| ctx.sel.messages[i].uid).collect();
    let saved = ctx.store.sort_keys(mailbox, &uids).await?;
    check_budget(deadline)?;
    let mut out: Vec<Option<Keys>> = Vec::with_capacity(idx.len());
    let mut saved = saved.into_iter().peekable();
    for &uid in &uids {
        while saved.next_if(|(u, _)| *u < uid).is_some() {}
        out.push(
            saved
                .next_if(|(u, _)| *u == uid)
                .and_then(|(_, k)| Keys::decode_fields(&k, fields)),
        );
    }
    let missing: Vec<usize> = (0..out.len()).filter(|&n| out[n].is_none()).collect();
    let compute_deadline = deadline.max(Instant::now() + COMPUTE_BUDGET);
    for chunk in missing.chunks(BATCH) {
        check_budget(compute_deadline)?;
        let chunk_uids: Vec<u32> = chunk.iter().map(|&n| uids[n]).collect();
        let infos = ctx.store.parsed_infos(mailbox, &chunk_uids).await?;
        let mut found = infos.into_iter().peekable();
        let mut to_save = Vec::with_capacity(chunk.len());
        for &n in chunk {
            let uid = uids[n];
            while found.next_if(|(u, _)| *u < uid).is_some() {}
            let Some((_, p)) = found.next_if(|(u, _)| *u == uid) else {
                out[n] = Some(Keys::default());
                continue;
            };
            let bytes = match ctx.store.message_bytes(mailbox, uid).await {
                Ok(b) => b,
                Err(mailkeep_store::StoreError::NoSuchMailbox) => {
                    out[n] = Some(Keys::default());
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let k = Keys::compute(&p.envelope, p.sent_date, header_part(&bytes));
            to_save.push((uid, k.encode()));
            out[n] = Some(k);
        }
        ctx.store.save_sort_keys(mailbox, to_save).await?;
    }
    Ok(out.into_iter().map(Option::unwrap_or_default).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let env = br#"("Mon, 3 Jan 2000 10:00:00 +0000" "Re: Plans" (("Joe" NIL "joe" "x.org")) NIL NIL (("=?utf-8?q?Andr=C3=A9?=" NIL "andre" "y.org")) NIL NIL NIL "<m2@x>")"#;
        let header = b"Message-ID: <m2@x>\r\nReferences: <m0@x> <m1@x>\r\n\r\n";
        let k = Keys::compute(env, Some(946_893_600), header);
        assert_eq!(k.sent, Some(946_893_600));
        assert!(k.reply);
        assert_eq!(k.subject, casemap_key("Plans"));
        assert_eq!(k.from, casemap_key("joe"));
        assert_eq!(k.display_to, casemap_key("André"));
        assert_eq!(k.cc, "");
        assert_eq!(k.refs.message_id.as_deref(), Some("m2@x"));
        assert_eq!(k.refs.references, ["m0@x", "m1@x"]);
        let enc = k.encode();
        assert_eq!(Keys::decode(&enc), Some(k.clone()));
        assert_eq!(
            Keys::decode(&Keys::default().encode()),
            Some(Keys::default())
        );
        // Another version, a cut row, a trailing byte, a huge count: computed again.
        let mut other = enc.clone();
        other[0] = VERSION + 1;
        assert_eq!(Keys::decode(&other), None);
        for n in 0..enc.len() {
            assert_eq!(Keys::decode(&enc[..n]), None, "cut at {n}");
        }
        let mut longer = enc.clone();
        longer.push(0);
        assert_eq!(Keys::decode(&longer), None);
        // Only the wanted strings are kept.
        let some = Keys::decode_fields(&enc, Fields::FROM).unwrap();
        assert_eq!(
            (some.from.as_str(), some.subject.as_str()),
            (k.from.as_str(), "")
        );
        assert_eq!(some.refs, Refs::default());
        assert_eq!(some.sent, k.sent);
        let mut huge = Keys::default().encode();
        let at = huge.len() - 4;
        huge[at..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Keys::decode(&huge), None);
    }
}
