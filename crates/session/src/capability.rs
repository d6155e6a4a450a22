//! The CAPABILITY list: what this session can offer now (RFC 9051 §6.1.1, §7.2.2).

use crate::SessionConfig;

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
/// works is advertised: QRESYNC and QUOTA are not (yet).
const AFTER_LOGIN: &[&str] = &[
    "NAMESPACE",
    "UNSELECT",
    "UIDPLUS",
    "ESEARCH",
    "SEARCHRES",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "MOVE",
    "CHILDREN",
    "SPECIAL-USE",
    "CREATE-SPECIAL-USE",
    "BINARY",
    "STATUS=SIZE",
    "CONDSTORE",
    "UTF8=ACCEPT",
    "MULTIAPPEND",
    "SORT",
    "SORT=DISPLAY",
    "ESORT",
    "THREAD=ORDEREDSUBJECT",
    "THREAD=REFERENCES",
    "THREAD=REFS",
];

/// Plaintext mechanisms may be used on this connection (TLS, or a trusted peer).
pub(crate) fn plaintext_allowed(config: &SessionConfig) -> bool {
    config.tls_active || config.plaintext_auth_without_tls
}

pub(crate) fn list(config: &SessionConfig, authenticated: bool) -> Vec<String> {
    list_with_binding(config, authenticated, false)
}

/// [`list`] for a connection that can (`channel_binding`) offer SCRAM-SHA-256-PLUS.
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

/// `* CAPABILITY ...` line body (without `* ` and CRLF).
pub(crate) fn line(config: &SessionConfig, authenticated: bool, channel_binding: bool) -> String {
    let caps = list_with_binding(config, authenticated, channel_binding);
    format!("CAPABILITY {}", caps.join(" "))
}

/// Is `name` something ENABLE may turn on here (RFC 5161 §3.1: only advertised extensions)?
pub(crate) fn enableable(name: &str) -> Option<&'static str> {
    ["IMAP4rev2", "CONDSTORE", "UTF8=ACCEPT"]
        .into_iter()
        .find(|c| c.eq_ignore_ascii_case(name))
}
