//! A client connection's byte stream, plain or TLS, and its read buffer.
//!
//! The read buffer is ours (not a `BufReader`) so that STARTTLS can check nothing was pipelined
//! after the command (RFC 9051 §6.2.1: such bytes must be discarded, a known injection trick),
//! and so that it can shrink back after a large command: an idle connection holds a few hundred
//! bytes, not the peak of its history.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::compress::Deflated;
use crate::tls::Tls;

/// Plain TCP or TLS over TCP, either of them with COMPRESS=DEFLATE on top.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// COMPRESS=DEFLATE (RFC 4978) over a plain or TLS stream.
    Deflate(Box<Deflated>),
    /// Left behind while the TCP stream is handed to the TLS handshake.
    Closed,
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "stream closed")
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Deflate(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Deflate(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Deflate(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Deflate(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Closed => Poll::Ready(Err(closed())),
        }
    }
}

impl Stream {
    /// The `tls-exporter` channel binding of this connection (RFC 9266): 32 bytes exported
    /// with the label `EXPORTER-Channel-Binding` and an empty context. TLS 1.3 only: with TLS
    /// 1.2 the exporter is safe only with the extended master secret, which rustls does not
    /// require by default and does not report, so no binding is given there (and
    /// SCRAM-SHA-256-PLUS is not offered).
    pub fn tls_exporter(&self) -> Option<Vec<u8>> {
        let Stream::Tls(s) = self else {
            return None;
        };
        let (_, conn) = s.get_ref();
        if conn.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
            return None;
        }
        conn.export_keying_material(
            [0u8; 32],
            mailkeep_auth::scram::TLS_EXPORTER_LABEL,
            Some(b""),
        )
        .ok()
        .map(|b| b.to_vec())
    }
}

/// What reading a line gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A complete line including its LF (and CR before it, if sent).
    Complete(Vec<u8>),
    /// The line exceeded the limit; everything up to and including its LF was discarded.
    /// The first bytes are kept so the tag can be answered.
    TooLong(Vec<u8>),
    /// The line exceeded the limit and no LF came within [`COMPRESSED_SKIP_LIMIT`] more
    /// (inflated) bytes on a compressed connection: a decompression bomb, not a client that
    /// went wrong once. The input is out of step; the connection must be closed.
    Abandoned(Vec<u8>),
    /// The peer closed the connection.
    Eof,
}

/// How long a write may wait for the client to take our output.
#[derive(Debug, Clone, Copy)]
pub enum WriteLimit {
    /// Everything written by this instant (before login: the connection's deadline).
    Deadline(tokio::time::Instant),
    /// Each step of a write (one `write` or `flush` call) within this time: a client that
    /// reads slowly but steadily is fine, one that stops reading is cut off.
    Stall(Duration),
}

/// The connection with its read buffer.
pub struct Conn {
    pub stream: Stream,
    buf: Vec<u8>,
    /// Start of unread data in `buf`.
    pos: usize,
    /// Applied to every write: no write waits forever on a client that does not read.
    pub write_limit: WriteLimit,
    /// When set, a read still waiting then fails with `TimedOut` (one command's deadline).
    pub read_deadline: Option<tokio::time::Instant>,
}

/// Read size: small, because most commands are short and an idle connection should hold little.
const READ_CHUNK: usize = 2048;
/// Keep at most this much buffer capacity between commands.
const KEEP_CAPACITY: usize = 4096;
/// After a too-long line on a compressed connection, how many more inflated bytes are read
/// looking for its end. A plain client pays a byte of traffic for each byte we skip; through
/// deflate one byte can stand for a thousand, so the search is bounded.
pub const COMPRESSED_SKIP_LIMIT: u64 = 1024 * 1024;

impl Conn {
    pub fn new(stream: Stream) -> Self {
        Conn {
            stream,
            buf: Vec::new(),
            pos: 0,
            write_limit: WriteLimit::Stall(Duration::from_secs(60)),
            read_deadline: None,
        }
    }

    /// Wait until input is there (buffered or from the socket); `false` at end of input.
    pub async fn wait_input(&mut self) -> io::Result<bool> {
        if self.pos < self.buf.len() {
            return Ok(true);
        }
        Ok(self.fill().await? > 0)
    }

    /// STARTTLS / STLS: the handshake on this connection. Anything the client sent after the
    /// command is discarded first (RFC 9051 §6.2.1, RFC 2595 §4), so a man in the middle cannot
    /// inject commands into the TLS session. The caller bounds it in time.
    pub async fn start_tls(&mut self, tls: Option<&Tls>) -> io::Result<()> {
        let Some(tls) = tls else {
            return Err(io::ErrorKind::Unsupported.into());
        };
        self.discard_buffered();
        match std::mem::replace(&mut self.stream, Stream::Closed) {
            Stream::Plain(tcp) => {
                self.stream = Stream::Tls(Box::new(tls.acceptor.accept(tcp).await?));
                Ok(())
            }
            other => {
                self.stream = other;
                Err(io::ErrorKind::Unsupported.into())
            }
        }
    }

    /// COMPRESS=DEFLATE: from now on input is inflated and output deflated. Input already
    /// buffered after the command is the start of the compressed stream (the client must wait
    /// for our OK, but if it did not, its bytes are compressed ones).
    pub fn start_compress(&mut self) -> io::Result<()> {
        if self.is_compressed() {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        let early = self.buf[self.pos..].to_vec();
        self.discard_buffered();
        let inner = std::mem::replace(&mut self.stream, Stream::Closed);
        self.stream = Stream::Deflate(Box::new(Deflated::new(inner, early)));
        Ok(())
    }

    /// COMPRESS=DEFLATE is active.
    pub fn is_compressed(&self) -> bool {
        matches!(self.stream, Stream::Deflate(_))
    }

    /// Drop buffered input (after STARTTLS) and release memory.
    pub fn discard_buffered(&mut self) {
        self.buf = Vec::new();
        self.pos = 0;
    }

    /// Give back memory after a large command.
    pub fn shrink(&mut self) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf.shrink_to(KEEP_CAPACITY.max(self.buf.len()));
        }
        if self.buf.is_empty() {
            self.buf = Vec::new();
        }
    }

    async fn fill(&mut self) -> io::Result<usize> {
        self.fill_hint(READ_CHUNK).await
    }

    /// Read more input, with room for about `want` bytes (large when a literal is expected).
    async fn fill_hint(&mut self, want: usize) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        let old = self.buf.len();
        self.buf.reserve(want.clamp(READ_CHUNK, 64 * 1024));
        let read = self.stream.read_buf(&mut self.buf);
        let n = match self.read_deadline {
            Some(by) => tokio::time::timeout_at(by, read)
                .await
                .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??,
            None => read.await?,
        };
        debug_assert_eq!(self.buf.len(), old + n);
        Ok(n)
    }

    /// Read one line of at most `max` bytes.
    pub async fn read_line(&mut self, max: usize) -> io::Result<Line> {
        // Bytes after `pos` already searched for LF (relative, because `fill` may move data).
        let mut scanned = 0;
        loop {
            let from = self.pos + scanned;
            if let Some(i) = self.buf[from..].iter().position(|b| *b == b'\n') {
                let end = from + i + 1;
                let line = self.buf[self.pos..end].to_vec();
                self.pos = end;
                return Ok(Line::Complete(line));
            }
            scanned = self.buf.len() - self.pos;
            if self.buf.len() - self.pos > max {
                let head =
                    self.buf[self.pos..self.pos + 64.min(self.buf.len() - self.pos)].to_vec();
                let limit = self.is_compressed().then_some(COMPRESSED_SKIP_LIMIT);
                if self.skip_line(limit).await? {
                    return Ok(Line::TooLong(head));
                }
                return Ok(Line::Abandoned(head));
            }
            if self.fill().await? == 0 {
                return Ok(Line::Eof);
            }
        }
    }

    /// Discard input up to and including the next LF; `false` if more than `limit` bytes came
    /// without one (the rest of the line is left unread).
    async fn skip_line(&mut self, limit: Option<u64>) -> io::Result<bool> {
        let mut skipped = 0u64;
        loop {
            if let Some(i) = self.buf[self.pos..].iter().position(|b| *b == b'\n') {
                self.pos += i + 1;
                return Ok(true);
            }
            skipped += (self.buf.len() - self.pos) as u64;
            self.buf.clear();
            self.pos = 0;
            if limit.is_some_and(|l| skipped > l) {
                return Ok(false);
            }
            if self.fill().await? == 0 {
                return Ok(true);
            }
        }
    }

    /// Read exactly `len` bytes into memory.
    pub async fn read_exact_vec(&mut self, len: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(len);
        self.copy_exact(len as u64, |chunk| {
            out.extend_from_slice(chunk);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Read exactly `len` bytes, handing each chunk to `sink` (to spool or discard).
    pub async fn copy_exact(
        &mut self,
        len: u64,
        mut sink: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut left = len;
        while left > 0 {
            if self.pos == self.buf.len()
                && self.fill_hint(left.min(usize::MAX as u64) as usize).await? == 0
            {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let avail = (self.buf.len() - self.pos) as u64;
            let take = avail.min(left) as usize;
            sink(&self.buf[self.pos..self.pos + take])?;
            self.pos += take;
            left -= take as u64;
        }
        Ok(())
    }

    /// Write and flush `data` within [`Conn::write_limit`]; `TimedOut` if the client does not
    /// take it in time (the caller then closes the connection, freeing its buffers).
    pub async fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        let limit = self.write_limit;
        while !data.is_empty() {
            let n = within(limit, self.stream.write(data)).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            data = &data[n..];
        }
        within(limit, self.stream.flush()).await
    }
}

async fn within<T>(
    limit: WriteLimit,
    fut: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    let r = match limit {
        WriteLimit::Deadline(at) => tokio::time::timeout_at(at, fut).await,
        WriteLimit::Stall(d) => tokio::time::timeout(d, fut).await,
    };
    r.unwrap_or_else(|_| {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "client does not read our output",
        ))
    })
}

/// The connection's stream for a new client: for an implicit-TLS listener, the handshake first,
/// within `deadline` (the pre-login deadline). `None`: no TLS configured, failed or too slow.
pub(crate) async fn open(
    tls: Option<&Tls>,
    tcp: TcpStream,
    peer: SocketAddr,
    implicit_tls: bool,
    deadline: tokio::time::Instant,
) -> Option<Stream> {
    if !implicit_tls {
        return Some(Stream::Plain(tcp));
    }
    match tokio::time::timeout_at(deadline, tls?.acceptor.accept(tcp)).await {
        Ok(Ok(s)) => Some(Stream::Tls(Box::new(s))),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// A peer on this machine (127.0.0.0/8, ::1, or ::ffff:127.x).
pub(crate) fn is_loopback(peer: SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The client went away: not worth a log line.
pub(crate) fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A connected pair: the server side wrapped in `Conn`, the client side raw.
    async fn pair() -> (Conn, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (Conn::new(Stream::Plain(server)), client)
    }

    #[tokio::test]
    async fn lines_split_across_reads_and_literals() {
        let (mut conn, mut client) = pair().await;
        let writer = tokio::spawn(async move {
            // A command cut in the middle, as a slow client or a small TCP segment would.
            for piece in [
                &b"A023 LO"[..],
                b"GOUT\r\n",
                b"a {5}\r\nhel",
                b"lo rest\r\nnext\n",
            ] {
                client.write_all(piece).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            client
        });
        assert_eq!(
            conn.read_line(1000).await.unwrap(),
            Line::Complete(b"A023 LOGOUT\r\n".to_vec())
        );
        assert_eq!(
            conn.read_line(1000).await.unwrap(),
            Line::Complete(b"a {5}\r\n".to_vec())
        );
        assert_eq!(conn.read_exact_vec(5).await.unwrap(), b"hello");
        assert_eq!(
            conn.read_line(1000).await.unwrap(),
            Line::Complete(b" rest\r\n".to_vec())
        );
        assert_eq!(
            conn.read_line(1000).await.unwrap(),
            Line::Complete(b"next\n".to_vec())
        );
        drop(writer.await.unwrap());
        assert_eq!(conn.read_line(1000).await.unwrap(), Line::Eof);
    }

    #[tokio::test]
    async fn too_long_line_is_skipped_and_the_next_one_read() {
        let (mut conn, mut client) = pair().await;
        let mut long = b"t1 ".to_vec();
        long.extend(std::iter::repeat_n(b'x', 10_000));
        long.extend_from_slice(b"\r\nt2 NOOP\r\n");
        client.write_all(&long).await.unwrap();
        match conn.read_line(4096).await.unwrap() {
            Line::TooLong(head) => assert!(head.starts_with(b"t1 x")),
            other => panic!("expected TooLong, got {other:?}"),
        }
        assert_eq!(
            conn.read_line(4096).await.unwrap(),
            Line::Complete(b"t2 NOOP\r\n".to_vec())
        );
        conn.shrink();
        assert!(conn.buf.capacity() <= KEEP_CAPACITY);
    }

    #[tokio::test]
    async fn write_to_a_client_that_does_not_read_times_out() {
        let (mut conn, client) = pair().await;
        conn.write_limit = WriteLimit::Stall(Duration::from_millis(200));
        let start = std::time::Instant::now();
        // Far more than the socket buffers hold; the client never reads.
        let big = vec![b'x'; 64 * 1024 * 1024];
        let err = conn.write_all(&big).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(5));
        conn.write_limit =
            WriteLimit::Deadline(tokio::time::Instant::now() + Duration::from_millis(100));
        let err = conn.write_all(&big).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        drop(client);
    }
}
