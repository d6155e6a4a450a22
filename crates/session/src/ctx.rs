//! What a selected-state command handler works with.

use std::sync::Arc;

use mailkeep_store::{MailStore, User};

use crate::enabled::Enabled;
use crate::selected::SelectedMailbox;

/// The selected-state context: handlers that only make sense with a mailbox selected take this,
/// so the type system says where they are legal.
pub(crate) struct Ctx<'a> {
    pub store: &'a Arc<dyn MailStore>,
    pub enabled: &'a Enabled,
    /// Sort orders and thread answers kept between commands (see [`crate::orders`]).
    pub orders: &'a crate::orders::OrderCache,
    pub user: &'a User,
    pub sel: &'a mut SelectedMailbox,
}
