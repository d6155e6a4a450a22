//! Malformed commands: the error carries the tag when it was readable, and nothing panics.

use super::{frags, parse};
use crate::frame::{Fragment, peek_tag};
use crate::parse::parse_command;

#[test]
fn bad_commands_keep_the_tag() {
    // (input, expected tag, part of the message)
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("a FOO\r\n", Some("a"), "Unknown command"),
        ("a UID FOO 1\r\n", Some("a"), "Unknown UID command"),
        ("a\r\n", Some("a"), "Missing command"),
        ("a \r\n", Some("a"), "Missing or invalid command name"),
        ("\r\n", None, "Error in IMAP command"),
        (" a NOOP\r\n", None, ""),
        ("+a NOOP\r\n", None, ""),
        ("a+b NOOP\r\n", None, ""),
        ("a{1} NOOP\r\n", None, ""),
        ("a NOOP x\r\n", Some("a"), "Extra arguments"),
        ("a NOOP \r\n", Some("a"), "Extra arguments"),
        ("a  NOOP\r\n", Some("a"), "command name"),
        ("a LOGIN\r\n", Some("a"), "Missing arguments"),
        ("a LOGIN user\r\n", Some("a"), "Missing arguments"),
        (
            "a LOGIN (user) pass\r\n",
            Some("a"),
            "Invalid characters in atom",
        ),
        ("a LOGIN us\u{e9}r pass\r\n", Some("a"), "8bit data in atom"),
        ("a LOGIN \"user pass\r\n", Some("a"), "Missing '\"'"),
        ("a SELECT\r\n", Some("a"), "Missing arguments"),
        ("a SETQUOTA \"\"\r\n", Some("a"), ""),
        ("a SETQUOTA \"\" (STORAGE)\r\n", Some("a"), ""),
        ("a SETQUOTA \"\" (STORAGE -1)\r\n", Some("a"), ""),
        (
            "a SETQUOTA \"\" (STORAGE 9223372036854775808)\r\n",
            Some("a"),
            "",
        ),
        ("a SETQUOTA \"\" STORAGE 1\r\n", Some("a"), ""),
        (
            "a SELECT x (FOO)\r\n",
            Some("a"),
            "Unknown SELECT parameter",
        ),
        ("a SELECT x ()\r\n", Some("a"), "Empty list"),
        ("a SELECT x (QRESYNC (0 1))\r\n", Some("a"), "Zero"),
        ("a CREATE x (USE (Sent))\r\n", Some("a"), ""),
        (
            "a CREATE x (FOO (\\Sent))\r\n",
            Some("a"),
            "Unknown CREATE parameter",
        ),
        ("a LIST \"\"\r\n", Some("a"), "Missing arguments"),
        (
            "a LIST (FOO) \"\" *\r\n",
            Some("a"),
            "Unknown LIST selection option",
        ),
        (
            "a LIST (RECURSIVEMATCH) \"\" *\r\n",
            Some("a"),
            "RECURSIVEMATCH",
        ),
        (
            "a LIST \"\" * RETURN (FOO)\r\n",
            Some("a"),
            "Unknown LIST return option",
        ),
        (
            "a LIST \"\" * FOO (CHILDREN)\r\n",
            Some("a"),
            "Expected RETURN",
        ),
        ("a LIST \"\" ()\r\n", Some("a"), "Empty list"),
        ("a STATUS x ()\r\n", Some("a"), "Empty list"),
        ("a STATUS x (FOO)\r\n", Some("a"), "Unknown STATUS item"),
        ("a STATUS x MESSAGES\r\n", Some("a"), ""),
        ("a APPEND x\r\n", Some("a"), "Missing arguments"),
        ("a APPEND x (\\Seen)\r\n", Some("a"), "Missing arguments"),
        ("a APPEND x hello\r\n", Some("a"), "Expected a literal"),
        (
            "a APPEND x \"17-Jul-1996 02:44:25\" {1}\r\nx\r\n",
            Some("a"),
            "Invalid date-time",
        ),
        ("a APPEND x {3}\r\nabc x\r\n", Some("a"), ""),
        ("a APPEND x UTF8 ({2}\r\nhi)\r\n", Some("a"), "literal8"),
        ("a FETCH 1\r\n", Some("a"), "Missing arguments"),
        ("a FETCH 1 FOO\r\n", Some("a"), "Invalid fetch-att"),
        ("a FETCH 1 ()\r\n", Some("a"), "Empty list"),
        ("a FETCH 1 (FLAGS\r\n", Some("a"), ""),
        ("a FETCH 1 ALL FLAGS\r\n", Some("a"), ""),
        ("a FETCH 1 (ALL)\r\n", Some("a"), "Invalid fetch-att"),
        ("a FETCH 0 FLAGS\r\n", Some("a"), "Zero"),
        ("a FETCH 1: FLAGS\r\n", Some("a"), "Invalid messageset"),
        ("a FETCH x FLAGS\r\n", Some("a"), "Invalid messageset"),
        ("a FETCH 1 BODY[MIME]\r\n", Some("a"), "Invalid section"),
        (
            "a FETCH 1 BODY[HEADER.FIELDS ()]\r\n",
            Some("a"),
            "Empty list",
        ),
        ("a FETCH 1 BODY[1.0]\r\n", Some("a"), "Zero"),
        ("a FETCH 1 BODY[]<0.0>\r\n", Some("a"), "Partial length"),
        ("a FETCH 1 BODY[]<1>\r\n", Some("a"), ""),
        ("a FETCH 1 BINARY[TEXT]\r\n", Some("a"), ""),
        ("a FETCH 1 BINARY.SIZE[1]<0.1>\r\n", Some("a"), ""),
        (
            "a FETCH 1 FLAGS (FOO)\r\n",
            Some("a"),
            "Unknown FETCH modifier",
        ),
        ("a FETCH 1 FLAGS (CHANGEDSINCE)\r\n", Some("a"), ""),
        ("a STORE 1 FLAGS\r\n", Some("a"), "Missing arguments"),
        (
            "a STORE 1 +FLAG (\\Seen)\r\n",
            Some("a"),
            "Invalid STORE data item",
        ),
        (
            "a STORE 1 (FOO 1) FLAGS (\\Seen)\r\n",
            Some("a"),
            "Unknown STORE modifier",
        ),
        ("a STORE 1 FLAGS (\\*)\r\n", Some("a"), ""),
        ("a COPY 1\r\n", Some("a"), "Missing arguments"),
        ("a MOVE 1:2\r\n", Some("a"), "Missing arguments"),
        ("a UID EXPUNGE\r\n", Some("a"), "Missing arguments"),
        ("a ID (\"a\")\r\n", Some("a"), ""),
        ("a ID (a b)\r\n", Some("a"), "Expected a string"),
        ("a ENABLE\r\n", Some("a"), "Missing arguments"),
        ("a AUTHENTICATE\r\n", Some("a"), "Missing arguments"),
        ("a AUTHENTICATE PLAIN ab=c\r\n", Some("a"), "base64"),
        ("a AUTHENTICATE PLAIN abc\r\n", Some("a"), "base64"),
        ("a AUTHENTICATE PLAIN a\"bc\r\n", Some("a"), ""),
        ("a LOGIN {3}\r\nabc\r\n", Some("a"), "Missing arguments"),
        ("a NOOP\r\nb NOOP\r\n", Some("a"), "Extra arguments"),
        // RFC 9394: nz-numbers, both ends negative or neither, one PARTIAL or ALL.
        ("a UID SEARCH RETURN (PARTIAL 0:5) ALL\r\n", Some("a"), ""),
        ("a UID SEARCH RETURN (PARTIAL -1:5) ALL\r\n", Some("a"), ""),
        ("a UID SEARCH RETURN (PARTIAL 1:*) ALL\r\n", Some("a"), ""),
        (
            "a UID SEARCH RETURN (PARTIAL 1:5 ALL) ALL\r\n",
            Some("a"),
            "At most one of PARTIAL and ALL",
        ),
        (
            "a UID SEARCH RETURN (PARTIAL 1:5 PARTIAL 6:9) ALL\r\n",
            Some("a"),
            "At most one of PARTIAL and ALL",
        ),
        (
            "a UID FETCH 1:* (FLAGS) (PARTIAL 1:2 PARTIAL 3:4)\r\n",
            Some("a"),
            "Unknown FETCH modifier",
        ),
    ];
    for (input, tag, message) in cases {
        let e = parse(input).expect_err(input);
        assert_eq!(e.tag.as_deref(), *tag, "{input:?}: {e:?}");
        assert!(e.message.contains(message), "{input:?}: {e:?}");
    }
}

#[test]
fn malformed_fragment_sequences() {
    let line = |s: &[u8]| Fragment::Line(s.to_vec());
    let lit = |s: &[u8]| Fragment::Literal(s.to_vec());
    let cases: Vec<Vec<Fragment>> = vec![
        vec![],
        vec![lit(b"abc")],
        vec![line(b"a LOGIN {3}\r\n"), lit(b"abcd"), line(b" x\r\n")],
        vec![line(b"a LOGIN {3}\r\n"), line(b" x\r\n")],
        vec![line(b"a LOGIN x y\r\n"), lit(b"abc"), line(b"\r\n")],
        vec![
            line(b"a LOGIN {3}\r\n"),
            lit(b"abc"),
            lit(b"abc"),
            line(b"\r\n"),
        ],
        vec![
            line(b"a APPEND x {3}\r\n"),
            Fragment::Spooled {
                path: "/x".into(),
                len: 4,
            },
            line(b"\r\n"),
        ],
    ];
    for f in cases {
        let e = parse_command(&f).expect_err(&format!("{f:?}"));
        if let Some(Fragment::Line(l)) = f.first() {
            assert_eq!(e.tag, peek_tag(l), "{f:?}");
        }
    }
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SEEDS: &[&str] = &[
    "a SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR (FROM {3}\r\nabc NOT SEEN) UID 1:*,3 $ HEADER x \"y\"\r\n",
    "a UID FETCH 1:*,5:3 (BODY.PEEK[1.2.HEADER.FIELDS (A B)]<0.10> BINARY[1] FLAGS) (CHANGEDSINCE 5 VANISHED)\r\n",
    "a APPEND x (\\Seen) \"17-Jul-1996 02:44:25 -0700\" {2+}\r\nhi ~{1}\r\n!\r\n",
    "a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (a \"b\" {1}\r\nc) RETURN (STATUS (MESSAGES) CHILDREN)\r\n",
    "a SELECT x (QRESYNC (1 2 1:9 (1:3 5:7)) CONDSTORE)\r\n",
    "a UID STORE 1:3 (UNCHANGEDSINCE 3) +FLAGS.SILENT (\\Deleted $x)\r\n",
    "a ID (\"name\" NIL \"v\" {1}\r\nx)\r\n",
    "a CREATE x (USE (\\Sent))\r\n",
    "a LOGIN {4}\r\nuser {4+}\r\npass\r\n",
];

const DICTIONARY: &[&[u8]] = &[
    b" ",
    b"(",
    b")",
    b"{",
    b"}",
    b"{0}\r\n",
    b"{5}\r\n",
    b"~{3}\r\n",
    b"\"",
    b"\\",
    b"*",
    b"$",
    b":",
    b",",
    b"<",
    b">",
    b"[",
    b"]",
    b".",
    b"\r\n",
    b"\n",
    b"\0",
    b"\xff",
    b"NOT ",
    b"OR ",
    b"NIL",
    b"0",
    b"4294967296",
    b"99999999999999999999",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = if v.is_empty() {
            0
        } else {
            rng.below(v.len() + 1)
        };
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            1 => {
                let word = DICTIONARY[rng.below(DICTIONARY.len())];
                v.splice(at..at, word.iter().copied());
            }
            2 if at < v.len() => {
                let end = (at + rng.below(8) + 1).min(v.len());
                v.drain(at..end);
            }
            3 => v.truncate(at),
            _ => {
                let other = SEEDS[rng.below(SEEDS.len())].as_bytes();
                let from = rng.below(other.len());
                v.splice(at..at, other[from..].iter().copied());
            }
        }
    }
    v
}

/// Property: no input makes the parser panic, and a reported tag is what `peek_tag` reads.
#[test]
fn random_and_mutated_input_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for seed in SEEDS {
        assert!(parse(seed).is_ok(), "{seed:?}");
    }
    for i in 0..40_000 {
        let input = if i % 4 == 0 {
            (0..rng.below(64)).map(|_| rng.next() as u8).collect()
        } else {
            let seed = SEEDS[rng.below(SEEDS.len())];
            mutate(&mut rng, seed.as_bytes())
        };
        let f = frags(&input);
        let result = parse_command(&f);
        if let (Some(Fragment::Line(first)), Err(e)) = (f.first(), &result) {
            assert!(
                e.tag.is_none() || e.tag == peek_tag(first),
                "{:?}: {e:?}",
                String::from_utf8_lossy(&input)
            );
        }
        // Whatever literals the line announces, the same fragments parsed twice agree.
        assert_eq!(result, parse_command(&f));
    }
}
