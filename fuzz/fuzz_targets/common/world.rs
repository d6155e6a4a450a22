//! The store the `session` and `protocols` targets run their inputs on, shared by inputs in a
//! row and replaced by a fresh one now and then (see `current`).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use mailkeep_store::MailStore;
use mailkeep_store::sqlite::SqliteStore;

pub struct World {
    pub runtime: tokio::runtime::Runtime,
    pub store: Arc<dyn MailStore>,
    /// POP3 maildrop locks (the `protocols` target).
    #[allow(dead_code)]
    pub maildrops: Arc<mailkeep_pop3::Maildrops>,
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

fn new_world() -> World {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    // On tmpfs when there is one: the store fsyncs every write, which is not what is fuzzed.
    let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).expect("tempdir");
    let store: Arc<dyn MailStore> = SqliteStore::open(dir.path()).expect("store");
    runtime.block_on(async {
        // Inputs log in as `f` / `p` (IMAP, POP3); LMTP delivers to f@f.test (seeds show how).
        store.create_user("f", &cheap_hash("p")).await.expect("user");
        store.add_domain("f.test").await.expect("domain");
    });
    World { runtime, store, maildrops: mailkeep_pop3::Maildrops::new(), _dir: dir }
}

/// The current world, replaced by a fresh one every `reset_every` inputs. The state inputs
/// leave behind (messages, mailboxes) is part of what is fuzzed, but left to grow for millions
/// of inputs it made every input slower (thousands of inputs a second falling to hundreds)
/// without reaching new code.
pub fn current(reset_every: u32) -> Rc<World> {
    thread_local! {
        static WORLD: RefCell<Option<(Rc<World>, u32)>> = const { RefCell::new(None) };
    }
    WORLD.with_borrow_mut(|slot| {
        if slot.as_ref().is_none_or(|(_, runs)| *runs >= reset_every) {
            // The old world goes first: its store's threads, its runtime, then its directory.
            *slot = None;
            *slot = Some((Rc::new(new_world()), 0));
        }
        let (world, runs) = slot.as_mut().expect("world");
        *runs += 1;
        world.clone()
    })
}
