//! URLAUTH (RFC 4467): GENURLAUTH, RESETKEY and URLFETCH, with URLAUTH=BINARY (RFC 5524).
//!
//! A URLAUTH-authorized URL names a message (or part) of its owner's mailbox and ends in
//! `;URLAUTH=<access>:internal:<token>`. The token is HMAC-SHA-256 (hex, 64 digits) of the
//! "rump URL" (everything before `:internal:`, byte for byte as sent, RFC 4467 §6) under the
//! mailbox's access key (`MailStore::urlauth_key`, 32 random bytes, made by the first
//! GENURLAUTH, replaced or dropped by RESETKEY, gone with the mailbox).
//!
//! URLFETCH reads the owner's mail for whoever the access identifier admits (`anonymous`,
//! `authuser`: any logged-in account; `user+NAME`: NAME; `submit+NAME`: NAME, the only
//! submission entity for NAME that Mailkeep knows of) and only when every check passes: an
//! `imap://owner@host/mailbox/;UID=n...` URL, the INTERNAL mechanism, an owner, mailbox and
//! key that exist, a token that verifies, an `;EXPIRE=` not passed, a `;UIDVALIDITY=` that
//! matches. Any failure is the same `NIL` (RFC 4467 §7), and the HMAC is computed whether or
//! not the mailbox exists (with a random key when it does not, §6), so the answer says nothing
//! about what exists. CATENATE (RFC 4469) takes such URLs through [`resolve`] too.

use hmac::{Hmac, Mac};
use mailkeep_mime::PartTree;
use mailkeep_proto::write::{self, Code};
use mailkeep_proto::{MailboxName, Section, UrlFetchArg};
use mailkeep_store::{MailStore, Mailbox, StoreError, User};
use sha2::Sha256;

use super::catenate::{self, MessageUrl};
use super::fetch::section::{NUL_REPLACEMENT, literal_prefix};
use crate::error::{CmdError, CmdResult};
use crate::{Inner, Outcome};

/// Who may use a URL (RFC 4467 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Access {
    Anonymous,
    AuthUser,
    User(String),
    Submit(String),
}

/// A URLAUTH URL taken apart. `rump` is the URL up to and including the access identifier.
#[derive(Debug)]
pub(crate) struct AuthUrl<'a> {
    pub rump: &'a str,
    pub access: Access,
    /// `;EXPIRE=` as unix seconds.
    pub expire: Option<i64>,
    pub message: MessageUrl,
    /// `(mechanism, token)` of a full URL; `None` for a rump (GENURLAUTH's argument).
    pub verifier: Option<(&'a str, &'a str)>,
}

/// Why a URL is not one GENURLAUTH takes (its BAD text).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum UrlError {
    NotAuthUrl,
    NoAccess,
    BadAccess,
    NoOwner,
    BadExpire,
    NotMessage,
}

impl UrlError {
    fn text(&self) -> &'static str {
        match self {
            UrlError::NotAuthUrl => "URL must be an absolute imap:// URL",
            UrlError::NoAccess => "missing access identifier in supplied URL",
            UrlError::BadAccess => "invalid access identifier in supplied URL",
            UrlError::NoOwner => "missing owner username in supplied URL",
            UrlError::BadExpire => "invalid ;EXPIRE= date-time in supplied URL",
            UrlError::NotMessage => "URL must name a message or message part (;UID=)",
        }
    }
}

fn find_ci(s: &str, needle: &str) -> Option<usize> {
    s.as_bytes()
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// `enc-user = 1*achar`, percent-decoded; `None` if empty or holding a character a URL
/// component may not.
fn enc_user(s: &str) -> Option<String> {
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~%!$'()*+,&=".contains(&b))
    {
        return None;
    }
    let name = catenate::percent_decode(s)?;
    (!name.is_empty()).then_some(name)
}

fn access(s: &str) -> Option<Access> {
    let lower = s.to_ascii_lowercase();
    if lower == "anonymous" {
        Some(Access::Anonymous)
    } else if lower == "authuser" {
        Some(Access::AuthUser)
    } else if lower.starts_with("submit+") {
        enc_user(&s["submit+".len()..]).map(Access::Submit)
    } else if lower.starts_with("user+") {
        enc_user(&s["user+".len()..]).map(Access::User)
    } else {
        None
    }
}

/// Parses `authimapurlfull` (`full`) or `authimapurlrump` (RFC 4467 §9).
pub(crate) fn parse(url: &str, full: bool) -> Result<AuthUrl<'_>, UrlError> {
    let Some(after_scheme) = url
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("imap://"))
        .map(|_| &url[7..])
    else {
        return Err(UrlError::NotAuthUrl);
    };
    // `iserver` with its mandatory user (RFC 4467 §7 GENURLAUTH (2)) and a host.
    let server = &after_scheme[..after_scheme.find('/').ok_or(UrlError::NotAuthUrl)?];
    match server.rsplit_once('@') {
        Some((user, host)) if !user.is_empty() && !user.starts_with(';') => {
            if host.is_empty() {
                return Err(UrlError::NotAuthUrl);
            }
        }
        _ => return Err(UrlError::NoOwner),
    }
    let at = find_ci(url, ";URLAUTH=").ok_or(UrlError::NoAccess)?;
    let tail = &url[at + ";URLAUTH=".len()..];
    let (access_text, verifier) = if full {
        let mut it = tail.splitn(3, ':');
        let (Some(a), Some(m), Some(t)) = (it.next(), it.next(), it.next()) else {
            return Err(UrlError::NoAccess);
        };
        (a, Some((m, t)))
    } else {
        (tail, None)
    };
    let access = access(access_text).ok_or(UrlError::BadAccess)?;
    let rump = &url[..at + ";URLAUTH=".len() + access_text.len()];
    let before = &url[..at];
    let (base, expire) = match find_ci(before, ";EXPIRE=") {
        Some(e) => {
            let text = &before[e + ";EXPIRE=".len()..];
            let t = chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|_| UrlError::BadExpire)?
                .timestamp();
            (&before[..e], Some(t))
        }
        None => (before, None),
    };
    let message = catenate::parse_url(base).ok_or(UrlError::NotMessage)?;
    if message.user.is_none() || message.mailbox.is_none() {
        return Err(UrlError::NoOwner);
    }
    Ok(AuthUrl {
        rump,
        access,
        expire,
        message,
        verifier,
    })
}

/// The INTERNAL mechanism's token: HMAC-SHA-256 of the rump URL under the mailbox key, hex.
pub(crate) fn token(key: &[u8], rump: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(rump.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `token` (hex, any case) is the token of `rump` under `key`; compared in constant
/// time.
fn verifies(key: &[u8], rump: &str, token: &str) -> bool {
    let Ok(given) = hex::decode(token) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(rump.as_bytes());
    mac.verify_slice(&given).is_ok()
}

/// Whether the session of `me` may use a URL with this access identifier.
fn admits(access: &Access, me: &User) -> bool {
    match access {
        Access::Anonymous | Access::AuthUser => true,
        Access::User(name) | Access::Submit(name) => *name == me.name,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The mailbox and message a full URLAUTH URL names, if `me` may read it: `None` for any
/// failure at all (see the module comment). Only storage faults are errors.
pub(crate) async fn resolve(
    store: &dyn MailStore,
    me: &User,
    url: &[u8],
) -> CmdResult<Option<(Mailbox, MessageUrl)>> {
    let Some(url) = std::str::from_utf8(url).ok() else {
        return Ok(None);
    };
    let Ok(u) = parse(url, true) else {
        return Ok(None);
    };
    let Some((mechanism, token_text)) = u.verifier else {
        return Ok(None);
    };
    let owner_name = u.message.user.as_deref().unwrap_or_default();
    let mailbox_name = u.message.mailbox.as_deref().unwrap_or_default();
    // The same three look-ups whatever exists (ids of -1 find nothing), so the time taken
    // tells as little as the answer does.
    let owner = store.get_user(owner_name).await?;
    let owner_id = owner.as_ref().map_or(-1, |o| o.id);
    let mailbox = store.get_mailbox(owner_id, mailbox_name).await?;
    let key = store
        .urlauth_key(owner_id, mailbox.as_ref().map_or(-1, |m| m.id), false)
        .await?;
    // RFC 4467 §6: a token is computed even when there is no key, with a random one.
    let have_key = key.is_some();
    let key = key.unwrap_or_else(|| rand::random::<[u8; 32]>().to_vec());
    let verified = verifies(&key, u.rump, token_text)
        && have_key
        && mechanism.eq_ignore_ascii_case("INTERNAL")
        && token_text.len() >= 32;
    let Some(mailbox) = mailbox else {
        return Ok(None);
    };
    let allowed = verified
        && admits(&u.access, me)
        && u.expire.is_none_or(|t| now() <= t)
        && u.message
            .uidvalidity
            .is_none_or(|v| v == mailbox.uidvalidity);
    Ok(allowed.then_some((mailbox, u.message)))
}

// ---- GENURLAUTH ----

pub(crate) async fn genurlauth(
    inner: &Inner,
    me: &User,
    pairs: &[(Vec<u8>, String)],
    out: &mut Vec<u8>,
) -> CmdResult<Outcome> {
    let store = &*inner.store;
    let mut made = Vec::with_capacity(pairs.len());
    for (url, mechanism) in pairs {
        let text =
            std::str::from_utf8(url).map_err(|_| CmdError::Bad("URL is not UTF-8".into()))?;
        let u = parse(text, false).map_err(|e| CmdError::Bad(e.text().into()))?;
        if mechanism != "INTERNAL" {
            return Err(CmdError::No(
                None,
                format!("Unsupported URLAUTH mechanism: {mechanism}"),
            ));
        }
        // The key table is the logged-in user's own: no other owner (RFC 4467 §7 (2)).
        if u.message.user.as_deref() != Some(me.name.as_str()) {
            return Err(CmdError::Bad(
                "URL must name the logged-in user as its owner".into(),
            ));
        }
        let name = u.message.mailbox.as_deref().unwrap_or_default();
        let Some(mailbox) = store.get_mailbox(me.id, name).await? else {
            return Err(CmdError::Bad(
                "mailbox in supplied URL doesn't exist".into(),
            ));
        };
        let key = store
            .urlauth_key(me.id, mailbox.id, true)
            .await?
            .ok_or(CmdError::Store(StoreError::NoSuchMailbox))?;
        made.push(format!("{}:internal:{}", u.rump, token(&key, u.rump)));
    }
    out.extend_from_slice(b"* GENURLAUTH");
    for url in &made {
        out.push(b' ');
        write::string(out, url.as_bytes(), true);
    }
    out.extend_from_slice(b"\r\n");
    Ok(Outcome::ok("GENURLAUTH completed"))
}

// ---- RESETKEY ----

pub(crate) async fn resetkey(
    inner: &Inner,
    me: &User,
    mailbox: Option<&MailboxName>,
    mechanisms: &[String],
) -> CmdResult<Outcome> {
    if let Some(m) = mechanisms.iter().find(|m| *m != "INTERNAL") {
        return Err(CmdError::Bad(format!("Unsupported URLAUTH mechanism: {m}")));
    }
    let store = &*inner.store;
    let Some(raw) = mailbox else {
        store.reset_urlauth_keys(me.id, None).await?;
        return Ok(Outcome::ok("All keys removed"));
    };
    let name = crate::names::decode(raw, &inner.enabled)?;
    let Some(mb) = store.get_mailbox(me.id, &name).await? else {
        return Err(StoreError::NoSuchMailbox.into());
    };
    store.reset_urlauth_keys(me.id, Some(mb.id)).await?;
    Ok(Outcome::ok_code(
        Some(Code::Other("URLMECH INTERNAL".into())),
        "Key reset",
    ))
}

// ---- URLFETCH ----

/// What one URL of URLFETCH gives.
#[derive(Default)]
struct Fetched {
    /// BODY content (the plain form's nstring, RFC 4467).
    body: Option<Vec<u8>>,
    binary: Option<Vec<u8>>,
    structure: Option<Vec<u8>>,
}

impl Fetched {
    fn size(&self) -> u64 {
        [&self.body, &self.binary, &self.structure]
            .iter()
            .map(|v| v.as_ref().map_or(0, |v| v.len() as u64))
            .sum()
    }
}

pub(crate) async fn urlfetch(
    inner: &Inner,
    me: &User,
    args: &[UrlFetchArg],
    out: &mut Vec<u8>,
) -> CmdResult<Outcome> {
    let store = &*inner.store;
    // One command's data is held in `out` until it is written: at most one APPENDLIMIT (and
    // a little) of it, whatever the number of URLs.
    let budget = inner.config.max_message_size.saturating_add(1 << 20);
    let mut used = 0u64;
    out.extend_from_slice(b"* URLFETCH");
    for arg in args {
        let fetched = match resolve(store, me, &arg.url).await? {
            Some((mailbox, u)) => fetch(store, &mailbox, &u, arg).await?,
            None => None,
        };
        if let Some(f) = &fetched {
            used = used.saturating_add(f.size());
            if used > budget {
                out.extend_from_slice(b"\r\n");
                return Err(CmdError::No(
                    Some(Code::Limit),
                    "URLFETCH answer too large: ask for fewer URLs at a time".into(),
                ));
            }
        }
        out.push(b' ');
        if !arg.extended {
            write::string(out, &arg.url, true);
            out.push(b' ');
            match fetched.and_then(|f| f.body) {
                Some(mut data) => {
                    for b in data.iter_mut().filter(|b| **b == 0) {
                        *b = NUL_REPLACEMENT;
                    }
                    literal_prefix(out, data.len(), false);
                    out.extend_from_slice(&data);
                }
                None => out.extend_from_slice(b"NIL"),
            }
            continue;
        }
        // RFC 5524: `(url (BODYPARTSTRUCTURE body) (BINARY data) ...)` or `(url NIL)`.
        out.push(b'(');
        write::string(out, &arg.url, true);
        match fetched {
            None => out.extend_from_slice(b" NIL"),
            Some(f) => {
                if let Some(s) = &f.structure {
                    out.extend_from_slice(b" (BODYPARTSTRUCTURE ");
                    out.extend_from_slice(s);
                    out.push(b')');
                }
                for (name, data) in [("BINARY", &f.binary), ("BODY", &f.body)] {
                    if let Some(data) = data
                        && (arg.binary && name == "BINARY" || arg.body && name == "BODY")
                    {
                        out.extend_from_slice(format!(" ({name} ").as_bytes());
                        literal_prefix(out, data.len(), data.contains(&0));
                        out.extend_from_slice(data);
                        out.push(b')');
                    }
                }
            }
        }
        out.push(b')');
    }
    out.extend_from_slice(b"\r\n");
    Ok(Outcome::ok("URLFETCH completed"))
}

/// The data of one verified URL, as `arg` asks; `None` (NIL) if the message or part is not
/// there or cannot be given so (BINARY of an unknown encoding, BODYPARTSTRUCTURE of a header).
async fn fetch(
    store: &dyn MailStore,
    mailbox: &Mailbox,
    u: &MessageUrl,
    arg: &UrlFetchArg,
) -> CmdResult<Option<Fetched>> {
    let mut f = Fetched::default();
    let plain = !arg.extended;
    if plain || arg.body {
        match catenate::read(store, mailbox, u, u64::MAX).await? {
            Some(b) => f.body = Some(b),
            None => return Ok(None),
        }
    }
    if !(arg.binary || arg.bodypartstructure) {
        return Ok(Some(f));
    }
    // BINARY and BODYPARTSTRUCTURE name a part (or the message): no HEADER/TEXT/MIME.
    let section = match &u.section {
        None => Section::default(),
        Some(s) => match catenate::section_of(s) {
            Some(sec) if sec.text.is_none() => sec,
            _ => return Ok(None),
        },
    };
    let bytes = match store.message_bytes(mailbox.id, u.uid).await {
        Ok(b) => b,
        Err(StoreError::NoSuchMailbox) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let parsed = match store.parsed_info(mailbox.id, u.uid).await {
        Ok(p) => p,
        Err(StoreError::NoSuchMailbox) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let tree = PartTree::from_bytes(&parsed.parts);
    let Some(tree) = tree else {
        return Ok(None);
    };
    let decoded = if arg.binary {
        match mailkeep_mime::binary(&bytes, &tree, &section.part) {
            Ok(d) => Some(d),
            Err(_) => return Ok(None),
        }
    } else {
        None
    };
    if arg.bodypartstructure {
        let entity = entity(&bytes, &tree, &section.part, decoded.as_deref());
        let Some(entity) = entity else {
            return Ok(None);
        };
        f.structure = Some(mailkeep_mime::analyze(&entity).bodystructure);
    }
    if arg.binary {
        let d = decoded.unwrap_or_default();
        let (o, l) = u.partial.unwrap_or((0, None));
        let start = (o as usize).min(d.len());
        let end = l.map_or(d.len(), |l| start.saturating_add(l as usize).min(d.len()));
        f.binary = Some(d[start..end].to_vec());
    }
    Ok(Some(f))
}

/// The part as a message of its own (its MIME header, a blank line, its body), whose
/// BODYSTRUCTURE is the part's; with `decoded`, the body is that and the header says so (RFC
/// 5524: the structure describes the data as sent, `7BIT`/`8BIT`/`BINARY`).
fn entity(
    message: &[u8],
    tree: &PartTree,
    part: &[u32],
    decoded: Option<&[u8]>,
) -> Option<Vec<u8>> {
    use mailkeep_mime::SectionSpec;
    if let (true, Some(d)) = (part.is_empty(), decoded) {
        // BINARY[] is the message itself, its leaves decoded and their headers saying so.
        return Some(d.to_vec());
    }
    let (header, body) = if part.is_empty() {
        (
            mailkeep_mime::section(message, tree, part, SectionSpec::Header).ok()?,
            mailkeep_mime::section(message, tree, part, SectionSpec::Text).ok()?,
        )
    } else {
        (
            mailkeep_mime::section(message, tree, part, SectionSpec::Mime).ok()?,
            mailkeep_mime::section(message, tree, part, SectionSpec::Full).ok()?,
        )
    };
    let Some(decoded) = decoded else {
        let mut e = header;
        e.extend_from_slice(&body);
        return Some(e);
    };
    let cte = if decoded.contains(&0) {
        "binary"
    } else if decoded.is_ascii() {
        "7bit"
    } else {
        "8bit"
    };
    let mut e = Vec::with_capacity(header.len() + decoded.len() + 40);
    let text = header.strip_suffix(b"\r\n").unwrap_or(&header);
    let mut skipping = false;
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let continuation = line[0] == b' ' || line[0] == b'\t';
        if !continuation {
            skipping = line.len() > 26
                && line[..26].eq_ignore_ascii_case(b"content-transfer-encoding:")
                || line.len() == 26 && line.eq_ignore_ascii_case(b"content-transfer-encoding:");
        }
        if !skipping {
            e.extend_from_slice(line);
            e.extend_from_slice(b"\r\n");
        }
    }
    e.extend_from_slice(format!("Content-Transfer-Encoding: {cte}\r\n\r\n").as_bytes());
    e.extend_from_slice(decoded);
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred";

    #[test]
    fn rump_urls() {
        let u = parse(URL, false).unwrap();
        assert_eq!(u.rump, URL);
        assert_eq!(u.access, Access::Submit("fred".into()));
        assert_eq!(u.message.user.as_deref(), Some("joe"));
        assert_eq!(u.message.mailbox.as_deref(), Some("INBOX"));
        assert_eq!(u.message.uid, 20);
        assert_eq!(u.message.section.as_deref(), Some("1.2"));
        assert!(u.verifier.is_none());
        let u = parse(
            "imap://a%40b.org;AUTH=*@h/Sent;UIDVALIDITY=7/;UID=3;EXPIRE=2030-01-01T00:00:00Z;URLAUTH=user+bob",
            false,
        )
        .unwrap();
        assert_eq!(u.message.user.as_deref(), Some("a@b.org"));
        assert_eq!(u.message.uidvalidity, Some(7));
        assert_eq!(u.expire, Some(1_893_456_000));
        assert_eq!(u.access, Access::User("bob".into()));
        for a in ["anonymous", "AUTHUSER"] {
            let url = format!("imap://joe@h/INBOX/;UID=1;URLAUTH={a}");
            assert!(parse(&url, false).is_ok(), "{url}");
        }
        // RFC 4467 §7's BAD examples, and more.
        let cases = [
            (
                "imap://joe@example.com/INBOX/;uid=20/;section=1.2",
                UrlError::NoAccess,
            ),
            (
                "imap://example.com/Shared/;uid=20/;section=1.2;urlauth=submit+fred",
                UrlError::NoOwner,
            ),
            ("/INBOX/;UID=1;URLAUTH=anonymous", UrlError::NotAuthUrl),
            (
                "imap://joe@/INBOX/;UID=1;URLAUTH=anonymous",
                UrlError::NotAuthUrl,
            ),
            ("imap://joe@h/INBOX;URLAUTH=anonymous", UrlError::NotMessage),
            (
                "imap://joe@h/INBOX/;UID=1;URLAUTH=someone",
                UrlError::BadAccess,
            ),
            (
                "imap://joe@h/INBOX/;UID=1;URLAUTH=user+",
                UrlError::BadAccess,
            ),
            (
                "imap://joe@h/INBOX/;UID=1;URLAUTH=user+a:b",
                UrlError::BadAccess,
            ),
            (
                "imap://joe@h/INBOX/;UID=1;URLAUTH=user+a;x",
                UrlError::BadAccess,
            ),
            (
                "imap://joe@h/INBOX/;UID=1;EXPIRE=tomorrow;URLAUTH=authuser",
                UrlError::BadExpire,
            ),
            (
                "imap://joe@h/INBOX?SUBJECT%20x;URLAUTH=authuser",
                UrlError::NotMessage,
            ),
            ("imap://joe@h/;URLAUTH=authuser", UrlError::NotMessage),
        ];
        for (url, want) in cases {
            assert_eq!(parse(url, false).map(|_| ()).unwrap_err(), want, "{url}");
        }
    }

    #[test]
    fn full_urls() {
        let full = format!("{URL}:internal:91354a473744909de610943775f92038");
        let u = parse(&full, true).unwrap();
        assert_eq!(
            u.rump, URL,
            "the rump is the URL minus :mech:token, as sent"
        );
        assert_eq!(
            u.verifier,
            Some(("internal", "91354a473744909de610943775f92038"))
        );
        assert!(parse(URL, true).is_err(), "a rump is not a full URL");
        assert!(parse(&format!("{URL}:internal"), true).is_err());
    }

    #[test]
    fn tokens() {
        let key = [7u8; 32];
        let t = token(&key, URL);
        assert_eq!(t.len(), 64);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert!(verifies(&key, URL, &t));
        assert!(
            verifies(&key, URL, &t.to_ascii_uppercase()),
            "hex in any case"
        );
        assert!(!verifies(&[8u8; 32], URL, &t), "another key");
        assert!(
            !verifies(&key, &URL.replace("uid=20", "uid=21"), &t),
            "another URL"
        );
        assert!(
            !verifies(&key, &URL.to_ascii_uppercase(), &t),
            "no case folding"
        );
        assert!(!verifies(&key, URL, &t[..62]), "a shorter token");
        assert!(!verifies(&key, URL, "zz"), "not hex");
        // HMAC-SHA-256 (RFC 4231 test case 2).
        assert_eq!(
            token(b"Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn admission() {
        let me = User {
            id: 1,
            name: "bob".into(),
            password_hash: String::new(),
        };
        assert!(admits(&Access::Anonymous, &me));
        assert!(admits(&Access::AuthUser, &me));
        assert!(admits(&Access::User("bob".into()), &me));
        assert!(admits(&Access::Submit("bob".into()), &me));
        assert!(!admits(&Access::User("carol".into()), &me));
        assert!(!admits(&Access::Submit("carol".into()), &me));
    }

    #[test]
    fn entities() {
        let msg = b"Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain\r\nContent-Transfer-Encoding:\r\n base64\r\nX-A: 1\r\n\r\naGk=\r\n--b--\r\n";
        let analysis = mailkeep_mime::analyze(msg);
        // As sent: the part's MIME header and body.
        let e = entity(msg, &analysis.parts, &[1], None).unwrap();
        assert!(
            e.starts_with(b"Content-Type: text/plain\r\nContent-Transfer-Encoding:\r\n base64\r\n")
        );
        assert!(
            e.ends_with(b"\r\n\r\naGk="),
            "{}",
            String::from_utf8_lossy(&e)
        );
        // Decoded: the folded Content-Transfer-Encoding goes, the new one says what the data is.
        let e = entity(msg, &analysis.parts, &[1], Some(b"hi")).unwrap();
        assert_eq!(
            e,
            b"Content-Type: text/plain\r\nX-A: 1\r\nContent-Transfer-Encoding: 7bit\r\n\r\nhi"
        );
        let e = entity(msg, &analysis.parts, &[1], Some(b"h\xc3\xa9")).unwrap();
        assert!(e.windows(4).any(|w| w == b"8bit"));
        let e = entity(msg, &analysis.parts, &[1], Some(b"h\0")).unwrap();
        assert!(e.windows(6).any(|w| w == b"binary"));
        assert!(entity(msg, &analysis.parts, &[2], None).is_none());
    }
}
