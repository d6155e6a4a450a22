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
