//! One client connection: read a command (lines and literals), hand it to the session, write
//! the answer, and follow the session's [`Flow`] (STARTTLS, SASL, IDLE, close).
//!
//! Everything happens in this one task: a single `select!` over input, timeouts, mailbox
//! notifications (during IDLE) and shutdown (the mini-redis `Handler::run` shape).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailkeep_proto::frame::{literal_announcement, peek_tag};
use mailkeep_proto::{Fragment, parse_command};
use mailkeep_session::{Flow, Session, SessionConfig};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::Shared;
use crate::stream::{Conn, Line, Stream};

/// Most pieces (lines and literals) one command may have: bounds per-command bookkeeping.
const MAX_FRAGMENTS: usize = 10_000;
/// Literals kept in memory per command, in total, before the rest go to spool files.
const MAX_IN_MEMORY: u64 = 1024 * 1024;

enum ReadOutcome {
    Command(Vec<Fragment>, Vec<tempfile::TempPath>),
    /// The reader answered by itself (line too long, literal too big).
    Answered,
    Eof,
}

pub(crate) async fn serve(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    implicit_tls: bool,
) {
    let limits = &shared.config.limits;
    let unauth_timeout = Duration::from_secs(limits.unauthenticated_timeout_secs);
    let stream = if implicit_tls {
        let Some(tls) = &shared.tls else { return };
        match tokio::time::timeout(unauth_timeout, tls.acceptor.accept(tcp)).await {
            Ok(Ok(s)) => Stream::Tls(Box::new(s)),
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => return,
        }
    } else {
        Stream::Plain(tcp)
    };
    let config = SessionConfig {
        peer,
        tls_active: implicit_tls,
        starttls_available: !implicit_tls && shared.tls.is_some(),
        plaintext_auth_without_tls: shared.config.auth.plaintext_on_loopback && is_loopback(peer),
        max_message_size: limits.max_message_size,
        max_auth_failures: shared.config.auth.max_failures,
        max_mailboxes: limits.max_mailboxes,
        max_subscriptions: limits.max_subscriptions,
    };
    let mut session = Session::new(shared.store.clone(), config);
    let mut conn = Conn::new(stream);
    let mut shutdown = shared.shutdown.clone();
    match run(&shared, &mut conn, &mut session, &mut shutdown).await {
        Ok(()) => {}
        Err(e) if is_disconnect(&e) => {}
        Err(e) => tracing::debug!(%peer, error = %e, "connection error"),
    }
    tracing::info!(%peer, user = session.user().unwrap_or("-"), "disconnect");
}

async fn run(
    shared: &Shared,
    conn: &mut Conn,
    session: &mut Session,
    shutdown: &mut watch::Receiver<bool>,
) -> io::Result<()> {
    let limits = &shared.config.limits;
    let mut out = Vec::new();
    session.greeting(&mut out);
    conn.write_all(&out).await?;
    loop {
        out.clear();
        let timeout = if session.user().is_some() {
            Duration::from_secs(limits.idle_timeout_secs)
        } else {
            Duration::from_secs(limits.unauthenticated_timeout_secs)
        };
        let read = tokio::select! {
            r = tokio::time::timeout(timeout, read_command(shared, conn, &mut out)) => r,
            _ = shutdown.changed() => {
                conn.write_all(b"* BYE Server shutting down.\r\n").await?;
                return Ok(());
            }
        };
        let (fragments, _spooled) = match read {
            Err(_) => {
                conn.write_all(b"* BYE Disconnected for inactivity.\r\n")
                    .await?;
                return Ok(());
            }
            Ok(r) => match r? {
                ReadOutcome::Eof => return Ok(()),
                ReadOutcome::Answered => {
                    conn.write_all(&out).await?;
                    continue;
                }
                ReadOutcome::Command(f, s) => (f, s),
            },
        };
        let mut flow = match parse_command(&fragments) {
            Ok(command) => session.handle(command, &mut out).await,
            Err(e) => session.parse_error(&e, &mut out),
        };
        drop(fragments);
        // Follow the flow until the session wants the next command.
        loop {
            conn.write_all(&out).await?;
            out.clear();
            flow = match flow {
                Flow::Continue => break,
                Flow::Close => return Ok(()),
                Flow::StartTls => {
                    start_tls(shared, conn).await?;
                    session.tls_started();
                    break;
                }
                Flow::SaslContinue => match read_short_line(shared, conn, timeout).await? {
                    Some(line) => session.sasl_response(&line, &mut out).await,
                    None => return Ok(()),
                },
                Flow::Idle => idle(shared, conn, session, shutdown, &mut out).await?,
                // A big answer, written part by part as the client reads it.
                Flow::MoreOutput => session.resume_output(&mut out).await,
            };
        }
        conn.shrink();
        if out.capacity() > 64 * 1024 {
            out = Vec::new();
        }
    }
}

/// IDLE (RFC 2177, RFC 9051 §6.3.13): forward mailbox changes until the client sends DONE.
async fn idle(
    shared: &Shared,
    conn: &mut Conn,
    session: &mut Session,
    shutdown: &mut watch::Receiver<bool>,
    out: &mut Vec<u8>,
) -> io::Result<Flow> {
    let timeout = Duration::from_secs(shared.config.limits.idle_timeout_secs);
    let deadline = tokio::time::Instant::now() + timeout;
    // Release the memory of the command that started IDLE: the connection may wait for hours.
    conn.shrink();
    loop {
        tokio::select! {
            line = conn.read_line(shared.config.limits.max_line_length) => {
                return match line? {
                    Line::Complete(l) => {
                        let done = trim_crlf(&l).eq_ignore_ascii_case(b"DONE");
                        Ok(session.idle_done(done, out).await)
                    }
                    Line::TooLong(_) => Ok(session.idle_done(false, out).await),
                    Line::Eof => Ok(Flow::Close),
                };
            }
            _ = session.changed() => {
                session.idle_update(out).await;
                conn.write_all(out).await?;
                out.clear();
                // The mailbox may have been deleted under us: the session said BYE.
                if session.is_logged_out() {
                    return Ok(Flow::Close);
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                out.extend_from_slice(b"* BYE Disconnected for inactivity.\r\n");
                return Ok(Flow::Close);
            }
            _ = shutdown.changed() => {
                out.extend_from_slice(b"* BYE Server shutting down.\r\n");
                return Ok(Flow::Close);
            }
        }
    }
}

async fn start_tls(shared: &Shared, conn: &mut Conn) -> io::Result<()> {
    let Some(tls) = &shared.tls else {
        return Err(io::ErrorKind::Unsupported.into());
    };
    // RFC 9051 §6.2.1: anything the client sent after STARTTLS before the handshake is
    // discarded, so a man in the middle cannot inject commands into the TLS session.
    conn.discard_buffered();
    match std::mem::replace(&mut conn.stream, Stream::Closed) {
        Stream::Plain(tcp) => {
            let tls_stream = tls.acceptor.accept(tcp).await?;
            conn.stream = Stream::Tls(Box::new(tls_stream));
            Ok(())
        }
        other => {
            conn.stream = other;
            Err(io::ErrorKind::Unsupported.into())
        }
    }
}

/// Read one command: its lines and literals (RFC 9051 §4.3, RFC 7888).
async fn read_command(
    shared: &Shared,
    conn: &mut Conn,
    out: &mut Vec<u8>,
) -> io::Result<ReadOutcome> {
    let limits = &shared.config.limits;
    let mut fragments = Vec::new();
    let mut spooled = Vec::new();
    let mut in_memory = 0u64;
    let mut first_line: Option<Vec<u8>> = None;
    loop {
        let line = match conn.read_line(limits.max_line_length).await? {
            Line::Eof => return Ok(ReadOutcome::Eof),
            Line::TooLong(head) => {
                let tag = first_line.as_deref().or(Some(&head)).and_then(peek_tag);
                answer(out, tag.as_deref(), "BAD", "[LIMIT] Command line too long.");
                return Ok(ReadOutcome::Answered);
            }
            Line::Complete(l) => l,
        };
        if first_line.is_none() {
            first_line = Some(line.iter().take(128).copied().collect());
        }
        let announcement = match literal_announcement(&line) {
            Ok(Some(a)) => a,
            // No literal (or a malformed announcement, which the parser reports): complete.
            Ok(None) | Err(()) => {
                fragments.push(Fragment::Line(line));
                return Ok(ReadOutcome::Command(fragments, spooled));
            }
        };
        let tag = first_line.as_deref().and_then(peek_tag);
        if announcement.len > limits.max_message_size || fragments.len() >= MAX_FRAGMENTS {
            if !announcement.synchronizing {
                // The client sends it anyway (LITERAL+): swallow it and the rest of the command.
                conn.copy_exact(announcement.len, |_| Ok(())).await?;
                skip_rest_of_command(shared, conn).await?;
            }
            answer(out, tag.as_deref(), "NO", "[TOOBIG] Literal too large.");
            return Ok(ReadOutcome::Answered);
        }
        fragments.push(Fragment::Line(line));
        if announcement.synchronizing {
            conn.write_all(b"+ OK\r\n").await?;
        }
        if announcement.len > limits.spool_threshold || in_memory + announcement.len > MAX_IN_MEMORY
        {
            let (path, len) = spool(shared, conn, announcement.len).await?;
            fragments.push(Fragment::Spooled {
                path: path.to_path_buf(),
                len,
            });
            spooled.push(path);
        } else {
            in_memory += announcement.len;
            fragments.push(Fragment::Literal(
                conn.read_exact_vec(announcement.len as usize).await?,
            ));
        }
    }
}

/// Write a large literal to a spool file so memory per connection stays bounded.
async fn spool(
    shared: &Shared,
    conn: &mut Conn,
    len: u64,
) -> io::Result<(tempfile::TempPath, u64)> {
    use std::io::Write;
    let file = tempfile::Builder::new()
        .prefix("literal-")
        .tempfile_in(&shared.spool_dir)?;
    let (file, path) = file.into_parts();
    let mut writer = io::BufWriter::with_capacity(64 * 1024, file);
    conn.copy_exact(len, |chunk| writer.write_all(chunk))
        .await?;
    writer.flush()?;
    Ok((path, len))
}

/// After refusing a non-synchronizing literal: read and drop the rest of the command.
async fn skip_rest_of_command(shared: &Shared, conn: &mut Conn) -> io::Result<()> {
    loop {
        let line = match conn.read_line(shared.config.limits.max_line_length).await? {
            Line::Complete(l) => l,
            Line::TooLong(_) | Line::Eof => return Ok(()),
        };
        match literal_announcement(&line) {
            Ok(Some(a)) if !a.synchronizing => conn.copy_exact(a.len, |_| Ok(())).await?,
            _ => return Ok(()),
        }
    }
}

/// One line of a SASL exchange, without its CRLF. `None` at end of input.
async fn read_short_line(
    shared: &Shared,
    conn: &mut Conn,
    timeout: Duration,
) -> io::Result<Option<Vec<u8>>> {
    match tokio::time::timeout(
        timeout,
        conn.read_line(shared.config.limits.max_line_length),
    )
    .await
    {
        Err(_) => Ok(None),
        Ok(line) => match line? {
            Line::Complete(l) => Ok(Some(trim_crlf(&l).to_vec())),
            // Too long for any SASL response we support: the session will reject it.
            Line::TooLong(_) => Ok(Some(b"*".to_vec())),
            Line::Eof => Ok(None),
        },
    }
}

fn answer(out: &mut Vec<u8>, tag: Option<&str>, kind: &str, text: &str) {
    out.extend_from_slice(tag.unwrap_or("*").as_bytes());
    out.push(b' ');
    out.extend_from_slice(kind.as_bytes());
    out.push(b' ');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn trim_crlf(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn is_loopback(peer: SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
    )
}
