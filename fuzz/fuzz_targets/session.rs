//! Fuzz a whole session from raw client bytes: the input is cut into commands the way the
//! server does (lines, literals), each command is parsed and run by a real `Session` on a real
//! SQLite store, and the session's flow (SASL continuation, IDLE, STARTTLS, close) is followed.
//! Nothing may panic, whatever the client sends. The store is shared by runs in a row
//! (`RESET_EVERY`), so state left by one input (mailboxes, messages) is there for the next, as on
//! a long-running server.
#![no_main]

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mailkeep_proto::frame::{Fragment, literal_announcement};
use mailkeep_proto::parse_command;
use mailkeep_session::{Flow, Session, SessionConfig};
use mailkeep_store::MailStore;
use mailkeep_store::sqlite::SqliteStore;

/// Commands per input: a bound so one input cannot run for long.
const MAX_COMMANDS: usize = 32;
const MAX_FRAGMENTS: usize = 64;

struct World {
    runtime: tokio::runtime::Runtime,
    store: Arc<dyn MailStore>,
    _dir: tempfile::TempDir,
}

/// An argon2id hash with the smallest cost: logins are checked as on a server (the parameters
/// come from the stored hash), without a production hash's 20 ms per fuzzed login.
fn cheap_hash(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(8, 1, 1, None).expect("params");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    argon
        .hash_password(password.as_bytes(), &SaltString::from_b64("ZnV6enNhbHQ").expect("salt"))
        .expect("hash")
        .to_string()
}

/// Inputs run on one world before it is replaced by a fresh one. The state inputs leave behind
/// (messages, mailboxes) is part of what is fuzzed, but left to grow for millions of inputs it
/// made every input slower (thousands of inputs a second falling to hundreds) without
/// reaching new code.
const RESET_EVERY: u32 = 500;

fn new_world() -> World {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    // On tmpfs when there is one: the store fsyncs every write, which is not what is fuzzed.
    let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).expect("tempdir");
    let store: Arc<dyn MailStore> = SqliteStore::open(dir.path()).expect("store");
    runtime.block_on(async {
        // The fuzzer logs in as `f` / `p` (seeds show how).
        store.create_user("f", &cheap_hash("p")).await.expect("user");
    });
    World { runtime, store, _dir: dir }
}

/// The current world, replaced by a fresh one every `RESET_EVERY` inputs.
fn world() -> Rc<World> {
    thread_local! {
        static WORLD: RefCell<Option<(Rc<World>, u32)>> = const { RefCell::new(None) };
    }
    WORLD.with_borrow_mut(|slot| {
        if slot.as_ref().is_none_or(|(_, runs)| *runs >= RESET_EVERY) {
            // The old world goes first: its store's threads, its runtime, then its directory.
            *slot = None;
            *slot = Some((Rc::new(new_world()), 0));
        }
        let (world, runs) = slot.as_mut().expect("world");
        *runs += 1;
        world.clone()
    })
}

/// Cut the next command off `rest`: one line, and a literal after each line that announces one.
fn next_command<'a>(rest: &mut &'a [u8]) -> Vec<Fragment> {
    let mut frags = Vec::new();
    while frags.len() < MAX_FRAGMENTS && !rest.is_empty() {
        let end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
        let (line, after) = rest.split_at(end);
        frags.push(Fragment::Line(line.to_vec()));
        *rest = after;
        let Ok(Some(a)) = literal_announcement(line) else {
            break;
        };
        let len = usize::try_from(a.len).unwrap_or(usize::MAX).min(rest.len());
        let (lit, after) = rest.split_at(len);
        frags.push(Fragment::Literal(lit.to_vec()));
        *rest = after;
    }
    frags
}

fn next_line<'a>(rest: &mut &'a [u8]) -> &'a [u8] {
    let end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
    let (line, after) = rest.split_at(end);
    *rest = after;
    line.strip_suffix(b"\n").map(|l| l.strip_suffix(b"\r").unwrap_or(l)).unwrap_or(line)
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    w.runtime.block_on(async {
        let config = SessionConfig {
            peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
            tls_active: false,
            starttls_available: true,
            plaintext_auth_without_tls: true,
            max_message_size: 1 << 20,
            max_auth_failures: 3,
            max_mailboxes: 50,
            max_subscriptions: 50,
        };
        let mut session = Session::new(w.store.clone(), config);
        session.set_auth_failure_delay(Duration::ZERO);
        let mut out = Vec::new();
        session.greeting(&mut out);
        let mut rest = data;
        for _ in 0..MAX_COMMANDS {
            if rest.is_empty() {
                break;
            }
            out.clear();
            let frags = next_command(&mut rest);
            let mut flow = match parse_command(&frags) {
                Ok(cmd) => session.handle(cmd, &mut out).await,
                Err(e) => session.parse_error(&e, &mut out),
            };
            loop {
                flow = match flow {
                    Flow::Continue => break,
                    Flow::Close => return,
                    Flow::StartTls => {
                        session.tls_started();
                        break;
                    }
                    // The server would deflate the stream from here; the session is the same.
                    Flow::Compress => break,
                    Flow::SaslContinue => {
                        let line = next_line(&mut rest);
                        session.sasl_response(line, &mut out).await
                    }
                    Flow::MoreOutput => session.resume_output(&mut out).await,
                    Flow::Idle => {
                        session.idle_update(&mut out).await;
                        let line = next_line(&mut rest);
                        session.idle_done(line.eq_ignore_ascii_case(b"DONE"), &mut out).await
                    }
                };
            }
            if session.is_logged_out() {
                return;
            }
        }
    });
});
