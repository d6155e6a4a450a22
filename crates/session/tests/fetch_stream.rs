//! FETCH answers streamed part by part ([`Flow::MoreOutput`]), and body content holding NUL
//! (which a `{n}` literal may not carry, RFC 9051 §4.3).

mod common;

use common::*;
use mailkeep_proto::parse_command;
use mailkeep_session::{Flow, Session};

/// Most bytes one call may add: the session's step (128 KiB) plus one item's label.
const MAX_PART: usize = 128 * 1024 + 4096;

/// Run a command given as bytes; returns every part written (one per `handle` or
/// `resume_output` call) and the final flow.
async fn run_parts(s: &mut Session, text: &[u8]) -> (Vec<Vec<u8>>, Flow) {
    let cmd = parse_command(&fragments(text)).expect("parses");
    let mut out = Vec::new();
    let mut flow = s.handle(cmd, &mut out).await;
    let mut parts = vec![std::mem::take(&mut out)];
    while flow == Flow::MoreOutput {
        flow = s.resume_output(&mut out).await;
        parts.push(std::mem::take(&mut out));
    }
    (parts, flow)
}

async fn run_bytes(s: &mut Session, text: &[u8]) -> Vec<u8> {
    let (parts, flow) = run_parts(s, text).await;
    assert_eq!(flow, Flow::Continue);
    parts.concat()
}

/// A message of about `size` bytes whose body lines differ, so a misplaced chunk shows.
fn big_message(seed: u32, size: usize) -> Vec<u8> {
    let mut m = format!("From: a@example.org\r\nSubject: big {seed}\r\n\r\n").into_bytes();
    let mut n = 0u32;
    while m.len() < size {
        m.extend_from_slice(format!("{seed:04} line {n:08} of a big message\r\n").as_bytes());
        n += 1;
    }
    m
}

async fn append(s: &mut Session, msg: &[u8]) {
    let mut cmd = format!("A APPEND INBOX {{{}}}\r\n", msg.len()).into_bytes();
    cmd.extend_from_slice(msg);
    cmd.extend_from_slice(b"\r\n");
    let out = run_bytes(s, &cmd).await;
    assert!(
        out.starts_with(b"A OK"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

fn literal(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
}

#[tokio::test]
async fn many_partials_are_streamed_in_bounded_parts() {
    let env = env().await;
    let mut s = session(&env, plain_config());
    ok(&mut s, "L LOGIN alice secret\r\n").await;
    let msg = big_message(1, 600_000);
    append(&mut s, &msg).await;
    ok(&mut s, "S SELECT INBOX\r\n").await;

    // 12 overlapping partials of the whole message: 12 times its size in the answer.
    let items: Vec<String> = (0..12)
        .map(|k| format!("BODY.PEEK[]<{}.{}>", k * 1000, msg.len()))
        .collect();
    let cmd = format!("F FETCH 1 (UID {})\r\n", items.join(" "));
    let (parts, flow) = run_parts(&mut s, cmd.as_bytes()).await;
    assert_eq!(flow, Flow::Continue);
    assert!(
        parts.len() > 12 * msg.len() / MAX_PART,
        "{} parts",
        parts.len()
    );
    for p in &parts {
        assert!(p.len() <= MAX_PART, "a part of {} bytes", p.len());
    }

    let mut want = b"* 1 FETCH (UID 1".to_vec();
    for k in 0..12 {
        let origin = k * 1000;
        want.extend_from_slice(format!(" BODY[]<{origin}> ").as_bytes());
        literal(&mut want, &msg[origin..]);
    }
    want.extend_from_slice(b")\r\nF OK FETCH completed.\r\n");
    assert!(parts.concat() == want, "streamed answer differs");
}

#[tokio::test]
async fn several_messages_stream_with_seen_and_sections() {
    let env = env().await;
    let mut s = session(&env, plain_config());
    ok(&mut s, "L LOGIN alice secret\r\n").await;
    let msgs: Vec<Vec<u8>> = (1..=3).map(|i| big_message(i, 300_000)).collect();
    for m in &msgs {
        append(&mut s, m).await;
    }
    ok(&mut s, "S SELECT INBOX\r\n").await;

    // Not PEEK: \Seen is set and FLAGS shown, message by message, as before streaming.
    let (parts, _) = run_parts(&mut s, b"F FETCH 1:3 (BODY[TEXT]<5.10> RFC822)\r\n").await;
    assert!(parts.len() > 1);
    let mut want = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let body_start = m.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        want.extend_from_slice(
            format!("* {} FETCH (FLAGS (\\Seen \\Recent) BODY[TEXT]<5> ", i + 1).as_bytes(),
        );
        literal(&mut want, &m[body_start + 5..body_start + 15]);
        want.extend_from_slice(b" RFC822 ");
        literal(&mut want, m);
        want.extend_from_slice(b")\r\n");
    }
    want.extend_from_slice(b"F OK FETCH completed.\r\n");
    let got = parts.concat();
    assert!(
        got == want,
        "{}",
        String::from_utf8_lossy(&got[..got.len().min(300)])
    );

    // A command after a streamed one runs as usual.
    assert_eq!(
        ok(&mut s, "N FETCH 2 (FLAGS)\r\n").await,
        "* 2 FETCH (FLAGS (\\Seen \\Recent))\r\nN OK FETCH completed.\r\n"
    );
}

/// Another session expunges a message while the answer is streamed: the view stays as the
/// FETCH began until its last part is written.
#[tokio::test]
async fn expunge_during_a_streamed_fetch() {
    let env = env().await;
    let mut a = session(&env, plain_config());
    ok(&mut a, "L LOGIN alice secret\r\n").await;
    let msgs: Vec<Vec<u8>> = (1..=3).map(|i| big_message(i, 300_000)).collect();
    for m in &msgs {
        append(&mut a, m).await;
    }
    ok(&mut a, "S SELECT INBOX\r\n").await;
    let mut b = login(&env, "alice").await;
    ok(&mut b, "S SELECT INBOX\r\n").await;

    let cmd = parse_command(&fragments(b"F UID FETCH 1:3 BODY.PEEK[]\r\n")).unwrap();
    let mut out = Vec::new();
    let mut flow = a.handle(cmd, &mut out).await;
    assert_eq!(flow, Flow::MoreOutput);
    ok(&mut b, "X UID STORE 3 +FLAGS (\\Deleted)\r\n").await;
    ok(&mut b, "Y EXPUNGE\r\n").await;
    while flow == Flow::MoreOutput {
        flow = a.resume_output(&mut out).await;
    }
    assert_eq!(flow, Flow::Continue);
    // The store still serves a body expunged meanwhile (its tombstone keeps it), so all three
    // are answered; the EXPUNGE comes only after the last part (UID FETCH may report it,
    // RFC 9051 §7.5.1), never inside the answer.
    let mut want = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        want.extend_from_slice(format!("* {0} FETCH (UID {0} BODY[] ", i + 1).as_bytes());
        literal(&mut want, m);
        want.extend_from_slice(b")\r\n");
    }
    want.extend_from_slice(b"* 3 EXPUNGE\r\nF OK UID FETCH completed.\r\n");
    assert!(
        out == want,
        "{}",
        String::from_utf8_lossy(&out[out.len().saturating_sub(300)..])
    );
}

/// RFC 9051 §4.3: a `{n}` literal carries no NUL. BODY[] and RFC822 send each NUL as 0x80
/// (the size stays, as Dovecot does); BINARY[] keeps the bytes in a `~{n}` literal8.
#[tokio::test]
async fn nul_is_never_sent_in_a_literal() {
    let env = env().await;
    let mut s = session(&env, plain_config());
    ok(&mut s, "L LOGIN alice secret\r\n").await;
    // Delivered as is (no MIME analysis), as a message stored before any APPEND check.
    // (Another subject than the appended one: identical bodies are stored once.)
    deliver(&env, "alice", "INBOX", "Subject: NUL\r\n\r\nab\0cd\r\n").await;
    let raw = "Subject: nul\r\n\r\nab\0cd\r\n";
    // Through APPEND of a literal8, in a part not declared binary.
    let mut cmd = format!("A APPEND INBOX ~{{{}}}\r\n", raw.len()).into_bytes();
    cmd.extend_from_slice(raw.as_bytes());
    cmd.extend_from_slice(b"\r\n");
    let out = run_bytes(&mut s, &cmd).await;
    assert!(
        out.starts_with(b"A OK"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    ok(&mut s, "S SELECT INBOX\r\n").await;

    let out = run_bytes(
        &mut s,
        b"F FETCH 1:2 (RFC822.SIZE BODY.PEEK[] BODY.PEEK[]<16.4> RFC822)\r\n",
    )
    .await;
    let mut want = Vec::new();
    for (n, clean) in [
        (1, b"Subject: NUL\r\n\r\nab\x80cd\r\n"),
        (2, b"Subject: nul\r\n\r\nab\x80cd\r\n"),
    ] {
        want.extend_from_slice(
            format!("* {n} FETCH (RFC822.SIZE 23 FLAGS (\\Seen \\Recent) BODY[] {{23}}\r\n")
                .as_bytes(),
        );
        want.extend_from_slice(clean);
        want.extend_from_slice(b" BODY[]<16> {4}\r\nab\x80c RFC822 {23}\r\n");
        want.extend_from_slice(clean);
        want.extend_from_slice(b")\r\n");
    }
    want.extend_from_slice(b"F OK FETCH completed.\r\n");
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&want)
    );
    assert!(out == want);

    let out = run_bytes(
        &mut s,
        b"G FETCH 2 (BODY.PEEK[TEXT] BINARY.PEEK[1] BINARY.PEEK[1]<2.3> BINARY.SIZE[1])\r\n",
    )
    .await;
    let want: &[u8] = b"* 2 FETCH (BODY[TEXT] {7}\r\nab\x80cd\r\n BINARY[1] ~{7}\r\nab\0cd\r\n \
BINARY[1]<2> ~{3}\r\n\0cd BINARY.SIZE[1] 7)\r\nG OK FETCH completed.\r\n";
    assert_eq!(String::from_utf8_lossy(&out), String::from_utf8_lossy(want));
    assert!(out == want);
}

/// A BINARY item that cannot be decoded fails the FETCH before that message's response
/// starts: the client never gets half a response, even when earlier ones were streamed.
#[tokio::test]
async fn binary_error_never_leaves_half_a_response() {
    let env = env().await;
    let mut s = session(&env, plain_config());
    ok(&mut s, "L LOGIN alice secret\r\n").await;
    let big = big_message(1, 300_000);
    append(&mut s, &big).await;
    append(
        &mut s,
        b"Subject: odd\r\nContent-Transfer-Encoding: x-unknown\r\n\r\nbody\r\n",
    )
    .await;
    ok(&mut s, "S SELECT INBOX\r\n").await;
    let (parts, flow) = run_parts(&mut s, b"F FETCH 1:2 (BODY.PEEK[] BINARY.PEEK[1])\r\n").await;
    assert_eq!(flow, Flow::Continue);
    assert!(parts.len() > 1);
    let out = parts.concat();
    let mut want = b"* 1 FETCH (BODY[] ".to_vec();
    literal(&mut want, &big);
    want.extend_from_slice(b" BINARY[1] ");
    literal(
        &mut want,
        &big[big.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..],
    );
    want.extend_from_slice(b")\r\nF NO [UNKNOWN-CTE] Unknown Content-Transfer-Encoding\r\n");
    assert!(
        out == want,
        "{}",
        String::from_utf8_lossy(&out[out.len().saturating_sub(300)..])
    );

    // Nothing is left pending: the next command starts afresh.
    let mut out = Vec::new();
    assert_eq!(s.resume_output(&mut out).await, Flow::Continue);
    assert!(out.is_empty());
}
