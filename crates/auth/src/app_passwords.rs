//! App passwords: 16 random lowercase letters per device, shown once, stored as a keyed hash
//! with a label, creation and last-use time.
//!
//! # Why a keyed hash and not argon2
//! An app password is random, not chosen by a person: 16 letters of 26 are 75 bits, beyond
//! any guessing, online or offline, so a slow hash buys nothing. HMAC-SHA-256 with a random
//! secret of the installation (`server_secret("app-passwords")`) lets a login find the
//! matching password by one indexed lookup, whatever the number of app passwords an account
//! has (argon2 would cost one 20 ms hash per stored password per login), and a copy of the
//! table alone does not even allow checking a guess. Recovery codes (15 letters, 70 bits) are
//! hashed the same way under another purpose.

use hmac::{Hmac, Mac};
use mailkeep_store::{AppPassword, MailStore, StoreError, User};
use rand::Rng;
use sha2::Sha256;

/// Letters of an app password.
pub const LEN: usize = 16;
/// Letters of a recovery code (shown as three groups of five).
pub const RECOVERY_LEN: usize = 15;
/// The installation secret that keys the hashes.
pub const SECRET_NAME: &str = "app-passwords";
/// `last_used` is written at most this often per password (seconds).
pub const TOUCH_INTERVAL: i64 = 60;
/// Longest label.
pub const MAX_LABEL: usize = 100;

/// How often a session asks the store whether its credential still holds.
pub const REVOCATION_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// What a session logged in with, watched so that taking it away ends the session at its next
/// command (IMAP and POP3 alike), noticed within [`REVOCATION_CHECK_INTERVAL`]: a revoked app
/// password, or the main password once two-factor authentication is turned on.
#[derive(Debug, Clone)]
pub struct Watch {
    what: Watched,
    checked: std::time::Instant,
}

#[derive(Debug, Clone)]
enum Watched {
    /// An app password (its id).
    AppPassword(i64),
    /// The main password (PLAIN/LOGIN/USER-PASS or SCRAM) of this account.
    MainPassword(String),
}

impl Watch {
    /// The app password `id`.
    pub fn new(id: i64) -> Watch {
        Watch::of(Watched::AppPassword(id))
    }

    /// The main password of the account `name`: it stops holding when two-factor is turned on.
    pub fn main_password(name: &str) -> Watch {
        Watch::of(Watched::MainPassword(name.to_owned()))
    }

    fn of(what: Watched) -> Watch {
        Watch {
            what,
            checked: std::time::Instant::now(),
        }
    }

    /// False once the credential no longer logs in. A store fault is not a revocation: it is
    /// asked again at the next command.
    pub async fn still_valid(&mut self, store: &dyn MailStore) -> bool {
        if self.checked.elapsed() < REVOCATION_CHECK_INTERVAL {
            return true;
        }
        let holds = match &self.what {
            Watched::AppPassword(id) => store.app_password_exists(*id).await,
            Watched::MainPassword(name) => main_password_allowed(store, name).await,
        };
        match holds {
            Ok(false) => false,
            Ok(true) | Err(_) => {
                self.checked = std::time::Instant::now();
                true
            }
        }
    }

    /// Why the session ends, for the client (after [`Watch::still_valid`] said false).
    pub fn ended_because(&self) -> &'static str {
        match self.what {
            Watched::AppPassword(_) => "The app password of this session was revoked.",
            Watched::MainPassword(_) => {
                "Two-factor authentication is now on for this account: log in with an app password."
            }
        }
    }
}

fn random_letters(n: usize) -> String {
    let mut rng = rand::rngs::OsRng;
    (0..n).map(|_| rng.gen_range(b'a'..=b'z') as char).collect()
}

/// A new app password.
pub fn generate() -> String {
    random_letters(LEN)
}

/// A new recovery code, `abcde-fghij-klmno`.
pub fn generate_recovery_code() -> String {
    let s = random_letters(RECOVERY_LEN);
    format!("{}-{}-{}", &s[0..5], &s[5..10], &s[10..15])
}

/// The letters of what a client sent, lower-cased, without the spaces and dashes people copy
/// along, if they are exactly `len` ASCII letters.
pub fn normalize(input: &[u8], len: usize) -> Option<String> {
    let s: String = input
        .iter()
        .filter(|b| !matches!(b, b' ' | b'-'))
        .map(|b| b.to_ascii_lowercase() as char)
        .collect();
    (s.len() == len && s.bytes().all(|b| b.is_ascii_lowercase())).then_some(s)
}

/// HMAC-SHA-256 of `purpose`, a zero byte and `secret` under `key`.
pub fn keyed_hash(key: &[u8], purpose: &str, secret: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(purpose.as_bytes());
    mac.update(&[0]);
    mac.update(secret.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Why an app-password or 2FA change failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no such account {0:?}")]
    NoSuchUser(String),
    #[error("{0} already has an app password labelled {1:?}")]
    LabelExists(String, String),
    #[error("a label must be 1 to {MAX_LABEL} characters without control characters")]
    BadLabel,
    #[error("two-factor authentication is already on for {0}")]
    AlreadyEnabled(String),
    #[error("no two-factor enrollment is waiting for {0} (run `2fa enable` first)")]
    NotPending(String),
    #[error("wrong code")]
    WrongCode,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) fn unix_now() -> i64 {
    crate::totp::now() as i64
}

pub(crate) async fn key(store: &dyn MailStore) -> Result<Vec<u8>, StoreError> {
    store.server_secret(SECRET_NAME).await
}

/// Make an app password for the account `name`: returns the password (shown once) and its
/// record.
pub async fn add(
    store: &dyn MailStore,
    name: &str,
    label: &str,
) -> Result<(String, AppPassword), Error> {
    if label.is_empty() || label.chars().count() > MAX_LABEL || label.chars().any(char::is_control)
    {
        return Err(Error::BadLabel);
    }
    let password = generate();
    let hash = keyed_hash(&key(store).await?, "app", &password);
    match store.add_app_password(name, label, &hash, unix_now()).await {
        Ok(rec) => Ok((password, rec)),
        Err(StoreError::NoSuchUser) => Err(Error::NoSuchUser(name.into())),
        Err(StoreError::AlreadyExists) => Err(Error::LabelExists(name.into(), label.into())),
        Err(e) => Err(e.into()),
    }
}

/// The account's app passwords.
pub async fn list(store: &dyn MailStore, name: &str) -> Result<Vec<AppPassword>, Error> {
    if store.get_user(name).await?.is_none() {
        return Err(Error::NoSuchUser(name.into()));
    }
    Ok(store.list_app_passwords(name).await?)
}

/// Revoke the app password `label`: it stops working at once, for open sessions at their next
/// command.
pub async fn revoke(store: &dyn MailStore, name: &str, label: &str) -> Result<(), Error> {
    match store.revoke_app_password(name, label).await {
        Err(StoreError::NoSuchUser) => Err(Error::NoSuchUser(name.into())),
        r => Ok(r?),
    }
}

/// What a login's password turned out to be, before any argon2 hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginCheck {
    /// One of the account's app passwords (its id: the session watches it for revocation).
    AppPassword(i64),
    /// One of the account's recovery codes, used up now (only with two-factor on).
    RecoveryCode,
    /// Neither; two-factor is off, so the main password may still be checked.
    TryPassword,
    /// Neither, and two-factor is on: the main password does not log in.
    Refused,
}

/// Check `password` against the account's app passwords (and, with two-factor on, its recovery
/// codes): one HMAC and one indexed lookup each, never a slow hash. With two-factor on only
/// these log in over IMAP and POP3.
pub async fn check_login(
    store: &dyn MailStore,
    user: &User,
    password: &[u8],
) -> Result<LoginCheck, StoreError> {
    let two_factor = store
        .get_two_factor(&user.name)
        .await?
        .is_some_and(|t| t.enabled);
    let app = normalize(password, LEN);
    let recovery = if two_factor {
        normalize(password, RECOVERY_LEN)
    } else {
        None
    };
    if app.is_none() && recovery.is_none() {
        return Ok(if two_factor {
            LoginCheck::Refused
        } else {
            LoginCheck::TryPassword
        });
    }
    let key = key(store).await?;
    if let Some(p) = app
        && let Some(rec) = store
            .find_app_password(&user.name, &keyed_hash(&key, "app", &p))
            .await?
    {
        // No write at all while the last use is recent (the store checks again).
        let now = unix_now();
        if rec.last_used.is_none_or(|t| t <= now - TOUCH_INTERVAL) {
            store
                .touch_app_password(rec.id, now, TOUCH_INTERVAL)
                .await?;
        }
        return Ok(LoginCheck::AppPassword(rec.id));
    }
    if let Some(code) = recovery
        && store
            .use_recovery_code(&user.name, &keyed_hash(&key, "recovery", &code))
            .await?
    {
        let left = store.recovery_codes_left(&user.name).await.unwrap_or(0);
        tracing::warn!(
            target: "mailkeep::audit",
            event = %"recovery_code_used",
            user = ?user.name,
            left,
        );
        return Ok(LoginCheck::RecoveryCode);
    }
    Ok(if two_factor {
        LoginCheck::Refused
    } else {
        LoginCheck::TryPassword
    })
}

/// Whether an account may log in with its main password (also through SCRAM, whose keys come
/// from it): not once two-factor is on.
pub async fn main_password_allowed(store: &dyn MailStore, name: &str) -> Result<bool, StoreError> {
    Ok(!store.get_two_factor(name).await?.is_some_and(|t| t.enabled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let p = generate();
        assert_eq!(p.len(), LEN);
        assert!(p.bytes().all(|b| b.is_ascii_lowercase()));
        assert_ne!(p, generate());
        let r = generate_recovery_code();
        assert_eq!(r.len(), RECOVERY_LEN + 2);
        assert_eq!(
            normalize(r.as_bytes(), RECOVERY_LEN).unwrap().len(),
            RECOVERY_LEN
        );
    }

    #[test]
    fn normalizing() {
        assert_eq!(
            normalize(b"ABCD efgh-ijkl mnop", LEN).as_deref(),
            Some("abcdefghijklmnop")
        );
        assert_eq!(normalize(b"abcdefghijklmno", LEN), None);
        assert_eq!(normalize(b"abcdefghijklmno1", LEN), None);
        assert_eq!(normalize("abcdefghijklmnoé".as_bytes(), LEN), None);
    }

    #[test]
    fn keyed_hashes_differ_by_key_and_purpose() {
        let a = keyed_hash(b"k1", "app", "abc");
        assert_eq!(a.len(), 32);
        assert_eq!(a, keyed_hash(b"k1", "app", "abc"));
        assert_ne!(a, keyed_hash(b"k2", "app", "abc"));
        assert_ne!(a, keyed_hash(b"k1", "recovery", "abc"));
    }
}
