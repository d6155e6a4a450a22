//! [`MessageReader`]: a message's bytes as a stream, so a big message is read (and unpacked)
//! a piece at a time instead of being held whole in memory.

use std::io::{self, Read};
use std::sync::Arc;

/// The stored bytes of one message, read in order. The reader checks the length against the
/// one recorded at delivery: damaged data ends in an error, not in a longer or shorter
/// message.
pub struct MessageReader {
    size: u64,
    read: u64,
    inner: io::Take<Box<dyn Read + Send>>,
}

impl std::fmt::Debug for MessageReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageReader")
            .field("size", &self.size)
            .field("read", &self.read)
            .finish()
    }
}

/// `Arc<Vec<u8>>` as a byte slice, for a `Cursor` over bytes already in memory.
struct Shared(Arc<Vec<u8>>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl MessageReader {
    /// `size` bytes from `inner` (which may hold more or fewer: that is reported as an error).
    pub fn new(size: u64, inner: Box<dyn Read + Send>) -> MessageReader {
        MessageReader {
            size,
            read: 0,
            // One byte past the recorded size is enough to tell that there is more.
            inner: inner.take(size.saturating_add(1)),
        }
    }

    /// Bytes already in memory.
    pub fn from_bytes(bytes: Arc<Vec<u8>>) -> MessageReader {
        let size = bytes.len() as u64;
        MessageReader::new(size, Box::new(io::Cursor::new(Shared(bytes))))
    }

    /// The message's length in octets.
    pub fn size(&self) -> u64 {
        self.size
    }
}

/// The first `len` octets of `reader` (all of it if shorter): a message's header.
pub(crate) fn read_prefix(reader: MessageReader, uid: u32, len: u64) -> crate::Result<Vec<u8>> {
    let len = len.min(reader.size());
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    reader
        .take(len)
        .read_to_end(&mut out)
        .map_err(|e| crate::StoreError::Internal(format!("reading UID {uid}: {e}")))?;
    Ok(out)
}

impl Read for MessageReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "stored message is longer than its recorded {} octets",
                    self.size
                ),
            ));
        }
        if n == 0 && !buf.is_empty() && self.read < self.size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "stored message ends after {} of its recorded {} octets",
                    self.read, self.size
                ),
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_checked() {
        let mut ok = Vec::new();
        MessageReader::from_bytes(Arc::new(b"abc".to_vec()))
            .read_to_end(&mut ok)
            .unwrap();
        assert_eq!(ok, b"abc");
        let mut long = MessageReader::new(2, Box::new(io::Cursor::new(b"abc".to_vec())));
        assert!(long.read_to_end(&mut Vec::new()).is_err());
        let mut short = MessageReader::new(4, Box::new(io::Cursor::new(b"abc".to_vec())));
        assert!(short.read_to_end(&mut Vec::new()).is_err());
    }
}
