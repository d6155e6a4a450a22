//! Scenarios 1 (mixed sessions), 3 (delivery) and 5 (storage), plus mailbox preloading.

use crate::corpus::{Corpus, five_kb};
use crate::imap::Conn;
use crate::report::{Lat, Metric, m};
use crate::servers::{PASSWORD, Server, USERS, du, write_maildir};
use anyhow::{Result, bail};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub fn user(i: u32) -> String {
    format!("testuser{}", i % USERS + 1)
}

/// Fills `user`'s INBOX with `msgs`: Dovecot through its Maildir, Mailkeep through APPEND
/// (pipelined with LITERAL+ when advertised).
pub async fn preload(srv: &Server, user: &str, msgs: Vec<Vec<u8>>) -> Result<()> {
    if let Some(md) = srv.maildir(user) {
        write_maildir(&md, msgs.into_iter())?;
        return Ok(());
    }
    let mut c = Conn::connect(srv.addr, None).await?;
    c.login(user, PASSWORD).await?;
    if c.has_cap("LITERAL+") {
        for chunk in msgs.chunks(1000) {
            let refs: Vec<&[u8]> = chunk.iter().map(|v| v.as_slice()).collect();
            c.append_pipelined("INBOX", &refs, 64).await?;
        }
    } else {
        for msg in &msgs {
            c.append("INBOX", msg, "").await?;
        }
    }
    c.logout().await
}

/// Preloads all 100 users with `per_user` corpus messages, 8 at a time, then opens each
/// INBOX once (so Dovecot builds its index before the measurement).
pub async fn preload_all(srv: &Server, corpus: &Arc<Corpus>, per_user: usize) -> Result<()> {
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for u in 0..USERS {
        if set.len() >= 8
            && let Some(r) = set.join_next().await
        {
            r??;
        }
        let srv_addr = srv.addr;
        let msgs: Vec<Vec<u8>> = (0..per_user)
            .map(|j| corpus.get((u as usize * per_user + j) as u64))
            .collect();
        let name = user(u);
        preload(srv, &name, msgs).await?;
        set.spawn(async move {
            let mut c = Conn::connect(srv_addr, None).await?;
            c.login(&name, PASSWORD).await?;
            c.cmd("SELECT INBOX").await?.ok()?;
            c.logout().await
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    println!(
        "  preloaded {USERS} users x {per_user} messages in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

#[derive(Default)]
struct Counters {
    sessions: AtomicU64,
    commands: AtomicU64,
    errors: AtomicU64,
}

fn message_id(msg: &[u8]) -> String {
    let s = String::from_utf8_lossy(&msg[..msg.len().min(2000)]);
    s.split("Message-ID: ")
        .nth(1)
        .and_then(|r| r.split("\r\n").next())
        .unwrap_or("")
        .to_string()
}

async fn timed(
    c: &mut Conn,
    lat: &mut Lat,
    cnt: &Counters,
    cmd: &str,
) -> Result<crate::imap::Resp> {
    let t = Instant::now();
    let r = c
        .cmd(cmd)
        .await?
        .ok()
        .map_err(|e| e.context(cmd.to_string()))?;
    lat.push(t.elapsed());
    cnt.commands.fetch_add(1, Ordering::Relaxed);
    Ok(r)
}

/// One mixed session; returns an error on any NO/BAD/unexpected answer.
async fn session(
    srv: &Server,
    u: &str,
    seed: u64,
    preload: usize,
    lat: &mut Lat,
    cnt: &Counters,
) -> Result<()> {
    let t = Instant::now();
    let mut c = Conn::connect(srv.next_addr(), None).await?;
    c.login(u, PASSWORD).await?;
    lat.push(t.elapsed());
    cnt.commands.fetch_add(1, Ordering::Relaxed);
    let sel = timed(&mut c, lat, cnt, "SELECT INBOX").await?;
    let Some(exists) = sel.exists() else {
        bail!("SELECT without EXISTS")
    };
    if exists == 0 {
        bail!("mailbox is empty");
    }
    let lo = exists.saturating_sub(49).max(1);
    timed(&mut c, lat, cnt, &format!("FETCH {lo}:* (FLAGS ENVELOPE)")).await?;
    let k = (seed % preload.min(exists as usize).max(1) as u64) + 1;
    timed(&mut c, lat, cnt, &format!("FETCH {k} BODY.PEEK[]")).await?;
    timed(&mut c, lat, cnt, &format!("STORE {k} +FLAGS (\\Seen)")).await?;
    let msg = five_kb(seed);
    let t = Instant::now();
    let uid = c.append("INBOX", &msg, "").await?;
    lat.push(t.elapsed());
    cnt.commands.fetch_add(1, Ordering::Relaxed);
    let uid = match uid {
        Some(u) => u,
        None => {
            let r = timed(
                &mut c,
                lat,
                cnt,
                &format!("UID SEARCH HEADER Message-ID \"{}\"", message_id(&msg)),
            )
            .await?;
            let line = r
                .untagged
                .iter()
                .find(|l| l.starts_with(b"* SEARCH"))
                .cloned()
                .unwrap_or_default();
            let s = String::from_utf8_lossy(&line).to_string();
            match s.split_whitespace().nth(2).and_then(|v| v.parse().ok()) {
                Some(u) => u,
                None => bail!("appended message not found"),
            }
        }
    };
    timed(
        &mut c,
        lat,
        cnt,
        &format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"),
    )
    .await?;
    if c.has_cap("UIDPLUS") {
        timed(&mut c, lat, cnt, &format!("UID EXPUNGE {uid}")).await?;
    } else {
        timed(&mut c, lat, cnt, "EXPUNGE").await?;
    }
    let t = Instant::now();
    c.logout().await?;
    lat.push(t.elapsed());
    cnt.commands.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Scenario 1: N clients looping mixed sessions for `dur`.
pub async fn mixed(
    srv: &Arc<Server>,
    clients: usize,
    dur: Duration,
    preload: usize,
) -> Result<Vec<Metric>> {
    let cnt = Arc::new(Counters::default());
    let cpu = crate::cpu::CpuSnap::take(srv);
    let deadline = Instant::now() + dur;
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for ci in 0..clients {
        let (srv, cnt) = (srv.clone(), cnt.clone());
        set.spawn(async move {
            let (mut lat, mut sess_lat) = (Lat::default(), Lat::default());
            let mut n: u64 = 0;
            // Bounded in time and in count.
            while Instant::now() < deadline && n < 1_000_000 {
                let u = user((ci as u64 + n * clients as u64) as u32);
                let t = Instant::now();
                match session(&srv, &u, n * 7919 + ci as u64, preload, &mut lat, &cnt).await {
                    Ok(()) => {
                        sess_lat.push(t.elapsed());
                        cnt.sessions.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        if cnt.errors.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("  protocol error ({u}): {e:#}");
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                n += 1;
            }
            (lat, sess_lat)
        });
    }
    let (mut lat, mut sess) = (Lat::default(), Lat::default());
    while let Some(r) = set.join_next().await {
        let (a, b) = r?;
        lat.merge(a);
        sess.merge(b);
    }
    let secs = start.elapsed().as_secs_f64();
    let sessions = cnt.sessions.load(Ordering::Relaxed) as f64;
    let sc = "mixed";
    let cpu = cpu.metrics(srv, sc, clients, sessions as u64);
    let mut tp = m(
        sc,
        format!("{clients} clients: sessions/s"),
        "sess/s",
        true,
        sessions / secs,
    );
    tp.plot = Some(("mixed-throughput", clients as f64));
    Ok([
        tp,
        m(
            sc,
            format!("{clients} clients: commands/s"),
            "cmd/s",
            true,
            cnt.commands.load(Ordering::Relaxed) as f64 / secs,
        ),
        m(
            sc,
            format!("{clients} clients: command p50"),
            "ms",
            false,
            lat.pct_ms(0.5),
        ),
        m(
            sc,
            format!("{clients} clients: command p99"),
            "ms",
            false,
            lat.pct_ms(0.99),
        ),
        m(
            sc,
            format!("{clients} clients: session p99"),
            "ms",
            false,
            sess.pct_ms(0.99),
        ),
        m(
            sc,
            format!("{clients} clients: protocol errors"),
            "count",
            false,
            cnt.errors.load(Ordering::Relaxed) as f64,
        ),
    ]
    .into_iter()
    .chain(cpu)
    .collect())
}

/// Scenario 3: `total` ~5 KB APPENDs from `clients` clients (each to its own user).
pub async fn delivery(srv: &Arc<Server>, clients: usize, total: usize) -> Result<Vec<Metric>> {
    let per = total.div_ceil(clients);
    // Generated before the clock starts: the load generator shares the server's cores.
    let all: Vec<Vec<Vec<u8>>> = (0..clients)
        .map(|ci| (0..per).map(|i| five_kb((ci * per + i) as u64)).collect())
        .collect();
    // Logged in before the clock starts too: the rate is of APPENDs, not of logins (a
    // Mailkeep login checks an argon2id hash, ~40 ms of CPU; the Dovecot test passdb is plain).
    let mut conns = Vec::with_capacity(clients);
    for ci in 0..clients {
        let mut c = Conn::connect(srv.addr, None).await?;
        c.login(&user(50 + ci as u32), PASSWORD).await?;
        conns.push(c);
    }
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for (mut c, msgs) in conns.into_iter().zip(all) {
        set.spawn(async move {
            let mut lat = Lat::default();
            for msg in msgs {
                let t = Instant::now();
                c.append("INBOX", &msg, "").await?;
                lat.push(t.elapsed());
            }
            anyhow::Ok((lat, c))
        });
    }
    let mut lat = Lat::default();
    let mut done = Vec::with_capacity(clients);
    while let Some(r) = set.join_next().await {
        let (l, c) = r??;
        lat.merge(l);
        done.push(c);
    }
    let secs = start.elapsed().as_secs_f64();
    for c in done {
        c.logout().await?;
    }
    let sc = "delivery";
    Ok(vec![
        m(
            sc,
            format!("{clients} client(s): APPEND rate"),
            "msg/s",
            true,
            (per * clients) as f64 / secs,
        ),
        m(
            sc,
            format!("{clients} client(s): APPEND p50"),
            "ms",
            false,
            lat.pct_ms(0.5),
        ),
        m(
            sc,
            format!("{clients} client(s): APPEND p99"),
            "ms",
            false,
            lat.pct_ms(0.99),
        ),
    ])
}

/// Scenario 5: the same corpus delivered over IMAP (10 users, 10 clients), then `du`.
pub async fn storage(
    srv: &Arc<Server>,
    corpus: &Arc<Corpus>,
    total: usize,
) -> Result<(Vec<Metric>, u64)> {
    let users = 10usize;
    let per = total.div_ceil(users);
    let raw = Arc::new(AtomicU64::new(0));
    let mut set = tokio::task::JoinSet::new();
    for ui in 0..users {
        let (srv, corpus, raw) = (srv.clone(), corpus.clone(), raw.clone());
        set.spawn(async move {
            let mut c = Conn::connect(srv.addr, None).await?;
            c.login(&user(ui as u32), PASSWORD).await?;
            for i in 0..per {
                let msg = corpus.get((ui * per + i) as u64);
                raw.fetch_add(msg.len() as u64, Ordering::Relaxed);
                c.append("INBOX", &msg, "").await?;
            }
            c.cmd("SELECT INBOX").await?.ok()?;
            c.logout().await
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (apparent, blocks) = du(&srv.mail_dir)?;
    let raw = raw.load(Ordering::Relaxed);
    let sc = "storage";
    let mb = |b: u64| b as f64 / 1_048_576.0;
    Ok((
        vec![
            m(
                sc,
                format!("{} msgs: apparent size", per * users),
                "MiB",
                false,
                mb(apparent),
            ),
            m(
                sc,
                format!("{} msgs: disk blocks used", per * users),
                "MiB",
                false,
                mb(blocks),
            ),
            m(
                sc,
                "apparent size / raw corpus bytes",
                "ratio",
                false,
                apparent as f64 / raw.max(1) as f64,
            ),
        ],
        raw,
    ))
}
