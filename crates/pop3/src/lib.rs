//! POP3 (RFC 1939) for Mailkeep, sans I/O: lines in, replies out. The server owns the socket
//! (`mailkeep-server`'s `pop3` module); tests drive a [`Session`] with text.
//!
//! # Layout
//! - [`parse`]: command lines.
//! - [`message`]: RETR/TOP output, dot-stuffed and handed out in pieces.
//! - [`locks`]: the maildrop lock (one POP3 session per account).
//! - `authorization`: USER/PASS, AUTH PLAIN/LOGIN per RFC 5034, the snapshot at login.
//! - [`Session`] (this file): AUTHORIZATION dispatch (STLS
//!   per RFC 2595, CAPA per RFC 2449), TRANSACTION and UPDATE.
//!
//! # Semantics
//! - The maildrop is INBOX as it was at login: a snapshot of (UID, size). Mail that arrives
//!   later waits for the next session; mail an IMAP session expunges meanwhile answers `-ERR`
//!   once its bytes are gone.
//! - UIDL is `<UIDVALIDITY>.<UID>` in hex, unique for the mailbox's life and across restarts.
//! - DELE takes effect at QUIT (UPDATE state) as one store expunge that IMAP sessions see;
//!   a connection that ends without QUIT changes nothing. With `delete_on_quit` off, DELE'd
//!   messages are marked `\Seen` instead. RETR'd messages are marked `\Seen` at QUIT.
//! - Response codes (RFC 2449 §8, RFC 3206): `[IN-USE]`, `[AUTH]`, `[SYS/TEMP]`.
#![forbid(unsafe_code)]

mod authorization;
pub mod locks;
pub mod message;
pub mod parse;
mod scram;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailkeep_auth::sasl;
use mailkeep_store::{FlagOp, Flags, MailStore, MailboxId, StoreError, User, flags};

pub use locks::{MaildropLock, Maildrops};
pub use message::MessageOut;
use parse::{Command, ParseError};

/// Per-connection settings the server decides.
#[derive(Debug, Clone)]
pub struct Pop3Config {
    pub peer: SocketAddr,
    /// TLS is active (implicit TLS, or after STLS: see [`Session::tls_started`]).
    pub tls_active: bool,
    /// STLS may be offered (a certificate is loaded and TLS is not active yet).
    pub stls_available: bool,
    /// USER/PASS and AUTH allowed without TLS from this peer (loopback by default).
    pub plaintext_auth_without_tls: bool,
    /// Failed logins before the connection is closed.
    pub max_auth_failures: u32,
    /// DELE expunges at QUIT; when false DELE'd messages are only marked `\Seen`.
    pub delete_on_quit: bool,
}

/// What the server does after a line.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    /// Write the output and read the next line.
    Continue,
    /// Write the output, then close the connection.
    Close,
    /// Write the output (`+OK`), do the TLS handshake, then call [`Session::tls_started`].
    StartTls,
    /// Write the output (the `+OK` line), then the message: call
    /// [`MessageOut::next_chunk`] and write each piece until it returns false.
    Message(MessageOut),
}

/// After a failed login the session waits this long before answering, like IMAP.
pub const DEFAULT_AUTH_FAILURE_DELAY: Duration = Duration::from_secs(1);
/// Invalid commands in a row before the connection is closed (someone talking another
/// protocol); the same bound as IMAP's BAD count.
pub const MAX_BAD_COMMANDS: u32 = 20;
/// Longest command line the server should read (RFC 2449 §4 allows 255 octets; SASL
/// responses and long passwords need more). Longer lines get `-ERR` and are skipped.
pub const MAX_LINE: usize = 8 * 1024;

const PLAINTEXT_REFUSED: &str =
    "-ERR Plaintext authentication disallowed on non-secure connections: use STLS.\r\n";

enum State {
    Authorization {
        /// The name given by USER, waiting for PASS.
        user: Option<Vec<u8>>,
        sasl: Option<SaslStep>,
    },
    Transaction(Maildrop),
    Done,
}

enum SaslStep {
    Plain,
    LoginUser,
    LoginPassword(Vec<u8>),
    /// SCRAM-SHA-256 or -SHA-1, -PLUS or not (`mech`), see `scram`.
    Scram {
        mech: mailkeep_auth::scram::Mechanism,
        step: scram::ScramStep,
    },
    /// OAUTHBEARER or XOAUTH2 (`xoauth2`) waits for the token.
    OAuth {
        xoauth2: bool,
    },
    /// The token was refused and the RFC 7628 error sent: the client's answer gets `-ERR`.
    OAuthFailed {
        extra_delay: Duration,
    },
}

/// The snapshot of INBOX taken at login.
struct Maildrop {
    user: User,
    mailbox: MailboxId,
    uidvalidity: u32,
    messages: Vec<Entry>,
    _lock: MaildropLock,
}

struct Entry {
    uid: u32,
    size: u64,
    deleted: bool,
    retrieved: bool,
}

pub struct Session {
    store: Arc<dyn MailStore>,
    maildrops: Arc<Maildrops>,
    config: Pop3Config,
    state: State,
    auth_failures: u32,
    bad_commands: u32,
    auth_failure_delay: Duration,
    user_name: Option<String>,
    /// Failed logins counted across connections (the server's one throttle); none in tests.
    throttle: Option<Arc<mailkeep_auth::Throttle>>,
    /// PBKDF2 iterations of SCRAM keys derived at login.
    scram_iterations: u32,
    /// `[auth] scram_sha1`: SCRAM-SHA-1(-PLUS) offered, and its keys derived at login.
    scram_sha1: bool,
    /// The TLS connection's `tls-exporter` binding (TLS 1.3 only): enables SCRAM-SHA-256-PLUS.
    channel_binding: Option<Vec<u8>>,
    /// The app password this session logged in with and when it was last seen to exist: a
    /// revoked one ends the session at its next command (asked at most once a second).
    app_password: Option<mailkeep_auth::app_passwords::Watch>,
    /// `[auth.oauth]`: OAUTHBEARER and XOAUTH2 with this issuer's tokens.
    oauth: Option<Arc<mailkeep_auth::oauth::Validator>>,
}

impl Session {
    pub fn new(store: Arc<dyn MailStore>, maildrops: Arc<Maildrops>, config: Pop3Config) -> Self {
        Session {
            store,
            maildrops,
            config,
            state: State::Authorization {
                user: None,
                sasl: None,
            },
            auth_failures: 0,
            bad_commands: 0,
            auth_failure_delay: DEFAULT_AUTH_FAILURE_DELAY,
            user_name: None,
            throttle: None,
            scram_iterations: mailkeep_auth::scram::DEFAULT_ITERATIONS,
            scram_sha1: false,
            channel_binding: None,
            app_password: None,
            oauth: None,
        }
    }

    /// The TLS connection's `tls-exporter` channel binding (RFC 9266), or `None`; set again
    /// after STLS.
    pub fn set_channel_binding(&mut self, binding: Option<Vec<u8>>) {
        self.channel_binding = binding;
    }

    /// PBKDF2 iterations for SCRAM keys derived at login (`[auth] scram_iterations`).
    pub fn set_scram_iterations(&mut self, iterations: u32) {
        self.scram_iterations = iterations;
    }

    /// Offers SCRAM-SHA-1 and SCRAM-SHA-1-PLUS (`[auth] scram_sha1`), and derives their keys
    /// at password logins.
    pub fn set_scram_sha1(&mut self, on: bool) {
        self.scram_sha1 = on;
    }

    /// Offer OAUTHBEARER and XOAUTH2 with tokens of this issuer (`[auth.oauth]`).
    pub fn set_oauth(&mut self, oauth: Option<Arc<mailkeep_auth::oauth::Validator>>) {
        self.oauth = oauth;
    }

    /// Count failed logins in the server's shared throttle (across connections).
    pub fn set_throttle(&mut self, throttle: Arc<mailkeep_auth::Throttle>) {
        self.throttle = Some(throttle);
    }

    /// Tests set this to zero.
    pub fn set_auth_failure_delay(&mut self, delay: Duration) {
        self.auth_failure_delay = delay;
    }

    /// The greeting. No APOP timestamp: APOP is not offered (it needs the clear password).
    pub fn greeting(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"+OK Mailkeep POP3 ready.\r\n");
    }

    /// Who logged in (for the log), also after QUIT.
    pub fn user(&self) -> Option<&str> {
        self.user_name.as_deref()
    }

    /// Logged in (TRANSACTION state): the server uses the longer idle timeout.
    pub fn is_authenticated(&self) -> bool {
        matches!(self.state, State::Transaction(_))
    }

    /// The TLS handshake after STLS succeeded.
    pub fn tls_started(&mut self) {
        self.config.tls_active = true;
        self.config.stls_available = false;
    }

    /// The server skipped a line longer than [`MAX_LINE`].
    pub fn line_too_long(&mut self, out: &mut Vec<u8>) -> Flow {
        if let State::Authorization { sasl, .. } = &mut self.state {
            *sasl = None;
        }
        out.extend_from_slice(b"-ERR Line too long.\r\n");
        self.bad(out)
    }

    /// One line from the client (with or without its CRLF).
    pub async fn handle_line(&mut self, line: &[u8], out: &mut Vec<u8>) -> Flow {
        if let State::Authorization { sasl, .. } = &mut self.state
            && let Some(step) = sasl.take()
        {
            return self.sasl_response(step, parse::trim_eol(line), out).await;
        }
        let command = match parse::parse(line) {
            Ok(c) => c,
            Err(ParseError::Empty) => {
                out.extend_from_slice(b"-ERR Empty command.\r\n");
                return self.bad(out);
            }
            Err(ParseError::Unknown) => {
                out.extend_from_slice(b"-ERR Unknown command.\r\n");
                return self.bad(out);
            }
            Err(ParseError::Syntax(why)) => {
                out.extend_from_slice(b"-ERR ");
                out.extend_from_slice(why.as_bytes());
                out.extend_from_slice(b"\r\n");
                return self.bad(out);
            }
        };
        self.bad_commands = 0;
        if let Some(why) = self.credential_revoked().await {
            tracing::info!(
                target: "mailkeep::audit",
                event = %"session_revoked",
                proto = %"pop3",
                user = ?self.user_name,
            );
            // Nothing marked deleted is removed: the session ends without UPDATE.
            self.state = State::Done;
            out.extend_from_slice(format!("-ERR [AUTH] {why}\r\n").as_bytes());
            return Flow::Close;
        }
        match command {
            Command::Capa => {
                self.capa(out);
                Flow::Continue
            }
            Command::Quit => self.quit(out).await,
            Command::Noop if self.is_authenticated() => ok(out, "Nothing done."),
            command => match std::mem::replace(&mut self.state, State::Done) {
                State::Authorization { user, .. } => {
                    self.state = State::Authorization { user, sasl: None };
                    self.authorization(command, out).await
                }
                State::Transaction(mut drop) => {
                    let flow = self.transaction(&mut drop, command, out).await;
                    self.state = State::Transaction(drop);
                    flow
                }
                State::Done => {
                    out.extend_from_slice(b"-ERR Session is over.\r\n");
                    Flow::Close
                }
            },
        }
    }

    /// `Some(why)` once what this session logged in with stopped holding (a revoked app
    /// password; the main password after two-factor was turned on).
    async fn credential_revoked(&mut self) -> Option<&'static str> {
        if !self.is_authenticated() {
            return None;
        }
        let watch = self.app_password.as_mut()?;
        if watch.still_valid(&*self.store).await {
            return None;
        }
        Some(watch.ended_because())
    }

    fn bad(&mut self, out: &mut Vec<u8>) -> Flow {
        self.bad_commands += 1;
        if self.bad_commands >= MAX_BAD_COMMANDS {
            out.extend_from_slice(b"-ERR Too many invalid commands, closing.\r\n");
            return Flow::Close;
        }
        Flow::Continue
    }

    fn plaintext_allowed(&self) -> bool {
        self.config.tls_active || self.config.plaintext_auth_without_tls
    }

    /// CAPA (RFC 2449 §5). USER and SASL only where a login may happen now; STLS only before
    /// login and without TLS.
    fn capa(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"+OK Capability list follows\r\n");
        let mut caps = vec!["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"];
        let sasl;
        if let State::Authorization { .. } = self.state {
            // SCRAM sends no password: offered with or without TLS, -PLUS where we can bind.
            let mut mechs = self.scram_mechanisms();
            if self.plaintext_allowed() {
                caps.push("USER");
                mechs.extend(["PLAIN", "LOGIN"]);
            }
            sasl = format!("SASL {}", mechs.join(" "));
            caps.push(&sasl);
            if self.config.stls_available && !self.config.tls_active {
                caps.push("STLS");
            }
        }
        caps.push("IMPLEMENTATION Mailkeep");
        // Bearer tokens cross the connection like passwords: only where PLAIN may.
        let oauth = self.oauth.is_some()
            && self.plaintext_allowed()
            && matches!(self.state, State::Authorization { .. });
        for c in caps {
            out.extend_from_slice(c.as_bytes());
            if oauth && c.starts_with("SASL ") {
                out.extend_from_slice(b" OAUTHBEARER XOAUTH2");
            }
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }

    async fn transaction(
        &mut self,
        drop: &mut Maildrop,
        command: Command,
        out: &mut Vec<u8>,
    ) -> Flow {
        match command {
            Command::Stat => {
                let (n, size) = drop.totals();
                ok(out, &format!("{n} {size}"))
            }
            Command::List(None) | Command::Uidl(None) => {
                let uidl = matches!(command, Command::Uidl(_));
                let (n, size) = drop.totals();
                if uidl {
                    out.extend_from_slice(b"+OK Unique-ID listing follows\r\n");
                } else {
                    out.extend_from_slice(
                        format!("+OK {n} messages ({size} octets)\r\n").as_bytes(),
                    );
                }
                for (i, m) in drop.messages.iter().enumerate() {
                    if m.deleted {
                        continue;
                    }
                    let line = if uidl {
                        format!("{} {}\r\n", i + 1, uid_string(drop.uidvalidity, m.uid))
                    } else {
                        format!("{} {}\r\n", i + 1, m.size)
                    };
                    out.extend_from_slice(line.as_bytes());
                }
                out.extend_from_slice(b".\r\n");
                Flow::Continue
            }
            Command::List(Some(n)) => match drop.get(n) {
                Ok(m) => ok(out, &format!("{n} {}", m.size)),
                Err(e) => err(out, e),
            },
            Command::Uidl(Some(n)) => match drop.get(n) {
                Ok(m) => ok(out, &format!("{n} {}", uid_string(drop.uidvalidity, m.uid))),
                Err(e) => err(out, e),
            },
            Command::Dele(n) => match drop.get_mut(n) {
                Ok(m) => {
                    m.deleted = true;
                    ok(out, &format!("Message {n} deleted."))
                }
                Err(e) => err(out, e),
            },
            Command::Rset => {
                for m in &mut drop.messages {
                    m.deleted = false;
                }
                let (n, size) = drop.totals();
                ok(out, &format!("Maildrop has {n} messages ({size} octets)."))
            }
            Command::Retr(n) | Command::Top(n, _) => {
                let (uid, size) = match drop.get(n) {
                    Ok(m) => (m.uid, m.size),
                    Err(e) => return err(out, e),
                };
                let data = match self.store.message_reader(drop.mailbox, uid).await {
                    Ok(d) => d,
                    Err(StoreError::NoSuchMailbox) => {
                        return err(out, "Message was expunged by another session.");
                    }
                    Err(e) => return sys_temp(out, &e),
                };
                if let Command::Top(_, lines) = command {
                    out.extend_from_slice(b"+OK Top of message follows\r\n");
                    Flow::Message(MessageOut::top(data, lines))
                } else {
                    if let Ok(m) = drop.get_mut(n) {
                        m.retrieved = true;
                    }
                    out.extend_from_slice(format!("+OK {size} octets\r\n").as_bytes());
                    Flow::Message(MessageOut::whole(data))
                }
            }
            Command::Noop => ok(out, "Nothing done."),
            Command::Stls => err(out, "STLS is only allowed before login."),
            Command::User(_) | Command::Pass(_) | Command::Apop | Command::Auth { .. } => {
                err(out, "Already logged in.")
            }
            Command::Capa | Command::Quit => unreachable!("handled before the state dispatch"),
        }
    }

    /// QUIT: in TRANSACTION, the UPDATE state (RFC 1939 §6).
    async fn quit(&mut self, out: &mut Vec<u8>) -> Flow {
        let State::Transaction(drop) = std::mem::replace(&mut self.state, State::Done) else {
            out.extend_from_slice(b"+OK Mailkeep POP3 signing off.\r\n");
            return Flow::Close;
        };
        match self.update(&drop).await {
            Ok(left) => {
                out.extend_from_slice(
                    format!("+OK Mailkeep POP3 signing off ({left} messages left).\r\n").as_bytes(),
                );
            }
            Err(e) => {
                tracing::error!(user = %drop.user.name, error = %e, "pop3 update failed");
                out.extend_from_slice(
                    b"-ERR [SYS/TEMP] Some deleted messages were not removed.\r\n",
                );
            }
        }
        Flow::Close
    }

    /// Apply the session's changes: mark RETR'd messages `\Seen`, expunge DELE'd ones (or
    /// mark them `\Seen` when deleting is off). Returns how many messages are left.
    async fn update(&self, drop: &Maildrop) -> Result<usize, StoreError> {
        let deleted: Vec<u32> = drop
            .messages
            .iter()
            .filter(|m| m.deleted)
            .map(|m| m.uid)
            .collect();
        let mut seen: Vec<u32> = drop
            .messages
            .iter()
            .filter(|m| m.retrieved && (!m.deleted || !self.config.delete_on_quit))
            .map(|m| m.uid)
            .collect();
        if !self.config.delete_on_quit {
            seen.extend(&deleted);
            seen.sort_unstable();
            seen.dedup();
        }
        if !seen.is_empty() {
            let f = Flags {
                system: flags::SEEN,
                keywords: Vec::new(),
            };
            self.store
                .set_flags(drop.mailbox, &seen, FlagOp::Add, &f, None)
                .await?;
        }
        if self.config.delete_on_quit && !deleted.is_empty() {
            let gone = self.store.expunge(drop.mailbox, &deleted).await?;
            tracing::info!(user = %drop.user.name, expunged = gone.len(), "pop3 update");
            return Ok(drop.messages.len() - deleted.len());
        }
        Ok(drop.messages.len())
    }
}

impl Maildrop {
    /// Messages and octets not marked deleted.
    fn totals(&self) -> (usize, u64) {
        self.messages
            .iter()
            .filter(|m| !m.deleted)
            .fold((0, 0), |(n, s), m| (n + 1, s + m.size))
    }

    fn index(&self, n: u32) -> Result<usize, &'static str> {
        let i = (n as usize).wrapping_sub(1);
        match self.messages.get(i) {
            None => Err("No such message."),
            Some(m) if m.deleted => Err("Message is deleted."),
            Some(_) => Ok(i),
        }
    }

    fn get(&self, n: u32) -> Result<&Entry, &'static str> {
        self.index(n).map(|i| &self.messages[i])
    }

    fn get_mut(&mut self, n: u32) -> Result<&mut Entry, &'static str> {
        self.index(n).map(|i| &mut self.messages[i])
    }
}

/// The UIDL of a message: UIDVALIDITY and UID, which together never repeat in one mailbox.
pub fn uid_string(uidvalidity: u32, uid: u32) -> String {
    format!("{uidvalidity:08x}{uid:08x}")
}

fn ok(out: &mut Vec<u8>, text: &str) -> Flow {
    out.extend_from_slice(b"+OK ");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
    Flow::Continue
}

fn err(out: &mut Vec<u8>, text: &str) -> Flow {
    out.extend_from_slice(b"-ERR ");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
    Flow::Continue
}

/// A storage fault: details only in the log (RFC 3206 `SYS/TEMP`).
fn sys_temp(out: &mut Vec<u8>, e: &StoreError) -> Flow {
    tracing::error!(error = %e, "pop3 store error");
    out.extend_from_slice(b"-ERR [SYS/TEMP] Temporary server error, try again later.\r\n");
    Flow::Continue
}
