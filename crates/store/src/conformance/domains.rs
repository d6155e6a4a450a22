//! Local domains, aliases and recipient resolution (LMTP).

use super::new_user;
use crate::recipients::{normalize_alias, normalize_domain};
use crate::{MailStore, Recipient, StoreError};

pub async fn domains_and_aliases(store: &dyn MailStore) {
    // Domains: added once, listed sorted, removed once.
    store.add_domain("dom-b.example").await.unwrap();
    store.add_domain("dom-a.example").await.unwrap();
    assert!(matches!(
        store.add_domain("dom-a.example").await,
        Err(StoreError::AlreadyExists)
    ));
    let list = store.list_domains().await.unwrap();
    let ours: Vec<_> = list.iter().filter(|d| d.starts_with("dom-")).collect();
    assert_eq!(ours, ["dom-a.example", "dom-b.example"], "domains sorted");
    assert!(store.is_local_domain("dom-a.example").await.unwrap());
    assert!(!store.is_local_domain("dom-z.example").await.unwrap());
    store.delete_domain("dom-b.example").await.unwrap();
    assert!(!store.is_local_domain("dom-b.example").await.unwrap());
    assert!(matches!(
        store.delete_domain("dom-b.example").await,
        Err(StoreError::Cannot(_))
    ));

    // Aliases point at existing accounts only.
    new_user(store, "dom-alice").await;
    new_user(store, "dom-carol@dom-c.example").await;
    new_user(store, "dom-catch").await;
    assert!(matches!(
        store.add_alias("x@dom-a.example", "dom-nobody").await,
        Err(StoreError::NoSuchUser)
    ));
    store
        .add_alias("dom-al@dom-a.example", "dom-alice")
        .await
        .unwrap();
    assert!(matches!(
        store.add_alias("dom-al@dom-a.example", "dom-catch").await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store.alias_target("dom-al@dom-a.example").await.unwrap(),
        Some("dom-alice".into())
    );
    assert!(
        store
            .list_aliases()
            .await
            .unwrap()
            .contains(&("dom-al@dom-a.example".into(), "dom-alice".into()))
    );

    let who = |r: Recipient| match r {
        Recipient::Account { user, detail } => {
            format!("{}/{}", user.name, detail.unwrap_or_default())
        }
        other => format!("{other:?}"),
    };
    let resolve =
        |a: &'static str| async move { who(store.resolve_recipient(a, "+").await.unwrap()) };
    // Plain account at any local domain, any case, with or without a detail.
    assert_eq!(resolve("dom-alice@dom-a.example").await, "dom-alice/");
    assert_eq!(resolve("DOM-Alice@DOM-A.example").await, "dom-alice/");
    assert_eq!(
        resolve("dom-alice+Lists@dom-a.example").await,
        "dom-alice/Lists"
    );
    assert_eq!(resolve("dom-alice+@dom-a.example").await, "dom-alice/");
    assert_eq!(resolve("dom-alice").await, "dom-alice/");
    // Alias, with a detail too.
    assert_eq!(resolve("dom-al@dom-a.example").await, "dom-alice/");
    assert_eq!(resolve("dom-al+x@dom-a.example").await, "dom-alice/x");
    // An account named by its full address works without its domain being local...
    assert_eq!(
        resolve("dom-carol@dom-c.example").await,
        "dom-carol@dom-c.example/"
    );
    assert_eq!(
        resolve("dom-carol+d@dom-c.example").await,
        "dom-carol@dom-c.example/d"
    );
    // ...but nothing else there does.
    assert_eq!(resolve("dom-alice@dom-c.example").await, "NoSuchDomain");
    assert_eq!(resolve("dom-alice@dom-z.example").await, "NoSuchDomain");
    assert_eq!(resolve("dom-nobody@dom-a.example").await, "NoSuchUser");
    assert_eq!(resolve("@dom-a.example").await, "NoSuchUser");
    // With no separator, `+` is part of the name.
    assert_eq!(
        who(store
            .resolve_recipient("dom-alice+x@dom-a.example", "")
            .await
            .unwrap()),
        "NoSuchUser"
    );
    // A catch-all takes whatever the domain has no other name for.
    store
        .add_alias("@dom-a.example", "dom-catch")
        .await
        .unwrap();
    assert_eq!(resolve("dom-nobody@dom-a.example").await, "dom-catch/");
    assert_eq!(resolve("dom-alice@dom-a.example").await, "dom-alice/");
    store.delete_alias("@dom-a.example").await.unwrap();
    assert!(matches!(
        store.delete_alias("@dom-a.example").await,
        Err(StoreError::Cannot(_))
    ));
    // Deleting an account deletes its aliases: a later account of the same name does not
    // inherit them.
    store.delete_user("dom-alice").await.unwrap();
    assert_eq!(resolve("dom-al@dom-a.example").await, "NoSuchUser");
    assert!(
        !store
            .list_aliases()
            .await
            .unwrap()
            .iter()
            .any(|(a, _)| a == "dom-al@dom-a.example"),
        "alias of a deleted account is gone"
    );
    new_user(store, "dom-alice").await;
    assert_eq!(resolve("dom-al@dom-a.example").await, "NoSuchUser");
    store.delete_user("dom-alice").await.unwrap();
    store.delete_domain("dom-a.example").await.unwrap();
    for u in ["dom-carol@dom-c.example", "dom-catch"] {
        store.delete_user(u).await.unwrap();
    }

    // Normalization.
    assert_eq!(normalize_domain("Example.ORG.").unwrap(), "example.org");
    assert!(normalize_domain("a@b").is_err());
    assert!(normalize_domain("").is_err());
    assert!(normalize_domain("a b").is_err());
    assert_eq!(
        normalize_alias("Bob@Example.org").unwrap(),
        "bob@example.org"
    );
    assert_eq!(normalize_alias("@Example.org").unwrap(), "@example.org");
    assert!(normalize_alias("bob").is_err());
    assert!(normalize_alias("bob@").is_err());
}
