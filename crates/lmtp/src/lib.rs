//! LMTP delivery (RFC 2033) as a sans-I/O session: the server feeds it lines and BDAT chunks
//! and writes out what it answers; tests drive it without a network.
//!
//! Extensions: PIPELINING (RFC 2920), ENHANCEDSTATUSCODES (RFC 2034/3463), 8BITMIME (RFC 6152),
//! SIZE (RFC 1870), CHUNKING (BDAT, RFC 3030).
//!
//! # Delivery
//! At the end of DATA (or `BDAT … LAST`) the message is CRLF-normalized (as APPEND does),
//! given a `Return-Path:` (and, with a single recipient, a `Delivered-To:`) header on top,
//! analyzed once, and appended to each recipient's mailbox (see `append_all`): the store's
//! content addressing keeps the body once, and its group commit lets concurrent deliveries
//! share fsyncs. Each recipient's reply is written only after its append returned, i.e. once
//! the message is durable for it.
//!
//! `Delivered-To:` names one recipient, so a message for several would differ per recipient
//! and be stored once per recipient; like Dovecot's LMTP, we add it only when there is one.
//!
//! The caller must respect [`Session::want`]: a command line (capped; over-long ones are
//! reported with [`Session::line_too_long`]), a piece of DATA (whole lines or pieces of a
//! long line), or the bytes of a BDAT chunk ([`Session::chunk`]).
#![forbid(unsafe_code)]

mod deliver;
pub mod parse;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use mailkeep_store::{MailStore, Recipient, UserId};

use deliver::{Failure, append_all, prepare};
use parse::{Bad, Command};

/// Settings of one LMTP session.
#[derive(Debug, Clone)]
pub struct Config {
    /// Our name in the greeting and LHLO reply.
    pub hostname: String,
    /// Largest message accepted (`552 5.3.4` above it); advertised as SIZE.
    pub max_message_size: u64,
    /// What splits `user+detail` in a recipient address; empty: no detail.
    pub detail_separator: String,
    /// Over quota is `452 4.2.2` (retry later) instead of `552 5.2.2`.
    pub quota_temporary: bool,
    /// Recipients of one transaction (`452 4.5.3` beyond).
    pub max_recipients: usize,
    /// Bad commands in one session before it is closed (`421 4.7.0`).
    pub max_errors: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            hostname: "localhost".into(),
            max_message_size: 50 << 20,
            detail_separator: "+".into(),
            quota_temporary: false,
            max_recipients: 1000,
            max_errors: 20,
        }
    }
}

/// What the server should do after handing something to the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
}

/// What the session expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// A command line.
    Command,
    /// DATA: lines (with their line ending) or pieces of one, up to the final `.`.
    Data,
    /// The rest of a BDAT chunk: this many bytes.
    Chunk(u64),
}

/// An accepted recipient.
#[derive(Debug, Clone)]
struct Rcpt {
    /// As given in RCPT TO.
    address: String,
    user: UserId,
    /// The mailbox to deliver to (the `+detail` folder or INBOX).
    mailbox: String,
}

/// How the message content of the current transaction arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    None,
    Data {
        line_start: bool,
    },
    /// Inside BDAT chunks: bytes still to come of the current one, and whether it is the last.
    Bdat {
        remaining: u64,
        last: bool,
    },
}

pub struct Session {
    store: Arc<dyn MailStore>,
    config: Config,
    greeted: bool,
    /// MAIL FROM's path (`""` for the null sender) once given.
    from: Option<String>,
    rcpts: Vec<Rcpt>,
    content: Content,
    /// BDAT chunks have been sent in this transaction (DATA is then not allowed).
    chunking: bool,
    /// A BDAT whose chunk is read but must be refused (no MAIL or no recipients).
    chunk_refused: bool,
    /// The message: our headers (`header_len` bytes), then what was received.
    data: Vec<u8>,
    header_len: usize,
    too_big: bool,
    errors: u32,
}

impl Session {
    pub fn new(store: Arc<dyn MailStore>, config: Config) -> Session {
        Session {
            store,
            config,
            greeted: false,
            from: None,
            rcpts: Vec::new(),
            content: Content::None,
            chunking: false,
            chunk_refused: false,
            data: Vec::new(),
            header_len: 0,
            too_big: false,
            errors: 0,
        }
    }

    /// The `220` greeting.
    pub fn greeting(&self, out: &mut Vec<u8>) {
        reply(
            out,
            220,
            "",
            &format!("{} LMTP Mailkeep ready", self.config.hostname),
        );
    }

    pub fn want(&self) -> Want {
        match self.content {
            Content::None => Want::Command,
            Content::Data { .. } => Want::Data,
            Content::Bdat { remaining, .. } => Want::Chunk(remaining),
        }
    }

    /// A command line longer than the server's cap was read and thrown away.
    pub fn line_too_long(&mut self, out: &mut Vec<u8>) -> Flow {
        reply(out, 500, "5.5.2", "Line too long");
        self.error(out)
    }

    /// The client went away or timed out: drop whatever was half received.
    pub fn abort(&mut self) {
        self.reset();
    }

    /// A command line or, during DATA, a line or a piece of one (with its line ending if it
    /// has one).
    pub async fn line(&mut self, line: &[u8], out: &mut Vec<u8>) -> Flow {
        if let Content::Data { line_start } = self.content {
            return self.data_piece(line, line_start, out).await;
        }
        let text = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        match parse::command(text) {
            Ok(cmd) => self.command(cmd, out).await,
            Err(Bad { code, status, text }) => {
                reply(out, code, status, text);
                self.error(out)
            }
        }
    }

    /// Bytes of the current BDAT chunk (at most what [`Want::Chunk`] asked for).
    pub async fn chunk(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Flow {
        let Content::Bdat { remaining, last } = self.content else {
            return Flow::Continue;
        };
        let take = bytes.len().min(remaining as usize);
        self.add_content(&bytes[..take]);
        let remaining = remaining - take as u64;
        self.content = Content::Bdat { remaining, last };
        if remaining > 0 {
            return Flow::Continue;
        }
        self.content = Content::None;
        if self.chunk_refused {
            // RFC 3030 §2: the chunk is read, then the command is refused.
            self.chunk_refused = false;
            reply(out, 503, "5.5.1", "MAIL and RCPT first");
            self.reset();
            return self.error(out);
        }
        if last {
            self.deliver(out).await;
        } else {
            reply(out, 250, "2.0.0", "Chunk received");
        }
        Flow::Continue
    }

    async fn command(&mut self, cmd: Command, out: &mut Vec<u8>) -> Flow {
        match cmd {
            Command::Lhlo => {
                self.reset();
                self.greeted = true;
                let h = &self.config.hostname;
                let size = self.config.max_message_size;
                out.extend_from_slice(
                    format!(
                        "250-{h}\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n\
                         250-8BITMIME\r\n250-CHUNKING\r\n250 SIZE {size}\r\n"
                    )
                    .as_bytes(),
                );
            }
            Command::Helo => {
                reply(out, 500, "5.5.1", "This is LMTP: use LHLO");
                return self.error(out);
            }
            Command::Mail { from, size, .. } => {
                if !self.greeted {
                    reply(out, 503, "5.5.1", "LHLO first");
                    return self.error(out);
                }
                if self.from.is_some() {
                    reply(out, 503, "5.5.1", "Nested MAIL command");
                    return self.error(out);
                }
                if size.is_some_and(|s| s > self.config.max_message_size) {
                    reply(out, 552, "5.3.4", "Message too big");
                    return Flow::Continue;
                }
                self.from = Some(from);
                reply(out, 250, "2.1.0", "Sender OK");
            }
            Command::Rcpt { to } => {
                if self.from.is_none() {
                    reply(out, 503, "5.5.1", "MAIL first");
                    return self.error(out);
                }
                if self.chunking {
                    reply(out, 503, "5.5.1", "RCPT after BDAT");
                    return self.error(out);
                }
                if self.rcpts.len() >= self.config.max_recipients {
                    reply(out, 452, "4.5.3", "Too many recipients");
                    return Flow::Continue;
                }
                self.rcpt(to, out).await;
            }
            Command::Data => {
                if self.from.is_none() || self.chunking {
                    reply(out, 503, "5.5.1", "MAIL first");
                    return self.error(out);
                }
                if self.rcpts.is_empty() {
                    reply(out, 503, "5.5.1", "No valid recipients");
                    return self.error(out);
                }
                self.content = Content::Data { line_start: true };
                self.start_message();
                reply(out, 354, "", "Start mail input; end with <CRLF>.<CRLF>");
            }
            Command::Bdat { size, last } => {
                self.chunk_refused = self.from.is_none() || self.rcpts.is_empty();
                if !self.chunking && !self.chunk_refused {
                    self.start_message();
                }
                self.chunking = true;
                self.content = Content::Bdat {
                    remaining: size,
                    last,
                };
                if size == 0 {
                    return self.chunk(&[], out).await;
                }
            }
            Command::Rset => {
                self.reset();
                reply(out, 250, "2.0.0", "OK");
            }
            Command::Noop => reply(out, 250, "2.0.0", "OK"),
            Command::Quit => {
                reply(out, 221, "2.0.0", "Bye");
                return Flow::Close;
            }
            Command::Vrfy => reply(
                out,
                252,
                "2.5.2",
                "Cannot VRFY user, but will accept message and attempt delivery",
            ),
            Command::Unknown => {
                reply(out, 500, "5.5.1", "Command unrecognized");
                return self.error(out);
            }
        }
        Flow::Continue
    }

    async fn rcpt(&mut self, to: String, out: &mut Vec<u8>) {
        let resolved = self
            .store
            .resolve_recipient(&to, &self.config.detail_separator)
            .await;
        match resolved {
            Ok(Recipient::Account { user, detail }) => {
                let mailbox = match detail {
                    Some(d) => self.detail_folder(user.id, &d).await,
                    None => "INBOX".to_owned(),
                };
                self.rcpts.push(Rcpt {
                    address: to,
                    user: user.id,
                    mailbox,
                });
                reply(out, 250, "2.1.5", "Recipient OK");
            }
            Ok(Recipient::NoSuchUser) => reply(out, 550, "5.1.1", &format!("<{to}> User unknown")),
            Ok(Recipient::NoSuchDomain) => reply(
                out,
                550,
                "5.1.2",
                &format!("<{to}> Domain not handled here"),
            ),
            Err(e) => {
                tracing::warn!(error = %e, rcpt = %to, "LMTP recipient lookup failed");
                reply(out, 451, "4.3.0", "Temporary lookup failure")
            }
        }
    }

    /// The account's folder named `detail` (exact name first, then any case), else INBOX.
    async fn detail_folder(&self, user: UserId, detail: &str) -> String {
        let Ok(list) = self.store.list_mailboxes(user).await else {
            return "INBOX".into();
        };
        list.iter()
            .find(|m| m.name == detail)
            .or_else(|| {
                list.iter()
                    .find(|m| m.name.to_lowercase() == detail.to_lowercase())
            })
            .map_or_else(|| "INBOX".into(), |m| m.name.clone())
    }

    async fn data_piece(&mut self, piece: &[u8], line_start: bool, out: &mut Vec<u8>) -> Flow {
        let ends_line = piece.ends_with(b"\n");
        if line_start && (piece == b".\r\n" || piece == b".\n") {
            self.content = Content::None;
            self.deliver(out).await;
            return Flow::Continue;
        }
        // Dot-unstuffing (RFC 5321 §4.5.2).
        let piece = if line_start && piece.starts_with(b".") {
            &piece[1..]
        } else {
            piece
        };
        self.add_content(piece);
        self.content = Content::Data {
            line_start: ends_line,
        };
        Flow::Continue
    }

    /// The message starts with the headers we add: written first, so the received bytes are
    /// never copied behind them.
    fn start_message(&mut self) {
        let from = self.from.as_deref().unwrap_or_default();
        let mut header = format!("Return-Path: <{from}>\r\n");
        if let [only] = &self.rcpts[..] {
            header.push_str(&format!("Delivered-To: {}\r\n", only.address));
        }
        self.data = header.into_bytes();
        self.header_len = self.data.len();
    }

    fn add_content(&mut self, bytes: &[u8]) {
        if self.too_big || self.chunk_refused {
            return;
        }
        let received = self.data.len() - self.header_len;
        if (received + bytes.len()) as u64 > self.config.max_message_size {
            // Read on to the end, keep nothing: the answer is 552 5.3.4 per recipient.
            self.too_big = true;
            self.data = Vec::new();
            return;
        }
        self.data.extend_from_slice(bytes);
    }

    /// The end of the message: store it for every recipient, one reply each, in RCPT order.
    async fn deliver(&mut self, out: &mut Vec<u8>) {
        let rcpts = std::mem::take(&mut self.rcpts);
        let results = if self.too_big {
            vec![Err(Failure::TooBig); rcpts.len()]
        } else {
            self.store_message(&rcpts).await
        };
        for (r, result) in rcpts.iter().zip(results) {
            let a = &r.address;
            match result {
                Ok(()) => reply(out, 250, "2.0.0", &format!("<{a}> Delivered")),
                Err(Failure::TooBig) => reply(out, 552, "5.3.4", &format!("<{a}> Message too big")),
                Err(Failure::OverQuota) if self.config.quota_temporary => {
                    reply(out, 452, "4.2.2", &format!("<{a}> Mailbox full"))
                }
                Err(Failure::OverQuota) => reply(out, 552, "5.2.2", &format!("<{a}> Mailbox full")),
                Err(Failure::Storage) => {
                    reply(out, 451, "4.3.0", &format!("<{a}> Temporary failure"))
                }
            }
        }
        self.reset();
    }

    async fn store_message(&mut self, rcpts: &[Rcpt]) -> Vec<Result<(), Failure>> {
        let data = std::mem::take(&mut self.data);
        let message = match prepare(data).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "LMTP message analysis failed");
                return vec![Err(Failure::Storage); rcpts.len()];
            }
        };
        let mut targets: Vec<(UserId, String)> =
            rcpts.iter().map(|r| (r.user, r.mailbox.clone())).collect();
        targets.sort_unstable();
        targets.dedup();
        let outcome = append_all(&self.store, &targets, message).await;
        rcpts
            .iter()
            .map(|r| {
                let i = targets
                    .binary_search(&(r.user, r.mailbox.clone()))
                    .expect("every recipient's target is listed");
                outcome[i]
            })
            .collect()
    }

    fn reset(&mut self) {
        self.from = None;
        self.rcpts.clear();
        self.content = Content::None;
        self.chunking = false;
        self.chunk_refused = false;
        self.data = Vec::new();
        self.header_len = 0;
        self.too_big = false;
    }

    /// Counts a bad command; too many close the session.
    fn error(&mut self, out: &mut Vec<u8>) -> Flow {
        self.errors += 1;
        if self.errors >= self.config.max_errors {
            reply(out, 421, "4.7.0", "Too many errors, closing");
            return Flow::Close;
        }
        Flow::Continue
    }
}

fn reply(out: &mut Vec<u8>, code: u16, status: &str, text: &str) {
    out.extend_from_slice(code.to_string().as_bytes());
    out.push(b' ');
    if !status.is_empty() {
        out.extend_from_slice(status.as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}
