//! Differential fuzzing against imap-codec (an independent parser of the same ABNF): whenever
//! both parsers accept an input, they must agree on the tag, the command, the UID flag, the
//! mailbox and the sequence set. (Inputs only one accepts are not failures: each supports
//! syntax the other does not, see crates/proto/tests/imap_codec_oracle.rs.)
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/proto/tests/oracle/mod.rs"]
mod oracle;

fuzz_target!(|data: &[u8]| {
    // imap-codec first: our key extraction has nothing to compare `$` with (imap-codec has no
    // SEARCHRES), and imap-codec rejects it.
    let Ok(theirs) = oracle::theirs(data) else { return };
    if let Ok(ours) = oracle::ours(data) {
        assert_eq!(ours, theirs, "parsers disagree on {:?}", String::from_utf8_lossy(data));
    }
});
