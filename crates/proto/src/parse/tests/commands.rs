//! One table per command family.

use super::{body, parse, set};
use crate::frame::Fragment;
use crate::parse::parse_command;
use crate::types::*;

#[test]
fn simple_commands() {
    use CommandBody as B;
    let cases: &[(&str, CommandBody)] = &[
        ("a CAPABILITY\r\n", B::Capability),
        ("a capability\r\n", B::Capability),
        ("a NoOp\r\n", B::Noop),
        ("a LOGOUT\r\n", B::Logout),
        ("a STARTTLS\r\n", B::StartTls),
        ("a NAMESPACE\r\n", B::Namespace),
        ("a IDLE\r\n", B::Idle),
        ("a COMPRESS DEFLATE\r\n", B::Compress("DEFLATE".into())),
        ("a compress deflate\r\n", B::Compress("DEFLATE".into())),
        ("a COMPRESS X-LZW\r\n", B::Compress("X-LZW".into())),
        ("a CHECK\r\n", B::Check),
        ("a CLOSE\r\n", B::Close),
        ("a UNSELECT\r\n", B::Unselect),
        ("a EXPUNGE\n", B::Expunge),
        ("a EXPUNGE", B::Expunge),
        ("a UID EXPUNGE 1:3,5\r\n", B::UidExpunge(set("1:3,5"))),
        ("a ID NIL\r\n", B::Id(None)),
        ("a ID ()\r\n", B::Id(Some(vec![]))),
        (
            "a ID (\"name\" \"sodr\" \"version\" NIL)\r\n",
            B::Id(Some(vec![
                (b"name".to_vec(), Some(b"sodr".to_vec())),
                (b"version".to_vec(), None),
            ])),
        ),
        (
            "a ENABLE CONDSTORE qresync UTF8=ACCEPT\r\n",
            B::Enable(vec![
                "CONDSTORE".into(),
                "QRESYNC".into(),
                "UTF8=ACCEPT".into(),
            ]),
        ),
        (
            "a AUTHENTICATE plain\r\n",
            B::Authenticate {
                mechanism: "PLAIN".into(),
                initial_response: None,
            },
        ),
        (
            "a AUTHENTICATE PLAIN AHVzZXIAcGFzcw==\r\n",
            B::Authenticate {
                mechanism: "PLAIN".into(),
                initial_response: Some(b"AHVzZXIAcGFzcw==".to_vec()),
            },
        ),
        (
            "a AUTHENTICATE PLAIN =\r\n",
            B::Authenticate {
                mechanism: "PLAIN".into(),
                initial_response: Some(b"=".to_vec()),
            },
        ),
        (
            "a LOGIN user pass\r\n",
            B::Login {
                username: b"user".to_vec(),
                password: b"pass".to_vec(),
            },
        ),
        (
            "a LOGIN \"us er\" \"p\\\"w\"\r\n",
            B::Login {
                username: b"us er".to_vec(),
                password: b"p\"w".to_vec(),
            },
        ),
        (
            "a LOGIN {4}\r\nuser {4+}\r\np w\r\n",
            B::Login {
                username: b"user".to_vec(),
                password: b"p w\r".to_vec(),
            },
        ),
        ("a GETQUOTA \"\"\r\n", B::GetQuota(vec![])),
        (
            "a SETQUOTA \"\" (STORAGE 512 message 10)\r\n",
            B::SetQuota {
                root: vec![],
                limits: vec![("STORAGE".into(), 512), ("MESSAGE".into(), 10)],
            },
        ),
        (
            "a SETQUOTA \"#user/alice\" ()\r\n",
            B::SetQuota {
                root: b"#user/alice".to_vec(),
                limits: vec![],
            },
        ),
        (
            "a setquota INBOX (STORAGE 9223372036854775807)\r\n",
            B::SetQuota {
                root: b"INBOX".to_vec(),
                limits: vec![("STORAGE".into(), i64::MAX as u64)],
            },
        ),
        (
            "a GETQUOTAROOT INBOX\r\n",
            B::GetQuotaRoot(b"INBOX".to_vec()),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(&body(input), want, "{input:?}");
    }
}

#[test]
fn mailbox_commands() {
    use CommandBody as B;
    let mb = |s: &str| s.as_bytes().to_vec();
    let cases: &[(&str, CommandBody)] = &[
        (
            "a SELECT inbox\r\n",
            B::Select {
                mailbox: mb("inbox"),
                params: SelectParams::default(),
            },
        ),
        (
            "a EXAMINE \"Sent Items\"\r\n",
            B::Examine {
                mailbox: mb("Sent Items"),
                params: SelectParams::default(),
            },
        ),
        (
            "a SELECT {5}\r\nab\ncd\r\n",
            B::Select {
                mailbox: mb("ab\ncd"),
                params: SelectParams::default(),
            },
        ),
        (
            "a SELECT x (CONDSTORE)\r\n",
            B::Select {
                mailbox: mb("x"),
                params: SelectParams {
                    condstore: true,
                    qresync: None,
                },
            },
        ),
        (
            "a SELECT x (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
            B::Select {
                mailbox: mb("x"),
                params: SelectParams {
                    condstore: false,
                    qresync: Some(QresyncParams {
                        uidvalidity: 67890007,
                        modseq: 20050715194045000,
                        known_uids: Some(set("41,43:211,214:541")),
                        seq_match: None,
                    }),
                },
            },
        ),
        (
            "a EXAMINE x (QRESYNC (1 2 1:9 (1:3 5:7)) CONDSTORE)\r\n",
            B::Examine {
                mailbox: mb("x"),
                params: SelectParams {
                    condstore: true,
                    qresync: Some(QresyncParams {
                        uidvalidity: 1,
                        modseq: 2,
                        known_uids: Some(set("1:9")),
                        seq_match: Some((set("1:3"), set("5:7"))),
                    }),
                },
            },
        ),
        (
            "a SELECT x (QRESYNC (1 2))\r\n",
            B::Select {
                mailbox: mb("x"),
                params: SelectParams {
                    condstore: false,
                    qresync: Some(QresyncParams {
                        uidvalidity: 1,
                        modseq: 2,
                        known_uids: None,
                        seq_match: None,
                    }),
                },
            },
        ),
        (
            "a CREATE foo/bar\r\n",
            B::Create {
                mailbox: mb("foo/bar"),
                special_use: vec![],
            },
        ),
        (
            "a CREATE MySent (USE (\\Sent))\r\n",
            B::Create {
                mailbox: mb("MySent"),
                special_use: vec!["\\Sent".into()],
            },
        ),
        (
            "a CREATE x (use (\\Junk \\Trash))\r\n",
            B::Create {
                mailbox: mb("x"),
                special_use: vec!["\\Junk".into(), "\\Trash".into()],
            },
        ),
        ("a DELETE x\r\n", B::Delete(mb("x"))),
        (
            "a RENAME a \"b c\"\r\n",
            B::Rename {
                from: mb("a"),
                to: mb("b c"),
            },
        ),
        ("a SUBSCRIBE x\r\n", B::Subscribe(mb("x"))),
        ("a UNSUBSCRIBE \"\"\r\n", B::Unsubscribe(mb(""))),
        (
            "a LSUB \"\" *\r\n",
            B::Lsub {
                reference: mb(""),
                pattern: mb("*"),
            },
        ),
        (
            "a STATUS blurdybloop (UIDNEXT MESSAGES unseen DELETED SIZE RECENT HIGHESTMODSEQ APPENDLIMIT UIDVALIDITY)\r\n",
            B::Status {
                mailbox: mb("blurdybloop"),
                items: {
                    use StatusItem::*;
                    vec![
                        UidNext,
                        Messages,
                        Unseen,
                        Deleted,
                        Size,
                        Recent,
                        HighestModSeq,
                        AppendLimit,
                        UidValidity,
                    ]
                },
            },
        ),
    ];
    for (input, want) in cases {
        assert_eq!(&body(input), want, "{input:?}");
    }
}

#[test]
fn list_commands() {
    let mb = |s: &str| s.as_bytes().to_vec();
    let plain = |r: &str, p: &str| ListCommand {
        reference: mb(r),
        patterns: vec![mb(p)],
        ..Default::default()
    };
    let cases: Vec<(&str, ListCommand)> = vec![
        ("a LIST \"\" *\r\n", plain("", "*")),
        ("a LIST \"\" %\r\n", plain("", "%")),
        ("a LIST ~/Mail/ foo*%]\r\n", plain("~/Mail/", "foo*%]")),
        ("a LIST \"\" \"\"\r\n", plain("", "")),
        ("a list {0}\r\n {1}\r\n*\r\n", plain("", "*")),
        (
            "a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %\r\n",
            ListCommand {
                select_subscribed: true,
                select_recursive_match: true,
                extended: true,
                ..plain("", "%")
            },
        ),
        (
            "a LIST () \"\" %\r\n",
            ListCommand {
                extended: true,
                ..plain("", "%")
            },
        ),
        (
            "a LIST (SPECIAL-USE REMOTE) \"\" * RETURN (SUBSCRIBED CHILDREN SPECIAL-USE)\r\n",
            ListCommand {
                select_special_use: true,
                select_remote: true,
                return_subscribed: true,
                return_children: true,
                return_special_use: true,
                extended: true,
                ..plain("", "*")
            },
        ),
        (
            "a LIST \"\" (INBOX \"Sent\" Dr*) RETURN (STATUS (MESSAGES UNSEEN))\r\n",
            ListCommand {
                patterns: vec![mb("INBOX"), mb("Sent"), mb("Dr*")],
                return_status: Some(vec![StatusItem::Messages, StatusItem::Unseen]),
                extended: true,
                ..plain("", "")
            },
        ),
        (
            "a LIST \"\" % RETURN ()\r\n",
            ListCommand {
                extended: true,
                ..plain("", "%")
            },
        ),
    ];
    for (input, want) in cases {
        assert_eq!(body(input), CommandBody::List(want), "{input:?}");
    }
}

#[test]
fn append_commands() {
    let msg = |flags: Vec<Flag>, internal_date: Option<DateTime>, data: &[u8], binary: bool| {
        AppendMessage {
            flags,
            internal_date,
            data: MessageData::Inline(data.to_vec()),
            binary,
        }
    };
    let date = DateTime {
        unix: 837_596_665,
        offset_minutes: -420,
    };
    let cases: Vec<(&str, Vec<AppendMessage>)> = vec![
        (
            "a APPEND x {5}\r\nhello\r\n",
            vec![msg(vec![], None, b"hello", false)],
        ),
        (
            "a APPEND x (\\Seen) {5+}\r\nhello\r\n",
            vec![msg(vec![Flag::Seen], None, b"hello", false)],
        ),
        (
            "a APPEND x \"17-Jul-1996 02:44:25 -0700\" {2}\r\nhi\r\n",
            vec![msg(vec![], Some(date), b"hi", false)],
        ),
        (
            "a APPEND x (\\Seen $Junk) \"17-Jul-1996 02:44:25 -0700\" ~{3}\r\na\0b\r\n",
            vec![msg(
                vec![Flag::Seen, Flag::Keyword("$Junk".into())],
                Some(date),
                b"a\0b",
                true,
            )],
        ),
        (
            "a APPEND x () {0}\r\n\r\n",
            vec![msg(vec![], None, b"", false)],
        ),
        (
            "a APPEND x (\\Seen) {2}\r\nhi {3+}\r\nyou \"17-Jul-1996 02:44:25 -0700\" ~{1}\r\n!\r\n",
            vec![
                msg(vec![Flag::Seen], None, b"hi", false),
                msg(vec![], None, b"you", false),
                msg(vec![], Some(date), b"!", true),
            ],
        ),
        (
            "a APPEND x UTF8 (~{2}\r\nhi)\r\n",
            vec![msg(vec![], None, b"hi", true)],
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            body(input),
            CommandBody::Append {
                mailbox: b"x".to_vec(),
                messages: want
            },
            "{input:?}"
        );
    }
}

#[test]
fn append_spooled() {
    let frags = vec![
        Fragment::Line(b"a APPEND x {10}\r\n".to_vec()),
        Fragment::Spooled {
            path: "/spool/1".into(),
            len: 10,
        },
        Fragment::Line(b"\r\n".to_vec()),
    ];
    let cmd = parse_command(&frags).unwrap();
    let CommandBody::Append { messages, .. } = cmd.body else {
        panic!()
    };
    assert_eq!(
        messages[0].data,
        MessageData::Spooled {
            path: "/spool/1".into(),
            len: 10
        }
    );

    // A spooled fragment anywhere but APPEND data is an error.
    let frags = vec![
        Fragment::Line(b"a LOGIN {10}\r\n".to_vec()),
        Fragment::Spooled {
            path: "/spool/1".into(),
            len: 10,
        },
        Fragment::Line(b" x\r\n".to_vec()),
    ];
    assert_eq!(parse_command(&frags).unwrap_err().tag.as_deref(), Some("a"));
}

#[test]
fn compress_needs_one_atom() {
    for bad in [
        "a COMPRESS\r\n",
        "a COMPRESS \r\n",
        "a COMPRESS \"DEFLATE\"\r\n",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}
