//! End-to-end unit tests of the public API on small hand-made messages: structure, sections,
//! BINARY, the stored tree format, and robustness on hostile input.

use crate::*;

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const NESTED: &[u8] = b"From: a@b\r\nSubject: outer\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=X\r\n\r\n\
preamble\r\n--X\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
--X\r\nContent-Type: message/rfc822\r\n\r\n\
From: c@d\r\nSubject: inner\r\nContent-Type: multipart/alternative; boundary=Y\r\n\r\n\
--Y\r\n\r\nplain\r\n--Y\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n--Y--\r\n\
\r\n--X--\r\nepilogue\r\n";

#[test]
fn bodystructures() {
    let cases: &[(&[u8], &str)] = &[
        // No blank line at all: everything is header, the body is empty.
        (b"Subject: only a header\r\n", "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)"),
        (b"", "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)"),
        (
            b"Content-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: QUOTED-PRINTABLE\r\n\r\na=3Db\r\n",
            "(\"text\" \"html\" (\"charset\" \"UTF-8\") NIL NIL \"QUOTED-PRINTABLE\" 7 1 NIL NIL NIL NIL)",
        ),
        // RFC 2231 continuation in a disposition, language and location extension data.
        (
            b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename*0=\"a\"; filename*1=\"b.pdf\"\r\n\
Content-Language: en, de\r\nContent-Location: http://x/y\r\n\r\n%PDF",
            "(\"application\" \"pdf\" NIL NIL NIL \"7bit\" 4 NIL (\"attachment\" (\"filename\" \"ab.pdf\")) (\"en\" \"de\") \"http://x/y\")",
        ),
        (
            NESTED,
            "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0 NIL NIL NIL NIL)\
(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 141 (NIL \"inner\" ((NIL NIL \"c\" \"d\")) ((NIL NIL \"c\" \"d\")) \
((NIL NIL \"c\" \"d\")) NIL NIL NIL NIL NIL) \
((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0 NIL NIL NIL NIL)\
(\"text\" \"html\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 8 0 NIL NIL NIL NIL) \"alternative\" \
(\"boundary\" \"Y\") NIL NIL NIL) 12 NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"X\") NIL NIL NIL)",
        ),
    ];
    for (msg, want) in cases {
        let a = analyze(msg);
        assert_eq!(s(&a.bodystructure), *want, "{}", s(msg));
    }
}

#[test]
fn body_has_no_extension_data() {
    let a = analyze(NESTED);
    assert!(
        s(&a.body)
            .starts_with("((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 0)")
    );
    assert!(s(&a.body).ends_with("\"mixed\")"));
}

#[test]
fn sections() {
    let a = analyze(NESTED);
    let t = &a.parts;
    let names = vec![b"subject".to_vec()];
    let cases: &[(&[u32], SectionSpec<'_>, Result<&str, SectionError>)] = &[
        (&[1], SectionSpec::Full, Ok("hello")),
        (
            &[1],
            SectionSpec::Mime,
            Ok("Content-Type: text/plain\r\n\r\n"),
        ),
        (
            &[2],
            SectionSpec::Mime,
            Ok("Content-Type: message/rfc822\r\n\r\n"),
        ),
        (
            &[2],
            SectionSpec::HeaderFields(&names),
            Ok("Subject: inner\r\n\r\n"),
        ),
        (
            &[2],
            SectionSpec::Text,
            Ok("--Y\r\n\r\nplain\r\n--Y\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n--Y--\r\n"),
        ),
        (&[2, 1], SectionSpec::Full, Ok("plain")),
        (
            &[2, 2],
            SectionSpec::Mime,
            Ok("Content-Type: text/html\r\n\r\n"),
        ),
        (&[2, 2], SectionSpec::Full, Ok("<b>x</b>")),
        (
            &[],
            SectionSpec::HeaderFieldsNot(&names),
            Ok(
                "From: a@b\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n",
            ),
        ),
        (&[3], SectionSpec::Full, Err(SectionError::NoSuchPart)),
        (&[2, 3], SectionSpec::Full, Err(SectionError::NoSuchPart)),
        (&[0], SectionSpec::Full, Err(SectionError::NoSuchPart)),
    ];
    for (path, spec, want) in cases {
        let got = section(NESTED, t, path, *spec).map(|b| s(&b));
        assert_eq!(got, want.clone().map(str::to_string), "{path:?} {spec:?}");
    }
    // A non-multipart message has one part, its body; its MIME header is the message header.
    let single = b"Subject: x\r\n\r\nbody\r\n";
    let a = analyze(single);
    assert_eq!(
        section(single, &a.parts, &[1], SectionSpec::Full).unwrap(),
        b"body\r\n"
    );
    assert_eq!(
        section(single, &a.parts, &[1], SectionSpec::Mime).unwrap(),
        b"Subject: x\r\n\r\n"
    );
    assert_eq!(
        section(single, &a.parts, &[2], SectionSpec::Full),
        Err(SectionError::NoSuchPart)
    );
}

#[test]
fn binaries() {
    let mk = |cte: &str, body: &str| {
        format!(
            "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Transfer-Encoding: {cte}\r\n\r\n{body}\r\n--B--\r\n"
        )
    };
    let cases: Vec<(String, Result<&[u8], BinaryError>)> = vec![
        (mk("base64", "aGVsbG8="), Ok(b"hello")),
        (mk("quoted-printable", "caf=C3=A9"), Ok("café".as_bytes())),
        (mk("7bit", "plain"), Ok(b"plain")),
        (mk("x-uuencode", "begin"), Err(BinaryError::UnknownCte)),
        (mk("base64", "aGV*"), Err(BinaryError::Invalid)),
    ];
    for (msg, want) in cases {
        let a = analyze(msg.as_bytes());
        assert_eq!(
            binary(msg.as_bytes(), &a.parts, &[1]),
            want.map(<[u8]>::to_vec),
            "{msg}"
        );
    }
    // BINARY of a multipart keeps its structure with leaves decoded (RFC 3516 §4.1). The CRLF
    // after the inner close delimiter stays in the part: the outer boundary is on the first
    // line of the (empty) epilogue.
    let msg = b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: multipart/alternative; boundary=C\r\n\r\n\
--C\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n--C--\r\n--B--\r\n";
    let a = analyze(msg);
    assert_eq!(
        s(&binary(msg, &a.parts, &[1]).unwrap()),
        "--C\r\nContent-Transfer-Encoding: binary\r\n\r\nhi\r\n--C--\r\n"
    );
}

#[test]
fn normalize() {
    let cases: &[(&[u8], &[u8], bool)] = &[
        (b"a\r\nb\r\n", b"a\r\nb\r\n", true),
        (b"a\nb\n", b"a\r\nb\r\n", false),
        (b"a\r\nb\nc\r", b"a\r\nb\r\nc\r", false),
        (b"\n", b"\r\n", false),
        (b"", b"", true),
    ];
    for (input, want, borrowed) in cases {
        let got = normalize_crlf(input);
        assert_eq!(&got[..], *want);
        assert_eq!(matches!(got, std::borrow::Cow::Borrowed(_)), *borrowed);
    }
    // Bare LF and CRLF versions of a message analyze the same.
    let lf = b"Subject: x\nContent-Type: text/plain\n\nline1\nline2\n";
    assert_eq!(
        analyze(&normalize_crlf(lf)),
        analyze(&normalize_crlf(&lf.replace_lf()))
    );
}

trait ReplaceLf {
    fn replace_lf(&self) -> Vec<u8>;
}

impl ReplaceLf for [u8] {
    fn replace_lf(&self) -> Vec<u8> {
        self.iter()
            .flat_map(|&c| {
                if c == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![c]
                }
            })
            .collect()
    }
}

#[test]
fn part_tree_roundtrip() {
    let a = analyze(NESTED);
    let bytes = a.parts.to_bytes();
    assert_eq!(PartTree::from_bytes(&bytes), Some(a.parts.clone()));
    assert_eq!(
        PartTree::header_len_from_bytes(&bytes),
        Some(a.parts.root.body_start)
    );
    assert!(a.parts.root.body_start > 0);
    assert_eq!(PartTree::header_len_from_bytes(&bytes[..16]), None);
    assert_eq!(PartTree::header_len_from_bytes(b""), None);
    for cut in 0..bytes.len() {
        assert_eq!(PartTree::from_bytes(&bytes[..cut]), None);
    }
    assert_eq!(PartTree::from_bytes(b"\x01\xff\xff"), None);
}

#[test]
fn search_text_and_date() {
    let msg = b"Subject: =?UTF-8?Q?caf=C3=A9?=\r\nDate: Thu, 1 Jan 1970 00:01:00 +0000\r\n\
Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nna=EFve\r\n";
    let a = analyze(msg);
    assert!(a.search_text[..a.search_body_offset].contains("café"));
    assert!(a.search_text[a.search_body_offset..].contains("naïve"));
    assert_eq!(a.sent_date, Some(60));
    // ENVELOPE keeps the encoded word as sent (RFC 3501 leaves decoding to the client).
    assert!(s(&a.envelope).contains("\"=?UTF-8?Q?caf=C3=A9?=\""));
}

#[test]
fn hostile_input_does_not_panic() {
    // Deep nesting is capped; the innermost multipart becomes application/octet-stream.
    let mut deep = Vec::new();
    for i in 0..300 {
        deep.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n").as_bytes(),
        );
    }
    let a = analyze(&deep);
    assert!(s(&a.bodystructure).contains("\"application\" \"octet-stream\""));
    let mut rfc = Vec::new();
    for _ in 0..300 {
        rfc.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    let _ = analyze(&rfc);
    // Past MAX_PARTS parts no more boundaries are recognized.
    let mut many = b"Content-Type: multipart/mixed; boundary=a\r\n\r\n".to_vec();
    many.extend_from_slice(&b"--a\r\n".repeat(20_000));
    let a = analyze(&many);
    assert_eq!(a.parts.root.children.len(), parts::MAX_PARTS - 1);
    // Truncations and junk of a real structure.
    for cut in 0..NESTED.len() {
        let m = &NESTED[..cut];
        let a = analyze(m);
        let _ = binary(m, &a.parts, &[2, 2]);
        let _ = section(m, &a.parts, &[2, 1], SectionSpec::Text);
    }
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let _ = analyze(&junk);
    let _ = header_values(&junk, "subject");
    assert_eq!(parse_rfc5322_date("\u{0}\u{ffff}"), None);
}
