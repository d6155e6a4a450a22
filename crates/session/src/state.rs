//! The connection state and its transitions (RFC 9051 §3).
//!
//! ```text
//!                +----------------------+
//!                |connection established|
//!                +----------------------+
//!                           ||
//!                           \/
//!         +--------------------------------------+
//!         |          server greeting             |
//!         +--------------------------------------+
//!                   || (1)       || (2)        || (3)
//!                   \/           ||            ||
//!         +-----------------+    ||            ||
//!         |Not Authenticated|    ||            ||
//!         +-----------------+    ||            ||
//!          || (7)   || (4)       ||            ||
//!          ||       \/           \/            ||
//!          ||     +----------------+           ||
//!          ||     | Authenticated  |<=++       ||
//!          ||     +----------------+  ||       ||
//!          ||       || (7)   || (5)   || (6)   ||
//!          ||       ||       \/       ||       ||
//!          ||       ||    +--------+  ||       ||
//!          ||       ||    |Selected|==++       ||
//!          ||       ||    +--------+           ||
//!          ||       ||       || (7)            ||
//!          \/       \/       \/                \/
//!         +--------------------------------------+
//!         |               Logout                 |
//!         +--------------------------------------+
//!                           ||
//!                           \/
//!             +-------------------------------+
//!             |both sides close the connection|
//!             +-------------------------------+
//!
//! (1) connection without pre-authentication (OK greeting)
//! (2) pre-authenticated connection (PREAUTH greeting; Mailkeep never does this)
//! (3) rejected connection (BYE greeting)
//! (4) successful LOGIN or AUTHENTICATE command
//! (5) successful SELECT or EXAMINE command
//! (6) CLOSE or UNSELECT command, unsolicited CLOSED response code, or failed SELECT/EXAMINE
//! (7) LOGOUT command, server shutdown, or connection closed
//! ```

use mailkeep_store::User;

use crate::selected::SelectedMailbox;

pub(crate) enum State {
    NotAuthenticated {
        auth_failures: u32,
    },
    Authenticated {
        user: User,
    },
    Selected {
        user: User,
        sel: Box<SelectedMailbox>,
    },
    Logout,
}

/// What a handler asks the state machine to do after it answered.
pub(crate) enum Transition {
    /// Stay where we are.
    None,
    /// (4) LOGIN / AUTHENTICATE succeeded.
    Authenticated(User),
    /// (5) SELECT / EXAMINE succeeded (from Authenticated or Selected).
    Select(Box<SelectedMailbox>),
    /// (6) CLOSE, UNSELECT, failed SELECT, or the selected mailbox went away.
    Unselect,
    /// (7)
    Logout,
}

impl State {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            State::NotAuthenticated { .. } => "not authenticated",
            State::Authenticated { .. } => "authenticated",
            State::Selected { .. } => "selected",
            State::Logout => "logout",
        }
    }

    pub(crate) fn user(&self) -> Option<&User> {
        match self {
            State::Authenticated { user } | State::Selected { user, .. } => Some(user),
            _ => None,
        }
    }

    /// The one place states change. A forbidden pair keeps the old state (a handler bug, logged).
    pub(crate) fn apply(&mut self, transition: Transition) {
        let old = std::mem::replace(self, State::Logout);
        *self = match (old, transition) {
            (old, Transition::None) => old,
            (_, Transition::Logout) => State::Logout,
            (State::NotAuthenticated { .. }, Transition::Authenticated(user)) => {
                State::Authenticated { user }
            }
            (
                State::Authenticated { user } | State::Selected { user, .. },
                Transition::Select(sel),
            ) => State::Selected { user, sel },
            (State::Selected { user, .. }, Transition::Unselect) => State::Authenticated { user },
            (old @ State::Authenticated { .. }, Transition::Unselect) => old,
            (old, _) => {
                tracing::error!(state = old.name(), "forbidden state transition ignored");
                old
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailkeep_store::Mailbox;
    use mailkeep_store::notify::Notifier;

    fn user() -> User {
        User {
            id: 1,
            name: "alice".into(),
            password_hash: String::new(),
        }
    }

    fn sel(notifier: &Notifier) -> Box<SelectedMailbox> {
        let mailbox = Mailbox {
            id: 7,
            name: "INBOX".into(),
            uidvalidity: 1,
            uidnext: 1,
            highest_modseq: 1,
            special_use: None,
            subscribed: true,
        };
        Box::new(SelectedMailbox::new(
            mailbox,
            false,
            vec![],
            Default::default(),
            false,
            notifier.subscribe(7),
        ))
    }

    #[test]
    fn transitions_follow_the_diagram() {
        let n = Notifier::default();
        let not_auth = || State::NotAuthenticated { auth_failures: 0 };
        // (state, transition, expected state name)
        let cases: Vec<(State, Transition, &str)> = vec![
            (not_auth(), Transition::None, "not authenticated"),
            (
                not_auth(),
                Transition::Authenticated(user()),
                "authenticated",
            ),
            // Forbidden pairs keep the old state.
            (not_auth(), Transition::Select(sel(&n)), "not authenticated"),
            (not_auth(), Transition::Unselect, "not authenticated"),
            (
                State::Authenticated { user: user() },
                Transition::Authenticated(user()),
                "authenticated",
            ),
            (
                State::Authenticated { user: user() },
                Transition::Select(sel(&n)),
                "selected",
            ),
            (
                State::Authenticated { user: user() },
                Transition::Unselect,
                "authenticated",
            ),
            (
                State::Selected {
                    user: user(),
                    sel: sel(&n),
                },
                Transition::Select(sel(&n)),
                "selected",
            ),
            (
                State::Selected {
                    user: user(),
                    sel: sel(&n),
                },
                Transition::Unselect,
                "authenticated",
            ),
            (
                State::Selected {
                    user: user(),
                    sel: sel(&n),
                },
                Transition::Logout,
                "logout",
            ),
            (not_auth(), Transition::Logout, "logout"),
            (State::Logout, Transition::Authenticated(user()), "logout"),
        ];
        for (i, (mut state, t, want)) in cases.into_iter().enumerate() {
            state.apply(t);
            assert_eq!(state.name(), want, "case {i}");
        }
    }
}
