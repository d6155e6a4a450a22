//! Inputs the `mime` fuzz target (fuzz/fuzz_targets/mime.rs) found failing, kept with the same
//! checks: `analyze` does not panic, its part tree survives the storage round trip, and every
//! part lies within the message.

use mailkeep_mime::{Part, PartTree, analyze, normalize_crlf};

fn within(p: &Part, len: u64) {
    assert!(p.header_start <= p.body_start && p.body_start <= p.body_end && p.body_end <= len);
    p.children.iter().for_each(|c| within(c, len));
}

#[test]
fn fuzz_regressions() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let message = normalize_crlf(&std::fs::read(&path).unwrap()).into_owned();
        let analysis = analyze(&message);
        let stored = analysis.parts.to_bytes();
        assert_eq!(
            PartTree::from_bytes(&stored).as_ref(),
            Some(&analysis.parts),
            "{}",
            path.display()
        );
        within(&analysis.parts.root, message.len() as u64);
        n += 1;
    }
    assert!(n > 0);
}
