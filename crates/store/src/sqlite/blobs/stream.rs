//! Bodies as streams ([`MessageReader`]): unpacked a piece at a time, for big messages.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};

use super::{BlobDir, Hash};
use crate::{MessageReader, Result, StoreError};

/// Packed bodies of up to this many bytes unpacked are read whole rather than streamed.
const UNPACK_WHOLE_MAX: u64 = 256 << 10;

impl BlobDir {
    /// A body file as a stream, unpacked a piece at a time: memory stays at zstd's window
    /// (at most a few MiB) whatever the message's size. `size` is the recorded length.
    pub(in crate::sqlite) fn stream(&self, hash: &Hash, size: u64) -> Result<MessageReader> {
        let mut file = match File::open(self.path(hash)) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(StoreError::Internal(format!(
                    "blob {} missing",
                    hex::encode(hash)
                )));
            }
            Err(e) => return Err(e.into()),
        };
        // The frame header (at most 18 bytes) names the dictionary, if any.
        let mut head = Vec::with_capacity(18);
        (&mut file).take(18).read_to_end(&mut head)?;
        let dict = zstd::zstd_safe::get_dict_id_from_frame(&head);
        self.unpacking(hash, dict, std::io::Cursor::new(head).chain(file), size)
    }

    /// A packed body kept in the index as a stream: small packed, but it may unpack to much
    /// more (a message of repeated lines), so it is unpacked as it is read too.
    pub(in crate::sqlite) fn stream_packed(
        &self,
        hash: &Hash,
        packed: Vec<u8>,
        size: u64,
    ) -> Result<MessageReader> {
        if size <= UNPACK_WHOLE_MAX {
            // Unpacked at once with the prepared dictionary: a stream would load the
            // dictionary into a new context for every reader (2.5% of the server's CPU in the
            // stress mix, where header-only FETCHes read many small bodies), and zstd decodes
            // whole blocks of up to 128 KiB anyway.
            let bytes = self.unpack(hash, &packed, size)?;
            return Ok(MessageReader::new(
                size,
                Box::new(std::io::Cursor::new(bytes)),
            ));
        }
        let dict = zstd::zstd_safe::get_dict_id_from_frame(&packed);
        self.unpacking(hash, dict, std::io::Cursor::new(packed), size)
    }

    fn unpacking(
        &self,
        hash: &Hash,
        dict: Option<std::num::NonZeroU32>,
        src: impl Read + Send + 'static,
        size: u64,
    ) -> Result<MessageReader> {
        let src = BufReader::new(src);
        let decoder: Box<dyn Read + Send> = match dict {
            None => Box::new(zstd::stream::read::Decoder::with_buffer(src)?),
            Some(id) => {
                let raw = self.raw_dictionary(id.get()).ok_or_else(|| {
                    StoreError::Internal(format!(
                        "blob {} needs zstd dictionary {id}, which is missing",
                        hex::encode(hash)
                    ))
                })?;
                Box::new(zstd::stream::read::Decoder::with_dictionary(src, &raw)?)
            }
        };
        Ok(MessageReader::new(size, decoder))
    }
}
