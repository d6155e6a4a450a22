//! COMPRESS=DEFLATE (RFC 4978): raw deflate (RFC 1951, no zlib header) in both directions,
//! between the IMAP byte stream and the transport (plain TCP or TLS: compressed first, then
//! encrypted).
//!
//! Memory is the point here, because an IDLE connection may sit for hours:
//!
//! - The inflater must accept the client's full 32 KiB window (the client chooses it), so it
//!   stays for the life of the connection: that is the floor of a compressed connection. It is
//!   C zlib's (flate2 with the `zlib` feature, the system's libz): its state is about 7 KiB and
//!   the window is allocated when first needed. Measured per inflater, before and after 34 KiB
//!   of input: C zlib 4.4 and 38.1 KiB, zlib-rs 18.7 and 46.8 KiB (its state is larger and
//!   allocated with the window).
//! - A connection holds no deflate state at all (zlib's default deflate state is about
//!   256 KiB). Each write (one burst of output: an answer, an IDLE notification, one step of
//!   a streamed FETCH) is compressed in one go by its worker thread's deflater and ended with a
//!   sync flush, so the client has every byte at once and never waits for more; the deflater is
//!   then reset for the next burst, of any connection. A new raw deflate stream after a sync
//!   flush is valid continuation for the client's inflater: the output is byte-aligned, no
//!   final block was sent, and the reset deflater refers to nothing before it. The cost is a
//!   fresh dictionary per burst, which matters little for IMAP answers. (A deflater created
//!   and dropped per burst instead left about 15 KiB per idle connection of freed but
//!   resident heap behind, at 1,000 connections.)
//! - Compressed input is read through a buffer on the stack; only input the reader had no room
//!   for (its buffer was full) is kept, and that buffer is freed as soon as it is used up.
//!
//! Inflating is driven by the reader's buffer, so a decompression bomb is inflated only as far
//! as the reader asks: every line, literal and command limit of `conn.rs` applies to the
//! inflated bytes, exactly as to a plain stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::stream::Stream;

/// The inflater's window: 32 KiB, the largest a client may use (RFC 1951 §2).
const INFLATE_WINDOW_BITS: u8 = 15;
/// The deflater: the full window (zlib's default memLevel, 8, which flate2 does not change)
/// at level 2. It is one per worker thread, not per connection (see the module comment), so
/// its size costs nothing per connection, and the smaller settings a per-connection deflater
/// would need (window 12 bits, memLevel 2, level 1) compressed mail answers to 56% instead of
/// 41% (the repository's test corpus as FETCH answers in 128 KiB bursts, measured with zlib-rs).
const DEFLATE_WINDOW_BITS: u8 = 15;
const DEFLATE_LEVEL: u32 = 2;
/// Compressed bytes read from the transport at once (on the stack).
const RAW_CHUNK: usize = 4096;

/// A stream with COMPRESS=DEFLATE active: reads inflate, writes deflate.
pub struct Deflated {
    inner: Stream,
    inflate: Decompress,
    /// Compressed input read but not yet inflated (the reader's buffer was full).
    pending_in: Vec<u8>,
    /// The client ended its deflate stream (final block) or sent garbage: end of input.
    ended: bool,
    /// Compressed output not yet taken by the transport, from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
}

std::thread_local! {
    /// One deflater per thread, used within one `poll_write` call at a time (never across an
    /// await), reset after each burst.
    static DEFLATER: std::cell::RefCell<Option<Compress>> = const { std::cell::RefCell::new(None) };
}

/// Compress one burst into `out`, ending it with a sync flush, with this thread's deflater.
fn deflate_burst(input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    DEFLATER.with(|cell| {
        let mut slot = cell.borrow_mut();
        let d = slot.get_or_insert_with(new_deflater);
        let r = deflate_into(d, input, FlushCompress::Sync, out);
        if r.is_ok() {
            d.reset();
        } else {
            *slot = None;
        }
        r
    })
}

impl Deflated {
    /// Start compression on `inner`. `early` is input the client sent after COMPRESS that was
    /// already read: it is compressed data too.
    pub fn new(inner: Stream, early: Vec<u8>) -> Self {
        Deflated {
            inner,
            inflate: Decompress::new_with_window_bits(false, INFLATE_WINDOW_BITS),
            pending_in: early,
            ended: false,
            out: Vec::new(),
            out_pos: 0,
        }
    }

    /// Inflate from `input` into `buf`: (bytes consumed, bytes produced).
    fn inflate_into(&mut self, input: &[u8], buf: &mut ReadBuf<'_>) -> io::Result<(usize, usize)> {
        let (in0, out0) = (self.inflate.total_in(), self.inflate.total_out());
        let status =
            self.inflate
                .decompress(input, buf.initialize_unfilled(), FlushDecompress::None);
        let consumed = (self.inflate.total_in() - in0) as usize;
        let produced = (self.inflate.total_out() - out0) as usize;
        buf.advance(produced);
        match status {
            Ok(Status::StreamEnd) => self.ended = true,
            Ok(Status::Ok | Status::BufError) => {
                if consumed == 0 && produced == 0 && !input.is_empty() {
                    self.ended = true;
                    return Err(invalid("no progress inflating the client's data"));
                }
            }
            Err(e) => {
                self.ended = true;
                return Err(invalid(&e.to_string()));
            }
        }
        Ok((consumed, produced))
    }

    /// Write out compressed output the transport has not taken yet.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.out_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
        self.out.clear();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("COMPRESS: bad deflate data: {what}"),
    )
}

fn new_deflater() -> Compress {
    Compress::new_with_window_bits(Compression::new(DEFLATE_LEVEL), false, DEFLATE_WINDOW_BITS)
}

/// Compress `input` (all of it) into `out`, with `flush`.
fn deflate_into(
    d: &mut Compress,
    mut input: &[u8],
    flush: FlushCompress,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    loop {
        if out.capacity() - out.len() < 512 {
            out.reserve((input.len() / 2).clamp(4096, 64 * 1024));
        }
        let len = out.len();
        let room = out.capacity() - len;
        out.resize(len + room, 0);
        let (in0, out0) = (d.total_in(), d.total_out());
        let r = d.compress(input, &mut out[len..], flush);
        let used = (d.total_in() - in0) as usize;
        let produced = (d.total_out() - out0) as usize;
        out.truncate(len + produced);
        r.map_err(|e| io::Error::other(format!("COMPRESS: deflate failed: {e}")))?;
        input = &input[used..];
        // Done once the input is taken and the deflater did not fill the room it had.
        if input.is_empty() && produced < room {
            return Ok(());
        }
    }
}

impl AsyncRead for Deflated {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.ended {
                // End of input, as for a closed socket.
                return Poll::Ready(Ok(()));
            }
            if !this.pending_in.is_empty() {
                let input = std::mem::take(&mut this.pending_in);
                let (consumed, produced) = this.inflate_into(&input, buf)?;
                if consumed < input.len() {
                    this.pending_in = input;
                    this.pending_in.drain(..consumed);
                }
                if produced > 0 {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            let mut raw = [0u8; RAW_CHUNK];
            let mut rb = ReadBuf::new(&mut raw);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                return Poll::Ready(Ok(()));
            }
            let (consumed, produced) = this.inflate_into(&raw[..n], buf)?;
            if consumed < n {
                this.pending_in.extend_from_slice(&raw[consumed..n]);
            }
            if produced > 0 {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl AsyncWrite for Deflated {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        deflate_burst(buf, &mut this.out)?;
        Poll::Ready(Ok(buf.len()))
    }

    /// Everything written is already compressed and flushed (each write is a burst); write it
    /// out and free the output buffer.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        this.out = Vec::new();
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    async fn pair() -> (Deflated, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (Deflated::new(Stream::Plain(server), Vec::new()), client)
    }

    /// Raw-inflate everything in `data` with a fresh full-window inflater.
    fn inflate_all(data: &[u8]) -> Vec<u8> {
        let mut i = Decompress::new_with_window_bits(false, 15);
        let mut out = vec![0u8; 16 << 20];
        i.decompress(data, &mut out, FlushDecompress::Sync).unwrap();
        out.truncate(i.total_out() as usize);
        out
    }

    #[tokio::test]
    async fn each_flush_is_complete_for_the_client_and_bursts_chain() {
        let (mut server, mut client) = pair().await;
        let text = b"* 1 FETCH (FLAGS (\\Seen) UID 1)\r\n".repeat(200);
        server.write_all(&text).await.unwrap();
        server.flush().await.unwrap();
        assert_eq!(
            server.out.capacity(),
            0,
            "output buffer freed after the burst"
        );
        server.write_all(b"a OK done\r\n").await.unwrap();
        server.flush().await.unwrap();
        drop(server);
        let mut wire = Vec::new();
        client.read_to_end(&mut wire).await.unwrap();
        assert!(wire.len() < text.len() / 5, "compressed: {}", wire.len());
        // Both bursts ended with a sync flush marker (00 00 ff ff).
        assert!(wire.ends_with(&[0, 0, 0xff, 0xff]));
        let mut want = text.clone();
        want.extend_from_slice(b"a OK done\r\n");
        assert_eq!(inflate_all(&wire), want);
    }

    #[tokio::test]
    async fn reads_inflate_a_full_window_stream_in_small_pieces() {
        let (mut server, mut client) = pair().await;
        // The client compresses with zlib's defaults: 32 KiB window.
        let mut d = Compress::new_with_window_bits(Compression::new(6), false, 15);
        let mut plain = Vec::new();
        for i in 0..2000 {
            plain.extend_from_slice(format!("a{i} NOOP\r\n").as_bytes());
        }
        let mut wire = Vec::new();
        deflate_into(&mut d, &plain, FlushCompress::Sync, &mut wire).unwrap();
        client.write_all(&wire).await.unwrap();
        drop(client);
        let mut got = Vec::new();
        let mut small = [0u8; 7];
        loop {
            let n = server.read(&mut small).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&small[..n]);
        }
        assert_eq!(got, plain);
    }

    #[tokio::test]
    async fn garbage_is_an_error_not_a_hang() {
        let (mut server, mut client) = pair().await;
        client.write_all(&[0xff; 64]).await.unwrap();
        let mut buf = [0u8; 64];
        let err = server.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn a_bomb_inflates_only_as_far_as_the_reader_asks() {
        let (mut server, mut client) = pair().await;
        let mut d = Compress::new_with_window_bits(Compression::new(9), false, 15);
        let mut wire = Vec::new();
        deflate_into(&mut d, &vec![0u8; 64 << 20], FlushCompress::Sync, &mut wire).unwrap();
        assert!(wire.len() < 128 * 1024);
        client.write_all(&wire).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = server.read(&mut buf).await.unwrap();
        assert!(n > 0 && n <= 4096);
        // The rest waits, compressed, for the next read.
        assert!(server.pending_in.len() <= RAW_CHUNK);
    }
}
