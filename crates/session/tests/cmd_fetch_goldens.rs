//! FETCH against Dovecot's answers: for each of the 389 corpus messages, the `UID FETCH` of
//! `tests/corpus/dovecot/index.tsv` (RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER]
//! BODY.PEEK[1.MIME] BINARY.SIZE[1]) run through a real [`Session`], compared byte for byte with
//! Dovecot's `.fetch` file; and the BINARY.SIZE[1] failures Dovecot reports for 22 of them.
//!
//! Item order, literal framing and the BINARY error codes are the session's; the ENVELOPE,
//! BODYSTRUCTURE and section bytes are `mailkeep-mime`'s.

mod common;

use std::path::Path;

use common::Piece;
use common::corpus::examine_corpus;

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
    let mut k = examine_corpus("fetch-goldens").await;
    assert_eq!(k.files.len(), 389);
    let (corpus, c) = (&k.dir, &mut k.client);

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

    let errors = binary_size_errors(corpus);
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
