//! The command parser: one function per ABNF rule.
//!
//! `parse_command` reads the tag and the command name, then hands the cursor to the rule for
//! that command (`command-any`, `command-auth`, `command-nonauth`, `command-select` of
//! RFC 9051 §9, plus RFC 3501 and the extensions listed in each submodule).
//!
//! - `cursor`: lines, literals and terminals (`atom`, `astring`, `number`...).
//! - `values`: `sequence-set`, flags, `date`, `date-time`.
//! - `mailbox`: SELECT/EXAMINE, CREATE, LIST/LSUB, STATUS, APPEND, ID, ENABLE.
//! - `fetch`: FETCH items and modifiers, STORE.
//! - `search`: search keys and SEARCH options.

mod cursor;
mod fetch;
mod mailbox;
mod search;
mod urlauth;
mod values;

#[cfg(test)]
mod tests;

use crate::frame::{Fragment, is_tag_char};
use crate::types::{Command, CommandBody};
use cursor::{Cursor, PResult, err};

/// Why a command could not be parsed. `tag` is set when the tag itself was readable, so the
/// server can answer `tag BAD ...`; otherwise it answers `* BAD ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub tag: Option<String>,
    pub message: String,
}

/// Parse one complete command (all its lines and literals).
pub fn parse_command(fragments: &[Fragment]) -> Result<Command, ParseError> {
    let untagged = |message: &str| ParseError {
        tag: None,
        message: message.to_string(),
    };
    let mut c = Cursor::new(fragments).map_err(|m| untagged(&m))?;
    let tag = tag(&mut c).map_err(|m| untagged(&m))?;
    let fail = |message: String| ParseError {
        tag: Some(tag.clone()),
        message,
    };
    if c.at_line_end() {
        return Err(fail("Missing command".into()));
    }
    c.sp().map_err(&fail)?;
    let name = c
        .atom()
        .map_err(|_| fail("Missing or invalid command name".into()))?;
    let name = String::from_utf8_lossy(name).to_ascii_uppercase();
    let body = match command_body(&mut c, &name)
        .and_then(|body| c.finish().map(|()| body).map_err(Invalid))
    {
        Ok(body) => body,
        // Dovecot's wording.
        Err(Unknown) => {
            return Err(fail(format!(
                "Error in IMAP command {name}: Unknown command"
            )));
        }
        Err(Invalid(m)) => return Err(fail(format!("Error in IMAP command {name}: {m}"))),
    };
    Ok(Command { tag, body })
}

/// `tag = 1*<any ASTRING-CHAR except "+">`.
fn tag(c: &mut Cursor<'_>) -> PResult<String> {
    let start = c.rest();
    let mut n = 0;
    while c.peek().is_some_and(is_tag_char) {
        c.bump();
        n += 1;
    }
    // A tag is only "readable" if it is followed by SP or the line end (like `frame::peek_tag`).
    if n == 0 || !(c.peek() == Some(b' ') || c.at_line_end()) {
        return err("Error in IMAP command received by server.");
    }
    Ok(String::from_utf8_lossy(&start[..n]).into_owned())
}

/// Failure inside a command: the name was not a command, or its arguments were invalid.
enum BodyError {
    Unknown,
    Invalid(String),
}
use BodyError::{Invalid, Unknown};

impl From<String> for BodyError {
    fn from(m: String) -> Self {
        Invalid(m)
    }
}

/// `command-any / command-auth / command-nonauth / command-select` after `tag SP`.
fn command_body(c: &mut Cursor<'_>, name: &str) -> Result<CommandBody, BodyError> {
    use CommandBody as B;
    let body = match name {
        "CAPABILITY" => B::Capability,
        "NOOP" => B::Noop,
        "LOGOUT" => B::Logout,
        "STARTTLS" => B::StartTls,
        "NAMESPACE" => B::Namespace,
        "IDLE" => B::Idle,
        "COMPRESS" => {
            // RFC 4978 §5: `compress = "COMPRESS" SP algorithm`, `algorithm = atom`.
            c.sp()?;
            B::Compress(String::from_utf8_lossy(c.atom()?).to_ascii_uppercase())
        }
        "CHECK" => B::Check,
        "CLOSE" => B::Close,
        "UNSELECT" => B::Unselect,
        "EXPUNGE" => B::Expunge,
        "ID" => mailbox::id(c)?,
        "ENABLE" => mailbox::enable(c)?,
        "AUTHENTICATE" => authenticate(c)?,
        "LOGIN" => {
            c.sp()?;
            let username = c.astring()?;
            c.sp()?;
            B::Login {
                username,
                password: c.astring()?,
            }
        }
        "SELECT" => {
            let (mailbox, params) = mailbox::select(c)?;
            B::Select { mailbox, params }
        }
        "EXAMINE" => {
            let (mailbox, params) = mailbox::select(c)?;
            B::Examine { mailbox, params }
        }
        "CREATE" => mailbox::create(c)?,
        "DELETE" => B::Delete(sp_mailbox(c)?),
        "RENAME" => {
            let from = sp_mailbox(c)?;
            B::Rename {
                from,
                to: sp_mailbox(c)?,
            }
        }
        "SUBSCRIBE" => B::Subscribe(sp_mailbox(c)?),
        "UNSUBSCRIBE" => B::Unsubscribe(sp_mailbox(c)?),
        "LIST" => mailbox::list(c)?,
        "LSUB" => {
            let reference = sp_mailbox(c)?;
            c.sp()?;
            B::Lsub {
                reference,
                pattern: c.list_mailbox()?,
            }
        }
        "STATUS" => mailbox::status(c)?,
        "APPEND" => mailbox::append(c)?,
        "GETQUOTA" => {
            c.sp()?;
            B::GetQuota(c.astring()?)
        }
        "GETQUOTAROOT" => B::GetQuotaRoot(sp_mailbox(c)?),
        "SETQUOTA" => {
            // `setquota = "SETQUOTA" SP quota-root-name SP setquota-list` (RFC 9208 §7;
            // RFC 2087 has the same form). Resource names are atoms, limits number64.
            c.sp()?;
            let root = c.astring()?;
            c.sp()?;
            let limits = c.paren_list(true, 16, |c| {
                let name = String::from_utf8_lossy(c.atom()?).to_ascii_uppercase();
                c.sp()?;
                Ok((name, c.number64()?))
            })?;
            B::SetQuota { root, limits }
        }
        "SEARCH" => search::search(c, false)?,
        "SORT" => search::sort(c, false)?,
        "ESEARCH" => search::esearch(c)?,
        "CANCELUPDATE" => search::cancel_update(c)?,
        "THREAD" => search::thread(c, false)?,
        "FETCH" => fetch::fetch(c, false)?,
        "STORE" => fetch::store(c, false)?,
        "COPY" | "MOVE" => copy_move(c, name == "MOVE", false)?,
        "REPLACE" => replace(c, false)?,
        "UID" => uid(c)?,
        "GENURLAUTH" => urlauth::genurlauth(c)?,
        "RESETKEY" => urlauth::resetkey(c)?,
        "URLFETCH" => urlauth::urlfetch(c)?,
        _ => return Err(Unknown),
    };
    Ok(body)
}

/// `uid = "UID" SP ("COPY" / "MOVE" / "FETCH" / "SEARCH" / "STORE" / uid-expunge)`.
fn uid(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let sub = c.atom()?.to_ascii_uppercase();
    match &sub[..] {
        b"FETCH" => fetch::fetch(c, true),
        b"SEARCH" => search::search(c, true),
        b"SORT" => search::sort(c, true),
        b"THREAD" => search::thread(c, true),
        b"STORE" => fetch::store(c, true),
        b"COPY" => copy_move(c, false, true),
        b"MOVE" => copy_move(c, true, true),
        b"REPLACE" => replace(c, true),
        b"EXPUNGE" => {
            c.sp()?;
            Ok(CommandBody::UidExpunge(values::sequence_set(c)?))
        }
        _ => err("Unknown UID command"),
    }
}

/// `copy = "COPY" SP sequence-set SP mailbox`, `move = "MOVE" SP sequence-set SP mailbox`.
fn copy_move(c: &mut Cursor<'_>, is_move: bool, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let set = values::sequence_set(c)?;
    let mailbox = sp_mailbox(c)?;
    Ok(if is_move {
        CommandBody::Move { uid, set, mailbox }
    } else {
        CommandBody::Copy { uid, set, mailbox }
    })
}

/// RFC 8508: `replace = "REPLACE" SP seq-number SP mailbox append-message`;
/// `uid-replace = "UID" SP "REPLACE" SP uniqueid SP mailbox append-message`.
fn replace(c: &mut Cursor<'_>, uid: bool) -> PResult<CommandBody> {
    c.sp()?;
    let number = if !uid && c.eat(b'*') {
        crate::types::SeqNum::Largest
    } else {
        crate::types::SeqNum::Value(c.nz_number()?)
    };
    let mailbox = sp_mailbox(c)?;
    let message = mailbox::append_message(c)?;
    Ok(CommandBody::Replace {
        uid,
        number,
        mailbox,
        message,
    })
}

/// `SP mailbox` (`mailbox = "INBOX" / astring`; INBOX is returned as sent).
fn sp_mailbox(c: &mut Cursor<'_>) -> PResult<Vec<u8>> {
    c.sp()?;
    c.astring()
}

/// `authenticate = "AUTHENTICATE" SP auth-type [SP initial-resp]`
/// (`initial-resp = (base64 / "=")`, RFC 4959).
fn authenticate(c: &mut Cursor<'_>) -> PResult<CommandBody> {
    c.sp()?;
    let mechanism = String::from_utf8_lossy(c.atom()?).to_ascii_uppercase();
    let mut initial_response = None;
    if !c.at_line_end() {
        c.sp()?;
        let start = c.rest();
        let mut n = 0;
        while c
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
        {
            c.bump();
            n += 1;
        }
        let resp = &start[..n];
        let pad = resp.iter().rev().take_while(|&&b| b == b'=').count();
        let body_ok = !resp[..n - pad].contains(&b'=');
        let valid = resp == b"=" || (n > 0 && body_ok && pad <= 2 && n % 4 == 0);
        if !valid {
            return err("Invalid base64 in initial response");
        }
        initial_response = Some(resp.to_vec());
    }
    Ok(CommandBody::Authenticate {
        mechanism,
        initial_response,
    })
}
