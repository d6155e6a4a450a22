//! THREAD's algorithms on small hand-made views.

use super::*;
use mailkeep_mime::collate::{base_subject, casemap_key};
use mailkeep_mime::sortkeys::Keys;
use mailkeep_mime::{msg_ids, thread_refs};

/// A message as REFERENCES sees it, without Message-ID or references (see [`threaded`]).
fn message(num: u32, sent: i64, subject: &str) -> Message<'static> {
    let (base, reply) = base_subject(subject);
    Message {
        num,
        sent,
        subject: Box::leak(casemap_key(&base).into_boxed_str()),
        reply,
        id: None,
        refs: Row::EMPTY.refs(),
    }
}

/// The encoded sort keys of a message with this Message-ID and references.
fn refs(id: &str, references: &[&str]) -> Vec<u8> {
    Keys {
        message_id: Some(id.to_string()),
        references: references.iter().map(|s| s.to_string()).collect(),
        ..Keys::default()
    }
    .encode()
}

fn ids(id: &str, references: &[&str]) -> (Option<String>, Vec<String>) {
    (
        Some(id.to_string()),
        references.iter().map(|s| s.to_string()).collect(),
    )
}

/// REFERENCES (`by_subject`) or REFS over `msgs`, with these encoded key rows, as text.
fn threaded(msgs: Vec<Message<'_>>, rows: &[Vec<u8>], by_subject: bool) -> String {
    let kb = sortkeys::KeyBuf::of(rows);
    let mut links = Links::with_capacity(msgs.len());
    links
        .extend(
            msgs.iter().zip(kb.rows()).map(|(m, r)| Message {
                id: r.message_id,
                refs: r.refs(),
                ..*m
            }),
            far(),
        )
        .unwrap();
    let mut out = Vec::new();
    write_tokens(&mut out, &links.thread(by_subject, far()).unwrap(), |n| n);
    String::from_utf8(out).unwrap()
}

fn far() -> Instant {
    Instant::now() + std::time::Duration::from_secs(60)
}

#[test]
fn parses_msg_ids() {
    assert_eq!(
        msg_ids("<\"01KF8JCEOCBS0045PS\"@xxx.yyy.com>"),
        vec!["01KF8JCEOCBS0045PS@xxx.yyy.com"]
    );
    assert_eq!(
        msg_ids(" <a@b> (comment <c@d>) <e@f>\r\n <x>  <g@h"),
        vec!["a@b", "e@f"]
    );
    assert_eq!(msg_ids("<@b> <a@> <>"), Vec::<String>::new());
    let header = b"Message-ID: <m@x>\r\nIn-Reply-To: <p@x> (sent by Joe)\r\n\r\n";
    assert_eq!(thread_refs(header), ids("m@x", &["p@x"]));
    let header = b"Message-ID: <m@x>\r\nReferences: <a@x>\r\n <b@x>\r\nIn-Reply-To: <p@x>\r\n\r\n";
    assert_eq!(thread_refs(header), ids("m@x", &["a@x", "b@x"]));
    assert_eq!(thread_refs(b"Subject: x\r\n\r\n"), (None, Vec::new()));
}

#[test]
fn references_threads() {
    // 1 <- 2 <- 3, 4 answers a message not in the set (dummy with one child: promoted),
    // 5 and 6 answer the same missing message (a dummy root), 7 shares 1's subject as a
    // reply, 8 has 1's id again.
    let msgs = vec![
        message(1, 1, "hello"),
        message(2, 2, "Re: hello"),
        message(3, 3, "Re: hello"),
        message(4, 4, "other"),
        message(5, 6, "third"),
        message(6, 5, "Re: third"),
        message(7, 7, "Re: hello"),
        message(8, 8, "dup"),
    ];
    let refs = vec![
        refs("1@x", &[]),
        refs("2@x", &["1@x"]),
        refs("3@x", &["1@x", "2@x"]),
        refs("4@x", &["gone@x"]),
        refs("5@x", &["missing@x"]),
        refs("6@x", &["missing@x"]),
        refs("7@x", &[]),
        refs("1@x", &[]),
    ];
    let t = threaded(msgs, &refs, true);
    assert_eq!(t, "(1 (2 3)(7))(4)((6)(5))(8)");
}

/// REFS: no subject grouping, threads by their newest message (Dovecot 2.3's answers).
#[test]
fn refs_threads() {
    let day = |d: i64| d * 86_400;
    let keys = vec![
        refs("a@x", &[]),
        refs("b@x", &[]),
        refs("a2@x", &["a@x"]),
        refs("a3@x", &["a@x"]),
    ];
    let t = threaded(
        vec![
            message(1, day(1), "A"),
            message(2, day(5), "B"),
            message(3, day(10), "Re: A"),
            message(4, day(3), "Re: A"),
        ],
        &keys,
        false,
    );
    assert_eq!(t, "(2)(1 (4)(3))");
    let keys = vec![refs("a@x", &[]), refs("b@x", &[])];
    let t = threaded(
        vec![message(1, day(1), "x"), message(2, day(2), "Re: x")],
        &keys,
        false,
    );
    assert_eq!(t, "(1)(2)");
}

#[test]
fn references_never_loop() {
    let msgs = vec![message(1, 1, "a"), message(2, 2, "b"), message(3, 3, "c")];
    let refs = vec![
        refs("1@x", &["3@x", "2@x"]),
        refs("2@x", &["1@x"]),
        refs("3@x", &["3@x"]),
    ];
    let t = threaded(msgs, &refs, true);
    for n in ["1", "2", "3"] {
        assert_eq!(t.matches(n).count(), 1, "{t}");
    }
}

#[test]
fn deep_chain_does_not_overflow() {
    let n = 100_000u32;
    let msgs: Vec<Message> = (1..=n).map(|i| message(i, i as i64, "Re: x")).collect();
    let refs: Vec<Vec<u8>> = (1..=n)
        .map(|i| {
            let parent = format!("{}@x", i - 1);
            let own = format!("{i}@x");
            let parents = [parent.as_str()];
            refs(&own, if i > 1 { &parents[..] } else { &[] })
        })
        .collect();
    let t = threaded(msgs, &refs, true);
    assert!(t.starts_with("(1 2 3 "), "{}", &t[..20]);
    assert!(t.ends_with(" 100000)"));
}

/// A small xorshift generator: the same shapes on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Step 1 continued from a kept state (new mail, in one or several pieces) threads as step 1
/// over all the messages at once, on random shapes: missing and duplicate Message-IDs,
/// references to later messages, to themselves and in loops, repeated subjects and dates.
#[test]
fn kept_links_extended_thread_as_computed_at_once() {
    let subjects = ["", "a", "b", "Re: a", "re: b", "c"];
    for seed in 1..2_000u64 {
        let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let n = 1 + r.below(if seed % 10 == 0 { 300 } else { 30 }) as usize;
        let ids = n as u64 + 8;
        let mut rows = Vec::new();
        let mut msgs = Vec::new();
        for i in 0..n {
            let id = (r.below(10) > 0).then(|| format!("{}@x", r.below(ids)));
            let refs = (0..r.below(5)).map(|_| format!("{}@x", r.below(ids)));
            rows.push(
                Keys {
                    message_id: id,
                    references: refs.collect(),
                    ..Keys::default()
                }
                .encode(),
            );
            let subject = subjects[r.below(6) as usize];
            msgs.push(message(i as u32 + 1, r.below(8) as i64, subject));
        }
        let kb = sortkeys::KeyBuf::of(&rows);
        let rows = kb.rows();
        let at = |i: usize| Message {
            id: rows[i].message_id,
            refs: rows[i].refs(),
            ..msgs[i]
        };
        let mut whole = Links::with_capacity(n);
        whole.extend((0..n).map(at), far()).unwrap();
        let (a, b) = (
            r.below(n as u64 + 1) as usize,
            r.below(n as u64 + 1) as usize,
        );
        let (a, b) = (a.min(b), a.max(b));
        let mut kept = Links::with_capacity(a);
        kept.extend((0..a).map(at), far()).unwrap();
        for range in [a..b, b..n] {
            let mut next = kept.clone();
            next.extend(range.map(at), far()).unwrap();
            kept = next;
        }
        for by_subject in [true, false] {
            assert_eq!(
                kept.thread(by_subject, far()).unwrap(),
                whole.thread(by_subject, far()).unwrap(),
                "seed {seed}, pieces at {a} and {b}, by subject: {by_subject}"
            );
        }
    }
}
