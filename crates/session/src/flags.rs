//! Flags between the store's form (bits + keywords) and the wire's ([`Flag`]).

use mailkeep_proto::{Flag, write};
use mailkeep_store::{Flags, flags};

use crate::error::{CmdError, CmdResult};

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

/// `(\\Answered kw …)` for FETCH FLAGS, written in place: `to_wire` + `flag_list` without the
/// allocations (FETCH 1:* FLAGS of a large mailbox writes one per message).
pub(crate) fn write_list(out: &mut Vec<u8>, f: &Flags, recent: bool) {
    out.push(b'(');
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            out.push(b' ');
        }
    };
    for (bit, flag) in &SYSTEM {
        if f.system & bit != 0 {
            sep(out);
            write::flag(out, flag);
        }
    }
    if recent {
        sep(out);
        write::flag(out, &Flag::Recent);
    }
    for k in &f.keywords {
        sep(out);
        out.extend_from_slice(k.as_bytes());
    }
    out.push(b')');
}

/// Wire flags as store flags. `\Recent` cannot be set by a client (RFC 3501 §2.3.2): it is
/// ignored. Any other `\Something` is not a flag this server keeps: BAD, as Dovecot answers.
pub(crate) fn from_wire(list: &[Flag]) -> CmdResult<Flags> {
    let mut out = Flags::default();
    for f in list {
        match f {
            Flag::Seen => out.system |= flags::SEEN,
            Flag::Answered => out.system |= flags::ANSWERED,
            Flag::Flagged => out.system |= flags::FLAGGED,
            Flag::Deleted => out.system |= flags::DELETED,
            Flag::Draft => out.system |= flags::DRAFT,
            Flag::Recent => {}
            Flag::Keyword(k) => {
                if !out.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                    out.keywords.push(k.clone());
                }
            }
            Flag::Extension(e) => {
                let e = e.trim_start_matches('\\');
                return Err(CmdError::Bad(format!("Invalid system flag \\{e}")));
            }
        }
    }
    out.keywords.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_list_matches_flag_list() {
        for (system, recent, keywords) in [
            (0, false, vec![]),
            (
                flags::SEEN | flags::ANSWERED | flags::DRAFT,
                true,
                vec!["$Junk", "x"],
            ),
            (0, true, vec![]),
            (0, false, vec!["only"]),
            (flags::FLAGGED | flags::DELETED, false, vec![]),
        ] {
            let f = Flags {
                system,
                keywords: keywords.into_iter().map(String::from).collect(),
            };
            let mut want = Vec::new();
            write::flag_list(&mut want, &to_wire(&f, recent));
            let mut got = Vec::new();
            write_list(&mut got, &f, recent);
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
    }

    #[test]
    fn from_wire_maps_and_rejects() {
        let f = from_wire(&[
            Flag::Seen,
            Flag::Recent,
            Flag::Keyword("b".into()),
            Flag::Keyword("A".into()),
            Flag::Keyword("B".into()),
        ])
        .unwrap();
        assert_eq!(f.system, flags::SEEN);
        assert_eq!(f.keywords, vec!["A".to_string(), "b".to_string()]);
        assert!(matches!(
            from_wire(&[Flag::Extension("Foo".into())]),
            Err(CmdError::Bad(_))
        ));
    }

    #[test]
    fn wire_flags_order() {
        let f = Flags {
            system: flags::SEEN | flags::ANSWERED | flags::DRAFT,
            keywords: vec!["$kw".into()],
        };
        assert_eq!(
            to_wire(&f, true),
            vec![
                Flag::Answered,
                Flag::Seen,
                Flag::Draft,
                Flag::Recent,
                Flag::Keyword("$kw".into())
            ]
        );
        assert_eq!(to_wire(&Flags::default(), false), vec![]);
    }
}
