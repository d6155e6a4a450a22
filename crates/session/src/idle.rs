//! IDLE (RFC 2177, RFC 9051 §6.3.13): the session answers `+ idling`, the server waits for
//! DONE while [`changed`] wakes it for each change of the selected mailbox.

use mailkeep_store::User;

use crate::ctx::Ctx;
use crate::error::CmdResult;
use crate::selected::SelectedMailbox;
use crate::state::State;
use crate::{Flow, Inner, Outcome, sync};

pub(crate) async fn start(
    inner: &mut Inner,
    user: &User,
    sel: Option<&mut SelectedMailbox>,
    tag: &str,
    out: &mut Vec<u8>,
) -> CmdResult<Outcome> {
    if let Some(sel) = sel {
        // Mark what is known now, then catch up: a change after this point wakes `changed`.
        sel.subscription.receiver.borrow_and_update();
        let mut ctx = Ctx {
            store: &inner.store,
            enabled: &inner.enabled,
            orders: &inner.orders,
            user,
            sel,
        };
        sync::sync(&mut ctx, out, true).await?;
    }
    out.extend_from_slice(b"+ idling\r\n");
    inner.idle_tag = Some(tag.to_string());
    Ok(Outcome::pending(Flow::Idle))
}

/// Resolves when the selected mailbox changed; never without a selected mailbox.
/// `watch::Receiver::changed` is cancel-safe, so this may sit in a `select!`.
pub(crate) async fn changed(state: &mut State) {
    match state {
        State::Selected { sel, .. } => {
            if sel.subscription.receiver.changed().await.is_err() {
                // The sender is gone (cannot happen while we hold the subscription): never wake.
                std::future::pending::<()>().await;
            }
        }
        _ => std::future::pending::<()>().await,
    }
}
