//! UIDONLY (RFC 9586): once enabled, message sequence numbers are neither accepted nor sent.
//!
//! The commands that take message numbers are found here and refused before they run with
//! `BAD [UIDREQUIRED]` (§3, §3.2, §3.5, §3.7, §3.8). The responses change where they are
//! written: `* uid UIDFETCH (...)` instead of `* n FETCH (...)` (FETCH, STORE, sync and the
//! QRESYNC SELECT answer, via [`fetch_prefix`]) and `* VANISHED` instead of `* n EXPUNGE`
//! (`crate::sync`).

use mailkeep_proto::write::Code;
use mailkeep_proto::{CommandBody, SearchKey, SequenceSet};

use crate::error::CmdError;

/// Whether a command uses message numbers, which UIDONLY refuses.
pub(crate) fn uses_message_numbers(body: &CommandBody) -> bool {
    use CommandBody as B;
    match body {
        B::Fetch { uid, .. } | B::Store { uid, .. } | B::Copy { uid, .. } | B::Move { uid, .. } => {
            !uid
        }
        B::Search { uid, criteria, .. } => !uid || uses_numbers(criteria),
        // RFC 7377 answers with UIDs, but its program may still name message numbers.
        B::Esearch { criteria, .. } => uses_numbers(criteria),
        B::Sort { uid, search, .. } | B::Thread { uid, search, .. } => !uid || uses_numbers(search),
        // §3.7: the fourth QRESYNC parameter (sequence match data) is message numbers.
        B::Select { params, .. } | B::Examine { params, .. } => params
            .qresync
            .as_ref()
            .is_some_and(|q| q.seq_match.is_some()),
        _ => false,
    }
}

/// `BAD [UIDREQUIRED]` (RFC 9586 §3).
pub(crate) fn refusal() -> CmdError {
    CmdError::BadCode(
        Code::UidRequired,
        "Message numbers are not allowed once UIDONLY is enabled".into(),
    )
}

/// A search program with a `sequence-set` key (§3.5). `$` names saved UIDs, not numbers.
fn uses_numbers(key: &SearchKey) -> bool {
    match key {
        SearchKey::SequenceSet(SequenceSet::Ranges(_)) => true,
        SearchKey::Not(k) => uses_numbers(k),
        SearchKey::Or(a, b) => uses_numbers(a) || uses_numbers(b),
        SearchKey::And(keys) => keys.iter().any(uses_numbers),
        _ => false,
    }
}

/// The start of a message's untagged fetch data: `* seq FETCH (`, or with UIDONLY
/// `* uid UIDFETCH (` (§3.3, §3.6).
pub(crate) fn fetch_prefix(out: &mut Vec<u8>, uidonly: bool, seq: u32, uid: u32) {
    if uidonly {
        out.extend_from_slice(format!("* {uid} UIDFETCH (").as_bytes());
    } else {
        out.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailkeep_proto::parse_command;

    fn parsed(line: &str) -> CommandBody {
        let frags = vec![mailkeep_proto::Fragment::Line(line.as_bytes().to_vec())];
        parse_command(&frags).expect(line).body
    }

    #[test]
    fn refuses_message_numbers() {
        for line in [
            "07 FETCH 10000:14589 (UID FLAGS)\r\n",
            "a STORE 1 +FLAGS (\\Seen)\r\n",
            "a COPY 1:* x\r\n",
            "a MOVE 2 x\r\n",
            "a SEARCH ALL\r\n",
            "a UID SEARCH 1:5\r\n",
            "a UID SEARCH OR UID 1 NOT (SEEN 1:*)\r\n",
            "a SORT (DATE) UTF-8 ALL\r\n",
            "a UID SORT (DATE) UTF-8 1:*\r\n",
            "a THREAD REFS UTF-8 ALL\r\n",
            "a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1:5 1:5)))\r\n",
        ] {
            assert!(uses_message_numbers(&parsed(line)), "{line}");
        }
        for line in [
            "10 UID FETCH 25900:26600 (FLAGS)\r\n",
            "a UID STORE 1:* +FLAGS (\\Seen)\r\n",
            "15 UID move 597 \"Archives/2023/2023-05\"\r\n",
            "a UID SEARCH UID 1:* UNSEEN\r\n",
            "a UID SEARCH $\r\n",
            "a UID SORT (DATE) UTF-8 ALL\r\n",
            "a UID THREAD REFS UTF-8 ALL\r\n",
            "12 EXPUNGE\r\n",
            "a UID EXPUNGE 1:*\r\n",
            "a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211))\r\n",
        ] {
            assert!(!uses_message_numbers(&parsed(line)), "{line}");
        }
    }
}
