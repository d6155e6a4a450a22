//! What the store keeps of a message at delivery, from one parse (`analyze_delivery`,
//! `delivery_keys`), is what the separate functions give (`analyze`, `delivery_info`,
//! `sortkeys::sort_keys`), on every message of the corpus and on thread-heavy headers.

use std::path::Path;

use mailkeep_mime::sortkeys::sort_keys;
use mailkeep_mime::{analyze, analyze_delivery, delivery_info, delivery_keys, normalize_crlf};

fn check(name: &str, msg: &[u8]) {
    let a = analyze(msg);
    let d = delivery_info(msg);
    let k = sort_keys(msg, &a.envelope, a.sent_date);
    let (a1, d1, k1) = analyze_delivery(msg);
    assert_eq!(a1, a, "{name}: analysis");
    assert_eq!(d1, d, "{name}: delivery info");
    assert_eq!(k1, k, "{name}: sort keys");
    let (d2, k2) = delivery_keys(msg, &a.envelope, a.sent_date);
    assert_eq!((d2, k2), (d, k), "{name}: delivery keys");
}

#[test]
fn one_parse_gives_what_the_separate_functions_give() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus/messages");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let raw = std::fs::read(&path).unwrap();
        check(&path.display().to_string(), &normalize_crlf(&raw));
        n += 1;
    }
    assert!(n > 300, "corpus not found in {}", dir.display());
    // More references than a delivery keeps (the sort keys keep them all), folded fields,
    // In-Reply-To only, no header at all, a header without a body.
    let many: String = (0..100).map(|i| format!(" <r{i}@x>\r\n")).collect();
    let cases = [
        format!("Message-ID: <m@x>\r\nReferences:{many}Subject: Re: hi\r\n\r\nbody\r\n"),
        "Message-ID:\r\n <m@x>\r\nIn-Reply-To: <p@x> (x)\r\nSubject: x\r\n\r\n".to_string(),
        "\r\nno header\r\n".to_string(),
        "Subject: only a header\r\nReferences: <a@b>".to_string(),
    ];
    for (i, c) in cases.iter().enumerate() {
        check(&format!("case {i}"), c.as_bytes());
    }
}
