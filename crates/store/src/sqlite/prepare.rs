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
    pub tokens: search::Tokens,
    /// The packed body when it goes into the index; `None`: it is in its file.
    pub inline: Option<Vec<u8>>,
    /// Kept to rewrite a file body if its file was collected between prepare and commit.
    pub source: MessageBytes,
}

/// Hashes and packs the bodies, writing the big ones to their files (fsynced). Runs on a
/// blocking thread, outside the writer, so compression and file syncs of concurrent APPENDs
/// overlap. On failure, also returns the bodies already stored, for the writer to collect.
pub(super) fn prepare(
    blobs: &BlobDir,
    messages: Vec<NewMessage>,
) -> std::result::Result<Vec<Prepared>, (StoreError, Vec<Hash>)> {
    let mut out: Vec<Prepared> = Vec::with_capacity(messages.len());
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
            let analysis = received.then(|| ParsedInfo::from(mailkeep_mime::analyze(&data)));
            Ok((hash, data.len() as u64, inline, analysis))
        });
        let (hash, size, inline, analysis) = match stored {
            Ok(v) => v,
            Err(e) => return Err((e, out.iter().map(|p| p.hash).collect())),
        };
        let mut parsed = analysis.unwrap_or(m.parsed);
        let tokens = search::Tokens::of(&parsed.search_text, parsed.search_body_offset);
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
        });
    }
    Ok(out)
}
