//! Object IDs (RFC 8474), save dates (RFC 8514), previews (RFC 8970) and REPLACE (RFC 8508).

use std::sync::Arc;

use super::{inbox, new_user};
use crate::{Flags, MailStore, MessageBytes, NewMessage, ParsedInfo, StoreError};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A message with the given header lines and body, analyzed as the session would.
pub fn headed(headers: &str, body: &str) -> NewMessage {
    let data = format!("{headers}\r\n{body}\r\n").into_bytes();
    NewMessage {
        parsed: ParsedInfo::from(mailkeep_mime::analyze(&data)),
        data: MessageBytes::Memory(Arc::new(data)),
        flags: Flags::default(),
        internal_date: 1_600_000_000,
        internal_date_offset: 0,
    }
}

pub async fn objects(store: &dyn MailStore) {
    let a = new_user(store, "objects-a").await;
    let b = new_user(store, "objects-b").await;
    let ia = inbox(store, a).await;
    let ib = inbox(store, b).await;
    let other = store.create_mailbox(a, "Other", None).await.unwrap().id;
    let before = now();
    let root = headed(
        "Message-ID: <root@x>\r\nSubject: root\r\n",
        "Root   text\r\n> quoted",
    );
    let reply = headed(
        "Message-ID: <reply@x>\r\nIn-Reply-To: <root@x>\r\nSubject: Re: root\r\n",
        "reply",
    );
    // The grandchild names only its parent; an unrelated message names nothing known.
    let child = headed(
        "Message-ID: <child@x>\r\nReferences: <reply@x>\r\n",
        "child",
    );
    let alone = headed("Message-ID: <alone@x>\r\n", "alone");
    let (_, uids) = store
        .append(ia, vec![root.clone(), reply, child, alone])
        .await
        .unwrap();
    let after = now();
    let objs = store.message_objects(ia, &uids).await.unwrap();
    assert_eq!(objs.len(), 4, "one entry per message");
    let id = |i: usize| &objs[i].1;
    let emails: std::collections::HashSet<&str> =
        objs.iter().map(|(_, o)| o.email_id.as_str()).collect();
    assert_eq!(emails.len(), 4, "different bodies, different EMAILIDs");
    for (_, o) in &objs {
        assert!(
            (2..=255).contains(&o.email_id.len())
                && o.email_id
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-'),
            "EMAILID is an objectid: {}",
            o.email_id
        );
        assert!(
            (before..=after).contains(&o.save_date),
            "SAVEDATE is the time of the APPEND"
        );
    }
    let thread = id(0).thread_id.clone().expect("a THREADID at delivery");
    assert_eq!(id(1).thread_id.as_ref(), Some(&thread), "In-Reply-To joins");
    assert_eq!(id(2).thread_id.as_ref(), Some(&thread), "References joins");
    assert_ne!(
        id(3).thread_id.as_ref(),
        Some(&thread),
        "no link, own thread"
    );

    // A parent delivered after its reply joins the reply's thread.
    let (_, late) = store
        .append(
            ia,
            vec![
                headed(
                    "Message-ID: <late-child@x>\r\nIn-Reply-To: <late@x>\r\n",
                    "c",
                ),
                headed("Message-ID: <late@x>\r\n", "p"),
            ],
        )
        .await
        .unwrap();
    let lo = store.message_objects(ia, &late).await.unwrap();
    assert_eq!(lo[0].1.thread_id, lo[1].1.thread_id, "parent after child");

    // COPY and MOVE keep EMAILID and THREADID; the copy gets its own save date.
    let (_, map) = store.copy(ia, &uids[..1], other).await.unwrap();
    let copied = store.message_objects(other, &[map[0].1]).await.unwrap();
    assert_eq!(copied[0].1.email_id, id(0).email_id, "COPY keeps EMAILID");
    assert_eq!(
        copied[0].1.thread_id,
        id(0).thread_id,
        "COPY keeps THREADID"
    );
    assert!(copied[0].1.save_date >= before);
    let (_, moved) = store.move_messages(ia, &uids[1..2], other).await.unwrap();
    let m = store.message_objects(other, &[moved[0].1]).await.unwrap();
    assert_eq!(m[0].1.email_id, id(1).email_id, "MOVE keeps EMAILID");
    assert_eq!(m[0].1.thread_id, id(1).thread_id, "MOVE keeps THREADID");
    assert!(
        store
            .message_objects(ia, &uids[1..2])
            .await
            .unwrap()
            .is_empty(),
        "a moved message is gone from the source"
    );

    // Another account: a reply to the same Message-ID starts its own thread (no links across accounts).
    let (_, ub) = store
        .append(
            ib,
            vec![headed(
                "Message-ID: <reply2@x>\r\nIn-Reply-To: <root@x>\r\n",
                "b",
            )],
        )
        .await
        .unwrap();
    let ob = store.message_objects(ib, &ub).await.unwrap();
    assert_ne!(
        ob[0].1.thread_id.as_ref(),
        Some(&thread),
        "threads per account"
    );

    // PREVIEW kept at delivery; a missing message is NoSuchMailbox.
    assert_eq!(
        store.preview(ia, uids[0]).await.unwrap().as_deref(),
        Some("Root text")
    );
    assert!(matches!(
        store.preview(ia, 9999).await,
        Err(StoreError::NoSuchMailbox)
    ));

    // REPLACE: the new message in, the old one out, in one step.
    let before_status = store.status(ia).await.unwrap();
    let (uidvalidity, new_uid) = store
        .replace(ia, uids[3], a, "Other", headed("Subject: new\r\n", "new"))
        .await
        .unwrap()
        .expect("target exists");
    assert_eq!(
        uidvalidity,
        store
            .get_mailbox(a, "Other")
            .await
            .unwrap()
            .unwrap()
            .uidvalidity
    );
    assert!(
        store
            .messages(other)
            .await
            .unwrap()
            .iter()
            .any(|m| m.uid == new_uid)
    );
    let after_status = store.status(ia).await.unwrap();
    assert_eq!(after_status.messages + 1, before_status.messages);
    assert!(
        store
            .message_objects(ia, &uids[3..4])
            .await
            .unwrap()
            .is_empty(),
        "the replaced message is expunged"
    );
    // A missing target: nothing appended, nothing expunged.
    let r = store
        .replace(ia, uids[0], a, "Nope", headed("Subject: x\r\n", "x"))
        .await
        .unwrap();
    assert_eq!(r, None);
    assert_eq!(store.status(ia).await.unwrap(), after_status);
    // The message to replace is gone (expunged by another session): nothing appended.
    let other_before = store.status(other).await.unwrap();
    let r = store
        .replace(ia, uids[3], a, "Other", headed("Subject: y\r\n", "y"))
        .await;
    assert!(matches!(r, Err(StoreError::NoSuchMailbox)), "{r:?}");
    assert_eq!(store.status(other).await.unwrap(), other_before);

    for u in ["objects-a", "objects-b"] {
        store.delete_user(u).await.unwrap();
    }
}
