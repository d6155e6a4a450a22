//! Scenario 8: SORT and THREAD (RFC 5256) on one big mailbox, as a threaded mail client asks
//! for them: SORT (REVERSE DATE), (SUBJECT), (FROM), THREAD=REFERENCES and
//! THREAD=ORDEREDSUBJECT over every message.
//!
//! The corpus messages are turned into threads: of every four, the first starts a thread and
//! the other three answer it (`Re:` subject, In-Reply-To and References), so the THREAD
//! algorithms have real links to follow.

use crate::corpus::Corpus;
use crate::imap::Conn;
use crate::load::preload;
use crate::report::{Metric, m};
use crate::servers::{PASSWORD, Server};
use anyhow::Result;
use std::sync::Arc;
use std::time::Instant;

/// The commands timed, with their labels.
pub const QUERIES: [(&str, &str); 5] = [
    ("SORT (REVERSE DATE)", "UID SORT (REVERSE DATE) UTF-8 ALL"),
    ("SORT (SUBJECT)", "UID SORT (SUBJECT) UTF-8 ALL"),
    ("SORT (FROM)", "UID SORT (FROM) UTF-8 ALL"),
    ("THREAD=REFERENCES", "UID THREAD REFERENCES UTF-8 ALL"),
    (
        "THREAD=ORDEREDSUBJECT",
        "UID THREAD ORDEREDSUBJECT UTF-8 ALL",
    ),
];

/// The value of header `name` in `msg` (first occurrence, unfolded lines only).
fn header<'a>(msg: &'a [u8], name: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(&msg[..msg.len().min(8192)]).ok()?;
    let head = text.split("\r\n\r\n").next()?;
    head.split("\r\n").find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Message `i` of the corpus, made part of a thread of four.
pub fn threaded(corpus: &Corpus, i: usize) -> Vec<u8> {
    let msg = corpus.get(i as u64);
    let root_i = i - i % 4;
    if root_i == i {
        return msg;
    }
    let root = corpus.get(root_i as u64);
    let parent = corpus.get((i - 1) as u64);
    let (Some(root_id), Some(parent_id), Some(subject)) = (
        header(&root, "Message-ID"),
        header(&parent, "Message-ID"),
        header(&root, "Subject"),
    ) else {
        return msg;
    };
    let refs = if root_id == parent_id {
        root_id.to_string()
    } else {
        format!("{root_id} {parent_id}")
    };
    let text = String::from_utf8_lossy(&msg);
    let mut out = String::with_capacity(text.len() + 200);
    let mut in_head = true;
    for line in text.split_inclusive("\r\n") {
        if in_head && line == "\r\n" {
            in_head = false;
        }
        if in_head && line.len() > 8 && line[..8].eq_ignore_ascii_case("Subject:") {
            out.push_str(&format!(
                "Subject: Re: {subject}\r\nIn-Reply-To: {parent_id}\r\nReferences: {refs}\r\n"
            ));
            continue;
        }
        out.push_str(line);
    }
    out.into_bytes()
}

pub async fn run(srv: &Server, corpus: &Arc<Corpus>, n: usize) -> Result<Vec<Metric>> {
    let u = "testuser2";
    let t = Instant::now();
    let msgs: Vec<Vec<u8>> = (0..n).map(|i| threaded(corpus, i)).collect();
    preload(srv, u, msgs).await?;
    println!(
        "  loaded {n} messages in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut c = Conn::connect(srv.addr, None).await?;
    c.login(u, PASSWORD).await?;
    let r = c.cmd("SELECT INBOX").await?.ok()?;
    anyhow::ensure!(
        r.exists() == Some(n as u32),
        "SELECT shows {:?} messages, expected {n}",
        r.exists()
    );
    let sc = "sort";
    let mut out = Vec::new();
    for (label, q) in QUERIES {
        // The first run may build what the server caches (Dovecot's sort and thread
        // indexes, Mailkeep's lazily computed keys of older mail): reported on its own.
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..4 {
            let t = Instant::now();
            let r = c.cmd(q).await?;
            if r.status != crate::imap::Status::Ok {
                // A server may give up (Mailkeep's NO [LIMIT] after its time budget): say so
                // and go on with the next command.
                println!("  {label}: {}", r.tagged.trim_end());
                break;
            }
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            size = r.untagged.iter().map(|l| l.len()).sum::<usize>();
        }
        if times.len() < 2 {
            continue;
        }
        let first = times[0];
        let mut rest = times[1..].to_vec();
        rest.sort_by(f64::total_cmp);
        let med = rest[rest.len() / 2];
        println!("  {label}: first {first:.0} ms, then {med:.0} ms ({size} bytes of answer)");
        out.push(m(
            sc,
            format!("{n} msgs: {label}, first run"),
            "ms",
            false,
            first,
        ));
        out.push(m(sc, format!("{n} msgs: {label}"), "ms", false, med));
    }
    // The case of an INBOX in use: one new message since the last command, then the same
    // command (what a client does when new mail arrives). Once per query, one message each.
    for (i, (label, q)) in QUERIES.iter().enumerate() {
        let msg = threaded(corpus, n + i);
        c.append("INBOX", &msg, "").await?;
        c.cmd("NOOP").await?.ok()?;
        let t = Instant::now();
        let r = c.cmd(q).await?;
        if r.status != crate::imap::Status::Ok {
            println!("  {label} after new mail: {}", r.tagged.trim_end());
            continue;
        }
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        println!("  {label}: {ms:.0} ms after one new message");
        out.push(m(
            sc,
            format!("{n} msgs: {label}, after one new message"),
            "ms",
            false,
            ms,
        ));
    }
    c.logout().await?;
    Ok(out)
}
