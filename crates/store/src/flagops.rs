//! Flag arithmetic shared by every backend: STORE's replace/add/remove and keyword
//! normalization (RFC 9051 §2.3.2: keywords compare case-insensitively).

use crate::{FlagOp, Flags, flags};

/// All system flag bits the store knows; other bits are dropped.
pub const SYSTEM_MASK: u32 =
    flags::SEEN | flags::ANSWERED | flags::FLAGGED | flags::DELETED | flags::DRAFT;

/// Dedupes keywords case-insensitively (first spelling wins) and sorts them.
pub fn normalize(f: &Flags) -> Flags {
    let mut keywords: Vec<String> = Vec::with_capacity(f.keywords.len());
    for k in &f.keywords {
        if is_keyword(k) && !contains_ci(&keywords, k) {
            keywords.push(k.clone());
        }
    }
    sort_keywords(&mut keywords);
    Flags {
        system: f.system & SYSTEM_MASK,
        keywords,
    }
}

/// The flags after applying `op` with `arg` to `old`. Existing keyword spellings are kept.
pub fn apply(op: FlagOp, old: &Flags, arg: &Flags) -> Flags {
    let arg_system = arg.system & SYSTEM_MASK;
    let mut keywords: Vec<String> = Vec::new();
    let system = match op {
        FlagOp::Add => {
            keywords.extend(old.keywords.iter().cloned());
            for k in &arg.keywords {
                if is_keyword(k) && !contains_ci(&keywords, k) {
                    keywords.push(k.clone());
                }
            }
            old.system | arg_system
        }
        FlagOp::Remove => {
            keywords.extend(
                old.keywords
                    .iter()
                    .filter(|k| !contains_ci(&arg.keywords, k))
                    .cloned(),
            );
            old.system & !arg_system
        }
        FlagOp::Replace => {
            for k in &arg.keywords {
                if !is_keyword(k) || contains_ci(&keywords, k) {
                    continue;
                }
                let kept = old.keywords.iter().find(|o| o.eq_ignore_ascii_case(k));
                keywords.push(kept.unwrap_or(k).clone());
            }
            arg_system
        }
    };
    sort_keywords(&mut keywords);
    Flags {
        system: system & SYSTEM_MASK,
        keywords,
    }
}

/// A keyword is an atom (RFC 9051 §9 `flag-keyword`): never empty, never a space. Anything
/// else cannot come from the protocol and is dropped (the SQLite backend joins keywords with
/// spaces).
fn is_keyword(k: &str) -> bool {
    !k.is_empty() && !k.contains([' ', '\r', '\n'])
}

fn contains_ci(list: &[String], k: &str) -> bool {
    list.iter().any(|x| x.eq_ignore_ascii_case(k))
}

fn sort_keywords(k: &mut [String]) {
    k.sort_by(|a, b| {
        a.to_ascii_lowercase()
            .cmp(&b.to_ascii_lowercase())
            .then_with(|| a.cmp(b))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(system: u32, kw: &[&str]) -> Flags {
        Flags {
            system,
            keywords: kw.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn table() {
        use flags::*;
        let cases = [
            (
                FlagOp::Add,
                f(SEEN, &["$Junk"]),
                f(DELETED, &["$junk", "b"]),
                f(SEEN | DELETED, &["$Junk", "b"]),
            ),
            (
                FlagOp::Remove,
                f(SEEN | DELETED, &["a", "B"]),
                f(SEEN, &["b"]),
                f(DELETED, &["a"]),
            ),
            (
                FlagOp::Replace,
                f(SEEN, &["Foo"]),
                f(FLAGGED, &["FOO", "bar", "BAR"]),
                f(FLAGGED, &["bar", "Foo"]),
            ),
            (FlagOp::Replace, f(SEEN, &["x"]), f(0, &[]), f(0, &[])),
            (FlagOp::Add, f(0, &[]), f(1 << 20, &["", "a b"]), f(0, &[])),
            (FlagOp::Replace, f(0, &[]), f(0, &["x\r\n"]), f(0, &[])),
        ];
        for (op, old, arg, want) in cases {
            assert_eq!(apply(op, &old, &arg), want, "{op:?} {old:?} {arg:?}");
        }
    }

    #[test]
    fn normalize_dedupes_first_spelling() {
        assert_eq!(
            normalize(&f(SYSTEM_MASK | 64, &["b", "A", "a", "B"])),
            f(SYSTEM_MASK, &["A", "b"])
        );
    }
}
