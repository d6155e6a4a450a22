//! The POP3 session driven with command lines against a real SQLite store in a temp dir.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mailkeep_pop3::{Flow, Maildrops, Pop3Config, Session};
use mailkeep_store::conformance::message;
use mailkeep_store::sqlite::SqliteStore;
use mailkeep_store::{MailStore, MailboxId, MessageBytes, NewMessage, flags};

const PASSWORD: &str = "secret";

struct Env {
    _dir: tempfile::TempDir,
    store: Arc<dyn MailStore>,
    maildrops: Arc<Maildrops>,
    inbox: MailboxId,
}

fn password_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| mailkeep_auth::hash_password(PASSWORD))
}

/// alice with three messages in INBOX (the second has lines starting with `.`), and bob.
async fn env() -> Env {
    let dir = tempfile::Builder::new()
        .prefix("mailkeep-pop3-")
        .tempdir()
        .unwrap();
    let store: Arc<dyn MailStore> = SqliteStore::open(dir.path()).unwrap();
    let alice = store.create_user("alice", password_hash()).await.unwrap();
    store.create_user("bob", password_hash()).await.unwrap();
    let inbox = store.get_mailbox(alice.id, "INBOX").await.unwrap().unwrap();
    let mut dotted = message("two", "");
    dotted.data = MessageBytes::Memory(Arc::new(
        b"Subject: two\r\n\r\n.starts with a dot\r\n..two dots\r\n.\r\nend\r\n".to_vec(),
    ));
    store
        .append(
            inbox.id,
            vec![message("one", "hello"), dotted, message("three", "bye")],
        )
        .await
        .unwrap();
    Env {
        _dir: dir,
        store,
        maildrops: Maildrops::new(),
        inbox: inbox.id,
    }
}

fn config() -> Pop3Config {
    Pop3Config {
        peer: "127.0.0.1:40000".parse().unwrap(),
        tls_active: false,
        stls_available: true,
        plaintext_auth_without_tls: true,
        max_auth_failures: 3,
        delete_on_quit: true,
    }
}

fn session(env: &Env, config: Pop3Config) -> Session {
    let mut s = Session::new(env.store.clone(), env.maildrops.clone(), config);
    s.set_auth_failure_delay(Duration::ZERO);
    s
}

/// Send one line; a message response is written out whole.
async fn run(s: &mut Session, line: &str) -> (String, Flow) {
    let mut out = Vec::new();
    let flow = s.handle_line(line.as_bytes(), &mut out).await;
    let flow = match flow {
        Flow::Message(mut m) => {
            while m.next_chunk(&mut out, 7).unwrap() {}
            Flow::Continue
        }
        f => f,
    };
    (String::from_utf8(out).unwrap(), flow)
}

async fn say(s: &mut Session, line: &str) -> String {
    let (out, flow) = run(s, line).await;
    assert_eq!(flow, Flow::Continue, "{line:?} -> {out:?}");
    out
}

async fn login(env: &Env, config: Pop3Config) -> Session {
    let mut s = session(env, config);
    assert_eq!(
        say(&mut s, "USER alice\r\n").await,
        "+OK Send your password.\r\n"
    );
    let out = say(&mut s, &format!("PASS {PASSWORD}\r\n")).await;
    assert!(out.starts_with("+OK Logged in, "), "{out}");
    s
}

async fn uids(env: &Env) -> Vec<(u32, bool)> {
    env.store
        .messages(env.inbox)
        .await
        .unwrap()
        .iter()
        .map(|m| (m.uid, m.flags.system & flags::SEEN != 0))
        .collect()
}

#[tokio::test]
async fn greeting_and_capa() {
    let env = env().await;
    let mut s = session(&env, config());
    let mut out = Vec::new();
    s.greeting(&mut out);
    assert_eq!(out, b"+OK Mailkeep POP3 ready.\r\n");
    assert_eq!(
        say(&mut s, "CAPA\r\n").await,
        "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n\
         PIPELINING\r\nUSER\r\nSASL SCRAM-SHA-256 PLAIN LOGIN\r\nSTLS\r\n\
         IMPLEMENTATION Mailkeep\r\n.\r\n"
    );
    // Not from loopback, no TLS: no USER and no plaintext SASL (RFC 2595 §4), and they are
    // refused; SCRAM (no password on the wire) stays.
    let mut cfg = config();
    cfg.plaintext_auth_without_tls = false;
    let mut s = session(&env, cfg);
    assert_eq!(
        say(&mut s, "capa\r\n").await,
        "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n\
         PIPELINING\r\nSASL SCRAM-SHA-256\r\nSTLS\r\nIMPLEMENTATION Mailkeep\r\n.\r\n"
    );
    let refused =
        "-ERR Plaintext authentication disallowed on non-secure connections: use STLS.\r\n";
    assert_eq!(say(&mut s, "USER alice\r\n").await, refused);
    assert_eq!(
        say(&mut s, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n").await,
        refused
    );
    assert_eq!(
        say(&mut s, "AUTH\r\n").await,
        "+OK Mechanisms follow\r\nSCRAM-SHA-256\r\n.\r\n"
    );
    // STLS, then everything is allowed and STLS is no longer offered.
    let (out, flow) = run(&mut s, "STLS\r\n").await;
    assert_eq!(
        (out.as_str(), flow),
        ("+OK Begin TLS negotiation now.\r\n", Flow::StartTls)
    );
    s.tls_started();
    assert_eq!(
        say(&mut s, "STLS\r\n").await,
        "-ERR TLS is already active.\r\n"
    );
    let capa = say(&mut s, "CAPA\r\n").await;
    assert!(
        capa.contains("\r\nUSER\r\n") && !capa.contains("STLS"),
        "{capa}"
    );
    assert!(
        say(&mut s, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
            .await
            .starts_with("+OK Logged in")
    );
    // After login: no USER, SASL or STLS.
    assert_eq!(
        say(&mut s, "CAPA\r\n").await,
        "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n\
         PIPELINING\r\nIMPLEMENTATION Mailkeep\r\n.\r\n"
    );
}

#[tokio::test]
async fn transaction_commands() {
    let env = env().await;
    let mut s = login(&env, config()).await;
    let sizes: Vec<u64> = env
        .store
        .messages(env.inbox)
        .await
        .unwrap()
        .iter()
        .map(|m| m.size)
        .collect();
    let total: u64 = sizes.iter().sum();
    assert_eq!(say(&mut s, "STAT\r\n").await, format!("+OK 3 {total}\r\n"));
    assert_eq!(
        say(&mut s, "LIST\r\n").await,
        format!(
            "+OK 3 messages ({total} octets)\r\n1 {}\r\n2 {}\r\n3 {}\r\n.\r\n",
            sizes[0], sizes[1], sizes[2]
        )
    );
    assert_eq!(
        say(&mut s, "LIST 2\r\n").await,
        format!("+OK 2 {}\r\n", sizes[1])
    );
    assert_eq!(say(&mut s, "LIST 4\r\n").await, "-ERR No such message.\r\n");
    assert_eq!(say(&mut s, "LIST 0\r\n").await, "-ERR No such message.\r\n");
    let v = env.store.status(env.inbox).await.unwrap().uidvalidity;
    assert_eq!(
        say(&mut s, "UIDL\r\n").await,
        format!(
            "+OK Unique-ID listing follows\r\n1 {v:08x}00000001\r\n2 {v:08x}00000002\r\n3 {v:08x}00000003\r\n.\r\n"
        )
    );
    assert_eq!(
        say(&mut s, "UIDL 3\r\n").await,
        format!("+OK 3 {v:08x}00000003\r\n")
    );
    // RETR: the exact size, then the message byte-stuffed.
    assert_eq!(
        say(&mut s, "RETR 2\r\n").await,
        format!(
            "+OK {} octets\r\nSubject: two\r\n\r\n..starts with a dot\r\n...two dots\r\n..\r\nend\r\n.\r\n",
            sizes[1]
        )
    );
    assert_eq!(
        say(&mut s, "TOP 2 0\r\n").await,
        "+OK Top of message follows\r\nSubject: two\r\n\r\n.\r\n"
    );
    assert_eq!(
        say(&mut s, "TOP 2 1\r\n").await,
        "+OK Top of message follows\r\nSubject: two\r\n\r\n..starts with a dot\r\n.\r\n"
    );
    assert_eq!(
        say(&mut s, "TOP 1 100\r\n").await,
        "+OK Top of message follows\r\nSubject: one\r\nFrom: a@example.org\r\n\r\nhello\r\n.\r\n"
    );
    assert_eq!(
        say(&mut s, "DELE 1\r\n").await,
        "+OK Message 1 deleted.\r\n"
    );
    assert_eq!(
        say(&mut s, "DELE 1\r\n").await,
        "-ERR Message is deleted.\r\n"
    );
    assert_eq!(
        say(&mut s, "RETR 1\r\n").await,
        "-ERR Message is deleted.\r\n"
    );
    assert_eq!(
        say(&mut s, "STAT\r\n").await,
        format!("+OK 2 {}\r\n", sizes[1] + sizes[2])
    );
    assert!(!say(&mut s, "LIST\r\n").await.contains("\r\n1 "));
    assert_eq!(say(&mut s, "NOOP\r\n").await, "+OK Nothing done.\r\n");
    assert_eq!(
        say(&mut s, "RSET\r\n").await,
        format!("+OK Maildrop has 3 messages ({total} octets).\r\n")
    );
    say(&mut s, "DELE 3\r\n").await;
    // Nothing happens to the store before QUIT.
    assert_eq!(uids(&env).await, vec![(1, false), (2, false), (3, false)]);
    let (out, flow) = run(&mut s, "QUIT\r\n").await;
    assert_eq!(
        (out.as_str(), flow),
        (
            "+OK Mailkeep POP3 signing off (2 messages left).\r\n",
            Flow::Close
        )
    );
    // DELE'd 3 is expunged; RETR'd 2 is \Seen; TOP does not mark.
    assert_eq!(uids(&env).await, vec![(1, false), (2, true)]);
    assert!(!env.maildrops.is_locked(1));
}

#[tokio::test]
async fn dropped_connection_deletes_nothing_and_unlocks() {
    let env = env().await;
    let mut s = login(&env, config()).await;
    say(&mut s, "DELE 1\r\n").await;
    say(&mut s, "RETR 2\r\n").await;
    // The same account from another connection: the maildrop is locked.
    let mut other = session(&env, config());
    say(&mut other, "USER alice\r\n").await;
    assert_eq!(
        say(&mut other, "PASS secret\r\n").await,
        "-ERR [IN-USE] Another POP3 session of this account is active.\r\n"
    );
    // Another account is not.
    say(&mut other, "USER bob\r\n").await;
    assert!(
        say(&mut other, "PASS secret\r\n")
            .await
            .starts_with("+OK Logged in, 0 messages")
    );
    drop(s);
    assert_eq!(uids(&env).await, vec![(1, false), (2, false), (3, false)]);
    // The lock went with the connection.
    let mut again = login(&env, config()).await;
    assert_eq!(run(&mut again, "QUIT\r\n").await.1, Flow::Close);
}

#[tokio::test]
async fn snapshot_ignores_later_mail_and_survives_expunge_by_imap() {
    let env = env().await;
    let mut s = login(&env, config()).await;
    env.store
        .append(env.inbox, vec![message("four", "new")])
        .await
        .unwrap();
    assert!(say(&mut s, "STAT\r\n").await.starts_with("+OK 3 "));
    assert_eq!(say(&mut s, "LIST 4\r\n").await, "-ERR No such message.\r\n");
    // An IMAP session expunges message 1 meanwhile; DELE of it at QUIT is harmless.
    env.store.expunge(env.inbox, &[1]).await.unwrap();
    say(&mut s, "DELE 1\r\n").await;
    say(&mut s, "DELE 2\r\n").await;
    let (out, _) = run(&mut s, "QUIT\r\n").await;
    assert_eq!(out, "+OK Mailkeep POP3 signing off (1 messages left).\r\n");
    let left: Vec<u32> = uids(&env).await.iter().map(|u| u.0).collect();
    assert_eq!(left, vec![3, 4]);
    // The next session sees the new mail, with UIDLs that did not change.
    let mut s = session(&env, config());
    say(&mut s, "USER alice\r\n").await;
    assert!(
        say(&mut s, "PASS secret\r\n")
            .await
            .starts_with("+OK Logged in, 2 messages")
    );
    let v = env.store.status(env.inbox).await.unwrap().uidvalidity;
    assert_eq!(
        say(&mut s, "UIDL\r\n").await,
        format!("+OK Unique-ID listing follows\r\n1 {v:08x}00000003\r\n2 {v:08x}00000004\r\n.\r\n")
    );
}

#[tokio::test]
async fn keep_on_server_marks_seen() {
    let env = env().await;
    let mut cfg = config();
    cfg.delete_on_quit = false;
    let mut s = login(&env, cfg).await;
    say(&mut s, "DELE 1\r\n").await;
    say(&mut s, "TOP 3 0\r\n").await;
    let (out, _) = run(&mut s, "QUIT\r\n").await;
    assert_eq!(out, "+OK Mailkeep POP3 signing off (3 messages left).\r\n");
    assert_eq!(uids(&env).await, vec![(1, true), (2, false), (3, false)]);
}

#[tokio::test]
async fn sasl_plain_and_login() {
    let env = env().await;
    // PLAIN with an initial response.
    let mut s = session(&env, config());
    assert!(
        say(&mut s, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
            .await
            .starts_with("+OK Logged in")
    );
    drop(s);
    // PLAIN with an empty challenge.
    let mut s = session(&env, config());
    assert_eq!(say(&mut s, "AUTH plain\r\n").await, "+ \r\n");
    assert!(
        say(&mut s, "AGFsaWNlAHNlY3JldA==\r\n")
            .await
            .starts_with("+OK Logged in")
    );
    drop(s);
    // LOGIN: user name and password prompts.
    let mut s = session(&env, config());
    assert_eq!(say(&mut s, "AUTH LOGIN\r\n").await, "+ VXNlcm5hbWU6\r\n");
    assert_eq!(say(&mut s, "YWxpY2U=\r\n").await, "+ UGFzc3dvcmQ6\r\n");
    assert!(
        say(&mut s, "c2VjcmV0\r\n")
            .await
            .starts_with("+OK Logged in")
    );
    drop(s);
    // Cancel, garbage, unknown mechanism, someone else's authorization: the session goes on.
    let mut s = session(&env, config());
    say(&mut s, "AUTH PLAIN\r\n").await;
    assert_eq!(
        say(&mut s, "*\r\n").await,
        "-ERR Authentication cancelled.\r\n"
    );
    say(&mut s, "AUTH PLAIN\r\n").await;
    assert_eq!(
        say(&mut s, "!!!not base64\r\n").await,
        "-ERR Invalid base64 data.\r\n"
    );
    assert_eq!(
        say(&mut s, "AUTH CRAM-MD5\r\n").await,
        "-ERR Unsupported authentication mechanism.\r\n"
    );
    assert_eq!(
        say(&mut s, "AUTH PLAIN Ym9iAGFsaWNlAHNlY3JldA==\r\n").await,
        "-ERR [AUTH] Authorization failed.\r\n"
    );
    assert_eq!(
        say(&mut s, "AUTH\r\n").await,
        "+OK Mechanisms follow\r\nSCRAM-SHA-256\r\nPLAIN\r\nLOGIN\r\n.\r\n"
    );
    assert!(
        say(&mut s, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
            .await
            .starts_with("+OK")
    );
}

#[tokio::test]
async fn failed_logins_then_close() {
    let env = env().await;
    let mut s = session(&env, config());
    assert_eq!(say(&mut s, "PASS secret\r\n").await, "-ERR USER first.\r\n");
    say(&mut s, "USER alice\r\n").await;
    assert_eq!(
        say(&mut s, "PASS wrong\r\n").await,
        "-ERR [AUTH] Authentication failed.\r\n"
    );
    say(&mut s, "USER nobody\r\n").await;
    assert_eq!(
        say(&mut s, "PASS secret\r\n").await,
        "-ERR [AUTH] Authentication failed.\r\n"
    );
    // A PLAIN message without its fields counts too.
    let (out, flow) = run(&mut s, "AUTH PLAIN eA==\r\n").await;
    assert_eq!(
        (out.as_str(), flow),
        (
            "-ERR [AUTH] Authentication failed; too many attempts, closing.\r\n",
            Flow::Close
        )
    );
}

#[tokio::test]
async fn bad_input_and_wrong_state() {
    let env = env().await;
    let mut s = session(&env, config());
    assert_eq!(say(&mut s, "STAT\r\n").await, "-ERR Not logged in yet.\r\n");
    assert_eq!(
        say(&mut s, "RETR 1\r\n").await,
        "-ERR Not logged in yet.\r\n"
    );
    assert_eq!(say(&mut s, "NOOP\r\n").await, "-ERR Not logged in yet.\r\n");
    assert_eq!(
        say(&mut s, "APOP alice 0123\r\n").await,
        "-ERR APOP is not supported.\r\n"
    );
    assert_eq!(say(&mut s, "XTND\r\n").await, "-ERR Unknown command.\r\n");
    assert_eq!(say(&mut s, "\r\n").await, "-ERR Empty command.\r\n");
    assert_eq!(
        say(&mut s, "\u{7f}\u{1}\r\n").await,
        "-ERR Unknown command.\r\n"
    );
    let mut out = Vec::new();
    assert_eq!(s.line_too_long(&mut out), Flow::Continue);
    assert_eq!(out, b"-ERR Line too long.\r\n");
    let mut s = login(&env, config()).await;
    assert_eq!(
        say(&mut s, "USER bob\r\n").await,
        "-ERR Already logged in.\r\n"
    );
    assert_eq!(
        say(&mut s, "STLS\r\n").await,
        "-ERR STLS is only allowed before login.\r\n"
    );
    assert_eq!(
        say(&mut s, "RETR x\r\n").await,
        "-ERR Invalid message number.\r\n"
    );
    assert_eq!(
        say(&mut s, "RETR 99999\r\n").await,
        "-ERR No such message.\r\n"
    );
    assert_eq!(
        say(&mut s, "TOP 1\r\n").await,
        "-ERR TOP takes a message number and a line count.\r\n"
    );
    assert_eq!(
        say(&mut s, "TOP 1 -1\r\n").await,
        "-ERR TOP takes a message number and a line count.\r\n"
    );
    // A long run of invalid commands closes the connection; a valid one resets the count.
    say(&mut s, "NOOP\r\n").await;
    for _ in 0..mailkeep_pop3::MAX_BAD_COMMANDS - 1 {
        say(&mut s, "BOGUS\r\n").await;
    }
    say(&mut s, "NOOP\r\n").await;
    for _ in 0..mailkeep_pop3::MAX_BAD_COMMANDS - 1 {
        say(&mut s, "BOGUS\r\n").await;
    }
    let (out, flow) = run(&mut s, "BOGUS\r\n").await;
    assert_eq!(
        (out.as_str(), flow),
        (
            "-ERR Unknown command.\r\n-ERR Too many invalid commands, closing.\r\n",
            Flow::Close
        )
    );
    // Nothing was deleted by the closed connection.
    drop(s);
    assert_eq!(uids(&env).await.len(), 3);
}

#[tokio::test]
async fn large_message_is_handed_out_in_pieces() {
    let env = env().await;
    let line = ".a line of the big message that starts with a dot\r\n";
    let body = line.repeat(40_000); // about 2 MiB
    let data = format!("Subject: big\r\n\r\n{body}").into_bytes();
    let mut m: NewMessage = message("big", "");
    m.data = MessageBytes::Memory(Arc::new(data.clone()));
    env.store.append(env.inbox, vec![m]).await.unwrap();
    let mut s = login(&env, config()).await;
    let mut out = Vec::new();
    let Flow::Message(mut msg) = s.handle_line(b"RETR 4\r\n", &mut out).await else {
        panic!("no message flow");
    };
    assert_eq!(out, format!("+OK {} octets\r\n", data.len()).as_bytes());
    let mut total = Vec::new();
    let mut pieces = 0;
    loop {
        let mut piece = Vec::new();
        if !msg
            .next_chunk(&mut piece, mailkeep_pop3::message::CHUNK)
            .unwrap()
        {
            break;
        }
        // Each piece is at most the chunk plus its stuffing dots (one per line).
        assert!(
            piece.len() <= mailkeep_pop3::message::CHUNK * 2,
            "{}",
            piece.len()
        );
        total.extend_from_slice(&piece);
        pieces += 1;
    }
    assert!(pieces > 30, "{pieces}");
    let want = format!(
        "Subject: big\r\n\r\n{}.\r\n",
        format!(".{line}").repeat(40_000)
    );
    assert!(total == want.as_bytes());
}

/// A Dovecot hash imported with `user add --hash` is replaced by argon2id at the first POP3
/// login, and SCRAM keys appear beside it (as at an IMAP login).
#[tokio::test]
async fn imported_hash_is_rehashed_at_login() {
    let env = env().await;
    // `doveadm pw -s SHA256-CRYPT -p pass`
    let imported = mailkeep_auth::hashes::import(
        "{SHA256-CRYPT}$5$gg3/Z4Dklw0L/DWJ$vIYtEzknkOSV8gy.t8QtvoihSnP7foBTjRyBl.dx9U/",
    )
    .unwrap();
    env.store.create_user("carol", &imported).await.unwrap();
    let mut s = session(&env, config());
    run(&mut s, "USER carol\r\n").await;
    let (out, _) = run(&mut s, "PASS pass\r\n").await;
    assert!(out.starts_with("+OK Logged in"), "{out}");
    let carol = env.store.get_user("carol").await.unwrap().unwrap();
    assert!(
        carol.password_hash.starts_with("$argon2id$"),
        "{}",
        carol.password_hash
    );
    assert!(mailkeep_auth::verify_password(
        &carol.password_hash,
        b"pass"
    ));
    assert!(env.store.get_scram_keys("carol").await.unwrap().is_some());
}
