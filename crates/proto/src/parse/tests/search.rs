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
        ("OLDER 259200", K::Older(259200)),
        ("YOUNGER 1", K::Younger(1)),
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
        // RFC 9394 §3.1.
        (
            "A01 UID SEARCH RETURN (PARTIAL -1:-100) UNDELETED\r\n",
            None,
            K::Undeleted,
            Some(vec![Partial(PartialRange {
                from_end: true,
                first: 1,
                second: 100,
            })]),
        ),
        (
            "A02 UID SEARCH RETURN (MIN partial 23500:24000 SAVE) ALL\r\n",
            None,
            K::All,
            Some(vec![
                Min,
                Partial(PartialRange {
                    from_end: false,
                    first: 23500,
                    second: 24000,
                }),
                Save,
            ]),
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
        "a SEARCH OLDER 0\r\n",
        "a SEARCH YOUNGER\r\n",
        "a SEARCH YOUNGER -5\r\n",
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

#[test]
fn sort_commands() {
    use SearchKey as K;
    use SortKey::{Arrival, Cc, DisplayFrom, DisplayTo, From, Size, Subject, To};
    let c = |reverse, key| SortCriterion { reverse, key };
    type Case = (
        &'static str,
        Option<Vec<SearchReturn>>,
        Vec<SortCriterion>,
        &'static str,
        SearchKey,
    );
    let cases: Vec<Case> = vec![
        (
            "a SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994\r\n",
            None,
            vec![c(false, Subject)],
            "UTF-8",
            K::Since(Date {
                year: 1994,
                month: 2,
                day: 1,
            }),
        ),
        (
            "a SORT (subject reverse date) \"US-ASCII\" ALL\r\n",
            None,
            vec![c(false, Subject), c(true, SortKey::Date)],
            "US-ASCII",
            K::All,
        ),
        (
            "a SORT (ARRIVAL CC FROM SIZE TO DISPLAYFROM REVERSE DISPLAYTO) UTF-8 SEEN 1:2\r\n",
            None,
            vec![
                c(false, Arrival),
                c(false, Cc),
                c(false, From),
                c(false, Size),
                c(false, To),
                c(false, DisplayFrom),
                c(true, DisplayTo),
            ],
            "UTF-8",
            K::And(vec![K::Seen, K::SequenceSet(set("1:2"))]),
        ),
        (
            "a SORT RETURN () (REVERSE DATE) UTF-8 UNDELETED UNKEYWORD $Junk\r\n",
            Some(vec![SearchReturn::All]),
            vec![c(true, SortKey::Date)],
            "UTF-8",
            K::And(vec![K::Undeleted, K::Unkeyword("$Junk".into())]),
        ),
        (
            // RFC 5267 §4.4 / RFC 9394: PARTIAL in sort order.
            "a SORT RETURN (PARTIAL 1:10) (SIZE) UTF-8 ALL\r\n",
            Some(vec![SearchReturn::Partial(PartialRange {
                from_end: false,
                first: 1,
                second: 10,
            })]),
            vec![c(false, Size)],
            "UTF-8",
            K::All,
        ),
        (
            "a SORT RETURN (MIN COUNT) (SIZE) UTF-8 ALL\r\n",
            Some(vec![SearchReturn::Min, SearchReturn::Count]),
            vec![c(false, Size)],
            "UTF-8",
            K::All,
        ),
    ];
    for (input, want_ret, want_criteria, want_charset, want_search) in cases {
        match body(input) {
            CommandBody::Sort {
                uid,
                criteria,
                charset,
                search,
                ret,
            } => {
                assert!(!uid);
                assert_eq!(ret, want_ret, "{input:?}");
                assert_eq!(criteria, want_criteria, "{input:?}");
                assert_eq!(charset, want_charset, "{input:?}");
                assert_eq!(search, want_search, "{input:?}");
            }
            other => panic!("{input:?}: {other:?}"),
        }
    }
    assert!(matches!(
        body("a UID SORT (DATE) UTF-8 ALL\r\n"),
        CommandBody::Sort { uid: true, .. }
    ));
    for bad in [
        "a SORT () UTF-8 ALL\r\n",
        "a SORT (DATE) ALL\r\n",
        "a SORT (DATE) UTF-8\r\n",
        "a SORT (REVERSE) UTF-8 ALL\r\n",
        "a SORT (REVERSE REVERSE DATE) UTF-8 ALL\r\n",
        "a SORT (SPAM) UTF-8 ALL\r\n",
        "a SORT DATE UTF-8 ALL\r\n",
        "a SORT RETURN (PARTIAL 1:*) (DATE) UTF-8 ALL\r\n",
    ] {
        let e = parse(bad).expect_err(bad);
        assert_eq!(e.tag.as_deref(), Some("a"), "{bad:?}");
    }
}

#[test]
fn thread_commands() {
    use ThreadAlgorithm::*;
    let cases = [
        (
            "a THREAD ORDEREDSUBJECT UTF-8 ALL\r\n",
            false,
            OrderedSubject,
        ),
        (
            "a THREAD references US-ASCII TEXT gewp\r\n",
            false,
            References,
        ),
        (
            "a UID THREAD OrderedSubject UTF-8 ALL\r\n",
            true,
            OrderedSubject,
        ),
    ];
    for (input, want_uid, want_alg) in cases {
        match body(input) {
            CommandBody::Thread { uid, algorithm, .. } => {
                assert_eq!((uid, algorithm), (want_uid, want_alg), "{input:?}");
            }
            other => panic!("{input:?}: {other:?}"),
        }
    }
    for bad in [
        "a THREAD ALL UTF-8 ALL\r\n",
        "a THREAD REFERENCES UTF-8\r\n",
        "a THREAD REFERENCES\r\n",
        "a THREAD (REFERENCES) UTF-8 ALL\r\n",
    ] {
        let e = parse(bad).expect_err(bad);
        assert_eq!(e.tag.as_deref(), Some("a"), "{bad:?}");
    }
}

#[test]
fn context_options_esearch_and_cancelupdate() {
    use crate::types::SearchSource as Src;
    match body("B01 UID SEARCH RETURN (UPDATE COUNT CONTEXT) DELETED\r\n") {
        CommandBody::Search { ret, .. } => assert_eq!(
            ret,
            Some(vec![
                SearchReturn::Update,
                SearchReturn::Count,
                SearchReturn::Context
            ])
        ),
        other => panic!("{other:?}"),
    }
    match body(
        "tag1 ESEARCH IN (mailboxes \"folder1\" subtree-one (a \"b c\") personal) RETURN (MIN) unseen\r\n",
    ) {
        CommandBody::Esearch {
            sources,
            charset,
            criteria,
            ret,
        } => {
            assert_eq!(
                sources,
                Some(vec![
                    Src::Mailboxes(vec![b"folder1".to_vec()]),
                    Src::SubtreeOne(vec![b"a".to_vec(), b"b c".to_vec()]),
                    Src::Personal,
                ])
            );
            assert_eq!(charset, None);
            assert_eq!(criteria, SearchKey::Unseen);
            assert_eq!(ret, Some(vec![SearchReturn::Min]));
        }
        other => panic!("{other:?}"),
    }
    match body("t ESEARCH CHARSET UTF-8 ALL\r\n") {
        CommandBody::Esearch {
            sources, charset, ..
        } => {
            assert_eq!(sources, None);
            assert_eq!(charset.as_deref(), Some("UTF-8"));
        }
        other => panic!("{other:?}"),
    }
    match body("t ESEARCH IN (selected inboxes subscribed subtree x) ALL\r\n") {
        CommandBody::Esearch { sources, .. } => assert_eq!(
            sources,
            Some(vec![
                Src::Selected,
                Src::Inboxes,
                Src::Subscribed,
                Src::Subtree(vec![b"x".to_vec()])
            ])
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        body("B04 CANCELUPDATE \"B01\" \"B02\"\r\n"),
        CommandBody::CancelUpdate(vec!["B01".into(), "B02".into()])
    );
    for bad in [
        "a ESEARCH IN (selected-delayed) ALL\r\n",
        "a ESEARCH IN () ALL\r\n",
        "a ESEARCH IN (personal (depth 1)) ALL\r\n",
        "a ESEARCH IN (mailboxes) ALL\r\n",
        "a ESEARCH IN (personal)\r\n",
        "a CANCELUPDATE\r\n",
        "a CANCELUPDATE B01\r\n",
        "a SEARCH RETURN (UPDATE PARTIAL 1:2 ALL) ALL\r\n",
    ] {
        let e = parse(bad).expect_err(bad);
        assert_eq!(e.tag.as_deref(), Some("a"), "{bad:?}");
    }
}
