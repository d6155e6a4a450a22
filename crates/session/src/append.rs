//! APPEND (RFC 9051 §6.3.12) with MULTIAPPEND (RFC 3502), UIDPLUS's APPENDUID (RFC 4315),
//! APPENDLIMIT (RFC 7889) and CATENATE (RFC 4469, `cmd::catenate`).

use std::sync::Arc;

use mailkeep_mime::Analysis;
use mailkeep_proto::write::{self, Code};
use mailkeep_proto::{AppendMessage, MailboxName, MessageData};
use mailkeep_store::{MessageBytes, NewMessage, ParsedInfo, User};

use crate::error::{CmdError, CmdResult};
use crate::selected::SelectedMailbox;
use crate::{Inner, Outcome, flags, names};

pub(crate) async fn append(
    inner: &Inner,
    user: &User,
    sel: Option<&mut SelectedMailbox>,
    raw: &MailboxName,
    messages: Vec<AppendMessage>,
    _out: &mut Vec<u8>,
) -> CmdResult<Outcome> {
    let limit = inner.config.max_message_size;
    if messages.iter().any(|m| m.data.len() > limit) {
        return Err(CmdError::No(
            Some(Code::TooBig),
            "Message too large.".into(),
        ));
    }
    let name = names::decode(raw, &inner.enabled)?;
    let mut new = Vec::with_capacity(messages.len());
    let selected = sel.as_deref().map(|s| &s.mailbox);
    // CATENATE (RFC 4469): the parts joined into one message, within the same limit. Joined
    // messages are held in memory until the store takes them: all those of one MULTIAPPEND
    // together may be no bigger than one message may ([LIMIT] past that).
    let mut joined = 0u64;
    for m in messages {
        let catenated = matches!(m.data, MessageData::Catenate(_));
        let m = crate::cmd::catenate::resolve(&*inner.store, user, selected, m, limit).await?;
        if catenated {
            joined += m.data.len();
            if joined > limit {
                return Err(CmdError::No(
                    Some(Code::Limit),
                    "Too much CATENATE data in one APPEND.".into(),
                ));
            }
        }
        new.push(prepare(m).await?);
    }
    // MULTIAPPEND: all messages in one store transaction, so either all are added or none.
    // RFC 9051 §6.3.12: a missing target is NO [TRYCREATE] so the client can CREATE and retry.
    // To the mailbox selected read-write, \Recent is claimed with the APPEND (one store
    // transaction, not a second one when the session catches up after the command).
    let appended = match sel.as_deref().filter(|s| !s.read_only) {
        Some(s) => {
            let selected = s.mailbox.id;
            inner
                .store
                .append_to_claiming(user.id, &name, new, selected)
                .await?
                .map(|a| (a.uidvalidity, a.uids, a.claimed))
        }
        None => inner
            .store
            .append_to(user.id, &name, new)
            .await?
            .map(|(v, uids)| (v, uids, Vec::new())),
    };
    let Some((uidvalidity, uids, claimed)) = appended else {
        return Err(CmdError::No(
            Some(Code::TryCreate),
            "Mailbox doesn't exist.".into(),
        ));
    };
    if let Some(s) = sel {
        s.claimed.extend(claimed);
    }
    let mut set = Vec::new();
    let mut sorted = uids.clone();
    sorted.sort_unstable();
    write::number_set(&mut set, &sorted);
    let code = Code::AppendUid {
        uidvalidity,
        uids: String::from_utf8_lossy(&set).into_owned(),
    };
    // If the target is the selected mailbox, the sync after the command sends EXISTS.
    Ok(Outcome::ok_code(Some(code), "Append completed."))
}

/// What the store keeps of a message's MIME analysis (ENVELOPE, BODYSTRUCTURE, parts, search text).
pub fn parsed_info(a: Analysis) -> ParsedInfo {
    ParsedInfo::from(a)
}

/// Messages up to this size are analyzed on the session's own thread.
const ANALYZE_INLINE_MAX: usize = 64 << 10;

/// Makes one message ready for the store. A spooled one is handed over as its file, as
/// received: the store reads, normalizes and analyzes it when its turn comes, so a
/// MULTIAPPEND never holds more than one big message in memory. One held in memory is
/// CRLF-normalized (binary parts of a literal8 base64-encoded first, RFC 3516 §4.4) and
/// analyzed here.
pub(crate) async fn prepare(m: AppendMessage) -> CmdResult<NewMessage> {
    if m.data.is_empty() {
        // RFC 9051 §6.3.12 leaves it open; an empty message is never what a client meant.
        return Err(CmdError::No(None, "Can't save an empty message.".into()));
    }
    let (data, parsed) = match m.data {
        // Joined by `cmd::catenate::resolve` before this.
        MessageData::Catenate(_) => {
            return Err(CmdError::Bad("CATENATE parts not joined".into()));
        }
        MessageData::Spooled { path, len } => (
            MessageBytes::Received {
                path,
                len,
                binary: m.binary,
            },
            ParsedInfo::default(),
        ),
        MessageData::Inline(raw) => {
            let small = raw.len() <= ANALYZE_INLINE_MAX;
            let binary = m.binary;
            let analyze = move || {
                let data = match mailkeep_mime::prepare_received(&raw, binary) {
                    std::borrow::Cow::Borrowed(_) => None,
                    std::borrow::Cow::Owned(v) => Some(v),
                }
                .unwrap_or(raw);
                let parsed = parsed_info(mailkeep_mime::analyze(&data));
                (data, parsed)
            };
            // Parsing a large message takes a while: keep it off the async workers. A small
            // one takes tens of microseconds, less than the two thread wake-ups of a blocking
            // task.
            let (data, parsed) = if small {
                analyze()
            } else {
                tokio::task::spawn_blocking(analyze).await.map_err(|e| {
                    CmdError::Store(mailkeep_store::StoreError::Internal(format!(
                        "analysis: {e}"
                    )))
                })?
            };
            (MessageBytes::Memory(Arc::new(data)), parsed)
        }
    };
    let (internal_date, internal_date_offset) = match m.internal_date {
        Some(d) => (d.unix, d.offset_minutes),
        None => {
            let now = chrono::Local::now();
            (now.timestamp(), now.offset().local_minus_utc() / 60)
        }
    };
    Ok(NewMessage {
        data,
        flags: flags::from_wire(&m.flags)?,
        internal_date,
        internal_date_offset,
        parsed,
    })
}
