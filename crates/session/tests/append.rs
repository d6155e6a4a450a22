//! APPEND (RFC 9051 §6.3.12), MULTIAPPEND (RFC 3502), APPENDUID (RFC 4315), APPENDLIMIT
//! (RFC 7889), and COPY/MOVE destinations (`[TRYCREATE]`).

mod common;

use common::*;

#[tokio::test]
async fn append_appenduid_and_errors() {
    let env = env().await;
    let mut s = login(&env, "alice").await;
    // Bare LF is stored as CRLF: 24 bytes become 27.
    assert_eq!(
        ok(
            &mut s,
            "a APPEND INBOX (\\Seen $Work) \"05-Jan-2024 10:00:00 +0100\" {24+}\r\nSubject: x\n\nhello world\n\r\n"
        )
        .await,
        "a OK [APPENDUID $V 1] Append completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "b STATUS INBOX (MESSAGES UNSEEN SIZE UIDNEXT)\r\n").await,
        "* STATUS INBOX (MESSAGES 1 UNSEEN 0 SIZE 27 UIDNEXT 2)\r\nb OK Status completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "c APPEND nope {5+}\r\nhello\r\n").await,
        "c NO [TRYCREATE] Mailbox doesn't exist.\r\n"
    );
    // MULTIAPPEND: one command, consecutive UIDs.
    assert_eq!(
        ok(
            &mut s,
            "d APPEND Drafts (\\Draft) {3+}\r\nabc {3+}\r\ndef\r\n"
        )
        .await,
        "d OK [APPENDUID $V 1:2] Append completed.\r\n"
    );
    let mut cfg = config();
    cfg.max_message_size = 4;
    let mut small = session(&env, cfg);
    run(&mut small, "l LOGIN alice secret\r\n").await;
    assert_eq!(
        ok(&mut small, "e APPEND INBOX {5+}\r\nhello\r\n").await,
        "e NO [TOOBIG] Message too large.\r\n"
    );
}

#[tokio::test]
async fn append_to_selected_mailbox_sends_exists() {
    let env = env().await;
    let mut s = login(&env, "alice").await;
    let mut other = login(&env, "alice").await;
    ok(&mut s, "a SELECT INBOX\r\n").await;
    ok(&mut other, "b SELECT INBOX\r\n").await;
    assert_eq!(
        ok(&mut s, "c APPEND INBOX {5+}\r\nhello\r\n").await,
        "* 1 EXISTS\r\n* 1 RECENT\r\nc OK [APPENDUID $V 1] Append completed.\r\n"
    );
    // The other session learns of it with its next command, without \Recent.
    assert_eq!(
        ok(&mut other, "d NOOP\r\n").await,
        "* 1 EXISTS\r\n* 0 RECENT\r\nd OK NOOP completed.\r\n"
    );
}

#[tokio::test]
async fn copy_and_move_need_an_existing_destination() {
    let env = env().await;
    let mut s = login(&env, "alice").await;
    ok(&mut s, "a APPEND INBOX {5+}\r\nhello\r\n").await;
    ok(&mut s, "b SELECT INBOX\r\n").await;
    assert_eq!(
        ok(&mut s, "c COPY 1 nope\r\n").await,
        "c NO [TRYCREATE] Mailbox doesn't exist.\r\n"
    );
    assert_eq!(
        ok(&mut s, "d UID MOVE 1 nope\r\n").await,
        "d NO [TRYCREATE] Mailbox doesn't exist.\r\n"
    );
}

#[tokio::test]
async fn append_spooled_messages() {
    use mailkeep_proto::{AppendMessage, Command, CommandBody, MessageData};
    let env = env().await;
    let mut s = login(&env, "alice").await;
    let dir = tempfile::tempdir().expect("tempdir");
    // One already in CRLF form (handed to the store as a file), one with bare LF.
    let crlf = dir.path().join("crlf.eml");
    let lf = dir.path().join("lf.eml");
    std::fs::write(&crlf, "Subject: s\r\n\r\nbody\r\n").expect("write");
    std::fs::write(&lf, "Subject: s\n\nbody\n").expect("write");
    let msg = |path: &std::path::Path, len: u64| AppendMessage {
        flags: vec![],
        internal_date: None,
        data: MessageData::Spooled {
            path: path.to_path_buf(),
            len,
        },
        binary: false,
    };
    let cmd = Command {
        tag: "s".into(),
        body: CommandBody::Append {
            mailbox: b"INBOX".to_vec(),
            messages: vec![msg(&crlf, 20), msg(&lf, 17)],
        },
    };
    let mut out = Vec::new();
    let flow = s.handle(cmd, &mut out).await;
    finish_output(&mut s, flow, &mut out).await;
    assert_eq!(
        mask(&String::from_utf8_lossy(&out)),
        "s OK [APPENDUID $V 1:2] Append completed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "t STATUS INBOX (MESSAGES SIZE)\r\n").await,
        "* STATUS INBOX (MESSAGES 2 SIZE 40)\r\nt OK Status completed.\r\n"
    );
    ok(&mut s, "u SELECT INBOX\r\n").await;
    let out = ok(&mut s, "v FETCH 2 BODY.PEEK[]\r\n").await;
    assert!(out.contains("Subject: s\r\n\r\nbody\r\n"), "{out}");
}
