//! Flags between the store's form (bits + keywords) and the wire's ([`Flag`]).

use mailkeep_proto::Flag;
use mailkeep_store::{Flags, flags};

const SYSTEM: [(u32, Flag); 5] = [
    (flags::ANSWERED, Flag::Answered),
    (flags::FLAGGED, Flag::Flagged),
    (flags::DELETED, Flag::Deleted),
    (flags::SEEN, Flag::Seen),
    (flags::DRAFT, Flag::Draft),
];

/// The system flags in the order Dovecot lists them, for FLAGS and PERMANENTFLAGS.
pub(crate) fn system_flags() -> Vec<Flag> {
    SYSTEM.iter().map(|(_, f)| f.clone()).collect()
}

/// Store flags as wire flags; `recent` adds `\Recent` (IMAP4rev1 only).
pub(crate) fn to_wire(f: &Flags, recent: bool) -> Vec<Flag> {
    let mut out: Vec<Flag> = SYSTEM
        .iter()
        .filter(|(bit, _)| f.system & bit != 0)
        .map(|(_, fl)| fl.clone())
        .collect();
    if recent {
        out.push(Flag::Recent);
    }
    out.extend(f.keywords.iter().map(|k| Flag::Keyword(k.clone())));
    out
}

/// Wire flags as store flags. `\Recent` cannot be set by a client (RFC 3501 §2.3.2) and unknown
/// `\Extension` flags are not kept; both are dropped.
pub(crate) fn from_wire(list: &[Flag]) -> Flags {
    let mut out = Flags::default();
    for f in list {
        match f {
            Flag::Seen => out.system |= flags::SEEN,
            Flag::Answered => out.system |= flags::ANSWERED,
            Flag::Flagged => out.system |= flags::FLAGGED,
            Flag::Deleted => out.system |= flags::DELETED,
            Flag::Draft => out.system |= flags::DRAFT,
            Flag::Keyword(k) => {
                if !out.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                    out.keywords.push(k.clone());
                }
            }
            Flag::Recent | Flag::Extension(_) => {}
        }
    }
    out.keywords.sort();
    out
}
