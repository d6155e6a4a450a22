//! CATENATE (RFC 4469): an APPEND (or REPLACE, RFC 8508 §4.2) message made of literals and
//! IMAP URLs (RFC 5092) of messages or parts the user can read, joined into one message
//! before it is stored.
//!
//! URLs are resolved only against the authenticated user's own mailboxes: the relative forms
//! of RFC 4469 §3 (`/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]`, or from
//! `;UID=n` on against the selected mailbox) and the absolute `imap://[user@]host/...` naming
//! this user (or no user), plus URLAUTH-authorized URLs (RFC 4467, RFC 4469 §5), which may
//! name another account's mailbox and are read only when they pass every check of URLFETCH
//! (`cmd::urlauth::resolve`). Anything else, a missing mailbox, message or part, or a
//! UIDVALIDITY that does not match, is `NO [BADURL url]`. The result meets the APPEND limit:
//! past it, `NO [TOOBIG]` as soon as the parts read so far exceed it.

use mailkeep_mime::PartTree;
use mailkeep_proto::write::Code;
use mailkeep_proto::{AppendMessage, CatenatePart, Command, CommandBody, FetchItem, MessageData};
use mailkeep_store::{MailStore, Mailbox, StoreError, User};

use crate::error::{CmdError, CmdResult};

/// Joins the parts of a CATENATE message; any other message is returned as it is. `selected`
/// is the base of `;UID=` URLs (RFC 4469 §3).
pub(crate) async fn resolve(
    store: &dyn MailStore,
    user: &User,
    selected: Option<&Mailbox>,
    m: AppendMessage,
    limit: u64,
) -> CmdResult<AppendMessage> {
    let MessageData::Catenate(parts) = m.data else {
        return Ok(m);
    };
    let mut out: Vec<u8> = Vec::new();
    for part in parts {
        match part {
            CatenatePart::Text(MessageData::Inline(b)) => out.extend_from_slice(&b),
            CatenatePart::Text(MessageData::Spooled { path, .. }) => {
                let b = tokio::fs::read(&path).await.map_err(|e| {
                    CmdError::Store(StoreError::Internal(format!("spooled literal: {e}")))
                })?;
                out.extend_from_slice(&b);
            }
            CatenatePart::Text(MessageData::Catenate(_)) => {
                return Err(CmdError::Bad("Nested CATENATE".into()));
            }
            CatenatePart::Url(url) => {
                let bytes = fetch_url(store, user, selected, &url, limit)
                    .await?
                    .ok_or_else(|| bad_url(&url))?;
                if out.len() as u64 + bytes.len() as u64 > limit {
                    return Err(too_big());
                }
                out.extend_from_slice(&bytes);
            }
        }
        if out.len() as u64 > limit {
            return Err(too_big());
        }
    }
    if out.is_empty() {
        return Err(CmdError::No(None, "Can't save an empty message.".into()));
    }
    Ok(AppendMessage {
        data: MessageData::Inline(out),
        ..m
    })
}

fn too_big() -> CmdError {
    CmdError::No(Some(Code::TooBig), "Message too large.".into())
}

/// `NO [BADURL "url"]` (RFC 4469 §4.1), the URL as sent.
fn bad_url(url: &[u8]) -> CmdError {
    let mut text = b"BADURL ".to_vec();
    mailkeep_proto::write::string(&mut text, url, true);
    CmdError::No(
        Some(Code::Other(String::from_utf8_lossy(&text).into_owned())),
        "CATENATE URL cannot be read.".into(),
    )
}

/// What a message URL names.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct MessageUrl {
    /// `None`: the selected mailbox (a URL starting at `;UID=`).
    pub mailbox: Option<String>,
    pub uidvalidity: Option<u32>,
    pub uid: u32,
    /// The section text as decoded (`1.2.MIME`, `HEADER.FIELDS (FROM)`), if any.
    pub section: Option<String>,
    pub partial: Option<(u64, Option<u64>)>,
    /// The user named in an absolute URL.
    pub user: Option<String>,
}

/// Parses an IMAP message URL (RFC 5092 `imessagepart`) in the forms CATENATE takes; `None`
/// if it is not one (or names URLAUTH, a search, a bad number).
pub(crate) fn parse_url(url: &str) -> Option<MessageUrl> {
    let mut u = MessageUrl::default();
    let mut rest = url;
    if let Some(after) = strip_prefix_ci(rest, "imap://") {
        // `iserver = [iuserinfo "@"] host [":" port]`; `iuserinfo = enc-user [iauth] / iauth`.
        let (server, path) = after.split_at(after.find('/')?);
        if let Some((info, _host)) = server.rsplit_once('@') {
            let user = info.split(';').next().unwrap_or_default();
            if !user.is_empty() {
                u.user = Some(percent_decode(user)?);
            }
        }
        rest = path;
    }
    if let Some(path) = rest.strip_prefix('/') {
        // `imailbox-ref = enc-mailbox [uidvalidity]`, then `iuid`.
        let end = path.find("/;")?;
        let (mbox, tail) = path.split_at(end);
        let (name, validity) = match find_ci(mbox, ";UIDVALIDITY=") {
            Some(i) => (&mbox[..i], Some(&mbox[i + ";UIDVALIDITY=".len()..])),
            None => (mbox, None),
        };
        if name.is_empty() || name.contains(';') || name.contains('?') {
            return None;
        }
        u.mailbox = Some(percent_decode(name)?);
        u.uidvalidity = match validity {
            Some(v) => Some(nz_number(v)?),
            None => None,
        };
        rest = &tail[1..];
    }
    // `iuid-only [isection] [ipartial]`: `;UID=n` `/;SECTION=s` `/;PARTIAL=o[.l]`.
    let mut items = rest.split("/;");
    let uid = strip_prefix_ci(items.next()?, ";UID=")?;
    u.uid = nz_number(uid)?;
    for item in items {
        if let Some(s) = strip_prefix_ci(item, "SECTION=") {
            if u.section.is_some() || u.partial.is_some() {
                return None;
            }
            u.section = Some(percent_decode(s)?);
        } else if let Some(p) = strip_prefix_ci(item, "PARTIAL=") {
            if u.partial.is_some() {
                return None;
            }
            let (o, l) = match p.split_once('.') {
                Some((o, l)) => (o, Some(l.parse::<u64>().ok().filter(|&l| l > 0)?)),
                None => (p, None),
            };
            if !o.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            u.partial = Some((o.parse().ok()?, l));
        } else {
            // URLAUTH (RFC 4467), EXPIRE and anything else: not for CATENATE here.
            return None;
        }
    }
    Some(u)
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn find_ci(s: &str, needle: &str) -> Option<usize> {
    s.to_ascii_uppercase().find(&needle.to_ascii_uppercase())
}

/// `nz-number`: no leading zero, fits in 32 bits.
fn nz_number(s: &str) -> Option<u32> {
    if s.is_empty() || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `%XX` escapes to bytes, the result UTF-8 (RFC 5092 §3.?: mailbox names are UTF-8).
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The bytes a URL names (`None`: BADURL): the message, or `BODY[section]`, cut to the partial.
async fn fetch_url(
    store: &dyn MailStore,
    user: &User,
    selected: Option<&Mailbox>,
    url: &[u8],
    limit: u64,
) -> CmdResult<Option<Vec<u8>>> {
    if std::str::from_utf8(url).is_ok_and(|t| t.to_ascii_uppercase().contains(";URLAUTH=")) {
        // A URLAUTH-authorized URL (RFC 4469 §5): read as URLFETCH would, for this user.
        return match super::urlauth::resolve(store, user, url).await? {
            Some((mailbox, u)) => read(store, &mailbox, &u, limit).await,
            None => Ok(None),
        };
    }
    let Some(u) = std::str::from_utf8(url).ok().and_then(parse_url) else {
        return Ok(None);
    };
    if u.user.as_deref().is_some_and(|n| n != user.name) {
        // Another account's mail is never read here.
        return Ok(None);
    }
    let mailbox = match &u.mailbox {
        // Only the user's own mailboxes are looked up.
        Some(name) => match store.get_mailbox(user.id, name).await? {
            Some(m) => m,
            None => return Ok(None),
        },
        None => match selected {
            Some(m) => m.clone(),
            None => return Ok(None),
        },
    };
    if u.uidvalidity.is_some_and(|v| v != mailbox.uidvalidity) {
        return Ok(None);
    }
    read(store, &mailbox, &u, limit).await
}

/// The bytes `u` names in `mailbox` (`None`: there are none): the message, or
/// `BODY[section]`, cut to the partial. `NO [TOOBIG]` for a whole message above `limit`.
pub(crate) async fn read(
    store: &dyn MailStore,
    mailbox: &Mailbox,
    u: &MessageUrl,
    limit: u64,
) -> CmdResult<Option<Vec<u8>>> {
    let section = match &u.section {
        None => None,
        Some(s) => match section_of(s) {
            Some(sec) => Some(sec),
            None => return Ok(None),
        },
    };
    let bytes = match store.message_bytes(mailbox.id, u.uid).await {
        Ok(b) => b,
        Err(StoreError::NoSuchMailbox) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if section.is_none() && u.partial.is_none() && bytes.len() as u64 > limit {
        return Err(too_big());
    }
    let content = match &section {
        None => bytes.to_vec(),
        Some(sec) => {
            let tree = if sec.part.is_empty() && sec.text.is_none() {
                None
            } else {
                let parsed = match store.parsed_info(mailbox.id, u.uid).await {
                    Ok(p) => p,
                    Err(StoreError::NoSuchMailbox) => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                PartTree::from_bytes(&parsed.parts)
            };
            match super::fetch::section::try_body_section(&bytes, tree.as_ref(), sec) {
                Some(c) => c,
                None => return Ok(None),
            }
        }
    };
    Ok(Some(match u.partial {
        None => content,
        Some((o, l)) => {
            let start = (o as usize).min(content.len());
            let end = l.map_or(content.len(), |l| {
                start.saturating_add(l as usize).min(content.len())
            });
            content[start..end].to_vec()
        }
    }))
}

/// A URL's section text as FETCH reads it (`BODY.PEEK[section]`), through the command parser.
pub(crate) fn section_of(text: &str) -> Option<mailkeep_proto::Section> {
    if text.bytes().any(|b| b == b'\r' || b == b'\n' || b == b']') {
        return None;
    }
    let line = format!("x FETCH 1 BODY.PEEK[{text}]\r\n");
    let frags = [mailkeep_proto::frame::Fragment::Line(line.into_bytes())];
    match mailkeep_proto::parse_command(&frags).ok()? {
        Command {
            body: CommandBody::Fetch { items, .. },
            ..
        } => match items.0.into_iter().next()? {
            FetchItem::BodySection { section, .. } => Some(section),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("/INBOX;UIDVALIDITY=785799047/;UID=113330/;section=1.5.9").unwrap();
        assert_eq!(
            u,
            MessageUrl {
                mailbox: Some("INBOX".into()),
                uidvalidity: Some(785_799_047),
                uid: 113_330,
                section: Some("1.5.9".into()),
                ..Default::default()
            }
        );
        let u = parse_url(";UID=20/;SECTION=HEADER.FIELDS%20(FROM)/;PARTIAL=0.10").unwrap();
        assert_eq!(u.mailbox, None);
        assert_eq!(u.section.as_deref(), Some("HEADER.FIELDS (FROM)"));
        assert_eq!(u.partial, Some((0, Some(10))));
        let u = parse_url("imap://alice;AUTH=*@example.org/Sent%20Items/;UID=7").unwrap();
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.mailbox.as_deref(), Some("Sent Items"));
        let u = parse_url("imap:///caf%C3%A9/;UID=1").unwrap();
        assert_eq!(u.mailbox.as_deref(), Some("caf\u{e9}"));
        for bad in [
            "",
            "/INBOX",
            "/INBOX/;UID=0",
            "/INBOX/;UID=01",
            "/INBOX/;UID=99999999999",
            "/INBOX;UIDVALIDITY=x/;UID=1",
            "/INBOX/;UID=1/;URLAUTH=anonymous:internal:0123",
            "/INBOX/;UID=1/;PARTIAL=1.0",
            "/INBOX?SUBJECT%20x",
            "/%ZZ/;UID=1",
            "/%FF/;UID=1",
            "http://example.org/",
        ] {
            assert_eq!(parse_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn sections() {
        assert!(section_of("1.MIME").is_some());
        assert!(section_of("HEADER").is_some());
        assert!(section_of("1]x").is_none());
        assert!(section_of("NOPE").is_none());
    }
}
