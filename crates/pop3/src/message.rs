//! Multi-line message output (RFC 1939 §3): byte-stuffing of lines that start with `.`, the
//! terminating `.` line, and TOP's cut after the header and n body lines.
//!
//! The session does not load the message: it hands the server a [`MessageOut`] holding the
//! store's stream of it ([`MessageReader`]) and the stuffing state, and the server asks for
//! one piece at a time ([`MessageOut::next_chunk`]), so a RETR of a large message holds one
//! piece of it (and the store's unpacking window), never the whole message.

use mailkeep_store::MessageReader;
use std::io::{self, Read};

/// Output pieces the server should ask for: 64 KiB of message per write.
pub const CHUNK: usize = 64 * 1024;

/// What TOP still sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// RETR: everything.
    Whole,
    /// TOP, in the header: the header, then `lines` body lines.
    Header { lines: u64 },
    /// TOP, in the body: `left` more lines.
    Body { left: u64 },
}

/// A message (or its TOP prefix) being written as a dot-stuffed multi-line response.
pub struct MessageOut {
    src: MessageReader,
    buf: Vec<u8>,
    cut: Cut,
    at_line_start: bool,
    /// Bytes of the current line so far, and whether its first one is CR (an empty line is
    /// "" or "\r" before its LF).
    line_len: usize,
    line_starts_cr: bool,
    /// Nothing more is read: TOP has all it sends, or the message ended.
    ended: bool,
    done: bool,
}

impl std::fmt::Debug for MessageOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageOut")
            .field("size", &self.src.size())
            .field("cut", &self.cut)
            .field("done", &self.done)
            .finish()
    }
}

impl PartialEq for MessageOut {
    /// Two outputs are the same only if they are one (a stream cannot be compared).
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}
impl Eq for MessageOut {}

impl MessageOut {
    /// The whole message (RETR).
    pub fn whole(src: MessageReader) -> Self {
        Self::new(src, Cut::Whole)
    }

    /// The header, the empty line and the first `lines` lines of the body (TOP). A message
    /// without an empty line is all header (sent whole).
    pub fn top(src: MessageReader, lines: u64) -> Self {
        Self::new(src, Cut::Header { lines })
    }

    fn new(src: MessageReader, cut: Cut) -> Self {
        MessageOut {
            src,
            buf: Vec::new(),
            cut,
            at_line_start: true,
            line_len: 0,
            line_starts_cr: false,
            ended: false,
            done: false,
        }
    }

    /// The message's length in octets (TOP may send less).
    pub fn size(&self) -> u64 {
        self.src.size()
    }

    /// Append the next piece (about `max` bytes of the message, stuffed) to `out`. Returns
    /// `Ok(false)` once everything, including the terminating `.` line, has been appended. An
    /// error reading the stored message leaves the response unfinished: the caller must close
    /// the connection (a multi-line response cannot be turned into an error).
    pub fn next_chunk(&mut self, out: &mut Vec<u8>, max: usize) -> io::Result<bool> {
        if self.done {
            return Ok(false);
        }
        if !self.ended {
            self.buf.resize(max.max(1), 0);
            let n = loop {
                match self.src.read(&mut self.buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            if n == 0 {
                self.ended = true;
            } else {
                self.stuff(out, n);
            }
        }
        if self.ended {
            if !self.at_line_start {
                // A message without a final line ending: the terminator must be a line of its own.
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b".\r\n");
            self.done = true;
            self.buf = Vec::new();
        }
        Ok(true)
    }

    /// Stuffs `self.buf[..n]` into `out`, stopping where TOP's cut is.
    fn stuff(&mut self, out: &mut Vec<u8>, n: usize) {
        let data = &self.buf[..n];
        let mut pos = 0;
        if self.cut == (Cut::Body { left: 0 }) {
            self.ended = true;
            return;
        }
        while pos < n {
            if self.at_line_start && data[pos] == b'.' {
                out.push(b'.');
            }
            if self.line_len == 0 {
                self.line_starts_cr = data[pos] == b'\r';
            }
            match data[pos..].iter().position(|b| *b == b'\n') {
                Some(i) => {
                    out.extend_from_slice(&data[pos..pos + i + 1]);
                    let len = self.line_len + i;
                    let empty = len == 0 || (len == 1 && self.line_starts_cr);
                    pos += i + 1;
                    self.at_line_start = true;
                    self.line_len = 0;
                    self.cut = match self.cut {
                        Cut::Header { lines } if empty => Cut::Body { left: lines },
                        Cut::Body { left } => Cut::Body {
                            left: left.saturating_sub(1),
                        },
                        c => c,
                    };
                    if self.cut == (Cut::Body { left: 0 }) {
                        self.ended = true;
                        return;
                    }
                }
                None => {
                    out.extend_from_slice(&data[pos..]);
                    self.line_len += n - pos;
                    pos = n;
                    self.at_line_start = false;
                }
            }
        }
    }

    /// Everything at once (tests, small messages).
    pub fn write_all(mut self, out: &mut Vec<u8>) -> io::Result<()> {
        while self.next_chunk(out, CHUNK)? {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn all(m: MessageOut) -> String {
        let mut out = Vec::new();
        m.write_all(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn r(data: &[u8]) -> MessageReader {
        MessageReader::from_bytes(Arc::new(data.to_vec()))
    }

    const MSG: &[u8] = b"Subject: s\r\nX: y\r\n\r\nline1\r\n.dot\r\n..two\r\nlast\r\n";

    #[test]
    fn stuffing_and_terminator() {
        let m = MessageOut::whole(r(MSG));
        assert_eq!(
            all(m),
            "Subject: s\r\nX: y\r\n\r\nline1\r\n..dot\r\n...two\r\nlast\r\n.\r\n"
        );
        assert_eq!(all(MessageOut::whole(r(b""))), ".\r\n");
        assert_eq!(all(MessageOut::whole(r(b"."))), "..\r\n.\r\n");
        assert_eq!(
            all(MessageOut::whole(r(b"a\r\nno eol"))),
            "a\r\nno eol\r\n.\r\n"
        );
    }

    #[test]
    fn chunk_boundaries_do_not_change_the_output() {
        let want = all(MessageOut::whole(r(MSG)));
        for max in 1..MSG.len() + 2 {
            let mut m = MessageOut::whole(r(MSG));
            let mut out = Vec::new();
            let mut pieces = 0;
            while m.next_chunk(&mut out, max).unwrap() {
                pieces += 1;
                assert!(pieces < 1000);
            }
            assert_eq!(String::from_utf8(out).unwrap(), want, "max {max}");
        }
    }

    #[test]
    fn top_lines() {
        let data = MSG;
        assert_eq!(
            all(MessageOut::top(r(data), 0)),
            "Subject: s\r\nX: y\r\n\r\n.\r\n"
        );
        assert_eq!(
            all(MessageOut::top(r(data), 2)),
            "Subject: s\r\nX: y\r\n\r\nline1\r\n..dot\r\n.\r\n"
        );
        assert_eq!(
            all(MessageOut::top(r(data), u64::MAX)),
            all(MessageOut::whole(r(data)))
        );
        // All header, no body.
        assert_eq!(all(MessageOut::top(r(b"A: b\r\n"), 0)), "A: b\r\n.\r\n");
        // Empty header.
        assert_eq!(
            all(MessageOut::top(r(b"\r\nbody\r\nmore\r\n"), 1)),
            "\r\nbody\r\n.\r\n"
        );
    }

    #[test]
    fn top_is_the_same_whatever_the_pieces() {
        let msgs: [&[u8]; 4] = [
            MSG,
            b"A: b\nC: d\n\nbody1\n.body2\nbody3",
            b"\r\n.x\r\ny\r\n",
            b"A: b\r\n\r\r\nstill header\r\n\r\nb1\r\nb2\r\n",
        ];
        for msg in msgs {
            for lines in [0, 1, 2, 5, u64::MAX] {
                let want = all(MessageOut::top(r(msg), lines));
                for max in 1..msg.len() + 2 {
                    let mut m = MessageOut::top(r(msg), lines);
                    let mut out = Vec::new();
                    while m.next_chunk(&mut out, max).unwrap() {}
                    assert_eq!(String::from_utf8(out).unwrap(), want, "max {max}");
                }
            }
        }
        assert_eq!(
            all(MessageOut::top(r(msgs[1]), 1)),
            "A: b\nC: d\n\nbody1\n.\r\n"
        );
        assert_eq!(
            all(MessageOut::top(r(msgs[3]), 1)),
            "A: b\r\n\r\r\nstill header\r\n\r\nb1\r\n.\r\n"
        );
    }

    #[test]
    fn a_damaged_message_is_an_error_not_a_short_one() {
        // The store recorded 100 octets; only 10 are there.
        let src = MessageReader::new(100, Box::new(std::io::Cursor::new(b"0123456789".to_vec())));
        let mut out = Vec::new();
        let mut m = MessageOut::whole(src);
        let mut r = Ok(true);
        for _ in 0..10 {
            r = m.next_chunk(&mut out, 4);
            if !matches!(r, Ok(true)) {
                break;
            }
        }
        assert!(r.is_err(), "{r:?}");
        assert!(!out.ends_with(b".\r\n"));
    }
}
