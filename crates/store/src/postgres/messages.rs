//! Messages: append, flags, expunge and tombstones, copy and move, reads, text search,
//! \Recent, the integrity check. Bodies are content-addressed rows of `bodies`, shared by the
//! messages and tombstones that hold them and deleted with the last of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::cached;
use deadpool_postgres::{GenericClient, Transaction};
use sha2::{Digest, Sha256};
use tokio_postgres::Row;

use super::accounts::quota_settings;
use super::bodies::{self, Bodies};
use crate::{
    Changes, FlagOp, FlagUpdate, Flags, MailboxId, MailboxStatus, MessageBytes, MessageMeta,
    NewMessage, ParsedInfo, QuotaLimits, Result, StoreError, StoreFlagsResult, UserId, flagops,
    flags,
};

/// The channel of change notifications between nodes.
pub(super) const CHANNEL: &str = "mailkeep";

/// zstd level of stored bodies.
const LEVEL: i32 = 3;

/// How long an expunged message's body stays readable (RFC 2180 §4.1.1): as the embedded
/// store, one hour, longer than a session's 30-minute autologout.
const EXPUNGE_GRACE_SECS: i64 = 3600;

type Changed = Vec<(MailboxId, u64)>;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub(super) fn uids_sql(uids: &[u32]) -> Vec<i64> {
    uids.iter().map(|&u| i64::from(u)).collect()
}

/// Tells the other nodes, once the transaction commits, which mailboxes changed.
pub(super) async fn send_notifications(
    tx: &Transaction<'_>,
    changed: &[(MailboxId, u64)],
) -> Result<()> {
    let mut latest: BTreeMap<MailboxId, u64> = BTreeMap::new();
    for &(mb, modseq) in changed {
        let e = latest.entry(mb).or_insert(modseq);
        *e = (*e).max(modseq);
    }
    for (mb, modseq) in latest {
        let payload = format!("{mb}:{modseq}");
        tx.execute(
            &cached(tx, "SELECT pg_notify($1, $2)").await?,
            &[&CHANNEL, &payload],
        )
        .await?;
    }
    Ok(())
}

/// STATUS counters of a change: (messages, unseen, deleted, size).
#[derive(Default, Clone, Copy)]
struct Counts {
    messages: i64,
    unseen: i64,
    deleted: i64,
    size: i64,
}

impl Counts {
    fn of(system: u32, size: i64) -> Counts {
        Counts {
            messages: 1,
            unseen: i64::from(system & flags::SEEN == 0),
            deleted: i64::from(system & flags::DELETED != 0),
            size,
        }
    }
    fn flags_only(system: u32) -> Counts {
        Counts {
            messages: 0,
            ..Counts::of(system, 0)
        }
    }
    fn add(&mut self, o: Counts) {
        self.messages += o.messages;
        self.unseen += o.unseen;
        self.deleted += o.deleted;
        self.size += o.size;
    }
    fn sub(&mut self, o: Counts) {
        self.messages -= o.messages;
        self.unseen -= o.unseen;
        self.deleted -= o.deleted;
        self.size -= o.size;
    }
}

/// Sets the mailbox's UIDNEXT and HIGHESTMODSEQ and adds `c` to its counters.
async fn update_mailbox(
    tx: &Transaction<'_>,
    mailbox: MailboxId,
    uidnext: i64,
    modseq: i64,
    c: Counts,
) -> Result<()> {
    tx.execute(
        &cached(
            tx,
            "UPDATE mailboxes SET uidnext = $2, highest_modseq = $3, messages = messages + $4,
            unseen = unseen + $5, deleted = deleted + $6, size = size + $7 WHERE id = $1",
        )
        .await?,
        &[
            &mailbox,
            &uidnext,
            &modseq,
            &c.messages,
            &c.unseen,
            &c.deleted,
            &c.size,
        ],
    )
    .await?;
    Ok(())
}

/// A mailbox's state, its row locked until the transaction ends.
struct Locked {
    uidvalidity: i64,
    uidnext: i64,
    highest_modseq: i64,
}

async fn lock(tx: &Transaction<'_>, mailbox: MailboxId) -> Result<Locked> {
    let r = tx
        .query_opt(
            &cached(
                tx,
                "SELECT uidvalidity, uidnext, highest_modseq FROM mailboxes
             WHERE id = $1 FOR UPDATE",
            )
            .await?,
            &[&mailbox],
        )
        .await?
        .ok_or(StoreError::NoSuchMailbox)?;
    Ok(Locked {
        uidvalidity: r.get(0),
        uidnext: r.get(1),
        highest_modseq: r.get(2),
    })
}

async fn owner<C: GenericClient>(c: &C, mailbox: MailboxId) -> Result<UserId> {
    c.query_opt(
        &cached(c, "SELECT user_id FROM mailboxes WHERE id = $1").await?,
        &[&mailbox],
    )
    .await?
    .map(|r| r.get(0))
    .ok_or(StoreError::NoSuchMailbox)
}

pub(super) async fn require_mailbox<C: GenericClient>(c: &C, mailbox: MailboxId) -> Result<()> {
    owner(c, mailbox).await.map(|_| ())
}

/// (storage, messages) used by the account: the sum of its mailboxes' counters.
pub(super) async fn usage<C: GenericClient>(c: &C, user: UserId) -> Result<(u64, u64)> {
    let r = c
        .query_one(
            &cached(
                c,
                "SELECT coalesce(sum(size), 0)::bigint, coalesce(sum(messages), 0)::bigint
             FROM mailboxes WHERE user_id = $1",
            )
            .await?,
            &[&user],
        )
        .await?;
    Ok((r.get::<_, i64>(0) as u64, r.get::<_, i64>(1) as u64))
}

/// The effective limits of the account, its row locked (writers adding to it go one at a time).
async fn lock_quota(
    tx: &Transaction<'_>,
    user: UserId,
    default: QuotaLimits,
) -> Result<QuotaLimits> {
    let (s, m) = quota_settings(tx, user, true).await?;
    Ok(QuotaLimits {
        storage: s.effective(default.storage),
        messages: m.effective(default.messages),
    })
}

fn over(limit: Option<u64>, used: u64, add: u64) -> bool {
    limit.is_some_and(|l| used.saturating_add(add) > l)
}

// ---- bodies ----

/// The bytes to store for a message source (see [`MessageBytes`]), read off the async threads.
fn load_source(src: &MessageBytes) -> Result<Arc<Vec<u8>>> {
    match src {
        MessageBytes::Memory(b) => Ok(b.clone()),
        MessageBytes::File(p) => Ok(Arc::new(std::fs::read(p)?)),
        MessageBytes::Received { path, len, binary } => {
            use std::io::Read;
            let mut raw = Vec::with_capacity(usize::try_from(*len).unwrap_or(0).min(1 << 30));
            std::fs::File::open(path)?
                .take(*len)
                .read_to_end(&mut raw)?;
            if raw.len() as u64 != *len {
                return Err(StoreError::Internal(format!(
                    "message file {} has {} bytes, {len} expected",
                    path.display(),
                    raw.len()
                )));
            }
            Ok(Arc::new(
                match mailkeep_mime::prepare_received(&raw, *binary) {
                    std::borrow::Cow::Borrowed(_) => None,
                    std::borrow::Cow::Owned(v) => Some(v),
                }
                .unwrap_or(raw),
            ))
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Internal(format!("store task: {e}")))?
}

/// Lower-cased text for the search index (PostgreSQL text holds no NUL).
fn fold(text: &str) -> String {
    text.to_lowercase().replace('\0', " ")
}

/// A body's row, new: packed bytes, parse, and the lower-cased header and body text.
struct NewBody {
    packed: Vec<u8>,
    parsed: ParsedInfo,
    header: String,
    body: String,
    /// SORT/THREAD keys (`mailkeep_mime::sortkeys`), kept at delivery in `sort_keys`.
    sort_keys: Vec<u8>,
}

fn pack_body(data: &[u8], parsed: ParsedInfo, analyze: bool) -> Result<NewBody> {
    let mut parsed = if analyze {
        ParsedInfo::from(mailkeep_mime::analyze(data))
    } else {
        parsed
    };
    if parsed.search_text.is_empty() && !data.is_empty() {
        // A caller that left the text out (LMTP's further recipients of one body).
        let a = mailkeep_mime::analyze(data);
        parsed.search_text = a.search_text;
        parsed.search_body_offset = a.search_body_offset;
    }
    let text = std::mem::take(&mut parsed.search_text);
    let mut at = parsed.search_body_offset.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    parsed.search_body_offset = 0;
    let packed = zstd::bulk::compress(data, LEVEL)?;
    let sort_keys = mailkeep_mime::sortkeys::sort_keys(data, &parsed.envelope, parsed.sent_date);
    Ok(NewBody {
        packed,
        sort_keys,
        header: fold(&text[..at]),
        body: fold(&text[at..]),
        parsed,
    })
}

/// Makes sure the body `data` (hash `hash`) is stored, for a message about to refer to it.
/// With `lock` false it takes no lock on a body that is there: if another transaction deletes
/// it meanwhile (its last reference gone), the message's foreign key fails and the transaction
/// runs again. With `lock` (a batch, which takes its bodies in hash order: see [`append`]) it
/// takes the row lock the foreign key would take, now.
/// A new body for a file store is written there first, under the body's advisory lock (held
/// to the commit; see [`bodies`]), and its row keeps an empty `data`.
async fn acquire_body(
    tx: &Transaction<'_>,
    store: &Bodies,
    hash: &[u8],
    data: Arc<Vec<u8>>,
    parsed: ParsedInfo,
    analyze: bool,
    lock: bool,
) -> Result<()> {
    let there = if lock {
        "SELECT 1 FROM bodies WHERE hash = $1 FOR KEY SHARE"
    } else {
        "SELECT 1 FROM bodies WHERE hash = $1"
    };
    if tx
        .query_opt(&cached(tx, there).await?, &[&hash])
        .await?
        .is_some()
    {
        return Ok(());
    }
    let external = store.new_store();
    if external.is_some() {
        tx.execute(
            &cached(tx, "SELECT pg_advisory_xact_lock($1)").await?,
            &[&bodies::lock_key(hash)],
        )
        .await?;
        // A writer that held the lock before may have committed the row meanwhile.
        if tx
            .query_opt(
                &cached(tx, "SELECT 1 FROM bodies WHERE hash = $1").await?,
                &[&hash],
            )
            .await?
            .is_some()
        {
            return Ok(());
        }
    }
    let size = data.len() as i64;
    let mut nb = blocking(move || pack_body(&data, parsed, analyze)).await?;
    if let Some(name) = external {
        let packed = std::mem::take(&mut nb.packed);
        store.put(name, hash, packed).await?;
    }
    let p = &nb.parsed;
    let inserted = tx
        .query_opt(
            &cached(tx, "INSERT INTO bodies(hash, size, data, envelope, bodystructure, body, parts, sent_date)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (hash) DO NOTHING RETURNING 1").await?,
            &[
                &hash,
                &size,
                &nb.packed,
                &p.envelope,
                &p.bodystructure,
                &p.body,
                &p.parts,
                &p.sent_date,
            ],
        )
        .await?
        .is_some();
    if inserted {
        tx.execute(
            &cached(
                tx,
                "INSERT INTO search(hash, header, body) VALUES ($1, $2, $3)",
            )
            .await?,
            &[&hash, &nb.header, &nb.body],
        )
        .await?;
        super::objects::save_delivered_sort_keys(tx, hash, &nb.sort_keys).await?;
        if let Some(name) = external {
            tx.execute(
                &cached(tx, "INSERT INTO body_files(hash, store) VALUES ($1, $2)").await?,
                &[&hash, &name],
            )
            .await?;
        }
    }
    Ok(())
}

/// Deletes those of `hashes` that no message or tombstone refers to any more (their search
/// text goes with them); the files of those kept outside the table are queued for deletion
/// after the commit (see [`bodies`]).
async fn release_bodies(tx: &Transaction<'_>, mut hashes: Vec<Vec<u8>>) -> Result<()> {
    if hashes.is_empty() {
        return Ok(());
    }
    hashes.sort();
    hashes.dedup();
    if hashes.len() > 1 {
        // The rows to delete are locked first, in hash order (ORDER BY locks after sorting),
        // the order a batch append takes its bodies in: so the two never deadlock.
        tx.query(
            &cached(
                tx,
                "SELECT 1 FROM bodies b WHERE b.hash = ANY($1)
                 AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.body_hash = b.hash)
                 AND NOT EXISTS (SELECT 1 FROM expunged e WHERE e.body_hash = b.hash)
                 ORDER BY b.hash FOR UPDATE OF b",
            )
            .await?,
            &[&hashes],
        )
        .await?;
    }
    let queued = tx
        .execute(
            &cached(
                tx,
                "WITH gone AS (DELETE FROM bodies b WHERE b.hash = ANY($1)
                 AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.body_hash = b.hash)
                 AND NOT EXISTS (SELECT 1 FROM expunged e WHERE e.body_hash = b.hash)
                 RETURNING b.hash)
             INSERT INTO body_deletions(hash, store, queued_at)
             SELECT f.hash, f.store, $2 FROM body_files f JOIN gone g ON g.hash = f.hash
             ON CONFLICT DO NOTHING",
            )
            .await?,
            &[&hashes, &now()],
        )
        .await?;
    if queued > 0 {
        bodies::note_released();
    }
    Ok(())
}

// ---- append ----

/// UIDs given for an import must be strictly ascending and not 0.
pub(super) fn check_ascending(uids: &[u32]) -> Result<()> {
    if uids.first() == Some(&0) || uids.windows(2).any(|w| w[0] >= w[1]) {
        return Err(StoreError::Cannot(
            "import UIDs must be strictly ascending and above 0".into(),
        ));
    }
    Ok(())
}

/// A message of an append whose body is stored (or, in a batch, whose body is yet to be
/// stored from `source`).
struct Pending {
    hash: Vec<u8>,
    delivery: mailkeep_mime::DeliveryInfo,
    size: i64,
    received: bool,
    source: Option<MessageBytes>,
    parsed: Option<ParsedInfo>,
    flags: Flags,
    internal_date: i64,
    internal_date_offset: i32,
}

/// Appends `messages` to `mailbox`, with the next UIDs, or with the UIDs `given` (an import:
/// one per message, strictly ascending, the first at least UIDNEXT; `Cannot` if not).
pub(super) async fn append(
    tx: &Transaction<'_>,
    store: &Bodies,
    mailbox: MailboxId,
    messages: Vec<NewMessage>,
    given: Option<&[u32]>,
    default: QuotaLimits,
) -> Result<((u32, Vec<u32>), Changed)> {
    // Lock order: the account (quota), then the mailbox, then bodies.
    let user = owner(tx, mailbox).await?;
    let limits = lock_quota(tx, user, default).await?;
    let mb = lock(tx, mailbox).await?;
    let uidvalidity = mb.uidvalidity as u32;
    if let Some(given) = given {
        check_ascending(given)?;
        if given.len() != messages.len() {
            return Err(StoreError::Internal("one UID per imported message".into()));
        }
        if let Some(&first) = given.first()
            && i64::from(first) < mb.uidnext
        {
            return Err(StoreError::Cannot(format!(
                "import UID {first} is below the mailbox's UIDNEXT {}",
                mb.uidnext
            )));
        }
    }
    if messages.is_empty() {
        return Ok(((uidvalidity, Vec::new()), Vec::new()));
    }
    let (used_storage, used_messages) = usage(tx, user).await?;
    if over(limits.messages, used_messages, messages.len() as u64) {
        return Err(StoreError::OverQuota);
    }
    let last = match given {
        Some(g) => g.last().map_or(0, |&u| i64::from(u)),
        None => mb.uidnext + messages.len() as i64 - 1,
    };
    if last + 1 > i64::from(u32::MAX) {
        return Err(StoreError::Cannot(
            "UID space of the mailbox exhausted".into(),
        ));
    }
    let modseq = mb.highest_modseq + 1;
    let mut uid = mb.uidnext;
    let mut uids = Vec::with_capacity(messages.len());
    let mut counts = Counts::default();
    // A batch takes its bodies in hash order, not in the order of its messages: two batches
    // sharing bodies in opposite orders (or a batch and a transaction letting bodies go, which
    // locks them in hash order) would otherwise each hold a body the other waits for, and
    // PostgreSQL would abort one as a deadlock. So a batch reads its messages twice: once for
    // their hashes, once (in hash order) to store the bodies. One message at a time either
    // way: its bytes are dropped before the next is read.
    let batch = messages.len() > 1;
    let mut pending = Vec::with_capacity(messages.len());
    let mut size_so_far = 0i64;
    for m in messages {
        let received = matches!(m.data, MessageBytes::Received { .. });
        let source = m.data;
        let (data, hash, delivery, source) = blocking(move || {
            let data = load_source(&source)?;
            let hash = Sha256::digest(&*data).to_vec();
            let delivery = mailkeep_mime::delivery_info(&data);
            Ok((data, hash, delivery, source))
        })
        .await?;
        let size = data.len() as i64;
        size_so_far += size;
        if over(limits.storage, used_storage, size_so_far as u64) {
            return Err(StoreError::OverQuota);
        }
        let (source, parsed) = if batch {
            (Some(source), Some(m.parsed))
        } else {
            acquire_body(tx, store, &hash, data, m.parsed, received, false).await?;
            (None, None)
        };
        pending.push(Pending {
            hash,
            delivery,
            size,
            received,
            source,
            parsed,
            flags: m.flags,
            internal_date: m.internal_date,
            internal_date_offset: m.internal_date_offset,
        });
    }
    if batch {
        let mut order: Vec<usize> = (0..pending.len()).collect();
        order.sort_by(|&a, &b| pending[a].hash.cmp(&pending[b].hash));
        order.dedup_by(|a, b| pending[*a].hash == pending[*b].hash);
        for i in order {
            let p = &mut pending[i];
            let (Some(source), Some(parsed)) = (p.source.take(), p.parsed.take()) else {
                continue;
            };
            let data = blocking(move || load_source(&source)).await?;
            acquire_body(tx, store, &p.hash, data, parsed, p.received, true).await?;
        }
    }
    for (i, m) in pending.into_iter().enumerate() {
        if let Some(g) = given {
            uid = i64::from(g[i]);
        }
        let (hash, size) = (m.hash, m.size);
        super::objects::on_append(tx, user, &hash, &m.delivery).await?;
        let f = flagops::normalize(&m.flags);
        tx.execute(
            &cached(
                tx,
                "INSERT INTO messages(mailbox_id, uid, body_hash, size, flags, keywords, modseq,
                internal_date, date_offset) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .await?,
            &[
                &mailbox,
                &uid,
                &hash,
                &size,
                &(f.system as i32),
                &f.keywords,
                &modseq,
                &m.internal_date,
                &m.internal_date_offset,
            ],
        )
        .await?;
        counts.add(Counts::of(f.system, size));
        uids.push(uid as u32);
        uid += 1;
    }
    update_mailbox(tx, mailbox, uid, modseq, counts).await?;
    Ok(((uidvalidity, uids), vec![(mailbox, modseq as u64)]))
}

/// REPLACE (RFC 8508): expunges `uid` from `from` and appends `message` to the user's
/// mailbox `name`, in the caller's transaction. The expunge goes first, so the quota counts
/// the change net (§3.4). `None` (nothing done) if there is no mailbox `name`; NoSuchMailbox
/// (nothing done) if `uid` is not in `from`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn replace(
    tx: &Transaction<'_>,
    store: &Bodies,
    from: MailboxId,
    uid: u32,
    user: UserId,
    name: &str,
    message: NewMessage,
    default: QuotaLimits,
) -> Result<(Option<(u32, u32)>, Changed)> {
    // Lock order: the account, then the mailboxes by ascending id.
    lock_quota(tx, user, default).await?;
    let Some(target) = super::accounts::get_mailbox(tx, user, name).await? else {
        let there = tx
            .query_opt(
                &cached(
                    tx,
                    "SELECT 1 FROM messages WHERE mailbox_id = $1 AND uid = $2",
                )
                .await?,
                &[&from, &i64::from(uid)],
            )
            .await?;
        return match there {
            Some(_) => Ok((None, Vec::new())),
            None => Err(StoreError::NoSuchMailbox),
        };
    };
    let (first, second) = (from.min(target.id), from.max(target.id));
    lock(tx, first).await?;
    if second != first {
        lock(tx, second).await?;
    }
    let there = tx
        .query_opt(
            &cached(
                tx,
                "SELECT 1 FROM messages WHERE mailbox_id = $1 AND uid = $2",
            )
            .await?,
            &[&from, &i64::from(uid)],
        )
        .await?;
    if there.is_none() {
        return Err(StoreError::NoSuchMailbox);
    }
    let (_, mut changed) = expunge_locked(tx, from, &[uid]).await?;
    let ((uidvalidity, uids), more) =
        append(tx, store, target.id, vec![message], None, default).await?;
    changed.extend(more);
    Ok((uids.first().map(|&u| (uidvalidity, u)), changed))
}

// ---- reads ----

pub(super) async fn status<C: GenericClient>(c: &C, mailbox: MailboxId) -> Result<MailboxStatus> {
    let r = c
        .query_opt(
            &cached(
                c,
                "SELECT mb.messages, mb.unseen, mb.deleted, mb.size, mb.uidnext, mb.uidvalidity,
                mb.highest_modseq,
                (SELECT count(*) FROM messages m
                 WHERE m.mailbox_id = mb.id AND m.uid >= mb.recent_boundary)
             FROM mailboxes mb WHERE mb.id = $1",
            )
            .await?,
            &[&mailbox],
        )
        .await?
        .ok_or(StoreError::NoSuchMailbox)?;
    Ok(MailboxStatus {
        messages: r.get::<_, i64>(0) as u32,
        unseen: r.get::<_, i64>(1) as u32,
        deleted: r.get::<_, i64>(2) as u32,
        size: r.get::<_, i64>(3) as u64,
        uidnext: r.get::<_, i64>(4) as u32,
        uidvalidity: r.get::<_, i64>(5) as u32,
        highest_modseq: r.get::<_, i64>(6) as u64,
        recent: r.get::<_, i64>(7) as u32,
    })
}

const META_COLS: &str = "uid, flags, keywords, modseq, size, internal_date, date_offset";

fn meta_from_row(r: &Row) -> MessageMeta {
    MessageMeta {
        uid: r.get::<_, i64>(0) as u32,
        flags: Flags {
            system: r.get::<_, i32>(1) as u32,
            keywords: r.get(2),
        },
        modseq: r.get::<_, i64>(3) as u64,
        size: r.get::<_, i64>(4) as u64,
        internal_date: r.get(5),
        internal_date_offset: r.get(6),
    }
}

pub(super) async fn messages<C: GenericClient>(
    c: &C,
    mailbox: MailboxId,
) -> Result<Vec<MessageMeta>> {
    require_mailbox(c, mailbox).await?;
    let sql = format!("SELECT {META_COLS} FROM messages WHERE mailbox_id = $1 ORDER BY uid");
    Ok(c.query(&cached(c, &sql).await?, &[&mailbox])
        .await?
        .iter()
        .map(meta_from_row)
        .collect())
}

pub(super) async fn changes_since(
    tx: &Transaction<'_>,
    mailbox: MailboxId,
    since: u64,
) -> Result<Changes> {
    let r = tx
        .query_opt(
            &cached(
                tx,
                "SELECT highest_modseq, uidnext, pruned_modseq FROM mailboxes WHERE id = $1",
            )
            .await?,
            &[&mailbox],
        )
        .await?
        .ok_or(StoreError::NoSuchMailbox)?;
    let since = i64::try_from(since).unwrap_or(i64::MAX);
    let sql = format!(
        "SELECT {META_COLS} FROM messages WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid"
    );
    let changed = tx
        .query(&cached(tx, &sql).await?, &[&mailbox, &since])
        .await?
        .iter()
        .map(meta_from_row)
        .collect();
    let expunged = tx
        .query(
            &cached(
                tx,
                "SELECT uid FROM expunged WHERE mailbox_id = $1 AND modseq > $2 ORDER BY uid",
            )
            .await?,
            &[&mailbox, &since],
        )
        .await?
        .iter()
        .map(|r| r.get::<_, i64>(0) as u32)
        .collect();
    Ok(Changes {
        changed,
        expunged,
        pruned_modseq: r.get::<_, i64>(2) as u64,
        highest_modseq: r.get::<_, i64>(0) as u64,
        uidnext: r.get::<_, i64>(1) as u32,
    })
}

/// The body hash of a message, or of a tombstone still holding its body.
const BODY_OF: &str = "(SELECT body_hash FROM messages WHERE mailbox_id = $1 AND uid = $2
     UNION ALL
     SELECT body_hash FROM expunged
     WHERE mailbox_id = $1 AND uid = $2 AND body_hash IS NOT NULL
     LIMIT 1)";

pub(super) async fn message_bytes<C: GenericClient>(
    c: &C,
    store: &Bodies,
    mailbox: MailboxId,
    uid: u32,
) -> Result<Vec<u8>> {
    let sql = format!(
        "SELECT b.size, b.data, b.hash, f.store FROM bodies b
         LEFT JOIN body_files f ON f.hash = b.hash WHERE b.hash = {BODY_OF}"
    );
    let r = c
        .query_opt(&cached(c, &sql).await?, &[&mailbox, &i64::from(uid)])
        .await?
        .ok_or(StoreError::NoSuchMailbox)?;
    let size: i64 = r.get(0);
    let mut packed: Vec<u8> = r.get(1);
    if let Some(name) = r.get::<_, Option<String>>(3) {
        let hash: Vec<u8> = r.get(2);
        packed = match store.get(&name, &hash).await? {
            Some(p) => p,
            // Its last reference went (and the file with it) since the row was read.
            None if c
                .query_opt(
                    &cached(c, "SELECT 1 FROM bodies WHERE hash = $1").await?,
                    &[&hash],
                )
                .await?
                .is_none() =>
            {
                return Err(StoreError::NoSuchMailbox);
            }
            None => {
                return Err(StoreError::Internal(format!(
                    "body {} of {mailbox}/{uid} is missing from the {name} store",
                    hex::encode(&hash)
                )));
            }
        };
    }
    let data =
        blocking(move || zstd::bulk::decompress(&packed, size as usize).map_err(StoreError::from))
            .await?;
    if data.len() as i64 != size {
        return Err(StoreError::Internal(format!(
            "body of {mailbox}/{uid} has {} bytes, index says {size}",
            data.len()
        )));
    }
    Ok(data)
}

/// Parsed info of `uids` (ascending), without search text; `with_expunged` also finds
/// tombstones still holding their body (a single FETCH after an expunge).
pub(super) async fn parsed_infos<C: GenericClient>(
    c: &C,
    mailbox: MailboxId,
    uids: &[u32],
    with_expunged: bool,
) -> Result<Vec<(u32, ParsedInfo)>> {
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let held = if with_expunged {
        "UNION ALL SELECT uid, body_hash FROM expunged
         WHERE mailbox_id = $1 AND uid = ANY($2) AND body_hash IS NOT NULL"
    } else {
        ""
    };
    let sql = format!(
        "SELECT DISTINCT ON (x.uid) x.uid, b.envelope, b.bodystructure, b.body, b.parts,
            b.sent_date
         FROM (SELECT uid, body_hash FROM messages WHERE mailbox_id = $1 AND uid = ANY($2)
               {held}) x
         JOIN bodies b ON b.hash = x.body_hash ORDER BY x.uid"
    );
    Ok(
        c.query(&cached(c, &sql).await?, &[&mailbox, &uids_sql(uids)])
            .await?
            .iter()
            .map(|r| {
                (
                    r.get::<_, i64>(0) as u32,
                    ParsedInfo {
                        envelope: r.get(1),
                        bodystructure: r.get(2),
                        body: r.get(3),
                        parts: r.get(4),
                        search_text: String::new(),
                        search_body_offset: 0,
                        sent_date: r.get(5),
                    },
                )
            })
            .collect(),
    )
}

// ---- flags ----

pub(super) async fn set_flags(
    tx: &Transaction<'_>,
    mailbox: MailboxId,
    uids: &[u32],
    op: FlagOp,
    arg: &Flags,
    unchanged_since: Option<u64>,
) -> Result<(StoreFlagsResult, Changed)> {
    let mb = lock(tx, mailbox).await?;
    let sql = format!(
        "SELECT {META_COLS} FROM messages WHERE mailbox_id = $1 AND uid = ANY($2) ORDER BY uid"
    );
    let rows = tx
        .query(&cached(tx, &sql).await?, &[&mailbox, &uids_sql(uids)])
        .await?;
    let modseq = mb.highest_modseq + 1;
    let mut out = StoreFlagsResult::default();
    let mut counts = Counts::default();
    // The changed rows, written by one UPDATE below (not one per message).
    let (mut uids, mut systems, mut keywords) = (Vec::new(), Vec::new(), Vec::new());
    for r in rows.iter().map(meta_from_row) {
        // RFC 7162 §3.1.3: fail messages modified after UNCHANGEDSINCE.
        if unchanged_since.is_some_and(|u| r.modseq > u) {
            out.modified.push(r.uid);
            continue;
        }
        let new = flagops::apply(op, &r.flags, arg);
        if new != r.flags {
            counts.add(Counts::flags_only(new.system));
            counts.sub(Counts::flags_only(r.flags.system));
            uids.push(i64::from(r.uid));
            systems.push(new.system as i32);
            keywords.push(array_literal(&new.keywords));
            out.updated.push(FlagUpdate {
                uid: r.uid,
                flags: new,
                modseq: modseq as u64,
            });
        } else if op == FlagOp::Replace {
            out.updated.push(FlagUpdate {
                uid: r.uid,
                flags: r.flags,
                modseq: r.modseq,
            });
        }
    }
    if !uids.is_empty() {
        // A text[] per row travels as its literal: unnest cannot take ragged text[][].
        tx.execute(
            &cached(
                tx,
                "UPDATE messages AS m SET flags = t.f, keywords = t.k::text[], modseq = $5
             FROM unnest($2::bigint[], $3::int[], $4::text[]) AS t(u, f, k)
             WHERE m.mailbox_id = $1 AND m.uid = t.u",
            )
            .await?,
            &[&mailbox, &uids, &systems, &keywords, &modseq],
        )
        .await?;
    }
    let mut changed = Vec::new();
    if out.updated.iter().any(|u| u.modseq == modseq as u64) {
        update_mailbox(tx, mailbox, mb.uidnext, modseq, counts).await?;
        changed.push((mailbox, modseq as u64));
    }
    Ok((out, changed))
}

/// `words` as a PostgreSQL array literal (`{"a","b\"c"}`): every element quoted, `"` and
/// `\` escaped, so any text survives the `::text[]` cast.
fn array_literal(words: &[String]) -> String {
    let mut s = String::from("{");
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push('"');
        for c in w.chars() {
            if c == '"' || c == '\\' {
                s.push('\\');
            }
            s.push(c);
        }
        s.push('"');
    }
    s.push('}');
    s
}

// ---- expunge and tombstones ----

pub(super) async fn expunge_locked(
    tx: &Transaction<'_>,
    mailbox: MailboxId,
    uids: &[u32],
) -> Result<(Vec<u32>, Changed)> {
    let mb = lock(tx, mailbox).await?;
    let rows = tx
        .query(
            &cached(
                tx,
                "DELETE FROM messages WHERE mailbox_id = $1 AND uid = ANY($2)
             RETURNING uid, body_hash, flags, size",
            )
            .await?,
            &[&mailbox, &uids_sql(uids)],
        )
        .await?;
    if rows.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let modseq = mb.highest_modseq + 1;
    let mut gone: Vec<(i64, Vec<u8>)> = Vec::with_capacity(rows.len());
    let mut counts = Counts::default();
    for r in &rows {
        counts.sub(Counts::of(r.get::<_, i32>(2) as u32, r.get(3)));
        gone.push((r.get(0), r.get(1)));
    }
    gone.sort();
    let (uids, hashes): (Vec<i64>, Vec<Vec<u8>>) = gone.into_iter().unzip();
    // Tombstones for changes_since (RFC 7162 VANISHED), holding the bodies for a while.
    tx.execute(
        &cached(
            tx,
            "INSERT INTO expunged(mailbox_id, uid, modseq, body_hash, expunged_at)
         SELECT $1, u, $3, h, $5 FROM unnest($2::bigint[], $4::bytea[]) AS t(u, h)",
        )
        .await?,
        &[&mailbox, &uids, &modseq, &hashes, &now()],
    )
    .await?;
    update_mailbox(tx, mailbox, mb.uidnext, modseq, counts).await?;
    release_held(tx, Some(mailbox), now() - EXPUNGE_GRACE_SECS).await?;
    Ok((
        uids.into_iter().map(|u| u as u32).collect(),
        vec![(mailbox, modseq as u64)],
    ))
}

/// Lets go of the bodies of tombstones expunged at or before `cutoff` (of one mailbox, or
/// of all).
async fn release_held(tx: &Transaction<'_>, mailbox: Option<MailboxId>, cutoff: i64) -> Result<()> {
    let rows = tx
        .query(
            &cached(
                tx,
                "WITH h AS (SELECT mailbox_id, uid, body_hash FROM expunged
                        WHERE body_hash IS NOT NULL AND expunged_at <= $1
                          AND ($2::bigint IS NULL OR mailbox_id = $2)
                        FOR UPDATE)
             UPDATE expunged e SET body_hash = NULL FROM h
             WHERE e.mailbox_id = h.mailbox_id AND e.uid = h.uid RETURNING h.body_hash",
            )
            .await?,
            &[&cutoff, &mailbox],
        )
        .await?;
    release_bodies(tx, rows.iter().map(|r| r.get(0)).collect()).await
}

pub(super) async fn prune_tombstones(
    tx: &Transaction<'_>,
    age: std::time::Duration,
) -> Result<u64> {
    let cutoff = now().saturating_sub(i64::try_from(age.as_secs()).unwrap_or(i64::MAX));
    let rows = tx
        .query(
            &cached(tx, "WITH gone AS (DELETE FROM expunged WHERE expunged_at <= $1
                           RETURNING mailbox_id, modseq, body_hash),
                  horizon AS (UPDATE mailboxes m SET pruned_modseq = greatest(m.pruned_modseq, g.top)
                              FROM (SELECT mailbox_id, max(modseq) AS top FROM gone
                                    GROUP BY mailbox_id) g
                              WHERE m.id = g.mailbox_id)
             SELECT body_hash FROM gone").await?,
            &[&cutoff],
        )
        .await?;
    let held = rows.iter().filter_map(|r| r.get(0)).collect();
    release_bodies(tx, held).await?;
    Ok(rows.len() as u64)
}

/// Periodic upkeep: lets go of the bodies of tombstones past the expunge grace period (in
/// every mailbox), then forgets tombstones older than `retention`. Returns how many went.
pub(super) async fn upkeep(tx: &Transaction<'_>, retention: std::time::Duration) -> Result<u64> {
    release_held(tx, None, now() - EXPUNGE_GRACE_SECS).await?;
    prune_tombstones(tx, retention).await
}

/// Removes a mailbox with its messages and tombstones; returns the modseq to wake its
/// sessions with (None if it was gone already).
pub(super) async fn drop_mailbox(tx: &Transaction<'_>, mailbox: MailboxId) -> Result<Option<u64>> {
    let mb = match lock(tx, mailbox).await {
        Ok(mb) => mb,
        Err(StoreError::NoSuchMailbox) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut hashes: Vec<Vec<u8>> = tx
        .query(
            &cached(
                tx,
                "DELETE FROM messages WHERE mailbox_id = $1 RETURNING body_hash",
            )
            .await?,
            &[&mailbox],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    hashes.extend(
        tx.query(
            &cached(
                tx,
                "DELETE FROM expunged WHERE mailbox_id = $1 RETURNING body_hash",
            )
            .await?,
            &[&mailbox],
        )
        .await?
        .iter()
        .filter_map(|r| r.get::<_, Option<Vec<u8>>>(0)),
    );
    tx.execute(
        &cached(tx, "DELETE FROM mailboxes WHERE id = $1").await?,
        &[&mailbox],
    )
    .await?;
    release_bodies(tx, hashes).await?;
    Ok(Some(mb.highest_modseq as u64 + 1))
}

// ---- copy and move ----

pub(super) async fn copy(
    tx: &Transaction<'_>,
    from: MailboxId,
    uids: &[u32],
    to: MailboxId,
    is_move: bool,
    default: QuotaLimits,
) -> Result<((u32, Vec<(u32, u32)>), Changed)> {
    let dst_user = owner(tx, to).await?;
    let src_user = owner(tx, from).await?;
    let limits = lock_quota(tx, dst_user, default).await?;
    // Both mailboxes locked, by ascending id.
    let (first, second) = (from.min(to), from.max(to));
    lock(tx, first).await?;
    if second != first {
        lock(tx, second).await?;
    }
    let dst = lock(tx, to).await?;
    let rows = tx
        .query(
            &cached(
                tx,
                "SELECT uid, body_hash, size, flags, keywords, internal_date, date_offset
             FROM messages WHERE mailbox_id = $1 AND uid = ANY($2) ORDER BY uid",
            )
            .await?,
            &[&from, &uids_sql(uids)],
        )
        .await?;
    let uidvalidity = dst.uidvalidity as u32;
    if rows.is_empty() {
        return Ok(((uidvalidity, Vec::new()), Vec::new()));
    }
    // A MOVE within the account does not grow its usage.
    if !(is_move && src_user == dst_user) {
        let (used_storage, used_messages) = usage(tx, dst_user).await?;
        let add: i64 = rows.iter().map(|r| r.get::<_, i64>(2)).sum();
        if over(limits.messages, used_messages, rows.len() as u64)
            || over(limits.storage, used_storage, add as u64)
        {
            return Err(StoreError::OverQuota);
        }
    }
    if dst.uidnext + rows.len() as i64 > i64::from(u32::MAX) {
        return Err(StoreError::Cannot(
            "UID space of the mailbox exhausted".into(),
        ));
    }
    let modseq = dst.highest_modseq + 1;
    let mut uid = dst.uidnext;
    let mut map = Vec::with_capacity(rows.len());
    let mut counts = Counts::default();
    for r in &rows {
        let src_uid: i64 = r.get(0);
        let hash: Vec<u8> = r.get(1);
        let size: i64 = r.get(2);
        let system: i32 = r.get(3);
        let keywords: Vec<String> = r.get(4);
        let (date, offset): (i64, i32) = (r.get(5), r.get(6));
        tx.execute(
            &cached(
                tx,
                "INSERT INTO messages(mailbox_id, uid, body_hash, size, flags, keywords, modseq,
                internal_date, date_offset) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .await?,
            &[
                &to, &uid, &hash, &size, &system, &keywords, &modseq, &date, &offset,
            ],
        )
        .await?;
        counts.add(Counts::of(system as u32, size));
        map.push((src_uid as u32, uid as u32));
        uid += 1;
    }
    update_mailbox(tx, to, uid, modseq, counts).await?;
    let mut changed = vec![(to, modseq as u64)];
    if is_move {
        let moved: Vec<u32> = map.iter().map(|&(s, _)| s).collect();
        let (_, more) = expunge_locked(tx, from, &moved).await?;
        changed.extend(more);
    }
    Ok(((uidvalidity, map), changed))
}

// ---- search and \Recent ----

/// `needle` as a LIKE pattern matching it anywhere.
fn like_pattern(needle: &str) -> String {
    let mut p = String::with_capacity(needle.len() + 2);
    p.push('%');
    for ch in fold(needle).chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

pub(super) async fn search_text<C: GenericClient>(
    c: &C,
    mailbox: MailboxId,
    uids: &[u32],
    needle: &str,
    body_only: bool,
) -> Result<Vec<u32>> {
    require_mailbox(c, mailbox).await?;
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let text = if body_only {
        "s.body"
    } else {
        "(s.header || s.body)"
    };
    let sql = format!(
        "SELECT m.uid FROM messages m JOIN search s ON s.hash = m.body_hash
         WHERE m.mailbox_id = $1 AND m.uid = ANY($2) AND {text} LIKE $3 ORDER BY m.uid"
    );
    Ok(
        c.query(&sql, &[&mailbox, &uids_sql(uids), &like_pattern(needle)])
            .await?
            .iter()
            .map(|r| r.get::<_, i64>(0) as u32)
            .collect(),
    )
}

pub(super) async fn claim_recent<C: GenericClient>(
    c: &C,
    mailbox: MailboxId,
    claim: bool,
) -> Result<Vec<u32>> {
    let r = if claim {
        // The row lock makes concurrent claimers go one after the other: the second one
        // finds the boundary moved.
        c.query_opt(
            &cached(
                c,
                "WITH old AS (SELECT id, recent_boundary FROM mailboxes WHERE id = $1 FOR UPDATE)
             UPDATE mailboxes m SET recent_boundary = m.uidnext FROM old WHERE m.id = old.id
             RETURNING old.recent_boundary, m.uidnext",
            )
            .await?,
            &[&mailbox],
        )
        .await?
    } else {
        c.query_opt(
            &cached(
                c,
                "SELECT recent_boundary, uidnext FROM mailboxes WHERE id = $1",
            )
            .await?,
            &[&mailbox],
        )
        .await?
    };
    let r = r.ok_or(StoreError::NoSuchMailbox)?;
    let (from, to): (i64, i64) = (r.get(0), r.get(1));
    if from >= to {
        return Ok(Vec::new());
    }
    Ok(c.query(
        &cached(c, "SELECT uid FROM messages WHERE mailbox_id = $1 AND uid >= $2 AND uid < $3 ORDER BY uid").await?,
        &[&mailbox, &from, &to],
    )
    .await?
    .iter()
    .map(|r| r.get::<_, i64>(0) as u32)
    .collect())
}

// ---- check ----

pub(super) async fn check<C: GenericClient>(c: &C, store: &Bodies) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for r in c
        .query(
            &cached(
                c,
                "SELECT encode(b.hash, 'hex') FROM bodies b
             WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.body_hash = b.hash)
               AND NOT EXISTS (SELECT 1 FROM expunged e WHERE e.body_hash = b.hash)",
            )
            .await?,
            &[],
        )
        .await?
    {
        let hash: String = r.get(0);
        problems.push(format!("body {hash}: referenced by nothing"));
    }
    for r in c
        .query(
            &cached(
                c,
                "SELECT mb.id, mb.name FROM mailboxes mb
             LEFT JOIN (SELECT mailbox_id, count(*) AS n,
                          count(*) FILTER (WHERE flags & 1 = 0) AS unseen,
                          count(*) FILTER (WHERE flags & 8 <> 0) AS deleted,
                          sum(size)::bigint AS size
                        FROM messages GROUP BY mailbox_id) a ON a.mailbox_id = mb.id
             WHERE (mb.messages, mb.unseen, mb.deleted, mb.size) IS DISTINCT FROM
                   (coalesce(a.n, 0), coalesce(a.unseen, 0), coalesce(a.deleted, 0),
                    coalesce(a.size, 0))",
            )
            .await?,
            &[],
        )
        .await?
    {
        let (id, name): (i64, String) = (r.get(0), r.get(1));
        problems.push(format!("mailbox {id} ({name}): STATUS counters disagree"));
    }
    for r in c
        .query(
            &cached(c, "SELECT m.mailbox_id, m.uid FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id
             WHERE m.uid >= mb.uidnext OR m.modseq > mb.highest_modseq").await?,
            &[],
        )
        .await?
    {
        let (mb, uid): (i64, i64) = (r.get(0), r.get(1));
        problems.push(format!(
            "message {mb}/{uid}: UID or modseq beyond the mailbox's"
        ));
    }
    let unindexed: i64 = c
        .query_one(
            &cached(c, "SELECT count(*) FROM bodies b WHERE NOT EXISTS (SELECT 1 FROM search s WHERE s.hash = b.hash)").await?,
            &[],
        )
        .await?
        .get(0);
    if unindexed > 0 {
        problems.push(format!("{unindexed} bodies are not in the search index"));
    }
    problems.extend(check_bodies(c, store).await?);
    Ok(problems)
}

/// Every body's bytes unpack to its recorded size and hash (one body in memory at a time).
async fn check_bodies<C: GenericClient>(c: &C, store: &Bodies) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let hashes: Vec<Vec<u8>> = c
        .query(
            &cached(c, "SELECT hash FROM bodies ORDER BY hash").await?,
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for hash in hashes {
        let Some(r) = c
            .query_opt(
                &cached(
                    c,
                    "SELECT b.size, b.data, f.store FROM bodies b
                 LEFT JOIN body_files f ON f.hash = b.hash WHERE b.hash = $1",
                )
                .await?,
                &[&hash],
            )
            .await?
        else {
            continue;
        };
        let (size, mut packed): (i64, Vec<u8>) = (r.get(0), r.get(1));
        if let Some(name) = r.get::<_, Option<String>>(2) {
            match store.get(&name, &hash).await {
                Ok(Some(p)) => packed = p,
                Ok(None) => {
                    problems.push(format!(
                        "body {}: its file is missing from the {name} store",
                        hex::encode(&hash)
                    ));
                    continue;
                }
                Err(e) => {
                    problems.push(format!("body {}: cannot read: {e}", hex::encode(&hash)));
                    continue;
                }
            }
        }
        match zstd::bulk::decompress(&packed, size.max(0) as usize) {
            Ok(d) if d.len() as i64 != size => problems.push(format!(
                "body {}: has {} bytes, index says {size}",
                hex::encode(&hash),
                d.len()
            )),
            Ok(d) if Sha256::digest(&d).as_slice() != hash.as_slice() => problems.push(format!(
                "body {}: bytes differ from its hash",
                hex::encode(&hash)
            )),
            Ok(_) => {}
            Err(e) => problems.push(format!("body {}: cannot unpack: {e}", hex::encode(&hash))),
        }
    }
    Ok(problems)
}
