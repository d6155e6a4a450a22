//! Multi-line message output (RFC 1939 §3): byte-stuffing of lines that start with `.`, the
//! terminating `.` line, and TOP's cut after the header and n body lines.
//!
//! The session does not copy the message: it hands the server a [`MessageOut`] holding the
//! stored bytes (shared, `Arc`) and the stuffing state, and the server asks for one piece at a
//! time ([`MessageOut::next_chunk`]), so a RETR of a large message adds at most one piece of
//! output buffer to the connection, not a stuffed copy of the whole message.

use std::sync::Arc;

/// Output pieces the server should ask for: 64 KiB of message per write.
pub const CHUNK: usize = 64 * 1024;

/// A message (or its TOP prefix) being written as a dot-stuffed multi-line response.
#[derive(Debug, Clone)]
pub struct MessageOut {
    data: Arc<Vec<u8>>,
    pos: usize,
    end: usize,
    at_line_start: bool,
    done: bool,
}

impl PartialEq for MessageOut {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.data, &other.data) && self.pos == other.pos && self.end == other.end
    }
}
impl Eq for MessageOut {}

impl MessageOut {
    /// The whole message (RETR).
    pub fn whole(data: Arc<Vec<u8>>) -> Self {
        let end = data.len();
        Self::upto(data, end)
    }

    /// The header, the empty line and the first `lines` lines of the body (TOP).
    pub fn top(data: Arc<Vec<u8>>, lines: u64) -> Self {
        let end = top_end(&data, lines);
        Self::upto(data, end)
    }

    fn upto(data: Arc<Vec<u8>>, end: usize) -> Self {
        MessageOut {
            data,
            pos: 0,
            end,
            at_line_start: true,
            done: false,
        }
    }

    /// Append the next piece (about `max` bytes of the message, stuffed) to `out`. Returns
    /// `false` once everything, including the terminating `.` line, has been appended.
    pub fn next_chunk(&mut self, out: &mut Vec<u8>, max: usize) -> bool {
        if self.done {
            return false;
        }
        let stop = self.end.min(self.pos.saturating_add(max.max(1)));
        let data = &self.data[..];
        while self.pos < stop {
            if self.at_line_start && data[self.pos] == b'.' {
                out.push(b'.');
            }
            match data[self.pos..stop].iter().position(|b| *b == b'\n') {
                Some(i) => {
                    out.extend_from_slice(&data[self.pos..self.pos + i + 1]);
                    self.pos += i + 1;
                    self.at_line_start = true;
                }
                None => {
                    out.extend_from_slice(&data[self.pos..stop]);
                    self.pos = stop;
                    self.at_line_start = false;
                }
            }
        }
        if self.pos >= self.end {
            if !self.at_line_start {
                // A message without a final line ending: the terminator must be a line of its own.
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b".\r\n");
            self.done = true;
        }
        true
    }

    /// Everything at once (tests, small messages).
    pub fn write_all(mut self, out: &mut Vec<u8>) {
        while self.next_chunk(out, CHUNK) {}
    }
}

/// Where TOP stops: after the header's empty line and `lines` more lines. A message without
/// an empty line is all header (sent whole).
fn top_end(data: &[u8], lines: u64) -> usize {
    let body_start = if data.starts_with(b"\r\n") {
        2
    } else if data.starts_with(b"\n") {
        1
    } else {
        match find(data, b"\n\r\n")
            .map(|i| i + 3)
            .or_else(|| find(data, b"\n\n").map(|i| i + 2))
        {
            Some(i) => i,
            None => return data.len(),
        }
    };
    let mut pos = body_start;
    let mut left = lines;
    while left > 0 && pos < data.len() {
        match data[pos..].iter().position(|b| *b == b'\n') {
            Some(i) => pos += i + 1,
            None => pos = data.len(),
        }
        left -= 1;
    }
    pos
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(m: MessageOut) -> String {
        let mut out = Vec::new();
        m.write_all(&mut out);
        String::from_utf8(out).unwrap()
    }

    const MSG: &[u8] = b"Subject: s\r\nX: y\r\n\r\nline1\r\n.dot\r\n..two\r\nlast\r\n";

    #[test]
    fn stuffing_and_terminator() {
        let m = MessageOut::whole(Arc::new(MSG.to_vec()));
        assert_eq!(
            all(m),
            "Subject: s\r\nX: y\r\n\r\nline1\r\n..dot\r\n...two\r\nlast\r\n.\r\n"
        );
        assert_eq!(all(MessageOut::whole(Arc::new(Vec::new()))), ".\r\n");
        assert_eq!(
            all(MessageOut::whole(Arc::new(b".".to_vec()))),
            "..\r\n.\r\n"
        );
        assert_eq!(
            all(MessageOut::whole(Arc::new(b"a\r\nno eol".to_vec()))),
            "a\r\nno eol\r\n.\r\n"
        );
    }

    #[test]
    fn chunk_boundaries_do_not_change_the_output() {
        let want = all(MessageOut::whole(Arc::new(MSG.to_vec())));
        for max in 1..MSG.len() + 2 {
            let mut m = MessageOut::whole(Arc::new(MSG.to_vec()));
            let mut out = Vec::new();
            let mut pieces = 0;
            while m.next_chunk(&mut out, max) {
                pieces += 1;
                assert!(pieces < 1000);
            }
            assert_eq!(String::from_utf8(out).unwrap(), want, "max {max}");
        }
    }

    #[test]
    fn top_lines() {
        let data = Arc::new(MSG.to_vec());
        assert_eq!(
            all(MessageOut::top(data.clone(), 0)),
            "Subject: s\r\nX: y\r\n\r\n.\r\n"
        );
        assert_eq!(
            all(MessageOut::top(data.clone(), 2)),
            "Subject: s\r\nX: y\r\n\r\nline1\r\n..dot\r\n.\r\n"
        );
        assert_eq!(
            all(MessageOut::top(data.clone(), u64::MAX)),
            all(MessageOut::whole(data))
        );
        // All header, no body.
        assert_eq!(
            all(MessageOut::top(Arc::new(b"A: b\r\n".to_vec()), 0)),
            "A: b\r\n.\r\n"
        );
        // Empty header.
        assert_eq!(
            all(MessageOut::top(
                Arc::new(b"\r\nbody\r\nmore\r\n".to_vec()),
                1
            )),
            "\r\nbody\r\n.\r\n"
        );
    }
}
