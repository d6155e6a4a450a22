//! Accounts' secrets and SASL: argon2id password hashes (and those imported from Dovecot), the
//! PLAIN and LOGIN mechanisms, SCRAM-SHA-256(-PLUS) and the password policy.
//!
//! # Layout
//! - [`hash_password`] / [`verify_password`]: argon2id PHC strings (RFC 9106 parameters below).
//! - [`sasl`]: decoding of SASL PLAIN (RFC 4616) messages and the LOGIN exchange.
//! - [`scram`]: the SCRAM-SHA-256 and -PLUS server exchange (RFC 5802, 7677, 9266).
//! - [`hashes`]: Dovecot's password schemes, checked at import and at login.
//! - [`policy`]: minimum length and common passwords, for passwords an administrator sets.
//! - [`check_login`]: login checks on a small dedicated argon2 pool, with a cache of recent
//!   successful logins (`verify`).
//! - [`generate_password`]: random passwords for first start and `user add` without input.
//! - [`throttle`]: failed logins counted per source and per account across connections;
//!   [`attempt`] runs one login attempt through it and the hashing queue, and logs it.
//!
//! - [`totp`]: RFC 6238 codes; [`twofa`]: enrolling, confirming and disabling two-factor;
//!   [`app_passwords`]: per-device passwords and the login check that goes before argon2.
//!
//! No mail data here; users, their second factors and app passwords are rows in the store
//! (reached through the `MailStore` trait, so the CLI and a web page share these rules).
#![forbid(unsafe_code)]

pub mod app_passwords;
mod blocks;
pub mod hashes;
pub mod oauth;
pub mod policy;
pub mod sasl;
pub mod scram;
pub mod scram_keys;
pub mod throttle;
pub mod totp;
pub mod twofa;
mod verify;

pub use throttle::{Throttle, ThrottleConfig};
pub use verify::{CACHE_TTL, check_login, hash_time_sample};

use std::net::IpAddr;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng;

/// argon2id with 19 MiB of memory, 2 passes, 1 lane: OWASP's recommended minimum, a login
/// costs about 20 ms on one core, which keeps password guessing slow without making logins
/// of many devices at once expensive.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hash a password as an argon2id PHC string (`$argon2id$v=19$...`).
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing cannot fail with valid parameters")
        .to_string()
}

/// Check a password against a stored hash: an argon2id PHC string, or one imported from
/// Dovecot (`{SCHEME}...`, see [`hashes`]). A malformed hash never matches.
pub fn verify_password(hash: &str, password: &[u8]) -> bool {
    if hash.starts_with('{') {
        return hashes::verify(hash, password);
    }
    match PasswordHash::new(hash) {
        Ok(parsed) => hasher().verify_password(password, &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A random password of 20 characters from an alphabet without look-alikes (0/O, 1/l/I).
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// User names: `name` or `name@domain`; the part before `@` must not be empty and no control
/// characters or spaces are allowed anywhere.
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('@')
        && name.chars().all(|c| !c.is_control() && !c.is_whitespace())
}

/// One login attempt, as the IMAP and POP3 sessions see it.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// `imap` or `pop3` (the log's `proto`).
    pub proto: &'static str,
    pub ip: IpAddr,
    /// The name as the client typed it.
    pub user: &'a str,
    /// The account it names, if one exists.
    pub account: Option<&'a str>,
    /// That account's stored hash.
    pub phc: Option<&'a str>,
    pub password: &'a [u8],
    pub mechanism: &'static str,
    pub tls: bool,
}

/// What the session should answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Success,
    /// Answer as a wrong password, after the session's failure delay plus `extra_delay`.
    Failure {
        extra_delay: Duration,
    },
    /// Nothing was checked: every password-hashing slot is taken (a login storm). Answer a
    /// temporary failure (IMAP `NO [UNAVAILABLE]`, POP3 `-ERR [SYS/TEMP]`) so the client tries
    /// again rather than asking for the password anew. Says nothing about the account.
    Unavailable,
}

/// Check a login attempt against the throttle (if any), then the password on the fair hashing
/// queue, and write its one log line:
///
/// `event=auth_success|auth_failure|auth_blocked proto=imap ip=192.0.2.1 user="name"
/// reason=password|unknown_user|busy|blocked mechanism=PLAIN tls=false` (no `reason` on success).
///
/// A blocked attempt, and one refused because its source already has too many checks waiting
/// (`reason=busy`), costs no hash but sleeps for a recent hash's duration, and is answered as a
/// wrong password: the client cannot tell them apart, nor an unknown user from a known one.
pub async fn attempt(throttle: Option<&Throttle>, a: Attempt<'_>) -> Verdict {
    attempt_inner(throttle, a, None).await
}

/// A login attempt whose check was already made without a password hash (a SCRAM proof,
/// `ok`): counted by the throttle, delayed and logged exactly as [`attempt`] does, so a wrong
/// proof is a failed login like a wrong password (and a blocked source fails even with a
/// right one). `a.phc` and `a.password` are not used.
pub async fn attempt_checked(throttle: Option<&Throttle>, a: Attempt<'_>, ok: bool) -> Verdict {
    attempt_inner(throttle, a, Some(ok)).await
}

/// [`attempt`] after [`app_passwords::check_login`]: an app password or recovery code is a
/// success without any hash, two-factor's refusal of the main password a failure that waits
/// as long as a hash would (so timing does not tell which accounts have two-factor on), and
/// anything else the usual password check.
pub async fn attempt_after_check(
    throttle: Option<&Throttle>,
    a: Attempt<'_>,
    check: app_passwords::LoginCheck,
) -> Verdict {
    use app_passwords::LoginCheck;
    match check {
        LoginCheck::TryPassword => attempt(throttle, a).await,
        LoginCheck::AppPassword(_) | LoginCheck::RecoveryCode => {
            attempt_checked(throttle, a, true).await
        }
        LoginCheck::Refused => {
            tokio::time::sleep(hash_time_sample()).await;
            attempt_checked(throttle, a, false).await
        }
    }
}

async fn attempt_inner(
    throttle: Option<&Throttle>,
    a: Attempt<'_>,
    checked: Option<bool>,
) -> Verdict {
    let ip = a.ip.to_canonical();
    let key = a.account.unwrap_or(a.user);
    let trusted = throttle.is_none_or(|t| t.is_trusted(ip));
    let blocked = throttle.is_some_and(|t| t.begin(ip, key) == throttle::Verdict::Blocked);
    let result = if blocked {
        None
    } else if let Some(ok) = checked {
        Some(Ok(ok))
    } else {
        let source = Some(throttle::Source::of(ip));
        // Trusted sources have no per-source bound; sources with failures counted (beyond this
        // attempt) wait behind those without.
        let (bound, first) = match throttle {
            Some(t) if !trusted => (t.config().hash_queue_per_source, t.is_clean(ip)),
            _ => (usize::MAX, true),
        };
        Some(verify::check_login_queued(source, bound, first, a.user, a.phc, a.password).await)
    };
    let reason = match result {
        Some(Ok(true)) if a.account.is_some() => {
            if let Some(t) = throttle {
                t.succeeded(ip, key);
            }
            tracing::info!(
                event = %"auth_success",
                proto = %a.proto,
                ip = %ip,
                user = ?a.account.unwrap_or(a.user),
                mechanism = %a.mechanism,
                tls = a.tls,
            );
            return Verdict::Success;
        }
        Some(Ok(_)) if a.account.is_some() => "password",
        Some(Ok(_)) => "unknown_user",
        Some(Err(verify::Refused::Full)) => {
            tokio::time::sleep(hash_time_sample()).await;
            tracing::warn!(
                event = %"auth_unavailable",
                proto = %a.proto,
                ip = %ip,
                user = ?a.user,
                reason = %"queue_full",
                mechanism = %a.mechanism,
                tls = a.tls,
            );
            return Verdict::Unavailable;
        }
        Some(Err(verify::Refused::SourceBusy)) | None => {
            tokio::time::sleep(hash_time_sample()).await;
            if blocked { "blocked" } else { "busy" }
        }
    };
    let extra_delay = throttle.map_or(Duration::ZERO, |t| t.delay(ip, key));
    let event = if blocked {
        "auth_blocked"
    } else {
        "auth_failure"
    };
    tracing::warn!(
        event = %event,
        proto = %a.proto,
        ip = %ip,
        user = ?a.user,
        reason = %reason,
        mechanism = %a.mechanism,
        tls = a.tls,
    );
    Verdict::Failure { extra_delay }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash_password("correct horse");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, b"correct horse"));
        assert!(!verify_password(&h, b"wrong horse"));
        assert!(!verify_password("not a hash", b"correct horse"));
    }

    #[test]
    fn generated_passwords_differ() {
        let a = generate_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, generate_password());
    }

    #[test]
    fn user_names() {
        for ok in ["alice", "alice@example.org", "a.b-c_d"] {
            assert!(valid_user_name(ok), "{ok}");
        }
        for bad in ["", "@example.org", "a b", "a\tb", "a\u{0}"] {
            assert!(!valid_user_name(bad), "{bad:?}");
        }
    }
}
