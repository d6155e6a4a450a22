//! The 389 messages of the Dovecot corpus (`tests/corpus`) in a store, for the golden tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mailkeep_store::{Flags, MessageBytes, NewMessage};

use super::{Client, Env, empty_env, plain_config};

/// 01-Jan-2024 00:00:00 +0000, the INTERNALDATE of every golden APPEND.
pub const INTERNAL_DATE: i64 = 1_704_067_200;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The corpus in the repository (a copy of `../shared/corpus` with Dovecot's answers).
pub fn corpus_dir() -> PathBuf {
    let local = repo_root().join("tests/corpus");
    assert!(
        local.join("dovecot/searches.tsv").exists(),
        "tests/corpus is missing from this checkout"
    );
    local
}

/// Add the corpus messages in file order to mailbox `corpus` of a new user `corpus` (password
/// `pass`); returns the files, message *n* being UID *n*.
pub async fn load_corpus(env: &Env, corpus: &Path) -> Vec<PathBuf> {
    let store = &env.store;
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus.join("messages"))
        .expect("corpus messages")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    let user = store
        .create_user("corpus", &mailkeep_auth::hash_password("pass"))
        .await
        .expect("user");
    let mailbox = store
        .create_mailbox(user.id, "corpus", None)
        .await
        .expect("mailbox");
    let mut batch = Vec::new();
    for f in &files {
        let raw = std::fs::read(f).expect("read message");
        let data = mailkeep_mime::normalize_crlf(&raw).into_owned();
        let parsed = mailkeep_session::parsed_info(mailkeep_mime::analyze(&data));
        batch.push(NewMessage {
            data: MessageBytes::Memory(Arc::new(data)),
            flags: Flags::default(),
            internal_date: INTERNAL_DATE,
            internal_date_offset: 0,
            parsed,
        });
    }
    let (_, uids) = store.append(mailbox.id, batch).await.expect("append");
    assert_eq!(
        uids,
        (1..=files.len() as u32).collect::<Vec<_>>(),
        "UIDs follow file order"
    );
    files
}

/// The corpus loaded into a fresh store, and a client that has EXAMINEd it.
pub struct Corpus {
    /// Where the corpus lives (`messages/`, `dovecot/`).
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub client: Client,
    pub env: Env,
}

pub async fn examine_corpus(name: &str) -> Corpus {
    let dir = corpus_dir();
    let env = empty_env(name);
    let files = load_corpus(&env, &dir).await;
    let mut client = Client::new(&env, plain_config());
    client.ok("LOGIN corpus pass").await;
    client.ok("EXAMINE corpus").await;
    Corpus {
        dir,
        files,
        client,
        env,
    }
}
