//! Header blocks: splitting a header into fields (RFC 5322 §2.2), unfolding, and the
//! `HEADER.FIELDS` / `HEADER.FIELDS.NOT` filters of RFC 9051 §6.4.5.
//!
//! Field syntax follows Dovecot's header parser where the RFC is strict and mail is not: a
//! line without a colon is a field whose name is the whole line; the name is trimmed of
//! trailing blanks (`Subject : x`); the value starts after the blanks following the colon.

/// One header field: name and full value (folds kept as the original CRLFs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
    /// False for a broken line without a colon (its name is the whole line).
    pub has_colon: bool,
    /// Byte range of the whole field (all its lines, CRLFs included) in the message.
    pub start: usize,
    pub end: usize,
}

/// Length of the line starting at `pos` including its LF (or up to the end of `msg`).
pub fn line_len(msg: &[u8], pos: usize) -> usize {
    match memchr(b'\n', &msg[pos..]) {
        Some(i) => i + 1,
        None => msg.len() - pos,
    }
}

pub fn memchr(c: u8, s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == c)
}

/// The line content without its CRLF / LF.
pub fn strip_eol(line: &[u8]) -> &[u8] {
    let mut l = line;
    if let Some(x) = l.strip_suffix(b"\n") {
        l = x;
        if let Some(y) = l.strip_suffix(b"\r") {
            l = y;
        }
    }
    l
}

/// Is this line (with its EOL) the empty line that ends a header?
pub fn is_blank_line(line: &[u8]) -> bool {
    line == b"\r\n" || line == b"\n"
}

/// Start a new field from its first line.
pub fn new_field(line: &[u8], start: usize) -> Field {
    let content = strip_eol(line);
    match memchr(b':', content) {
        Some(colon) => {
            let mut name = &content[..colon];
            while let Some((&last, rest)) = name.split_last() {
                if last == b' ' || last == b'\t' {
                    name = rest;
                } else {
                    break;
                }
            }
            let mut v = colon + 1;
            while v < content.len() && (content[v] == b' ' || content[v] == b'\t') {
                v += 1;
            }
            Field {
                name: name.to_vec(),
                value: content[v..].to_vec(),
                has_colon: true,
                start,
                end: start + line.len(),
            }
        }
        None => Field {
            name: content.to_vec(),
            value: Vec::new(),
            has_colon: false,
            start,
            end: start + line.len(),
        },
    }
}

/// Append a continuation line (starts with a blank) to a field; the fold stays as CRLF.
pub fn continue_field(f: &mut Field, line: &[u8]) {
    f.value.extend_from_slice(b"\r\n");
    f.value.extend_from_slice(strip_eol(line));
    f.end += line.len();
}

/// Parse a header block `[start, end)` (which may include its terminating blank line).
pub fn parse_fields(msg: &[u8], start: usize, end: usize) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    let mut pos = start;
    while pos < end {
        let n = line_len(&msg[..end], pos);
        let line = &msg[pos..pos + n];
        if is_blank_line(line) {
            break;
        }
        match out.last_mut() {
            Some(f) if line[0] == b' ' || line[0] == b'\t' => continue_field(f, line),
            _ => out.push(new_field(line, pos)),
        }
        pos += n;
    }
    out
}

/// Remove folding: CRLFs inside a value are dropped (RFC 5322 §2.2.3 unfolding).
pub fn unfold(value: &[u8]) -> Vec<u8> {
    value
        .iter()
        .copied()
        .filter(|&c| c != b'\r' && c != b'\n')
        .collect()
}

/// `HEADER.FIELDS` (keep = true) or `HEADER.FIELDS.NOT` (keep = false) over a header block:
/// the matching fields byte for byte, followed by the blank line (RFC 9051 §6.4.5).
pub fn filter_fields(
    msg: &[u8],
    start: usize,
    end: usize,
    names: &[Vec<u8>],
    keep: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    for f in parse_fields(msg, start, end) {
        let listed = names.iter().any(|n| n.eq_ignore_ascii_case(&f.name));
        if listed == keep {
            out.extend_from_slice(&msg[f.start..f.end]);
            if !out.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        let msg = b"Subject : a\r\n b\r\nNoColon\r\nX:\tv \r\n\r\nbody";
        let f = parse_fields(msg, 0, msg.len());
        let got: Vec<(&[u8], &[u8])> = f.iter().map(|f| (&f.name[..], &f.value[..])).collect();
        assert_eq!(
            got,
            vec![
                (&b"Subject"[..], &b"a\r\n b"[..]),
                (&b"NoColon"[..], &b""[..]),
                (&b"X"[..], &b"v "[..])
            ]
        );
    }

    #[test]
    fn filter() {
        let msg = b"A: 1\r\nB: 2\r\n x\r\nc: 3\r\n\r\n";
        let names = vec![b"b".to_vec(), b"C".to_vec()];
        assert_eq!(
            filter_fields(msg, 0, msg.len(), &names, true),
            b"B: 2\r\n x\r\nc: 3\r\n\r\n"
        );
        assert_eq!(
            filter_fields(msg, 0, msg.len(), &names, false),
            b"A: 1\r\n\r\n"
        );
    }
}
