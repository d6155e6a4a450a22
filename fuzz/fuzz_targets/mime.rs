//! Fuzz MIME parsing of a stored message: `analyze` (ENVELOPE, BODYSTRUCTURE, part tree, search
//! text), then every section and BINARY of the first parts, and the header values SEARCH uses.
//! Nothing may panic; the part tree must survive its storage round trip, and every part's byte
//! range must lie within the message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailkeep_mime::{analyze, binary, header_values, section, Part, PartTree, SectionSpec};

/// Parts visited per input (a message may have thousands).
const MAX_PARTS: usize = 64;

fn paths(part: &Part, prefix: &mut Vec<u32>, out: &mut Vec<Vec<u32>>, len: u64) {
    assert!(part.header_start <= part.body_start, "{part:?}");
    assert!(part.body_start <= part.body_end && part.body_end <= len, "{part:?} len {len}");
    for (i, child) in part.children.iter().enumerate() {
        if out.len() >= MAX_PARTS {
            return;
        }
        prefix.push(i as u32 + 1);
        out.push(prefix.clone());
        paths(child, prefix, out, len);
        prefix.pop();
    }
}

fuzz_target!(|data: &[u8]| {
    let message = mailkeep_mime::normalize_crlf(data);
    let analysis = analyze(&message);
    let stored = analysis.parts.to_bytes();
    assert_eq!(PartTree::from_bytes(&stored).as_ref(), Some(&analysis.parts));
    assert!(analysis.search_body_offset <= analysis.search_text.len());
    let mut all = vec![Vec::new()];
    paths(&analysis.parts.root, &mut Vec::new(), &mut all, message.len() as u64);
    let fields = [b"subject".to_vec(), b"from".to_vec()];
    for path in &all {
        for spec in [
            SectionSpec::Full,
            SectionSpec::Header,
            SectionSpec::Text,
            SectionSpec::Mime,
            SectionSpec::HeaderFields(&fields),
            SectionSpec::HeaderFieldsNot(&fields),
        ] {
            let _ = section(&message, &analysis.parts, path, spec);
        }
        let _ = binary(&message, &analysis.parts, path);
    }
    // A part that does not exist is an error, not a panic.
    let _ = section(&message, &analysis.parts, &[9999, 1], SectionSpec::Full);
    for name in ["subject", "from", "to", "message-id", "x-unknown"] {
        let _ = header_values(&message, name);
    }
});
