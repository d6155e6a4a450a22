//! Drives a [`Session`] with command text against a real SQLite store in a temporary directory.
#![allow(dead_code)]

pub mod corpus;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mailkeep_proto::frame::{Fragment, literal_announcement};
use mailkeep_proto::parse_command;
use mailkeep_session::{Flow, Session, SessionConfig};
use mailkeep_store::MailStore;
use mailkeep_store::sqlite::SqliteStore;

pub const PASSWORD: &str = "secret";

pub struct Env {
    pub _dir: tempfile::TempDir,
    pub store: Arc<dyn MailStore>,
}

fn password_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| mailkeep_auth::hash_password(PASSWORD))
}

/// An empty store in a temporary directory named after `name`, removed on drop.
pub fn empty_env(name: &str) -> Env {
    let dir = tempfile::Builder::new()
        .prefix(&format!("mailkeep-{name}-"))
        .tempdir()
        .expect("tempdir");
    let store: Arc<dyn MailStore> = SqliteStore::open(dir.path()).expect("open store");
    Env { _dir: dir, store }
}

/// A store with users `alice` and `bob@example.org` (password [`PASSWORD`]).
pub async fn env() -> Env {
    let Env { _dir: dir, store } = empty_env("session");
    with_users(dir, store).await
}

/// [`env`] on another (empty) store, e.g. PostgreSQL.
pub async fn env_on(store: Arc<dyn MailStore>) -> Env {
    let dir = tempfile::Builder::new()
        .prefix("mailkeep-session-")
        .tempdir()
        .expect("tempdir");
    with_users(dir, store).await
}

async fn with_users(dir: tempfile::TempDir, store: Arc<dyn MailStore>) -> Env {
    store
        .create_user("alice", password_hash())
        .await
        .expect("user");
    store
        .create_user("bob", password_hash())
        .await
        .expect("user");
    Env { _dir: dir, store }
}

pub fn config() -> SessionConfig {
    SessionConfig {
        peer: "127.0.0.1:40000".parse().expect("addr"),
        tls_active: false,
        starttls_available: true,
        plaintext_auth_without_tls: true,
        max_message_size: 1_000_000,
        max_auth_failures: 3,
        max_mailboxes: 10_000,
        max_subscriptions: 10_000,
    }
}

/// No STARTTLS, messages up to 64 MiB: the setting of the command-level tests.
pub fn plain_config() -> SessionConfig {
    SessionConfig {
        peer: "127.0.0.1:1".parse().expect("addr"),
        tls_active: false,
        starttls_available: false,
        plaintext_auth_without_tls: true,
        max_message_size: 64 << 20,
        max_auth_failures: 3,
        max_mailboxes: 10_000,
        max_subscriptions: 10_000,
    }
}

pub fn session(env: &Env, config: SessionConfig) -> Session {
    let mut s = Session::new(env.store.clone(), config);
    s.set_auth_failure_delay(Duration::ZERO);
    s
}

/// Cut command text into the fragments the server would collect (lines and literals).
pub fn fragments(mut input: &[u8]) -> Vec<Fragment> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let end = input
            .iter()
            .position(|b| *b == b'\n')
            .map_or(input.len(), |i| i + 1);
        let line = &input[..end];
        input = &input[end..];
        out.push(Fragment::Line(line.to_vec()));
        if let Ok(Some(ann)) = literal_announcement(line) {
            let n = ann.len as usize;
            out.push(Fragment::Literal(input[..n].to_vec()));
            input = &input[n..];
        }
    }
    out
}

/// Parse and run one command; returns everything written and the flow.
pub async fn run(s: &mut Session, text: &str) -> (String, Flow) {
    let mut out = Vec::new();
    let flow = match parse_command(&fragments(text.as_bytes())) {
        Ok(cmd) => s.handle(cmd, &mut out).await,
        Err(e) => s.parse_error(&e, &mut out),
    };
    let flow = finish_output(s, flow, &mut out).await;
    (String::from_utf8_lossy(&out).into_owned(), flow)
}

/// Follow [`Flow::MoreOutput`] to the end of a streamed answer, as the server does, keeping
/// every part in `out`.
pub async fn finish_output(s: &mut Session, mut flow: Flow, out: &mut Vec<u8>) -> Flow {
    while flow == Flow::MoreOutput {
        flow = s.resume_output(out).await;
    }
    flow
}

/// [`run`] and expect `Flow::Continue`; returns the output with volatile numbers replaced.
pub async fn ok(s: &mut Session, text: &str) -> String {
    let (out, flow) = run(s, text).await;
    assert_eq!(flow, Flow::Continue, "{text}: {out}");
    mask(&out)
}

pub async fn login(env: &Env, user: &str) -> Session {
    let mut s = session(env, config());
    let (out, _) = run(&mut s, &format!("L LOGIN {user} {PASSWORD}\r\n")).await;
    assert!(out.starts_with("L OK"), "{out}");
    s
}

/// UIDVALIDITY values come from the clock: replace them with `$V`; MAILBOXIDs (RFC 8474,
/// made with the UIDVALIDITY) with `$M`.
pub fn mask(text: &str) -> String {
    let masked = mask_mailbox_ids(text);
    let text: &str = &masked;
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        let next = ["UIDVALIDITY ", "APPENDUID ", "COPYUID "]
            .iter()
            .filter_map(|k| rest.find(k).map(|i| (i, k.len())))
            .min();
        let Some((i, klen)) = next else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..i + klen]);
        rest = &rest[i + klen..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            out.push_str("$V");
        }
        rest = &rest[digits..];
    }
    out
}

fn mask_mailbox_ids(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("MAILBOXID (") {
        let start = i + "MAILBOXID (".len();
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let id = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
            .count();
        if id > 0 {
            out.push_str("$M");
        }
        rest = &rest[id..];
    }
    out.push_str(rest);
    out
}

/// Add a message straight through the store (no MIME analysis), as another agent (LMTP) would.
pub async fn deliver(env: &Env, user: &str, mailbox: &str, body: &str) -> u32 {
    use mailkeep_store::{MessageBytes, NewMessage};
    let m = mailbox_id(env, user, mailbox).await;
    let msg = NewMessage {
        data: MessageBytes::Memory(Arc::new(body.as_bytes().to_vec())),
        flags: Default::default(),
        internal_date: 1_700_000_000,
        internal_date_offset: 0,
        parsed: Default::default(),
    };
    let (_, uids) = env.store.append(m, vec![msg]).await.expect("append");
    uids[0]
}

pub async fn mailbox_id(env: &Env, user: &str, mailbox: &str) -> i64 {
    let u = env
        .store
        .get_user(user)
        .await
        .expect("get user")
        .expect("user");
    env.store
        .get_mailbox(u.id, mailbox)
        .await
        .expect("get mailbox")
        .expect("mailbox")
        .id
}

/// One piece of a command sent by [`Client::send`].
pub enum Piece<'a> {
    Text(&'a str),
    /// Sent as a synchronizing literal `{n}` followed by the bytes.
    Literal(&'a [u8]),
}

/// A session driven with tagged commands `T1`, `T2`, ...
pub struct Client {
    pub session: Session,
    /// The number in the tag of the last command sent.
    pub n: u32,
}

impl Client {
    pub fn new(env: &Env, config: SessionConfig) -> Client {
        Client {
            session: Session::new(env.store.clone(), config),
            n: 0,
        }
    }

    /// Send one command made of text pieces and literals; returns everything the server wrote.
    pub async fn send(&mut self, pieces: &[Piece<'_>]) -> Vec<u8> {
        self.n += 1;
        let mut frags = Vec::new();
        let mut line = format!("T{} ", self.n).into_bytes();
        for p in pieces {
            match p {
                Piece::Text(t) => line.extend_from_slice(t.as_bytes()),
                Piece::Literal(b) => {
                    line.extend_from_slice(format!("{{{}}}\r\n", b.len()).as_bytes());
                    frags.push(Fragment::Line(std::mem::take(&mut line)));
                    frags.push(Fragment::Literal(b.to_vec()));
                }
            }
        }
        line.extend_from_slice(b"\r\n");
        frags.push(Fragment::Line(line));
        let mut out = Vec::new();
        match parse_command(&frags) {
            Ok(cmd) => {
                let flow = self.session.handle(cmd, &mut out).await;
                finish_output(&mut self.session, flow, &mut out).await;
            }
            Err(e) => {
                self.session.parse_error(&e, &mut out);
            }
        }
        out
    }

    /// [`send`](Self::send) as text.
    pub async fn send_text(&mut self, pieces: &[Piece<'_>]) -> String {
        String::from_utf8_lossy(&self.send(pieces).await).into_owned()
    }

    /// Send a command that must succeed; returns everything the server wrote.
    pub async fn ok(&mut self, text: &str) -> String {
        let out = self.send_text(&[Piece::Text(text)]).await;
        assert!(out.contains(&format!("T{} OK", self.n)), "{text}: {out}");
        out
    }
}
