//! SEARCH against Dovecot's answers: the 1,057 `UID SEARCH` commands of the corpus
//! (`tests/corpus/dovecot/searches.tsv`, see `tests/corpus/README.md`) run through a real
//! [`Session`] over a SQLite store holding the 389 corpus messages, appended in order with the
//! fixed INTERNALDATE the goldens used.
//!
//! Where Dovecot's answer is not what RFC 9051 asks for, the command is listed with the reason
//! in `tests/corpus/search-differences.tsv`; every other answer must match byte for byte.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mailkeep_proto::{Fragment, parse_command};
use mailkeep_session::{Session, SessionConfig};
use mailkeep_store::sqlite::SqliteStore;
use mailkeep_store::{Flags, MailStore, MessageBytes, NewMessage, ParsedInfo};

/// 01-Jan-2024 00:00:00 +0000, the INTERNALDATE of every golden APPEND.
const INTERNAL_DATE: i64 = 1_704_067_200;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The corpus in the repository, or the shared copy it was taken from.
fn corpus_dir() -> PathBuf {
    let local = repo_root().join("tests/corpus");
    if local.join("dovecot/searches.tsv").exists() {
        local
    } else {
        PathBuf::from("/work/shared/corpus")
    }
}

/// A scratch directory removed on drop (the crate has no tempfile dev-dependency).
struct Scratch(PathBuf);
impl Scratch {
    fn new(name: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let p =
            std::env::temp_dir().join(format!("mailkeep-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).expect("scratch dir");
        Scratch(p)
    }
}
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Client {
    session: Session,
    n: u32,
}

impl Client {
    /// Send one command made of text pieces and literals; returns everything the server wrote.
    async fn send(&mut self, pieces: &[Piece<'_>]) -> String {
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
                self.session.handle(cmd, &mut out).await;
            }
            Err(e) => {
                self.session.parse_error(&e, &mut out);
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    async fn ok(&mut self, text: &str) -> String {
        let out = self.send(&[Piece::Text(text)]).await;
        assert!(out.contains(&format!("T{} OK", self.n)), "{text}: {out}");
        out
    }
}

enum Piece<'a> {
    Text(&'a str),
    Literal(&'a [u8]),
}

/// `UID SEARCH CHARSET UTF-8 KEY "string"` -> text before the string and the string's bytes.
fn split_command(command: &str) -> (&str, Vec<u8>) {
    let Some(q) = command.find('"') else {
        return (command, Vec::new());
    };
    let quoted = &command[q + 1..command.len().saturating_sub(1)];
    let mut s = Vec::new();
    let mut esc = false;
    for &b in quoted.as_bytes() {
        if !esc && b == b'\\' {
            esc = true;
            continue;
        }
        esc = false;
        s.push(b);
    }
    (&command[..q], s)
}

/// The UIDs named in a reason's `[157,284]` lists: the messages the answers differ on.
fn bracketed_uids(reason: &str) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    for part in reason.split('[').skip(1) {
        let inner = part.split(']').next().unwrap_or("");
        out.extend(
            inner
                .split(',')
                .filter_map(|n| n.trim().parse::<u32>().ok()),
        );
    }
    out
}

/// UIDs in exactly one of two `* SEARCH` answers.
fn symmetric_difference(a: &str, b: &str) -> BTreeSet<u32> {
    let set = |s: &str| -> BTreeSet<u32> {
        s.split(' ')
            .skip(2)
            .filter_map(|n| n.parse().ok())
            .collect()
    };
    set(a).symmetric_difference(&set(b)).copied().collect()
}

fn search_line(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("* SEARCH"))
        .unwrap_or("(no * SEARCH)")
        .trim_end()
        .to_string()
}

async fn load_corpus(store: &Arc<SqliteStore>, corpus: &Path) -> Vec<PathBuf> {
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
        let a = mailkeep_mime::analyze(&data);
        let parsed = ParsedInfo {
            envelope: a.envelope,
            bodystructure: a.bodystructure,
            body: a.body,
            parts: a.parts.to_bytes(),
            search_text: a.search_text,
            search_body_offset: a.search_body_offset,
            sent_date: a.sent_date,
        };
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

fn config() -> SessionConfig {
    SessionConfig {
        peer: "127.0.0.1:1".parse::<SocketAddr>().expect("addr"),
        tls_active: false,
        starttls_available: false,
        plaintext_auth_without_tls: true,
        max_message_size: 64 << 20,
        max_auth_failures: 3,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_search_goldens() {
    let corpus = corpus_dir();
    let scratch = Scratch::new("search-goldens");
    let store = SqliteStore::open(&scratch.0).expect("open store");
    let files = load_corpus(&store, &corpus).await;
    assert_eq!(files.len(), 389);

    let dyn_store: Arc<dyn MailStore> = store.clone();
    let mut c = Client {
        session: Session::new(dyn_store, config()),
        n: 0,
    };
    c.ok("LOGIN corpus pass").await;
    c.ok("EXAMINE corpus").await;

    let differences_path = repo_root().join("tests/corpus/search-differences.tsv");
    let accepted: HashMap<String, String> = std::fs::read_to_string(&differences_path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut f = l.splitn(3, '\t');
            let (nnn, command) = (f.next()?, f.next()?);
            Some((
                format!("{nnn}\t{command}"),
                f.next().unwrap_or("").to_string(),
            ))
        })
        .collect();

    let tsv = std::fs::read_to_string(corpus.join("dovecot/searches.tsv")).expect("searches.tsv");
    let (mut matched, mut total, mut accepted_diffs) = (0, 0, 0);
    let mut failures = Vec::new();
    let mut actual = String::from("file\tcommand\tdovecot\tmailkeep\n");
    for row in tsv.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        let (file, command, want) = (cols[0], cols[2], cols[3]);
        total += 1;
        let (head, needle) = split_command(command);
        let out = if needle.is_ascii() && !needle.contains(&b'"') && !needle.contains(&b'\\') {
            c.send(&[Piece::Text(command)]).await
        } else {
            c.send(&[Piece::Text(head), Piece::Literal(&needle)]).await
        };
        let got = search_line(&out);
        if got == want {
            matched += 1;
            continue;
        }
        actual.push_str(&format!("{file}\t{command}\t{want}\t{got}\n"));
        let key = format!("{}\t{}", &file[..3], command);
        let listed = accepted.get(&key).map(|reason| bracketed_uids(reason));
        if listed.is_some_and(|l| l == symmetric_difference(want, &got)) {
            accepted_diffs += 1;
        } else {
            failures.push(format!(
                "{file}: {command}\n  dovecot:  {want}\n  mailkeep: {got}"
            ));
        }
    }
    let actual_path = std::env::temp_dir().join("mailkeep-search-goldens.actual.tsv");
    let _ = std::fs::write(&actual_path, &actual);
    eprintln!(
        "SEARCH goldens: {matched}/{total} identical to Dovecot, {accepted_diffs} listed differences, {} unexpected (all differences in {})",
        failures.len(),
        actual_path.display()
    );
    assert!(
        failures.is_empty(),
        "{} unexpected differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
