//! Authenticated state: first-login mailboxes, CREATE, DELETE, RENAME, LIST, LSUB, STATUS
//! (RFC 9051 §6.3, RFC 5258, RFC 5819, RFC 6154).

mod common;

use common::*;

const DEFAULT_LIST: &str = "* LIST (\\HasNoChildren) \"/\" INBOX\r\n\
* LIST (\\HasNoChildren \\Archive) \"/\" Archive\r\n\
* LIST (\\HasNoChildren \\Drafts) \"/\" Drafts\r\n\
* LIST (\\HasNoChildren \\Junk) \"/\" Junk\r\n\
* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n\
* LIST (\\HasNoChildren \\Trash) \"/\" Trash\r\n";

#[tokio::test]
async fn first_login_creates_special_use_mailboxes() {
    let env = env().await;
    let mut s = login(&env, "alice").await;
    assert_eq!(
        ok(&mut s, "a LIST \"\" *\r\n").await,
        format!("{DEFAULT_LIST}a OK List completed.\r\n")
    );
    assert_eq!(
        ok(&mut s, "b LIST \"\" \"\"\r\n").await,
        "* LIST (\\Noselect) \"/\" \"\"\r\nb OK List completed.\r\n"
    );
    let out = ok(
        &mut s,
        "c LIST (SPECIAL-USE) \"\" * RETURN (SUBSCRIBED)\r\n",
    )
    .await;
    assert_eq!(
        out,
        "* LIST (\\HasNoChildren \\Subscribed \\Archive) \"/\" Archive\r\n\
         * LIST (\\HasNoChildren \\Subscribed \\Drafts) \"/\" Drafts\r\n\
         * LIST (\\HasNoChildren \\Subscribed \\Junk) \"/\" Junk\r\n\
         * LIST (\\HasNoChildren \\Subscribed \\Sent) \"/\" Sent\r\n\
         * LIST (\\HasNoChildren \\Subscribed \\Trash) \"/\" Trash\r\n\
         c OK List completed.\r\n"
    );
    // A second login changes nothing.
    let mut s2 = login(&env, "alice").await;
    assert_eq!(
        ok(&mut s2, "d LIST \"\" *\r\n").await,
        format!("{DEFAULT_LIST}d OK List completed.\r\n")
    );
}

#[tokio::test]
async fn create_delete_with_parents_and_children() {
    let env = env().await;
    let mut s = login(&env, "alice").await;
    assert_eq!(
        ok(&mut s, "a CREATE a/b/c/\r\n").await,
        "a OK [MAILBOXID ($M)] Create completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "b CREATE a/b\r\n").await,
        "b NO [ALREADYEXISTS] Mailbox already exists.\r\n"
    );
    assert_eq!(
        ok(&mut s, "c CREATE inbox\r\n").await,
        "c NO [ALREADYEXISTS] Mailbox already exists.\r\n"
    );
    assert_eq!(
        ok(&mut s, "d LIST \"\" a*\r\n").await,
        "* LIST (\\HasChildren) \"/\" a\r\n\
         * LIST (\\HasChildren) \"/\" a/b\r\n\
         * LIST (\\HasNoChildren) \"/\" a/b/c\r\n\
         d OK List completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "e LIST a/ %\r\n").await,
        "* LIST (\\HasChildren) \"/\" a/b\r\ne OK List completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "f DELETE a\r\n").await,
        "f NO [HASCHILDREN] Mailbox has children, delete them first.\r\n"
    );
    assert_eq!(
        ok(&mut s, "g DELETE a/b/c\r\n").await,
        "g OK Delete completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "h DELETE a/b/c\r\n").await,
        "h NO [NONEXISTENT] Mailbox doesn't exist.\r\n"
    );
    assert_eq!(
        ok(&mut s, "i DELETE INBOX\r\n").await,
        "i NO [CANNOT] INBOX can't be deleted.\r\n"
    );
    assert_eq!(
        ok(&mut s, "j CREATE x (USE (\\Flagged))\r\n").await,
        "j NO [USEATTR] Unsupported special-use attribute.\r\n"
    );
    assert_eq!(
        ok(&mut s, "k CREATE Spam (USE (\\Junk))\r\n").await,
        "k OK [MAILBOXID ($M)] Create completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "l LIST \"\" Spam\r\n").await,
        "* LIST (\\HasNoChildren \\Junk) \"/\" Spam\r\nl OK List completed.\r\n"
    );
}

#[tokio::test]
async fn rename_with_children_and_subscriptions() {
    let env = env().await;
    let mut s = login(&env, "alice").await;
    ok(&mut s, "a CREATE p/q\r\n").await;
    ok(&mut s, "b SUBSCRIBE p/q\r\n").await;
    assert_eq!(
        ok(&mut s, "c RENAME p x/y\r\n").await,
        "c OK Rename completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "d LIST \"\" x*\r\n").await,
        "* LIST (\\HasChildren) \"/\" x\r\n\
         * LIST (\\HasChildren) \"/\" x/y\r\n\
         * LIST (\\HasNoChildren) \"/\" x/y/q\r\n\
         d OK List completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "e LSUB \"\" x/*\r\n").await,
        "* LSUB () \"/\" x/y/q\r\ne OK Lsub completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "f LSUB \"\" x/%\r\n").await,
        "* LSUB (\\Noselect) \"/\" x/y\r\nf OK Lsub completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "g RENAME x x/y/z\r\n").await,
        "g NO [CANNOT] Can't rename mailbox under its own child.\r\n"
    );
    assert_eq!(
        ok(&mut s, "h RENAME x Sent\r\n").await,
        "h NO [ALREADYEXISTS] Target mailbox already exists.\r\n"
    );
    assert_eq!(
        ok(&mut s, "i RENAME nope z\r\n").await,
        "i NO [NONEXISTENT] Mailbox doesn't exist.\r\n"
    );
}

#[tokio::test]
async fn subscribed_recursivematch_and_nonexistent() {
    let env = env().await;
    let mut s = login(&env, "alice").await;
    ok(&mut s, "a CREATE Foo/Bar\r\n").await;
    ok(&mut s, "b SUBSCRIBE Foo/Bar\r\n").await;
    ok(&mut s, "c SUBSCRIBE Gone\r\n").await;
    assert_eq!(
        ok(&mut s, "d LIST (SUBSCRIBED RECURSIVEMATCH) \"\" F%\r\n").await,
        "* LIST (\\HasChildren) \"/\" Foo (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\nd OK List completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "e LIST (SUBSCRIBED) \"\" *o*\r\n").await,
        "* LIST (\\HasNoChildren \\Subscribed) \"/\" Foo/Bar\r\n\
         * LIST (\\NonExistent \\HasNoChildren \\Subscribed) \"/\" Gone\r\n\
         e OK List completed.\r\n"
    );
    // Refused by the parser or the session, either way BAD (RFC 5258 §3).
    let out = ok(&mut s, "f LIST (RECURSIVEMATCH) \"\" *\r\n").await;
    assert!(
        out.starts_with("f BAD ") && out.contains("RECURSIVEMATCH"),
        "{out}"
    );
    assert_eq!(
        ok(&mut s, "g NAMESPACE\r\n").await,
        "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\ng OK Namespace completed.\r\n"
    );
}

#[tokio::test]
async fn status_and_list_status() {
    let env = env().await;
    let mut s = login(&env, "alice").await;
    assert_eq!(
        ok(&mut s, "a STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE RECENT APPENDLIMIT)\r\n").await,
        "* STATUS INBOX (MESSAGES 0 UIDNEXT 1 UIDVALIDITY $V UNSEEN 0 DELETED 0 SIZE 0 RECENT 0 APPENDLIMIT 1000000)\r\n\
         a OK Status completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "b STATUS nope (MESSAGES)\r\n").await,
        "b NO [NONEXISTENT] Mailbox doesn't exist.\r\n"
    );
    assert_eq!(
        ok(
            &mut s,
            "c LIST \"\" (INBOX Sent) RETURN (STATUS (MESSAGES UNSEEN))\r\n"
        )
        .await,
        "* LIST (\\HasNoChildren) \"/\" INBOX\r\n\
         * STATUS INBOX (MESSAGES 0 UNSEEN 0)\r\n\
         * LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n\
         * STATUS Sent (MESSAGES 0 UNSEEN 0)\r\n\
         c OK List completed.\r\n"
    );
}

#[tokio::test]
async fn names_in_utf7_and_utf8() {
    let env = env().await;
    let mut s = login(&env, "alice").await;
    assert_eq!(
        ok(&mut s, "a CREATE \"Entw&APw-rfe\"\r\n").await,
        "a OK [MAILBOXID ($M)] Create completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "b LIST \"\" Entw*\r\n").await,
        "* LIST (\\HasNoChildren) \"/\" Entw&APw-rfe\r\nb OK List completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "c ENABLE IMAP4rev2\r\n").await,
        "* ENABLED IMAP4rev2\r\nc OK Enabled.\r\n"
    );
    assert_eq!(
        ok(&mut s, "d LIST \"\" Entw*\r\n").await,
        "* LIST (\\HasNoChildren) \"/\" \"Entwürfe\"\r\nd OK List completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "e ENABLE IMAP4rev2 QRESYNC X-UNKNOWN\r\n").await,
        "* ENABLED IMAP4rev2 QRESYNC\r\ne OK Enabled.\r\n"
    );
}

#[tokio::test]
async fn implicit_parents_and_quota() {
    let env = env().await;
    let mut s = login(&env, "alice").await;
    // A mailbox whose parent does not exist (made behind the session's back).
    let u = env.store.get_user("alice").await.unwrap().unwrap();
    env.store.create_mailbox(u.id, "p/q", None).await.unwrap();
    assert_eq!(
        ok(&mut s, "a LIST \"\" p%\r\n").await,
        "* LIST (\\Noselect \\HasChildren) \"/\" p\r\na OK List completed.\r\n"
    );
    // Extended syntax (and IMAP4rev2) say \NonExistent (RFC 5258 §3).
    assert_eq!(
        ok(&mut s, "b LIST \"\" (p%) RETURN (CHILDREN)\r\n").await,
        "* LIST (\\NonExistent \\HasChildren) \"/\" p\r\nb OK List completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "c GETQUOTAROOT INBOX\r\n").await,
        "* QUOTAROOT INBOX \"\"\r\n* QUOTA \"\" ()\r\nc OK Getquotaroot completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "d GETQUOTA \"#user/alice\"\r\n").await,
        "d NO [NONEXISTENT] No such quota root.\r\n"
    );
}
