//! AUTHENTICATE OAUTHBEARER (RFC 7628) and XOAUTH2 with a JWT access token of the issuer in
//! `[auth.oauth]` (checked by `mailkeep_auth::oauth`). A refused token gets the RFC 7628 error
//! as a challenge (`+ <base64 {"status":"invalid_token",...}>`); the client's answer (`AQ==`)
//! gets the tagged `NO [AUTHENTICATIONFAILED]`. Attempts go through the throttle like
//! passwords.

use std::time::Duration;

use mailkeep_auth::oauth;

use crate::anonymous::{SaslPending, SaslStep, continuation, failed};
use crate::{Flow, Inner, Outcome};

pub(crate) async fn login(
    inner: &mut Inner,
    auth_failures: &mut u32,
    tag: String,
    xoauth2: bool,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Outcome {
    let mechanism = if xoauth2 {
        oauth::XOAUTH2
    } else {
        oauth::OAUTHBEARER
    };
    let Some(validator) = inner.oauth.clone() else {
        return failed(inner, auth_failures, Duration::ZERO, out).await;
    };
    let bearer = if xoauth2 {
        oauth::parse_xoauth2(data)
    } else {
        oauth::parse_oauthbearer(data)
    };
    let Some(bearer) = bearer else {
        tracing::debug!(peer = %inner.config.peer, mechanism, "malformed SASL message");
        return failed(inner, auth_failures, Duration::ZERO, out).await;
    };
    let resolved = oauth::resolve(&*inner.store, &validator, &bearer).await;
    let (shown, account) = (resolved.shown, resolved.account);
    let ok = account.is_some();
    let verdict = mailkeep_auth::attempt_checked(
        inner.throttle.as_deref(),
        mailkeep_auth::Attempt {
            proto: "imap",
            ip: inner.config.peer.ip(),
            user: &shown,
            account: account.as_ref().map(|u| u.name.as_str()),
            phc: None,
            password: b"",
            mechanism,
            tls: inner.config.tls_active,
        },
        ok,
    )
    .await;
    match (verdict, account) {
        (mailkeep_auth::Verdict::Success, Some(user)) => {
            crate::authenticated::logged_in(inner, user, mechanism).await
        }
        (verdict, _) => {
            let extra_delay = match verdict {
                mailkeep_auth::Verdict::Failure { extra_delay } => extra_delay,
                mailkeep_auth::Verdict::Success | mailkeep_auth::Verdict::Unavailable => {
                    Duration::ZERO
                }
            };
            // RFC 7628 §3.2.2: the error as a challenge; the tagged NO follows the client's
            // answer.
            continuation(out, oauth::error_json(validator.issuer()).as_bytes());
            inner.sasl = Some(SaslPending {
                tag,
                step: SaslStep::OAuthFailed { extra_delay },
            });
            Outcome::pending(Flow::SaslContinue)
        }
    }
}
