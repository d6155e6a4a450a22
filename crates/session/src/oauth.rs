//! AUTHENTICATE OAUTHBEARER (RFC 7628) and XOAUTH2 with a JWT access token of the issuer in
//! `[auth.oauth]` (checked by `mailkeep_auth::oauth`). A refused token gets the RFC 7628 error
//! as a challenge (`+ <base64 {"status":"invalid_token",...}>`); the client's answer (`AQ==`)
//! gets the tagged `NO [AUTHENTICATIONFAILED]`. Attempts go through the throttle like
//! passwords.

use std::time::Duration;

use mailkeep_auth::oauth;
use mailkeep_proto::write::Code;
use mailkeep_store::User;

use crate::anonymous::{SaslPending, SaslStep, continuation, failed};
use crate::state::Transition;
use crate::{Flow, Inner, Outcome, capability};

/// The account a token's username claim names: an account of that name, or `name@domain`
/// with `domain` local and `name` an account.
async fn account_of(inner: &Inner, claim: &str) -> Option<User> {
    if !mailkeep_auth::valid_user_name(claim) {
        return None;
    }
    if let Ok(Some(u)) = inner.store.get_user(claim).await {
        return Some(u);
    }
    let (local, domain) = claim.rsplit_once('@')?;
    if local.is_empty() {
        return None;
    }
    match inner
        .store
        .is_local_domain(&domain.to_ascii_lowercase())
        .await
    {
        Ok(true) => inner.store.get_user(local).await.ok().flatten(),
        _ => None,
    }
}

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
    let claim = match validator.validate(&bearer.token) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::info!(peer = %inner.config.peer, mechanism, error = %e, "token refused");
            None
        }
    };
    let account = match &claim {
        Some(c) => account_of(inner, c).await,
        None => None,
    };
    // The client's own name for itself (authzid, XOAUTH2's user=) must be the token's.
    let names_match = bearer.user.is_empty()
        || claim.as_deref() == Some(bearer.user.as_str())
        || account.as_ref().is_some_and(|u| u.name == bearer.user);
    let ok = account.is_some() && names_match;
    let shown = claim.clone().unwrap_or_else(|| bearer.user.clone());
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
            if let Err(e) = crate::authenticated::first_login(inner, &user).await {
                return Outcome::err(e);
            }
            inner.mechanism = Some(mechanism);
            inner.user_name = Some(user.name.clone());
            let caps = capability::list_for(inner, true);
            Outcome::ok_code(Some(Code::Capability(caps)), "Logged in")
                .then(Transition::Authenticated(user))
        }
        (verdict, _) => {
            let extra_delay = match verdict {
                mailkeep_auth::Verdict::Failure { extra_delay } => extra_delay,
                mailkeep_auth::Verdict::Success => Duration::ZERO,
            };
            // RFC 7628 §3.2.2: the error as a challenge; the tagged NO follows the client's
            // answer.
            let issuer = validator_issuer(&validator);
            continuation(out, oauth::error_json(&issuer).as_bytes());
            inner.sasl = Some(SaslPending {
                tag,
                step: SaslStep::OAuthFailed { extra_delay },
            });
            Outcome::pending(Flow::SaslContinue)
        }
    }
}

fn validator_issuer(v: &oauth::Validator) -> String {
    v.issuer().to_string()
}
