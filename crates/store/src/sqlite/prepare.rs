//! APPEND's work before the writer: hash, pack and (if big) store each body, tokenize its
//! search text and pack its parsed info, outside the write transaction.

use super::blobs::{BlobDir, Hash, load_source, sha256};
use super::{parsed, search};
use crate::{Flags, MessageBytes, NewMessage, ParsedInfo, StoreError, flagops};

/// A packed body at most this big is kept in the index (`bodies`) rather than in a file:
/// most mail. It then costs no file, no 4 KiB block of its own and no fsyncs beyond the
/// commit's, and it is durable with the index change that refers to it.
pub(super) const INLINE_MAX: usize = 32 << 10;

/// Appends of at most this many bytes in all are prepared on the caller's thread: even
/// incompressible, they pack to less than `INLINE_MAX`, so no file is written.
pub(super) const PREPARE_INLINE_MAX: usize = INLINE_MAX * 3 / 4;

/// Bytes of tokens one append keeps for the index until its commit (random words tokenize to
/// about their own size); later messages' tokens are computed again when indexed.
/// (Small in this crate's unit tests, to exercise the bound.)
pub(super) const TOKENS_KEPT_MAX: usize = if cfg!(test) { 4 << 10 } else { 8 << 20 };

/// A message whose body is packed (and, if big, on disk), ready for the index.
pub(super) struct Prepared {
    pub hash: Hash,
    pub size: u64,
    pub flags: Flags,
    pub internal_date: i64,
    pub internal_date_offset: i32,
    /// Without its search text, which became `tokens`.
    pub parsed: ParsedInfo,
    /// `parsed` packed for `blobs.parsed`, done here rather than on the writer thread.
    pub parsed_packed: Vec<u8>,
    /// `None`: dropped to bound memory (see `TOKENS_KEPT_MAX`); indexing computes them again
    /// from the stored body.
    pub tokens: Option<search::Tokens>,
    /// The packed body when it goes into the index; `None`: it is in its file.
    pub inline: Option<Vec<u8>>,
    /// Kept to rewrite a file body if its file was collected between prepare and commit.
    pub source: MessageBytes,
    /// PREVIEW text and thread links, kept by `objects` (RFC 8970, RFC 8474).
    pub delivery: mailkeep_mime::DeliveryInfo,
    /// SORT/THREAD keys (`mailkeep_mime::sortkeys`), kept with the body (`sortkeys`).
    pub sort_keys: Vec<u8>,
}

/// Appends of at least this many messages (an import's batches, big MULTIAPPENDs) are
/// prepared on several threads at once: preparing is most of an import's work.
pub(super) const PARALLEL_MIN: usize = 64;
/// Most threads one append prepares on.
const PARALLEL_MAX: usize = 4;

/// `prepare`, split over up to [`PARALLEL_MAX`] threads (as many as there are cores) for
/// appends of [`PARALLEL_MIN`] messages or more; the result is in the messages' order. Each
/// thread keeps its share of `tokens_max`, so memory stays as bounded as before.
pub(super) fn prepare_parallel(
    blobs: &BlobDir,
    messages: Vec<NewMessage>,
    tokens_max: usize,
) -> std::result::Result<Vec<Prepared>, (StoreError, Vec<Hash>)> {
    // Asked once: `available_parallelism` reads the cgroup files on every call (0.5% of the
    // server's CPU in the stress mix's profile, once per APPEND).
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let threads = cores
        .min(PARALLEL_MAX)
        .min(messages.len() / (PARALLEL_MIN / 2))
        .max(1);
    if threads == 1 {
        return prepare(blobs, messages, tokens_max);
    }
    let per = messages.len().div_ceil(threads);
    let mut chunks: Vec<Vec<NewMessage>> = Vec::with_capacity(threads);
    let mut rest = messages.into_iter();
    loop {
        let chunk: Vec<NewMessage> = rest.by_ref().take(per).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| s.spawn(move || prepare_with(blobs, chunk, tokens_max / threads)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err((
                        StoreError::Internal("append preparation panicked".into()),
                        Vec::new(),
                    ))
                })
            })
            .collect()
    });
    let mut out = Vec::new();
    let mut failed: Option<StoreError> = None;
    let mut written: Vec<Hash> = Vec::new();
    for r in results {
        match r {
            Ok(p) => {
                written.extend(p.iter().map(|m| m.hash));
                out.extend(p);
            }
            Err((e, w)) => {
                written.extend(w);
                failed.get_or_insert(e);
            }
        }
    }
    match failed {
        Some(e) => Err((e, written)),
        None => Ok(out),
    }
}

/// Hashes and packs the bodies, writing the big ones to their files (fsynced). Runs on a
/// blocking thread, outside the writer, so compression and file syncs of concurrent APPENDs
/// overlap. On failure, also returns the bodies already stored, for the writer to collect.
/// Keeps at most `tokens_max` bytes of search tokens ([`TOKENS_KEPT_MAX`], or 0 when the
/// writer keeps no more: see `search::Indexer::KEEP_MAX`).
pub(super) fn prepare(
    blobs: &BlobDir,
    messages: Vec<NewMessage>,
    tokens_max: usize,
) -> std::result::Result<Vec<Prepared>, (StoreError, Vec<Hash>)> {
    prepare_with(blobs, messages, tokens_max)
}

fn prepare_with(
    blobs: &BlobDir,
    messages: Vec<NewMessage>,
    tokens_max: usize,
) -> std::result::Result<Vec<Prepared>, (StoreError, Vec<Hash>)> {
    let mut out: Vec<Prepared> = Vec::with_capacity(messages.len());
    let mut kept_tokens = 0;
    // One message at a time: its bytes (and, for a received one, its analysis) are dropped
    // before the next is read; what is kept (`Prepared`) holds no body bytes unless they
    // packed small enough for the index.
    for m in messages {
        let received = matches!(m.data, MessageBytes::Received { .. });
        let stored = load_source(&m.data).and_then(|data| {
            let hash = sha256(&data);
            let packed = blobs.pack(&data)?;
            let inline = if packed.len() <= INLINE_MAX {
                Some(packed)
            } else {
                blobs.write(&hash, &packed)?;
                None
            };
            // One parse of the message for what the store keeps of it (a received one is
            // analyzed here too; an APPENDed one was analyzed by its session).
            let (parsed, delivery, sort_keys) = if received {
                let (a, delivery, keys) = mailkeep_mime::analyze_delivery(&data);
                (ParsedInfo::from(a), delivery, keys)
            } else {
                let p = m.parsed;
                let (delivery, keys) =
                    mailkeep_mime::delivery_keys(&data, &p.envelope, p.sent_date);
                (p, delivery, keys)
            };
            Ok((hash, data.len() as u64, inline, parsed, delivery, sort_keys))
        });
        let (hash, size, inline, mut parsed, delivery, sort_keys) = match stored {
            Ok(v) => v,
            Err(e) => return Err((e, out.iter().map(|p| p.hash).collect())),
        };
        // The tokens of every message wait for the commit: past a bound, a MULTIAPPEND's
        // later ones are dropped, so its memory does not grow with the number of messages.
        // A caller that left the search text out (LMTP's further recipients of one body)
        // gets its tokens computed again from the stored text, like a dropped one.
        let tokens = (!parsed.search_text.is_empty())
            .then(|| search::Tokens::of(&parsed.search_text, parsed.search_body_offset))
            .filter(|tokens| kept_tokens + tokens.len() <= tokens_max)
            .inspect(|tokens| kept_tokens += tokens.len());
        parsed.search_text = String::new();
        let parsed_packed = match parsed::pack(&parsed) {
            Ok(p) => p,
            Err(e) => {
                let mut written: Vec<Hash> = out.iter().map(|p| p.hash).collect();
                written.push(hash);
                return Err((e, written));
            }
        };
        out.push(Prepared {
            hash,
            size,
            flags: flagops::normalize(&m.flags),
            internal_date: m.internal_date,
            internal_date_offset: m.internal_date_offset,
            parsed,
            parsed_packed,
            tokens,
            inline,
            source: m.data,
            delivery,
            sort_keys,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::MailStore;
    use crate::conformance::message;
    use crate::sqlite::SqliteStore;

    /// A big append is prepared on several threads; its messages keep their order and are
    /// all searchable.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parallel_prepare_keeps_the_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let u = store.create_user("p", "h").await.unwrap().id;
        let inbox = store.get_mailbox(u, "INBOX").await.unwrap().unwrap().id;
        let n = super::PARALLEL_MIN * 3 + 5;
        let msgs: Vec<_> = (0..n)
            .map(|i| {
                message(
                    &format!("m{i}"),
                    &format!("body{i} {}", "filler ".repeat(40)),
                )
            })
            .collect();
        let (_, uids) = store.append(inbox, msgs).await.unwrap();
        assert_eq!(uids.len(), n);
        for (i, uid) in uids.iter().enumerate() {
            let bytes = store.message_bytes(inbox, *uid).await.unwrap();
            let want = format!("Subject: m{i}\r\n");
            assert!(bytes.starts_with(want.as_bytes()), "message {i} in place");
        }
        let found = store
            .search_text(inbox, &uids, "body77", true)
            .await
            .unwrap();
        assert_eq!(found, vec![uids[77]]);
        assert!(store.check().await.unwrap().is_empty());
    }

    /// Messages whose tokens were dropped to bound an append's memory are indexed from their
    /// text, with their words in the vocabulary of every account holding them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropped_tokens_are_computed_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let words = |tag: &str| -> String { (0..400).map(|i| format!("{tag}word{i} ")).collect() };
        let a = store.create_user("a", "h").await.unwrap().id;
        let b = store.create_user("b", "h").await.unwrap().id;
        let ia = store.get_mailbox(a, "INBOX").await.unwrap().unwrap().id;
        let ib = store.get_mailbox(b, "INBOX").await.unwrap().unwrap().id;
        let msgs: Vec<_> = ["first", "second", "third"]
            .iter()
            .map(|t| message(t, &words(t)))
            .collect();
        let (_, uids) = store.append(ia, msgs.clone()).await.unwrap();
        // The same bodies for b, tokens dropped again: b gets their words too.
        let (_, ub) = store.append(ib, msgs).await.unwrap();
        for (i, tag) in ["first", "second", "third"].iter().enumerate() {
            let needle = format!("{}word39", &tag[1..]);
            assert_eq!(
                store.search_text(ia, &uids, &needle, true).await.unwrap(),
                vec![uids[i]],
                "{needle}"
            );
            assert_eq!(
                store.search_text(ib, &ub, &needle, true).await.unwrap(),
                vec![ub[i]],
                "{needle} for b"
            );
        }
        assert!(store.check().await.unwrap().is_empty());
    }
}
