//! Scenario 4: one large mailbox; SELECT, FETCH and SEARCH timings.

use crate::corpus::{Corpus, RARE_WORD};
use crate::imap::Conn;
use crate::load::preload;
use crate::report::{Metric, m};
use crate::servers::{PASSWORD, Server};
use anyhow::Result;
use std::sync::Arc;
use std::time::Instant;

/// Times `cmd` `reps` times; returns (first, median) in ms and the last response.
async fn time_cmd(c: &mut Conn, cmd: &str, reps: usize) -> Result<(f64, f64, crate::imap::Resp)> {
    let mut v = Vec::new();
    let mut last = None;
    for _ in 0..reps {
        let t = Instant::now();
        let r = c.cmd(cmd).await?.ok()?;
        v.push(t.elapsed().as_secs_f64() * 1000.0);
        last = Some(r);
    }
    let first = v[0];
    v.sort_by(f64::total_cmp);
    Ok((
        first,
        v[v.len() / 2],
        last.ok_or_else(|| anyhow::anyhow!("no reps"))?,
    ))
}

pub async fn run(srv: &Server, corpus: &Arc<Corpus>, n: usize) -> Result<Vec<Metric>> {
    let u = "testuser1";
    let t = Instant::now();
    let msgs: Vec<Vec<u8>> = (0..n).map(|i| corpus.get(i as u64)).collect();
    preload(srv, u, msgs).await?;
    println!(
        "  loaded {n} messages in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut c = Conn::connect(srv.addr, None).await?;
    c.login(u, PASSWORD).await?;
    let sc = "large";
    let mut out = Vec::new();
    let (cold, _, r) = time_cmd(&mut c, "SELECT INBOX", 1).await?;
    anyhow::ensure!(
        r.exists() == Some(n as u32),
        "SELECT shows {:?} messages, expected {n}",
        r.exists()
    );
    out.push(m(
        sc,
        format!("{n} msgs: first SELECT (index build)"),
        "ms",
        false,
        cold,
    ));
    let (_, sel, _) = time_cmd(&mut c, "SELECT INBOX", 3).await?;
    out.push(m(sc, format!("{n} msgs: SELECT"), "ms", false, sel));
    let queries = [
        ("UID FETCH 1:* (FLAGS)", "UID FETCH 1:* (FLAGS)".to_string()),
        ("FETCH 1:* (ENVELOPE)", "FETCH 1:* (ENVELOPE)".to_string()),
        (
            "UID SEARCH BODY word",
            format!("UID SEARCH BODY \"{RARE_WORD}\""),
        ),
        ("SEARCH TEXT word", format!("SEARCH TEXT \"{RARE_WORD}\"")),
    ];
    for (label, q) in queries {
        let (first, med, r) = time_cmd(&mut c, &q, 3).await?;
        if label.contains("SEARCH") {
            let hits = r
                .untagged
                .iter()
                .find(|l| l.starts_with(b"* SEARCH"))
                .map(|l| l.split(|&b| b == b' ').count() - 2);
            println!(
                "  {label}: {} hits (first run {first:.0} ms)",
                hits.unwrap_or(0)
            );
        } else {
            anyhow::ensure!(
                r.untagged.len() >= n,
                "{label}: {} responses for {n} messages",
                r.untagged.len()
            );
        }
        if label.starts_with("FETCH 1:* (ENVELOPE)") {
            out.push(m(
                sc,
                format!("{n} msgs: {label}, first run"),
                "ms",
                false,
                first,
            ));
        }
        out.push(m(sc, format!("{n} msgs: {label}"), "ms", false, med));
    }
    if c.has_cap("CONDSTORE") {
        let r = c.cmd("SELECT INBOX (CONDSTORE)").await?.ok()?;
        let hms = r
            .untagged
            .iter()
            .find_map(|l| crate::imap::code_in(&String::from_utf8_lossy(l), "HIGHESTMODSEQ"))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(1);
        let set: Vec<String> = (0..100).map(|i| (1 + i * n / 100).to_string()).collect();
        c.cmd(&format!(
            "STORE {} +FLAGS.SILENT (\\Flagged)",
            set.join(",")
        ))
        .await?
        .ok()?;
        let (_, med, r) = time_cmd(
            &mut c,
            &format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms})"),
            3,
        )
        .await?;
        println!(
            "  CHANGEDSINCE {hms}: {} changed messages",
            r.untagged.len()
        );
        out.push(m(
            sc,
            format!("{n} msgs: UID FETCH 1:* (FLAGS) (CHANGEDSINCE m), 100 changed"),
            "ms",
            false,
            med,
        ));
    } else {
        println!("  server does not advertise CONDSTORE: CHANGEDSINCE skipped");
    }
    c.logout().await?;
    Ok(out)
}
