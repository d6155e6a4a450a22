//! AUTHENTICATE SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, 7677, 9266), and
//! SCRAM-SHA-1(-PLUS) where `[auth] scram_sha1` turns it on, in the not-authenticated state;
//! the SCRAM keys kept up to date at PLAIN/LOGIN logins.
//!
//! The exchange over IMAP (RFC 9051 §6.2.2):
//! ```text
//! C: A1 AUTHENTICATE SCRAM-SHA-256 [client-first]      (SASL-IR, or after `+ `)
//! S: + base64(server-first)
//! C: base64(client-final)
//! S: + base64(v=signature)        or  A1 NO [AUTHENTICATIONFAILED] ...
//! C: (empty line)
//! S: A1 OK [CAPABILITY ...]
//! ```
//! A wrong proof, an unknown user and an account without SCRAM keys all end the same way,
//! after the same throttle (`mailkeep_auth::attempt_checked`) as a wrong password: the very
//! NO a wrong password gets. An unknown user gets a salt derived from a server secret and the
//! name, so the server-first message does not tell either.
//!
//! Failures are answered with the tagged NO at once, not with an RFC 5802 `e=...` server-final
//! challenge: IMAP cannot carry data with a NO, and a challenge needs one more client line,
//! which real clients do not all send (isync's mbsync through Cyrus SASL waits forever after
//! `e=`). Errors other than a wrong proof name their RFC 5802 error value in the NO's text,
//! e.g. `(e=channel-bindings-dont-match)`.

use std::time::Duration;

use mailkeep_auth::scram::{self, Binding, Mechanism, ScramError, Secrets, ServerFirst};
use mailkeep_proto::write::Code;
use mailkeep_store::User;

use crate::anonymous::{SaslPending, SaslStep, continuation, failed, failed_with, find_user};
use crate::{Flow, Inner, Outcome};

/// The name of the server secret the stand-in salts come from.
const FAKE_SALT_SECRET: &str = "scram-fake-salt";

/// Where a SCRAM exchange waits for the client.
pub(crate) enum ScramStep {
    /// `+ ` sent; the client-first message comes next.
    First,
    /// server-first sent; the client-final message comes next.
    Final {
        server: Box<ServerFirst>,
        /// The account the name resolved to (`None`: unknown user).
        account: Option<User>,
    },
    /// `v=...` sent: an empty response completes the login.
    Done { user: User },
}

/// The connection's channel binding, as the SCRAM code wants it.
fn binding(inner: &Inner) -> Binding<'_> {
    Binding::of(inner.channel_binding.as_deref())
}

/// The SCRAM mechanism `mechanism` names, if this connection offers it (-PLUS only where it
/// can bind, SHA-1 only where the setting allows).
pub(crate) fn which(inner: &Inner, mechanism: &str) -> Option<Mechanism> {
    scram::mechanism(mechanism, inner.channel_binding.is_some(), inner.scram_sha1)
}

/// One client message of a SCRAM exchange (base64-decoded; `*` was handled by the caller
/// except in the `Failed` step, see [`cancelled`]).
pub(crate) async fn step(
    inner: &mut Inner,
    auth_failures: &mut u32,
    tag: String,
    mech: Mechanism,
    step: ScramStep,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Outcome {
    match step {
        ScramStep::First => first(inner, auth_failures, tag, mech, data, out).await,
        ScramStep::Final { server, account } => {
            last(inner, auth_failures, tag, mech, &server, account, data, out).await
        }
        ScramStep::Done { user } => {
            if !data.is_empty() {
                return failed(inner, auth_failures, Duration::ZERO, out).await;
            }
            // SCRAM's keys come from the main password.
            inner.watch_login(mailkeep_auth::app_passwords::Watch::main_password(
                &user.name,
            ));
            crate::authenticated::logged_in(inner, user, mech.name()).await
        }
    }
}

async fn first(
    inner: &mut Inner,
    auth_failures: &mut u32,
    tag: String,
    mech: Mechanism,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Outcome {
    let client = match scram::parse_client_first(data, mech.plus, binding(inner)) {
        Ok(c) => c,
        Err(e) => return refused(inner, auth_failures, e, out).await,
    };
    let account = match find_user(inner, &client.user).await {
        Ok(a) => a,
        Err(e) => return Outcome::err(e),
    };
    let secrets = match &account {
        Some(u) => match mailkeep_auth::scram_keys::load(&*inner.store, u, mech.hash).await {
            Ok(s) => s,
            Err(e) => return Outcome::err(e.into()),
        },
        None => None,
    };
    let secrets = match secrets {
        Some(s) => s,
        // Unknown user, or an account whose keys were never derived (created before SCRAM
        // support, not logged in since): a salt that is always the same for that name, keys
        // no proof matches.
        None => match inner.store.server_secret(FAKE_SALT_SECRET).await {
            Ok(secret) => {
                Secrets::fake_with(mech.hash, &secret, &client.user, inner.scram_iterations)
            }
            Err(e) => return Outcome::err(e.into()),
        },
    };
    let server = ServerFirst::start(client, secrets);
    continuation(out, server.message().as_bytes());
    inner.sasl = Some(SaslPending {
        tag,
        step: SaslStep::Scram {
            mech,
            step: ScramStep::Final {
                server: Box::new(server),
                account,
            },
        },
    });
    Outcome::pending(Flow::SaslContinue)
}

/// A client-first message we cannot go on with: NO with the RFC 5802 error name. Nothing is
/// known about the account yet, so this counts on the connection only.
async fn refused(
    inner: &mut Inner,
    auth_failures: &mut u32,
    e: ScramError,
    out: &mut Vec<u8>,
) -> Outcome {
    tracing::info!(
        peer = %inner.config.peer,
        error = e.server_error(),
        "SCRAM client-first refused"
    );
    let (code, text) = if e == ScramError::AuthzidMismatch {
        (
            Code::AuthorizationFailed,
            "Authorization failed.".to_string(),
        )
    } else {
        (
            Code::AuthenticationFailed,
            format!("Authentication failed ({}).", e.message()),
        )
    };
    failed_with(inner, auth_failures, Duration::ZERO, code, text, out).await
}

#[allow(clippy::too_many_arguments)]
async fn last(
    inner: &mut Inner,
    auth_failures: &mut u32,
    tag: String,
    mech: Mechanism,
    server: &ServerFirst,
    account: Option<User>,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Outcome {
    let result = server.finish(data, binding(inner));
    // SCRAM's keys come from the main password, which does not log in with two-factor on.
    let allowed = match &account {
        Some(u) if result.is_ok() => {
            mailkeep_auth::app_passwords::main_password_allowed(&*inner.store, &u.name)
                .await
                .unwrap_or(false)
        }
        _ => true,
    };
    let verdict = mailkeep_auth::attempt_checked(
        inner.throttle.as_deref(),
        mailkeep_auth::Attempt {
            proto: "imap",
            ip: inner.config.peer.ip(),
            user: server.user(),
            account: account.as_ref().map(|u| u.name.as_str()),
            phc: None,
            password: b"",
            mechanism: mech.name(),
            tls: inner.config.tls_active,
        },
        result.is_ok() && allowed,
    )
    .await;
    match (verdict, result, account) {
        (mailkeep_auth::Verdict::Success, Ok(v), Some(user)) => {
            continuation(out, v.server_final.as_bytes());
            inner.sasl = Some(SaslPending {
                tag,
                step: SaslStep::Scram {
                    mech,
                    step: ScramStep::Done { user },
                },
            });
            Outcome::pending(Flow::SaslContinue)
        }
        (verdict, result, _) => {
            let extra_delay = match verdict {
                mailkeep_auth::Verdict::Failure { extra_delay } => extra_delay,
                mailkeep_auth::Verdict::Success | mailkeep_auth::Verdict::Unavailable => {
                    Duration::ZERO
                }
            };
            match result {
                // A wrong proof (or a right one from a blocked source, or an unknown user):
                // exactly what a wrong password gets.
                Ok(_) | Err(ScramError::InvalidProof) => {
                    failed(inner, auth_failures, extra_delay, out).await
                }
                Err(e) => {
                    let text = format!("Authentication failed ({}).", e.message());
                    let code = Code::AuthenticationFailed;
                    failed_with(inner, auth_failures, extra_delay, code, text, out).await
                }
            }
        }
    }
}

/// After a successful PLAIN/LOGIN: rehash and SCRAM keys, see
/// [`mailkeep_auth::scram_keys::after_password_login`].
pub(crate) async fn upgrade_secrets(inner: &Inner, user: &User, password: &[u8]) {
    let (iterations, sha1) = (inner.scram_iterations, inner.scram_sha1);
    mailkeep_auth::scram_keys::after_password_login(&*inner.store, user, password, iterations, sha1)
        .await
}
