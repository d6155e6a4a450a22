//! AUTHENTICATE SCRAM-SHA-256 and -PLUS (RFC 5802, 7677, 9266) driven by an independent
//! client written here from RFC 5802 §3, and the rehash / key derivation at PLAIN logins.

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::*;
use hmac::{Hmac, Mac};
use mailkeep_session::{Flow, Session};
use sha2::{Digest, Sha256};

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// The client's side of one exchange.
struct Client {
    gs2: String,
    bare: String,
}

impl Client {
    fn new(user: &str, gs2: &str) -> Client {
        Client {
            gs2: gs2.to_string(),
            bare: format!("n={user},r=fyko+d2lbbFgONRv9qkxdawL"),
        }
    }

    fn first(&self) -> String {
        B64.encode(format!("{}{}", self.gs2, self.bare))
    }

    /// The client-final message (base64) and the server signature it expects.
    fn last(&self, password: &str, server_first_b64: &str, cb: &[u8]) -> (String, String) {
        let sf = String::from_utf8(B64.decode(server_first_b64).unwrap()).unwrap();
        let mut it = sf.split(',');
        let nonce = it.next().unwrap().strip_prefix("r=").unwrap();
        assert!(nonce.starts_with("fyko+d2lbbFgONRv9qkxdawL") && nonce.len() > 24);
        let salt = B64
            .decode(it.next().unwrap().strip_prefix("s=").unwrap())
            .unwrap();
        let i: u32 = it
            .next()
            .unwrap()
            .strip_prefix("i=")
            .unwrap()
            .parse()
            .unwrap();
        let mut salted = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &salt, i, &mut salted);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = Sha256::digest(&client_key);
        let mut c = self.gs2.as_bytes().to_vec();
        c.extend_from_slice(cb);
        let without = format!("c={},r={nonce}", B64.encode(c));
        let am = format!("{},{sf},{without}", self.bare);
        let sig = hmac(&stored_key, am.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(sig).map(|(a, b)| a ^ b).collect();
        let server_sig = hmac(&hmac(&salted, b"Server Key"), am.as_bytes());
        (
            B64.encode(format!("{without},p={}", B64.encode(proof))),
            format!("v={}", B64.encode(server_sig)),
        )
    }
}

async fn respond(s: &mut Session, line: &str) -> (String, Flow) {
    let mut out = Vec::new();
    let flow = s.sasl_response(line.as_bytes(), &mut out).await;
    (String::from_utf8(out).unwrap(), flow)
}

fn challenge(out: &str) -> String {
    let b = out.strip_prefix("+ ").and_then(|o| o.strip_suffix("\r\n"));
    String::from_utf8(
        B64.decode(b.unwrap_or_else(|| panic!("no challenge: {out}")))
            .unwrap(),
    )
    .unwrap()
}

/// A whole SCRAM exchange; returns the tagged answer (the last line) and the server-first
/// message.
async fn scram(
    s: &mut Session,
    mechanism: &str,
    user: &str,
    password: &str,
    gs2: &str,
    cb: &[u8],
) -> (String, String) {
    let c = Client::new(user, gs2);
    let (out, flow) = run(s, &format!("a AUTHENTICATE {mechanism} {}\r\n", c.first())).await;
    if flow != Flow::SaslContinue {
        return (out, String::new());
    }
    let sf_b64 = out.trim_start_matches("+ ").trim_end().to_string();
    let server_first = challenge(&out);
    let (fin, want_sig) = c.last(password, &sf_b64, cb);
    let (out, flow) = respond(s, &fin).await;
    if flow != Flow::SaslContinue {
        // Failed: the tagged NO at once, no `e=` challenge.
        return (out, server_first);
    }
    assert_eq!(
        challenge(&out),
        want_sig,
        "the server proves it knows the keys"
    );
    let (out, _) = respond(s, "").await;
    (out, server_first)
}

#[tokio::test]
async fn keys_come_with_the_first_plain_login_then_scram_works() {
    let env = env().await;
    // alice was made before SCRAM keys existed: SCRAM fails like a wrong password.
    let mut s = session(&env, config());
    let (out, _) = scram(&mut s, "SCRAM-SHA-256", "alice", PASSWORD, "n,,", b"").await;
    assert_eq!(
        out,
        "a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    );
    assert!(env.store.get_scram_keys("alice").await.unwrap().is_none());
    // A PLAIN login derives and stores them.
    let _ = login(&env, "alice").await;
    let keys = env.store.get_scram_keys("alice").await.unwrap().unwrap();
    assert_eq!(keys.iterations, 4096);
    let mut s = session(&env, config());
    let (out, _) = scram(&mut s, "SCRAM-SHA-256", "alice", PASSWORD, "n,,", b"").await;
    assert!(out.starts_with("a OK [CAPABILITY IMAP4rev1"), "{out}");
    assert_eq!(s.user(), Some("alice"));
    // A wrong password: e=invalid-proof, then the same NO as a wrong LOGIN.
    let mut s = session(&env, config());
    let (out, _) = scram(&mut s, "SCRAM-SHA-256", "alice", "wrong", "n,,", b"").await;
    assert_eq!(
        out,
        "a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    );
    assert_eq!(s.user(), None);
}

#[tokio::test]
async fn unknown_user_looks_like_a_known_one() {
    let env = env().await;
    let _ = login(&env, "alice").await;
    let mut s = session(&env, config());
    let (out, sf1) = scram(&mut s, "SCRAM-SHA-256", "nobody", "x", "n,,", b"").await;
    assert_eq!(
        out,
        "a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
    );
    let mut s = session(&env, config());
    let (_, sf2) = scram(&mut s, "SCRAM-SHA-256", "nobody", "x", "n,,", b"").await;
    let salt = |sf: &str| sf.split(',').nth(1).unwrap().to_string();
    assert_eq!(salt(&sf1), salt(&sf2), "the same salt every time");
    assert!(sf1.ends_with(",i=4096"), "{sf1}");
    let mut s = session(&env, config());
    let (_, sf3) = scram(&mut s, "SCRAM-SHA-256", "nobody2", "x", "n,,", b"").await;
    assert_ne!(salt(&sf1), salt(&sf3), "another name, another salt");
    assert_eq!(
        salt(&sf1).len(),
        "s=".len() + 24,
        "16 bytes, like a real one"
    );
}

#[tokio::test]
async fn plus_binds_to_the_tls_connection() {
    let env = env().await;
    let _ = login(&env, "alice").await;
    let cb = [0x5a; 32];
    let bound = |env: &Env| {
        let mut s = session(env, config());
        s.set_channel_binding(Some(cb.to_vec()));
        s
    };
    let mut s = bound(&env);
    let caps = ok(&mut s, "c CAPABILITY\r\n").await;
    assert!(
        caps.contains("AUTH=SCRAM-SHA-256-PLUS AUTH=SCRAM-SHA-256 "),
        "{caps}"
    );
    let (out, _) = scram(
        &mut s,
        "SCRAM-SHA-256-PLUS",
        "alice",
        PASSWORD,
        "p=tls-exporter,,",
        &cb,
    )
    .await;
    assert!(out.starts_with("a OK [CAPABILITY"), "{out}");
    // Another connection's binding (a relay in the middle): refused.
    let mut s = bound(&env);
    let (out, _) = scram(
        &mut s,
        "SCRAM-SHA-256-PLUS",
        "alice",
        PASSWORD,
        "p=tls-exporter,,",
        &[0x11; 32],
    )
    .await;
    assert_eq!(
        out,
        "a NO [AUTHENTICATIONFAILED] Authentication failed (e=channel-bindings-dont-match).\r\n"
    );
    // `y`: the client could bind but thinks we cannot: someone stripped -PLUS.
    let mut s = bound(&env);
    let (out, _) = scram(&mut s, "SCRAM-SHA-256", "alice", PASSWORD, "y,,", b"").await;
    assert_eq!(
        out,
        "a NO [AUTHENTICATIONFAILED] Authentication failed (e=server-does-support-channel-binding).\r\n"
    );
    // Without TLS (no binding) -PLUS is neither offered nor accepted, and `y` is fine.
    let mut s = session(&env, config());
    let caps = ok(&mut s, "c CAPABILITY\r\n").await;
    assert!(!caps.contains("-PLUS"), "{caps}");
    let (out, _) = scram(
        &mut s,
        "SCRAM-SHA-256-PLUS",
        "alice",
        PASSWORD,
        "p=tls-exporter,,",
        &cb,
    )
    .await;
    assert_eq!(out, "a NO Unsupported authentication mechanism.\r\n");
    let (out, _) = scram(&mut s, "SCRAM-SHA-256", "alice", PASSWORD, "y,,", b"").await;
    assert!(out.starts_with("a OK"), "{out}");
}

#[tokio::test]
async fn scram_failures_count_and_close_the_connection() {
    let env = env().await;
    let _ = login(&env, "alice").await;
    let mut s = session(&env, config());
    // A wrong proof is answered at once, as a wrong password is.
    let c = Client::new("alice", "n,,");
    let (out, _) = run(
        &mut s,
        &format!("a AUTHENTICATE SCRAM-SHA-256 {}\r\n", c.first()),
    )
    .await;
    let (fin, _) = c.last("wrong", out.trim_start_matches("+ ").trim_end(), b"");
    let (out, flow) = respond(&mut s, &fin).await;
    assert_eq!(
        (out.as_str(), flow),
        (
            "a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
            Flow::Continue
        )
    );
    // Cancelling before the proof is BAD, as for PLAIN.
    let (out, flow) = run(&mut s, "b AUTHENTICATE SCRAM-SHA-256\r\n").await;
    assert_eq!((out.as_str(), flow), ("+ \r\n", Flow::SaslContinue));
    let (out, _) = respond(&mut s, "*").await;
    assert_eq!(out, "b BAD Authentication aborted by client.\r\n");
    // Garbage client-first: NO, counted.
    let (out, _) = run(
        &mut s,
        &format!("c AUTHENTICATE SCRAM-SHA-256 {}\r\n", B64.encode("x")),
    )
    .await;
    assert_eq!(
        out,
        "c NO [AUTHENTICATIONFAILED] Authentication failed (e=invalid-encoding).\r\n"
    );
    // The third failure closes the connection (max_auth_failures = 3).
    let (out, flow) = scram(&mut s, "SCRAM-SHA-256", "alice", "wrong", "n,,", b"").await;
    assert!(out.contains("* BYE"), "{out}");
    let _ = flow;
}

#[tokio::test]
async fn imported_hashes_log_in_and_are_rehashed() {
    let env = empty_env("scram-import");
    // `doveadm pw -s SSHA256 -p pass` and `-s SCRAM-SHA-256`.
    let ssha =
        mailkeep_auth::hashes::import("{SSHA256}hkxrGCYp/Fbrgm03miukLZzAvu/69TsnAmn10KaLmUrIWR5j")
            .unwrap();
    let scram_hash = mailkeep_auth::hashes::import("{SCRAM-SHA-256}4096,mBQDANqeJfZrBCcJvIsBPQ==,YQocLOZ0Vii1xpDjbLNWHG+5Q6Hw9WIThnyuEV4h08k=,dOWpAPOTLLNbe6OWZP6MrX10vJnpHFqyBBWXNEgXMT0=").unwrap();
    env.store.create_user("old", &ssha).await.unwrap();
    env.store.create_user("scr", &scram_hash).await.unwrap();
    // An imported {SCRAM-SHA-256} hash serves SCRAM as it is.
    let mut s = session(&env, config());
    let (out, sf) = scram(&mut s, "SCRAM-SHA-256", "scr", "pass", "n,,", b"").await;
    assert!(out.starts_with("a OK"), "{out}");
    assert!(sf.contains(",s=mBQDANqeJfZrBCcJvIsBPQ==,i=4096"), "{sf}");
    // PLAIN with the imported SSHA256 hash: accepted, then stored as argon2id with SCRAM keys.
    let mut s = session(&env, config());
    let (out, _) = run(&mut s, "a LOGIN old pass\r\n").await;
    assert!(out.starts_with("a OK"), "{out}");
    let user = env.store.get_user("old").await.unwrap().unwrap();
    assert!(
        user.password_hash.starts_with("$argon2id$"),
        "{}",
        user.password_hash
    );
    assert!(env.store.get_scram_keys("old").await.unwrap().is_some());
    let mut s = session(&env, config());
    let (out, _) = run(&mut s, "a LOGIN old wrong\r\n").await;
    assert!(out.starts_with("a NO"), "{out}");
    let mut s = session(&env, config());
    let (out, _) = scram(&mut s, "SCRAM-SHA-256", "old", "pass", "n,,", b"").await;
    assert!(out.starts_with("a OK"), "{out}");
    // And the {SCRAM-SHA-256} account, after a PLAIN login, too.
    let mut s = session(&env, config());
    let (out, _) = run(&mut s, "a LOGIN scr pass\r\n").await;
    assert!(out.starts_with("a OK"), "{out}");
    let user = env.store.get_user("scr").await.unwrap().unwrap();
    assert!(user.password_hash.starts_with("$argon2id$"));
    let mut s = session(&env, config());
    let (out, _) = scram(&mut s, "SCRAM-SHA-256", "scr", "pass", "n,,", b"").await;
    assert!(out.starts_with("a OK"), "{out}");
}
