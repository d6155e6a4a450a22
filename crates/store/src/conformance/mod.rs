//! The store conformance suite: every backend runs [`run_all`] against a fresh store.
//!
//! Each part creates its own users (names prefixed by the part), so the parts can run on one
//! store in any order. Failures panic with a message naming the broken rule.

use std::sync::Arc;

use crate::{
    Flags, MailStore, MailboxId, MailboxStatus, MessageBytes, NewMessage, ParsedInfo, UserId, flags,
};

mod accounts;
mod copy;
mod domains;
mod flags_bulk;
mod import;
mod messages;
mod objects;
mod quota;
mod search;
mod secrets;
mod sortkeys;
mod sortkeys_delivery;
mod tombstones;
mod twofa;
mod urlauth;

pub use accounts::{delete_user, mailboxes, subscriptions, users};
pub use copy::copy_support;
pub use domains::domains_and_aliases;
pub use flags_bulk::flags_bulk;
pub use import::import;
pub use messages::{append, bulk, copy_and_move, dedup, expunge, flag_changes, received, streams};
pub use objects::objects;
pub use quota::quota;
pub use search::{notifications, recent, search};
pub use secrets::{scram_keys, scram_sha1_keys};
pub use sortkeys::sort_keys;
pub use sortkeys_delivery::delivered_sort_keys;
pub use tombstones::tombstones;
pub use twofa::two_factor;
pub use urlauth::urlauth_keys;

/// Runs every part of the suite.
pub async fn run_all(store: Arc<dyn MailStore>) {
    users(&*store).await;
    assert_clean(&*store, "users").await;
    mailboxes(&*store).await;
    assert_clean(&*store, "mailboxes").await;
    subscriptions(&*store).await;
    assert_clean(&*store, "subscriptions").await;
    append(&*store).await;
    assert_clean(&*store, "append").await;
    received(&*store).await;
    assert_clean(&*store, "received").await;
    flag_changes(&*store).await;
    assert_clean(&*store, "flag_changes").await;
    flags_bulk(&*store).await;
    assert_clean(&*store, "flags_bulk").await;
    expunge(&*store).await;
    assert_clean(&*store, "expunge").await;
    copy_and_move(&*store).await;
    assert_clean(&*store, "copy_and_move").await;
    dedup(&*store).await;
    assert_clean(&*store, "dedup").await;
    bulk(&*store).await;
    assert_clean(&*store, "bulk").await;
    streams(&*store).await;
    assert_clean(&*store, "streams").await;
    search(&*store).await;
    assert_clean(&*store, "search").await;
    recent(&*store).await;
    assert_clean(&*store, "recent").await;
    notifications(&*store).await;
    assert_clean(&*store, "notifications").await;
    delete_user(&*store).await;
    assert_clean(&*store, "delete_user").await;
    domains_and_aliases(&*store).await;
    assert_clean(&*store, "domains_and_aliases").await;
    quota(&*store).await;
    assert_clean(&*store, "quota").await;
    tombstones(&*store).await;
    assert_clean(&*store, "tombstones").await;
    scram_keys(&*store).await;
    assert_clean(&*store, "scram_keys").await;
    scram_sha1_keys(&*store).await;
    assert_clean(&*store, "scram_sha1_keys").await;
    two_factor(&*store).await;
    assert_clean(&*store, "two_factor").await;
    objects(&*store).await;
    assert_clean(&*store, "objects").await;
    import(&*store).await;
    assert_clean(&*store, "import").await;
    sort_keys(&*store).await;
    assert_clean(&*store, "sort_keys").await;
    urlauth_keys(&*store).await;
    assert_clean(&*store, "urlauth_keys").await;
    copy_support(&*store).await;
    assert_clean(&*store, "copy_support").await;
    delivered_sort_keys(&*store).await;
    assert_clean(&*store, "delivered_sort_keys").await;
}

/// `check()` finds nothing, and every mailbox's STATUS agrees with its message list.
async fn assert_clean(store: &dyn MailStore, after: &str) {
    let problems = store.check().await.expect("check");
    assert!(problems.is_empty(), "check() after {after}: {problems:?}");
    for user in store.list_users().await.expect("list_users") {
        for mb in store.list_mailboxes(user.id).await.expect("list_mailboxes") {
            let st = store.status(mb.id).await.expect("status");
            let msgs = store.messages(mb.id).await.expect("messages");
            let count = |bit: u32, set: bool| {
                msgs.iter()
                    .filter(|m| (m.flags.system & bit != 0) == set)
                    .count() as u32
            };
            let want = MailboxStatus {
                messages: msgs.len() as u32,
                unseen: count(flags::SEEN, false),
                deleted: count(flags::DELETED, true),
                size: msgs.iter().map(|m| m.size).sum(),
                uidnext: st.uidnext,
                uidvalidity: mb.uidvalidity,
                highest_modseq: st.highest_modseq,
                recent: st.recent,
            };
            let ctx = format!("after {after}: {}/{}", user.name, mb.name);
            assert_eq!(st, want, "STATUS vs messages {ctx}");
            assert!(
                msgs.iter().all(|m| m.uid < st.uidnext),
                "UIDs below UIDNEXT {ctx}"
            );
            let top = msgs.iter().map(|m| m.modseq).max().unwrap_or(0);
            assert!(
                top <= st.highest_modseq,
                "modseqs within HIGHESTMODSEQ {ctx}"
            );
            assert!(st.recent <= st.messages, "recent within messages {ctx}");
        }
    }
}

/// A message with a `Subject`, a body and matching parsed info.
pub fn message(subject: &str, body: &str) -> NewMessage {
    let data = format!("Subject: {subject}\r\nFrom: a@example.org\r\n\r\n{body}\r\n").into_bytes();
    let header_text = format!("Subject: {subject}\nFrom: a@example.org\n");
    NewMessage {
        data: MessageBytes::Memory(Arc::new(data)),
        flags: Flags::default(),
        internal_date: 1_700_000_000,
        internal_date_offset: 60,
        parsed: ParsedInfo {
            envelope: format!("(NIL \"{subject}\" NIL NIL NIL NIL NIL NIL NIL NIL)").into_bytes(),
            bodystructure: b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 4 1)".to_vec(),
            body: b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 4 1)".to_vec(),
            parts: vec![1, 2, 3],
            search_body_offset: header_text.len(),
            search_text: header_text + body,
            sent_date: Some(1_699_999_999),
        },
    }
}

pub(crate) fn kw(system: u32, keywords: &[&str]) -> Flags {
    Flags {
        system,
        keywords: keywords.iter().map(|s| s.to_string()).collect(),
    }
}

pub(crate) async fn new_user(store: &dyn MailStore, name: &str) -> UserId {
    store
        .create_user(name, "$argon2id$x")
        .await
        .expect("create_user")
        .id
}

pub(crate) async fn inbox(store: &dyn MailStore, user: UserId) -> MailboxId {
    store
        .get_mailbox(user, "INBOX")
        .await
        .expect("get INBOX")
        .expect("INBOX exists")
        .id
}
