//! Two-factor accounts: enrolling a TOTP authenticator (`mailkeep user 2fa enable`, later a
//! web page), confirming it with a first code, recovery codes, status and disabling.
//!
//! What the second factor means for IMAP and POP3 (which have no place for a code): once it is
//! on, the main password no longer logs in there (nor through SCRAM); each device uses an app
//! password ([`crate::app_passwords`]). A recovery code logs in once in place of a password,
//! for a person who has lost their devices; the administrator's recovery is `2fa disable`.

use mailkeep_store::{MailStore, StoreError, TwoFactor};

use crate::app_passwords::{Error, generate_recovery_code, key, keyed_hash, normalize};
use crate::totp;

/// Recovery codes made at confirmation.
pub const RECOVERY_CODES: usize = 10;

/// A secret waiting for its first code.
#[derive(Debug, Clone)]
pub struct Enrollment {
    pub secret: Vec<u8>,
    /// `otpauth://totp/ISSUER:NAME?secret=...` for the authenticator app.
    pub uri: String,
}

/// Start enrolling `name`: a new secret, stored unconfirmed (the account logs in as before
/// until [`confirm`]). Refused while two-factor is on.
pub async fn begin(store: &dyn MailStore, name: &str, issuer: &str) -> Result<Enrollment, Error> {
    if store.get_user(name).await?.is_none() {
        return Err(Error::NoSuchUser(name.into()));
    }
    if store.get_two_factor(name).await?.is_some_and(|t| t.enabled) {
        return Err(Error::AlreadyEnabled(name.into()));
    }
    let secret = totp::generate_secret();
    let tf = TwoFactor {
        secret: secret.clone(),
        enabled: false,
        last_step: 0,
    };
    store.set_two_factor(name, Some(&tf), &[]).await?;
    Ok(Enrollment {
        uri: totp::otpauth_uri(issuer, name, &secret),
        secret,
    })
}

/// Confirm the enrollment with a code of the authenticator (now, or one step either side):
/// two-factor is on from here, and the recovery codes returned are shown once.
pub async fn confirm(
    store: &dyn MailStore,
    name: &str,
    code: &str,
    unix_secs: u64,
) -> Result<Vec<String>, Error> {
    let Some(tf) = store.get_two_factor(name).await? else {
        return Err(Error::NotPending(name.into()));
    };
    if tf.enabled {
        return Err(Error::AlreadyEnabled(name.into()));
    }
    let Some(step) = totp::verify(&tf.secret, code, unix_secs) else {
        return Err(Error::WrongCode);
    };
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| generate_recovery_code())
        .collect();
    let key = key(store).await?;
    let hashes: Vec<Vec<u8>> = codes
        .iter()
        .map(|c| {
            let n = normalize(c.as_bytes(), crate::app_passwords::RECOVERY_LEN)
                .expect("generated codes are well-formed");
            keyed_hash(&key, "recovery", &n)
        })
        .collect();
    let on = TwoFactor {
        secret: tf.secret,
        enabled: true,
        last_step: step as i64,
    };
    store.set_two_factor(name, Some(&on), &hashes).await?;
    Ok(codes)
}

/// Check a TOTP code of an account with two-factor on (for a later web page): each code works
/// once.
pub async fn verify_code(
    store: &dyn MailStore,
    name: &str,
    code: &str,
    unix_secs: u64,
) -> Result<bool, StoreError> {
    let Some(tf) = store.get_two_factor(name).await? else {
        return Ok(false);
    };
    if !tf.enabled {
        return Ok(false);
    }
    match totp::verify(&tf.secret, code, unix_secs) {
        Some(step) => store.use_totp_step(name, step as i64).await,
        None => Ok(false),
    }
}

/// Turn two-factor off (the secret and recovery codes go; app passwords stay). False if it was
/// not on (nor waiting).
pub async fn disable(store: &dyn MailStore, name: &str) -> Result<bool, Error> {
    match store.get_two_factor(name).await {
        Ok(None) => {
            if store.get_user(name).await?.is_none() {
                return Err(Error::NoSuchUser(name.into()));
            }
            Ok(false)
        }
        Ok(Some(_)) => {
            store.set_two_factor(name, None, &[]).await?;
            Ok(true)
        }
        Err(e) => Err(e.into()),
    }
}

/// What `2fa status` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub enabled: bool,
    /// Enrolled, waiting for the first code.
    pub pending: bool,
    pub recovery_codes_left: u32,
    pub app_passwords: usize,
}

pub async fn status(store: &dyn MailStore, name: &str) -> Result<Status, Error> {
    if store.get_user(name).await?.is_none() {
        return Err(Error::NoSuchUser(name.into()));
    }
    let tf = store.get_two_factor(name).await?;
    Ok(Status {
        enabled: tf.as_ref().is_some_and(|t| t.enabled),
        pending: tf.as_ref().is_some_and(|t| !t.enabled),
        recovery_codes_left: store.recovery_codes_left(name).await?,
        app_passwords: store.list_app_passwords(name).await?.len(),
    })
}
