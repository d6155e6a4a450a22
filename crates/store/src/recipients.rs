//! What an envelope address means: local domains, aliases and the account a message for it
//! goes to (LMTP RCPT TO). Backend-neutral: built on the [`MailStore`] lookups, so every
//! backend resolves addresses the same way.

use crate::{MailStore, Result, StoreError, User};

/// Where mail for an address goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// The account, and the `+detail` of the address if it had one (a folder name to try).
    Account { user: User, detail: Option<String> },
    /// The domain is local but nothing there has this name (`550 5.1.1`).
    NoSuchUser,
    /// The domain is not one of ours (`550 5.1.2`).
    NoSuchDomain,
}

/// A domain as stored: lower case, no `@`, no spaces or controls, at most 253 bytes.
pub fn normalize_domain(domain: &str) -> Result<String> {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty()
        || d.len() > 253
        || d.starts_with('.')
        || d.bytes()
            .any(|b| b == b'@' || b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(StoreError::Cannot(format!("invalid domain {domain:?}")));
    }
    Ok(d)
}

/// An alias address as stored: `local@domain` or the catch-all `@domain`, lower case.
pub fn normalize_alias(address: &str) -> Result<String> {
    let bad = || StoreError::Cannot(format!("invalid alias address {address:?}"));
    let (local, domain) = address.rsplit_once('@').ok_or_else(bad)?;
    if local.len() > 64
        || local
            .bytes()
            .any(|b| b == b'@' || b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(bad());
    }
    let domain = normalize_domain(domain).map_err(|_| bad())?;
    Ok(format!("{}@{domain}", local.to_ascii_lowercase()))
}

/// Resolves an envelope address (without `<>`), in this order:
/// 1. an account or alias named by the whole address (`alice@example.org`);
/// 2. the same with a `+detail` cut off (the separator is a setting; empty turns it off);
/// 3. if the domain is local: a plain account (`alice`), with or without the detail, then
///    the domain's catch-all alias `@example.org`;
/// 4. otherwise `NoSuchDomain` if the domain is not local, else `NoSuchUser`.
///
/// An address without `@` (RFC 5321 allows `<Postmaster>`) can only name a plain account.
/// Lookups ignore case; account names are tried as given and lower-cased.
pub async fn resolve<S: MailStore + ?Sized>(
    store: &S,
    address: &str,
    separator: &str,
) -> Result<Recipient> {
    let (local, domain) = match address.rsplit_once('@') {
        Some((l, d)) => match normalize_domain(d) {
            Ok(d) => (l, Some(d)),
            Err(_) => return Ok(Recipient::NoSuchDomain),
        },
        None => (address, None),
    };
    if local.is_empty() || local.len() > 64 {
        return Ok(Recipient::NoSuchUser);
    }
    let mut forms: Vec<(&str, Option<&str>)> = vec![(local, None)];
    if !separator.is_empty()
        && let Some((base, detail)) = local.split_once(separator)
        && !base.is_empty()
    {
        forms.push((base, Some(detail)));
    }
    let found = |user: User, detail: Option<&str>| Recipient::Account {
        user,
        detail: detail.filter(|d| !d.is_empty()).map(str::to_owned),
    };
    if let Some(domain) = &domain {
        for &(l, detail) in &forms {
            let full = format!("{l}@{domain}");
            if let Some(user) = account(store, &full).await? {
                return Ok(found(user, detail));
            }
            if let Some(target) = store.alias_target(&full.to_ascii_lowercase()).await? {
                return Ok(match store.get_user(&target).await? {
                    Some(user) => found(user, detail),
                    None => Recipient::NoSuchUser,
                });
            }
        }
        if !store.is_local_domain(domain).await? {
            return Ok(Recipient::NoSuchDomain);
        }
    }
    for &(l, detail) in &forms {
        if let Some(user) = account(store, l).await? {
            return Ok(found(user, detail));
        }
    }
    if let Some(domain) = &domain
        && let Some(target) = store.alias_target(&format!("@{domain}")).await?
        && let Some(user) = store.get_user(&target).await?
    {
        return Ok(found(user, None));
    }
    Ok(Recipient::NoSuchUser)
}

/// The account named `name`, or its lower-cased form.
async fn account<S: MailStore + ?Sized>(store: &S, name: &str) -> Result<Option<User>> {
    if let Some(u) = store.get_user(name).await? {
        return Ok(Some(u));
    }
    let lower = name.to_ascii_lowercase();
    if lower != name {
        return store.get_user(&lower).await;
    }
    Ok(None)
}
