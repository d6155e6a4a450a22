//! FETCH against Dovecot's answers: for each of the 389 corpus messages, the `UID FETCH` of
//! `tests/corpus/dovecot/index.tsv` (RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER]
//! BODY.PEEK[1.MIME] BINARY.SIZE[1]) run through a real [`Session`], compared byte for byte with
//! Dovecot's `.fetch` file; and the BINARY.SIZE[1] failures Dovecot reports for 22 of them.
//!
//! Item order, literal framing and the BINARY error codes are the session's; the ENVELOPE,
//! BODYSTRUCTURE and section bytes are `mailkeep-mime`'s.

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
    async fn send(&mut self, pieces: &[Piece<'_>]) -> Vec<u8> {
        self.n += 1;
        let mut frags = Vec::new();
        let mut line = format!("T{} ", self.n).into_bytes();
        for p in pieces {
            match p {
                Piece::Text(t) => line.extend_from_slice(t.as_bytes()),
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
        out
    }

    async fn ok(&mut self, text: &str) -> String {
        let out = String::from_utf8_lossy(&self.send(&[Piece::Text(text)]).await).into_owned();
        assert!(out.contains(&format!("T{} OK", self.n)), "{text}: {out}");
        out
    }
}

enum Piece<'a> {
    Text(&'a str),
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

/// `* OK [UNKNOWN-CTE]` / `NO [PARSE]` per message, from the corpus README: Dovecot's answer to
/// BINARY.SIZE[1] where it did not end in OK (130, 304 and 313 closed the connection instead).
fn binary_size_errors(corpus: &Path) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let dir = corpus.join("dovecot/binary-size-errors");
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let uid: u32 = name[..3].parse().unwrap_or(0);
        if let Some(l) = text.lines().find(|l| l.contains(" NO [")) {
            let code = l[l.find(" NO [").unwrap_or(0) + 1..]
                .split(']')
                .next()
                .unwrap_or("")
                .to_string()
                + "]";
            out.push((uid, code));
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_fetch_goldens() {
    let corpus = corpus_dir();
    let scratch = Scratch::new("fetch-goldens");
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

    let index = std::fs::read_to_string(corpus.join("dovecot/index.tsv")).expect("index.tsv");
    let (mut same, mut total) = (0, 0);
    let mut differing = Vec::new();
    for row in index.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        let (file, uid, items) = (cols[0], cols[1], cols[2]);
        total += 1;
        let want = std::fs::read(corpus.join("dovecot").join(file.replace(".eml", ".fetch")))
            .expect("golden");
        let raw = c
            .send(&[Piece::Text(&format!("UID FETCH {uid} {items}"))])
            .await;
        // Literals may hold raw 8-bit bytes (not UTF-8): compare bytes; text only for the tag.
        let tag_at = raw
            .windows(2)
            .rposition(|w| w == b"\nT")
            .map(|p| p + 1)
            .unwrap_or(0);
        let tagged = String::from_utf8_lossy(&raw[tag_at..]).into_owned();
        assert!(
            tagged.starts_with(&format!("T{} OK", c.n)),
            "{file}: {tagged}"
        );
        let got = &raw[..tag_at];
        // The session's own part: one response, UID first, items in the order asked.
        let head = format!("* {uid} FETCH (UID {uid} RFC822.SIZE ");
        assert!(
            got.starts_with(head.as_bytes()),
            "{file}: {}",
            String::from_utf8_lossy(&got[..got.len().min(80)])
        );
        let text = String::from_utf8_lossy(got);
        let order = [
            "ENVELOPE (",
            "BODYSTRUCTURE (",
            "BODY[HEADER] {",
            "BODY[1.MIME] {",
        ];
        let pos: Vec<usize> = order
            .iter()
            .map(|l| text.find(l).unwrap_or(usize::MAX))
            .collect();
        assert!(
            pos.windows(2).all(|w| w[0] < w[1]),
            "{file}: items out of order"
        );
        if got == want.as_slice() {
            same += 1;
        } else if std::env::var("FETCH_DUMP").is_ok() {
            let dir = std::env::temp_dir().join("mailkeep-fetch-goldens");
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join(file.replace(".eml", ".actual")), got);
            differing.push(file.to_string());
        } else {
            differing.push(file.to_string());
        }
    }

    let errors = binary_size_errors(&corpus);
    let mut error_same = 0;
    for (uid, code) in &errors {
        let raw = c
            .send(&[Piece::Text(&format!("UID FETCH {uid} (BINARY.SIZE[1])"))])
            .await;
        let out = String::from_utf8_lossy(&raw);
        if out.contains(&format!("T{} {code}", c.n)) {
            error_same += 1;
        } else {
            differing.push(format!(
                "{uid:03} BINARY.SIZE[1]: want {code}, got {}",
                out.trim_end()
            ));
        }
    }
    eprintln!(
        "FETCH goldens: {same}/{total} byte-identical to Dovecot; BINARY.SIZE errors {error_same}/{} identical; differing: {differing:?}",
        errors.len()
    );
    // The session's framing is checked above for every message; the bytes inside are mostly
    // mailkeep-mime's, so this floor only catches a collapse (e.g. a broken literal writer).
    assert!(
        same * 10 >= total * 9,
        "only {same}/{total} FETCH answers identical"
    );
}
