//! Append, flags, expunge, copy, move, body deduplication.

use super::{inbox, kw, message, new_user};
use crate::ParsedInfo;
use crate::{FlagOp, MailStore, MessageBytes, StoreError, flags};

pub async fn append(store: &dyn MailStore) {
    let u = new_user(store, "append-a").await;
    let ib = inbox(store, u).await;
    let before = store.status(ib).await.unwrap();
    assert_eq!((before.messages, before.uidnext), (0, 1));
    let mut m1 = message("one", "first body");
    m1.flags = kw(flags::SEEN, &["$Label", "$label"]);
    let (v1, uids1) = store.append(ib, vec![m1.clone()]).await.unwrap();
    let (v2, uids2) = store
        .append(
            ib,
            vec![message("two", "second"), message("three", "third")],
        )
        .await
        .unwrap();
    assert_eq!((v1, v2), (before.uidvalidity, before.uidvalidity));
    assert_eq!(uids1.len() + uids2.len(), 3);
    let all: Vec<u32> = uids1.iter().chain(&uids2).copied().collect();
    assert!(
        all.windows(2).all(|w| w[0] < w[1]),
        "UIDs strictly ascending: {all:?}"
    );
    let st = store.status(ib).await.unwrap();
    assert_eq!(st.messages, 3);
    assert_eq!(st.unseen, 2);
    // By name: any case of INBOX; a missing mailbox is None and adds nothing anywhere.
    let (v3, uids3) = store
        .append_to(u, "inbox", vec![message("four", "fourth")])
        .await
        .unwrap()
        .expect("INBOX by name");
    assert_eq!(v3, before.uidvalidity);
    assert!(uids3[0] > all[2]);
    let missing = store
        .append_to(u, "No Such Folder", vec![message("five", "fifth")])
        .await
        .unwrap();
    assert!(missing.is_none());
    assert_eq!(store.status(ib).await.unwrap().messages, 4);
    store.expunge(ib, &uids3).await.unwrap();
    assert!(st.uidnext > all[2]);
    assert!(st.highest_modseq > before.highest_modseq);

    let msgs = store.messages(ib).await.unwrap();
    assert_eq!(msgs.iter().map(|m| m.uid).collect::<Vec<_>>(), all);
    assert_eq!(
        msgs[0].flags,
        kw(flags::SEEN, &["$Label"]),
        "keywords deduped case-insensitively"
    );
    assert!(
        msgs[0].modseq < msgs[1].modseq,
        "a later append has a higher modseq"
    );
    assert!(msgs.iter().all(|m| m.modseq <= st.highest_modseq));
    let MessageBytes::Memory(data) = &m1.data else {
        unreachable!()
    };
    assert_eq!(msgs[0].size, data.len() as u64);
    assert_eq!(st.size, msgs.iter().map(|m| m.size).sum::<u64>());
    assert_eq!(
        (msgs[0].internal_date, msgs[0].internal_date_offset),
        (1_700_000_000, 60)
    );
    assert_eq!(*store.message_bytes(ib, all[0]).await.unwrap(), **data);
    // The parse as given, without the search text (indexed, not kept); the batch form too,
    // missing UIDs left out, both for a dense set and a sparse one.
    let without_text = ParsedInfo {
        search_text: String::new(),
        search_body_offset: 0,
        ..m1.parsed.clone()
    };
    assert_eq!(store.parsed_info(ib, all[0]).await.unwrap(), without_text);
    for set in [vec![all[0], all[1]], vec![all[0], all[1] + 1_000_000]] {
        let batch = store.parsed_infos(ib, &set).await.unwrap();
        assert_eq!(batch[0], (all[0], without_text.clone()), "set {set:?}");
        let want: Vec<u32> = set.iter().copied().filter(|u| all.contains(u)).collect();
        let got: Vec<u32> = batch.iter().map(|(u, _)| *u).collect();
        assert_eq!(got, want, "set {set:?}");
    }
    assert!(store.parsed_infos(ib, &[]).await.unwrap().is_empty());
    // Prefixes of several messages in one call: cut at the length asked, whole when the
    // message is shorter, missing UIDs left out, ascending.
    let second = store.message_bytes(ib, all[1]).await.unwrap();
    let got = store
        .message_prefixes(ib, &[(all[0], 10), (all[1] + 1_000_000, 5)])
        .await
        .unwrap();
    assert_eq!(got, vec![(all[0], data[..10].to_vec())]);
    let got = store
        .message_prefixes(ib, &[(all[0], 0), (all[1], 1 << 40)])
        .await
        .unwrap();
    assert_eq!(got, vec![(all[0], Vec::new()), (all[1], second.to_vec())]);
    assert!(store.message_prefixes(ib, &[]).await.unwrap().is_empty());
    assert!(matches!(
        store.message_bytes(ib, 999).await,
        Err(StoreError::NoSuchMailbox)
    ));
    assert!(matches!(
        store.parsed_info(ib, 999).await,
        Err(StoreError::NoSuchMailbox)
    ));
    assert!(matches!(
        store.append(-5, vec![message("x", "y")]).await,
        Err(StoreError::NoSuchMailbox)
    ));
    let (_, none) = store.append(ib, Vec::new()).await.unwrap();
    assert!(none.is_empty());

    // A failed append adds nothing and leaves no unreferenced body behind.
    let before = store.status(ib).await.unwrap();
    let mut missing = message("missing", "unreadable");
    missing.data = MessageBytes::File("/nonexistent/mailkeep/msg.eml".into());
    let res = store
        .append(ib, vec![message("ok", "written first"), missing])
        .await;
    assert!(res.is_err(), "append of an unreadable file fails");
    assert_eq!(
        store.status(ib).await.unwrap(),
        before,
        "a failed append changes nothing"
    );
    let problems = store.check().await.unwrap();
    assert!(problems.is_empty(), "after a failed append: {problems:?}");

    // From a file.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("msg.eml");
    std::fs::write(&path, b"Subject: file\r\n\r\nfrom a file\r\n").expect("write");
    let mut m = message("file", "from a file");
    m.data = MessageBytes::File(path);
    let (_, u4) = store.append(ib, vec![m]).await.unwrap();
    assert_eq!(
        *store.message_bytes(ib, u4[0]).await.unwrap(),
        b"Subject: file\r\n\r\nfrom a file\r\n"
    );
    assert!(u4[0] > all[2]);
}

pub async fn flag_changes(store: &dyn MailStore) {
    let u = new_user(store, "flags-a").await;
    let ib = inbox(store, u).await;
    let (_, uids) = store
        .append(
            ib,
            vec![message("1", "a"), message("2", "b"), message("3", "c")],
        )
        .await
        .unwrap();
    let m0 = store.status(ib).await.unwrap().highest_modseq;

    let r = store
        .set_flags(
            ib,
            &uids[..2],
            FlagOp::Add,
            &kw(flags::SEEN, &["Foo"]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.updated.len(), 2);
    assert!(r.modified.is_empty());
    let m1 = r.updated[0].modseq;
    assert!(m1 > m0);
    assert_eq!(store.status(ib).await.unwrap().highest_modseq, m1);
    assert_eq!(r.updated[1].flags, kw(flags::SEEN, &["Foo"]));

    // Adding what is there changes nothing and bumps nothing.
    let r = store
        .set_flags(ib, &uids[..1], FlagOp::Add, &kw(0, &["FOO"]), None)
        .await
        .unwrap();
    assert!(r.updated.is_empty());
    assert_eq!(store.status(ib).await.unwrap().highest_modseq, m1);

    let r = store
        .set_flags(
            ib,
            &uids[..1],
            FlagOp::Remove,
            &kw(flags::SEEN, &["foo"]),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.updated[0].flags, kw(0, &[]));
    let m2 = r.updated[0].modseq;
    assert!(m2 > m1);

    // Replace lists every matched message, changed or not.
    let r = store
        .set_flags(ib, &uids, FlagOp::Replace, &kw(flags::SEEN, &["Foo"]), None)
        .await
        .unwrap();
    assert_eq!(r.updated.iter().map(|x| x.uid).collect::<Vec<_>>(), uids);
    assert_eq!(
        r.updated[1].modseq, m1,
        "unchanged message keeps its modseq"
    );
    let m3 = r.updated[0].modseq;
    assert!(m3 > m2);

    // UNCHANGEDSINCE (RFC 7162 §3.1.3): uids[0] and uids[2] changed at m3 > m1.
    let r = store
        .set_flags(ib, &uids, FlagOp::Add, &kw(flags::FLAGGED, &[]), Some(m1))
        .await
        .unwrap();
    assert_eq!(r.modified, [uids[0], uids[2]]);
    assert_eq!(
        r.updated.iter().map(|x| x.uid).collect::<Vec<_>>(),
        [uids[1]]
    );
    let m4 = r.updated[0].modseq;

    let ch = store.changes_since(ib, m3).await.unwrap();
    assert_eq!(
        ch.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [uids[1]]
    );
    assert_eq!(
        ch.changed[0].flags,
        kw(flags::SEEN | flags::FLAGGED, &["Foo"])
    );
    assert_eq!(ch.highest_modseq, m4);
    assert!(ch.expunged.is_empty());
    let all = store.changes_since(ib, 0).await.unwrap();
    assert_eq!(all.changed.len(), 3);

    // Unknown UIDs are ignored; a missing mailbox is an error.
    let r = store
        .set_flags(ib, &[9999], FlagOp::Add, &kw(flags::SEEN, &[]), None)
        .await
        .unwrap();
    assert!(r.updated.is_empty() && r.modified.is_empty());
    let err = store
        .set_flags(-1, &[1], FlagOp::Add, &kw(flags::SEEN, &[]), None)
        .await;
    assert!(matches!(err, Err(StoreError::NoSuchMailbox)));
    let st = store.status(ib).await.unwrap();
    assert_eq!((st.unseen, st.deleted), (0, 0));
    store
        .set_flags(ib, &uids[..1], FlagOp::Add, &kw(flags::DELETED, &[]), None)
        .await
        .unwrap();
    assert_eq!(store.status(ib).await.unwrap().deleted, 1);
}

pub async fn expunge(store: &dyn MailStore) {
    let u = new_user(store, "expunge-a").await;
    let ib = inbox(store, u).await;
    let (_, uids) = store
        .append(
            ib,
            vec![
                message("1", "a"),
                message("2", "b"),
                message("3", "c"),
                message("4", "d"),
            ],
        )
        .await
        .unwrap();
    let before = store.status(ib).await.unwrap().highest_modseq;
    let kept = store.message_bytes(ib, uids[0]).await.unwrap();
    let kept_parse = store.parsed_info(ib, uids[0]).await.unwrap();
    let removed = store
        .expunge(ib, &[uids[2], uids[0], 12345, uids[2]])
        .await
        .unwrap();
    assert_eq!(removed, [uids[0], uids[2]]);
    let msgs: Vec<u32> = store
        .messages(ib)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(msgs, [uids[1], uids[3]]);
    let ch = store.changes_since(ib, before).await.unwrap();
    assert_eq!(ch.expunged, [uids[0], uids[2]]);
    assert!(ch.changed.is_empty());
    assert!(ch.highest_modseq > before);
    assert!(store.expunge(ib, &[uids[0]]).await.unwrap().is_empty());
    // RFC 2180 §4.1.1: a session not yet told of the expunge may still FETCH the message, so
    // its bytes and parse stay readable for a grace period (while never listed again).
    assert_eq!(store.message_bytes(ib, uids[0]).await.unwrap(), kept);
    assert_eq!(store.parsed_info(ib, uids[0]).await.unwrap(), kept_parse);
    assert!(matches!(
        store.message_bytes(ib, 12345).await,
        Err(StoreError::NoSuchMailbox)
    ));
    // UIDs are never reused.
    let (_, next) = store.append(ib, vec![message("5", "e")]).await.unwrap();
    assert!(next[0] > uids[3]);
    let st = store.status(ib).await.unwrap();
    assert_eq!(st.messages, 3);
}

pub async fn copy_and_move(store: &dyn MailStore) {
    let u = new_user(store, "copy-a").await;
    let ib = inbox(store, u).await;
    let dst = store.create_mailbox(u, "dst", None).await.unwrap();
    let mut m = message("1", "copied body");
    m.flags = kw(flags::FLAGGED, &["$K"]);
    let (_, src) = store
        .append(
            ib,
            vec![m, message("2", "moved body"), message("3", "stays")],
        )
        .await
        .unwrap();
    store
        .append(dst.id, vec![message("pre", "existing")])
        .await
        .unwrap();

    let (v, map) = store.copy(ib, &[src[0], 777], dst.id).await.unwrap();
    assert_eq!(v, dst.uidvalidity);
    assert_eq!(map.len(), 1);
    assert_eq!(map[0].0, src[0]);
    assert!(
        map[0].1 >= 2,
        "copy gets a new UID after the existing message"
    );
    let d = store.messages(dst.id).await.unwrap();
    let copied = d.iter().find(|x| x.uid == map[0].1).expect("copy present");
    assert_eq!(copied.flags, kw(flags::FLAGGED, &["$K"]));
    assert_eq!(
        store.messages(ib).await.unwrap().len(),
        3,
        "copy leaves the source"
    );
    assert_eq!(
        store.message_bytes(dst.id, map[0].1).await.unwrap(),
        store.message_bytes(ib, src[0]).await.unwrap()
    );
    // The copy is searchable in its new mailbox.
    assert_eq!(
        store
            .search_text(dst.id, &[map[0].1], "copied body", true)
            .await
            .unwrap(),
        vec![map[0].1]
    );

    let src_modseq = store.status(ib).await.unwrap().highest_modseq;
    let (_, mv) = store.move_messages(ib, &[src[1]], dst.id).await.unwrap();
    assert_eq!(mv.len(), 1);
    assert!(mv[0].1 > map[0].1);
    let left: Vec<u32> = store
        .messages(ib)
        .await
        .unwrap()
        .iter()
        .map(|x| x.uid)
        .collect();
    assert_eq!(left, [src[0], src[2]]);
    assert_eq!(
        store.changes_since(ib, src_modseq).await.unwrap().expunged,
        [src[1]]
    );
    assert_eq!(
        &store.message_bytes(dst.id, mv[0].1).await.unwrap()[..],
        b"Subject: 2\r\nFrom: a@example.org\r\n\r\nmoved body\r\n"
    );
    assert_eq!(store.status(dst.id).await.unwrap().messages, 3);

    // Copy into the same mailbox is a plain copy with a new UID.
    let (_, same) = store.copy(ib, &[src[2]], ib).await.unwrap();
    assert!(same[0].1 > src[2]);
    assert!(matches!(
        store.copy(ib, &[src[0]], -7).await,
        Err(StoreError::NoSuchMailbox)
    ));
    assert!(matches!(
        store.move_messages(-7, &[1], ib).await,
        Err(StoreError::NoSuchMailbox)
    ));
}

pub async fn dedup(store: &dyn MailStore) {
    let a = new_user(store, "dedup-a").await;
    let b = new_user(store, "dedup-b").await;
    let (ia, ibx) = (inbox(store, a).await, inbox(store, b).await);
    let (_, ua) = store
        .append(ia, vec![message("same", "identical bytes")])
        .await
        .unwrap();
    let (_, ub) = store
        .append(ibx, vec![message("same", "identical bytes")])
        .await
        .unwrap();
    let problems = store.check().await.unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    store.expunge(ia, &ua).await.unwrap();
    // The other reference keeps the body.
    assert!(
        store
            .message_bytes(ibx, ub[0])
            .await
            .unwrap()
            .ends_with(b"identical bytes\r\n")
    );
    assert_eq!(
        store
            .search_text(ibx, &ub, "identical", false)
            .await
            .unwrap(),
        ub
    );
    store.expunge(ibx, &ub).await.unwrap();
    let (_, again) = store
        .append(ia, vec![message("same", "identical bytes")])
        .await
        .unwrap();
    assert!(
        store
            .message_bytes(ia, again[0])
            .await
            .unwrap()
            .ends_with(b"identical bytes\r\n")
    );
    let problems = store.check().await.unwrap();
    assert!(problems.is_empty(), "{problems:?}");
}

/// Operations on more UIDs than fit a handful of point lookups (the store may switch to range
/// scans), with UIDs that do not exist mixed in.
pub async fn bulk(store: &dyn MailStore) {
    let u = new_user(store, "bulk-a").await;
    let ib = inbox(store, u).await;
    let dst = store.create_mailbox(u, "dst", None).await.unwrap();
    let msgs = (0..150)
        .map(|i| message("bulk", &format!("message number {i}")))
        .collect();
    let (_, uids) = store.append(ib, msgs).await.unwrap();
    assert_eq!(uids.len(), 150);
    assert!(uids.windows(2).all(|w| w[0] < w[1]));
    let mut even: Vec<u32> = uids.iter().copied().step_by(2).collect();
    let wanted = even.clone();
    even.extend(100_000..100_010);
    even.reverse();

    let r = store
        .set_flags(ib, &even, FlagOp::Add, &kw(flags::SEEN, &[]), None)
        .await
        .unwrap();
    assert_eq!(r.updated.iter().map(|x| x.uid).collect::<Vec<_>>(), wanted);
    assert_eq!(store.status(ib).await.unwrap().unseen, 75);

    let (_, map) = store.copy(ib, &even, dst.id).await.unwrap();
    assert_eq!(
        map.iter().map(|x| x.0).collect::<Vec<_>>(),
        wanted,
        "ascending source UIDs"
    );
    assert!(map.windows(2).all(|w| w[0].1 < w[1].1));
    let copied = store.messages(dst.id).await.unwrap();
    assert_eq!(copied.len(), 75);
    assert!(copied.iter().all(|m| m.flags.system & flags::SEEN != 0));

    let removed = store.expunge(ib, &even[..70]).await.unwrap();
    assert_eq!(removed.len(), 60, "the 10 unknown UIDs are skipped");
    assert_eq!(store.messages(ib).await.unwrap().len(), 90);
    let found = store
        .search_text(ib, &uids, "number 14", true)
        .await
        .unwrap();
    let expected: Vec<u32> = (0..150)
        .filter(|i| format!("message number {i}").contains("number 14"))
        .map(|i| uids[i])
        .filter(|u| !removed.contains(u))
        .collect();
    assert_eq!(found, expected);
}

/// Messages handed over as received ([`MessageBytes::Received`], an APPEND's spool files): the
/// store normalizes and analyzes them itself, one at a time, all in one transaction.
pub async fn received(store: &dyn MailStore) {
    let u = new_user(store, "received-a").await;
    let ib = inbox(store, u).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        (path, bytes.len() as u64)
    };
    let received = |(path, len): (std::path::PathBuf, u64), binary: bool| {
        let mut m = message("ignored", "ignored");
        m.parsed = ParsedInfo::default();
        m.data = MessageBytes::Received { path, len, binary };
        m
    };
    let bare = file(
        "bare.eml",
        b"Subject: bare lf\nFrom: a@example.org\n\nzyxomatic body\n",
    );
    let crlf = file("crlf.eml", b"Subject: crlf\r\n\r\nas sent\r\n");
    let mut bin =
        b"Subject: bin\nMIME-Version: 1.0\nContent-Transfer-Encoding: binary\n\n".to_vec();
    bin.extend_from_slice(b"a\nb\0c\nd");
    let bin = file("bin.eml", &bin);
    let (_, uids) = store
        .append(
            ib,
            vec![
                received(bare, false),
                message("memory", "in memory"),
                received(crlf, false),
                received(bin, true),
            ],
        )
        .await
        .expect("append received");
    assert_eq!(uids.len(), 4);
    assert_eq!(
        *store.message_bytes(ib, uids[0]).await.unwrap(),
        b"Subject: bare lf\r\nFrom: a@example.org\r\n\r\nzyxomatic body\r\n",
        "bare LF becomes CRLF"
    );
    assert_eq!(
        *store.message_bytes(ib, uids[2]).await.unwrap(),
        b"Subject: crlf\r\n\r\nas sent\r\n"
    );
    let stored = store.message_bytes(ib, uids[3]).await.unwrap();
    let info = store.parsed_info(ib, uids[3]).await.unwrap();
    let tree = mailkeep_mime::PartTree::from_bytes(&info.parts).expect("part tree");
    assert_eq!(
        mailkeep_mime::binary(&stored, &tree, &[1]).unwrap(),
        b"a\nb\0c\nd",
        "a literal8's binary part keeps its bytes"
    );
    assert!(!stored.contains(&0));
    // The analysis is the store's, not the (empty) one handed over.
    let info = store.parsed_info(ib, uids[0]).await.unwrap();
    let env = String::from_utf8_lossy(&info.envelope).into_owned();
    assert!(env.contains("bare lf"), "envelope {env}");
    assert_eq!(
        store.search_text(ib, &uids, "xomati", true).await.unwrap(),
        vec![uids[0]],
        "the received message is in the search index"
    );

    // All or nothing: a source that cannot be read as announced fails the whole append.
    let before = store.status(ib).await.unwrap();
    let (short_path, _) = file("short.eml", b"Subject: short\r\n\r\nx\r\n");
    let big = file("big.eml", &vec![b'x'; 300_000]);
    let res = store
        .append(
            ib,
            vec![received(big, false), received((short_path, 1_000), false)],
        )
        .await;
    assert!(res.is_err(), "a short spool file fails the append");
    assert_eq!(store.status(ib).await.unwrap(), before, "nothing added");
}

/// `message_reader` gives exactly `message_bytes`, for a small message and for one big
/// enough that backends keep it outside their index, and the same errors.
pub async fn streams(store: &dyn MailStore) {
    use std::io::Read;
    let u = new_user(store, "streams-a").await;
    let ib = inbox(store, u).await;
    // 3 MiB of text that packs poorly (a simple generator's digits), so it is a file.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut big = String::with_capacity(3 << 20);
    while big.len() < 3 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        big.push_str(&format!("{x:020}\r\n"));
    }
    let msgs = vec![message("small", "a short body"), message("big", &big)];
    let (_, uids) = store.append(ib, msgs).await.unwrap();
    for uid in uids {
        let whole = store.message_bytes(ib, uid).await.unwrap();
        let mut r = store.message_reader(ib, uid).await.unwrap();
        assert_eq!(
            r.size(),
            whole.len() as u64,
            "message_reader size, uid {uid}"
        );
        let mut got = Vec::new();
        let mut piece = vec![0u8; 4096];
        loop {
            let n = r.read(&mut piece).expect("message_reader read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&piece[..n]);
        }
        assert!(got == *whole, "message_reader bytes differ, uid {uid}");
    }
    assert!(matches!(
        store.message_reader(ib, 999).await,
        Err(StoreError::NoSuchMailbox)
    ));
}
