//! FETCH, STORE, SEARCH, COPY, MOVE and EXPUNGE through a real [`Session`] over a SQLite store:
//! the exact untagged responses each command writes (RFC 9051 §6.4, RFC 4731, RFC 5182,
//! RFC 6851, RFC 7162), with answers shaped like Dovecot 2.3's where the RFC leaves a choice.

mod common;

use common::{Env, Piece, empty_env, plain_config};

/// A [`common::Client`] that splits each answer into untagged and tagged lines.
struct Client(common::Client);

impl Client {
    /// One command (a literal is given as `{{LIT:...}}`-free text plus optional literal bytes);
    /// returns the untagged lines and the tagged line separately, `\Recent` removed so the
    /// answers do not depend on which session claimed it.
    async fn run(&mut self, text: &str, literal: Option<&[u8]>, tail: &str) -> (String, String) {
        let head = format!("{text} ");
        let out = match literal {
            Some(lit) => {
                self.0
                    .send_text(&[Piece::Text(&head), Piece::Literal(lit), Piece::Text(tail)])
                    .await
            }
            None => self.0.send_text(&[Piece::Text(text)]).await,
        };
        let tag = format!("T{}", self.0.n);
        // Keyword announcements (`* FLAGS`, PERMANENTFLAGS) are the dispatcher's, not ours.
        let out: String = out
            .split_inclusive("\r\n")
            .filter(|l| !l.starts_with("* FLAGS ") && !l.starts_with("* OK [PERMANENTFLAGS"))
            .collect();
        let out = out.replace(" \\Recent", "").replace("(\\Recent)", "()");
        let at = out.rfind(&format!("{tag} ")).unwrap_or(out.len());
        let tagged = out[at..]
            .trim_end()
            .strip_prefix(&format!("{tag} "))
            .unwrap_or("")
            .to_string();
        (out[..at].to_string(), tagged)
    }

    async fn cmd(&mut self, text: &str) -> (String, String) {
        self.run(text, None, "").await
    }

    /// Untagged output of a command that must succeed.
    async fn ok(&mut self, text: &str) -> String {
        let (u, t) = self.cmd(text).await;
        assert!(t.starts_with("OK"), "{text}: {u}{t}");
        u
    }
}

const MSG1: &[u8] = b"Subject: hi there\r\nFrom: Ann <ann@example.com>\r\nX-A: 1\r\nDate: Mon, 1 Jan 2024 23:30:00 -0200\r\n\r\nbody text here\r\n";
const MSG2: &[u8] = b"Subject: =?utf-8?q?caf=C3=A9?= two\r\nFrom: bob@example.org\r\nDate: Tue, 2 Jan 2024 10:00:00 +0000\r\n\r\nsecond body\r\n";
const MSG3: &[u8] = b"Subject: three\r\nTo: ann@example.com\r\n\r\nthird\r\n";

async fn setup(name: &str) -> (Env, Client) {
    let env = empty_env(name);
    env.store
        .create_user("u", &mailkeep_auth::hash_password("pass"))
        .await
        .expect("user");
    let mut c = Client(common::Client::new(&env, plain_config()));
    c.ok("LOGIN u pass").await;
    c.ok("CREATE box").await;
    c.ok("CREATE other").await;
    for (m, date) in [
        (MSG1, "01-Jan-2024 10:00:00 +0200"),
        (MSG2, "02-Jan-2024 23:30:00 -0500"),
        (MSG3, "03-Jan-2024 00:00:00 +0000"),
    ] {
        let (u, t) = c
            .run(&format!("APPEND box () \"{date}\""), Some(m), "")
            .await;
        assert!(t.starts_with("OK"), "{u}{t}");
    }
    c.ok("SELECT box").await;
    (env, c)
}

#[tokio::test]
async fn fetch_items_and_seen() {
    let (_env, mut c) = setup("cmd-fetch").await;

    // UID first for UID FETCH, then view items in request order, then content.
    assert_eq!(
        c.ok("UID FETCH 1 (BODY.PEEK[HEADER.FIELDS (subject x-a)] FLAGS RFC822.SIZE)")
            .await,
        "* 1 FETCH (UID 1 FLAGS () RFC822.SIZE 112 BODY[HEADER.FIELDS (SUBJECT X-A)] {29}\r\nSubject: hi there\r\nX-A: 1\r\n\r\n)\r\n"
    );
    // A non-peek partial sets \Seen and reports FLAGS after the view items.
    assert_eq!(
        c.ok("FETCH 1 (RFC822.SIZE BODY[]<2.5>)").await,
        "* 1 FETCH (RFC822.SIZE 112 FLAGS (\\Seen) BODY[]<2> {5}\r\nbject)\r\n"
    );
    // Already \Seen: no FLAGS this time. Missing parts and an origin past the end are empty.
    assert_eq!(
        c.ok("FETCH 1 (BODY[5] BODY[1] BODY[TEXT]<100.3>)").await,
        "* 1 FETCH (BODY[5] {0}\r\n BODY[1] {16}\r\nbody text here\r\n BODY[TEXT]<100> {0}\r\n)\r\n"
    );
    assert_eq!(
        c.ok("FETCH 2:3 (FLAGS)").await,
        "* 2 FETCH (FLAGS ())\r\n* 3 FETCH (FLAGS ())\r\n"
    );
    assert_eq!(
        c.ok("FETCH 1 INTERNALDATE").await,
        "* 1 FETCH (INTERNALDATE \"01-Jan-2024 10:00:00 +0200\")\r\n"
    );
    assert_eq!(
        c.ok("UID FETCH 2 (RFC822.HEADER)").await.lines().next(),
        Some("* 2 FETCH (UID 2 RFC822.HEADER {99}")
    );
    assert_eq!(
        c.ok("UID FETCH 3 BINARY.PEEK[1]").await,
        "* 3 FETCH (UID 3 BINARY[1] {7}\r\nthird\r\n)\r\n"
    );
    assert_eq!(
        c.ok("UID FETCH 3 BINARY.SIZE[1]").await,
        "* 3 FETCH (UID 3 BINARY.SIZE[1] 7)\r\n"
    );
    // Nothing there is fine; a sequence number beyond EXISTS is BAD (RFC 9051 §6.4.5).
    assert_eq!(c.ok("UID FETCH 99 FLAGS").await, "");
    assert!(c.cmd("FETCH 9 FLAGS").await.1.starts_with("BAD"));
    // CHANGEDSINCE: only what changed, with MODSEQ; the first such command reports HIGHESTMODSEQ.
    let out = c.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE 1)").await;
    assert!(out.starts_with("* OK [HIGHESTMODSEQ "), "{out}");
    assert!(out.contains("* 1 FETCH (FLAGS (\\Seen) MODSEQ ("), "{out}");
}

#[tokio::test]
async fn store_search_copy_move_expunge() {
    let (_env, mut c) = setup("cmd-store").await;

    assert_eq!(
        c.ok("STORE 1 +FLAGS (\\Flagged $Work)").await,
        "* 1 FETCH (FLAGS (\\Flagged $Work))\r\n"
    );
    assert_eq!(
        c.ok("UID STORE 2 +FLAGS (\\Deleted)").await,
        "* 2 FETCH (UID 2 FLAGS (\\Deleted))\r\n"
    );
    assert_eq!(c.ok("STORE 3 FLAGS.SILENT (\\Seen)").await, "");
    assert!(c.cmd("STORE 1 +FLAGS (\\Bogus)").await.1.starts_with("BAD"));

    assert_eq!(c.ok("SEARCH DELETED").await, "* SEARCH 2\r\n");
    assert_eq!(c.ok("SEARCH KEYWORD $work").await, "* SEARCH 1\r\n");
    assert_eq!(c.ok("SEARCH UNSEEN UNDELETED").await, "* SEARCH 1\r\n");
    assert_eq!(c.ok("SEARCH OR SEEN DELETED").await, "* SEARCH 2 3\r\n");
    assert_eq!(c.ok("SEARCH NOT 2:3").await, "* SEARCH 1\r\n");
    assert_eq!(c.ok("SEARCH 5:10").await, "* SEARCH\r\n");
    let (u, t) = c
        .run("SEARCH CHARSET UTF-8 SUBJECT", Some("CAFÉ".as_bytes()), "")
        .await;
    assert_eq!((u.as_str(), &t[..2]), ("* SEARCH 2\r\n", "OK"));
    assert_eq!(c.ok("SEARCH HEADER X-A \"\"").await, "* SEARCH 1\r\n");
    assert_eq!(c.ok("SEARCH FROM example.com").await, "* SEARCH 1\r\n");
    assert_eq!(c.ok("SEARCH TO ann").await, "* SEARCH 3\r\n");
    assert_eq!(c.ok("SEARCH BODY \"second\"").await, "* SEARCH 2\r\n");
    assert_eq!(c.ok("SEARCH TEXT \"HI THERE\"").await, "* SEARCH 1\r\n");
    // INTERNALDATE's date in its own zone; the Date: header's date in its own zone.
    assert_eq!(c.ok("SEARCH ON 2-Jan-2024").await, "* SEARCH 2\r\n");
    assert_eq!(c.ok("SEARCH SENTON 1-Jan-2024").await, "* SEARCH 1\r\n");
    assert_eq!(c.ok("SEARCH SENTSINCE 2-Jan-2024").await, "* SEARCH 2\r\n");
    assert_eq!(
        c.ok("SEARCH LARGER 50 SMALLER 113").await,
        "* SEARCH 1 2\r\n"
    );
    let (_, t) = c.cmd("SEARCH CHARSET X-NOPE ALL").await;
    assert!(t.starts_with("NO [BADCHARSET (UTF-8 US-ASCII)]"), "{t}");
    let (u, t) = c
        .run("SEARCH CHARSET ISO-8859-1 SUBJECT", Some(b"caf\xe9"), "")
        .await;
    assert_eq!((u.as_str(), &t[..2]), ("* SEARCH 2\r\n", "OK"));

    // ESEARCH (RFC 4731) and SEARCHRES (RFC 5182).
    let out = c.ok("UID SEARCH RETURN (MIN MAX COUNT ALL) 1:*").await;
    assert!(
        out.starts_with("* ESEARCH") && out.ends_with(" UID MIN 1 MAX 3 ALL 1:3 COUNT 3\r\n"),
        "{out}"
    );
    let out = c.ok("SEARCH RETURN (COUNT) 5:10").await;
    assert!(out.ends_with(" COUNT 0\r\n"), "{out}");
    assert_eq!(c.ok("SEARCH RETURN (SAVE) FLAGGED").await, "");
    assert_eq!(c.ok("FETCH $ (UID)").await, "* 1 FETCH (UID 1)\r\n");
    assert_eq!(c.ok("UID SEARCH UID $").await, "* SEARCH 1\r\n");

    // UNCHANGEDSINCE below the message's modseq fails (RFC 7162 §3.1.3).
    let (u, t) = c
        .cmd("STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\\Answered)")
        .await;
    assert!(t.starts_with("OK [MODIFIED 1]"), "{u}{t}");

    let (_, t) = c.cmd("COPY 1:2 other").await;
    assert!(
        t.starts_with("OK [COPYUID ") && t.contains(" 1:2 1:2]"),
        "{t}"
    );
    let (u, t) = c.cmd("UID MOVE 3 other").await;
    assert!(t.starts_with("OK"), "{t}");
    assert!(
        u.starts_with("* OK [COPYUID ") && u.contains(" 3 3] Moved UIDs.\r\n"),
        "{u}"
    );
    assert!(u.contains("* 3 EXPUNGE\r\n"), "{u}");
    assert_eq!(c.ok("UID EXPUNGE 1").await, "");
    assert_eq!(c.ok("EXPUNGE").await, "* 2 EXPUNGE\r\n");
    assert_eq!(c.ok("FETCH 1:* (UID)").await, "* 1 FETCH (UID 1)\r\n");

    c.ok("EXAMINE other").await;
    assert!(c.cmd("STORE 1 +FLAGS (\\Seen)").await.1.starts_with("NO"));
    assert!(c.cmd("EXPUNGE").await.1.starts_with("NO"));
    assert!(c.cmd("MOVE 1 box").await.1.starts_with("NO"));
    // Read-only: BODY[] does not set \Seen.
    let out = c.ok("FETCH 1 (BODY[TEXT])").await;
    assert!(!out.contains("FLAGS"), "{out}");
}
