//! QUOTA (RFC 9208): GETQUOTAROOT, GETQUOTA, SETQUOTA, `NO [OVERQUOTA]` on APPEND, COPY and
//! MOVE, STATUS DELETED-STORAGE.

mod common;

use common::*;
use mailkeep_store::{QuotaLimits, QuotaSetting};

#[tokio::test]
async fn capability_lists_quota_after_login() {
    let env = env().await;
    let mut s = login(&env, "alice").await;
    let caps = ok(&mut s, "a CAPABILITY\r\n").await;
    for c in [
        "QUOTA",
        "QUOTA=RES-STORAGE",
        "QUOTA=RES-MESSAGE",
        "QUOTASET",
    ] {
        assert!(caps.contains(&format!(" {c} ")), "{c} in {caps}");
    }
}

#[tokio::test]
async fn roots_and_usage() {
    let env = env().await;
    let mut s = login(&env, "alice").await;
    // No limit: the root exists, with no resources listed (RFC 9208 §4.2.1).
    assert_eq!(
        ok(&mut s, "a GETQUOTAROOT INBOX\r\n").await,
        "* QUOTAROOT INBOX \"\"\r\n* QUOTA \"\" ()\r\na OK Getquotaroot completed.\r\n"
    );
    // The mailbox need not exist (§4.1.2).
    assert_eq!(
        ok(&mut s, "b GETQUOTAROOT \"Not yet\"\r\n").await,
        "* QUOTAROOT \"Not yet\" \"\"\r\n* QUOTA \"\" ()\r\nb OK Getquotaroot completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "c GETQUOTA \"\"\r\n").await,
        "* QUOTA \"\" ()\r\nc OK Getquota completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "d GETQUOTA \"#user/alice\"\r\n").await,
        "d NO [NONEXISTENT] No such quota root.\r\n"
    );
    // Only a non-admin's own root: another account's name is unknown to alice.
    assert_eq!(
        ok(&mut s, "e GETQUOTA bob\r\n").await,
        "e NO [NONEXISTENT] No such quota root.\r\n"
    );
    // Usage in KiB (rounded up) and messages, limited resources only.
    deliver(&env, "alice", "INBOX", &"x".repeat(1500)).await;
    env.store.set_default_quota(QuotaLimits {
        storage: Some(10 << 10),
        messages: None,
    });
    assert_eq!(
        ok(&mut s, "f GETQUOTA \"\"\r\n").await,
        "* QUOTA \"\" (STORAGE 2 10)\r\nf OK Getquota completed.\r\n"
    );
    env.store
        .set_quota("alice", None, Some(QuotaSetting::Limit(100)))
        .await
        .unwrap();
    assert_eq!(
        ok(&mut s, "g GETQUOTAROOT inbox\r\n").await,
        "* QUOTAROOT INBOX \"\"\r\n* QUOTA \"\" (STORAGE 2 10 MESSAGE 1 100)\r\ng OK Getquotaroot completed.\r\n"
    );
}

#[tokio::test]
async fn over_quota_is_refused_with_overquota() {
    let env = env().await;
    let mut s = login(&env, "alice").await;
    env.store
        .set_quota("alice", None, Some(QuotaSetting::Limit(2)))
        .await
        .unwrap();
    ok(&mut s, "a CREATE Other\r\n").await;
    assert_eq!(
        ok(&mut s, "b APPEND INBOX {5+}\r\nhello\r\n").await,
        "b OK [APPENDUID $V 1] Append completed.\r\n"
    );
    // MULTIAPPEND crossing the limit: nothing stored (RFC 3502 all or none).
    assert_eq!(
        ok(&mut s, "c APPEND INBOX {5+}\r\nhello {5+}\r\nagain\r\n").await,
        "c NO [OVERQUOTA] Quota exceeded\r\n"
    );
    assert_eq!(
        ok(&mut s, "d APPEND INBOX {5+}\r\nthere\r\n").await,
        "d OK [APPENDUID $V 2] Append completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "e APPEND INBOX {4+}\r\nfull\r\n").await,
        "e NO [OVERQUOTA] Quota exceeded\r\n"
    );
    ok(&mut s, "f SELECT INBOX\r\n").await;
    assert_eq!(
        ok(&mut s, "g COPY 1 Other\r\n").await,
        "g NO [OVERQUOTA] Quota exceeded\r\n"
    );
    // MOVE within the account does not grow usage: allowed at the limit.
    assert_eq!(
        ok(&mut s, "h MOVE 1 Other\r\n").await,
        "* OK [COPYUID $V 1 1] Moved UIDs.\r\n* 1 EXPUNGE\r\nh OK MOVE completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "i GETQUOTA \"\"\r\n").await,
        "* QUOTA \"\" (MESSAGE 2 2)\r\ni OK Getquota completed.\r\n"
    );
    // Expunging frees room.
    ok(&mut s, "j STORE 1 +FLAGS.SILENT (\\Deleted)\r\n").await;
    assert_eq!(
        ok(&mut s, "k STATUS INBOX (DELETED DELETED-STORAGE)\r\n").await,
        "* STATUS INBOX (DELETED 1 DELETED-STORAGE 5)\r\nk OK Status completed.\r\n"
    );
    ok(&mut s, "l EXPUNGE\r\n").await;
    assert_eq!(
        ok(&mut s, "n APPEND Other {3+}\r\nnew\r\n").await,
        "n OK [APPENDUID $V 2] Append completed.\r\n"
    );
}

#[tokio::test]
async fn setquota_is_for_the_admin() {
    let env = env().await;
    env.store
        .create_user("admin", &mailkeep_auth::hash_password(PASSWORD))
        .await
        .unwrap();
    let mut s = login(&env, "alice").await;
    assert_eq!(
        ok(&mut s, "a SETQUOTA \"\" (STORAGE 512)\r\n").await,
        "a NO [NOPERM] Only the quota administrator may set quotas.\r\n"
    );
    let mut a = login(&env, "admin").await;
    // Another account's root, by its name (RFC 2087 syntax is the same).
    assert_eq!(
        ok(&mut a, "b SETQUOTA alice (STORAGE 512 MESSAGE 1000)\r\n").await,
        "* QUOTA \"alice\" (STORAGE 0 512 MESSAGE 0 1000)\r\nb OK Setquota completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "c GETQUOTA \"\"\r\n").await,
        "* QUOTA \"\" (STORAGE 0 512 MESSAGE 0 1000)\r\nc OK Getquota completed.\r\n"
    );
    // Resources left out lose their limit (RFC 9208 §4.1.3).
    assert_eq!(
        ok(&mut a, "d SETQUOTA alice (message 5)\r\n").await,
        "* QUOTA \"alice\" (MESSAGE 0 5)\r\nd OK Setquota completed.\r\n"
    );
    assert_eq!(
        ok(&mut a, "e SETQUOTA \"\" ()\r\n").await,
        "* QUOTA \"\" ()\r\ne OK Setquota completed.\r\n"
    );
    assert_eq!(
        ok(&mut a, "f SETQUOTA alice (MAILBOX 5)\r\n").await,
        "f NO [CANNOT] Only STORAGE and MESSAGE can be limited, not MAILBOX.\r\n"
    );
    assert_eq!(
        ok(&mut a, "g SETQUOTA alice (STORAGE 0)\r\n").await,
        "g NO [CANNOT] A STORAGE limit of 0 is not kept: leave STORAGE out for no limit.\r\n"
    );
    assert_eq!(
        ok(&mut a, "h SETQUOTA nobody (STORAGE 1)\r\n").await,
        "h NO [NONEXISTENT] No such quota root.\r\n"
    );
    assert_eq!(
        ok(&mut a, "i SETQUOTA alice (STORAGE)\r\n").await[..5].to_string(),
        "i BAD"
    );
    // The largest number64 does not overflow.
    assert_eq!(
        ok(&mut a, "j SETQUOTA alice (STORAGE 9223372036854775807)\r\n").await,
        "* QUOTA \"alice\" (STORAGE 0 9007199254740992)\r\nj OK Setquota completed.\r\n"
    );
    // Nobody is admin when the setting is empty.
    let mut n = session(&env, config());
    n.set_quota_admin(Some(String::new()));
    run(&mut n, &format!("L LOGIN admin {PASSWORD}\r\n")).await;
    assert_eq!(
        ok(&mut n, "k SETQUOTA \"\" (STORAGE 1)\r\n").await,
        "k NO [NOPERM] Only the quota administrator may set quotas.\r\n"
    );
    // ... and QUOTASET is not advertised then (RFC 9208 §3.1: only where SETQUOTA works).
    let caps = ok(&mut n, "l CAPABILITY\r\n").await;
    assert!(caps.contains(" QUOTA=RES-STORAGE "), "{caps}");
    assert!(!caps.contains("QUOTASET"), "{caps}");
}
