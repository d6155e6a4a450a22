//! Tokens, needles and matching, without a store.

use super::*;

#[test]
fn matcher() {
    for (needle, text, want) in [
        ("", "", true),
        ("ab", "xxAB", true),
        ("aB", "a b", false),
        ("ü", "GRÜSSE", true),
        ("Ü", "grüße", true),
        ("é", "e", false),
        ("x", "", false),
    ] {
        assert_eq!(
            Matcher::new(needle).is_in(text),
            want,
            "{needle:?} in {text:?}"
        );
    }
}

#[test]
fn runs() {
    let r = |w: &str, s, e| Run {
        word: w.into(),
        starts_word: s,
        ends_word: e,
    };
    assert_eq!(ascii_runs("Word"), vec![r("word", false, false)]);
    assert_eq!(
        ascii_runs("a.b@Example.com "),
        vec![
            r("a", false, true),
            r("b", true, true),
            r("example", true, true),
            r("com", true, true)
        ]
    );
    // Tokens are ASCII only: a non-ASCII letter ends one.
    assert_eq!(
        ascii_runs("grüße x"),
        vec![
            r("gr", false, true),
            r("e", true, true),
            r("x", true, false)
        ]
    );
    assert_eq!(ascii_runs("日本語"), vec![]);
    assert_eq!(ascii_runs(""), vec![]);
}

#[test]
fn tokens_are_ascii_runs() {
    let sorted = |s: &str| {
        let mut v: Vec<&str> = s.split(' ').collect();
        v.sort_unstable();
        v.join(" ")
    };
    let t = Tokens::of("Subject: Grüße, Re: RE\nbody x_y café 2.1", 25);
    assert_eq!(sorted(&t.header), "e gr re subject");
    assert_eq!(sorted(&t.body), "1 2 body caf x y");
    assert_eq!(Tokens::of("", 0), Tokens::default());
}

#[test]
fn split_boundaries() {
    assert_eq!(split_search_text("abcdef", 2), ("ab", "cdef"));
    assert_eq!(split_search_text("abc", 99), ("abc", ""));
    // Offset inside "é" (2 bytes at 1..3): moved back to 1.
    assert_eq!(split_search_text("aéb", 2), ("a", "éb"));
}
