//! The IMAP session: one connection's state machine, without the network.
//!
//! # Layout
//! - [`Session`] (this file): takes parsed commands in, writes responses out, and tells the
//!   server what to do next with a [`Flow`] (go on, start TLS, run an IDLE, SASL exchange, close).
//!   Commands of any state (CAPABILITY, NOOP, LOGOUT, ID) are answered here; the rest is
//!   dispatched on the state first.
//! - `state`: [`State`](state::State) with the RFC 9051 state diagram, transitions and `apply`.
//! - `anonymous`: not-authenticated state (STARTTLS, LOGIN, AUTHENTICATE and its SASL exchange).
//! - `authenticated`: ENABLE, SELECT/EXAMINE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, NAMESPACE,
//!   quota; with `list` (LIST, LSUB), `status_cmd` (STATUS), `append` (APPEND), `idle` (IDLE).
//! - `selected`: the selected view ([`selected::SelectedMailbox`]) and selected-state dispatch,
//!   falling back to `authenticated`; the data commands themselves live in `cmd`.
//! - `sync`: brings the selected view up to date and writes EXISTS/EXPUNGE/FETCH.
//! - `names`, `flags`, `capability`: mailbox-name encodings, flag conversion, CAPABILITY.
//! - The server crate owns the socket and calls [`Session::handle`] for each command.
#![forbid(unsafe_code)]

mod anonymous;
mod append;
mod authenticated;
mod capability;
mod cmd;
mod ctx;
pub mod enabled;
pub mod error;
mod flags;
pub mod gate;
mod idle;
mod list;
mod names;
mod oauth;
pub mod orders;
mod scram;
pub mod selected;
mod state;
mod status_cmd;
mod sync;

pub use append::parsed_info;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mailkeep_proto::write::{self, Code, StatusKind};
use mailkeep_proto::{Command, CommandBody, ParseError};
use mailkeep_store::MailStore;

use crate::enabled::Enabled;
use crate::error::CmdError;
use crate::state::{State, Transition};

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
    /// Mailboxes one account may have: CREATE (with its implied parents) and RENAME beyond it
    /// get `NO [LIMIT]`.
    pub max_mailboxes: usize,
    /// Subscriptions one account may have: SUBSCRIBE beyond it gets `NO [LIMIT]`.
    pub max_subscriptions: usize,
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
    /// Flush the output (the tagged OK of COMPRESS, uncompressed), then compress both
    /// directions with raw deflate (RFC 4978).
    Compress,
    /// Flush the output (which holds `+ idling`), then wait for `DONE` while forwarding
    /// mailbox changes with [`Session::idle_update`]; on DONE call [`Session::idle_done`].
    Idle,
    /// Flush the output (a `+ <base64>` continuation), read one line and pass it to
    /// [`Session::sasl_response`].
    SaslContinue,
    /// The command is not finished: its answer is too big to build at once (a FETCH of large
    /// bodies). Write the output (and clear it), then call [`Session::resume_output`] and follow
    /// the flow it returns. Each call adds a bounded amount of output, so a connection's memory
    /// does not grow with the size of the answer and a slow reader slows the command down.
    MoreOutput,
}

/// After a failed login the session waits this long before answering (Dovecot waits too):
/// it slows password guessing on one connection without costing the server anything.
pub const DEFAULT_AUTH_FAILURE_DELAY: Duration = Duration::from_secs(1);

/// BAD answers in a row before the connection is closed: a client this confused is talking
/// another protocol (an HTTP request, a port scanner). Dovecot closes after 20 once logged in
/// (3 before login).
pub const MAX_BAD_COMMANDS: u32 = 20;

pub struct Session {
    inner: Inner,
    state: State,
    /// A command whose answer is being streamed (see [`Flow::MoreOutput`]).
    pending: Option<PendingOutput>,
}

/// What [`Session::resume_output`] needs to go on with a streamed command and finish it.
struct PendingOutput {
    tag: String,
    name: &'static str,
    mode: SyncMode,
    job: Box<cmd::fetch::FetchJob>,
}

/// Everything but the state, so handlers can borrow both at once.
pub(crate) struct Inner {
    pub store: Arc<dyn MailStore>,
    pub config: SessionConfig,
    pub enabled: Enabled,
    /// An AUTHENTICATE exchange waiting for the client's next line.
    pub sasl: Option<anonymous::SaslPending>,
    /// The tag of the running IDLE command.
    pub idle_tag: Option<String>,
    /// The mechanism of the successful login (`LOGIN`, `PLAIN`).
    pub mechanism: Option<&'static str>,
    /// BAD answers in a row (see [`MAX_BAD_COMMANDS`]).
    pub bad_commands: u32,
    /// Who logged in; kept after LOGOUT so the server's last log line can name them.
    pub user_name: Option<String>,
    pub auth_failure_delay: Duration,
    /// Failed logins counted across connections (the server's one throttle); none in tests.
    pub throttle: Option<Arc<mailkeep_auth::Throttle>>,
    /// The account that may SETQUOTA (see `cmd::quota`); `None` or empty: nobody.
    pub quota_admin: Option<String>,
    /// COMPRESS=DEFLATE (RFC 4978) on this connection.
    pub compress: CompressState,
    /// The TLS connection's `tls-exporter` channel binding (RFC 9266), where it is safe (TLS
    /// 1.3): SCRAM-SHA-256-PLUS is offered only then.
    pub channel_binding: Option<Vec<u8>>,
    /// PBKDF2 iterations of the SCRAM keys derived at login (and of stand-in salts).
    pub scram_iterations: u32,
    /// `[auth] scram_sha1`: SCRAM-SHA-1(-PLUS) offered, and its keys derived at login.
    pub scram_sha1: bool,
    /// Connection limits per account (the server's), and the place this session holds.
    pub login_gate: gate::Gate,
    pub login_guard: Option<gate::LoginGuard>,
    /// The app password (or main password) this session logged in with and when it was last
    /// seen to hold: a revoked app password, or the main password once two-factor is on, ends
    /// the session at its next command (checked at most once a second) or during IDLE.
    pub app_password: Option<mailkeep_auth::app_passwords::Watch>,
    /// `[auth.oauth]`: OAUTHBEARER and XOAUTH2 are offered with this issuer's tokens.
    pub oauth: Option<Arc<mailkeep_auth::oauth::Validator>>,
    /// RFC 5267 update contexts one session may hold at once (`* NO [NOUPDATE]` beyond).
    pub max_search_contexts: usize,
    /// Sort orders and thread answers kept between commands (the server's, shared).
    pub orders: Arc<orders::OrderCache>,
}

impl Inner {
    pub(crate) fn watch_login(&mut self, watch: mailkeep_auth::app_passwords::Watch) {
        self.app_password = Some(watch);
    }

    /// `Some(why)` once the credential of this session stopped holding (`BYE` and close).
    async fn credential_revoked(&mut self) -> Option<&'static str> {
        let watch = self.app_password.as_mut()?;
        if watch.still_valid(&*self.store).await {
            return None;
        }
        Some(watch.ended_because())
    }
}

/// COMPRESS=DEFLATE on a connection: the server says whether it can, the session turns it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompressState {
    Unavailable,
    Available,
    Active,
}

/// The tagged line a handler wants written.
pub(crate) enum Tagged {
    Ok(Option<Code>, String),
    Err(CmdError),
    /// No tagged line yet (a continuation request was written: SASL, IDLE).
    Pending,
    /// The answer goes on in [`Session::resume_output`] (a streamed FETCH).
    More(Box<cmd::fetch::FetchJob>),
}

/// A handler's answer: the tagged line, the state transition and what the server does next.
pub(crate) struct Outcome {
    pub tagged: Tagged,
    pub transition: Transition,
    pub flow: Flow,
}

impl Outcome {
    pub(crate) fn ok(text: impl Into<String>) -> Self {
        Outcome {
            tagged: Tagged::Ok(None, text.into()),
            transition: Transition::None,
            flow: Flow::Continue,
        }
    }
    pub(crate) fn ok_code(code: Option<Code>, text: impl Into<String>) -> Self {
        Outcome {
            tagged: Tagged::Ok(code, text.into()),
            transition: Transition::None,
            flow: Flow::Continue,
        }
    }
    pub(crate) fn err(e: CmdError) -> Self {
        Outcome {
            tagged: Tagged::Err(e),
            transition: Transition::None,
            flow: Flow::Continue,
        }
    }
    pub(crate) fn bad(text: impl Into<String>) -> Self {
        Self::err(CmdError::Bad(text.into()))
    }
    pub(crate) fn pending(flow: Flow) -> Self {
        Outcome {
            tagged: Tagged::Pending,
            transition: Transition::None,
            flow,
        }
    }
    /// A FETCH whose answer continues after [`Flow::MoreOutput`].
    pub(crate) fn more(job: cmd::fetch::FetchJob) -> Self {
        Outcome {
            tagged: Tagged::More(Box::new(job)),
            transition: Transition::None,
            flow: Flow::MoreOutput,
        }
    }
    pub(crate) fn then(mut self, transition: Transition) -> Self {
        self.transition = transition;
        self
    }
    pub(crate) fn flow(mut self, flow: Flow) -> Self {
        self.flow = flow;
        self
    }
}

impl From<CmdError> for Outcome {
    fn from(e: CmdError) -> Self {
        Outcome::err(e)
    }
}

/// Whether the selected view is synced after a command, and with or without EXPUNGE.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SyncMode {
    None,
    /// RFC 9051 §7.5.1: no EXPUNGE while answering FETCH, STORE or SEARCH (the UID forms may).
    NoExpunge,
    Full,
}

fn sync_mode(body: &CommandBody) -> SyncMode {
    use CommandBody::*;
    match body {
        Fetch { uid: false, .. }
        | Store { uid: false, .. }
        | Search { uid: false, .. }
        | Sort { uid: false, .. }
        | Thread { uid: false, .. } => SyncMode::NoExpunge,
        Select { .. } | Examine { .. } | Close | Unselect | Logout | Idle => SyncMode::None,
        Capability | Id(_) | StartTls | Authenticate { .. } | Login { .. } => SyncMode::None,
        // Nothing may follow COMPRESS's OK uncompressed; nothing needs to precede it.
        Compress(_) => SyncMode::None,
        _ => SyncMode::Full,
    }
}

impl Session {
    pub fn new(store: Arc<dyn MailStore>, config: SessionConfig) -> Self {
        Session {
            inner: Inner {
                store,
                config,
                enabled: Enabled::default(),
                sasl: None,
                idle_tag: None,
                mechanism: None,
                user_name: None,
                bad_commands: 0,
                auth_failure_delay: DEFAULT_AUTH_FAILURE_DELAY,
                throttle: None,
                login_gate: None,
                login_guard: None,
                quota_admin: Some("admin".into()),
                compress: CompressState::Unavailable,
                channel_binding: None,
                scram_iterations: mailkeep_auth::scram::DEFAULT_ITERATIONS,
                scram_sha1: false,
                app_password: None,
                oauth: None,
                max_search_contexts: cmd::search::context::DEFAULT_MAX_CONTEXTS,
                orders: Arc::default(),
            },
            state: State::NotAuthenticated { auth_failures: 0 },
            pending: None,
        }
    }

    /// Change the pause after a failed login (tests use zero).
    pub fn set_auth_failure_delay(&mut self, delay: Duration) {
        self.inner.auth_failure_delay = delay;
    }

    /// Offer COMPRESS=DEFLATE (RFC 4978) after login: the server can compress this connection.
    pub fn set_compress_available(&mut self, available: bool) {
        if self.inner.compress != CompressState::Active {
            self.inner.compress = if available {
                CompressState::Available
            } else {
                CompressState::Unavailable
            };
        }
    }

    /// Ask `gate` at each successful login whether the account may have one more session.
    pub fn set_login_gate(&mut self, gate: Arc<dyn gate::LoginGate>) {
        self.inner.login_gate = Some(gate);
    }

    /// Count failed logins in the server's shared throttle (across connections).
    pub fn set_throttle(&mut self, throttle: Arc<mailkeep_auth::Throttle>) {
        self.inner.throttle = Some(throttle);
    }

    /// Keep SORT orders and THREAD answers in `orders`, shared with the server's other
    /// sessions (without this call, the session keeps its own).
    pub fn set_order_cache(&mut self, orders: Arc<orders::OrderCache>) {
        self.inner.orders = orders;
    }

    /// Offer OAUTHBEARER and XOAUTH2 with tokens of this issuer (`[auth.oauth]`).
    pub fn set_oauth(&mut self, oauth: Option<Arc<mailkeep_auth::oauth::Validator>>) {
        self.inner.oauth = oauth;
    }

    /// Live `RETURN (UPDATE)` contexts (RFC 5267) one session may hold; at least 1.
    pub fn set_max_search_contexts(&mut self, max: usize) {
        self.inner.max_search_contexts = max.max(1);
    }

    /// The account allowed to SETQUOTA (`admin` unless set; `None` or empty: nobody).
    pub fn set_quota_admin(&mut self, name: Option<String>) {
        self.inner.quota_admin = name;
    }

    /// The TLS connection's `tls-exporter` channel binding data (32 bytes, RFC 9266), or
    /// `None` where TLS is not active or the exporter is not safe (TLS 1.2). Set it again
    /// after STARTTLS; it enables SCRAM-SHA-256-PLUS.
    pub fn set_channel_binding(&mut self, binding: Option<Vec<u8>>) {
        self.inner.channel_binding = binding;
    }

    /// PBKDF2 iterations for SCRAM keys derived at login (`[auth] scram_iterations`).
    pub fn set_scram_iterations(&mut self, iterations: u32) {
        self.inner.scram_iterations = iterations.clamp(1, mailkeep_auth::scram::MAX_ITERATIONS);
    }

    /// Offers SCRAM-SHA-1 and SCRAM-SHA-1-PLUS (`[auth] scram_sha1`), and derives their keys
    /// at password logins.
    pub fn set_scram_sha1(&mut self, on: bool) {
        self.inner.scram_sha1 = on;
    }

    /// The server greeting (`* OK [CAPABILITY ...] Mailkeep ready`).
    pub fn greeting(&self, out: &mut Vec<u8>) {
        let caps = capability::list_for(&self.inner, false);
        write::status(
            out,
            None,
            StatusKind::Ok,
            Some(&Code::Capability(caps)),
            "Mailkeep ready.",
        );
    }

    /// Run one command, writing every response (untagged and tagged) into `out`; or, when it
    /// returns [`Flow::MoreOutput`], the first part of them (the rest comes from
    /// [`Session::resume_output`]).
    pub async fn handle(&mut self, command: Command, out: &mut Vec<u8>) -> Flow {
        // A caller that dropped a streamed answer half-way starts over with this command.
        self.pending = None;
        let Command { tag, body } = command;
        let name = body.name();
        let mode = sync_mode(&body);
        if !self.credential_holds(out).await {
            return Flow::Close;
        }
        let inner = &mut self.inner;
        let outcome = match body {
            // Any state (RFC 9051 §6.1).
            CommandBody::Capability => {
                let caps = capability::list_for(inner, self.state.user().is_some());
                out.extend_from_slice(format!("* CAPABILITY {}\r\n", caps.join(" ")).as_bytes());
                Outcome::ok("Capability completed.")
            }
            CommandBody::Noop => Outcome::ok("NOOP completed."),
            CommandBody::Logout => {
                write::status(out, None, StatusKind::Bye, None, "Logging out");
                Outcome::ok("Logout completed.")
                    .then(Transition::Logout)
                    .flow(Flow::Close)
            }
            CommandBody::Id(_) => {
                // RFC 2971: the client's fields are only informative; we say who we are.
                out.extend_from_slice(b"* ID (\"name\" \"Mailkeep\" \"version\" \"");
                out.extend_from_slice(env!("CARGO_PKG_VERSION").as_bytes());
                out.extend_from_slice(b"\")\r\n");
                Outcome::ok("ID completed.")
            }
            // RFC 9586 §3: message numbers are refused once UIDONLY is on.
            body if inner.enabled.uidonly && cmd::uidonly::uses_message_numbers(&body) => {
                Outcome::err(cmd::uidonly::refusal())
            }
            body => match &mut self.state {
                State::NotAuthenticated { auth_failures } => {
                    anonymous::handle(inner, auth_failures, &tag, body, out).await
                }
                State::Authenticated { user } => {
                    authenticated::handle(inner, user, None, &tag, body, out).await
                }
                State::Selected { user, sel } => {
                    selected::handle(inner, user, sel, &tag, body, out).await
                }
                State::Logout => Outcome::bad("Logged out."),
            },
        };
        self.finish(&tag, name, mode, outcome, out).await
    }

    /// Apply the transition, sync the selected view if the command allows it, write the
    /// tagged line.
    async fn finish(
        &mut self,
        tag: &str,
        name: &'static str,
        mode: SyncMode,
        outcome: Outcome,
        out: &mut Vec<u8>,
    ) -> Flow {
        let Outcome {
            tagged,
            transition,
            mut flow,
        } = outcome;
        self.state.apply(transition);
        let tagged = match tagged {
            Tagged::More(job) => {
                // No sync and no tagged line until the last part is written.
                self.pending = Some(PendingOutput {
                    tag: tag.to_string(),
                    name,
                    mode,
                    job,
                });
                return Flow::MoreOutput;
            }
            t => t,
        };
        if mode != SyncMode::None
            && !matches!(tagged, Tagged::Pending | Tagged::More(_))
            && let Some(f) = self.sync_selected(out, mode == SyncMode::Full).await
        {
            flow = f;
        }
        match tagged {
            Tagged::Ok(code, text) => {
                self.inner.bad_commands = 0;
                write::status(out, Some(tag), StatusKind::Ok, code.as_ref(), &text)
            }
            Tagged::Err(e) => {
                if matches!(e, CmdError::Bad(_) | CmdError::BadCode(..)) {
                    self.inner.bad_commands += 1;
                }
                e.write(tag, name, out);
                if self.inner.bad_commands >= MAX_BAD_COMMANDS {
                    return self.too_many_bad_commands(out);
                }
            }
            Tagged::Pending | Tagged::More(_) => {}
        }
        flow
    }

    /// Go on with a command that returned [`Flow::MoreOutput`]: append its next part to `out`
    /// (about [`cmd::fetch::OUTPUT_STEP`] bytes), and after the last part its tagged line.
    /// Returns `MoreOutput` again until the command is finished. Called with nothing pending,
    /// it writes nothing and returns [`Flow::Continue`].
    pub async fn resume_output(&mut self, out: &mut Vec<u8>) -> Flow {
        let Some(mut pending) = self.pending.take() else {
            return Flow::Continue;
        };
        let step = match &mut self.state {
            State::Selected { user, sel } => {
                let mut ctx = ctx::Ctx {
                    store: &self.inner.store,
                    enabled: &self.inner.enabled,
                    orders: &self.inner.orders,
                    user,
                    sel,
                };
                pending.job.step(&mut ctx, out).await
            }
            // Nothing runs between the parts of an answer, so the mailbox is still selected.
            _ => Err(CmdError::No(None, "No mailbox selected.".into())),
        };
        let outcome = match step {
            Ok(cmd::fetch::Progress::More) => {
                self.pending = Some(pending);
                return Flow::MoreOutput;
            }
            Ok(cmd::fetch::Progress::Done) => Outcome::ok(pending.job.ok_text()),
            Err(e) => Outcome::err(e),
        };
        let PendingOutput {
            tag, name, mode, ..
        } = pending;
        self.finish(&tag, name, mode, outcome, out).await
    }

    /// Sync the selected mailbox, if any. Returns `Some(Flow::Close)` if the mailbox is gone
    /// (deleted by another session): there is no way to tell a rev1 client but BYE.
    async fn sync_selected(&mut self, out: &mut Vec<u8>, allow_expunge: bool) -> Option<Flow> {
        let State::Selected { user, sel } = &mut self.state else {
            return None;
        };
        let mut ctx = ctx::Ctx {
            store: &self.inner.store,
            enabled: &self.inner.enabled,
            orders: &self.inner.orders,
            user,
            sel,
        };
        match sync::sync(&mut ctx, out, allow_expunge).await {
            Ok(()) => None,
            Err(CmdError::No(Some(Code::Nonexistent), _)) => {
                write::status(
                    out,
                    None,
                    StatusKind::Bye,
                    None,
                    "Selected mailbox was deleted, have to disconnect.",
                );
                self.state.apply(Transition::Logout);
                Some(Flow::Close)
            }
            Err(e) => {
                if let CmdError::Store(e) = &e {
                    tracing::error!(error = %e, "sync of the selected mailbox failed");
                }
                None
            }
        }
    }

    /// A command that could not be parsed: write `tag BAD ...` (or `* BAD ...`).
    pub fn parse_error(&mut self, error: &ParseError, out: &mut Vec<u8>) -> Flow {
        // The parser's message already names the command ("Error in IMAP command X: ...").
        write::status(
            out,
            error.tag.as_deref(),
            StatusKind::Bad,
            None,
            &error.message,
        );
        self.inner.bad_commands += 1;
        if self.inner.bad_commands >= MAX_BAD_COMMANDS {
            return self.too_many_bad_commands(out);
        }
        Flow::Continue
    }

    /// One line of a SASL exchange (without CRLF); `*` cancels (RFC 9051 §6.2.2).
    pub async fn sasl_response(&mut self, line: &[u8], out: &mut Vec<u8>) -> Flow {
        let Some(pending) = self.inner.sasl.take() else {
            write::status(
                out,
                None,
                StatusKind::Bad,
                None,
                "No authentication in progress.",
            );
            return Flow::Continue;
        };
        let tag = pending.tag.clone();
        let outcome = match &mut self.state {
            State::NotAuthenticated { auth_failures } => {
                anonymous::sasl_step(&mut self.inner, auth_failures, pending, line, out).await
            }
            _ => Outcome::bad("Already authenticated."),
        };
        self.finish(&tag, "AUTHENTICATE", SyncMode::None, outcome, out)
            .await
    }

    /// A client that only sends garbage is not an IMAP client: end it (Dovecot does the same).
    fn too_many_bad_commands(&mut self, out: &mut Vec<u8>) -> Flow {
        write::status(
            out,
            None,
            StatusKind::Bye,
            None,
            "Too many invalid IMAP commands.",
        );
        self.state.apply(Transition::Logout);
        Flow::Close
    }

    /// Called after the STARTTLS handshake succeeded.
    pub fn tls_started(&mut self) {
        self.inner.config.tls_active = true;
        self.inner.config.starttls_available = false;
    }

    /// Wait until the selected mailbox changes (pending forever when nothing is selected).
    /// Cancel-safe: used in the server's `select!` during IDLE.
    pub async fn changed(&mut self) {
        idle::changed(&mut self.state).await
    }

    /// During IDLE: write untagged EXISTS/EXPUNGE/FETCH for what changed.
    /// False, with a `BYE [EXPIRED]` written and the session over, once what it logged in with
    /// stopped holding (a revoked app password; the main password after two-factor was turned
    /// on). Called before every command, and by the server now and then during IDLE.
    pub async fn credential_holds(&mut self, out: &mut Vec<u8>) -> bool {
        if self.state.user().is_none() {
            return true;
        }
        let Some(why) = self.inner.credential_revoked().await else {
            return true;
        };
        tracing::info!(
            target: "mailkeep::audit",
            event = %"session_revoked",
            proto = %"imap",
            user = ?self.inner.user_name,
        );
        // RFC 5530 EXPIRED: access is no longer permitted with that passphrase.
        write::status(out, None, StatusKind::Bye, Some(&Code::Expired), why);
        self.state.apply(Transition::Logout);
        false
    }

    pub async fn idle_update(&mut self, out: &mut Vec<u8>) {
        if let State::Selected { sel, .. } = &mut self.state {
            sel.subscription.receiver.borrow_and_update();
        }
        // A mailbox deleted under an IDLE ends the connection; the server sees the state on
        // the next command, so the BYE written here is enough.
        let _ = self.sync_selected(out, true).await;
    }

    /// True once the session is over (LOGOUT, too many failures, or a BYE written by
    /// [`Session::idle_update`] because the selected mailbox was deleted): the server should
    /// flush its output and close.
    pub fn is_logged_out(&self) -> bool {
        matches!(self.state, State::Logout)
    }

    /// The client sent DONE (or something else: `ok == false`, answered with BAD) to end IDLE.
    pub async fn idle_done(&mut self, ok: bool, out: &mut Vec<u8>) -> Flow {
        let tag = self
            .inner
            .idle_tag
            .take()
            .unwrap_or_else(|| "*".to_string());
        let outcome = if ok {
            Outcome::ok("Idle completed.")
        } else {
            Outcome::bad("Expected DONE.")
        };
        if matches!(self.state, State::Logout) {
            return Flow::Close;
        }
        self.finish(&tag, "IDLE", SyncMode::Full, outcome, out)
            .await
    }

    /// The user name once authenticated (for logs; still set after LOGOUT).
    pub fn user(&self) -> Option<&str> {
        self.inner.user_name.as_deref()
    }

    /// The mechanism and TLS state of the last successful login, for the login log line.
    pub fn auth_mechanism(&self) -> Option<&str> {
        self.inner.mechanism
    }
}
