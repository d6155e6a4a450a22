//! SEARCH: every key, return options, charset, nesting.

use super::{body, parse, set};
use crate::types::*;

fn criteria(input: &str) -> (Option<String>, SearchKey, Option<Vec<SearchReturn>>) {
    match body(input) {
        CommandBody::Search {
            charset,
            criteria,
            ret,
            ..
        } => (charset, criteria, ret),
        other => panic!("{input:?}: {other:?}"),
    }
}

#[test]
fn every_key() {
    use SearchKey as K;
    let d = |year, month, day| Date { year, month, day };
    let s = |v: &str| v.as_bytes().to_vec();
    let cases: Vec<(&str, SearchKey)> = vec![
        ("ALL", K::All),
        ("answered", K::Answered),
        ("BCC x", K::Bcc(s("x"))),
        ("BEFORE 1-Feb-1994", K::Before(d(1994, 2, 1))),
        ("BODY \"a b\"", K::Body(s("a b"))),
        ("CC {3}\r\n\u{e9}x", K::Cc("\u{e9}x".as_bytes().to_vec())),
        ("DELETED", K::Deleted),
        ("DRAFT", K::Draft),
        ("FLAGGED", K::Flagged),
        ("FROM Smith", K::From(s("Smith"))),
        (
            "HEADER Message-ID \"<x@y>\"",
            K::Header(s("Message-ID"), s("<x@y>")),
        ),
        ("HEADER X-Spam \"\"", K::Header(s("X-Spam"), s(""))),
        ("KEYWORD $Forwarded", K::Keyword("$Forwarded".into())),
        ("LARGER 10000", K::Larger(10000)),
        ("NEW", K::New),
        ("NOT SEEN", K::Not(Box::new(K::Seen))),
        ("OLD", K::Old),
        ("ON \"3-Mar-2023\"", K::On(d(2023, 3, 3))),
        (
            "OR SEEN FLAGGED",
            K::Or(Box::new(K::Seen), Box::new(K::Flagged)),
        ),
        ("RECENT", K::Recent),
        ("SEEN", K::Seen),
        ("SENTBEFORE 1-Jan-2000", K::SentBefore(d(2000, 1, 1))),
        ("SENTON 1-Jan-2000", K::SentOn(d(2000, 1, 1))),
        ("SENTSINCE 1-Jan-2000", K::SentSince(d(2000, 1, 1))),
        ("SINCE 1-Jan-2000", K::Since(d(2000, 1, 1))),
        ("SMALLER 5", K::Smaller(5)),
        ("SUBJECT hello", K::Subject(s("hello"))),
        ("TEXT \"x\"", K::Text(s("x"))),
        ("TO y", K::To(s("y"))),
        ("UID 1:*", K::Uid(set("1:*"))),
        ("UID $", K::Uid(SequenceSet::Saved)),
        ("UNANSWERED", K::Unanswered),
        ("UNDELETED", K::Undeleted),
        ("UNDRAFT", K::Undraft),
        ("UNFLAGGED", K::Unflagged),
        ("UNKEYWORD foo", K::Unkeyword("foo".into())),
        ("UNSEEN", K::Unseen),
        ("1:5,7", K::SequenceSet(set("1:5,7"))),
        ("*", K::SequenceSet(set("*"))),
        ("$", K::SequenceSet(SequenceSet::Saved)),
        ("MODSEQ 620162338", K::ModSeq(620162338)),
        (
            "MODSEQ \"/flags/\\\\draft\" all 620162338",
            K::ModSeq(620162338),
        ),
        ("(SEEN)", K::And(vec![K::Seen])),
        (
            "(SEEN (FLAGGED DELETED))",
            K::And(vec![K::Seen, K::And(vec![K::Flagged, K::Deleted])]),
        ),
        (
            "NOT (OR 1 2:3)",
            K::Not(Box::new(K::And(vec![K::Or(
                Box::new(K::SequenceSet(set("1"))),
                Box::new(K::SequenceSet(set("2:3"))),
            )]))),
        ),
    ];
    for (key, want) in cases {
        let input = format!("a SEARCH {key}\r\n");
        assert_eq!(criteria(&input), (None, want.clone(), None), "{input:?}");
        let input = format!("a UID SEARCH {key} ALL\r\n");
        assert_eq!(
            criteria(&input),
            (None, K::And(vec![want, K::All]), None),
            "{input:?}"
        );
    }
}

#[test]
fn program_and_return_options() {
    use SearchKey as K;
    use SearchReturn::*;
    type Case = (
        &'static str,
        Option<&'static str>,
        SearchKey,
        Option<Vec<SearchReturn>>,
    );
    let cases: Vec<Case> = vec![
        (
            "a SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"\r\n",
            None,
            K::And(vec![
                K::Flagged,
                K::Since(Date {
                    year: 1994,
                    month: 2,
                    day: 1,
                }),
                K::Not(Box::new(K::From(b"Smith".to_vec()))),
            ]),
            None,
        ),
        (
            "a SEARCH CHARSET UTF-8 TEXT x\r\n",
            Some("UTF-8"),
            K::Text(b"x".to_vec()),
            None,
        ),
        (
            "a SEARCH charset \"iso-8859-1\" ALL\r\n",
            Some("iso-8859-1"),
            K::All,
            None,
        ),
        (
            "a SEARCH RETURN (MIN MAX) UNSEEN\r\n",
            None,
            K::Unseen,
            Some(vec![Min, Max]),
        ),
        ("a SEARCH RETURN () ALL\r\n", None, K::All, Some(vec![All])),
        (
            "a UID SEARCH RETURN (SAVE COUNT ALL) CHARSET UTF-8 UID 1:*\r\n",
            Some("UTF-8"),
            K::Uid(set("1:*")),
            Some(vec![Save, Count, All]),
        ),
        // A key named like an option is still a key when no SP and list follow.
        (
            "a SEARCH TEXT RETURN\r\n",
            None,
            K::Text(b"RETURN".to_vec()),
            None,
        ),
    ];
    for (input, charset, key, ret) in cases {
        assert_eq!(
            criteria(input),
            (charset.map(String::from), key, ret),
            "{input:?}"
        );
    }
}

#[test]
fn bad_searches() {
    let cases = [
        "a SEARCH\r\n",
        "a SEARCH \r\n",
        "a SEARCH FOO\r\n",
        "a SEARCH ()\r\n",
        "a SEARCH (SEEN\r\n",
        "a SEARCH SEEN)\r\n",
        "a SEARCH OR SEEN\r\n",
        "a SEARCH NOT\r\n",
        "a SEARCH BEFORE 31-Feb-2020\r\n",
        "a SEARCH LARGER x\r\n",
        "a SEARCH LARGER -1\r\n",
        "a SEARCH UID 0\r\n",
        "a SEARCH KEYWORD \\Seen\r\n",
        "a SEARCH RETURN (FOO) ALL\r\n",
        "a SEARCH RETURN (MIN)\r\n",
        "a SEARCH CHARSET\r\n",
        "a SEARCH CHARSET UTF-8\r\n",
        "a SEARCH MODSEQ \"/flags/\\\\draft\" none 1\r\n",
        "a SEARCH MODSEQ \"/other\" all 1\r\n",
        "a SEARCH SEEN  FLAGGED\r\n",
        "a SEARCH HEADER X\r\n",
    ];
    for input in cases {
        let e = parse(input).expect_err(input);
        assert_eq!(e.tag.as_deref(), Some("a"), "{input:?}");
    }
}

#[test]
fn nesting_is_bounded() {
    for (prefix, suffix) in [("NOT ", ""), ("(", ")"), ("OR ALL ", "")] {
        let ok = format!("a SEARCH {}ALL{}\r\n", prefix.repeat(50), suffix.repeat(50));
        assert!(parse(&ok).is_ok(), "depth 50 of {prefix:?}");
        let deep = format!(
            "a SEARCH {}ALL{}\r\n",
            prefix.repeat(100_000),
            suffix.repeat(100_000)
        );
        let e = parse(&deep).unwrap_err();
        assert!(
            e.message.contains("nested too deeply"),
            "{prefix:?}: {}",
            e.message
        );
    }
}
