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
    sel: Option<&mut SelectedMailbox>,
    raw: &MailboxName,
    items: &[StatusItem],
    out: &mut Vec<u8>,
) -> CmdResult<Outcome> {
    check_items(items)?;
    let mbox = authenticated::existing(inner, user, raw).await?;
    write_status(inner, sel.as_deref(), &mbox, items, out).await?;
    // STATUS of the selected mailbox is allowed; the usual sync after the command tells the
    // client about the same changes in its own terms.
    Ok(Outcome::ok("Status completed."))
}

/// `* STATUS name (ITEM n ...)` in the order asked. `sel` is the selected mailbox, if any.
pub(crate) async fn write_status(
    inner: &Inner,
    sel: Option<&SelectedMailbox>,
    mbox: &Mailbox,
    items: &[StatusItem],
    out: &mut Vec<u8>,
) -> CmdResult<()> {
    let mut st = inner.store.status(mbox.id).await?;
    if let Some(sel) = sel.filter(|s| s.mailbox.id == mbox.id) {
        // The store counts only unclaimed recent messages; the ones this session claimed at
        // SELECT are recent too, as its own `* n RECENT` said (RFC 3501 §2.3.2, §6.3.10).
        st.recent += u32::try_from(sel.recent.len()).unwrap_or(u32::MAX);
    }
    // DELETED-STORAGE (RFC 9208 §4.1.4) is summed from the message list, only when asked.
    let mut deleted_storage = 0u64;
    if items.contains(&StatusItem::DeletedStorage) && st.deleted > 0 {
        deleted_storage = inner
            .store
            .messages(mbox.id)
            .await?
            .iter()
            .filter(|m| m.flags.system & mailkeep_store::flags::DELETED != 0)
            .map(|m| m.size)
            .sum();
    }
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
            StatusItem::DeletedStorage => format!("DELETED-STORAGE {deleted_storage}"),
            StatusItem::Size => format!("SIZE {}", st.size),
            StatusItem::Recent => format!("RECENT {}", st.recent),
            StatusItem::HighestModSeq => format!("HIGHESTMODSEQ {}", st.highest_modseq),
            StatusItem::AppendLimit => format!("APPENDLIMIT {}", inner.config.max_message_size),
            StatusItem::MailboxId => {
                format!("MAILBOXID ({})", mailkeep_store::mailbox_object_id(mbox))
            }
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
