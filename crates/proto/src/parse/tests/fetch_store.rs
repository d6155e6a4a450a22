//! FETCH, STORE, COPY and MOVE.

use super::{body, set};
use crate::types::*;

#[test]
fn fetch_commands() {
    use FetchItem::*;
    let fetch = |uid, s: &str, items: Vec<FetchItem>, modifiers| CommandBody::Fetch {
        uid,
        set: set(s),
        items: FetchItems(items),
        modifiers,
    };
    let none = FetchModifiers::default;
    let sec = |part: Vec<u32>, text: Option<SectionText>| Section { part, text };
    let cases: Vec<(&str, CommandBody)> = vec![
        (
            "a FETCH 1 ALL\r\n",
            fetch(
                false,
                "1",
                vec![Flags, InternalDate, Rfc822Size, Envelope],
                none(),
            ),
        ),
        (
            "a FETCH 1 fast\r\n",
            fetch(false, "1", vec![Flags, InternalDate, Rfc822Size], none()),
        ),
        (
            "a FETCH 1 FULL\r\n",
            fetch(
                false,
                "1",
                vec![Flags, InternalDate, Rfc822Size, Envelope, Body],
                none(),
            ),
        ),
        (
            "a FETCH 2:4 FLAGS\r\n",
            fetch(false, "2:4", vec![Flags], none()),
        ),
        ("a FETCH * BODY\r\n", fetch(false, "*", vec![Body], none())),
        (
            "a UID FETCH 1:* (UID FLAGS MODSEQ)\r\n",
            fetch(true, "1:*", vec![Uid, Flags, ModSeq], none()),
        ),
        (
            "a FETCH 1 (ENVELOPE BODYSTRUCTURE RFC822 RFC822.HEADER RFC822.TEXT RFC822.SIZE INTERNALDATE)\r\n",
            fetch(
                false,
                "1",
                vec![
                    Envelope,
                    BodyStructure,
                    Rfc822,
                    Rfc822Header,
                    Rfc822Text,
                    Rfc822Size,
                    InternalDate,
                ],
                none(),
            ),
        ),
        (
            "a FETCH 1 BODY[]\r\n",
            fetch(
                false,
                "1",
                vec![BodySection {
                    section: sec(vec![], None),
                    partial: None,
                    peek: false,
                }],
                none(),
            ),
        ),
        (
            "a FETCH 1 (BODY.PEEK[HEADER.FIELDS (From \"To\" {2}\r\nCc)]<0.2048>)\r\n",
            fetch(
                false,
                "1",
                vec![BodySection {
                    section: sec(
                        vec![],
                        Some(SectionText::HeaderFields(vec![
                            b"From".to_vec(),
                            b"To".to_vec(),
                            b"Cc".to_vec(),
                        ])),
                    ),
                    partial: Some((0, 2048)),
                    peek: true,
                }],
                none(),
            ),
        ),
        (
            "a FETCH 1 (body[1.2.header.fields.not (X)] BODY[3.MIME] BODY[4.TEXT] BODY[1] BODY[TEXT]<5.1>)\r\n",
            fetch(
                false,
                "1",
                vec![
                    BodySection {
                        section: sec(
                            vec![1, 2],
                            Some(SectionText::HeaderFieldsNot(vec![b"X".to_vec()])),
                        ),
                        partial: None,
                        peek: false,
                    },
                    BodySection {
                        section: sec(vec![3], Some(SectionText::Mime)),
                        partial: None,
                        peek: false,
                    },
                    BodySection {
                        section: sec(vec![4], Some(SectionText::Text)),
                        partial: None,
                        peek: false,
                    },
                    BodySection {
                        section: sec(vec![1], None),
                        partial: None,
                        peek: false,
                    },
                    BodySection {
                        section: sec(vec![], Some(SectionText::Text)),
                        partial: Some((5, 1)),
                        peek: false,
                    },
                ],
                none(),
            ),
        ),
        (
            "a FETCH 1 (BINARY[1.2] BINARY.PEEK[]<0.10> BINARY.SIZE[3])\r\n",
            fetch(
                false,
                "1",
                vec![
                    Binary {
                        part: vec![1, 2],
                        partial: None,
                        peek: false,
                    },
                    Binary {
                        part: vec![],
                        partial: Some((0, 10)),
                        peek: true,
                    },
                    BinarySize { part: vec![3] },
                ],
                none(),
            ),
        ),
        (
            "a UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n",
            fetch(
                true,
                "300:500",
                vec![Flags],
                FetchModifiers {
                    changed_since: Some(12345),
                    vanished: true,
                    partial: None,
                },
            ),
        ),
        (
            // RFC 9394 §3.4.
            "101 UID FETCH 25900:26600 (UID FLAGS) (PARTIAL -1:-30 CHANGEDSINCE 98305)\r\n",
            fetch(
                true,
                "25900:26600",
                vec![Uid, Flags],
                FetchModifiers {
                    changed_since: Some(98305),
                    vanished: false,
                    partial: Some(crate::types::PartialRange {
                        from_end: true,
                        first: 1,
                        second: 30,
                    }),
                },
            ),
        ),
        (
            "a FETCH $ (FLAGS)\r\n",
            fetch(false, "$", vec![Flags], none()),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(body(input), want, "{input:?}");
    }
}

#[test]
fn store_copy_move() {
    use CommandBody as B;
    let cases: Vec<(&str, CommandBody)> = vec![
        (
            "a STORE 2:4 +FLAGS (\\Deleted)\r\n",
            B::Store {
                uid: false,
                set: set("2:4"),
                action: StoreAction::Add,
                silent: false,
                flags: vec![Flag::Deleted],
                unchanged_since: None,
            },
        ),
        (
            "a UID STORE 1 -FLAGS.SILENT \\Seen $Junk\r\n",
            B::Store {
                uid: true,
                set: set("1"),
                action: StoreAction::Remove,
                silent: true,
                flags: vec![Flag::Seen, Flag::Keyword("$Junk".into())],
                unchanged_since: None,
            },
        ),
        (
            "a STORE * FLAGS ()\r\n",
            B::Store {
                uid: false,
                set: set("*"),
                action: StoreAction::Replace,
                silent: false,
                flags: vec![],
                unchanged_since: None,
            },
        ),
        (
            "a UID STORE 1:3 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)\r\n",
            B::Store {
                uid: true,
                set: set("1:3"),
                action: StoreAction::Add,
                silent: true,
                flags: vec![Flag::Deleted],
                unchanged_since: Some(320162338),
            },
        ),
        (
            "a COPY 2:4 MEETING\r\n",
            B::Copy {
                uid: false,
                set: set("2:4"),
                mailbox: b"MEETING".to_vec(),
            },
        ),
        (
            "a uid copy $ \"x y\"\r\n",
            B::Copy {
                uid: true,
                set: SequenceSet::Saved,
                mailbox: b"x y".to_vec(),
            },
        ),
        (
            "a MOVE 1 Trash\r\n",
            B::Move {
                uid: false,
                set: set("1"),
                mailbox: b"Trash".to_vec(),
            },
        ),
        (
            "a UID MOVE 4:2,7 {5}\r\nTrash\r\n",
            B::Move {
                uid: true,
                set: set("4:2,7"),
                mailbox: b"Trash".to_vec(),
            },
        ),
    ];
    for (input, want) in cases {
        assert_eq!(body(input), want, "{input:?}");
    }
}
