//! The IMAP session: one connection's state machine, without the network.
//!
//! # Layout
//! - [`Session`] (this file): takes parsed commands in, writes responses out, and tells the
//!   server what to do next with a [`Flow`] (go on, start TLS, run an IDLE, SASL exchange, close).
//! - The server crate owns the socket and calls [`Session::handle`] for each command.
#![forbid(unsafe_code)]

mod cmd;
mod ctx;
pub mod enabled;
pub mod error;
pub mod selected;
mod sync;

use std::net::SocketAddr;
use std::sync::Arc;

use mailkeep_proto::{Command, ParseError};
use mailkeep_store::MailStore;

/// Per-connection settings the server decides.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub peer: SocketAddr,
    /// TLS is active on this connection (implicit TLS, or after STARTTLS: see [`Session::tls_started`]).
    pub tls_active: bool,
    /// STARTTLS may be offered (a certificate is loaded and TLS is not active yet).
    pub starttls_available: bool,
    /// Plaintext LOGIN/AUTHENTICATE allowed without TLS from this peer (loopback by default).
    pub plaintext_auth_without_tls: bool,
    /// Largest message accepted by APPEND (`NO [TOOBIG]` above it). RFC 7889 APPENDLIMIT.
    pub max_message_size: u64,
    /// Failed logins before the connection is closed.
    pub max_auth_failures: u32,
}

/// What the server does after a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// Flush the output, then close the connection.
    Close,
    /// Flush the output, then do the TLS handshake and call [`Session::tls_started`].
    StartTls,
    /// Flush the output (which holds `+ idling`), then wait for `DONE` while forwarding
    /// mailbox changes with [`Session::idle_update`]; on DONE call [`Session::idle_done`].
    Idle,
    /// Flush the output (a `+ <base64>` continuation), read one line and pass it to
    /// [`Session::sasl_response`].
    SaslContinue,
}

pub struct Session {
    _store: Arc<dyn MailStore>,
    _config: SessionConfig,
}

impl Session {
    pub fn new(store: Arc<dyn MailStore>, config: SessionConfig) -> Self {
        Session { _store: store, _config: config }
    }

    /// The server greeting (`* OK [CAPABILITY ...] Mailkeep ready`).
    pub fn greeting(&self, out: &mut Vec<u8>) {
        let _ = out;
        todo!("session agent")
    }

    /// Run one command, writing every response (untagged and tagged) into `out`.
    pub async fn handle(&mut self, command: Command, out: &mut Vec<u8>) -> Flow {
        let _ = (command, out);
        todo!("session agent")
    }

    /// A command that could not be parsed: write `tag BAD ...` (or `* BAD`).
    pub fn parse_error(&mut self, error: &ParseError, out: &mut Vec<u8>) -> Flow {
        let _ = (error, out);
        todo!("session agent")
    }

    /// One line of a SASL exchange (without CRLF); `*` cancels (RFC 9051 §6.2.2).
    pub async fn sasl_response(&mut self, line: &[u8], out: &mut Vec<u8>) -> Flow {
        let _ = (line, out);
        todo!("session agent")
    }

    /// Called after the STARTTLS handshake succeeded.
    pub fn tls_started(&mut self) {
        todo!("session agent")
    }

    /// Wait until the selected mailbox changes (pending forever when nothing is selected).
    /// Cancel-safe: used in the server's `select!` during IDLE.
    pub async fn changed(&mut self) {
        todo!("session agent")
    }

    /// During IDLE: write untagged EXISTS/EXPUNGE/FETCH for what changed.
    pub async fn idle_update(&mut self, out: &mut Vec<u8>) {
        let _ = out;
        todo!("session agent")
    }

    /// The client sent DONE (or something else: `ok == false`, answered with BAD) to end IDLE.
    pub async fn idle_done(&mut self, ok: bool, out: &mut Vec<u8>) -> Flow {
        let _ = (ok, out);
        todo!("session agent")
    }

    /// The user name once authenticated (for logs).
    pub fn user(&self) -> Option<&str> {
        todo!("session agent")
    }

    /// The mechanism and TLS state of the last successful login, for the login log line.
    pub fn auth_mechanism(&self) -> Option<&str> {
        todo!("session agent")
    }
}
