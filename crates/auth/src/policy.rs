//! Password policy for passwords set by an administrator (`mailkeep user add`/`passwd`): a
//! minimum length and a refusal of common passwords. Hashes imported with `--hash` or from a
//! passwd-file are not checked (their passwords are unknown).
//!
//! The list of common passwords is the `passwords` crate's (`common-password` feature): about
//! 100,000 passwords from public breach lists, compiled into the binary. It holds the 10,000
//! most common ones and more.

/// Why a password is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the password is too short: at least {min} characters are required")]
    TooShort { min: usize },
    #[error("the password is one of the most common passwords")]
    Common,
}

/// Checks `password` against the policy: at least `min_length` characters (Unicode scalar
/// values, so accented letters count once), and not a common password (compared as typed and
/// in lower case).
pub fn check(password: &str, min_length: usize) -> Result<(), PolicyError> {
    if password.chars().count() < min_length {
        return Err(PolicyError::TooShort { min: min_length });
    }
    if is_common(password) {
        return Err(PolicyError::Common);
    }
    Ok(())
}

/// Is `password` in the compiled-in list of common passwords?
pub fn is_common(password: &str) -> bool {
    passwords::analyzer::is_common_password(password)
        || passwords::analyzer::is_common_password(password.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_and_common_list() {
        assert_eq!(check("short", 10), Err(PolicyError::TooShort { min: 10 }));
        // Ten characters, but known to every password guesser.
        for common in ["1234567890", "qwertyuiop", "password123", "Password123"] {
            assert_eq!(check(common, 10), Err(PolicyError::Common), "{common}");
        }
        assert_eq!(check("correct horse battery", 10), Ok(()));
        // Characters, not bytes.
        assert_eq!(
            check("ééééééééé", 10),
            Err(PolicyError::TooShort { min: 10 })
        );
        assert_eq!(check("", 0), Ok(()));
    }
}
