//! The one place that maps errors to IMAP answers (STYLE.md §3).

use mailkeep_proto::write::{self, Code, StatusKind};
use mailkeep_store::StoreError;

/// Why a command failed, by who is at fault.
#[derive(Debug)]
pub enum CmdError {
    /// The client sent something invalid for this state or these arguments -> BAD.
    Bad(String),
    /// BAD with a response code (`BAD [UIDREQUIRED] ...`, RFC 9586 §3).
    BadCode(Code, String),
    /// A well-formed command that cannot be done -> NO with a response code.
    No(Option<Code>, String),
    /// Storage fault -> NO [SERVERBUG], details only in the log.
    Store(StoreError),
}

impl From<StoreError> for CmdError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoSuchMailbox => {
                CmdError::No(Some(Code::Nonexistent), "Mailbox doesn't exist".into())
            }
            StoreError::AlreadyExists => {
                CmdError::No(Some(Code::AlreadyExists), "Mailbox already exists".into())
            }
            StoreError::Cannot(m) => CmdError::No(Some(Code::Cannot), m),
            StoreError::OverQuota => CmdError::No(Some(Code::OverQuota), "Quota exceeded".into()),
            StoreError::Unavailable(m) => {
                tracing::warn!(error = %m, "storage unavailable");
                CmdError::No(
                    Some(Code::UnavailableResource),
                    "Storage is unavailable for now, try again shortly.".into(),
                )
            }
            e => CmdError::Store(e),
        }
    }
}

impl CmdError {
    /// Write the tagged answer for this error.
    pub fn write(&self, tag: &str, command: &str, out: &mut Vec<u8>) {
        match self {
            CmdError::Bad(m) => write::status(out, Some(tag), StatusKind::Bad, None, m),
            CmdError::BadCode(code, m) => {
                write::status(out, Some(tag), StatusKind::Bad, Some(code), m)
            }
            CmdError::No(code, m) => {
                write::status(out, Some(tag), StatusKind::No, code.as_ref(), m)
            }
            CmdError::Store(e) => {
                tracing::error!(command, error = %e, "storage fault");
                write::status(
                    out,
                    Some(tag),
                    StatusKind::No,
                    Some(&Code::ServerBug),
                    "Internal error occurred. Refer to server log for more information.",
                )
            }
        }
    }
}

pub type CmdResult<T = ()> = Result<T, CmdError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_storage_is_no_unavailable() {
        let mut out = Vec::new();
        CmdError::from(StoreError::Unavailable("connection closed".into()))
            .write("a1", "APPEND", &mut out);
        assert!(out.starts_with(b"a1 NO [UNAVAILABLE] "), "{out:?}");
        let mut out = Vec::new();
        CmdError::from(StoreError::Internal("disk".into())).write("a2", "APPEND", &mut out);
        assert!(out.starts_with(b"a2 NO [SERVERBUG] "), "{out:?}");
    }
}
