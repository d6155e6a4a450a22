//! Issue 11's login scenarios, on `bulkuser1..N` with real argon2id hashes (see `accounts`):
//!
//! - `rest`: memory at rest. The server's RSS and PSS after start, then after the first 100
//!   distinct accounts each LOGIN, SELECT INBOX, LOGOUT one after the other, after the rest
//!   did the same 50 at a time, and 10 s later.
//! - `storm`: N distinct accounts connect at once (as after a restart), LOGIN, SELECT INBOX and
//!   IDLE: the time until all are in IDLE, each connection's time, failures, the server's peak
//!   memory during the storm and 10 s after (the connections still in IDLE), its CPU.

use crate::accounts;
use crate::imap::Conn;
use crate::report::{Lat, Metric, m};
use crate::servers::{PASSWORD, Server, tree_memory};
use anyhow::{Result, anyhow};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const MIB: f64 = 1024.0 * 1024.0;

/// One account's short session: LOGIN, SELECT INBOX, LOGOUT.
async fn session(addr: SocketAddr, i: usize) -> Result<Duration> {
    let t = Instant::now();
    let mut c = Conn::connect(addr, None).await?;
    c.login(&accounts::name(i), PASSWORD).await?;
    c.cmd("SELECT INBOX").await?.ok()?;
    c.logout().await?;
    Ok(t.elapsed())
}

/// The `rest` scenario on a server started with at least `n` bulk accounts.
pub async fn rest(srv: &Server, n: usize) -> Result<Vec<Metric>> {
    const SC: &str = "rest";
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut out = Vec::new();
    let mut mem = |what: String, (procs, rss, pss): (usize, u64, u64)| {
        println!(
            "  {what}: RSS {:.1} MiB, PSS {:.1} MiB ({procs} processes)",
            rss as f64 / MIB,
            pss as f64 / MIB
        );
        out.push(m(
            SC,
            format!("{n} accounts: RSS {what}"),
            "MiB",
            false,
            rss as f64 / MIB,
        ));
        out.push(m(
            SC,
            format!("{n} accounts: PSS {what}"),
            "MiB",
            false,
            pss as f64 / MIB,
        ));
    };
    mem("after start".into(), srv.memory());
    let first = n.min(100);
    let mut lat = Lat::default();
    let mut failed = 0usize;
    let mut errors = Vec::new();
    for i in 1..=first {
        match session(srv.addr, i).await {
            Ok(d) => lat.push(d),
            Err(e) => {
                failed += 1;
                errors.push(format!("{e:#}"));
            }
        }
    }
    mem(
        format!("after the first {first} (one at a time)"),
        srv.memory(),
    );
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let addr = srv.addr;
    for i in first + 1..=n {
        if set.len() >= 50
            && let Some(r) = set.join_next().await
        {
            match r? {
                Ok(d) => lat.push(d),
                Err(e) => {
                    failed += 1;
                    errors.push(format!("{e:#}"));
                }
            }
        }
        set.spawn(session(addr, i));
    }
    while let Some(r) = set.join_next().await {
        match r? {
            Ok(d) => lat.push(d),
            Err(e) => {
                failed += 1;
                errors.push(format!("{e:#}"));
            }
        }
    }
    let rest_secs = t.elapsed().as_secs_f64();
    mem(format!("after all {n} (then 50 at a time)"), srv.memory());
    tokio::time::sleep(Duration::from_secs(10)).await;
    mem("10 s later".into(), srv.memory());
    if let Some(e) = errors.first() {
        println!("  {failed} sessions failed, first: {e}");
    }
    out.push(m(
        SC,
        format!("{n} accounts: sessions failed"),
        "count",
        false,
        failed as f64,
    ));
    out.push(m(
        SC,
        format!("{n} accounts: session (LOGIN, SELECT, LOGOUT) p50"),
        "ms",
        false,
        lat.pct_ms(0.5),
    ));
    if n > first {
        out.push(m(
            SC,
            format!("{n} accounts: 50 at a time, sessions per second"),
            "sess/s",
            true,
            (n - first) as f64 / rest_secs.max(1e-9),
        ));
    }
    Ok(out)
}

/// How one storm connection ended.
enum Outcome {
    /// In IDLE after this long (from its connect).
    Idle(Conn, Duration),
    /// The TCP connect failed (refused, reset, timed out).
    Refused(String),
    /// Connected, but no greeting came (closed, `* BYE`, nothing within 120 s).
    NoGreeting(String),
    /// LOGIN answered NO/BAD.
    LoginFailed(String),
    /// Anything else: closed by the server, timeout, SELECT or IDLE refused.
    Failed(String),
}

async fn storm_one(addr: SocketAddr, i: usize) -> Outcome {
    let t = Instant::now();
    let mut c = match Conn::connect(addr, None).await {
        Ok(c) => c,
        // Conn::connect's own errors come with a context; the socket's are bare io errors.
        Err(e) if e.downcast_ref::<std::io::Error>().is_some() => {
            return Outcome::Refused(format!("{e:#}"));
        }
        Err(e) => return Outcome::NoGreeting(format!("{e:#}")),
    };
    let r = c
        .cmd(&format!("LOGIN {} {PASSWORD}", accounts::name(i)))
        .await;
    match r {
        Ok(r) if r.status == crate::imap::Status::Ok => {}
        Ok(r) => return Outcome::LoginFailed(r.tagged),
        Err(e) => return Outcome::Failed(format!("LOGIN: {e:#}")),
    }
    let r: Result<()> = async {
        c.cmd("SELECT INBOX").await?.ok()?;
        c.idle().await
    }
    .await;
    match r {
        Ok(()) => Outcome::Idle(c, t.elapsed()),
        Err(e) => Outcome::Failed(format!("{e:#}")),
    }
}

/// Peak (RSS, PSS) of the process trees of `roots`, sampled about every 500 ms (plus the time
/// a sample takes) on a thread of its own until the returned flag is set.
fn sample_peak(roots: Vec<u32>) -> (Arc<AtomicBool>, std::thread::JoinHandle<(u64, u64)>) {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let h = std::thread::spawn(move || {
        let (mut rss, mut pss) = (0u64, 0u64);
        loop {
            let (_, r, p) = tree_memory(&roots);
            rss = rss.max(r);
            pss = pss.max(p);
            if s.load(Ordering::Relaxed) {
                return (rss, pss);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    (stop, h)
}

/// The `storm` scenario on a server started with at least `n` bulk accounts.
pub async fn storm(srv: &Server, n: usize) -> Result<Vec<Metric>> {
    const SC: &str = "storm";
    // The client holds n connections: as many descriptors as the hard limit allows.
    if let Ok(lim) = rlimit::increase_nofile_limit(u64::MAX)
        && lim < n as u64 + 100
    {
        println!("  warning: open-file limit {lim} is below {n} connections");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (procs0, rss0, pss0) = srv.memory();
    let (stop, sampler) = sample_peak(srv.root_pids());
    let cpu0 = srv.cpu_secs();
    let own0 = crate::lmtp::own_cpu_secs();
    let tcp0 = tcp_counters();
    let start = Instant::now();
    let addr = srv.addr;
    let mut set = tokio::task::JoinSet::new();
    for i in 1..=n {
        set.spawn(async move {
            let o = storm_one(addr, i).await;
            (o, start.elapsed())
        });
    }
    let (mut conns, mut lat) = (Vec::with_capacity(n), Lat::default());
    let (mut refused, mut no_greeting) = (0usize, 0usize);
    let (mut login_failed, mut failed) = (0usize, 0usize);
    let mut errors: Vec<String> = Vec::new();
    let mut last_idle = Duration::ZERO;
    while let Some(r) = set.join_next().await {
        let (o, at) = r?;
        match o {
            Outcome::Idle(c, d) => {
                conns.push(c);
                lat.push(d);
                last_idle = last_idle.max(at);
            }
            Outcome::Refused(e) => {
                refused += 1;
                errors.push(format!("connect: {e}"));
            }
            Outcome::NoGreeting(e) => {
                no_greeting += 1;
                errors.push(format!("greeting: {e}"));
            }
            Outcome::LoginFailed(e) => {
                login_failed += 1;
                errors.push(format!("LOGIN: {e}"));
            }
            Outcome::Failed(e) => {
                failed += 1;
                errors.push(e);
            }
        }
    }
    let done = start.elapsed();
    let tcp1 = tcp_counters();
    let cpu = srv.cpu_secs() - cpu0;
    let own = crate::lmtp::own_cpu_secs() - own0;
    stop.store(true, Ordering::Relaxed);
    let (peak_rss, peak_pss) = sampler.join().map_err(|_| anyhow!("sampler panicked"))?;
    let ok = conns.len();
    println!(
        "  {ok} of {n} in IDLE after {:.1} s (last task ended at {:.1} s); refused {refused}, \
         no greeting {no_greeting}, LOGIN failed {login_failed}, other failures {failed}; \
         server CPU {cpu:.1} s, client CPU {own:.1} s; kernel (whole machine): listen queue \
         overflows {}, SYN cookies sent {}",
        last_idle.as_secs_f64(),
        done.as_secs_f64(),
        tcp1.0 - tcp0.0,
        tcp1.1 - tcp0.1,
    );
    errors.sort();
    errors.dedup_by(|a, b| a.get(..40) == b.get(..40));
    for e in errors.iter().take(5) {
        println!("    e.g. {e}");
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (procs1, rss1, pss1) = srv.memory();
    // Still in IDLE: a server that dropped them shows here.
    let still = conns.len();
    drop(conns);
    println!(
        "  memory: before {:.1} MiB RSS / {:.1} MiB PSS ({procs0} processes); peak {:.1} / {:.1}; \
         10 s after {:.1} / {:.1} ({procs1} processes, {still} connections in IDLE)",
        rss0 as f64 / MIB,
        pss0 as f64 / MIB,
        peak_rss as f64 / MIB,
        peak_pss as f64 / MIB,
        rss1 as f64 / MIB,
        pss1 as f64 / MIB,
    );
    let c = |s: &str| format!("{n} accounts: {s}");
    Ok(vec![
        m(
            SC,
            c("time until all are in IDLE"),
            "s",
            false,
            last_idle.as_secs_f64(),
        ),
        m(SC, c("connections in IDLE"), "conns", true, ok as f64),
        m(SC, c("per connection p50"), "ms", false, lat.pct_ms(0.5)),
        m(SC, c("per connection p99"), "ms", false, lat.pct_ms(0.99)),
        m(SC, c("refused connections"), "count", false, refused as f64),
        m(
            SC,
            c("connected, no greeting in 120 s"),
            "count",
            false,
            no_greeting as f64,
        ),
        m(SC, c("LOGIN failed"), "count", false, login_failed as f64),
        m(SC, c("other failures"), "count", false, failed as f64),
        m(SC, c("server RSS before"), "MiB", false, rss0 as f64 / MIB),
        m(
            SC,
            c("server peak RSS"),
            "MiB",
            false,
            peak_rss as f64 / MIB,
        ),
        m(
            SC,
            c("server peak PSS"),
            "MiB",
            false,
            peak_pss as f64 / MIB,
        ),
        m(
            SC,
            c("server RSS 10 s after (all still in IDLE)"),
            "MiB",
            false,
            rss1 as f64 / MIB,
        ),
        m(
            SC,
            c("server PSS 10 s after (all still in IDLE)"),
            "MiB",
            false,
            pss1 as f64 / MIB,
        ),
        m(SC, c("server CPU"), "s", false, cpu),
        m(SC, c("load generator CPU"), "s", false, own),
        m(
            SC,
            c("kernel listen-queue overflows (machine)"),
            "count",
            false,
            (tcp1.0 - tcp0.0) as f64,
        ),
    ])
}

/// The machine's (ListenOverflows, SyncookiesSent) from /proc/net/netstat: a full accept
/// queue drops the handshake's last ACK, and after a SYN cookie the client then believes it
/// is connected while the server never saw it (an IMAP client waits for a greeting forever).
fn tcp_counters() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut lines = s.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return (0, 0);
    };
    let get = |key: &str| {
        names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0)
    };
    (get("ListenOverflows"), get("SyncookiesSent"))
}
