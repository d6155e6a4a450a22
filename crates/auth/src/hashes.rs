//! Password hashes imported from Dovecot, kept as they are until the next successful login
//! rehashes them to argon2id.
//!
//! Stored forms: Mailkeep's own hashes are bare argon2id PHC strings (`$argon2id$...`);
//! imported ones keep Dovecot's scheme prefix: `{SHA512-CRYPT}$6$...`, `{SHA256-CRYPT}$5$...`,
//! `{BLF-CRYPT}$2y$...`, `{SSHA512}base64(sha512(pw||salt)||salt)`, `{SSHA256}...`,
//! `{ARGON2I}$argon2i$...`, `{SCRAM-SHA-256}iter,salt,storedkey,serverkey`. `{ARGON2ID}` is
//! stored without its prefix (it is already what we store). Scheme names are case-insensitive,
//! as in Dovecot; encoding suffixes (`.hex`, `.b64`) are not supported.

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256, Sha512};

use crate::scram::Secrets;

/// The schemes accepted by [`import`].
pub const SCHEMES: &[&str] = &[
    "ARGON2ID",
    "ARGON2I",
    "SHA512-CRYPT",
    "SHA256-CRYPT",
    "BLF-CRYPT",
    "SSHA512",
    "SSHA256",
    "SCRAM-SHA-256",
];

/// Splits `{SCHEME}rest` into the upper-cased scheme and the rest.
fn split_scheme(stored: &str) -> Option<(String, &str)> {
    let rest = stored.strip_prefix('{')?;
    let (scheme, body) = rest.split_once('}')?;
    Some((scheme.to_ascii_uppercase(), body))
}

/// Checks an imported `{SCHEME}hash` and gives the form to store. `Err`: a readable reason
/// (unknown scheme, malformed hash).
pub fn import(hash: &str) -> Result<String, String> {
    let hash = hash.trim();
    let Some((scheme, body)) = split_scheme(hash) else {
        return Err("the hash must start with {SCHEME}".into());
    };
    let ok = match scheme.as_str() {
        "ARGON2ID" | "ARGON2I" => {
            let want = scheme.to_ascii_lowercase();
            PasswordHash::new(body).is_ok_and(|p| p.algorithm.as_str() == want)
        }
        "SHA512-CRYPT" => crypt_ok(body, "$6$"),
        "SHA256-CRYPT" => crypt_ok(body, "$5$"),
        "BLF-CRYPT" => bcrypt_ok(body),
        "SSHA512" => B64.decode(body).is_ok_and(|d| d.len() > 64),
        "SSHA256" => B64.decode(body).is_ok_and(|d| d.len() > 32),
        "SCRAM-SHA-256" => Secrets::from_dovecot(body).is_some(),
        other => {
            return Err(format!(
                "unknown password scheme {{{other}}} (supported: {})",
                SCHEMES.join(", ")
            ));
        }
    };
    if !ok {
        return Err(format!("malformed {{{scheme}}} hash"));
    }
    Ok(if scheme == "ARGON2ID" {
        body.to_string()
    } else {
        format!("{{{scheme}}}{body}")
    })
}

/// `$6$[rounds=N$]salt$hash` (hash: 86 characters for SHA-512, 43 for SHA-256, in crypt's
/// base64 alphabet), checked without hashing.
fn crypt_ok(body: &str, prefix: &str) -> bool {
    let Some(rest) = body.strip_prefix(prefix) else {
        return false;
    };
    let rest = match rest.strip_prefix("rounds=") {
        Some(r) => match r.split_once('$') {
            Some((n, r)) if n.parse::<u32>().is_ok_and(|n| n <= 999_999_999) => r,
            _ => return false,
        },
        None => rest,
    };
    let Some((salt, hash)) = rest.split_once('$') else {
        return false;
    };
    let len = if prefix == "$6$" { 86 } else { 43 };
    salt.len() <= 16
        && hash.len() == len
        && hash
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'/')
}

/// `$2y$CC$` + 53 characters of bcrypt's base64 (checked without hashing: the cost could be
/// 2^31).
fn bcrypt_ok(body: &str) -> bool {
    let b = body.as_bytes();
    b.len() == 60
        && ["$2a$", "$2b$", "$2x$", "$2y$"]
            .iter()
            .any(|p| body.starts_with(p))
        && body[4..6]
            .parse::<u32>()
            .is_ok_and(|c| (4..=31).contains(&c))
        && b[6] == b'$'
        && b[7..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'/')
}

/// Is this stored hash the current kind (argon2id PHC)? Others are rehashed at the next login.
pub fn is_current(stored: &str) -> bool {
    stored.starts_with("$argon2id$")
}

/// The SCRAM-SHA-256 secrets held in a stored `{SCRAM-SHA-256}` hash.
pub fn scram_secrets(stored: &str) -> Option<Secrets> {
    let (scheme, body) = split_scheme(stored)?;
    (scheme == "SCRAM-SHA-256")
        .then(|| Secrets::from_dovecot(body))
        .flatten()
}

/// Checks a password against any stored form. A malformed or unknown one never matches.
pub fn verify(stored: &str, password: &[u8]) -> bool {
    let Some((scheme, body)) = split_scheme(stored) else {
        return verify_phc(stored, password);
    };
    match scheme.as_str() {
        "ARGON2ID" | "ARGON2I" => verify_phc(body, password),
        "SHA512-CRYPT" | "SHA256-CRYPT" => {
            let Ok(pw) = std::str::from_utf8(password) else {
                return false;
            };
            if scheme == "SHA512-CRYPT" {
                sha_crypt::sha512_check(pw, body).is_ok()
            } else {
                sha_crypt::sha256_check(pw, body).is_ok()
            }
        }
        "BLF-CRYPT" => bcrypt_ok(body) && bcrypt::verify(password, body).unwrap_or(false),
        "SSHA512" => verify_ssha::<Sha512>(body, password),
        "SSHA256" => verify_ssha::<Sha256>(body, password),
        "SCRAM-SHA-256" => {
            Secrets::from_dovecot(body).is_some_and(|s| s.matches_password(password))
        }
        _ => false,
    }
}

/// argon2 (any variant) PHC string, with the parameters it names.
fn verify_phc(phc: &str, password: &[u8]) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2::Argon2::default()
            .verify_password(password, &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// `base64(H(password || salt) || salt)`.
fn verify_ssha<D: Digest>(body: &str, password: &[u8]) -> bool {
    let Ok(data) = B64.decode(body) else {
        return false;
    };
    let n = <D as Digest>::output_size();
    if data.len() <= n {
        return false;
    }
    let (want, salt) = data.split_at(n);
    let mut h = D::new();
    h.update(password);
    h.update(salt);
    let got = h.finalize();
    got.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by Dovecot itself: `doveadm pw -s SCHEME -p pass`, one per scheme.
    const VECTORS: &[(&str, &str)] = &[
        (
            "ARGON2ID",
            "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$gV+YiGwHQUB5PaTQYRgu9A$O9khoKkLbrkp+JMUk3Y43OLlVfsqwyMHT3XZk5ir+tI",
        ),
        (
            "ARGON2I",
            "{ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$tTIg895UL8nlEmzEQeQKxw$LEBu43sO6W+pQ2jd9pbbM4OOV2axqTEE5p/5wnBGECk",
        ),
        (
            "SHA512-CRYPT",
            "{SHA512-CRYPT}$6$vPLI3v6cJzGhesE.$5lf6dWVWWcMNY.tEUFq.iHljxalrCeIR21DtN2noroo8ve1rv97E0RjS9MTgABRNodVPypn2.2SD7QeKhd.s61",
        ),
        (
            "SHA256-CRYPT",
            "{SHA256-CRYPT}$5$D.bytZfKTwa77PlD$k2VqC21iEjbFMG5qd66jmemFEYe8mlaWnA0NXLG2rX5",
        ),
        (
            "BLF-CRYPT",
            "{BLF-CRYPT}$2y$05$cdfDF8zBH3loAveVNboBxeovbbTL2NVQqnRfAmV5WuwTPvQSYMPt6",
        ),
        (
            "SSHA512",
            "{SSHA512}g/HqSBJIQJ/Ea61KJIteH0Hkhz1mDvZwKGuOMCEBabh4ZcmKDEk+Vbdobka+njrkIRHh3hCpxiXJAkRos4ymqwzBPc4=",
        ),
        (
            "SSHA256",
            "{SSHA256}kOiZZlj+XJqjI3wzjhJMM7oZlLQ4qTl6YZ7UnFc6NKgczgjE",
        ),
        (
            "SCRAM-SHA-256",
            "{SCRAM-SHA-256}4096,5j4XFKqSDphwKv4GWR3EVQ==,rk9zu2gIEwBWD6iPUDMjnvJUbrYBShk6kolF1Rrglos=,2pVpwCq1sNyiZGeNg6kY9YFO3GeHPLuAp5tn47MSB6k=",
        ),
    ];

    #[test]
    fn every_scheme_verifies_its_vector() {
        for (scheme, stored) in VECTORS {
            let kept = import(stored).unwrap_or_else(|e| panic!("{scheme}: {e}"));
            assert!(verify(&kept, b"pass"), "{scheme} accepts the password");
            assert!(!verify(&kept, b"Pass"), "{scheme} refuses another");
            assert!(!verify(&kept, b""), "{scheme} refuses empty");
            assert_eq!(
                is_current(&kept),
                *scheme == "ARGON2ID",
                "{scheme} is rehashed at login unless argon2id"
            );
        }
    }

    #[test]
    fn import_refuses_unknown_and_malformed() {
        let e = import("{MD5-CRYPT}$1$abc$def").unwrap_err();
        assert!(e.contains("unknown password scheme {MD5-CRYPT}"), "{e}");
        assert!(import("$6$abc$def").unwrap_err().contains("{SCHEME}"));
        for bad in [
            "{SHA512-CRYPT}$5$abc$def",
            "{SHA512-CRYPT}nope",
            "{BLF-CRYPT}$2y$99$abc",
            "{SSHA512}AAAA",
            "{SSHA256}!!!",
            "{ARGON2ID}$argon2i$v=19$m=65536,t=3,p=1$c29tZXNhbHQ$aGFzaA",
            "{SCRAM-SHA-256}4096,AAAA",
        ] {
            assert!(import(bad).is_err(), "{bad}");
        }
        // Scheme names are case-insensitive; the stored form is upper-case.
        let (_, sha) = VECTORS[2];
        let lower = sha.replace("SHA512-CRYPT", "sha512-crypt");
        assert_eq!(import(&lower).unwrap(), sha);
        // {ARGON2ID} is stored bare.
        assert!(import(VECTORS[0].1).unwrap().starts_with("$argon2id$"));
    }

    #[test]
    fn own_hashes_and_garbage() {
        let h = crate::hash_password("pass");
        assert!(verify(&h, b"pass") && is_current(&h));
        assert!(!verify("{NOPE}x", b"pass"));
        assert!(!verify("", b"pass"));
        assert!(scram_secrets(VECTORS[7].1).is_some());
        assert!(scram_secrets(&h).is_none());
    }
}
