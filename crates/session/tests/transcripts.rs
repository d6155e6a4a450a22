//! Protocol transcripts (STYLE.md §5): `tests/transcripts/*.imap`, run against a [`Session`]
//! over a real SQLite store with users `alice` and `bob` (password `secret`).
//!
//! Format, one item per line:
//! - `C: text` / `C1: text` / `C2: text`: a client line (CRLF added) on connection 1 (or 2...).
//!   A line ending in a literal announcement `{n}` / `{n+}` takes the next client lines of the
//!   same connection as the literal (joined with CRLF) until n bytes are collected.
//!   During IDLE, `DONE` ends it; during AUTHENTICATE, the line answers the challenge.
//! - `S: text` / `S2: text`: an expected server line (CRLF added) on that connection.
//! - `W1: ` (empty text): wait until connection 1 is told its mailbox changed (IDLE), then read
//!   what it writes.
//! - `#` comments and blank lines are skipped.
//! - `\x00` stands for a NUL byte. Server bytes that are not UTF-8 (such as 0x80) read as
//!   U+FFFD `�`.
//!
//! Numbers after `UIDVALIDITY `, `APPENDUID ` and `COPYUID ` come from the clock and are
//! written `$uidvalidity`; MAILBOXIDs (RFC 8474, made with it) `$M`. URLAUTH tokens (random
//! keys, RFC 4467: 64 hex digits after a `:`) are written `$T1`, `$T2`... in the order first seen, and a
//! client line's `$Tn` is sent as that token. On a mismatch the actual transcript is written
//! beside the file as `<name>.actual`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::*;
use mailkeep_proto::frame::literal_announcement;
use mailkeep_session::{Flow, Session};

enum Item {
    Client(u32, String),
    Server(u32, String),
    Wait(u32),
}

fn parse(text: &str) -> Vec<Item> {
    let mut items = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (head, rest) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("bad line: {line}"));
        let rest = rest
            .strip_prefix(' ')
            .unwrap_or(rest)
            .replace("\\x00", "\0");
        let conn: u32 = if head.len() > 1 {
            head[1..].parse().expect("connection number")
        } else {
            1
        };
        items.push(match &head[..1] {
            "C" => Item::Client(conn, rest),
            "S" => Item::Server(conn, rest),
            "W" => Item::Wait(conn),
            _ => panic!("bad line: {line}"),
        });
    }
    items
}

/// Where a connection is between commands.
#[derive(PartialEq)]
enum Mode {
    Command,
    Idle,
    Sasl,
}

struct Conn {
    session: Session,
    mode: Mode,
    /// A command waiting for literal bytes: (text so far, bytes still needed).
    partial: Option<(String, usize)>,
}

async fn run_file(path: &Path, env: Env) -> Result<(), String> {
    let text = std::fs::read_to_string(path).expect("read transcript");
    let mut conns: BTreeMap<u32, Conn> = BTreeMap::new();
    let mut actual = String::new();
    let mut expected = String::new();
    let mut tokens: Vec<String> = Vec::new();
    for item in parse(&text) {
        match item {
            Item::Server(n, line) => expected.push_str(&format!("S{n}: {line}\n")),
            Item::Client(n, line) => {
                actual.push_str(&format!("C{n}: {line}\n"));
                expected.push_str(&format!("C{n}: {line}\n"));
                let conn = conns.entry(n).or_insert_with(|| Conn {
                    session: session(&env, config()),
                    mode: Mode::Command,
                    partial: None,
                });
                let out = client_line(conn, unmask_tokens(&line, &tokens)).await;
                push_output(&mut actual, n, &mask_tokens(&out, &mut tokens));
            }
            Item::Wait(n) => {
                actual.push_str(&format!("W{n}: \n"));
                expected.push_str(&format!("W{n}: \n"));
                let conn = conns.get_mut(&n).expect("connection exists");
                let woke =
                    tokio::time::timeout(Duration::from_secs(5), conn.session.changed()).await;
                if woke.is_err() {
                    actual.push_str(&format!("S{n}: (no change within 5 s)\n"));
                    continue;
                }
                let mut out = Vec::new();
                conn.session.idle_update(&mut out).await;
                push_output(&mut actual, n, &String::from_utf8_lossy(&out));
            }
        }
    }
    if actual == expected {
        return Ok(());
    }
    let actual_path = path.with_extension("imap.actual");
    let _ = std::fs::write(&actual_path, &actual);
    Err(format!(
        "{} differs (actual written to {})\n--- expected\n{expected}--- actual\n{actual}",
        path.display(),
        actual_path.display()
    ))
}

/// URLAUTH tokens (64 hex digits after a `:`) as `$Tn` (see the module comment).
fn mask_tokens(out: &str, tokens: &mut Vec<String>) -> String {
    let b = out.as_bytes();
    let mut masked = String::new();
    let mut last = 0;
    let mut i = 0;
    while i < b.len() {
        let len = b[i..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
        if len == 64 && i > 0 && b[i - 1] == b':' {
            let token = &out[i..i + 64];
            let n = match tokens.iter().position(|t| t == token) {
                Some(n) => n,
                None => {
                    tokens.push(token.to_string());
                    tokens.len() - 1
                }
            };
            masked.push_str(&out[last..i]);
            masked.push_str(&format!("$T{}", n + 1));
            last = i + 64;
        }
        i += len.max(1);
    }
    masked.push_str(&out[last..]);
    masked
}

fn unmask_tokens(line: &str, tokens: &[String]) -> String {
    let mut line = line.to_string();
    // Highest first, so `$T1` does not take the start of `$T12`.
    for (n, t) in tokens.iter().enumerate().rev() {
        line = line.replace(&format!("$T{}", n + 1), t);
    }
    line
}

fn push_output(actual: &mut String, n: u32, out: &str) {
    for line in mask(out)
        .replace("$V", "$uidvalidity")
        .split_terminator("\r\n")
    {
        actual.push_str(&format!("S{n}: {line}\n"));
    }
}

async fn client_line(conn: &mut Conn, line: String) -> String {
    if let Some((mut text, need)) = conn.partial.take() {
        // Literal bytes: this line and its CRLF, up to what is still needed.
        let chunk = format!("{line}\r\n");
        // A literal that ends with the line leaves the command open for the next line.
        if chunk.len() <= need {
            text.push_str(&chunk);
            conn.partial = Some((text, need - chunk.len()));
            return String::new();
        }
        text.push_str(&chunk[..need]);
        let rest = &chunk[need..];
        text.push_str(rest);
        return start_command(conn, text).await;
    }
    let mut out = Vec::new();
    match conn.mode {
        Mode::Idle => {
            let flow = conn
                .session
                .idle_done(line.eq_ignore_ascii_case("DONE"), &mut out)
                .await;
            conn.mode = mode_after(flow);
        }
        Mode::Sasl => {
            let flow = conn.session.sasl_response(line.as_bytes(), &mut out).await;
            conn.mode = mode_after(flow);
        }
        Mode::Command => return start_command(conn, format!("{line}\r\n")).await,
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Run the command if complete, or wait for the literal its last line announces.
async fn start_command(conn: &mut Conn, text: String) -> String {
    let last_line_start = text[..text.len() - 2].rfind("\r\n").map_or(0, |i| i + 2);
    if let Ok(Some(ann)) = literal_announcement(&text.as_bytes()[last_line_start..]) {
        let mut out = String::new();
        if ann.synchronizing {
            out.push_str("+ Ready for literal data\r\n");
        }
        conn.partial = Some((text, ann.len as usize));
        return out;
    }
    let (out, flow) = run(&mut conn.session, &text).await;
    conn.mode = mode_after(flow);
    out
}

fn mode_after(flow: Flow) -> Mode {
    match flow {
        Flow::Idle => Mode::Idle,
        Flow::SaslContinue => Mode::Sasl,
        _ => Mode::Command,
    }
}

#[tokio::test]
async fn transcripts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("transcripts dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "imap"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no transcripts in {}", dir.display());
    let mut failures = Vec::new();
    for f in &files {
        if let Err(e) = run_file(f, env().await).await {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The second pass: every transcript again on a PostgreSQL store (a throwaway server, one
/// database per transcript). Skipped, loudly, where PostgreSQL is not installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcripts_on_postgres() {
    use mailkeep_store::postgres::PgStore;
    use mailkeep_store::postgres::testing::TestPostgres;
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("transcripts dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "imap"))
        .collect();
    files.sort();
    let mut failures = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let url = pg.create_database(&format!("transcript{i}")).await;
        let store = PgStore::open(&url, 4).await.expect("open PostgreSQL store");
        let env = env_on(store).await;
        if let Err(e) = run_file(f, env).await {
            failures.push(format!("on PostgreSQL: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
