//! One STORE over many messages whose flags differ: each message gets its own result (the
//! PostgreSQL backend writes them all with one statement), keywords of any text survive, and
//! the STATUS counters follow.

use super::{inbox, kw, message, new_user};
use crate::{FlagOp, MailStore, flags};

pub async fn flags_bulk(store: &dyn MailStore) {
    let u = new_user(store, "flagsbulk-a").await;
    let ib = inbox(store, u).await;
    let msgs = (0..40)
        .map(|i| message(&format!("m{i}"), &format!("body {i}")))
        .collect();
    let (_, uids) = store.append(ib, msgs).await.unwrap();
    // Keywords with the characters an array literal must escape or would split on.
    let odd = ["a\"b", "c\\d", "e,f", "{g}", "h i", "NULL"];
    for (i, uid) in uids.iter().enumerate() {
        if i % 3 == 0 {
            continue;
        }
        let words: Vec<&str> = odd.iter().copied().skip(i % odd.len()).take(2).collect();
        let system = if i % 2 == 0 { flags::SEEN } else { 0 };
        store
            .set_flags(ib, &[*uid], FlagOp::Add, &kw(system, &words), None)
            .await
            .unwrap();
    }
    let before = store.messages(ib).await.unwrap();
    let m0 = store.status(ib).await.unwrap().highest_modseq;

    // Add \Deleted and $Work everywhere: every message changes, each keeps its own keywords.
    let arg = kw(flags::DELETED, &["$Work"]);
    let r = store
        .set_flags(ib, &uids, FlagOp::Add, &arg, None)
        .await
        .unwrap();
    assert_eq!(r.updated.len(), uids.len(), "every message changed");
    let after = store.messages(ib).await.unwrap();
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a.uid, b.uid);
        let want = crate::flagops::apply(FlagOp::Add, &b.flags, &arg);
        assert!(b.flags.keywords.iter().all(|k| want.keywords.contains(k)));
        assert_eq!(
            a.flags, want,
            "uid {}: old flags and keywords kept, new added",
            a.uid
        );
        assert_eq!(a.modseq, m0 + 1, "uid {}: one new modseq for all", a.uid);
        let upd = r.updated.iter().find(|x| x.uid == a.uid).unwrap();
        assert_eq!(upd.flags, a.flags, "uid {}: result as stored", a.uid);
    }
    let st = store.status(ib).await.unwrap();
    assert_eq!(st.deleted, uids.len() as u32);
    assert_eq!(st.highest_modseq, m0 + 1);

    // Remove on a subset with duplicates in the set: only those messages change.
    let some: Vec<u32> = uids.iter().step_by(4).copied().chain([uids[0]]).collect();
    let r = store
        .set_flags(ib, &some, FlagOp::Remove, &kw(flags::DELETED, &[]), None)
        .await
        .unwrap();
    assert_eq!(r.updated.len(), uids.len().div_ceil(4));
    let st = store.status(ib).await.unwrap();
    assert_eq!(st.deleted, (uids.len() - uids.len().div_ceil(4)) as u32);
    for m in store.messages(ib).await.unwrap() {
        let cleared = some.contains(&m.uid);
        assert_eq!(
            m.flags.system & flags::DELETED == 0,
            cleared,
            "uid {}",
            m.uid
        );
        assert_eq!(m.modseq, if cleared { m0 + 2 } else { m0 + 1 });
    }
}
