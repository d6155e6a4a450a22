//! SCRAM keys per account: stored, replaced, removed; dropped when the password hash changes
//! or the account goes.

use super::new_user;
use crate::{MailStore, ScramKeys, StoreError};

pub async fn scram_keys(store: &dyn MailStore) {
    new_user(store, "scram-a").await;
    new_user(store, "scram-b").await;
    assert_eq!(
        store.get_scram_keys("scram-a").await.unwrap(),
        None,
        "a new account has no SCRAM keys"
    );
    let keys = ScramKeys {
        iterations: 4096,
        salt: b"salt-a".to_vec(),
        stored_key: vec![1; 32],
        server_key: vec![2; 32],
    };
    store.set_scram_keys("scram-a", Some(&keys)).await.unwrap();
    assert_eq!(
        store.get_scram_keys("scram-a").await.unwrap(),
        Some(keys.clone())
    );
    assert_eq!(
        store.get_scram_keys("scram-b").await.unwrap(),
        None,
        "keys belong to one account"
    );
    // Replaced as a whole.
    let other = ScramKeys {
        iterations: 10000,
        salt: b"salt-a2".to_vec(),
        stored_key: vec![3; 32],
        server_key: vec![4; 32],
    };
    store.set_scram_keys("scram-a", Some(&other)).await.unwrap();
    assert_eq!(
        store.get_scram_keys("scram-a").await.unwrap(),
        Some(other.clone())
    );
    // Removed.
    store.set_scram_keys("scram-a", None).await.unwrap();
    assert_eq!(store.get_scram_keys("scram-a").await.unwrap(), None);
    // No such account.
    assert!(matches!(
        store.set_scram_keys("scram-nobody", Some(&keys)).await,
        Err(StoreError::NoSuchUser)
    ));
    assert_eq!(store.get_scram_keys("scram-nobody").await.unwrap(), None);
    // A new password hash drops the keys: the old password must not log in through SCRAM.
    store.set_scram_keys("scram-a", Some(&keys)).await.unwrap();
    store.set_scram_keys("scram-b", Some(&other)).await.unwrap();
    store.set_password("scram-a", "new-hash").await.unwrap();
    assert_eq!(
        store.get_scram_keys("scram-a").await.unwrap(),
        None,
        "set_password drops the SCRAM keys"
    );
    assert_eq!(
        store.get_scram_keys("scram-b").await.unwrap(),
        Some(other),
        "only that account's"
    );
    // A deleted account takes its keys along; a new one of the same name starts without.
    store.delete_user("scram-b").await.unwrap();
    new_user(store, "scram-b").await;
    assert_eq!(store.get_scram_keys("scram-b").await.unwrap(), None);
    store.delete_user("scram-a").await.unwrap();
    store.delete_user("scram-b").await.unwrap();

    // Server secrets: 32 random bytes, the same at every call, one per name.
    let s1 = store.server_secret("scram-test").await.unwrap();
    assert_eq!(s1.len(), 32);
    assert_eq!(store.server_secret("scram-test").await.unwrap(), s1);
    assert_ne!(store.server_secret("scram-test2").await.unwrap(), s1);
}

/// SCRAM-SHA-1 keys: a second kind beside the SCRAM-SHA-256 ones, each kept, replaced and
/// dropped on its own and both dropped by a new password or a deleted account.
pub async fn scram_sha1_keys(store: &dyn MailStore) {
    new_user(store, "sha1-a").await;
    let sha256 = ScramKeys {
        iterations: 4096,
        salt: b"salt-256".to_vec(),
        stored_key: vec![5; 32],
        server_key: vec![6; 32],
    };
    let sha1 = ScramKeys {
        iterations: 4096,
        salt: b"salt-1".to_vec(),
        stored_key: vec![7; 20],
        server_key: vec![8; 20],
    };
    assert_eq!(store.get_scram_sha1_keys("sha1-a").await.unwrap(), None);
    store.set_scram_keys("sha1-a", Some(&sha256)).await.unwrap();
    assert_eq!(
        store.get_scram_sha1_keys("sha1-a").await.unwrap(),
        None,
        "SCRAM-SHA-256 keys are not SCRAM-SHA-1 keys"
    );
    store
        .set_scram_sha1_keys("sha1-a", Some(&sha1))
        .await
        .unwrap();
    assert_eq!(
        store.get_scram_sha1_keys("sha1-a").await.unwrap(),
        Some(sha1.clone())
    );
    assert_eq!(
        store.get_scram_keys("sha1-a").await.unwrap(),
        Some(sha256.clone()),
        "each kind on its own"
    );
    store.set_scram_sha1_keys("sha1-a", None).await.unwrap();
    assert_eq!(store.get_scram_sha1_keys("sha1-a").await.unwrap(), None);
    assert!(store.get_scram_keys("sha1-a").await.unwrap().is_some());
    assert!(matches!(
        store.set_scram_sha1_keys("sha1-nobody", Some(&sha1)).await,
        Err(StoreError::NoSuchUser)
    ));
    store
        .set_scram_sha1_keys("sha1-a", Some(&sha1))
        .await
        .unwrap();
    store.set_password("sha1-a", "another-hash").await.unwrap();
    assert_eq!(
        store.get_scram_sha1_keys("sha1-a").await.unwrap(),
        None,
        "set_password drops the SCRAM-SHA-1 keys too"
    );
    store
        .set_scram_sha1_keys("sha1-a", Some(&sha1))
        .await
        .unwrap();
    store.delete_user("sha1-a").await.unwrap();
    new_user(store, "sha1-a").await;
    assert_eq!(store.get_scram_sha1_keys("sha1-a").await.unwrap(), None);
    store.delete_user("sha1-a").await.unwrap();
}
