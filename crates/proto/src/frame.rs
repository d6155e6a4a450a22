//! Cutting a command into lines and literals (RFC 9051 §4.3, RFC 7888, RFC 3516 `literal8`).

use std::path::PathBuf;

/// One piece of a command as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fragment {
    /// Text up to and including CRLF (a line that ends with a literal announcement includes
    /// the `{n}` and the CRLF after it).
    Line(Vec<u8>),
    /// The bytes of a literal that was kept in memory.
    Literal(Vec<u8>),
    /// A literal the server wrote to a file because it was large (APPEND message data only).
    Spooled { path: PathBuf, len: u64 },
}

/// What a line's end announces: `{n}`, `{n+}`, `{n-}`... `~{n}` before CRLF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiteralAnnouncement {
    pub len: u64,
    /// True for a synchronizing literal: the server must send `+ ...` before the client sends it.
    pub synchronizing: bool,
    /// `~{n}`: literal8 (RFC 3516).
    pub binary: bool,
}

/// If `line` (ending in CRLF, or LF alone) ends with a literal announcement, describe it.
/// Returns `Err(())` if the line ends with something that looks like an announcement but is
/// malformed (for example a number too large for u64).
pub fn literal_announcement(line: &[u8]) -> Result<Option<LiteralAnnouncement>, ()> {
    let _ = line;
    todo!("proto agent")
}
