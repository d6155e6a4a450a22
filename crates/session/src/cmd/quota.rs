//! QUOTA (RFC 9208, and the RFC 2087 commands of the same syntax): GETQUOTAROOT, GETQUOTA,
//! SETQUOTA.
//!
//! Each account has one quota root, named `""` (as Dovecot and Cyrus call a user's own root),
//! covering all its mailboxes, with the resources STORAGE (in units of 1024 octets, RFC 9208
//! §5.1: the sum of RFC822.SIZE, rounded up) and MESSAGE. A `* QUOTA` line lists only the
//! resources that have a limit.
//!
//! SETQUOTA is for the quota administrator (`[quota] admin` of the configuration, `admin`
//! by default; see `Session::set_quota_admin`): everyone else gets `NO [NOPERM]`. The
//! administrator may also name another account's root by the account's name, in GETQUOTA
//! and SETQUOTA. As RFC 9208 §4.1.3 says, SETQUOTA replaces the root's limits: a resource left
//! out has no limit afterwards (whatever the configured default).

use mailkeep_proto::write::{self, Code};
use mailkeep_store::{Quota, QuotaSetting, User, UserId};

use crate::error::{CmdError, CmdResult};
use crate::{Inner, Outcome, names};

/// Is `user` the quota administrator?
fn is_admin(inner: &Inner, user: &User) -> bool {
    inner
        .quota_admin
        .as_deref()
        .is_some_and(|a| !a.is_empty() && a == user.name)
}

/// The account a quota root names for this user: `""` is their own; the administrator may
/// name any account.
async fn root_owner(inner: &Inner, user: &User, root: &[u8]) -> CmdResult<UserId> {
    if root.is_empty() {
        return Ok(user.id);
    }
    if is_admin(inner, user)
        && let Ok(name) = std::str::from_utf8(root)
        && let Some(other) = inner.store.get_user(name).await?
    {
        return Ok(other.id);
    }
    Err(CmdError::No(
        Some(Code::Nonexistent),
        "No such quota root.".into(),
    ))
}

/// `* QUOTA root (STORAGE used limit MESSAGE used limit)`, limited resources only.
fn write_quota(out: &mut Vec<u8>, root: &[u8], q: &Quota) {
    out.extend_from_slice(b"* QUOTA ");
    write::string(out, root, false);
    out.extend_from_slice(b" (");
    let mut parts = Vec::new();
    if let Some(limit) = q.limits.storage {
        parts.push(format!(
            "STORAGE {} {}",
            q.storage_used.div_ceil(1024),
            limit.div_ceil(1024)
        ));
    }
    if let Some(limit) = q.limits.messages {
        parts.push(format!("MESSAGE {} {limit}", q.messages_used));
    }
    out.extend_from_slice(parts.join(" ").as_bytes());
    out.extend_from_slice(b")\r\n");
}

/// GETQUOTAROOT (RFC 9208 §4.1.2): the mailbox need not exist (it would be under the
/// account's root once created).
pub(crate) async fn get_quota_root(
    inner: &Inner,
    user: &User,
    raw: &[u8],
    out: &mut Vec<u8>,
) -> CmdResult<Outcome> {
    let name = names::normalize_inbox(&names::decode(raw, &inner.enabled)?);
    let q = inner.store.quota(user.id).await?;
    out.extend_from_slice(b"* QUOTAROOT ");
    write::mailbox(out, &names::encode(&name, &inner.enabled));
    out.extend_from_slice(b" \"\"\r\n");
    write_quota(out, b"", &q);
    Ok(Outcome::ok("Getquotaroot completed."))
}

/// GETQUOTA (RFC 9208 §4.1.1).
pub(crate) async fn get_quota(
    inner: &Inner,
    user: &User,
    root: &[u8],
    out: &mut Vec<u8>,
) -> CmdResult<Outcome> {
    let owner = root_owner(inner, user, root).await?;
    let q = inner.store.quota(owner).await?;
    write_quota(out, root, &q);
    Ok(Outcome::ok("Getquota completed."))
}

/// SETQUOTA (RFC 9208 §4.1.3), for the administrator.
pub(crate) async fn set_quota(
    inner: &Inner,
    user: &User,
    root: &[u8],
    limits: &[(String, u64)],
    out: &mut Vec<u8>,
) -> CmdResult<Outcome> {
    if !is_admin(inner, user) {
        return Err(CmdError::No(
            Some(Code::NoPerm),
            "Only the quota administrator may set quotas.".into(),
        ));
    }
    let owner = root_owner(inner, user, root).await?;
    let (mut storage, mut messages) = (QuotaSetting::Unlimited, QuotaSetting::Unlimited);
    for (name, value) in limits {
        if *value == 0 {
            return Err(CmdError::No(
                Some(Code::Cannot),
                format!("A {name} limit of 0 is not kept: leave {name} out for no limit."),
            ));
        }
        match name.as_str() {
            // Units of 1024 octets; number64 times 1024 stays within u64.
            "STORAGE" => storage = QuotaSetting::Limit(value.saturating_mul(1024)),
            "MESSAGE" => messages = QuotaSetting::Limit(*value),
            _ => {
                return Err(CmdError::No(
                    Some(Code::Cannot),
                    format!("Only STORAGE and MESSAGE can be limited, not {name}."),
                ));
            }
        }
    }
    let name = if owner == user.id {
        user.name.clone()
    } else {
        String::from_utf8_lossy(root).into_owned()
    };
    inner
        .store
        .set_quota(&name, Some(storage), Some(messages))
        .await?;
    let q = inner.store.quota(owner).await?;
    write_quota(out, root, &q);
    Ok(Outcome::ok("Setquota completed."))
}
