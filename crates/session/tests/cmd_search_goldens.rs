//! SEARCH against Dovecot's answers: the 1,057 `UID SEARCH` commands of the corpus
//! (`tests/corpus/dovecot/searches.tsv`, see `tests/corpus/README.md`) run through a real
//! [`Session`] over a SQLite store holding the 389 corpus messages, appended in order with the
//! fixed INTERNALDATE the goldens used.
//!
//! Where Dovecot's answer is not what RFC 9051 asks for, the command is listed with the reason
//! in `tests/corpus/search-differences.tsv`; every other answer must match byte for byte.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::Piece;
use common::corpus::{examine_corpus, repo_root};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_search_goldens() {
    let mut k = examine_corpus("search-goldens").await;
    assert_eq!(k.files.len(), 389);
    let (corpus, c) = (&k.dir, &mut k.client);

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
            c.send_text(&[Piece::Text(command)]).await
        } else {
            c.send_text(&[Piece::Text(head), Piece::Literal(&needle)])
                .await
        };
        let got = search_line(&out);
        let key = format!("{}\t{}", &file[..3], command);
        if got == want {
            matched += 1;
            if accepted.contains_key(&key) {
                // A listed difference that is gone: the list must say only what is true.
                failures.push(format!(
                    "{file}: {command}\n  now matches Dovecot: remove it from {}",
                    differences_path.display()
                ));
            }
            continue;
        }
        actual.push_str(&format!("{file}\t{command}\t{want}\t{got}\n"));
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
