//! Modified UTF-7 (RFC 3501 §5.1.3) for mailbox names of IMAP4rev1 clients.
//!
//! Printable US-ASCII (0x20-0x7e) except `&` stands for itself, `&` is `&-`, and anything else
//! is UTF-16BE in modified base64 (`,` instead of `/`, no padding) between `&` and `-`.
//! Decoding is strict like Dovecot's `imap_utf7_to_utf8`: only the one canonical spelling of a
//! name is accepted, so two different byte strings never name the same mailbox. One step
//! stricter than Dovecot 2.3.19: it accepts non-zero padding bits (`CREATE "&AOl-"` makes a
//! mailbox it then lists as `&AOk-`); here that is rejected, for the same reason.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn is_direct(c: u32) -> bool {
    (0x20..0x7f).contains(&c)
}

fn b64_value(b: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == b).map(|p| p as u32)
}

/// Decode a modified UTF-7 mailbox name to UTF-8. `None` if it is not valid modified UTF-7.
///
/// Rejected (not canonical): 8-bit or control bytes, printable ASCII inside a base64 run,
/// two adjacent base64 runs (`&AOk-&AOk-`), leftover bits that are not zero or make more than
/// five, unpaired surrogates and a missing `-`.
pub fn decode(name: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    let mut after_run = false;
    while i < name.len() {
        let b = name[i];
        if b != b'&' {
            if !is_direct(u32::from(b)) {
                return None;
            }
            out.push(char::from(b));
            i += 1;
            after_run = false;
            continue;
        }
        i += 1;
        if name.get(i) == Some(&b'-') {
            out.push('&');
            i += 1;
            after_run = false;
            continue;
        }
        if after_run {
            return None;
        }
        i = decode_run(name, i, &mut out)?;
        after_run = true;
    }
    Some(out)
}

/// Decode the base64 run starting at `name[i]` (after `&`) up to and including `-`;
/// returns the index after `-`.
fn decode_run(name: &[u8], mut i: usize, out: &mut String) -> Option<usize> {
    let (mut bits, mut nbits) = (0u32, 0u32);
    let mut high: Option<u32> = None;
    let mut units = 0;
    loop {
        let b = *name.get(i)?;
        i += 1;
        if b == b'-' {
            break;
        }
        bits = (bits << 6) | b64_value(b)?;
        nbits += 6;
        if nbits >= 16 {
            nbits -= 16;
            let unit = (bits >> nbits) & 0xffff;
            bits &= (1 << nbits) - 1;
            units += 1;
            match (high.take(), unit) {
                (None, 0xd800..=0xdbff) => high = Some(unit),
                (None, 0xdc00..=0xdfff) => return None,
                (None, u) if is_direct(u) => return None,
                (None, u) => out.push(char::from_u32(u)?),
                (Some(h), 0xdc00..=0xdfff) => {
                    out.push(char::from_u32(
                        0x10000 + ((h - 0xd800) << 10) + (unit - 0xdc00),
                    )?);
                }
                (Some(_), _) => return None,
            }
        }
    }
    if units == 0 || high.is_some() || nbits >= 6 || bits != 0 {
        return None;
    }
    Some(i)
}

/// Encode a UTF-8 mailbox name as modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if is_direct(u32::from(c)) {
            flush_run(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush_run(&mut pending, &mut out);
    out
}

fn flush_run(units: &mut Vec<u16>, out: &mut String) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let (mut bits, mut nbits) = (0u32, 0u32);
    for &u in units.iter() {
        bits = (bits << 16) | u32::from(u);
        nbits += 16;
        while nbits >= 6 {
            nbits -= 6;
            out.push(char::from(ALPHABET[((bits >> nbits) & 0x3f) as usize]));
        }
        bits &= (1 << nbits) - 1;
    }
    if nbits > 0 {
        out.push(char::from(
            ALPHABET[((bits << (6 - nbits)) & 0x3f) as usize],
        ));
    }
    out.push('-');
    units.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let cases = [
            ("INBOX", "INBOX"),
            ("", ""),
            ("&", "&-"),
            ("a&b", "a&-b"),
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("Entwürfe", "Entw&APw-rfe"),
            ("été", "&AOk-t&AOk-"),
            ("😀", "&2D3eAA-"),
            ("a\tb", "a&AAk-b"),
            ("Ж&Ж", "&BBY-&-&BBY-"),
            ("ÉÉ", "&AMkAyQ-"),
        ];
        for (utf8, utf7) in cases {
            assert_eq!(encode(utf8), utf7, "encode {utf8:?}");
            assert_eq!(
                decode(utf7.as_bytes()).as_deref(),
                Some(utf8),
                "decode {utf7:?}"
            );
        }
    }

    #[test]
    fn rejects_non_canonical() {
        let bad: &[&[u8]] = &[
            b"&",           // unterminated
            b"&AOk",        // missing '-'
            b"&AGE-",       // 'a' must not be base64-encoded
            b"&AOk-&AOk-",  // two adjacent runs must be one
            b"&AOl-",       // leftover bits not zero
            b"&AA-",        // no complete UTF-16 unit
            b"&AOkA-",      // 6 leftover bits
            b"&2D0-",       // lone high surrogate
            b"&3gA-",       // lone low surrogate
            b"&2D3YPQ-",    // high surrogate followed by high surrogate
            b"&AOk/-",      // '/' is not modified base64
            b"&AOk=-",      // no padding
            b"caf\xc3\xa9", // raw 8-bit
            b"a\tb",        // raw control character
            b"a\x7fb",      // raw DEL
        ];
        for b in bad {
            assert_eq!(decode(b), None, "{:?}", String::from_utf8_lossy(b));
        }
    }

    #[test]
    fn every_char_class_round_trips() {
        let s: String = (1u32..0x300)
            .chain([0xfffd, 0x1f600, 0x10ffff])
            .filter_map(char::from_u32)
            .collect();
        assert_eq!(decode(encode(&s).as_bytes()).as_deref(), Some(s.as_str()));
    }
}
