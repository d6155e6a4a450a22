//! STATUS (RFC 9051 §6.3.11; SIZE from RFC 8438, HIGHESTMODSEQ from RFC 7162, APPENDLIMIT from
//! RFC 7889). Also writes the `* STATUS` lines of LIST-STATUS (RFC 5819).

use mailkeep_proto::{MailboxName, StatusItem, write};
use mailkeep_store::{Mailbox, User};

use crate::error::{CmdError, CmdResult};
use crate::selected::SelectedMailbox;
use crate::{Inner, Outcome, authenticated, names};

pub(crate) async fn status(
    inner: &Inner,
    user: &User,
    _sel: Option<&mut SelectedMailbox>,
    raw: &MailboxName,
    items: &[StatusItem],
    out: &mut Vec<u8>,
) -> CmdResult<Outcome> {
    check_items(items)?;
    let mbox = authenticated::existing(inner, user, raw).await?;
    write_status(inner, &mbox, items, out).await?;
    // STATUS of the selected mailbox is allowed; the usual sync after the command tells the
    // client about the same changes in its own terms.
    Ok(Outcome::ok("Status completed."))
}

/// `* STATUS name (ITEM n ...)` in the order asked.
pub(crate) async fn write_status(
    inner: &Inner,
    mbox: &Mailbox,
    items: &[StatusItem],
    out: &mut Vec<u8>,
) -> CmdResult<()> {
    let st = inner.store.status(mbox.id).await?;
    out.extend_from_slice(b"* STATUS ");
    write::mailbox(out, &names::encode(&mbox.name, &inner.enabled));
    out.extend_from_slice(b" (");
    let mut first = true;
    for item in items {
        let text = match item {
            StatusItem::Messages => format!("MESSAGES {}", st.messages),
            StatusItem::UidNext => format!("UIDNEXT {}", st.uidnext),
            StatusItem::UidValidity => format!("UIDVALIDITY {}", st.uidvalidity),
            StatusItem::Unseen => format!("UNSEEN {}", st.unseen),
            StatusItem::Deleted => format!("DELETED {}", st.deleted),
            StatusItem::Size => format!("SIZE {}", st.size),
            StatusItem::Recent => format!("RECENT {}", st.recent),
            StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", st.highest_modseq),
            StatusItem::AppendLimit => format!("APPENDLIMIT {}", inner.config.max_message_size),
        };
        if !first {
            out.push(b' ');
        }
        first = false;
        out.extend_from_slice(text.as_bytes());
    }
    out.extend_from_slice(b")\r\n");
    Ok(())
}

/// A STATUS item list must not be empty (RFC 9051 §9 `status-att-list`).
pub(crate) fn check_items(items: &[StatusItem]) -> CmdResult<()> {
    if items.is_empty() {
        Err(CmdError::Bad("Empty status item list.".into()))
    } else {
        Ok(())
    }
}
