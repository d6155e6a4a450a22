//! Not-authenticated state: greeting, CAPABILITY, LOGIN, AUTHENTICATE (RFC 9051 §6.1, §6.2).

mod common;

use common::*;
use mailkeep_session::Flow;

const PRE: &str = "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE";

#[tokio::test]
async fn greeting_and_capability_before_login() {
    let env = env().await;
    let s = session(&env, config());
    let mut out = Vec::new();
    s.greeting(&mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!(
            "* OK [CAPABILITY {PRE} STARTTLS AUTH=SCRAM-SHA-256 AUTH=PLAIN AUTH=LOGIN] Mailkeep ready.\r\n"
        )
    );
    let mut cfg = config();
    cfg.plaintext_auth_without_tls = false;
    let mut s = session(&env, cfg);
    assert_eq!(
        ok(&mut s, "a CAPABILITY\r\n").await,
        format!(
            "* CAPABILITY {PRE} STARTTLS AUTH=SCRAM-SHA-256 LOGINDISABLED\r\na OK Capability completed.\r\n"
        )
    );
}

#[tokio::test]
async fn starttls_flow() {
    let env = env().await;
    let mut cfg = config();
    cfg.plaintext_auth_without_tls = false;
    let mut s = session(&env, cfg);
    let (out, flow) = run(&mut s, "a STARTTLS\r\n").await;
    assert_eq!(
        (out.as_str(), flow),
        ("a OK Begin TLS negotiation now.\r\n", Flow::StartTls)
    );
    s.tls_started();
    assert_eq!(
        ok(&mut s, "b CAPABILITY\r\n").await,
        format!(
            "* CAPABILITY {PRE} AUTH=SCRAM-SHA-256 AUTH=PLAIN AUTH=LOGIN\r\nb OK Capability completed.\r\n"
        )
    );
    assert_eq!(
        ok(&mut s, "c STARTTLS\r\n").await,
        "c BAD TLS is already active.\r\n"
    );
}

#[tokio::test]
async fn login_success_and_failure() {
    let env = env().await;
    let mut s = session(&env, config());
    assert_eq!(
        ok(&mut s, "a LOGIN alice wrong\r\n").await,
        "a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    );
    assert_eq!(
        ok(&mut s, "b SELECT INBOX\r\n").await,
        "b BAD Please log in first.\r\n"
    );
    let out = ok(&mut s, "c LOGIN alice secret\r\n").await;
    assert!(
        out.starts_with("c OK [CAPABILITY IMAP4rev1 IMAP4rev2 "),
        "{out}"
    );
    assert!(out.contains(" APPENDLIMIT=1000000] Logged in\r\n"), "{out}");
    assert_eq!(s.user(), Some("alice"));
    assert_eq!(s.auth_mechanism(), Some("LOGIN"));
    assert_eq!(
        ok(&mut s, "d LOGIN alice secret\r\n").await,
        "d BAD Already logged in.\r\n"
    );
}

#[tokio::test]
async fn login_with_domain_falls_back_to_local_part() {
    let env = env().await;
    let mut s = session(&env, config());
    let out = ok(&mut s, "a LOGIN bob@example.org secret\r\n").await;
    assert!(out.starts_with("a OK [CAPABILITY"), "{out}");
    assert_eq!(s.user(), Some("bob"));
}

#[tokio::test]
async fn too_many_failures_close_the_connection() {
    let env = env().await;
    let mut s = session(&env, config());
    ok(&mut s, "a LOGIN alice x\r\n").await;
    ok(&mut s, "b LOGIN nobody x\r\n").await;
    let (out, flow) = run(&mut s, "c LOGIN alice y\r\n").await;
    assert_eq!(flow, Flow::Close);
    assert_eq!(
        out,
        "* BYE Too many invalid authentication attempts.\r\nc NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    );
}

#[tokio::test]
async fn logindisabled_without_tls() {
    let env = env().await;
    let mut cfg = config();
    cfg.plaintext_auth_without_tls = false;
    let mut s = session(&env, cfg);
    let want = "NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n";
    assert_eq!(
        ok(&mut s, "a LOGIN alice secret\r\n").await,
        format!("a {want}")
    );
    assert_eq!(
        ok(&mut s, "b AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n").await,
        format!("b {want}")
    );
}

#[tokio::test]
async fn sasl_plain_with_initial_response() {
    let env = env().await;
    let mut s = session(&env, config());
    // "\0alice\0secret"
    let out = ok(&mut s, "a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n").await;
    assert!(out.starts_with("a OK [CAPABILITY IMAP4rev1"), "{out}");
    assert_eq!(s.auth_mechanism(), Some("PLAIN"));
}

#[tokio::test]
async fn sasl_plain_with_continuation_and_cancel() {
    let env = env().await;
    let mut s = session(&env, config());
    let (out, flow) = run(&mut s, "a AUTHENTICATE PLAIN\r\n").await;
    assert_eq!((out.as_str(), flow), ("+ \r\n", Flow::SaslContinue));
    let mut out = Vec::new();
    assert_eq!(s.sasl_response(b"*", &mut out).await, Flow::Continue);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "a BAD Authentication aborted by client.\r\n"
    );

    let (out, flow) = run(&mut s, "b AUTHENTICATE plain\r\n").await;
    assert_eq!((out.as_str(), flow), ("+ \r\n", Flow::SaslContinue));
    let mut out = Vec::new();
    // "\0alice\0wrong"
    s.sasl_response(b"AGFsaWNlAHdyb25n", &mut out).await;
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "b NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    );

    run(&mut s, "c AUTHENTICATE PLAIN\r\n").await;
    let mut out = Vec::new();
    s.sasl_response(b"AGFsaWNlAHNlY3JldA==", &mut out).await;
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("c OK [CAPABILITY IMAP4rev1"), "{out}");
    assert_eq!(s.user(), Some("alice"));
}

#[tokio::test]
async fn sasl_login_exchange() {
    let env = env().await;
    let mut s = session(&env, config());
    let (out, flow) = run(&mut s, "a AUTHENTICATE LOGIN\r\n").await;
    assert_eq!(
        (out.as_str(), flow),
        ("+ VXNlcm5hbWU6\r\n", Flow::SaslContinue)
    );
    let mut out = Vec::new();
    assert_eq!(
        s.sasl_response(b"YWxpY2U=", &mut out).await,
        Flow::SaslContinue
    );
    assert_eq!(String::from_utf8(out).unwrap(), "+ UGFzc3dvcmQ6\r\n");
    let mut out = Vec::new();
    assert_eq!(s.sasl_response(b"c2VjcmV0", &mut out).await, Flow::Continue);
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("a OK [CAPABILITY"), "{out}");
    assert_eq!(s.auth_mechanism(), Some("LOGIN"));
}

#[tokio::test]
async fn unknown_mechanism_and_any_state_commands() {
    let env = env().await;
    let mut s = session(&env, config());
    assert_eq!(
        ok(&mut s, "a AUTHENTICATE CRAM-MD5\r\n").await,
        "a NO Unsupported authentication mechanism.\r\n"
    );
    assert_eq!(ok(&mut s, "b NOOP\r\n").await, "b OK NOOP completed.\r\n");
    assert_eq!(
        ok(&mut s, "c ID NIL\r\n").await,
        format!(
            "* ID (\"name\" \"Mailkeep\" \"version\" \"{}\")\r\nc OK ID completed.\r\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    let (out, flow) = run(&mut s, "d LOGOUT\r\n").await;
    assert_eq!(
        (out.as_str(), flow),
        (
            "* BYE Logging out\r\nd OK Logout completed.\r\n",
            Flow::Close
        )
    );
}

/// The server runs each connection in a spawned task: every session future must be `Send`.
#[tokio::test]
async fn session_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let env = env().await;
    let mut s = session(&env, config());
    let mut out = Vec::new();
    let cmd = mailkeep_proto::parse_command(&fragments(b"a NOOP\r\n")).expect("parses");
    let f = s.handle(cmd, &mut out);
    assert_send(&f);
    f.await;
    assert_send(&s.sasl_response(b"*", &mut out));
    assert_send(&s.changed());
    assert_send(&s.idle_update(&mut out));
    assert_send(&s.idle_done(true, &mut out));
    assert_send(&s.resume_output(&mut out));
    assert_send(&tokio::spawn(async move {
        let mut out = Vec::new();
        let cmd =
            mailkeep_proto::parse_command(&fragments(b"a LOGIN alice secret\r\n")).expect("parses");
        s.handle(cmd, &mut out).await
    }));
}

#[tokio::test]
async fn garbage_ends_the_connection() {
    let env = env().await;
    let mut s = session(&env, config());
    for i in 1..mailkeep_session::MAX_BAD_COMMANDS {
        let (_, flow) = run(&mut s, &format!("t{i} GET / HTTP/1.1\r\n")).await;
        assert_eq!(flow, Flow::Continue);
    }
    // A good command in between starts the count again.
    ok(&mut s, "n NOOP\r\n").await;
    for i in 1..mailkeep_session::MAX_BAD_COMMANDS {
        run(&mut s, &format!("u{i} FETCH 1 FLAGS\r\n")).await;
    }
    let (out, flow) = run(&mut s, "v FETCH 1 FLAGS\r\n").await;
    assert_eq!(flow, Flow::Close);
    assert_eq!(
        out,
        "v BAD Please log in first.\r\n* BYE Too many invalid IMAP commands.\r\n"
    );
}

/// COMPRESS=DEFLATE (RFC 4978): offered after login when the server can compress, the OK
/// asks the server to switch ([`Flow::Compress`]), a second one is `NO [COMPRESSIONACTIVE]`.
#[tokio::test]
async fn compress_deflate_after_login_only() {
    let env = env().await;
    let mut s = session(&env, config());
    s.set_compress_available(true);
    let (out, _) = run(&mut s, "a CAPABILITY\r\n").await;
    assert!(!out.contains("COMPRESS"), "{out}");
    assert_eq!(
        ok(&mut s, "b COMPRESS DEFLATE\r\n").await,
        "b BAD Please log in first.\r\n"
    );
    let (out, _) = run(&mut s, &format!("c LOGIN alice {PASSWORD}\r\n")).await;
    assert!(out.contains(" COMPRESS=DEFLATE]"), "{out}");
    let (out, _) = run(&mut s, "d CAPABILITY\r\n").await;
    assert!(out.contains(" COMPRESS=DEFLATE\r\n"), "{out}");
    assert_eq!(
        ok(&mut s, "e COMPRESS LZW\r\n").await,
        "e BAD Unknown compression mechanism.\r\n"
    );
    let (out, flow) = run(&mut s, "f compress deflate\r\n").await;
    assert_eq!(
        (out.as_str(), flow),
        ("f OK DEFLATE active.\r\n", Flow::Compress)
    );
    assert_eq!(
        ok(&mut s, "g COMPRESS DEFLATE\r\n").await,
        "g NO [COMPRESSIONACTIVE] DEFLATE is already active.\r\n"
    );
    let (out, _) = run(&mut s, "h CAPABILITY\r\n").await;
    assert!(!out.contains("COMPRESS"), "{out}");
    assert_eq!(
        ok(&mut s, "i COMPRESS\r\n").await.split(' ').nth(1),
        Some("BAD")
    );
}

#[tokio::test]
async fn compress_not_offered_when_the_server_cannot() {
    let env = env().await;
    let mut s = session(&env, config());
    let (out, _) = run(&mut s, &format!("a LOGIN alice {PASSWORD}\r\n")).await;
    assert!(!out.contains("COMPRESS"), "{out}");
    assert_eq!(
        ok(&mut s, "b COMPRESS DEFLATE\r\n").await,
        "b BAD COMPRESS is not available.\r\n"
    );
}
