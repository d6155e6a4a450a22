//! LMTP listeners (RFC 2033): TCP addresses and Unix sockets (`[lmtp] listen`), one task per
//! connection running a `mailkeep_lmtp::Session`. This file owns the sockets and the reading
//! (capped command lines, DATA in bounded pieces, BDAT chunks by size, timeouts, shutdown);
//! the protocol is in `crates/lmtp`.
//!
//! Unix sockets are created with mode 0660 (the MTA's group reaches them) and removed when
//! the server stops. A stale socket file left by a crash is replaced at start.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use mailkeep_lmtp::{Flow, Session, Want};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UnixListener};

use crate::{ConnGuard, Shared};

/// A DATA line longer than this is handed to the session in pieces.
const DATA_PIECE: usize = 64 * 1024;
/// Answers kept before they are written even while pipelined input is still waiting.
const OUT_FLUSH: usize = 16 * 1024;

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

/// The bound LMTP listeners.
#[derive(Default)]
pub(crate) struct Listeners {
    listeners: Vec<Listener>,
}

impl Listeners {
    /// Binds every `[lmtp] listen` entry: one with a `/` is a Unix socket path.
    pub(crate) async fn bind(entries: &[String]) -> Result<Listeners> {
        let mut listeners = Vec::new();
        for entry in entries {
            if entry.contains('/') {
                let path = PathBuf::from(entry);
                if let Ok(meta) = std::fs::symlink_metadata(&path)
                    && meta.file_type().is_socket()
                {
                    let _ = std::fs::remove_file(&path);
                }
                let l = UnixListener::bind(&path)
                    .with_context(|| format!("listening on {} (lmtp)", path.display()))?;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))
                    .with_context(|| format!("chmod 0660 {}", path.display()))?;
                listeners.push(Listener::Unix(l, path));
            } else {
                let l = TcpListener::bind(entry.as_str())
                    .await
                    .with_context(|| format!("listening on {entry} (lmtp)"))?;
                listeners.push(Listener::Tcp(l));
            }
        }
        Ok(Listeners { listeners })
    }

    /// What is bound: `host:port` for TCP (the real port), the path for a Unix socket.
    pub(crate) fn addrs(&self) -> Vec<String> {
        self.listeners
            .iter()
            .filter_map(|l| match l {
                Listener::Tcp(t) => t.local_addr().ok().map(|a| a.to_string()),
                Listener::Unix(_, p) => Some(p.display().to_string()),
            })
            .collect()
    }

    /// Starts the accept loops; returns the socket files to remove at shutdown.
    pub(crate) fn spawn(
        self,
        shared: &Arc<Shared>,
        tasks: &mut tokio::task::JoinSet<()>,
    ) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        for l in self.listeners {
            let shared = shared.clone();
            match l {
                Listener::Tcp(l) => {
                    tasks.spawn(accept_tcp(shared, l));
                }
                Listener::Unix(l, path) => {
                    paths.push(path);
                    tasks.spawn(accept_unix(shared, l));
                }
            }
        }
        paths
    }
}

async fn accept_tcp(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                start(&shared, tcp, peer.ip(), peer.to_string());
            }
            Err(e) => pause(e).await,
        }
    }
}

async fn accept_unix(shared: Arc<Shared>, listener: UnixListener) {
    loop {
        match listener.accept().await {
            // Local peers count against the limits as loopback.
            Ok((s, _)) => start(&shared, s, IpAddr::V4(Ipv4Addr::LOCALHOST), "unix".into()),
            Err(e) => pause(e).await,
        }
    }
}

/// Out of file descriptors and similar: wait instead of spinning.
async fn pause(e: io::Error) {
    tracing::warn!(error = %e, "LMTP accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

fn start<S>(shared: &Arc<Shared>, mut stream: S, ip: IpAddr, peer: String)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(guard) = ConnGuard::admit(shared, ip) else {
        tokio::spawn(async move {
            let _ = stream
                .write_all(b"421 4.7.0 Too many connections, try again later\r\n")
                .await;
        });
        return;
    };
    tracing::info!(%peer, listener = "lmtp", "connect");
    let shared = shared.clone();
    tokio::spawn(async move {
        let _guard = guard;
        if let Err(e) = serve(&shared, stream).await {
            tracing::debug!(%peer, error = %e, "LMTP connection error");
        }
        tracing::info!(%peer, listener = "lmtp", "disconnect");
    });
}

/// What one read produced.
enum Piece {
    /// A line with its line ending, or (DATA only) a piece of a long line.
    Bytes(Vec<u8>),
    /// A command line over the cap, read to its end and thrown away.
    TooLong,
    Eof,
}

fn session_config(shared: &Shared) -> mailkeep_lmtp::Config {
    let c = &shared.config;
    mailkeep_lmtp::Config {
        hostname: hostname(),
        max_message_size: c.limits.max_message_size,
        detail_separator: c.lmtp.detail_separator.clone(),
        quota_temporary: c.lmtp.quota_temporary,
        ..mailkeep_lmtp::Config::default()
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "localhost".into())
}

async fn serve<S>(shared: &Shared, stream: S) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (rd, mut wr) = tokio::io::split(stream);
    let mut rd = BufReader::with_capacity(8 * 1024, rd);
    let mut session = Session::new(shared.store.clone(), session_config(shared));
    let timeout = Duration::from_secs(shared.config.lmtp.timeout_secs);
    let max_line = shared.config.limits.max_line_length;
    let mut shutdown = shared.shutdown.clone();
    let mut out = Vec::new();
    session.greeting(&mut out);
    loop {
        if buffered_data(&mut rd, &mut session, &mut out).await == Flow::Close {
            write(&mut wr, &out, timeout).await?;
            let _ = wr.shutdown().await;
            return Ok(());
        }
        // PIPELINING: answers go out together once the client's pipelined input is used up.
        if !out.is_empty() && (rd.buffer().is_empty() || out.len() >= OUT_FLUSH) {
            write(&mut wr, &out, timeout).await?;
            out.clear();
        }
        let want = session.want();
        let read = async {
            match want {
                Want::Command => read_line(&mut rd, max_line, true).await,
                Want::Data => read_line(&mut rd, DATA_PIECE, false).await,
                Want::Chunk(n) => read_chunk(&mut rd, n).await,
            }
        };
        let piece = tokio::select! {
            r = tokio::time::timeout(timeout, read) => r,
            _ = shutdown.changed() => {
                session.abort();
                out.extend_from_slice(b"421 4.3.2 Server shutting down\r\n");
                write(&mut wr, &out, timeout).await?;
                return Ok(());
            }
        };
        let flow = match piece {
            Err(_) => {
                session.abort();
                out.extend_from_slice(b"421 4.4.2 Timeout, closing\r\n");
                write(&mut wr, &out, timeout).await?;
                return Ok(());
            }
            Ok(Err(e)) => {
                session.abort();
                return Err(e);
            }
            Ok(Ok(Piece::Eof)) => {
                // Whatever was half received is dropped: nothing is delivered.
                session.abort();
                return Ok(());
            }
            Ok(Ok(Piece::TooLong)) => session.line_too_long(&mut out),
            Ok(Ok(Piece::Bytes(b))) => match want {
                Want::Chunk(_) => session.chunk(&b, &mut out).await,
                _ => session.line(&b, &mut out).await,
            },
        };
        if flow == Flow::Close {
            write(&mut wr, &out, timeout).await?;
            let _ = wr.shutdown().await;
            return Ok(());
        }
    }
}

/// Hands the session the lines of DATA that are already received, straight from the read
/// buffer: no copy and no read timer per line (a 5 KB message is about 80 lines). A line
/// not yet complete, or a long one, takes the usual path.
async fn buffered_data<R: AsyncRead + Unpin>(
    rd: &mut BufReader<R>,
    session: &mut Session,
    out: &mut Vec<u8>,
) -> Flow {
    while session.want() == Want::Data {
        let buffered = rd.buffer();
        let Some(end) = buffered.iter().position(|&b| b == b'\n') else {
            break;
        };
        if end >= DATA_PIECE {
            break;
        }
        let flow = session.line(&buffered[..=end], out).await;
        rd.consume(end + 1);
        if flow == Flow::Close {
            return flow;
        }
    }
    Flow::Continue
}

/// Writes answers; a client that does not read them for `timeout` is given up on.
async fn write<W: AsyncWrite + Unpin>(wr: &mut W, out: &[u8], timeout: Duration) -> io::Result<()> {
    match tokio::time::timeout(timeout, wr.write_all(out)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "client does not read",
        )),
    }
}

/// Reads to the end of a line (LF). At `max` bytes: a command line (`discard`) is read on to
/// its end and dropped; a DATA line is returned in pieces of `max` bytes.
async fn read_line<R: AsyncRead + Unpin>(
    rd: &mut BufReader<R>,
    max: usize,
    discard: bool,
) -> io::Result<Piece> {
    let mut buf = Vec::new();
    let mut overlong = false;
    loop {
        let avail = rd.fill_buf().await?;
        if avail.is_empty() {
            return Ok(Piece::Eof);
        }
        let (take, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        if overlong {
            rd.consume(take);
            if done {
                return Ok(Piece::TooLong);
            }
            continue;
        }
        let room = max - buf.len();
        if take > room {
            if discard {
                overlong = true;
                buf = Vec::new();
                rd.consume(take);
                if done {
                    return Ok(Piece::TooLong);
                }
                continue;
            }
            buf.extend_from_slice(&avail[..room]);
            rd.consume(room);
            return Ok(Piece::Bytes(buf));
        }
        buf.extend_from_slice(&avail[..take]);
        rd.consume(take);
        if done {
            return Ok(Piece::Bytes(buf));
        }
    }
}

/// Up to `n` bytes of a BDAT chunk: what is buffered or arrives next.
async fn read_chunk<R: AsyncRead + Unpin>(rd: &mut BufReader<R>, n: u64) -> io::Result<Piece> {
    let avail = rd.fill_buf().await?;
    if avail.is_empty() {
        return Ok(Piece::Eof);
    }
    let take = avail.len().min(usize::try_from(n).unwrap_or(usize::MAX));
    let bytes = avail[..take].to_vec();
    rd.consume(take);
    Ok(Piece::Bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_capped() {
        let input: &[u8] = b"short\r\nAAAAAAAAAAAAAAAAAAAA\r\nnext\r\n";
        let mut rd = BufReader::with_capacity(4, input);
        let mut got = Vec::new();
        loop {
            match read_line(&mut rd, 10, true).await.unwrap() {
                Piece::Bytes(b) => got.push(String::from_utf8(b).unwrap()),
                Piece::TooLong => got.push("<too long>".into()),
                Piece::Eof => break,
            }
        }
        assert_eq!(got, ["short\r\n", "<too long>", "next\r\n"]);
        let mut rd = BufReader::with_capacity(4, input);
        let mut got = Vec::new();
        while let Piece::Bytes(b) = read_line(&mut rd, 10, false).await.unwrap() {
            got.push(String::from_utf8(b).unwrap());
        }
        assert_eq!(
            got,
            ["short\r\n", "AAAAAAAAAA", "AAAAAAAAAA", "\r\n", "next\r\n"]
        );
    }

    /// DATA lines taken from the read buffer (`buffered_data`) and read on by `read_line`, as
    /// `serve` does, whatever the reads cut: every message is stored as sent, dot-unstuffed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn data_lines_cut_anywhere_are_stored_as_sent() {
        use mailkeep_store::MailStore;
        let dir = tempfile::tempdir().unwrap();
        let store = mailkeep_store::sqlite::SqliteStore::open(dir.path()).unwrap();
        let user = store.create_user("alice", "x").await.unwrap();
        store.add_domain("example.org").await.unwrap();
        let body = "Subject: cut\r\n\r\n..one dot\r\n..\r\n\r\nline ".to_string()
            + &"x".repeat(300)
            + "\r\n...\r\nend\r\n";
        let want = b"Subject: cut\r\n\r\n.one dot\r\n.\r\n\r\nline ".to_vec();
        let transaction =
            format!("MAIL FROM:<a@b>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n{body}.\r\n");
        let capacities = [1, 2, 3, 5, 7, 13, 64, 8 * 1024];
        let input = format!("LHLO x\r\n{}QUIT\r\n", transaction.repeat(capacities.len()));
        for cap in capacities {
            let store: Arc<dyn MailStore> = store.clone();
            let mut session = Session::new(store, mailkeep_lmtp::Config::default());
            let mut rd = BufReader::with_capacity(cap, input.as_bytes());
            let mut out = Vec::new();
            loop {
                if buffered_data(&mut rd, &mut session, &mut out).await == Flow::Close {
                    break;
                }
                let piece = match session.want() {
                    Want::Data => read_line(&mut rd, DATA_PIECE, false).await.unwrap(),
                    _ => read_line(&mut rd, 1000, true).await.unwrap(),
                };
                let Piece::Bytes(line) = piece else { break };
                if session.line(&line, &mut out).await == Flow::Close {
                    break;
                }
            }
            let out = String::from_utf8(out).unwrap();
            assert_eq!(
                out.matches("250 2.0.0 <alice@example.org> Delivered")
                    .count(),
                capacities.len(),
                "{out}"
            );
        }
        let inbox = store.get_mailbox(user.id, "INBOX").await.unwrap().unwrap();
        let stored = store.messages(inbox.id).await.unwrap();
        assert_eq!(stored.len(), capacities.len() * capacities.len());
        for m in stored {
            let bytes = store.message_bytes(inbox.id, m.uid).await.unwrap();
            let at = bytes
                .windows(want.len())
                .position(|w| w == &want[..])
                .expect("body");
            let tail = String::from_utf8(bytes[at + want.len()..].to_vec()).unwrap();
            assert_eq!(
                tail,
                "x".repeat(300) + "\r\n..\r\nend\r\n",
                "capacity's cut"
            );
        }
    }
}
