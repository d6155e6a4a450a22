//! Two-factor enrolment and app passwords over a real store: the rules of `twofa` and
//! `app_passwords` as the CLI (and a later web page) use them.

use mailkeep_auth::app_passwords::{self, Error, LoginCheck};
use mailkeep_auth::{totp, twofa};
use mailkeep_store::MailStore;
use mailkeep_store::sqlite::SqliteStore;

#[tokio::test]
async fn enrol_confirm_use_and_disable() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let store: &dyn MailStore = &*store;
    let user = store.create_user("alice", "not-a-hash").await.unwrap();
    assert!(matches!(
        twofa::begin(store, "nobody", "Mailkeep").await,
        Err(Error::NoSuchUser(_))
    ));
    let e = twofa::begin(store, "alice", "Mailkeep").await.unwrap();
    assert!(e.uri.starts_with("otpauth://totp/Mailkeep:alice?secret="));
    // Pending: nothing changes for logins yet.
    let st = twofa::status(store, "alice").await.unwrap();
    assert!(st.pending && !st.enabled);
    assert_eq!(
        app_passwords::check_login(store, &user, b"pass")
            .await
            .unwrap(),
        LoginCheck::TryPassword
    );
    let now = totp::now();
    let wrong = if totp::code_at(&e.secret, now) == "000000" {
        "111111"
    } else {
        "000000"
    };
    assert!(matches!(
        twofa::confirm(store, "alice", wrong, now).await,
        Err(Error::WrongCode)
    ));
    let codes = twofa::confirm(store, "alice", &totp::code_at(&e.secret, now), now)
        .await
        .unwrap();
    assert_eq!(codes.len(), twofa::RECOVERY_CODES);
    assert!(twofa::status(store, "alice").await.unwrap().enabled);
    assert!(matches!(
        twofa::begin(store, "alice", "Mailkeep").await,
        Err(Error::AlreadyEnabled(_))
    ));
    // The confirming code's step is used: the same code does not work again, a later one does.
    assert!(
        !twofa::verify_code(store, "alice", &totp::code_at(&e.secret, now), now)
            .await
            .unwrap()
    );
    let later = now + 30;
    assert!(
        twofa::verify_code(store, "alice", &totp::code_at(&e.secret, later), later)
            .await
            .unwrap()
    );
    // The main password is refused before any hash; a recovery code works once.
    assert_eq!(
        app_passwords::check_login(store, &user, b"pass")
            .await
            .unwrap(),
        LoginCheck::Refused
    );
    assert_eq!(
        app_passwords::check_login(store, &user, codes[0].as_bytes())
            .await
            .unwrap(),
        LoginCheck::RecoveryCode
    );
    assert_eq!(
        app_passwords::check_login(store, &user, codes[0].as_bytes())
            .await
            .unwrap(),
        LoginCheck::Refused
    );
    // App passwords.
    let (pw, rec) = app_passwords::add(store, "alice", "Phone").await.unwrap();
    assert_eq!(
        app_passwords::check_login(store, &user, pw.as_bytes())
            .await
            .unwrap(),
        LoginCheck::AppPassword(rec.id)
    );
    let listed = app_passwords::list(store, "alice").await.unwrap();
    assert!(listed[0].last_used.is_some(), "last use recorded");
    assert!(matches!(
        app_passwords::add(store, "alice", "").await,
        Err(Error::BadLabel)
    ));
    app_passwords::revoke(store, "alice", "Phone")
        .await
        .unwrap();
    assert_eq!(
        app_passwords::check_login(store, &user, pw.as_bytes())
            .await
            .unwrap(),
        LoginCheck::Refused
    );
    // Disabled: the main password may be checked again.
    assert!(twofa::disable(store, "alice").await.unwrap());
    assert!(!twofa::disable(store, "alice").await.unwrap());
    assert_eq!(
        app_passwords::check_login(store, &user, b"pass")
            .await
            .unwrap(),
        LoginCheck::TryPassword
    );
}
