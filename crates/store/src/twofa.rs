//! Second factors and app passwords of an account (what the store keeps; the rules are in
//! `mailkeep_auth::twofa` and `mailkeep_auth::app_passwords`).

/// An account's TOTP secret (RFC 6238). `enabled` is false between `2fa enable` writing it and
/// the first code confirming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwoFactor {
    pub secret: Vec<u8>,
    pub enabled: bool,
    /// The last TOTP step accepted (a code works once); 0 at first.
    pub last_step: i64,
}

/// One app password, without its secret (only a keyed hash of it is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPassword {
    pub id: i64,
    pub label: String,
    /// Unix seconds.
    pub created: i64,
    /// Unix seconds of the last login with it (updated at most once a minute).
    pub last_used: Option<i64>,
}
