//! The parsed info of a body (ENVELOPE, BODYSTRUCTURE, BODY, part tree) as one zstd-packed
//! column, `blobs.parsed`.
//!
//! As IMAP text these repeat themselves (an ENVELOPE carries From, Sender and Reply-To, usually
//! the same address three times; BODY is BODYSTRUCTURE without extension data; NIL and quoted
//! MIME names everywhere). Packed alone, each is too small for zstd to learn that, and a
//! frame's own entropy tables cost ~1.9 us to decode; so they are packed with a small built-in
//! dictionary (`parsed.dict`, 16 KiB) trained on the parsed info of the 389 real-world messages
//! in `tests/corpus`, whose syntax all mail shares. Measured on 1,000 generated messages
//! (not the training set): 558 KB of text, 274 KB packed alone, 180 KB with the dictionary,
//! decoded in ~0.6 us each (FETCH 1:* ENVELOPE of 20,000 messages).
//!
//! Layout: `u32` LE length of the unpacked bytes, then a zstd frame of
//! `len(envelope) envelope len(bodystructure) bodystructure len(body) body parts`, the
//! lengths `u32` LE. The frame names its dictionary; frames without one also unpack.
//!
//! A shipped dictionary never changes (rows name it by id): a better one would be added
//! beside it under a new id. `cargo test -p mailkeep-store -- --ignored train_parsed_dictionary`
//! shows how this one was made.

use std::cell::RefCell;
use std::sync::LazyLock;
use zstd::dict::{DecoderDictionary, EncoderDictionary};

use crate::{ParsedInfo, Result, StoreError};

const LEVEL: i32 = 3;
/// Bigger than any real parse (a part tree of a 50 MiB message is far smaller).
const MAX_UNPACKED: usize = 64 << 20;

static DICTIONARY: &[u8] = include_bytes!("parsed.dict");

/// The dictionary digested once: a context given the raw bytes re-digests them on every
/// frame (measured: that made the writer thread the bottleneck of concurrent APPENDs).
static ENCODER: LazyLock<EncoderDictionary<'static>> =
    LazyLock::new(|| EncoderDictionary::copy(DICTIONARY, LEVEL));
static DECODER: LazyLock<DecoderDictionary<'static>> =
    LazyLock::new(|| DecoderDictionary::copy(DICTIONARY));

thread_local! {
    // A zstd context allocates ~100 KiB-1 MiB: one per thread, not one per message.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

pub(super) fn pack(p: &ParsedInfo) -> Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(
        12 + p.envelope.len() + p.bodystructure.len() + p.body.len() + p.parts.len(),
    );
    for field in [&p.envelope, &p.bodystructure, &p.body] {
        raw.extend_from_slice(&len32(field.len())?.to_le_bytes());
        raw.extend_from_slice(field);
    }
    raw.extend_from_slice(&p.parts);
    let frame = COMPRESSOR.with(|c| -> Result<Vec<u8>> {
        let mut c = c.borrow_mut();
        if c.is_none() {
            *c = Some(zstd::bulk::Compressor::with_prepared_dictionary(&ENCODER)?);
        }
        let c = c
            .as_mut()
            .ok_or_else(|| StoreError::Internal("zstd context".into()))?;
        Ok(c.compress(&raw)?)
    })?;
    let mut out = Vec::with_capacity(4 + frame.len());
    out.extend_from_slice(&len32(raw.len())?.to_le_bytes());
    out.extend_from_slice(&frame);
    Ok(out)
}

/// Fills the envelope, bodystructure, body and parts of `into` from a packed column.
pub(super) fn unpack(packed: &[u8], into: &mut ParsedInfo) -> Result<()> {
    let bad = || StoreError::Internal("damaged parsed info in the index".into());
    let (len, frame) = split_len(packed).ok_or_else(bad)?;
    if len > MAX_UNPACKED {
        return Err(bad());
    }
    let raw = if zstd::zstd_safe::get_dict_id_from_frame(frame).is_none() {
        zstd::bulk::decompress(frame, len).map_err(|_| bad())?
    } else {
        DECOMPRESSOR.with(|d| -> Result<Vec<u8>> {
            let mut d = d.borrow_mut();
            if d.is_none() {
                *d = Some(zstd::bulk::Decompressor::with_prepared_dictionary(
                    &DECODER,
                )?);
            }
            let d = d.as_mut().ok_or_else(bad)?;
            d.decompress(frame, len).map_err(|_| bad())
        })?
    };
    if raw.len() != len {
        return Err(bad());
    }
    let mut rest = &raw[..];
    for field in [&mut into.envelope, &mut into.bodystructure, &mut into.body] {
        let (n, tail) = split_len(rest).ok_or_else(bad)?;
        let value = tail.get(..n).ok_or_else(bad)?;
        *field = value.to_vec();
        rest = &tail[n..];
    }
    into.parts = rest.to_vec();
    Ok(())
}

fn len32(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| StoreError::Internal("parsed info too large".into()))
}

fn split_len(b: &[u8]) -> Option<(usize, &[u8])> {
    let (head, tail) = b.split_first_chunk::<4>()?;
    Some((u32::from_le_bytes(*head) as usize, tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout `pack` gives the parse of every message in `tests/corpus`: the training set.
    fn corpus_samples() -> Vec<Vec<u8>> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/corpus/messages");
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| {
                let raw = std::fs::read(p).unwrap();
                let a = mailkeep_mime::analyze(&mailkeep_mime::normalize_crlf(&raw));
                let mut out = Vec::new();
                for f in [&a.envelope, &a.bodystructure, &a.body] {
                    out.extend_from_slice(&(f.len() as u32).to_le_bytes());
                    out.extend_from_slice(f);
                }
                out.extend_from_slice(&a.parts.to_bytes());
                out
            })
            .collect()
    }

    /// Writes `parsed.dict.new` from the corpus; not run by default, and its output is not
    /// the shipped file unless someone means it to be (see the module comment).
    #[test]
    #[ignore]
    fn train_parsed_dictionary() {
        let dict = zstd::dict::from_samples(&corpus_samples(), 32 << 10).unwrap();
        let out = concat!(env!("CARGO_MANIFEST_DIR"), "/src/sqlite/parsed.dict.new");
        std::fs::write(out, &dict).unwrap();
        println!("{} bytes -> {out}", dict.len());
    }

    #[test]
    fn dictionary_packs_the_corpus() {
        let samples = corpus_samples();
        let raw: usize = samples.iter().map(Vec::len).sum();
        let alone: usize = samples
            .iter()
            .map(|s| zstd::bulk::compress(s, LEVEL).unwrap().len())
            .sum();
        let mut c = zstd::bulk::Compressor::with_dictionary(LEVEL, DICTIONARY).unwrap();
        let with: usize = samples.iter().map(|s| c.compress(s).unwrap().len()).sum();
        assert!(
            with * 10 < alone * 8,
            "{raw} raw, {alone} alone, {with} with dictionary"
        );
    }

    #[test]
    fn round_trip_and_damage() {
        let p = ParsedInfo {
            envelope: b"(\"date\" \"subject\" ((\"A\" NIL \"a\" \"example.org\")))".to_vec(),
            bodystructure: b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 4 1 NIL NIL NIL NIL)"
                .to_vec(),
            body: b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 4 1)".to_vec(),
            parts: vec![0, 1, 2, 255],
            sent_date: Some(5),
            search_text: "not packed".into(),
            search_body_offset: 3,
        };
        let packed = pack(&p).unwrap();
        assert!(zstd::zstd_safe::get_dict_id_from_frame(&packed[4..]).is_some());
        let mut back = ParsedInfo::default();
        unpack(&packed, &mut back).unwrap();
        assert_eq!(back.envelope, p.envelope);
        assert_eq!(back.bodystructure, p.bodystructure);
        assert_eq!(back.body, p.body);
        assert_eq!(back.parts, p.parts);
        let empty = ParsedInfo::default();
        let mut back = p.clone();
        unpack(&pack(&empty).unwrap(), &mut back).unwrap();
        assert!(back.envelope.is_empty() && back.parts.is_empty());
        // A frame packed without the dictionary unpacks too.
        let mut plain = packed[..4].to_vec();
        let raw_len = u32::from_le_bytes(packed[..4].try_into().unwrap()) as usize;
        let mut raw = Vec::new();
        for f in [&p.envelope, &p.bodystructure, &p.body] {
            raw.extend_from_slice(&(f.len() as u32).to_le_bytes());
            raw.extend_from_slice(f);
        }
        raw.extend_from_slice(&p.parts);
        assert_eq!(raw.len(), raw_len);
        plain.extend_from_slice(&zstd::bulk::compress(&raw, 3).unwrap());
        let mut back = ParsedInfo::default();
        unpack(&plain, &mut back).unwrap();
        assert_eq!(back.envelope, p.envelope);
        for damaged in [
            &packed[..3],
            &packed[..packed.len() - 1],
            &[0xff, 0xff, 0xff, 0x7f, 1, 2][..],
        ] {
            assert!(unpack(damaged, &mut ParsedInfo::default()).is_err());
        }
    }
}
