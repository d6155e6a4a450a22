//! Selected-state commands: FETCH, SEARCH, STORE, COPY, MOVE, EXPUNGE (RFC 9051 §6.4).

pub(crate) mod copy_move;
pub(crate) mod expunge;
pub(crate) mod fetch;
pub(crate) mod search;
pub(crate) mod store_flags;
