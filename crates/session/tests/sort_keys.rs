//! SORT and THREAD read the sort keys kept in the store (RFC 5256): computed at delivery
//! (APPEND), and computed again and saved when a saved row cannot be read (mail stored before
//! keys were kept at delivery).

mod common;

use common::*;

fn msg(n: u32, subject: &str, from: &str, date: &str, extra: &str) -> String {
    format!(
        "From: {from}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <m{n}@x.org>\r\n{extra}\r\nbody {n}\r\n"
    )
}

async fn append(s: &mut mailkeep_session::Session, text: &str) {
    let cmd = format!("A APPEND INBOX {{{}+}}\r\n{text}\r\n", text.len());
    let out = ok(s, &cmd).await;
    assert!(out.contains("A OK"), "{out}");
}

#[tokio::test]
async fn keys_are_saved_and_reused() {
    let env = env().await;
    let mut s = login(&env, "alice").await;
    append(
        &mut s,
        &msg(
            1,
            "plans",
            "Zed <z@x.org>",
            "Mon, 3 Jan 2000 10:00:00 +0000",
            "",
        ),
    )
    .await;
    append(
        &mut s,
        &msg(
            2,
            "Re: plans",
            "amy <a@x.org>",
            "Tue, 4 Jan 2000 10:00:00 +0000",
            "In-Reply-To: <m1@x.org>\r\n",
        ),
    )
    .await;
    append(
        &mut s,
        &msg(
            3,
            "news",
            "Bob <b@x.org>",
            "Sun, 2 Jan 2000 10:00:00 +0000",
            "",
        ),
    )
    .await;
    ok(&mut s, "B SELECT INBOX\r\n").await;
    let mb = mailbox_id(&env, "alice", "INBOX").await;
    // APPEND kept every message's keys with its body: nothing is left for SORT to compute.
    let delivered = env.store.sort_keys(mb, &[1, 2, 3]).await.unwrap().to_vec();
    assert_eq!(delivered.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3]);

    let want = [
        ("C UID SORT (SUBJECT) UTF-8 ALL\r\n", "* SORT 3 1 2\r\n"),
        ("C UID SORT (FROM) UTF-8 ALL\r\n", "* SORT 2 3 1\r\n"),
        (
            "C UID SORT (REVERSE DATE) UTF-8 ALL\r\n",
            "* SORT 2 1 3\r\n",
        ),
        (
            "C UID THREAD REFERENCES UTF-8 ALL\r\n",
            "* THREAD (3)(1 2)\r\n",
        ),
        (
            "C UID THREAD ORDEREDSUBJECT UTF-8 ALL\r\n",
            "* THREAD (3)(1 2)\r\n",
        ),
    ];
    for (cmd, answer) in want {
        let out = ok(&mut s, cmd).await;
        assert!(out.starts_with(answer), "{cmd}: {out}");
    }
    // SORT and THREAD read those rows as they were (none computed again, none rewritten).
    assert_eq!(
        env.store.sort_keys(mb, &[1, 2, 3]).await.unwrap().to_vec(),
        delivered
    );

    // A row that cannot be read (another format) is computed again, with the same answers.
    env.store
        .save_sort_keys(mb, vec![(2, b"\xffdamaged".to_vec())])
        .await
        .unwrap();
    for (cmd, answer) in want {
        let out = ok(&mut s, cmd).await;
        assert!(out.starts_with(answer), "{cmd} after damage: {out}");
    }
    let row = env.store.sort_keys(mb, &[2]).await.unwrap().to_vec();
    assert_eq!(
        row[0], delivered[1],
        "the row was computed again, as at delivery"
    );
}
