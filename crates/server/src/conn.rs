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
use tokio::time::Instant;

use crate::Shared;
use crate::stream::{Conn, Line, WriteLimit, is_disconnect, is_loopback, open};

/// Most pieces (lines and literals) one command may have: bounds per-command bookkeeping.
const MAX_FRAGMENTS: usize = 10_000;
/// How long a closing `* BYE` may take to write (the client may not be reading at all).
const BYE_GRACE: Duration = Duration::from_secs(2);

enum ReadOutcome {
    Command(Vec<Fragment>, Vec<tempfile::TempPath>),
    /// The reader answered by itself (line too long, literal too big); `out` holds the answer.
    Answered,
    /// The command cannot be resynchronized (a non-synchronizing literal we will not read):
    /// `out` holds a `* BYE`; write it and close.
    Close,
    Eof,
}

pub(crate) async fn serve(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    implicit_tls: bool,
) {
    let limits = &shared.config.limits;
    // Before login, one deadline from connect covers everything: the TLS handshake, every
    // command and SASL line, every write. Nothing a client sends extends it.
    let deadline = Instant::now() + Duration::from_secs(limits.unauthenticated_timeout_secs);
    let Some(stream) = Box::pin(open(shared.tls.as_ref(), tcp, peer, implicit_tls, deadline)).await
    else {
        return;
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
    session.set_auth_failure_delay(Duration::from_millis(shared.config.auth.failure_delay_ms));
    session.set_throttle(shared.throttle.clone());
    session.set_login_gate(shared.user_limits.clone());
    session.set_oauth(shared.oauth.clone());
    session.set_order_cache(shared.orders.clone());
    session.set_quota_admin(Some(shared.config.quota.admin.clone()));
    session.set_compress_available(limits.compress_deflate);
    session.set_scram_iterations(shared.config.auth.scram_iterations);
    session.set_scram_sha1(shared.config.auth.scram_sha1);
    session.set_max_search_contexts(limits.max_search_contexts);
    session.set_channel_binding(stream.tls_exporter());
    let mut conn = Conn::new(stream);
    let mut shutdown = shared.shutdown.clone();
    match run(&shared, &mut conn, &mut session, &mut shutdown, deadline).await {
        Ok(()) => {}
        Err(e) if is_disconnect(&e) => {}
        Err(e) if e.kind() == io::ErrorKind::TimedOut && conn.read_deadline.is_some() => {
            tracing::warn!(%peer, user = session.user().unwrap_or("-"), "closing: a command took longer than its deadline (slow or trickled input)");
        }
        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
            tracing::info!(%peer, "closing: the client does not read our output");
        }
        Err(e) => tracing::debug!(%peer, error = %e, "connection error"),
    }
    tracing::info!(%peer, user = session.user().unwrap_or("-"), "disconnect");
}

/// When the next read must be complete, and how long writes may wait, in the session's state:
/// before login the deadline from connect for both; after login the idle timeout per read and
/// the write timeout per write step.
fn phase(shared: &Shared, session: &Session, deadline: Instant) -> (Instant, WriteLimit) {
    let limits = &shared.config.limits;
    if session.user().is_some() {
        (
            Instant::now() + Duration::from_secs(limits.idle_timeout_secs),
            WriteLimit::Stall(Duration::from_secs(limits.write_timeout_secs)),
        )
    } else {
        (deadline, WriteLimit::Deadline(deadline))
    }
}

/// Best-effort goodbye: the client may not be reading, so give it a short grace only.
async fn bye(conn: &mut Conn, text: &[u8]) {
    conn.write_limit = WriteLimit::Deadline(Instant::now() + BYE_GRACE);
    let _ = conn.write_all(text).await;
}

/// The futures of a command, of IDLE, of STARTTLS and of reading a command are boxed
/// (`Box::pin`) where they are awaited: a task is as large as its largest state, so without
/// them every connection, idle ones included, kept room for the largest command's future
/// (6.6 KB; the task is 2.2 KB now, plus the IDLE future's 1 KB while it idles).
async fn run(
    shared: &Shared,
    conn: &mut Conn,
    session: &mut Session,
    shutdown: &mut watch::Receiver<bool>,
    deadline: Instant,
) -> io::Result<()> {
    let mut out = Vec::new();
    session.greeting(&mut out);
    conn.write_limit = WriteLimit::Deadline(deadline);
    conn.write_all(&out).await?;
    loop {
        out.clear();
        let (read_by, write_limit) = phase(shared, session, deadline);
        conn.write_limit = write_limit;
        let logged_in = session.user().is_some();
        let read = tokio::select! {
            r = tokio::time::timeout_at(read_by, Box::pin(read_command(shared, conn, &mut out, logged_in))) => r,
            _ = shutdown.changed() => {
                bye(conn, b"* BYE Server shutting down.\r\n").await;
                return Ok(());
            }
        };
        let timed_out = conn.read_deadline.is_some_and(|by| Instant::now() >= by);
        if let Ok(Err(e)) = &read
            && e.kind() == io::ErrorKind::TimedOut
            && timed_out
        {
            bye(conn, b"* BYE [LIMIT] Command not received in time.\r\n").await;
            return Err(io::ErrorKind::TimedOut.into());
        }
        conn.read_deadline = None;
        let (fragments, _spooled) = match read {
            Err(_) => {
                bye(conn, b"* BYE Disconnected for inactivity.\r\n").await;
                return Ok(());
            }
            Ok(r) => match r? {
                ReadOutcome::Eof => return Ok(()),
                ReadOutcome::Answered => {
                    conn.write_all(&out).await?;
                    continue;
                }
                ReadOutcome::Close => {
                    bye(conn, &out).await;
                    return Ok(());
                }
                ReadOutcome::Command(f, s) => (f, s),
            },
        };
        let mut flow = match parse_command(&fragments) {
            Ok(command) => Box::pin(session.handle(command, &mut out)).await,
            Err(e) => session.parse_error(&e, &mut out),
        };
        drop(fragments);
        // Follow the flow until the session wants the next command.
        loop {
            // A LOGIN may just have succeeded: its answer already gets the logged-in limits.
            // (`read_by` is asked again where it is used, not kept across the awaits below: this
            // future is part of every idle connection.)
            conn.write_limit = phase(shared, session, deadline).1;
            conn.write_all(&out).await?;
            out.clear();
            flow = match flow {
                Flow::Continue => break,
                Flow::Close => return Ok(()),
                Flow::StartTls => {
                    // Only offered before login: the handshake runs within the deadline.
                    match tokio::time::timeout_at(
                        phase(shared, session, deadline).0,
                        Box::pin(conn.start_tls(shared.tls.as_ref())),
                    )
                    .await
                    {
                        Ok(r) => r?,
                        Err(_) => return Ok(()),
                    }
                    session.tls_started();
                    session.set_channel_binding(conn.stream.tls_exporter());
                    break;
                }
                Flow::Compress => {
                    // The OK went out above, uncompressed; everything after it is deflated.
                    conn.start_compress()?;
                    break;
                }
                Flow::SaslContinue => {
                    match read_short_line(shared, conn, phase(shared, session, deadline).0).await? {
                        Some(line) => Box::pin(session.sasl_response(&line, &mut out)).await,
                        None => return Ok(()),
                    }
                }
                Flow::Idle => idle(shared, conn, session, shutdown, &mut out).await?,
                // A big answer, written part by part as the client reads it.
                Flow::MoreOutput => Box::pin(session.resume_output(&mut out)).await,
            };
        }
        conn.shrink();
        if out.capacity() > 64 * 1024 {
            out = Vec::new();
        }
    }
}

/// How often an IDLE-ing session asks whether what it logged in with still holds (one indexed
/// read each: 100,000 IDLE connections make ~6,700 a second).
const IDLE_CREDENTIAL_CHECK: Duration = Duration::from_secs(15);

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
    // One timer for the next credential check and the inactivity deadline, whichever comes
    // first, boxed: this future is part of every idle connection's task, and a second timer
    // in it (an `Interval` and a `Sleep`) took it over an allocator size class (3,176 bytes
    // against jemalloc's 3,072: 512 bytes per connection).
    let mut next_check = tokio::time::Instant::now() + IDLE_CREDENTIAL_CHECK;
    let mut timer = Box::pin(tokio::time::sleep_until(next_check.min(deadline)));
    loop {
        tokio::select! {
            line = conn.read_line(shared.config.limits.max_line_length) => {
                return match line? {
                    Line::Complete(l) => {
                        let done = trim_crlf(&l).eq_ignore_ascii_case(b"DONE");
                        Ok(Box::pin(session.idle_done(done, out)).await)
                    }
                    Line::TooLong(_) => Ok(Box::pin(session.idle_done(false, out)).await),
                    Line::Abandoned(_) => {
                        out.extend_from_slice(b"* BYE [LIMIT] Line too long.\r\n");
                        Ok(Flow::Close)
                    }
                    Line::Eof => Ok(Flow::Close),
                };
            }
            _ = session.changed() => {
                Box::pin(session.idle_update(out)).await;
                conn.write_all(out).await?;
                out.clear();
                // The mailbox may have been deleted under us: the session said BYE.
                if session.is_logged_out() {
                    return Ok(Flow::Close);
                }
            }
            _ = &mut timer => {
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    out.extend_from_slice(b"* BYE Disconnected for inactivity.\r\n");
                    return Ok(Flow::Close);
                }
                // A revoked app password (or two-factor turned on) ends an IDLE too, not only
                // the next command after DONE.
                if now >= next_check {
                    if !Box::pin(session.credential_holds(out)).await {
                        return Ok(Flow::Close);
                    }
                    next_check = now + IDLE_CREDENTIAL_CHECK;
                }
                timer.as_mut().reset(next_check.min(deadline));
            }
            _ = shutdown.changed() => {
                out.extend_from_slice(b"* BYE Server shutting down.\r\n");
                return Ok(Flow::Close);
            }
        }
    }
}

/// What a command's literals may be, decided from its first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Before login: lines and literals in memory, within `max_prelogin_command_size`.
    PreLogin,
    /// APPEND after login: large literals (the messages) go to spool files, up to
    /// `max_message_size` each; the rest within `max_command_size`.
    Append,
    /// Any other command after login: lines and literals in memory, within `max_command_size`.
    Other,
}

fn command_kind(first_line: &[u8], logged_in: bool) -> Kind {
    if !logged_in {
        return Kind::PreLogin;
    }
    let Some(tag) = peek_tag(first_line) else {
        return Kind::Other;
    };
    let mut words = first_line[tag.len()..]
        .split(|b| *b == b' ')
        .filter(|w| !w.is_empty())
        .map(trim_crlf);
    let mut name = words.next().unwrap_or_default();
    if name.eq_ignore_ascii_case(b"UID") {
        name = words.next().unwrap_or_default();
    }
    // REPLACE (RFC 8508) carries a message like APPEND.
    if name.eq_ignore_ascii_case(b"APPEND") || name.eq_ignore_ascii_case(b"REPLACE") {
        Kind::Append
    } else {
        Kind::Other
    }
}

/// Read one command: its lines and literals (RFC 9051 §4.3, RFC 7888).
///
/// Every command has a byte budget for its lines and in-memory literals: a few KiB before
/// login, `max_command_size` after. Only APPEND's messages, after login, may go beyond it, into
/// spool files. A literal over the budget is refused before it is read: a synchronizing one
/// with a tagged NO (the client does not send it), a non-synchronizing one with `* BYE` and
/// the end of the connection (RFC 7888 §4), rather than reading (or storing) gigabytes.
async fn read_command(
    shared: &Shared,
    conn: &mut Conn,
    out: &mut Vec<u8>,
    logged_in: bool,
) -> io::Result<ReadOutcome> {
    let limits = &shared.config.limits;
    let budget = if logged_in {
        limits.max_command_size
    } else {
        limits.max_prelogin_command_size
    };
    let mut fragments = Vec::new();
    let mut spooled = Vec::new();
    let mut used = 0u64;
    // Message bytes of one APPEND (all of a MULTIAPPEND's messages), spooled or not.
    let mut appended = 0u64;
    let mut tag: Option<String> = None;
    let mut kind = Kind::PreLogin;
    if logged_in {
        // The wait for a command is the idle timeout's business; once its first byte is here,
        // the whole command must follow within its own deadline (a client trickling a byte at
        // a time cannot hold a connection and its buffers for the idle timeout per command).
        if !conn.wait_input().await? {
            return Ok(ReadOutcome::Eof);
        }
        conn.read_deadline =
            Some(Instant::now() + Duration::from_secs(limits.command_timeout_secs));
    }
    loop {
        let room = budget.saturating_sub(used);
        let max_line = (limits.max_line_length as u64).min(room) as usize;
        let line = match conn.read_line(max_line).await? {
            Line::Eof => return Ok(ReadOutcome::Eof),
            Line::Abandoned(head) => {
                // A compressed line with no end in sight (a decompression bomb): the same
                // answer as a plain too-long line, then the connection ends.
                let tag = tag.or_else(|| peek_tag(&head));
                answer(out, tag.as_deref(), "BAD", "[LIMIT] Command line too long.");
                out.extend_from_slice(b"* BYE [LIMIT] Command line too long.\r\n");
                return Ok(ReadOutcome::Close);
            }
            Line::TooLong(head) if fragments.is_empty() => {
                // The whole command was this line: answer it, and go on with the next.
                answer(
                    out,
                    peek_tag(&head).as_deref(),
                    "BAD",
                    "[LIMIT] Command line too long.",
                );
                return Ok(ReadOutcome::Answered);
            }
            Line::TooLong(_) => {
                // Mid-command, after a literal: where the command ends is unknown.
                out.extend_from_slice(b"* BYE [LIMIT] Command too long.\r\n");
                return Ok(ReadOutcome::Close);
            }
            // A line over the room left is refused whether or not it came in one read (else
            // whether a command passed would depend on how the network split it).
            Line::Complete(l) if l.len() > max_line && !fragments.is_empty() => {
                out.extend_from_slice(b"* BYE [LIMIT] Command too long.\r\n");
                return Ok(ReadOutcome::Close);
            }
            Line::Complete(l) => l,
        };
        used += line.len() as u64;
        if fragments.is_empty() {
            tag = peek_tag(&line);
            kind = command_kind(&line, logged_in);
        }
        let announcement = match literal_announcement(&line) {
            Ok(Some(a)) => a,
            // No literal (or a malformed announcement, which the parser reports): complete.
            Ok(None) | Err(()) => {
                fragments.push(Fragment::Line(line));
                return Ok(ReadOutcome::Command(fragments, spooled));
            }
        };
        let len = announcement.len;
        let room = budget.saturating_sub(used);
        let to_spool = match kind {
            _ if fragments.len() + 2 > MAX_FRAGMENTS => {
                Err("[LIMIT] Too many literals in one command.")
            }
            Kind::Append if len > limits.max_message_size => Err("[TOOBIG] Message too large."),
            Kind::Append if appended + len > limits.max_append_command_size => {
                Err("[LIMIT] Too much data in one APPEND.")
            }
            // Messages kept in memory take at most half of the command's budget: the rest is
            // room for the lines between them. (A MULTIAPPEND whose messages filled it all had
            // no room left for the next ` {N+}` line and was closed.)
            Kind::Append => {
                Ok(len > limits.spool_threshold || len > room.saturating_sub(budget / 2))
            }
            Kind::PreLogin if len > room => Err("[LIMIT] Literal too large before authentication."),
            Kind::Other if len > room => Err("[LIMIT] Command too large."),
            Kind::PreLogin | Kind::Other => Ok(false),
        };
        let to_spool = match to_spool {
            Ok(s) => s,
            Err(text) if announcement.synchronizing => {
                answer(out, tag.as_deref(), "NO", text);
                return Ok(ReadOutcome::Answered);
            }
            Err(text) => {
                // LITERAL+: the client sends it anyway; do not read it (RFC 7888 §4, choice 2).
                out.extend_from_slice(b"* BYE ");
                out.extend_from_slice(text.as_bytes());
                out.extend_from_slice(b"\r\n");
                return Ok(ReadOutcome::Close);
            }
        };
        if kind == Kind::Append {
            appended += len;
        }
        if let Some(by) = conn.read_deadline.as_mut() {
            // A literal gets time at the slowest rate a client may send at.
            let rate = limits.literal_min_rate.max(1);
            *by += Duration::from_secs(len / rate + 1);
        }
        fragments.push(Fragment::Line(line));
        if announcement.synchronizing {
            conn.write_all(b"+ OK\r\n").await?;
        }
        if to_spool {
            let (path, len) = spool(shared, conn, len).await?;
            fragments.push(Fragment::Spooled {
                path: path.to_path_buf(),
                len,
            });
            spooled.push(path);
        } else {
            used += len;
            fragments.push(Fragment::Literal(conn.read_exact_vec(len as usize).await?));
        }
    }
}

/// Write an APPEND message literal to a spool file so memory per connection stays bounded.
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

/// One line of a SASL exchange (before login, so within its budget and the deadline), without
/// its CRLF. `None` at end of input or at the deadline.
async fn read_short_line(
    shared: &Shared,
    conn: &mut Conn,
    deadline: Instant,
) -> io::Result<Option<Vec<u8>>> {
    let limits = &shared.config.limits;
    let max = limits
        .max_line_length
        .min(limits.max_prelogin_command_size as usize);
    match tokio::time::timeout_at(deadline, conn.read_line(max)).await {
        Err(_) => Ok(None),
        Ok(line) => match line? {
            Line::Complete(l) => Ok(Some(trim_crlf(&l).to_vec())),
            // Too long for any SASL response we support: the session will reject it.
            Line::TooLong(_) => Ok(Some(b"*".to_vec())),
            Line::Abandoned(_) | Line::Eof => Ok(None),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_kind_from_the_first_line() {
        assert_eq!(
            command_kind(b"a APPEND INBOX {5}\r\n", false),
            Kind::PreLogin
        );
        assert_eq!(command_kind(b"a LOGIN {5}\r\n", false), Kind::PreLogin);
        assert_eq!(command_kind(b"a APPEND INBOX {5}\r\n", true), Kind::Append);
        assert_eq!(
            command_kind(b"a append INBOX (\\Seen) {5+}\r\n", true),
            Kind::Append
        );
        assert_eq!(command_kind(b"a UID APPEND x {5}\r\n", true), Kind::Append);
        // REPLACE carries a message as APPEND does (RFC 8508).
        assert_eq!(command_kind(b"a REPLACE 1 x {5}\r\n", true), Kind::Append);
        assert_eq!(
            command_kind(b"a uid replace 1 x {5}\r\n", true),
            Kind::Append
        );
        assert_eq!(command_kind(b"a APPEND {5}\r\n", true), Kind::Append);
        assert_eq!(command_kind(b"a APPENDX x {5}\r\n", true), Kind::Other);
        assert_eq!(command_kind(b"a SEARCH TEXT {5}\r\n", true), Kind::Other);
        assert_eq!(command_kind(b"(bad APPEND {5}\r\n", true), Kind::Other);
    }
}
