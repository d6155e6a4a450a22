//! The SCRAM keys an account keeps in the store, for the IMAP and POP3 sessions alike: the
//! ones an exchange checks a proof against, and the ones derived after a password login
//! (with the rehash of an imported hash, see [`scram::upgrade`]).

use mailkeep_store::{MailStore, ScramKeys, StoreError, User};

use crate::scram::{self, Hash, Secrets};

/// The account's keys for `hash`: stored ones, else (SCRAM-SHA-256 only) those of an imported
/// `{SCRAM-SHA-256}` hash. `None`: it has none (the exchange goes on with stand-in keys).
pub async fn load(
    store: &dyn MailStore,
    user: &User,
    hash: Hash,
) -> Result<Option<Secrets>, StoreError> {
    let stored = match hash {
        Hash::Sha256 => store.get_scram_keys(&user.name).await?,
        Hash::Sha1 => store.get_scram_sha1_keys(&user.name).await?,
    };
    match stored {
        Some(k)
            if k.stored_key.len() == hash.output_len()
                && k.server_key.len() == hash.output_len() =>
        {
            Ok(Some(Secrets {
                hash,
                iterations: k.iterations,
                salt: k.salt,
                stored_key: k.stored_key,
                server_key: k.server_key,
            }))
        }
        Some(_) => Ok(None),
        None if hash == Hash::Sha256 => Ok(crate::hashes::scram_secrets(&user.password_hash)),
        None => Ok(None),
    }
}

/// The store's form of `s`.
pub fn to_store(s: Secrets) -> ScramKeys {
    ScramKeys {
        iterations: s.iterations,
        salt: s.salt,
        stored_key: s.stored_key,
        server_key: s.server_key,
    }
}

/// After a successful PLAIN/LOGIN/USER-PASS login with `password`: an imported hash (not
/// argon2id) is replaced by an argon2id one, SCRAM-SHA-256 keys are derived if the account has
/// none (created before SCRAM support, imported, or just rehashed), and SCRAM-SHA-1 keys too
/// where `sha1` (`[auth] scram_sha1`) asks for them. Failures are logged; the login stands.
pub async fn after_password_login(
    store: &dyn MailStore,
    user: &User,
    password: &[u8],
    iterations: u32,
    sha1: bool,
) {
    let current = crate::hashes::is_current(&user.password_hash);
    let has_keys = current && matches!(store.get_scram_keys(&user.name).await, Ok(Some(_)));
    let want_sha1 =
        sha1 && !(current && matches!(store.get_scram_sha1_keys(&user.name).await, Ok(Some(_))));
    let up = scram::upgrade(
        &user.password_hash,
        has_keys,
        want_sha1,
        password,
        iterations,
    )
    .await;
    if let Some(h) = &up.new_hash {
        // Setting the hash drops the old SCRAM keys: the new ones follow.
        match store.set_password(&user.name, h).await {
            Ok(()) => tracing::info!(user = ?user.name, "password rehashed to argon2id"),
            Err(e) => return tracing::warn!(user = ?user.name, error = %e, "rehashing"),
        }
    }
    if let Some(s) = up.keys
        && let Err(e) = store.set_scram_keys(&user.name, Some(&to_store(s))).await
    {
        tracing::warn!(user = ?user.name, error = %e, "storing SCRAM keys");
    }
    if let Some(s) = up.sha1_keys
        && let Err(e) = store
            .set_scram_sha1_keys(&user.name, Some(&to_store(s)))
            .await
    {
        tracing::warn!(user = ?user.name, error = %e, "storing SCRAM-SHA-1 keys");
    }
}
