//! OAUTHBEARER (RFC 7628) and XOAUTH2: JWT access tokens checked against the keys of one
//! issuer the administrator configures (`[auth.oauth]`: a JWKS file, the issuer and the
//! audience), without any network. Signature checks are the `jsonwebtoken` crate's (on
//! `ring`, which TLS already uses); only asymmetric algorithms are accepted (no `none`, no
//! HMAC with a public key as the secret).

use std::collections::HashMap;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

pub const OAUTHBEARER: &str = "OAUTHBEARER";
pub const XOAUTH2: &str = "XOAUTH2";

/// The algorithms a token may be signed with.
const ALLOWED: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Seconds of clock difference tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 60;

/// One configured issuer: its keys and what a token must say.
pub struct Validator {
    /// Keys by `kid`; a key without one is under "".
    keys: HashMap<String, (DecodingKey, Option<Algorithm>)>,
    issuer: String,
    audience: String,
    username_claim: String,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("keys", &self.keys.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("username_claim", &self.username_claim)
            .finish()
    }
}

/// Why a token was refused (logged, never told to the client beyond `invalid_token`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("algorithm {0:?} not accepted")]
    Algorithm(String),
    #[error("no key {0:?} in the JWKS")]
    UnknownKey(String),
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("no string claim {0:?}")]
    NoUsername(String),
}

impl Validator {
    /// From a JWKS document (`{"keys": [...]}`); keys of kinds or algorithms we do not accept
    /// are skipped, and none left is an error.
    pub fn from_jwks(
        jwks: &str,
        issuer: &str,
        audience: &str,
        username_claim: &str,
    ) -> Result<Self, String> {
        let set: JwkSet = serde_json::from_str(jwks).map_err(|e| format!("JWKS: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let alg = match jwk.common.key_algorithm {
                Some(a) => match a.to_string().parse::<Algorithm>() {
                    Ok(a) if ALLOWED.contains(&a) => Some(a),
                    _ => continue,
                },
                None => None,
            };
            if matches!(
                jwk.algorithm,
                jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
            ) {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            keys.insert(jwk.common.key_id.clone().unwrap_or_default(), (key, alg));
        }
        if keys.is_empty() {
            return Err("the JWKS has no usable public key".into());
        }
        if issuer.is_empty() || audience.is_empty() {
            return Err("issuer and audience must be set".into());
        }
        Ok(Validator {
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
            username_claim: if username_claim.is_empty() {
                "email".into()
            } else {
                username_claim.into()
            },
        })
    }

    /// The configured issuer (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Check a token's signature, issuer, audience and times; returns the username claim.
    pub fn validate(&self, token: &str) -> Result<String, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            // `alg: none` (and any algorithm the crate does not know) ends here.
            if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::Json(_)) {
                TokenError::Algorithm("none or unknown".into())
            } else {
                TokenError::Malformed(e.to_string())
            }
        })?;
        if !ALLOWED.contains(&header.alg) {
            return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.clone().unwrap_or_default();
        // A token without `kid` may use the only key there is.
        let found = match self.keys.get(&kid) {
            None if header.kid.is_none() && self.keys.len() == 1 => self.keys.values().next(),
            k => k,
        };
        let (key, alg) = found.ok_or_else(|| TokenError::UnknownKey(kid.clone()))?;
        if alg.is_some_and(|a| a != header.alg) {
            return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
        }
        let mut v = Validation::new(header.alg);
        v.leeway = LEEWAY_SECS;
        v.validate_nbf = true;
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &v)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        data.claims
            .get(&self.username_claim)
            .and_then(|c| c.as_str())
            .map(str::to_owned)
            .ok_or_else(|| TokenError::NoUsername(self.username_claim.clone()))
    }
}

/// The outcome of checking one OAUTHBEARER/XOAUTH2 message.
#[derive(Debug)]
pub struct Resolved {
    /// The name to log: the token's username claim, else what the client called itself.
    pub shown: String,
    /// The account, if the token is valid, names a local account and the client's own name
    /// (authzid, `user=`) agrees.
    pub account: Option<mailkeep_store::User>,
}

/// Validate the token of `bearer` and find the account its username claim names: an account
/// of that name, or `name@domain` with `domain` a local domain and `name` an account.
pub async fn resolve(
    store: &dyn mailkeep_store::MailStore,
    validator: &Validator,
    bearer: &Bearer,
) -> Resolved {
    let claim = match validator.validate(&bearer.token) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::info!(error = %e, "OAuth token refused");
            None
        }
    };
    let account = match &claim {
        Some(c) => account_of(store, c).await,
        None => None,
    };
    let names_match = bearer.user.is_empty()
        || claim.as_deref() == Some(bearer.user.as_str())
        || account.as_ref().is_some_and(|u| u.name == bearer.user);
    Resolved {
        shown: claim.unwrap_or_else(|| bearer.user.clone()),
        account: account.filter(|_| names_match),
    }
}

async fn account_of(
    store: &dyn mailkeep_store::MailStore,
    claim: &str,
) -> Option<mailkeep_store::User> {
    if !crate::valid_user_name(claim) {
        return None;
    }
    if let Ok(Some(u)) = store.get_user(claim).await {
        return Some(u);
    }
    let (local, domain) = claim.rsplit_once('@')?;
    if local.is_empty() {
        return None;
    }
    match store.is_local_domain(&domain.to_ascii_lowercase()).await {
        Ok(true) => store.get_user(local).await.ok().flatten(),
        _ => None,
    }
}

/// What a client sent in an OAUTHBEARER or XOAUTH2 message.
#[derive(Debug, PartialEq, Eq)]
pub struct Bearer {
    /// OAUTHBEARER's `a=` authzid, XOAUTH2's `user=`; may be empty.
    pub user: String,
    pub token: String,
}

/// Parse an OAUTHBEARER client response (RFC 7628 §3.1):
/// `n,a=user@example.org,^Aauth=Bearer TOKEN^A^A` (`^A` is 0x01).
pub fn parse_oauthbearer(data: &[u8]) -> Option<Bearer> {
    let text = std::str::from_utf8(data).ok()?;
    let mut parts = text.split('\x01');
    let gs2 = parts.next()?;
    // gs2-header: cbind flag (only "n" or "y": no channel binding here), authzid, then empty.
    let mut g = gs2.splitn(3, ',');
    let flag = g.next()?;
    if flag != "n" && flag != "y" {
        return None;
    }
    let authzid = g.next()?;
    let user = match authzid.strip_prefix("a=") {
        Some(a) => a.replace("=2C", ",").replace("=3D", "="),
        None if authzid.is_empty() => String::new(),
        None => return None,
    };
    let token = kv_auth(parts)?;
    Some(Bearer { user, token })
}

/// Parse an XOAUTH2 client response: `user=NAME^Aauth=Bearer TOKEN^A^A`.
pub fn parse_xoauth2(data: &[u8]) -> Option<Bearer> {
    let text = std::str::from_utf8(data).ok()?;
    let mut parts = text.split('\x01');
    let user = parts.next()?.strip_prefix("user=")?.to_string();
    let token = kv_auth(parts)?;
    Some(Bearer { user, token })
}

fn kv_auth<'a>(parts: impl Iterator<Item = &'a str>) -> Option<String> {
    for kv in parts {
        if let Some(v) = kv.strip_prefix("auth=") {
            let (scheme, token) = v.split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
                return None;
            }
            return Some(token.trim().to_string());
        }
    }
    None
}

/// The RFC 7628 §3.2.2 error the server sends (base64'd, as a challenge) when a token is
/// refused; the client answers `AQ==` (a lone 0x01) and gets the tagged NO.
pub fn error_json(issuer: &str) -> String {
    serde_json::json!({
        "status": "invalid_token",
        "schemes": "bearer",
        "scope": "email",
        "openid-configuration": format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')),
    })
    .to_string()
}

#[cfg(test)]
mod tests;
