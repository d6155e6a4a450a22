//! Not-authenticated state (RFC 9051 §6.2): STARTTLS, LOGIN, AUTHENTICATE (PLAIN, LOGIN, and
//! SCRAM-SHA-256(-PLUS) in `scram`) with SASL-IR (RFC 4959) and the `+` continuation exchange.

use std::time::Duration;

use mailkeep_auth::app_passwords::{LoginCheck, Watch};
use mailkeep_auth::sasl;
use mailkeep_proto::CommandBody;
use mailkeep_proto::write::{self, Code, StatusKind};
use mailkeep_store::User;

use crate::error::CmdError;
use crate::scram::ScramStep;
use crate::state::Transition;
use crate::{Flow, Inner, Outcome, capability};

/// Where an AUTHENTICATE exchange is waiting for the client.
pub(crate) struct SaslPending {
    pub tag: String,
    pub step: SaslStep,
}

pub(crate) enum SaslStep {
    /// PLAIN sent `+ ` and waits for the credentials.
    Plain,
    /// LOGIN sent `+ VXNlcm5hbWU6` ("Username:").
    LoginUser,
    /// LOGIN sent `+ UGFzc3dvcmQ6` ("Password:").
    LoginPassword { user: Vec<u8> },
    /// SCRAM-SHA-256 or -SHA-1, -PLUS or not (`mech`), see `scram`.
    Scram {
        mech: mailkeep_auth::scram::Mechanism,
        step: ScramStep,
    },
    /// OAUTHBEARER or XOAUTH2 (`xoauth2`) waits for the token, see `oauth`.
    OAuth { xoauth2: bool },
    /// The token was refused and the RFC 7628 error sent: the client's dummy answer gets the
    /// tagged NO after this delay.
    OAuthFailed { extra_delay: Duration },
}

const USERNAME_PROMPT: &[u8] = b"Username:";
const PASSWORD_PROMPT: &[u8] = b"Password:";

pub(crate) async fn handle(
    inner: &mut Inner,
    auth_failures: &mut u32,
    tag: &str,
    body: CommandBody,
    out: &mut Vec<u8>,
) -> Outcome {
    match body {
        CommandBody::StartTls => {
            if inner.config.tls_active {
                Outcome::bad("TLS is already active.")
            } else if !inner.config.starttls_available {
                Outcome::bad("STARTTLS is not available.")
            } else {
                Outcome::ok("Begin TLS negotiation now.").flow(Flow::StartTls)
            }
        }
        CommandBody::Login { username, password } => {
            if !capability::plaintext_allowed(&inner.config) {
                return privacy_required();
            }
            login(inner, auth_failures, &username, &password, "LOGIN", out).await
        }
        CommandBody::Authenticate {
            mechanism,
            initial_response,
        } => authenticate(inner, auth_failures, tag, &mechanism, initial_response, out).await,
        _ => Outcome::bad("Please log in first."),
    }
}

fn privacy_required() -> Outcome {
    Outcome::err(CmdError::No(
        Some(Code::PrivacyRequired),
        "Plaintext authentication disallowed on non-secure (SSL/TLS) connections.".into(),
    ))
}

async fn authenticate(
    inner: &mut Inner,
    auth_failures: &mut u32,
    tag: &str,
    mechanism: &str,
    initial_response: Option<Vec<u8>>,
    out: &mut Vec<u8>,
) -> Outcome {
    let step = if mechanism.eq_ignore_ascii_case("PLAIN") {
        SaslStep::Plain
    } else if mechanism.eq_ignore_ascii_case("LOGIN") {
        SaslStep::LoginUser
    } else if inner.oauth.is_some() && mechanism.eq_ignore_ascii_case("OAUTHBEARER") {
        SaslStep::OAuth { xoauth2: false }
    } else if inner.oauth.is_some() && mechanism.eq_ignore_ascii_case("XOAUTH2") {
        SaslStep::OAuth { xoauth2: true }
    } else if let Some(mech) = crate::scram::which(inner, mechanism) {
        // No password crosses the connection: allowed without TLS too.
        SaslStep::Scram {
            mech,
            step: ScramStep::First,
        }
    } else {
        return Outcome::err(CmdError::No(
            None,
            "Unsupported authentication mechanism.".into(),
        ));
    };
    if !matches!(step, SaslStep::Scram { .. }) && !capability::plaintext_allowed(&inner.config) {
        return privacy_required();
    }
    let pending = SaslPending {
        tag: tag.to_string(),
        step,
    };
    match initial_response {
        // SASL-IR (RFC 4959): the first response came with the command.
        Some(ir) => sasl_step(inner, auth_failures, pending, &ir, out).await,
        None => {
            let prompt: &[u8] = match pending.step {
                SaslStep::LoginUser => USERNAME_PROMPT,
                _ => b"",
            };
            continuation(out, prompt);
            inner.sasl = Some(pending);
            Outcome::pending(Flow::SaslContinue)
        }
    }
}

pub(crate) fn continuation(out: &mut Vec<u8>, challenge: &[u8]) {
    out.extend_from_slice(b"+ ");
    out.extend_from_slice(sasl::encode_base64(challenge).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// One client response in an AUTHENTICATE exchange.
pub(crate) async fn sasl_step(
    inner: &mut Inner,
    auth_failures: &mut u32,
    pending: SaslPending,
    line: &[u8],
    out: &mut Vec<u8>,
) -> Outcome {
    let line = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))
        .unwrap_or(line);
    if line == b"*" {
        // RFC 9051 §6.2.2: the client cancels with `*`; the server answers BAD.
        return Outcome::bad("Authentication aborted by client.");
    }
    let Some(data) = sasl::decode_base64(line) else {
        return Outcome::bad("Invalid base64 data in continued response.");
    };
    match pending.step {
        SaslStep::Plain => {
            let Some(creds) = sasl::decode_plain(&data) else {
                tracing::debug!(peer = %inner.config.peer, "malformed SASL PLAIN message");
                return failed(inner, auth_failures, Duration::ZERO, out).await;
            };
            if !creds.authzid.is_empty() && creds.authzid != creds.authcid {
                // No master users: one may only act as oneself.
                return Outcome::err(CmdError::No(
                    Some(Code::AuthorizationFailed),
                    "Authorization failed.".into(),
                ));
            }
            login(
                inner,
                auth_failures,
                &creds.authcid,
                &creds.password,
                "PLAIN",
                out,
            )
            .await
        }
        SaslStep::LoginUser => {
            continuation(out, PASSWORD_PROMPT);
            inner.sasl = Some(SaslPending {
                tag: pending.tag,
                step: SaslStep::LoginPassword { user: data },
            });
            Outcome::pending(Flow::SaslContinue)
        }
        SaslStep::LoginPassword { user } => {
            login(inner, auth_failures, &user, &data, "LOGIN", out).await
        }
        SaslStep::Scram { mech, step } => {
            crate::scram::step(inner, auth_failures, pending.tag, mech, step, &data, out).await
        }
        SaslStep::OAuth { xoauth2 } => {
            crate::oauth::login(inner, auth_failures, pending.tag, xoauth2, &data, out).await
        }
        SaslStep::OAuthFailed { extra_delay } => {
            failed(inner, auth_failures, extra_delay, out).await
        }
    }
}

/// Check the credentials; on success the tagged OK carries the capabilities (RFC 9051 §6.2.3).
async fn login(
    inner: &mut Inner,
    auth_failures: &mut u32,
    username: &[u8],
    password: &[u8],
    mechanism: &'static str,
    out: &mut Vec<u8>,
) -> Outcome {
    let name = String::from_utf8_lossy(username).into_owned();
    let user = match find_user(inner, &name).await {
        Ok(u) => u,
        Err(e) => return Outcome::err(e),
    };
    // App passwords (and, with two-factor on, recovery codes) first: one keyed hash and a
    // lookup, no argon2. With two-factor on nothing else logs in.
    let check = match &user {
        Some(u) => {
            match mailkeep_auth::app_passwords::check_login(&*inner.store, u, password).await {
                Ok(c) => c,
                Err(e) => return Outcome::err(e.into()),
            }
        }
        None => LoginCheck::TryPassword,
    };
    let attempt = mailkeep_auth::Attempt {
        proto: "imap",
        ip: inner.config.peer.ip(),
        user: &name,
        account: user.as_ref().map(|u| u.name.as_str()),
        phc: user.as_ref().map(|u| u.password_hash.as_str()),
        password,
        mechanism,
        tls: inner.config.tls_active,
    };
    // argon2 runs on the auth crate's own small pool, queued fairly per source, with a cache
    // of recent logins; the throttle may refuse the check (answered the same way).
    let verdict =
        mailkeep_auth::attempt_after_check(inner.throttle.as_deref(), attempt, check).await;
    let user = match (verdict, user) {
        (mailkeep_auth::Verdict::Success, Some(user)) => user,
        (mailkeep_auth::Verdict::Failure { extra_delay }, _) => {
            return failed(inner, auth_failures, extra_delay, out).await;
        }
        // Not a failed login: nothing was checked, and the client may try again at once.
        (mailkeep_auth::Verdict::Unavailable, _) => {
            return Outcome::err(CmdError::No(
                Some(Code::UnavailableResource),
                "Too many logins at once, try again in a moment.".into(),
            ));
        }
        (_, None) => return failed(inner, auth_failures, Duration::ZERO, out).await,
    };
    match check {
        LoginCheck::TryPassword => {
            crate::scram::upgrade_secrets(inner, &user, password).await;
            inner.watch_login(Watch::main_password(&user.name));
        }
        LoginCheck::AppPassword(id) => inner.watch_login(Watch::new(id)),
        _ => {}
    }
    crate::authenticated::logged_in(inner, user, mechanism).await
}

/// `name` exactly, else the part before `@` (Dovecot-like: `alice@example.org` logs in as
/// `alice` when only `alice` exists).
pub(crate) async fn find_user(inner: &Inner, name: &str) -> Result<Option<User>, CmdError> {
    if !mailkeep_auth::valid_user_name(name) {
        return Ok(None);
    }
    if let Some(u) = inner.store.get_user(name).await? {
        return Ok(Some(u));
    }
    match name.split_once('@') {
        Some((local, _)) if !local.is_empty() => Ok(inner.store.get_user(local).await?),
        _ => Ok(None),
    }
}

/// A failed login (logged by `mailkeep_auth::attempt`): wait a little (longer after many
/// failures, `extra_delay` from the throttle), count it, and close after too many (the BYE
/// comes first so the tagged NO is the last thing the client reads).
pub(crate) async fn failed(
    inner: &mut Inner,
    auth_failures: &mut u32,
    extra_delay: Duration,
    out: &mut Vec<u8>,
) -> Outcome {
    let text = "Authentication failed.".to_string();
    failed_with(
        inner,
        auth_failures,
        extra_delay,
        Code::AuthenticationFailed,
        text,
        out,
    )
    .await
}

/// [`failed`] with another response code and text.
pub(crate) async fn failed_with(
    inner: &mut Inner,
    auth_failures: &mut u32,
    extra_delay: Duration,
    code: Code,
    text: String,
    out: &mut Vec<u8>,
) -> Outcome {
    let delay = inner.auth_failure_delay + extra_delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    *auth_failures += 1;
    let outcome = Outcome::err(CmdError::No(Some(code), text));
    if *auth_failures >= inner.config.max_auth_failures.max(1) {
        write::status(
            out,
            None,
            StatusKind::Bye,
            None,
            "Too many invalid authentication attempts.",
        );
        return outcome.then(Transition::Logout).flow(Flow::Close);
    }
    outcome
}
