//! Fuzz the command parser from raw bytes, the way the server hands them over: cut the input
//! into lines; when `literal_announcement` says a line announces `n` bytes, the next `n` input
//! bytes are a literal fragment. Neither function may panic, and a reported tag must be the one
//! `peek_tag` reads from the first line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailkeep_proto::frame::{literal_announcement, peek_tag, Fragment};
use mailkeep_proto::parse_command;

/// Fragments beyond this are dropped: the server limits a command the same way.
const MAX_FRAGMENTS: usize = 64;

fuzz_target!(|data: &[u8]| {
    // A leading control byte (never part of a tag) turns on "spooling": literals longer than
    // 16 times its value are handed over as Spooled, so those paths run too.
    let (spool_over, mut rest) = match data.split_first() {
        Some((&b, rest)) if (1..0x20).contains(&b) && b != b'\r' && b != b'\n' => (usize::from(b) * 16, rest),
        _ => (0, data),
    };
    let mut frags = Vec::new();
    while frags.len() < MAX_FRAGMENTS {
        let end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
        let (line, after) = rest.split_at(end);
        frags.push(Fragment::Line(line.to_vec()));
        rest = after;
        let Ok(Some(a)) = literal_announcement(line) else { break };
        let Ok(len) = usize::try_from(a.len) else { break };
        if len > rest.len() {
            break;
        }
        let (lit, after) = rest.split_at(len);
        frags.push(if spool_over > 0 && len > spool_over {
            Fragment::Spooled { path: "/nonexistent/spool".into(), len: a.len }
        } else {
            Fragment::Literal(lit.to_vec())
        });
        rest = after;
    }
    if let Err(e) = parse_command(&frags) {
        if let (Some(tag), Some(Fragment::Line(first))) = (&e.tag, frags.first()) {
            assert_eq!(Some(tag), peek_tag(first).as_ref());
        }
    }
});
