//! Content-Transfer-Encoding decoders for BINARY (RFC 3516) with Dovecot's strictness: its
//! `istream-base64-decoder` and `qp-decoder` decide which messages get `NO [PARSE]`, so these
//! report the same errors rather than silently repairing the data as a display decoder would.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Bad characters or sequences (Dovecot: "Invalid data in MIME part").
    Invalid,
    /// Base64 ends in the middle of a quantum (Dovecot: "Base64 data ends prematurely").
    Premature,
}

fn b64_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// RFC 2045 §6.8 base64; whitespace is ignored, anything else outside the alphabet is an error.
pub fn base64(input: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let (out, err) = b64(input);
    match err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// What Dovecot's search decoder sees of broken base64: the data before the damage.
pub fn base64_prefix(input: &[u8]) -> Vec<u8> {
    b64(input).0
}

fn b64(input: &[u8]) -> (Vec<u8>, Option<DecodeError>) {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut quad = [0u8; 4];
    let mut n = 0;
    let mut pad = 0;
    let mut finished = false;
    for &c in input {
        if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
            continue;
        }
        if finished {
            return (out, Some(DecodeError::Invalid));
        }
        if c == b'=' {
            // Padding is only valid in the last two positions of a quantum.
            if n < 2 {
                return (out, Some(DecodeError::Invalid));
            }
            pad += 1;
            n += 1;
            if n == 4 {
                out.push((quad[0] << 2) | (quad[1] >> 4));
                if pad == 1 {
                    out.push((quad[1] << 4) | (quad[2] >> 2));
                }
                finished = true;
            }
            continue;
        }
        if pad > 0 {
            return (out, Some(DecodeError::Invalid));
        }
        let Some(v) = b64_value(c) else {
            return (out, Some(DecodeError::Invalid));
        };
        quad[n] = v;
        n += 1;
        if n == 4 {
            out.push((quad[0] << 2) | (quad[1] >> 4));
            out.push((quad[1] << 4) | (quad[2] >> 2));
            out.push((quad[2] << 6) | quad[3]);
            n = 0;
        }
    }
    if !finished && n != 0 {
        return (out, Some(DecodeError::Premature));
    }
    (out, None)
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// RFC 2045 §6.7 quoted-printable: trailing blanks on a line are dropped, `=` CRLF is a soft
/// break, hard breaks stay CRLF. A bad `=` sequence is kept as-is but makes the result an error.
pub fn quoted_printable(input: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let (out, bad) = qp(input);
    if bad {
        Err(DecodeError::Invalid)
    } else {
        Ok(out)
    }
}

/// What Dovecot's search decoder sees of broken quoted-printable: bad sequences kept as-is.
pub fn quoted_printable_lenient(input: &[u8]) -> Vec<u8> {
    qp(input).0
}

fn qp(input: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(input.len());
    let mut bad = false;
    let mut lines = input.split(|&c| c == b'\n').peekable();
    while let Some(raw) = lines.next() {
        let has_lf = lines.peek().is_some();
        let mut line = raw.strip_suffix(b"\r").unwrap_or(raw);
        while let Some((&last, rest)) = line.split_last() {
            if last == b' ' || last == b'\t' {
                line = rest;
            } else {
                break;
            }
        }
        let mut soft = false;
        let mut i = 0;
        while i < line.len() {
            let c = line[i];
            if c != b'=' {
                out.push(c);
                i += 1;
                continue;
            }
            if i + 1 == line.len() {
                soft = true;
                break;
            }
            match (hex(line[i + 1]), line.get(i + 2).and_then(|&h| hex(h))) {
                (Some(a), Some(b)) => {
                    out.push((a << 4) | b);
                    i += 3;
                }
                _ => {
                    bad = true;
                    out.push(b'=');
                    i += 1;
                }
            }
        }
        if soft {
            if !has_lf {
                // "=" at the very end of the data: nothing follows the soft break.
                bad = true;
            }
        } else if has_lf {
            out.extend_from_slice(b"\r\n");
        }
    }
    (out, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case = (&'static [u8], Result<&'static [u8], DecodeError>);

    #[test]
    fn base64_cases() {
        let cases: &[Case] = &[
            (b"aGVsbG8=", Ok(b"hello")),
            (b"aGVs\r\nbG8h", Ok(b"hello!")),
            (b"aGVsbA==\r\n", Ok(b"hell")),
            (b"aGVsbG8", Err(DecodeError::Premature)),
            (b"aGV*bG8=", Err(DecodeError::Invalid)),
            (b"aGVsbA==aGVs", Err(DecodeError::Invalid)),
            (b"", Ok(b"")),
        ];
        for (input, want) in cases {
            assert_eq!(
                base64(input).as_deref().map_err(|e| *e),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn qp_cases() {
        let cases: &[Case] = &[
            (b"caf=C3=A9  \r\nx", Ok(b"caf\xc3\xa9\r\nx")),
            (b"soft=\r\nbreak\r\n", Ok(b"softbreak\r\n")),
            (b"lower=c3=a9", Ok(b"lower\xc3\xa9")),
            (b"bad=ZZ", Err(DecodeError::Invalid)),
            (b"ends=", Err(DecodeError::Invalid)),
        ];
        for (input, want) in cases {
            assert_eq!(
                quoted_printable(input).as_deref().map_err(|e| *e),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }
}
