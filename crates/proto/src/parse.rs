//! The command parser: one function per ABNF rule.

use crate::frame::Fragment;
use crate::types::Command;

/// Why a command could not be parsed. `tag` is set when the tag itself was readable, so the
/// server can answer `tag BAD ...`; otherwise it answers `* BAD ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub tag: Option<String>,
    pub message: String,
}

/// Parse one complete command (all its lines and literals).
pub fn parse_command(fragments: &[Fragment]) -> Result<Command, ParseError> {
    let _ = fragments;
    todo!("proto agent")
}
