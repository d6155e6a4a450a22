//! The session driven without a network, on a real SQLite store in a temporary directory.

use std::sync::Arc;

use mailkeep_store::MailStore;
use mailkeep_store::sqlite::SqliteStore;

use super::*;

struct T {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
}

async fn setup() -> T {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    for u in ["alice", "bob"] {
        store.create_user(u, "x").await.unwrap();
    }
    store.add_domain("example.org").await.unwrap();
    T { _dir: dir, store }
}

fn session(t: &T, config: Config) -> Session {
    Session::new(t.store.clone(), config)
}

/// Feeds `input` as a server would (a line at a time, BDAT chunks by size) and returns
/// everything the session answered, and whether it asked to close.
async fn feed(s: &mut Session, mut input: &[u8]) -> (String, Flow) {
    let mut out = Vec::new();
    let mut flow = Flow::Continue;
    while !input.is_empty() && flow == Flow::Continue {
        match s.want() {
            Want::Chunk(n) => {
                let take = (n as usize).min(input.len());
                flow = s.chunk(&input[..take], &mut out).await;
                input = &input[take..];
            }
            _ => {
                let end = input
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(input.len(), |i| i + 1);
                flow = s.line(&input[..end], &mut out).await;
                input = &input[end..];
            }
        }
    }
    (String::from_utf8(out).unwrap(), flow)
}

async fn inbox_messages(t: &T, user: &str, mailbox: &str) -> Vec<Vec<u8>> {
    let u = t.store.get_user(user).await.unwrap().unwrap();
    let mb = t.store.get_mailbox(u.id, mailbox).await.unwrap().unwrap();
    let mut all = Vec::new();
    for m in t.store.messages(mb.id).await.unwrap() {
        all.push(t.store.message_bytes(mb.id, m.uid).await.unwrap().to_vec());
    }
    all
}

fn codes(out: &str) -> Vec<&str> {
    out.lines().map(|l| &l[..l.len().min(9)]).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_transaction_with_per_recipient_replies() {
    let t = setup().await;
    let mut s = session(&t, Config::default());
    // Everything up to DATA in one go (PIPELINING), then the message.
    let (out, _) = feed(
        &mut s,
        b"LHLO mx\r\nMAIL FROM:<sender@remote.example> BODY=8BITMIME SIZE=100\r\n\
          RCPT TO:<alice@example.org>\r\nRCPT TO:<nobody@example.org>\r\n\
          RCPT TO:<bob@other.example>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n",
    )
    .await;
    assert!(
        out.contains("250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n"),
        "{out}"
    );
    assert!(
        out.contains("250-CHUNKING\r\n250 SIZE 52428800\r\n"),
        "{out}"
    );
    let tail: Vec<_> = out.lines().skip(6).collect();
    assert_eq!(
        tail,
        [
            "250 2.1.0 Sender OK",
            "250 2.1.5 Recipient OK",
            "550 5.1.1 <nobody@example.org> User unknown",
            "550 5.1.2 <bob@other.example> Domain not handled here",
            "250 2.1.5 Recipient OK",
            "354 Start mail input; end with <CRLF>.<CRLF>",
        ]
    );
    let (out, _) = feed(
        &mut s,
        b"Subject: hi\r\n\r\n..leading dot\r\nbare lf\n.\r\n",
    )
    .await;
    // One reply per accepted recipient, in RCPT order.
    assert_eq!(
        out,
        "250 2.0.0 <alice@example.org> Delivered\r\n250 2.0.0 <bob@example.org> Delivered\r\n"
    );
    let want =
        b"Return-Path: <sender@remote.example>\r\nSubject: hi\r\n\r\n.leading dot\r\nbare lf\r\n";
    assert_eq!(inbox_messages(&t, "alice", "INBOX").await, [want.to_vec()]);
    assert_eq!(inbox_messages(&t, "bob", "INBOX").await, [want.to_vec()]);
    // Stored once: one body for both recipients.
    assert!(t.store.check().await.unwrap().is_empty());
    // The session goes on: a second transaction with one recipient gets Delivered-To.
    let (out, flow) = feed(
        &mut s,
        b"MAIL FROM:<>\r\nRCPT TO:<Alice@Example.ORG>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n",
    )
    .await;
    assert_eq!(
        codes(&out),
        [
            "250 2.1.0",
            "250 2.1.5",
            "354 Start",
            "250 2.0.0",
            "221 2.0.0"
        ]
    );
    assert_eq!(flow, Flow::Close);
    let got = inbox_messages(&t, "alice", "INBOX").await;
    assert_eq!(
        got[1],
        b"Return-Path: <>\r\nDelivered-To: Alice@Example.ORG\r\nx\r\n".to_vec()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detail_folder_alias_and_catch_all() {
    let t = setup().await;
    let alice = t.store.get_user("alice").await.unwrap().unwrap();
    t.store
        .create_mailbox(alice.id, "Lists", None)
        .await
        .unwrap();
    t.store.add_alias("info@example.org", "bob").await.unwrap();
    let mut s = session(&t, Config::default());
    let (out, _) = feed(
        &mut s,
        b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice+lists@example.org>\r\n\
          RCPT TO:<alice+nothere@example.org>\r\nRCPT TO:<info@example.org>\r\n\
          DATA\r\nSubject: d\r\n\r\nbody\r\n.\r\n",
    )
    .await;
    assert_eq!(out.matches("Delivered").count(), 3, "{out}");
    assert_eq!(inbox_messages(&t, "alice", "Lists").await.len(), 1);
    assert_eq!(inbox_messages(&t, "alice", "INBOX").await.len(), 1);
    assert_eq!(inbox_messages(&t, "bob", "INBOX").await.len(), 1);
    // A catch-all takes unknown names of its domain.
    t.store.add_alias("@example.org", "bob").await.unwrap();
    let (out, _) = feed(
        &mut s,
        b"MAIL FROM:<a@b>\r\nRCPT TO:<whoever@example.org>\r\nDATA\r\nx\r\n.\r\n",
    )
    .await;
    assert!(
        out.ends_with("250 2.0.0 <whoever@example.org> Delivered\r\n"),
        "{out}"
    );
    assert_eq!(inbox_messages(&t, "bob", "INBOX").await.len(), 2);
}

/// A `+detail` folder deleted between RCPT and the end of DATA: the message goes to INBOX.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detail_folder_gone_before_data_delivers_to_inbox() {
    let t = setup().await;
    let alice = t.store.get_user("alice").await.unwrap().unwrap();
    let lists = t
        .store
        .create_mailbox(alice.id, "Lists", None)
        .await
        .unwrap();
    let mut s = session(&t, Config::default());
    let (out, _) = feed(
        &mut s,
        b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice+lists@example.org>\r\nDATA\r\n",
    )
    .await;
    assert!(out.contains("\r\n354 "), "{out}");
    t.store.delete_mailbox(alice.id, lists.id).await.unwrap();
    let (out, _) = feed(&mut s, b"Subject: d\r\n\r\nbody\r\n.\r\n").await;
    assert!(out.contains("250 2.0.0"), "{out}");
    let inbox = inbox_messages(&t, "alice", "INBOX").await;
    assert_eq!(inbox.len(), 1);
    assert!(inbox[0].ends_with(b"Subject: d\r\n\r\nbody\r\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_account_twice_is_delivered_once_and_answered_twice() {
    let t = setup().await;
    t.store.add_alias("al@example.org", "alice").await.unwrap();
    let mut s = session(&t, Config::default());
    let (out, _) = feed(
        &mut s,
        b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<al@example.org>\r\n\
          DATA\r\nx\r\n.\r\n",
    )
    .await;
    assert_eq!(out.matches("250 2.0.0").count(), 2, "{out}");
    assert_eq!(inbox_messages(&t, "alice", "INBOX").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bdat_chunks() {
    let t = setup().await;
    let mut s = session(&t, Config::default());
    let (out, _) = feed(
        &mut s,
        b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n\
          BDAT 14\r\nSubject: c\r\n\r\nBDAT 9 LAST\r\n.body\r\n\r\n",
    )
    .await;
    assert_eq!(
        codes(&out)[9..],
        ["250 2.0.0", "250 2.0.0", "250 2.0.0"],
        "{out}"
    );
    // BDAT data is taken as is: no dot-unstuffing.
    let want = b"Return-Path: <a@b>\r\nSubject: c\r\n\r\n.body\r\n\r\n".to_vec();
    assert_eq!(
        inbox_messages(&t, "alice", "INBOX").await,
        std::slice::from_ref(&want)
    );
    assert_eq!(inbox_messages(&t, "bob", "INBOX").await, [want]);
    // BDAT without a transaction: the chunk is read, then refused; the session goes on.
    let (out, _) = feed(&mut s, b"BDAT 5 LAST\r\nhelloNOOP\r\n").await;
    assert_eq!(codes(&out), ["503 5.5.1", "250 2.0.0"], "{out}");
    // DATA after BDAT is out of order; BDAT 0 LAST ends a message.
    let (out, _) = feed(
        &mut s,
        b"MAIL FROM:<a@b>\r\nRCPT TO:<alice@example.org>\r\nBDAT 3\r\nabcDATA\r\nBDAT 0 LAST\r\n",
    )
    .await;
    assert_eq!(
        codes(&out),
        [
            "250 2.1.0",
            "250 2.1.5",
            "250 2.0.0",
            "503 5.5.1",
            "250 2.0.0"
        ],
        "{out}"
    );
    assert_eq!(inbox_messages(&t, "alice", "INBOX").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_limit() {
    let t = setup().await;
    let config = Config {
        max_message_size: 100,
        ..Config::default()
    };
    let mut s = session(&t, config);
    let (out, _) = feed(
        &mut s,
        b"LHLO x\r\nMAIL FROM:<a@b> SIZE=101\r\nMAIL FROM:<a@b> SIZE=100\r\n",
    )
    .await;
    assert!(out.contains("250 SIZE 100\r\n"));
    assert_eq!(codes(&out)[6..], ["552 5.3.4", "250 2.1.0"], "{out}");
    let big = format!("{}\r\n", "x".repeat(200));
    let input =
        format!("RCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n{big}.\r\n");
    let (out, _) = feed(&mut s, input.as_bytes()).await;
    assert_eq!(
        codes(&out),
        [
            "250 2.1.5",
            "250 2.1.5",
            "354 Start",
            "552 5.3.4",
            "552 5.3.4"
        ],
        "{out}"
    );
    let input = format!("MAIL FROM:<a@b>\r\nRCPT TO:<alice@example.org>\r\nBDAT 202 LAST\r\n{big}");
    let (out, _) = feed(&mut s, input.as_bytes()).await;
    assert_eq!(
        codes(&out),
        ["250 2.1.0", "250 2.1.5", "552 5.3.4"],
        "{out}"
    );
    assert!(inbox_messages(&t, "alice", "INBOX").await.is_empty());
    // Still fine afterwards.
    let (out, _) = feed(
        &mut s,
        b"MAIL FROM:<a@b>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nok\r\n.\r\n",
    )
    .await;
    assert!(
        out.ends_with("250 2.0.0 <alice@example.org> Delivered\r\n"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_mid_data_delivers_nothing() {
    let t = setup().await;
    let mut s = session(&t, Config::default());
    feed(
        &mut s,
        b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nSubject: half\r\n",
    )
    .await;
    s.abort();
    drop(s);
    assert!(inbox_messages(&t, "alice", "INBOX").await.is_empty());
}

/// Bad input: each gets its error and the session goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_commands_transcript() {
    let t = setup().await;
    let mut s = session(&t, Config::default());
    let mut out = Vec::new();
    s.greeting(&mut out);
    assert_eq!(out, b"220 localhost LMTP Mailkeep ready\r\n");
    let transcript: &[(&str, &str)] = &[
        ("MAIL FROM:<a@b>", "503 5.5.1 LHLO first"),
        ("EHLO x", "500 5.5.1 This is LMTP: use LHLO"),
        ("FOO bar", "500 5.5.1 Command unrecognized"),
        ("RCPT TO:<alice@example.org>", "503 5.5.1 MAIL first"),
        ("DATA", "503 5.5.1 MAIL first"),
        ("LHLO x", "250 SIZE 52428800"),
        ("RCPT TO:<alice@example.org>", "503 5.5.1 MAIL first"),
        (
            "MAIL FROM:a@b",
            "501 5.5.4 Syntax: MAIL FROM:<address>, RCPT TO:<address>",
        ),
        (
            "MAIL FROM:<a@b> FOO=1",
            "555 5.5.4 Unsupported MAIL parameter",
        ),
        (
            "MAIL FROM:<a@b> BODY=BINARYMIME",
            "501 5.5.4 Unsupported BODY type",
        ),
        ("MAIL FROM:<a@b>", "250 2.1.0 Sender OK"),
        ("MAIL FROM:<a@b>", "503 5.5.1 Nested MAIL command"),
        ("DATA", "503 5.5.1 No valid recipients"),
        ("RCPT TO:<>", "501 5.1.3 Empty recipient"),
        (
            "RCPT TO:<nobody@example.org>",
            "550 5.1.1 <nobody@example.org> User unknown",
        ),
        (
            "VRFY alice",
            "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery",
        ),
        ("BDAT", "501 5.5.4 BDAT needs a size"),
        ("RSET", "250 2.0.0 OK"),
        ("NOOP", "250 2.0.0 OK"),
        ("", "500 5.5.1 Command unrecognized"),
    ];
    for (cmd, want) in transcript {
        let (out, flow) = feed(&mut s, format!("{cmd}\r\n").as_bytes()).await;
        assert_eq!(flow, Flow::Continue);
        assert_eq!(out.lines().last().unwrap(), *want, "after {cmd:?}");
    }
    let mut out = Vec::new();
    assert_eq!(s.line_too_long(&mut out), Flow::Continue);
    assert_eq!(out, b"500 5.5.2 Line too long\r\n");
    // Too many errors end the session.
    let mut flow = Flow::Continue;
    let mut out = String::new();
    for _ in 0..20 {
        let (o, f) = feed(&mut s, b"FOO\r\n").await;
        out += &o;
        flow = f;
        if f == Flow::Close {
            break;
        }
    }
    assert_eq!(flow, Flow::Close);
    assert!(
        out.ends_with("421 4.7.0 Too many errors, closing\r\n"),
        "{out}"
    );
}

/// A long DATA line may come in pieces: only a piece at a line start is dot-unstuffed, and a
/// lone `.` ends the message only at a line start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_in_pieces() {
    let t = setup().await;
    let mut s = session(&t, Config::default());
    feed(
        &mut s,
        b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n",
    )
    .await;
    let mut out = Vec::new();
    for piece in [&b"..ab"[..], b"c", b".\r\n", b".\r\n"] {
        s.line(piece, &mut out).await;
    }
    assert_eq!(out, b"250 2.0.0 <bob@example.org> Delivered\r\n");
    assert_eq!(
        inbox_messages(&t, "bob", "INBOX").await,
        [b"Return-Path: <a@b>\r\nDelivered-To: bob@example.org\r\n.abc.\r\n".to_vec()]
    );
}

/// A store failure is 451 4.3.0 for each recipient, never a lost or half-answered message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_fault_is_temporary() {
    let t = setup().await;
    let mut s = session(&t, Config::default());
    feed(
        &mut s,
        b"LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n",
    )
    .await;
    // The account goes away between RCPT and the end of DATA.
    t.store.delete_user("bob").await.unwrap();
    let (out, _) = feed(&mut s, b"x\r\n.\r\n").await;
    assert_eq!(out, "451 4.3.0 <bob@example.org> Temporary failure\r\n");
    // With another recipient after the failed one, that one still gets the message, and
    // its text is searchable (the body is created by the first append that succeeds).
    t.store.create_user("bob", "x").await.unwrap();
    feed(
        &mut s,
        b"MAIL FROM:<a@b>\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n",
    )
    .await;
    t.store.delete_user("bob").await.unwrap();
    let (out, _) = feed(&mut s, b"Subject: findme\r\n\r\nzebra\r\n.\r\n").await;
    assert_eq!(
        out,
        "451 4.3.0 <bob@example.org> Temporary failure\r\n250 2.0.0 <alice@example.org> Delivered\r\n"
    );
    assert_eq!(search(&t, "alice", "zebra").await, 1);
}

/// Messages in the mailbox whose text holds `needle`.
async fn search(t: &T, user: &str, needle: &str) -> usize {
    let u = t.store.get_user(user).await.unwrap().unwrap();
    let mb = t.store.get_mailbox(u.id, "INBOX").await.unwrap().unwrap();
    let uids: Vec<u32> = t
        .store
        .messages(mb.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    t.store
        .search_text(mb.id, &uids, needle, false)
        .await
        .unwrap()
        .len()
}

/// A message for many recipients is searchable in every mailbox, though only the first
/// append carried its search text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recipient_can_search_a_shared_message() {
    let t = setup().await;
    let mut input = String::from("LHLO x\r\nMAIL FROM:<a@b>\r\n");
    for i in 0..40 {
        t.store.create_user(&format!("r{i}"), "x").await.unwrap();
        input += &format!("RCPT TO:<r{i}@example.org>\r\n");
    }
    input += "DATA\r\nSubject: shared\r\n\r\nquokka\r\n.\r\n";
    let mut s = session(&t, Config::default());
    let (out, _) = feed(&mut s, input.as_bytes()).await;
    assert_eq!(out.matches("Delivered").count(), 40, "{out}");
    for i in 0..40 {
        assert_eq!(search(&t, &format!("r{i}"), "quokka").await, 1, "r{i}");
        // An infix is found through the account's vocabulary, which got the words of the
        // first recipient's tokens, not of the text read again.
        assert_eq!(search(&t, &format!("r{i}"), "uokk").await, 1, "r{i}");
    }
    assert!(t.store.check().await.unwrap().is_empty());
}

/// Concurrent deliveries share the writer's fsyncs (group commit), as APPENDs do.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_share_commits() {
    use std::sync::atomic::Ordering;
    let t = setup().await;
    let hold = t.store.hold_writer().await;
    let before = t.store.write_stats().durable_commits.load(Ordering::SeqCst);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let mut s = session(&t, Config::default());
        tasks.push(tokio::spawn(async move {
            let msg = format!(
                "LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\nSubject: {i}\r\n\r\n{i}\r\n.\r\n"
            );
            feed(&mut s, msg.as_bytes()).await.0
        }));
    }
    // Every delivery is queued behind the held writer before it is let go.
    while t.store.queued_writes() < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    drop(hold);
    for task in tasks {
        assert!(task.await.unwrap().ends_with("Delivered\r\n"));
    }
    let durable = t.store.write_stats().durable_commits.load(Ordering::SeqCst) - before;
    assert!(durable < 5, "20 deliveries took {durable} fsynced commits");
    assert_eq!(inbox_messages(&t, "alice", "INBOX").await.len(), 20);
}
