//! Moving mail in and out of a Mailkeep store: import from Maildir and mbox, export, migration
//! from another IMAP server. Every long-running transfer reports through [`progress`].

pub mod export;
pub mod maildir;
pub mod mbox;
pub mod migrate;
pub mod progress;
pub mod target;
