//! Fuzz the LMTP and POP3 sessions from raw client bytes on a real SQLite store: the first input
//! byte chooses the protocol, the rest is cut into lines (and, for LMTP, DATA lines and BDAT
//! chunks as the session asks for them) the way the server cuts them. Nothing may panic.
#![no_main]

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mailkeep_store::MailStore;
use mailkeep_store::sqlite::SqliteStore;

/// Lines per input, and the longest line handed over (the servers' own caps are similar).
const MAX_STEPS: usize = 64;
const MAX_LINE: usize = 8 * 1024;

struct World {
    runtime: tokio::runtime::Runtime,
    store: Arc<dyn MailStore>,
    maildrops: Arc<mailkeep_pop3::Maildrops>,
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
const RESET_EVERY: u32 = 5_000;

fn new_world() -> World {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    // On tmpfs when there is one: the store fsyncs every write, which is not what is fuzzed.
    let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).expect("tempdir");
    let store: Arc<dyn MailStore> = SqliteStore::open(dir.path()).expect("store");
    runtime.block_on(async {
        // POP3 logs in as `f` / `p`; LMTP delivers to f@f.test (seeds show how).
        store.create_user("f", &cheap_hash("p")).await.expect("user");
        store.add_domain("f.test").await.expect("domain");
    });
    World { runtime, store, maildrops: mailkeep_pop3::Maildrops::new(), _dir: dir }
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

/// The next line with its line ending (the last one may have none).
fn next_line<'a>(rest: &mut &'a [u8]) -> &'a [u8] {
    let end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
    let (line, after) = rest.split_at(end);
    *rest = after;
    line
}

async fn lmtp(w: &World, mut rest: &[u8]) {
    use mailkeep_lmtp::{Config, Flow, Session, Want};
    let config = Config { max_message_size: 1 << 20, ..Config::default() };
    let mut session = Session::new(w.store.clone(), config);
    let mut out = Vec::new();
    session.greeting(&mut out);
    for _ in 0..MAX_STEPS {
        if rest.is_empty() {
            break;
        }
        out.clear();
        let flow = match session.want() {
            Want::Command | Want::Data => {
                let line = next_line(&mut rest);
                if line.len() > MAX_LINE { session.line_too_long(&mut out) } else { session.line(line, &mut out).await }
            }
            Want::Chunk(n) => {
                let take = usize::try_from(n).unwrap_or(usize::MAX).min(rest.len());
                let (chunk, after) = rest.split_at(take);
                rest = after;
                session.chunk(chunk, &mut out).await
            }
        };
        if flow == Flow::Close {
            return;
        }
    }
    session.abort();
}

async fn pop3(w: &World, mut rest: &[u8]) {
    use mailkeep_pop3::{Flow, Pop3Config, Session};
    let config = Pop3Config {
        peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
        tls_active: false,
        stls_available: true,
        plaintext_auth_without_tls: true,
        max_auth_failures: 3,
        delete_on_quit: true,
    };
    let mut session = Session::new(w.store.clone(), w.maildrops.clone(), config);
    session.set_auth_failure_delay(Duration::ZERO);
    let mut out = Vec::new();
    session.greeting(&mut out);
    for _ in 0..MAX_STEPS {
        if rest.is_empty() {
            break;
        }
        out.clear();
        let line = next_line(&mut rest);
        let flow = if line.len() > MAX_LINE {
            session.line_too_long(&mut out)
        } else {
            let line = line.strip_suffix(b"\n").map(|l| l.strip_suffix(b"\r").unwrap_or(l)).unwrap_or(line);
            session.handle_line(line, &mut out).await
        };
        match flow {
            Flow::Continue => {}
            Flow::Close => return,
            Flow::StartTls => session.tls_started(),
            Flow::Message(mut message) => {
                let mut piece = Vec::new();
                while message.next_chunk(&mut piece, 4096).unwrap_or(false) {
                    piece.clear();
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    w.runtime.block_on(async { if which & 1 == 0 { lmtp(&w, rest).await } else { pop3(&w, rest).await } });
});
