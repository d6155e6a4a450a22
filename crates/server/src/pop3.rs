//! One POP3 connection (`[pop3]` with STLS, `[pop3s]` with implicit TLS): read a line, hand it
//! to the `mailkeep-pop3` session, write the answer, and follow its flow (STLS, a message to
//! stream, close). Same TLS, plaintext and timeout rules as IMAP (`conn`).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailkeep_pop3::message::CHUNK;
use mailkeep_pop3::{Flow, Pop3Config, Session};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::Shared;
use crate::stream::{Conn, Line, WriteLimit, is_disconnect, is_loopback, open};

pub(crate) async fn serve(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    implicit_tls: bool,
) {
    let limits = &shared.config.limits;
    // As for IMAP: one deadline from connect to login, whatever the client sends meanwhile.
    let deadline = Instant::now() + Duration::from_secs(limits.unauthenticated_timeout_secs);
    let Some(stream) = open(shared.tls.as_ref(), tcp, peer, implicit_tls, deadline).await else {
        return;
    };
    let config = Pop3Config {
        peer,
        tls_active: implicit_tls,
        stls_available: !implicit_tls && shared.tls.is_some(),
        plaintext_auth_without_tls: shared.config.auth.plaintext_on_loopback && is_loopback(peer),
        max_auth_failures: shared.config.auth.max_failures,
        delete_on_quit: shared.config.pop3.delete,
    };
    let mut session = Session::new(shared.store.clone(), shared.pop3_maildrops.clone(), config);
    session.set_auth_failure_delay(Duration::from_millis(shared.config.auth.failure_delay_ms));
    session.set_throttle(shared.throttle.clone());
    session.set_oauth(shared.oauth.clone());
    session.set_scram_iterations(shared.config.auth.scram_iterations);
    session.set_scram_sha1(shared.config.auth.scram_sha1);
    session.set_channel_binding(stream.tls_exporter());
    let mut conn = Conn::new(stream);
    let mut shutdown = shared.shutdown.clone();
    match run(&shared, &mut conn, &mut session, &mut shutdown, deadline).await {
        Ok(()) => {}
        Err(e) if is_disconnect(&e) => {}
        Err(e) => tracing::debug!(%peer, error = %e, "pop3 connection error"),
    }
    // Dropping the session without QUIT releases the maildrop and deletes nothing.
    tracing::info!(%peer, user = session.user().unwrap_or("-"), "pop3 disconnect");
}

async fn run(
    shared: &Shared,
    conn: &mut Conn,
    session: &mut Session,
    shutdown: &mut watch::Receiver<bool>,
    deadline: Instant,
) -> io::Result<()> {
    let limits = &shared.config.limits;
    let max_line = mailkeep_pop3::MAX_LINE.min(limits.max_line_length.max(512));
    let mut out = Vec::new();
    session.greeting(&mut out);
    conn.write_limit = WriteLimit::Deadline(deadline);
    conn.write_all(&out).await?;
    loop {
        out.clear();
        // Before login: the deadline from connect for reads and writes alike; after login the
        // idle timeout per read and the write timeout per write step.
        let (read_by, timeout) = if session.is_authenticated() {
            conn.write_limit = WriteLimit::Stall(Duration::from_secs(limits.write_timeout_secs));
            (
                Instant::now() + Duration::from_secs(limits.idle_timeout_secs),
                Duration::from_secs(limits.write_timeout_secs),
            )
        } else {
            conn.write_limit = WriteLimit::Deadline(deadline);
            (deadline, deadline.saturating_duration_since(Instant::now()))
        };
        let line = tokio::select! {
            r = tokio::time::timeout_at(read_by, conn.read_line(max_line)) => r,
            _ = shutdown.changed() => {
                conn.write_all(b"-ERR [SYS/TEMP] Server shutting down.\r\n").await?;
                return Ok(());
            }
        };
        let flow = match line {
            Err(_) => {
                conn.write_all(b"-ERR Disconnected for inactivity.\r\n")
                    .await?;
                return Ok(());
            }
            Ok(line) => match line? {
                Line::Eof | Line::Abandoned(_) => return Ok(()),
                Line::TooLong(_) => session.line_too_long(&mut out),
                Line::Complete(l) => session.handle_line(&l, &mut out).await,
            },
        };
        match flow {
            Flow::Continue => write(conn, &out, timeout).await?,
            Flow::Close => {
                write(conn, &out, timeout).await?;
                return Ok(());
            }
            Flow::StartTls => {
                write(conn, &out, timeout).await?;
                match tokio::time::timeout_at(deadline, conn.start_tls(shared.tls.as_ref())).await {
                    Ok(r) => r?,
                    Err(_) => return Ok(()),
                }
                session.tls_started();
                session.set_channel_binding(conn.stream.tls_exporter());
            }
            Flow::Message(mut message) => {
                // The `+OK` line goes out with the first piece; then one piece per write, so
                // the connection holds one piece of output, never a stuffed copy of the message.
                // Big messages are read from their files (and unpacked) as they go: those
                // reads run on the blocking pool, not on the connection's worker.
                let blocking = message.size() > BLOCKING_READ_ABOVE;
                loop {
                    let more = if blocking {
                        let (m, o, r) = tokio::task::spawn_blocking(move || {
                            let r = message.next_chunk(&mut out, CHUNK);
                            (message, out, r)
                        })
                        .await
                        .map_err(io::Error::other)?;
                        (message, out) = (m, o);
                        r
                    } else {
                        message.next_chunk(&mut out, CHUNK)
                    };
                    match more {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) => {
                            // Half a multi-line response cannot be turned into -ERR: close.
                            tracing::error!(error = %e, "POP3: reading a stored message");
                            return Err(e);
                        }
                    }
                    write(conn, &out, timeout).await?;
                    out.clear();
                    if out.capacity() > 2 * CHUNK + 1024 {
                        out = Vec::new();
                    }
                }
            }
        }
        conn.shrink();
        if out.capacity() > 64 * 1024 {
            out = Vec::new();
        }
    }
}

/// Messages above this size are read on the blocking pool (see `Flow::Message`).
const BLOCKING_READ_ABOVE: u64 = 256 * 1024;

/// Write with a deadline: a client that stops reading is dropped instead of holding the task.
async fn write(conn: &mut Conn, data: &[u8], timeout: Duration) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    match tokio::time::timeout(timeout, conn.write_all(data)).await {
        Ok(r) => r,
        Err(_) => Err(io::ErrorKind::TimedOut.into()),
    }
}
