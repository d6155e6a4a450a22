//! Protocol transcripts: `tests/transcripts/*.imap`, run against the real binary over TCP.
//!
//! Format, one directive per line:
//! - `C: text` / `C2: text`: send `text` + CRLF on connection 1 (or 2, 3...). A connection is
//!   opened (and its greeting read) the first time it is named.
//! - `S: text` / `S2: text`: the next line the server sends on that connection must equal
//!   `text`. Placeholders: `$n` matches a number, `$*` matches anything up to the end of the line
//!   (or up to the next literal text after it).
//! - `#` starts a comment; blank lines are ignored. `!sleep 100` waits 100 ms.
//! - `!mailkeep ARGS`: runs the binary with ARGS and the server's `--config` (admin commands).
//!
//! Every transcript gets a fresh server with users alice and bob (password `pass`). On mismatch
//! the whole server output so far is written to `<name>.actual` beside the transcript.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

fn open(server: &common::TestServer) -> Connection {
    let stream = TcpStream::connect(server.imap).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let writer = stream.try_clone().expect("clone");
    let mut c = Connection {
        reader: BufReader::new(stream),
        writer,
    };
    let mut greeting = String::new();
    c.reader.read_line(&mut greeting).expect("greeting");
    assert!(greeting.starts_with("* OK"), "greeting: {greeting}");
    c
}

/// Does `actual` match `pattern` with `$n` and `$*` placeholders?
fn matches(pattern: &str, actual: &str) -> bool {
    if let Some(rest) = pattern.strip_prefix("$*") {
        return (0..=actual.len())
            .filter(|i| actual.is_char_boundary(*i))
            .any(|i| matches(rest, &actual[i..]));
    }
    if let Some(rest) = pattern.strip_prefix("$n") {
        let digits = actual.bytes().take_while(u8::is_ascii_digit).count();
        return digits > 0 && matches(rest, &actual[digits..]);
    }
    match (pattern.chars().next(), actual.chars().next()) {
        (None, None) => true,
        (Some(p), Some(a)) if p == a => matches(&pattern[p.len_utf8()..], &actual[a.len_utf8()..]),
        _ => false,
    }
}

/// Run one transcript; Err describes the first mismatch.
fn run(path: &Path) -> Result<(), String> {
    run_with(path, "")
}

/// Run one transcript on a server whose configuration ends with `extra`.
fn run_with(path: &Path, extra: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let server = common::TestServer::start_with(extra, &["alice", "bob"]);
    let mut conns: HashMap<String, Connection> = HashMap::new();
    let mut log = String::new();
    for (lineno, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(ms) = line.strip_prefix("!sleep ") {
            std::thread::sleep(Duration::from_millis(ms.trim().parse().unwrap_or(100)));
            continue;
        }
        if let Some(args) = line.strip_prefix("!mailkeep ") {
            // An admin command on the running server's data (`!mailkeep quota set alice ...`).
            let status = std::process::Command::new(common::bin())
                .args(args.split_whitespace())
                .arg("--config")
                .arg(&server.config)
                .stdout(std::process::Stdio::null())
                .status()
                .map_err(|e| e.to_string())?;
            if !status.success() {
                return Err(format!("line {}: mailkeep {args}: {status}", lineno + 1));
            }
            continue;
        }
        let (who, body) = line
            .split_once(": ")
            .or_else(|| line.split_once(':'))
            .ok_or(format!("line {}: no directive", lineno + 1))?;
        let (dir, id) = who.split_at(1);
        let id = if id.is_empty() {
            "1".to_string()
        } else {
            id.to_string()
        };
        let conn = conns.entry(id.clone()).or_insert_with(|| open(&server));
        match dir {
            "C" => {
                log.push_str(&format!("C{id}: {body}\n"));
                conn.writer
                    .write_all(format!("{body}\r\n").as_bytes())
                    .map_err(|e| e.to_string())?;
            }
            "S" => {
                let mut got = String::new();
                conn.reader
                    .read_line(&mut got)
                    .map_err(|e| format!("{}:{}: reading: {e}", path.display(), lineno + 1))?;
                let got = got.trim_end_matches(['\r', '\n']).to_string();
                log.push_str(&format!("S{id}: {got}\n"));
                if !matches(body, &got) {
                    let actual = path.with_extension("actual");
                    let _ = std::fs::write(&actual, &log);
                    return Err(format!(
                        "{}:{}: expected\n    {body}\ngot\n    {got}\n(transcript so far in {})",
                        path.display(),
                        lineno + 1,
                        actual.display()
                    ));
                }
            }
            other => return Err(format!("line {}: unknown directive {other}", lineno + 1)),
        }
    }
    Ok(())
}

fn transcripts() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("tests/transcripts")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "imap"))
        .collect();
    files.sort();
    files
}

#[test]
fn all_transcripts() {
    let only = std::env::var("TRANSCRIPT").ok();
    let files: Vec<PathBuf> = transcripts()
        .into_iter()
        .filter(|p| {
            only.as_deref()
                .is_none_or(|o| p.to_string_lossy().contains(o))
        })
        .collect();
    assert!(!files.is_empty(), "no transcripts found");
    let mut failures = Vec::new();
    for f in &files {
        if let Err(e) = run(f) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} transcripts failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

/// The second pass: every transcript again with the server on PostgreSQL (a throwaway one,
/// one database per transcript). Skipped, loudly, where PostgreSQL is not installed.
#[test]
fn all_transcripts_on_postgres() {
    use mailkeep_store::postgres::testing::TestPostgres;
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let only = std::env::var("TRANSCRIPT").ok();
    let files: Vec<PathBuf> = transcripts()
        .into_iter()
        .filter(|p| {
            only.as_deref()
                .is_none_or(|o| p.to_string_lossy().contains(o))
        })
        .collect();
    let mut failures = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let url = runtime.block_on(pg.create_database(&format!("transcript{i}")));
        let extra = format!("[store]\nbackend = \"postgres\"\nurl = {url:?}\npool_size = 4\n");
        if let Err(e) = run_with(f, &extra) {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "on PostgreSQL, {} of {} transcripts failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[test]
fn placeholder_matching() {
    let cases = [
        ("a OK done", "a OK done", true),
        ("* $n EXISTS", "* 12 EXISTS", true),
        ("* $n EXISTS", "* EXISTS", false),
        (
            "a OK [APPENDUID $n $n] $*",
            "a OK [APPENDUID 17 1] Append completed.",
            true,
        ),
        ("a OK $*", "a NO x", false),
        ("$*", "", true),
    ];
    for (p, a, want) in cases {
        assert_eq!(matches(p, a), want, "{p:?} vs {a:?}");
    }
}
