//! OBJECTID (RFC 8474), SAVEDATE (RFC 8514), PREVIEW (RFC 8970) and REPLACE (RFC 8508).

use super::{body, parse};
use crate::types::*;

#[test]
fn fetch_items() {
    let b = body("a FETCH 1 (EMAILID THREADID SAVEDATE PREVIEW (LAZY) PREVIEW)\r\n");
    let CommandBody::Fetch { items, .. } = b else {
        panic!("{b:?}")
    };
    assert_eq!(
        items.0,
        vec![
            FetchItem::EmailId,
            FetchItem::ThreadId,
            FetchItem::SaveDate,
            FetchItem::Preview { lazy: true },
            FetchItem::Preview { lazy: false },
        ]
    );
    let b = body("a UID FETCH 1:* PREVIEW (lazy)\r\n");
    let CommandBody::Fetch { items, .. } = b else {
        panic!("{b:?}")
    };
    assert_eq!(items.0, vec![FetchItem::Preview { lazy: true }]);
    for bad in [
        "a FETCH 1 (PREVIEW (FAST))\r\n",
        "a FETCH 1 (PREVIEW ())\r\n",
        "a FETCH 1 (PREVIEW(LAZY))\r\n",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn search_keys() {
    let b = body(
        "a SEARCH EMAILID M6d99ebdbe1b4 THREADID T-1_a SAVEDBEFORE 1-Feb-2020 \
         SAVEDON 2-Feb-2020 SAVEDSINCE 3-Feb-2020 SAVEDATESUPPORTED\r\n",
    );
    let CommandBody::Search { criteria, .. } = b else {
        panic!("{b:?}")
    };
    let d = |day| Date {
        year: 2020,
        month: 2,
        day,
    };
    assert_eq!(
        criteria,
        SearchKey::And(vec![
            SearchKey::EmailId("M6d99ebdbe1b4".into()),
            SearchKey::ThreadId("T-1_a".into()),
            SearchKey::SavedBefore(d(1)),
            SearchKey::SavedOn(d(2)),
            SearchKey::SavedSince(d(3)),
            SearchKey::SaveDateSupported,
        ])
    );
    let long = format!("a SEARCH EMAILID {}\r\n", "M".repeat(256));
    for bad in [
        "a SEARCH EMAILID M!x\r\n",
        "a SEARCH EMAILID \"M1\"\r\n",
        "a SEARCH THREADID\r\n",
        long.as_str(),
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn status_mailboxid() {
    assert_eq!(
        body("a STATUS INBOX (MAILBOXID MESSAGES)\r\n"),
        CommandBody::Status {
            mailbox: b"INBOX".to_vec(),
            items: vec![StatusItem::MailboxId, StatusItem::Messages],
        }
    );
}

#[test]
fn replace() {
    let b = body("a REPLACE 4 Drafts (\\Seen \\Draft) {5}\r\nhello\r\n");
    assert_eq!(
        b,
        CommandBody::Replace {
            uid: false,
            number: SeqNum::Value(4),
            mailbox: b"Drafts".to_vec(),
            message: AppendMessage {
                flags: vec![Flag::Seen, Flag::Draft],
                internal_date: None,
                data: MessageData::Inline(b"hello".to_vec()),
                binary: false,
            },
        }
    );
    let b = body("a UID REPLACE 2000 Sent ~{3}\r\nabc\r\n");
    let CommandBody::Replace {
        uid: true,
        number: SeqNum::Value(2000),
        message,
        ..
    } = b
    else {
        panic!("{b:?}")
    };
    assert!(message.binary);
    assert!(matches!(
        body("a REPLACE * x {1}\r\nx\r\n"),
        CommandBody::Replace {
            number: SeqNum::Largest,
            ..
        }
    ));
    for bad in [
        "a REPLACE 0 x {1}\r\nx\r\n",
        "a UID REPLACE * x {1}\r\nx\r\n",
        "a REPLACE 1:2 x {1}\r\nx\r\n",
        "a REPLACE 1 x\r\n",
        "a REPLACE 1 x {1}\r\nx {1}\r\ny\r\n",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn catenate() {
    let b = body(
        "a APPEND Drafts (\\Seen) CATENATE (URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER\" TEXT {2}\r\nab URL x)\r\n",
    );
    let CommandBody::Append { messages, .. } = b else {
        panic!("{b:?}")
    };
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].flags, vec![Flag::Seen]);
    assert_eq!(
        messages[0].data,
        MessageData::Catenate(vec![
            CatenatePart::Url(b"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER".to_vec()),
            CatenatePart::Text(MessageData::Inline(b"ab".to_vec())),
            CatenatePart::Url(b"x".to_vec()),
        ])
    );
    assert_eq!(messages[0].data.len(), 2);
    assert!(!messages[0].data.is_empty());
    // MULTIAPPEND of a CATENATE and a literal; a literal8 TEXT makes the message binary.
    let b = body("a APPEND x CATENATE (TEXT ~{1}\r\n\0) {1}\r\ny\r\n");
    let CommandBody::Append { messages, .. } = b else {
        panic!("{b:?}")
    };
    assert_eq!(messages.len(), 2);
    assert!(messages[0].binary);
    // REPLACE takes CATENATE too (RFC 8508 §4.2).
    assert!(matches!(
        body("a REPLACE 1 x CATENATE (URL \";UID=1\")\r\n"),
        CommandBody::Replace {
            message: AppendMessage {
                data: MessageData::Catenate(_),
                ..
            },
            ..
        }
    ));
    for bad in [
        "a APPEND x CATENATE ()\r\n",
        "a APPEND x CATENATE (FOO)\r\n",
        "a APPEND x CATENATE (TEXT \"abc\")\r\n",
        "a APPEND x CATENATE (URL)\r\n",
        "a APPEND x CATENATE URL x\r\n",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
    let many = format!("a APPEND x CATENATE ({})\r\n", vec!["URL x"; 300].join(" "));
    assert!(parse(&many).is_err(), "at most 256 parts");
}
