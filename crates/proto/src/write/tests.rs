//! Writer tests: exact bytes for each piece of a response.

use super::*;

fn w(f: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut out = Vec::new();
    f(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn status_responses() {
    use StatusKind::*;
    // (tag, kind, code, text, expected bytes)
    type Case = (
        Option<&'static str>,
        StatusKind,
        Option<Code>,
        &'static str,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            Some("a1"),
            Ok,
            None,
            "LOGIN completed",
            "a1 OK LOGIN completed\r\n",
        ),
        (
            None,
            Ok,
            Some(Code::UidValidity(3857529045)),
            "UIDs valid",
            "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n",
        ),
        (
            None,
            Ok,
            Some(Code::UidNext(4392)),
            "Predicted next UID",
            "* OK [UIDNEXT 4392] Predicted next UID\r\n",
        ),
        (
            None,
            Ok,
            Some(Code::HighestModSeq(715194045007)),
            "Highest",
            "* OK [HIGHESTMODSEQ 715194045007] Highest\r\n",
        ),
        (
            None,
            Ok,
            Some(Code::PermanentFlags(vec![Flag::Deleted, Flag::Seen], true)),
            "Limited",
            "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\r\n",
        ),
        (
            None,
            Ok,
            Some(Code::PermanentFlags(vec![], false)),
            "No permanent flags",
            "* OK [PERMANENTFLAGS ()] No permanent flags\r\n",
        ),
        (
            None,
            Ok,
            Some(Code::PermanentFlags(vec![], true)),
            "x",
            "* OK [PERMANENTFLAGS (\\*)] x\r\n",
        ),
        (
            Some("A003"),
            Ok,
            Some(Code::AppendUid {
                uidvalidity: 38505,
                uids: "3955".into(),
            }),
            "APPEND completed",
            "A003 OK [APPENDUID 38505 3955] APPEND completed\r\n",
        ),
        (
            Some("A004"),
            Ok,
            Some(Code::CopyUid {
                uidvalidity: 38505,
                source: "304,319:320".into(),
                dest: "3956:3958".into(),
            }),
            "Done",
            "A004 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n",
        ),
        (
            Some("d105"),
            Ok,
            Some(Code::Modified("7,9".into())),
            "Conditional STORE failed",
            "d105 OK [MODIFIED 7,9] Conditional STORE failed\r\n",
        ),
        (
            None,
            Ok,
            Some(Code::Capability(vec!["IMAP4rev2".into(), "IDLE".into()])),
            "ready",
            "* OK [CAPABILITY IMAP4rev2 IDLE] ready\r\n",
        ),
        (
            Some("t"),
            No,
            Some(Code::TooBig),
            "Too big",
            "t NO [TOOBIG] Too big\r\n",
        ),
        (
            Some("t"),
            No,
            Some(Code::ReadOnly),
            "ro",
            "t NO [READ-ONLY] ro\r\n",
        ),
        (
            Some("t"),
            Ok,
            Some(Code::ReadWrite),
            "rw",
            "t OK [READ-WRITE] rw\r\n",
        ),
        (
            Some("t"),
            No,
            Some(Code::UnknownCte),
            "cte",
            "t NO [UNKNOWN-CTE] cte\r\n",
        ),
        (
            Some("t"),
            No,
            Some(Code::UnavailableResource),
            "busy",
            "t NO [UNAVAILABLE] busy\r\n",
        ),
        (
            Some("t"),
            No,
            Some(Code::AuthenticationFailed),
            "x",
            "t NO [AUTHENTICATIONFAILED] x\r\n",
        ),
        (
            Some("t"),
            No,
            Some(Code::AlreadyExists),
            "x",
            "t NO [ALREADYEXISTS] x\r\n",
        ),
        (
            Some("t"),
            No,
            Some(Code::Nonexistent),
            "x",
            "t NO [NONEXISTENT] x\r\n",
        ),
        (
            Some("t"),
            No,
            Some(Code::TryCreate),
            "x",
            "t NO [TRYCREATE] x\r\n",
        ),
        (
            Some("t"),
            No,
            Some(Code::OverQuota),
            "x",
            "t NO [OVERQUOTA] x\r\n",
        ),
        (Some("t"), Ok, Some(Code::Closed), "", "t OK [CLOSED]\r\n"),
        (
            Some("t"),
            Bad,
            Some(Code::Other("BADCHARSET (UTF-8)".into())),
            "x",
            "t BAD [BADCHARSET (UTF-8)] x\r\n",
        ),
        (None, Bye, None, "Logging out", "* BYE Logging out\r\n"),
        (None, PreAuth, None, "Hi", "* PREAUTH Hi\r\n"),
        (
            Some("t"),
            Bad,
            None,
            "line1\r\nt2 OK injected",
            "t BAD line1  t2 OK injected\r\n",
        ),
    ];
    for (tag, kind, code, text, want) in cases {
        assert_eq!(w(|o| status(o, tag, kind, code.as_ref(), text)), want);
    }
}

#[test]
fn strings() {
    let cases: &[(&[u8], bool, &str, &str)] = &[
        // value, utf8, string(), astring()
        (b"abc", false, "\"abc\"", "abc"),
        (b"", false, "\"\"", "\"\""),
        (b"a b", false, "\"a b\"", "\"a b\""),
        (b"a\"b\\c", false, "\"a\\\"b\\\\c\"", "\"a\\\"b\\\\c\""),
        (b"a]b", false, "\"a]b\"", "a]b"),
        (b"NIL", false, "\"NIL\"", "\"NIL\""),
        (b"a\r\nb", false, "{4}\r\na\r\nb", "{4}\r\na\r\nb"),
        (b"a\0b", false, "{3}\r\na\0b", "{3}\r\na\0b"),
        (
            "caf\u{e9}".as_bytes(),
            false,
            "{5}\r\ncaf\u{e9}",
            "{5}\r\ncaf\u{e9}",
        ),
        (
            "caf\u{e9}".as_bytes(),
            true,
            "\"caf\u{e9}\"",
            "\"caf\u{e9}\"",
        ),
        (b"caf\xe9", true, "{4}\r\ncaf\u{fffd}", "{4}\r\ncaf\u{fffd}"),
        (b"(x)", false, "\"(x)\"", "\"(x)\""),
    ];
    for (value, utf8, want_string, want_astring) in cases {
        assert_eq!(&w(|o| string(o, value, *utf8)), want_string, "{value:?}");
        assert_eq!(&w(|o| astring(o, value, *utf8)), want_astring, "{value:?}");
    }
    assert_eq!(w(|o| nstring(o, None, false)), "NIL");
    assert_eq!(w(|o| nstring(o, Some(b"x"), false)), "\"x\"");
}

#[test]
fn mailboxes() {
    let cases = [
        ("INBOX", "INBOX"),
        ("inbox", "INBOX"),
        ("Sent", "Sent"),
        ("INBOX/Sub", "INBOX/Sub"),
        ("x]y", "x]y"),
        ("a b", "\"a b\""),
        ("p%q", "\"p%q\""),
        ("nil", "\"nil\""),
        ("", "\"\""),
        ("a\"b", "\"a\\\"b\""),
        ("Entw&APw-rfe", "Entw&APw-rfe"),
        ("Entwürfe", "\"Entwürfe\""),
        ("a\nb", "{3}\r\na\nb"),
    ];
    for (name, want) in cases {
        assert_eq!(w(|o| mailbox(o, name)), want, "{name:?}");
    }
}

#[test]
fn flags() {
    let all = [
        Flag::Seen,
        Flag::Answered,
        Flag::Flagged,
        Flag::Deleted,
        Flag::Draft,
        Flag::Recent,
        Flag::Keyword("$Forwarded".into()),
        Flag::Extension("\\Foo".into()),
        Flag::Extension("Bar".into()),
    ];
    assert_eq!(
        w(|o| flag_list(o, &all)),
        "(\\Seen \\Answered \\Flagged \\Deleted \\Draft \\Recent $Forwarded \\Foo \\Bar)"
    );
    assert_eq!(w(|o| flag_list(o, &[])), "()");
}

#[test]
fn number_sets() {
    let cases: &[(&[u32], &str)] = &[
        (&[], ""),
        (&[1], "1"),
        (&[1, 2, 3, 7, 9, 10], "1:3,7,9:10"),
        (&[1, 3, 5], "1,3,5"),
        (&[4294967294, 4294967295], "4294967294:4294967295"),
        (&[5, 6], "5:6"),
    ];
    for (nums, want) in cases {
        assert_eq!(&w(|o| number_set(o, nums)), want);
    }
}

#[test]
fn date_times() {
    let cases = [
        (837_596_665, -420, "\"17-Jul-1996 02:44:25 -0700\""),
        (1_704_067_200, 0, "\"01-Jan-2024 00:00:00 +0000\""),
        (0, 0, "\"01-Jan-1970 00:00:00 +0000\""),
        (-1, 0, "\"31-Dec-1969 23:59:59 +0000\""),
        (1_709_164_800, 330, "\"29-Feb-2024 05:30:00 +0530\""),
        (951_782_400, -30, "\"28-Feb-2000 23:30:00 -0030\""),
    ];
    for (unix, off, want) in cases {
        assert_eq!(w(|o| date_time(o, unix, off)), want, "{unix} {off}");
    }
}

#[test]
fn civil_days_round_trip() {
    for days in (-800_000..800_000).step_by(997) {
        let (y, m, d) = civil_from_days(days);
        assert_eq!(days_from_civil(y, m, d), days);
    }
    assert_eq!(days_from_civil(2000, 3, 1), 11_017);
}

#[test]
fn numbers() {
    for n in [0u64, 7, 10, 99, 4_294_967_295, u64::MAX] {
        assert_eq!(w(|o| number(o, n)), n.to_string());
    }
}
