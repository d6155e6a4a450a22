//! Connection limits per account: the server decides, at each successful login, whether one
//! more session of this account (from this address) is allowed, and the session holds the
//! returned guard until it ends, which gives the place back.

use std::net::IpAddr;
use std::sync::Arc;

use mailkeep_proto::write::Code;

use crate::Inner;
use crate::error::{CmdError, CmdResult};

/// Decides whether an account may have one more session.
pub trait LoginGate: Send + Sync {
    /// `Ok(guard)` admits the session (dropping the guard frees the place); `Err(why)` refuses
    /// it with `NO [LIMIT] why`.
    fn admit(&self, user: &str, ip: IpAddr) -> Result<LoginGuard, String>;
}

/// A place held by one session; dropped when the session ends.
pub struct LoginGuard(#[allow(dead_code)] Box<dyn Send + Sync>);

impl LoginGuard {
    pub fn new(held: impl Send + Sync + 'static) -> LoginGuard {
        LoginGuard(Box::new(held))
    }
}

/// Called by every successful login before it answers OK.
pub(crate) fn admit(inner: &mut Inner, user: &str) -> CmdResult<()> {
    let Some(gate) = inner.login_gate.clone() else {
        return Ok(());
    };
    match gate.admit(user, inner.config.peer.ip()) {
        Ok(guard) => {
            inner.login_guard = Some(guard);
            Ok(())
        }
        Err(why) => {
            tracing::warn!(
                target: "mailkeep_auth",
                "event=connection_limit proto=imap ip={} user={:?} reason=too_many_connections",
                inner.config.peer.ip(),
                user
            );
            Err(CmdError::No(Some(Code::Limit), why))
        }
    }
}

/// The gate a session consults (none in tests unless set).
pub(crate) type Gate = Option<Arc<dyn LoginGate>>;
