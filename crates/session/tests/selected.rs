//! SELECT/EXAMINE, the selected view kept in sync with other sessions, IDLE, CLOSE/UNSELECT
//! (RFC 9051 §6.3.2, §6.4, §7.4; RFC 2177).

mod common;

use std::time::Duration;

use common::*;
use mailkeep_session::Flow;
use mailkeep_store::{FlagOp, Flags, flags};

const MSG: &str = "From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n";

#[tokio::test]
async fn select_rev1_and_rev2() {
    let env = env().await;
    deliver(&env, "alice", "INBOX", MSG).await;
    deliver(&env, "alice", "INBOX", MSG).await;
    let mut s = login(&env, "alice").await;
    assert_eq!(
        ok(&mut s, "a SELECT INBOX\r\n").await,
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
         * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r\n\
         * 2 EXISTS\r\n\
         * 2 RECENT\r\n\
         * OK [UNSEEN 1] First unseen.\r\n\
         * OK [UIDVALIDITY $V] UIDs valid\r\n\
         * OK [UIDNEXT 3] Predicted next UID\r\n\
         * OK [MAILBOXID ($M)] Ok\r\n\
         a OK [READ-WRITE] Select completed.\r\n"
    );
    // \Recent was claimed by the first session (RFC 3501 §2.3.2).
    let mut s2 = login(&env, "alice").await;
    ok(&mut s2, "b ENABLE IMAP4rev2\r\n").await;
    assert_eq!(
        ok(&mut s2, "c EXAMINE inbox (CONDSTORE)\r\n").await,
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n\
         * OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n\
         * 2 EXISTS\r\n\
         * OK [UIDVALIDITY $V] UIDs valid\r\n\
         * OK [UIDNEXT 3] Predicted next UID\r\n\
         * OK [MAILBOXID ($M)] Ok\r\n\
         * LIST (\\HasNoChildren) \"/\" INBOX\r\n\
         * OK [HIGHESTMODSEQ 2] Highest\r\n\
         c OK [READ-ONLY] Examine completed.\r\n"
            .replace(
                "HIGHESTMODSEQ 2",
                &format!("HIGHESTMODSEQ {}", highest_modseq(&env).await)
            )
    );
    // Selecting again closes the previous mailbox first (RFC 9051 §6.3.2).
    let out = ok(&mut s2, "d SELECT Sent\r\n").await;
    assert!(
        out.starts_with("* OK [CLOSED] Previous mailbox closed.\r\n* FLAGS"),
        "{out}"
    );
    assert!(
        out.ends_with("d OK [READ-WRITE] Select completed.\r\n"),
        "{out}"
    );
    // A failed SELECT leaves nothing selected.
    assert_eq!(
        ok(&mut s2, "e SELECT nope\r\n").await,
        "* OK [CLOSED] Previous mailbox closed.\r\ne NO [NONEXISTENT] Mailbox doesn't exist.\r\n"
    );
    assert_eq!(
        ok(&mut s2, "f CHECK\r\n").await,
        "f BAD No mailbox selected.\r\n"
    );
}

async fn highest_modseq(env: &Env) -> u64 {
    let id = mailbox_id(env, "alice", "INBOX").await;
    env.store.status(id).await.expect("status").highest_modseq
}

#[tokio::test]
async fn noop_shows_changes_of_other_sessions() {
    let env = env().await;
    let mut s = login(&env, "alice").await;
    ok(&mut s, "a SELECT INBOX\r\n").await;
    assert_eq!(ok(&mut s, "b NOOP\r\n").await, "b OK NOOP completed.\r\n");
    let uid = deliver(&env, "alice", "INBOX", MSG).await;
    assert_eq!(
        ok(&mut s, "c NOOP\r\n").await,
        "* 1 EXISTS\r\n* 1 RECENT\r\nc OK NOOP completed.\r\n"
    );
    assert_eq!(ok(&mut s, "d NOOP\r\n").await, "d OK NOOP completed.\r\n");

    let id = mailbox_id(&env, "alice", "INBOX").await;
    let seen = Flags {
        system: flags::SEEN,
        keywords: vec!["$Forwarded".into()],
    };
    env.store
        .set_flags(id, &[uid], FlagOp::Add, &seen, None)
        .await
        .expect("flags");
    assert_eq!(
        ok(&mut s, "e CHECK\r\n").await,
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n\
         * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded \\*)] Flags permitted.\r\n\
         * 1 FETCH (FLAGS (\\Seen \\Recent $Forwarded))\r\n\
         e OK Check completed.\r\n"
    );
    env.store.expunge(id, &[uid]).await.expect("expunge");
    assert_eq!(
        ok(&mut s, "f NOOP\r\n").await,
        "* 1 EXPUNGE\r\nf OK NOOP completed.\r\n"
    );
}

#[tokio::test]
async fn idle_wakes_on_delivery() {
    let env = env().await;
    let mut s = login(&env, "alice").await;
    // Nothing selected: never wakes.
    assert!(
        tokio::time::timeout(Duration::from_millis(50), s.changed())
            .await
            .is_err()
    );
    ok(&mut s, "a SELECT INBOX\r\n").await;
    let (out, flow) = run(&mut s, "i IDLE\r\n").await;
    assert_eq!((out.as_str(), flow), ("+ idling\r\n", Flow::Idle));
    assert!(
        tokio::time::timeout(Duration::from_millis(50), s.changed())
            .await
            .is_err()
    );

    let mut other = login(&env, "alice").await;
    ok(&mut other, "x SELECT INBOX\r\n").await;
    deliver(&env, "alice", "INBOX", MSG).await;
    tokio::time::timeout(Duration::from_secs(5), s.changed())
        .await
        .expect("woken by the delivery");
    let mut out = Vec::new();
    s.idle_update(&mut out).await;
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "* 1 EXISTS\r\n* 1 RECENT\r\n"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(50), s.changed())
            .await
            .is_err()
    );
    let mut out = Vec::new();
    assert_eq!(s.idle_done(true, &mut out).await, Flow::Continue);
    assert_eq!(String::from_utf8(out).unwrap(), "i OK Idle completed.\r\n");

    let (out, _) = run(&mut s, "j IDLE\r\n").await;
    assert_eq!(out, "+ idling\r\n");
    let mut out = Vec::new();
    s.idle_done(false, &mut out).await;
    assert_eq!(String::from_utf8(out).unwrap(), "j BAD Expected DONE.\r\n");
}

#[tokio::test]
async fn close_and_unselect_return_to_authenticated() {
    let env = env().await;
    let mut s = login(&env, "alice").await;
    ok(&mut s, "a SELECT INBOX\r\n").await;
    assert_eq!(
        ok(&mut s, "b UNSELECT\r\n").await,
        "b OK Unselect completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "c UNSELECT\r\n").await,
        "c BAD No mailbox selected.\r\n"
    );
    ok(&mut s, "d EXAMINE INBOX\r\n").await;
    assert_eq!(ok(&mut s, "e CLOSE\r\n").await, "e OK Close completed.\r\n");
    assert_eq!(
        ok(&mut s, "f EXPUNGE\r\n").await,
        "f BAD No mailbox selected.\r\n"
    );
}

#[tokio::test]
async fn selected_mailbox_deleted_elsewhere_ends_session() {
    let env = env().await;
    let mut s = login(&env, "alice").await;
    ok(&mut s, "a CREATE tmp\r\n").await;
    ok(&mut s, "b SELECT tmp\r\n").await;
    let mut other = login(&env, "alice").await;
    assert_eq!(
        ok(&mut other, "c DELETE tmp\r\n").await,
        "c OK Delete completed.\r\n"
    );
    let (out, flow) = run(&mut s, "d NOOP\r\n").await;
    assert_eq!(flow, Flow::Close);
    assert_eq!(
        out,
        "* BYE Selected mailbox was deleted, have to disconnect.\r\nd OK NOOP completed.\r\n"
    );
}

#[tokio::test]
async fn enable_condstore_while_selected_reports_highestmodseq() {
    let env = env().await;
    deliver(&env, "alice", "INBOX", MSG).await;
    let mut s = login(&env, "alice").await;
    ok(&mut s, "a SELECT INBOX\r\n").await;
    let hms = highest_modseq(&env).await;
    assert_eq!(
        ok(&mut s, "b ENABLE CONDSTORE\r\n").await,
        format!("* ENABLED CONDSTORE\r\n* OK [HIGHESTMODSEQ {hms}] Highest\r\nb OK Enabled.\r\n")
    );
    // Only the first CONDSTORE enabling command reports it (RFC 7162 §3.1).
    assert_eq!(
        ok(&mut s, "c ENABLE CONDSTORE\r\n").await,
        "* ENABLED CONDSTORE\r\nc OK Enabled.\r\n"
    );
    // With CONDSTORE on, flag changes by others carry MODSEQ (RFC 7162 §3.1.4.1).
    let id = mailbox_id(&env, "alice", "INBOX").await;
    let flagged = Flags {
        system: flags::FLAGGED,
        keywords: vec![],
    };
    env.store
        .set_flags(id, &[1], FlagOp::Add, &flagged, None)
        .await
        .expect("flags");
    let hms = highest_modseq(&env).await;
    assert_eq!(
        ok(&mut s, "d NOOP\r\n").await,
        format!(
            "* 1 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ ({hms}))\r\nd OK NOOP completed.\r\n"
        )
    );
}

#[tokio::test]
async fn close_expunges_deleted_only_when_read_write() {
    let env = env().await;
    let uid = deliver(&env, "alice", "INBOX", MSG).await;
    deliver(&env, "alice", "INBOX", MSG).await;
    let id = mailbox_id(&env, "alice", "INBOX").await;
    let deleted = Flags {
        system: flags::DELETED,
        keywords: vec![],
    };
    env.store
        .set_flags(id, &[uid], FlagOp::Add, &deleted, None)
        .await
        .expect("flags");
    let mut s = login(&env, "alice").await;
    ok(&mut s, "a EXAMINE INBOX\r\n").await;
    assert_eq!(ok(&mut s, "b CLOSE\r\n").await, "b OK Close completed.\r\n");
    assert_eq!(
        ok(&mut s, "c STATUS INBOX (MESSAGES)\r\n").await,
        "* STATUS INBOX (MESSAGES 2)\r\nc OK Status completed.\r\n"
    );
    ok(&mut s, "d SELECT INBOX\r\n").await;
    // CLOSE is silent: no EXPUNGE responses (RFC 9051 §6.4.1).
    assert_eq!(ok(&mut s, "e CLOSE\r\n").await, "e OK Close completed.\r\n");
    assert_eq!(
        ok(&mut s, "f STATUS INBOX (MESSAGES)\r\n").await,
        "* STATUS INBOX (MESSAGES 1)\r\nf OK Status completed.\r\n"
    );
}

#[tokio::test]
async fn no_expunge_during_fetch_store_search() {
    let env = env().await;
    let uid = deliver(&env, "alice", "INBOX", MSG).await;
    deliver(&env, "alice", "INBOX", MSG).await;
    let mut s = login(&env, "alice").await;
    ok(&mut s, "a SELECT INBOX\r\n").await;
    let id = mailbox_id(&env, "alice", "INBOX").await;
    env.store.expunge(id, &[uid]).await.expect("expunge");
    deliver(&env, "alice", "INBOX", MSG).await;
    // RFC 9051 §7.5.1: EXISTS may come, EXPUNGE must wait (sequence numbers stay valid).
    let out = ok(&mut s, "b FETCH 2 (UID)\r\n").await;
    assert!(
        !out.contains("EXPUNGE") && out.contains("* 3 EXISTS\r\n"),
        "{out}"
    );
    assert!(out.ends_with("b OK FETCH completed.\r\n"), "{out}");
    let out = ok(&mut s, "c SEARCH ALL\r\n").await;
    assert!(!out.contains("EXPUNGE"), "{out}");
    // A UID command may expunge.
    let out = ok(&mut s, "d UID SEARCH ALL\r\n").await;
    assert!(out.contains("* 1 EXPUNGE\r\n"), "{out}");
    assert_eq!(ok(&mut s, "e NOOP\r\n").await, "e OK NOOP completed.\r\n");
}

#[tokio::test]
async fn several_expunges_highest_first() {
    let env = env().await;
    let mut uids = Vec::new();
    for _ in 0..5 {
        uids.push(deliver(&env, "alice", "INBOX", MSG).await);
    }
    let mut s = login(&env, "alice").await;
    ok(&mut s, "a SELECT INBOX\r\n").await;
    let id = mailbox_id(&env, "alice", "INBOX").await;
    env.store
        .expunge(id, &[uids[1], uids[3]])
        .await
        .expect("expunge");
    env.store.expunge(id, &[uids[4]]).await.expect("expunge");
    assert_eq!(
        ok(&mut s, "b NOOP\r\n").await,
        "* 5 EXPUNGE\r\n* 4 EXPUNGE\r\n* 2 EXPUNGE\r\nb OK NOOP completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "c STATUS INBOX (MESSAGES)\r\n").await,
        "* STATUS INBOX (MESSAGES 2)\r\nc OK Status completed.\r\n"
    );
    let out = ok(&mut s, "d FETCH 2 (UID)\r\n").await;
    assert!(
        out.starts_with(&format!("* 2 FETCH (UID {})", uids[2])),
        "{out}"
    );
}

#[tokio::test]
async fn idle_on_a_deleted_mailbox_says_bye() {
    let env = env().await;
    let mut s = login(&env, "alice").await;
    ok(&mut s, "a CREATE tmp\r\n").await;
    ok(&mut s, "b SELECT tmp\r\n").await;
    run(&mut s, "i IDLE\r\n").await;
    let mut other = login(&env, "alice").await;
    ok(&mut other, "c SELECT tmp\r\n").await;
    deliver(&env, "alice", "tmp", MSG).await;
    tokio::time::timeout(Duration::from_secs(5), s.changed())
        .await
        .expect("woken");
    ok(&mut other, "d UNSELECT\r\n").await;
    ok(&mut other, "e DELETE tmp\r\n").await;
    let mut out = Vec::new();
    s.idle_update(&mut out).await;
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "* BYE Selected mailbox was deleted, have to disconnect.\r\n"
    );
    assert!(s.is_logged_out());
}

/// RFC 5267 §4.3.1: past the session's limit of update contexts the search still answers, with
/// `* NO [NOUPDATE "tag"]`; CANCELUPDATE frees a place. Updates follow a delivery by another
/// agent (as LMTP's), and with message numbers a REMOVEFROM comes before its EXPUNGE.
#[tokio::test]
async fn update_contexts_limit_delivery_and_expunge() {
    let env = env().await;
    deliver(&env, "alice", "INBOX", MSG).await;
    let mut s = login(&env, "alice").await;
    s.set_max_search_contexts(1);
    ok(&mut s, "a ENABLE IMAP4rev2\r\n").await;
    ok(&mut s, "b SELECT INBOX\r\n").await;
    assert_eq!(
        ok(&mut s, "c1 SEARCH RETURN (UPDATE) UNDELETED\r\n").await,
        "* ESEARCH (TAG \"c1\") ALL 1\r\nc1 OK SEARCH completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "c2 UID SEARCH RETURN (UPDATE COUNT) ALL\r\n").await,
        "* ESEARCH (TAG \"c2\") UID COUNT 1\r\n\
         * NO [NOUPDATE \"c2\"] Too many update contexts (at most 1).\r\n\
         c2 OK UID SEARCH completed.\r\n"
    );
    deliver(&env, "alice", "INBOX", MSG).await;
    assert_eq!(
        ok(&mut s, "d NOOP\r\n").await,
        "* 2 EXISTS\r\n* ESEARCH (TAG \"c1\") ADDTO (0 2)\r\nd OK NOOP completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "e STORE 1 +FLAGS.SILENT (\\Deleted)\r\n").await,
        "* ESEARCH (TAG \"c1\") REMOVEFROM (0 1)\r\ne OK STORE completed.\r\n"
    );
    ok(&mut s, "f CANCELUPDATE \"c1\"\r\n").await;
    assert_eq!(
        ok(&mut s, "g SEARCH RETURN (UPDATE MIN) ALL\r\n").await,
        "* ESEARCH (TAG \"g\") MIN 1\r\ng OK SEARCH completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "h STORE 2 +FLAGS.SILENT (\\Deleted)\r\n").await,
        "h OK STORE completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "i EXPUNGE\r\n").await,
        "* ESEARCH (TAG \"g\") REMOVEFROM (0 1:2)\r\n* 2 EXPUNGE\r\n* 1 EXPUNGE\r\ni OK Expunge completed.\r\n"
    );
    // CANCELUPDATE needs a selected mailbox.
    ok(&mut s, "k UNSELECT\r\n").await;
    let (out, _) = run(&mut s, "l CANCELUPDATE \"g\"\r\n").await;
    assert_eq!(out, "l BAD No mailbox selected.\r\n");
}
