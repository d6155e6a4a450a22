//! The CAPABILITY list: what this session can offer now (RFC 9051 §6.1.1, §7.2.2).

use crate::{CompressState, Inner, SessionConfig};

/// Before login Dovecot shows a short list; clients ask again after login (the tagged OK of
/// LOGIN carries the full list, RFC 9051 §6.2.3).
const PRE_LOGIN: &[&str] = &[
    "IMAP4rev1",
    "IMAP4rev2",
    "LITERAL+",
    "SASL-IR",
    "ID",
    "ENABLE",
    "IDLE",
];

/// After login, [`PRE_LOGIN`] and these: extensions absorbed into IMAP4rev2 (RFC 9051
/// Appendix E) and the others Mailkeep has, listed one by one for IMAP4rev1 clients. Only what
/// works is advertised. QUOTASET: SETQUOTA works for the quota administrator (others get
/// `NO [NOPERM]`, see `cmd::quota`). OBJECTID, PREVIEW, SAVEDATE and REPLACE: `cmd::objectid`,
/// `cmd::replace`; CATENATE: `cmd::catenate`; URLAUTH, URLAUTH=BINARY: `cmd::urlauth`.
const AFTER_LOGIN: &[&str] = &[
    "NAMESPACE",
    "UNSELECT",
    "UIDPLUS",
    "ESEARCH",
    "SEARCHRES",
    "WITHIN",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "MOVE",
    "CHILDREN",
    "SPECIAL-USE",
    "CREATE-SPECIAL-USE",
    "BINARY",
    "STATUS=SIZE",
    "CONDSTORE",
    "QRESYNC",
    "UTF8=ACCEPT",
    "MULTIAPPEND",
    "SORT",
    "SORT=DISPLAY",
    "ESORT",
    "CONTEXT=SEARCH",
    "CONTEXT=SORT",
    "MULTISEARCH",
    "THREAD=ORDEREDSUBJECT",
    "THREAD=REFERENCES",
    "THREAD=REFS",
    "QUOTA",
    "QUOTA=RES-STORAGE",
    "QUOTA=RES-MESSAGE",
    "QUOTASET",
    "OBJECTID",
    "PREVIEW",
    "SAVEDATE",
    "REPLACE",
    "CATENATE",
    "UIDONLY",
    "PARTIAL",
    "URLAUTH",
    "URLAUTH=BINARY",
];

/// Plaintext mechanisms may be used on this connection (TLS, or a trusted peer).
pub(crate) fn plaintext_allowed(config: &SessionConfig) -> bool {
    config.tls_active || config.plaintext_auth_without_tls
}

/// The capabilities of a connection in this state; where it can (`channel_binding`),
/// SCRAM-SHA-256-PLUS too.
pub(crate) fn list_with_binding(
    config: &SessionConfig,
    authenticated: bool,
    channel_binding: bool,
) -> Vec<String> {
    let mut caps: Vec<String> = PRE_LOGIN.iter().map(|s| s.to_string()).collect();
    if authenticated {
        caps.extend(AFTER_LOGIN.iter().map(|s| s.to_string()));
        caps.push(format!("APPENDLIMIT={}", config.max_message_size));
    } else {
        if config.starttls_available && !config.tls_active {
            caps.push("STARTTLS".into());
        }
        // SCRAM sends no password: offered with or without TLS, -PLUS where we can bind.
        if channel_binding {
            caps.push("AUTH=SCRAM-SHA-256-PLUS".into());
        }
        caps.push("AUTH=SCRAM-SHA-256".into());
        if plaintext_allowed(config) {
            caps.push("AUTH=PLAIN".into());
            caps.push("AUTH=LOGIN".into());
        } else {
            caps.push("LOGINDISABLED".into());
        }
    }
    caps
}

/// [`list_with_binding`], with what depends on the connection: SCRAM-SHA-256-PLUS before login where the
/// TLS connection can bind (see `Inner::channel_binding`), COMPRESS=DEFLATE after login while
/// it can still be turned on (Dovecot also offers it only after login).
pub(crate) fn list_for(inner: &Inner, authenticated: bool) -> Vec<String> {
    let mut caps = list_with_binding(
        &inner.config,
        authenticated,
        inner.channel_binding.is_some(),
    );
    if !authenticated && inner.scram_sha1 {
        // After SCRAM-SHA-256 (clients take the first they know).
        let at = caps
            .iter()
            .position(|c| c == "AUTH=SCRAM-SHA-256")
            .map_or(caps.len(), |i| i + 1);
        let sha1 = mailkeep_auth::scram::advertised(inner.channel_binding.is_some(), true);
        let names = sha1
            .iter()
            .filter(|m| m.contains("SHA-1"))
            .map(|m| format!("AUTH={m}"));
        caps.splice(at..at, names);
    }
    // Bearer tokens cross the connection like passwords: only where PLAIN may.
    if !authenticated && inner.oauth.is_some() && plaintext_allowed(&inner.config) {
        caps.push("AUTH=OAUTHBEARER".into());
        caps.push("AUTH=XOAUTH2".into());
    }
    if authenticated && inner.compress == CompressState::Available {
        caps.push("COMPRESS=DEFLATE".into());
    }
    // SETQUOTA works only for the quota administrator; with none, nobody can set a quota.
    if inner.quota_admin.as_deref().is_none_or(str::is_empty) {
        caps.retain(|c| c != "QUOTASET");
    }
    caps
}

/// Is `name` something ENABLE may turn on here (RFC 5161 §3.1: only advertised extensions)?
pub(crate) fn enableable(name: &str) -> Option<&'static str> {
    [
        "IMAP4rev2",
        "CONDSTORE",
        "QRESYNC",
        "UTF8=ACCEPT",
        "UIDONLY",
    ]
    .into_iter()
    .find(|c| c.eq_ignore_ascii_case(name))
}
