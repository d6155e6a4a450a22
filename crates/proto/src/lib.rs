//! Mailkeep's IMAP wire protocol: command types, the command parser and the response writer.
//!
//! # Layout
//! - [`types`]: the command AST ([`Command`], [`CommandBody`], search keys, fetch items...).
//! - [`frame`]: how a command is cut into lines and literals as it arrives (sans-I/O: the server
//!   reads bytes, asks [`frame::literal_announcement`] whether a line announces a literal, reads
//!   or spools the literal, and hands the collected [`frame::Fragment`]s to [`parse_command`]).
//! - [`parse`]: the parser, one function per ABNF rule of RFC 9051 §9 (plus RFC 3501 and
//!   extension syntax).
//! - [`write`]: the response writer (strings, flags, status responses, sequence sets, dates).
//! - [`utf7`]: modified UTF-7 mailbox names (RFC 3501 §5.1.3).
//!
//! No tokio, no storage, no logging setup here: bytes in, values out.
#![forbid(unsafe_code)]

pub mod frame;
pub mod parse;
pub mod types;
pub mod utf7;
pub mod write;

pub use frame::{Fragment, LiteralAnnouncement};
pub use parse::{ParseError, parse_command};
pub use types::*;
