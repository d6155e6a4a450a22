//! SEARCH text against Dovecot 2.3.19: every `UID SEARCH` in `tests/corpus/dovecot/searches.tsv`
//! is evaluated over the whole corpus with a plain substring matcher on what this crate
//! extracts (`header_values`, `search_text`), and the matching set is compared with Dovecot's.
//! This checks the extraction (decoding, which parts count), not the session's SEARCH code.
//! Known differences are listed in `tests/corpus/mime-search-differences.tsv`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use mailkeep_mime::{Analysis, analyze, header_values, normalize_crlf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus")
}

struct Msg {
    file: String,
    raw: Vec<u8>,
    /// Lowercased header values for SUBJECT/FROM/TO/CC/BCC, body text and all text.
    fields: Vec<(&'static str, Vec<String>)>,
    body: String,
    text: String,
}

const KEYS: [&str; 5] = ["SUBJECT", "FROM", "TO", "CC", "BCC"];

fn contains(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(&needle.to_lowercase())
}

impl Msg {
    fn new(file: String, raw: Vec<u8>) -> Msg {
        let a: Analysis = analyze(&raw);
        let fields = KEYS
            .iter()
            .map(|k| {
                (
                    *k,
                    header_values(&raw, &k.to_ascii_lowercase())
                        .iter()
                        .map(|v| v.to_lowercase())
                        .collect(),
                )
            })
            .collect();
        let body = a.search_text[a.search_body_offset..].to_lowercase();
        let text = a.search_text.to_lowercase();
        Msg {
            file,
            raw,
            fields,
            body,
            text,
        }
    }

    fn matches(&self, key: &str, arg: &str) -> bool {
        let arg = arg.to_lowercase();
        match key {
            "BODY" => self.body.contains(&arg),
            "TEXT" => self.text.contains(&arg),
            _ => self
                .fields
                .iter()
                .any(|(k, vs)| *k == key && vs.iter().any(|v| v.contains(&arg))),
        }
    }
}

/// `UID SEARCH CHARSET UTF-8 <key> "<arg>"` or `... HEADER <name> "<arg>"`.
fn parse(cmd: &str) -> Option<(String, String, String)> {
    let rest = cmd.strip_prefix("UID SEARCH CHARSET UTF-8 ")?;
    let (key, rest) = rest.split_once(' ')?;
    if key == "HEADER" {
        let (name, arg) = rest.split_once(' ')?;
        return Some((key.into(), name.into(), arg.trim_matches('"').into()));
    }
    Some((
        key.into(),
        String::new(),
        rest.trim_matches('"').replace("\\\"", "\""),
    ))
}

#[test]
fn dovecot_search_goldens() {
    let dir = corpus();
    let mut msgs = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir.join("messages"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let raw = normalize_crlf(&std::fs::read(&f).unwrap()).into_owned();
        let file = f.file_name().unwrap().to_string_lossy()[..3].to_string();
        msgs.push(Msg::new(file, raw));
    }
    let known =
        std::fs::read_to_string(dir.join("mime-search-differences.tsv")).unwrap_or_default();
    let known: BTreeSet<&str> = known
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').nth(1))
        .collect();
    let table = std::fs::read_to_string(dir.join("dovecot/searches.tsv")).unwrap();
    let (mut ok, mut total, mut report) = (0, 0, String::new());
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let Some((key, name, arg)) = parse(cols[2]) else {
            continue;
        };
        let want: BTreeSet<&str> = cols[4].split(',').filter(|s| !s.is_empty()).collect();
        let got: BTreeSet<&str> = msgs
            .iter()
            .filter(|m| {
                if key == "HEADER" {
                    let v = header_values(&m.raw, &name);
                    !v.is_empty() && v.iter().any(|v| contains(v, &arg))
                } else {
                    m.matches(&key, &arg)
                }
            })
            .map(|m| m.file.as_str())
            .collect();
        if known.contains(cols[2]) {
            continue;
        }
        total += 1;
        if got == want {
            ok += 1;
        } else {
            let extra: Vec<_> = got.difference(&want).collect();
            let missing: Vec<_> = want.difference(&got).collect();
            report.push_str(&format!(
                "{}\t{}\textra {extra:?} missing {missing:?}\n",
                cols[0], cols[2]
            ));
        }
    }
    if std::env::var_os("GOLDEN_VERBOSE").is_some() || ok != total {
        eprintln!("{report}");
    }
    eprintln!("dovecot search goldens: {ok}/{total} searches give the same set");
    assert_eq!(ok, total);
}
