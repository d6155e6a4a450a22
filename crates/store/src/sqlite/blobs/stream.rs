//! Bodies as streams ([`MessageReader`]): unpacked a piece at a time, for big messages.

use std::fs::File;
use std::io::{BufReader, Read};

use super::{BlobDir, DECOMPRESSOR, Hash, file_error, no_dictionary};
use crate::{MessageReader, Result, StoreError};

/// Compressed bytes read at a time by `prefix`.
const PREFIX_CHUNK: usize = 16 << 10;
#[cfg(test)]
pub(super) const PREFIX_CHUNK_FOR_TESTS: usize = PREFIX_CHUNK;

/// Packed bodies of up to this many bytes unpacked are read whole rather than streamed.
const UNPACK_WHOLE_MAX: u64 = 256 << 10;

impl BlobDir {
    /// A body file as a stream, unpacked a piece at a time: memory stays at zstd's window
    /// (at most a few MiB) whatever the message's size. `size` is the recorded length.
    pub(in crate::sqlite) fn stream(&self, hash: &Hash, size: u64) -> Result<MessageReader> {
        let mut file = File::open(self.path(hash)).map_err(|e| file_error(hash, e))?;
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

    /// The first `len` bytes (all, if the body is shorter) of a body kept in the index
    /// (`packed`) or in its file, unpacked with this thread's context and the prepared
    /// dictionary, and only as far as needed: a header-only FETCH reads many bodies' starts,
    /// and a new stream per body costs a context and a dictionary load each (4% of the
    /// server's CPU in the stress mix).
    pub(in crate::sqlite) fn prefix(
        &self,
        hash: &Hash,
        packed: Option<Vec<u8>>,
        size: u64,
        len: u64,
    ) -> Result<Vec<u8>> {
        let len = usize::try_from(len.min(size))
            .map_err(|_| StoreError::Internal("prefix length".into()))?;
        let mut src: Box<dyn Read> = match packed {
            Some(p) => Box::new(std::io::Cursor::new(p)),
            None => Box::new(File::open(self.path(hash)).map_err(|e| file_error(hash, e))?),
        };
        let fault =
            |what: &str| StoreError::Internal(format!("blob {}: {what}", hex::encode(hash)));
        let zstd_fault = |code| fault(zstd::zstd_safe::get_error_name(code));
        let mut out = Vec::with_capacity(len);
        let mut chunk = vec![0u8; PREFIX_CHUNK];
        let mut filled = src.read(&mut chunk)?;
        let dict = self.frame_decoder(hash, &chunk[..filled])?;
        DECOMPRESSOR.with_borrow_mut(|d| {
            // The context forgets the dictionary on every exit (reset below), so it never
            // refers to one after this call.
            struct Forget<'a, 'c>(&'a mut zstd::zstd_safe::DCtx<'c>);
            impl Drop for Forget<'_, '_> {
                fn drop(&mut self) {
                    let _ = self
                        .0
                        .reset(zstd::zstd_safe::ResetDirective::SessionAndParameters);
                }
            }
            let d = Forget(d);
            d.0.reset(zstd::zstd_safe::ResetDirective::SessionAndParameters)
                .map_err(zstd_fault)?;
            if let Some(dict) = &dict {
                d.0.ref_ddict(dict.as_ddict()).map_err(zstd_fault)?;
            }
            let mut pos = 0;
            while out.len() < len {
                if pos == filled {
                    filled = src.read(&mut chunk)?;
                    pos = 0;
                }
                let was = (out.len(), pos);
                let mut input = zstd::zstd_safe::InBuffer::around(&chunk[pos..filled]);
                let at = out.len();
                let mut output = zstd::zstd_safe::OutBuffer::around_pos(&mut out, at);
                d.0.decompress_stream(&mut output, &mut input)
                    .map_err(zstd_fault)?;
                pos += input.pos();
                if (out.len(), pos) == was {
                    // No input left and nothing more to give: the body is shorter than
                    // its recorded size.
                    return Err(fault(&format!("ends before {len} of {size} bytes")));
                }
            }
            Ok(out)
        })
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
                let raw = self
                    .raw_dictionary(id.get())
                    .ok_or_else(|| no_dictionary(hash, id.get()))?;
                Box::new(zstd::stream::read::Decoder::with_dictionary(src, &raw)?)
            }
        };
        Ok(MessageReader::new(size, decoder))
    }
}
