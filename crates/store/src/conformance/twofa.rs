//! TOTP secrets, recovery codes and app passwords: stored per account, replay-safe steps,
//! one-time recovery codes, app passwords found by hash, revoked, and gone with the account.

use super::new_user;
use crate::{MailStore, StoreError, TwoFactor};

pub async fn two_factor(store: &dyn MailStore) {
    new_user(store, "twofa-a").await;
    new_user(store, "twofa-b").await;
    assert_eq!(store.get_two_factor("twofa-a").await.unwrap(), None);
    let tf = TwoFactor {
        secret: vec![7; 20],
        enabled: false,
        last_step: 0,
    };
    store
        .set_two_factor("twofa-a", Some(&tf), &[b"r1".to_vec(), b"r2".to_vec()])
        .await
        .unwrap();
    assert_eq!(
        store.get_two_factor("twofa-a").await.unwrap(),
        Some(tf.clone())
    );
    assert_eq!(store.get_two_factor("twofa-b").await.unwrap(), None);
    assert_eq!(store.recovery_codes_left("twofa-a").await.unwrap(), 2);
    assert_eq!(store.recovery_codes_left("twofa-b").await.unwrap(), 0);
    // A step is used once; older steps are refused.
    assert!(store.use_totp_step("twofa-a", 100).await.unwrap());
    assert!(
        !store.use_totp_step("twofa-a", 100).await.unwrap(),
        "replayed step"
    );
    assert!(
        !store.use_totp_step("twofa-a", 99).await.unwrap(),
        "older step"
    );
    assert!(store.use_totp_step("twofa-a", 101).await.unwrap());
    assert_eq!(
        store
            .get_two_factor("twofa-a")
            .await
            .unwrap()
            .unwrap()
            .last_step,
        101
    );
    // Recovery codes work once, only for their account.
    assert!(!store.use_recovery_code("twofa-b", b"r1").await.unwrap());
    assert!(store.use_recovery_code("twofa-a", b"r1").await.unwrap());
    assert!(
        !store.use_recovery_code("twofa-a", b"r1").await.unwrap(),
        "used twice"
    );
    assert_eq!(store.recovery_codes_left("twofa-a").await.unwrap(), 1);
    // Replaced: enabled, new codes only.
    let on = TwoFactor {
        enabled: true,
        ..tf.clone()
    };
    store
        .set_two_factor("twofa-a", Some(&on), &[b"r3".to_vec()])
        .await
        .unwrap();
    assert!(
        store
            .get_two_factor("twofa-a")
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    assert!(
        !store.use_recovery_code("twofa-a", b"r2").await.unwrap(),
        "old codes go"
    );
    // Removed, codes too.
    store.set_two_factor("twofa-a", None, &[]).await.unwrap();
    assert_eq!(store.get_two_factor("twofa-a").await.unwrap(), None);
    assert_eq!(store.recovery_codes_left("twofa-a").await.unwrap(), 0);
    assert!(matches!(
        store.set_two_factor("twofa-nobody", Some(&tf), &[]).await,
        Err(StoreError::NoSuchUser)
    ));

    // App passwords.
    let p1 = store
        .add_app_password("twofa-a", "Phone", b"h1", 1000)
        .await
        .unwrap();
    assert_eq!(
        (p1.label.as_str(), p1.created, p1.last_used),
        ("Phone", 1000, None)
    );
    assert!(matches!(
        store
            .add_app_password("twofa-a", "Phone", b"h9", 1000)
            .await,
        Err(StoreError::AlreadyExists)
    ));
    let p2 = store
        .add_app_password("twofa-a", "Laptop", b"h2", 1001)
        .await
        .unwrap();
    store
        .add_app_password("twofa-b", "Phone", b"h3", 1002)
        .await
        .unwrap();
    let list = store.list_app_passwords("twofa-a").await.unwrap();
    assert_eq!(list, vec![p1.clone(), p2.clone()]);
    assert_eq!(
        store.find_app_password("twofa-a", b"h2").await.unwrap(),
        Some(p2.clone())
    );
    assert_eq!(
        store.find_app_password("twofa-a", b"h3").await.unwrap(),
        None,
        "another account's app password"
    );
    // last_used: set, then not again within the interval.
    store.touch_app_password(p1.id, 2000, 60).await.unwrap();
    store.touch_app_password(p1.id, 2030, 60).await.unwrap();
    let got = store
        .find_app_password("twofa-a", b"h1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.last_used, Some(2000));
    store.touch_app_password(p1.id, 2060, 60).await.unwrap();
    let got = store
        .find_app_password("twofa-a", b"h1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.last_used, Some(2060));
    // Revoked at once.
    assert!(store.app_password_exists(p1.id).await.unwrap());
    store.revoke_app_password("twofa-a", "Phone").await.unwrap();
    assert!(!store.app_password_exists(p1.id).await.unwrap());
    assert_eq!(
        store.find_app_password("twofa-a", b"h1").await.unwrap(),
        None
    );
    assert!(matches!(
        store.revoke_app_password("twofa-a", "Phone").await,
        Err(StoreError::Cannot(_))
    ));
    // Gone with the account; a new account of that name starts clean.
    store
        .set_two_factor("twofa-a", Some(&on), &[b"r4".to_vec()])
        .await
        .unwrap();
    store.delete_user("twofa-a").await.unwrap();
    assert!(!store.app_password_exists(p2.id).await.unwrap());
    new_user(store, "twofa-a").await;
    assert_eq!(store.get_two_factor("twofa-a").await.unwrap(), None);
    assert!(
        store
            .list_app_passwords("twofa-a")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.recovery_codes_left("twofa-a").await.unwrap(), 0);
    store.delete_user("twofa-a").await.unwrap();
    store.delete_user("twofa-b").await.unwrap();
}
