//! AUTHENTICATE SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, 7677, 9266) in the
//! not-authenticated state, and the SCRAM keys kept up to date at PLAIN/LOGIN logins.
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

use mailkeep_auth::scram::{self, Binding, ScramError, Secrets, ServerFirst};
use mailkeep_proto::write::Code;
use mailkeep_store::{ScramKeys, User};

use crate::anonymous::{SaslPending, SaslStep, continuation, failed, failed_with, find_user};
use crate::error::CmdError;
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

pub(crate) fn mechanism(plus: bool) -> &'static str {
    if plus {
        scram::SCRAM_SHA_256_PLUS
    } else {
        scram::SCRAM_SHA_256
    }
}

/// The connection's channel binding, as the SCRAM code wants it.
fn binding(inner: &Inner) -> Binding<'_> {
    Binding::of(inner.channel_binding.as_deref())
}

/// `SCRAM-SHA-256` or `SCRAM-SHA-256-PLUS` (only where the connection can bind), if
/// `mechanism` names one of them.
pub(crate) fn which(inner: &Inner, mechanism: &str) -> Option<bool> {
    scram::mechanism(mechanism, inner.channel_binding.is_some())
}

/// One client message of a SCRAM exchange (base64-decoded; `*` was handled by the caller
/// except in the `Failed` step, see [`cancelled`]).
pub(crate) async fn step(
    inner: &mut Inner,
    auth_failures: &mut u32,
    tag: String,
    plus: bool,
    step: ScramStep,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Outcome {
    match step {
        ScramStep::First => first(inner, auth_failures, tag, plus, data, out).await,
        ScramStep::Final { server, account } => {
            last(inner, auth_failures, tag, plus, &server, account, data, out).await
        }
        ScramStep::Done { user } => {
            if !data.is_empty() {
                return failed(inner, auth_failures, Duration::ZERO, out).await;
            }
            crate::authenticated::logged_in(inner, user, mechanism(plus)).await
        }
    }
}

async fn first(
    inner: &mut Inner,
    auth_failures: &mut u32,
    tag: String,
    plus: bool,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Outcome {
    let client = match scram::parse_client_first(data, plus, binding(inner)) {
        Ok(c) => c,
        Err(e) => return refused(inner, auth_failures, e, out).await,
    };
    let account = match find_user(inner, &client.user).await {
        Ok(a) => a,
        Err(e) => return Outcome::err(e),
    };
    let secrets = match &account {
        Some(u) => match stored_secrets(inner, u).await {
            Ok(s) => s,
            Err(e) => return Outcome::err(e),
        },
        None => None,
    };
    let secrets = match secrets {
        Some(s) => s,
        // Unknown user, or an account whose keys were never derived (created before SCRAM
        // support, not logged in since): a salt that is always the same for that name, keys
        // no proof matches.
        None => match inner.store.server_secret(FAKE_SALT_SECRET).await {
            Ok(secret) => Secrets::fake(&secret, &client.user, inner.scram_iterations),
            Err(e) => return Outcome::err(e.into()),
        },
    };
    let server = ServerFirst::start(client, secrets);
    continuation(out, server.message().as_bytes());
    inner.sasl = Some(SaslPending {
        tag,
        step: SaslStep::Scram {
            plus,
            step: ScramStep::Final {
                server: Box::new(server),
                account,
            },
        },
    });
    Outcome::pending(Flow::SaslContinue)
}

/// The account's SCRAM keys: stored ones, else those of an imported `{SCRAM-SHA-256}` hash.
async fn stored_secrets(inner: &Inner, user: &User) -> Result<Option<Secrets>, CmdError> {
    if let Some(k) = inner.store.get_scram_keys(&user.name).await? {
        let (Ok(stored_key), Ok(server_key)) = (k.stored_key.try_into(), k.server_key.try_into())
        else {
            return Ok(None);
        };
        return Ok(Some(Secrets {
            iterations: k.iterations,
            salt: k.salt,
            stored_key,
            server_key,
        }));
    }
    Ok(mailkeep_auth::hashes::scram_secrets(&user.password_hash))
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
    plus: bool,
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
            mechanism: mechanism(plus),
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
                    plus,
                    step: ScramStep::Done { user },
                },
            });
            Outcome::pending(Flow::SaslContinue)
        }
        (verdict, result, _) => {
            let extra_delay = match verdict {
                mailkeep_auth::Verdict::Failure { extra_delay } => extra_delay,
                mailkeep_auth::Verdict::Success => Duration::ZERO,
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

/// After a successful PLAIN/LOGIN: an imported hash (not argon2id) is replaced by an argon2id
/// one, and SCRAM keys are derived if the account has none (created before SCRAM support,
/// imported, or just rehashed). Failures are logged; the login stands.
pub(crate) async fn upgrade_secrets(inner: &Inner, user: &User, password: &[u8]) {
    store_upgrade(&*inner.store, user, password, inner.scram_iterations).await
}

/// [`upgrade_secrets`] on any store (the POP3 session has the same code).
async fn store_upgrade(
    store: &dyn mailkeep_store::MailStore,
    user: &User,
    password: &[u8],
    iterations: u32,
) {
    let current = mailkeep_auth::hashes::is_current(&user.password_hash);
    let has_keys = current && matches!(store.get_scram_keys(&user.name).await, Ok(Some(_)));
    let up = scram::upgrade(&user.password_hash, has_keys, password, iterations).await;
    if let Some(h) = &up.new_hash {
        // Setting the hash drops the old SCRAM keys: the new ones follow.
        match store.set_password(&user.name, h).await {
            Ok(()) => tracing::info!(user = ?user.name, "password rehashed to argon2id"),
            Err(e) => return tracing::warn!(user = ?user.name, error = %e, "rehashing"),
        }
    }
    let Some(s) = up.keys else {
        return;
    };
    let keys = ScramKeys {
        iterations: s.iterations,
        salt: s.salt,
        stored_key: s.stored_key.to_vec(),
        server_key: s.server_key.to_vec(),
    };
    if let Err(e) = store.set_scram_keys(&user.name, Some(&keys)).await {
        tracing::warn!(user = ?user.name, error = %e, "storing SCRAM keys");
    }
}
