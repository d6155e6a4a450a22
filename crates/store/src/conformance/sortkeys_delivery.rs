//! Sort and thread keys (RFC 5256) computed at delivery: every way mail arrives (APPEND, a
//! message received as bytes for the store to analyze, an import with given UIDs, REPLACE)
//! leaves its body's keys in the store, the same as `mailkeep_mime::sortkeys` computes them,
//! so a SORT or THREAD right after has nothing to compute; a COPY shares them.

use super::{inbox, message, new_user};
use crate::{MailStore, MessageBytes, NewMessage};

/// The keys `mailkeep_mime::sortkeys` gives a message given with its parse.
fn expected(m: &NewMessage) -> Vec<u8> {
    let MessageBytes::Memory(data) = &m.data else {
        unreachable!("conformance messages are in memory")
    };
    mailkeep_mime::sortkeys::sort_keys(data, &m.parsed.envelope, m.parsed.sent_date)
}

pub async fn delivered_sort_keys(store: &dyn MailStore) {
    let u = new_user(store, "sortkeys-d").await;
    let ib = inbox(store, u).await;

    // APPEND (also LMTP's and CATENATE's path): keys are there at once.
    let msgs: Vec<NewMessage> = (1..=3)
        .map(|i| message(&format!("Re: delivered {i}"), &format!("body {i}")))
        .collect();
    let want: Vec<Vec<u8>> = msgs.iter().map(expected).collect();
    let (_, uids) = store.append(ib, msgs).await.unwrap();
    let got = store.sort_keys(ib, &uids).await.unwrap().to_vec();
    let got_keys: Vec<Vec<u8>> = got.iter().map(|(_, k)| k.clone()).collect();
    assert_eq!(got_keys, want, "APPEND keeps the keys with the body");
    let keys = mailkeep_mime::sortkeys::Keys::decode(&got[0].1).expect("a current row");
    assert_eq!(
        (keys.subject.as_str(), keys.reply, keys.sent),
        ("DELIVERED 1", true, Some(1_699_999_999)),
        "base subject, casemapped; the sent date"
    );

    // A message received as bytes: the store analyzes it, and computes its keys.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("received.eml");
    let raw = b"Date: Mon, 3 Jan 2000 10:00:00 +0000\nSubject: [list] Fwd: Hello\nFrom: Joe <joe@x.org>\nMessage-ID: <r2@x>\nReferences: <r0@x> <r1@x>\n\nhi\n";
    std::fs::write(&path, raw).unwrap();
    let received = NewMessage {
        data: MessageBytes::Received {
            path: path.clone(),
            len: raw.len() as u64,
            binary: false,
        },
        ..message("ignored", "ignored")
    };
    let (_, r) = store.append(ib, vec![received]).await.unwrap();
    let got = store.sort_keys(ib, &r).await.unwrap().to_vec();
    assert_eq!(got.len(), 1, "a received message has keys at once");
    let k = mailkeep_mime::sortkeys::Keys::decode(&got[0].1).unwrap();
    assert_eq!(
        (k.subject.as_str(), k.reply, k.from.as_str(), k.sent),
        ("HELLO", true, "JOE", Some(946_893_600))
    );
    assert_eq!(k.message_id.as_deref(), Some("r2@x"));
    assert_eq!(k.references, ["r0@x", "r1@x"]);

    // An import with given UIDs.
    let imported = store
        .import_mailbox(u, "sortkeys-import", None, Some(42))
        .await
        .unwrap();
    let m = message("imported", "imported body");
    let want = expected(&m);
    store
        .append_with_uids(imported.id, vec![(7, m)])
        .await
        .unwrap();
    assert_eq!(
        store.sort_keys(imported.id, &[7]).await.unwrap().to_vec(),
        [(7, want)],
        "an import keeps the keys"
    );

    // REPLACE: the new message has its keys.
    let m = message("replacement", "replacement body");
    let want = expected(&m);
    let (_, new_uid) = store
        .replace(ib, uids[2], u, "INBOX", m)
        .await
        .unwrap()
        .expect("INBOX exists");
    assert_eq!(
        store.sort_keys(ib, &[new_uid]).await.unwrap().to_vec(),
        [(new_uid, want)],
        "REPLACE keeps the keys"
    );

    // A copy shares its body's keys.
    let (_, pairs) = store.copy(ib, &uids[..1], imported.id).await.unwrap();
    assert_eq!(
        store
            .sort_keys(imported.id, &[pairs[0].1])
            .await
            .unwrap()
            .to_vec(),
        [(pairs[0].1, expected(&message("Re: delivered 1", "body 1")))]
    );

    store.delete_user("sortkeys-d").await.unwrap();
}
