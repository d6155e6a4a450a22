//! Scenario 2: many IDLE connections spread over child processes and loopback source
//! addresses; server memory per connection and new-mail notification latency.

use crate::idle_tls::IdleMode;
use crate::imap::{Conn, untagged_num};
use crate::load::{preload, user};
use crate::report::{Metric, m};
use crate::servers::{PASSWORD, Server};
use anyhow::{Context, Result, bail};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Connections per child process (each needs one fd; the limit is 20,000 per process).
pub const PER_WORKER: usize = 4000;

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The hidden `idle-worker` subcommand: opens `count` IDLE connections from `src`, prints
/// `READY ok failed`, then on `ARM` clears arrival times and on `REPORT ms` prints one
/// `ARR user epoch_us` line per connection (0 = nothing arrived) and `END`. Exits on EOF.
pub async fn worker(
    addr: SocketAddr,
    src: IpAddr,
    first: usize,
    count: usize,
    users: u32,
    mode: IdleMode,
    warm: bool,
) -> Result<()> {
    if mode != IdleMode::Plain {
        return worker_tls(addr, src, first, count, users, mode, warm).await;
    }
    let arrivals: Arc<Vec<AtomicU64>> = Arc::new((0..count).map(|_| AtomicU64::new(0)).collect());
    let alive = Arc::new(AtomicUsize::new(0));
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut set = tokio::task::JoinSet::new();
    for j in 0..count {
        let (arr, sem, alive) = (arrivals.clone(), sem.clone(), alive.clone());
        let u = user(((first + j) % users as usize) as u32);
        set.spawn(async move {
            let mut c = {
                let _permit = sem.acquire().await?;
                let mut c = Conn::connect(addr, Some(src)).await?;
                c.login(&u, PASSWORD).await?;
                c.cmd("SELECT INBOX").await?.ok()?;
                c.idle().await?;
                c
            };
            alive.fetch_add(1, Ordering::Relaxed);
            // Reader: runs until the connection closes (bounded by the process lifetime).
            tokio::spawn(async move {
                while let Ok(line) = c.read_line().await {
                    if untagged_num(&line, b"EXISTS").is_some() {
                        let _ = arr[j].compare_exchange(
                            0,
                            now_us(),
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                    }
                }
            });
            anyhow::Ok(())
        });
    }
    report_arrivals(set, alive, arrivals, src, first, users).await
}

/// [`worker`] for the TLS modes: the same protocol on stdin/stdout.
async fn worker_tls(
    addr: SocketAddr,
    src: IpAddr,
    first: usize,
    count: usize,
    users: u32,
    mode: IdleMode,
    warm: bool,
) -> Result<()> {
    let arrivals: Arc<Vec<AtomicU64>> = Arc::new((0..count).map(|_| AtomicU64::new(0)).collect());
    let alive = Arc::new(AtomicUsize::new(0));
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let tls = crate::idle_tls::connector()?;
    let mut set = tokio::task::JoinSet::new();
    for j in 0..count {
        let (arr, sem, alive, tls) = (arrivals.clone(), sem.clone(), alive.clone(), tls.clone());
        let u = user(((first + j) % users as usize) as u32);
        set.spawn(async move {
            let mut c = {
                let _permit = sem.acquire().await?;
                crate::idle_tls::open(&tls, addr, src, &u, PASSWORD, mode, warm).await?
            };
            alive.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                while let Ok(line) = c.read_line().await {
                    if untagged_num(&line, b"EXISTS").is_some() {
                        let _ = arr[j].compare_exchange(
                            0,
                            now_us(),
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        );
                    }
                }
            });
            anyhow::Ok(())
        });
    }
    report_arrivals(set, alive, arrivals, src, first, users).await
}

/// The worker's stdin/stdout protocol once its connections are being opened.
async fn report_arrivals(
    mut set: tokio::task::JoinSet<Result<()>>,
    alive: Arc<AtomicUsize>,
    arrivals: Arc<Vec<AtomicU64>>,
    src: IpAddr,
    first: usize,
    users: u32,
) -> Result<()> {
    let mut failed = 0;
    while let Some(r) = set.join_next().await {
        if let Err(e) | Ok(Err(e)) = r.map_err(anyhow::Error::from) {
            if failed < 3 {
                eprintln!("idle-worker {src}: {e:#}");
            }
            failed += 1;
        }
    }
    let mut out = tokio::io::stdout();
    out.write_all(format!("READY {} {failed}\n", alive.load(Ordering::Relaxed)).as_bytes())
        .await?;
    out.flush().await?;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    while let Some(cmd) = stdin.next_line().await? {
        if cmd == "ARM" {
            arrivals.iter().for_each(|a| a.store(0, Ordering::Relaxed));
        } else if let Some(ms) = cmd.strip_prefix("REPORT ") {
            let deadline = Instant::now() + Duration::from_millis(ms.parse().unwrap_or(5000));
            while Instant::now() < deadline
                && arrivals.iter().any(|a| a.load(Ordering::Relaxed) == 0)
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let mut s = String::new();
            for (j, a) in arrivals.iter().enumerate() {
                s.push_str(&format!(
                    "ARR {} {}\n",
                    (first + j) % users as usize,
                    a.load(Ordering::Relaxed)
                ));
            }
            s.push_str("END\n");
            out.write_all(s.as_bytes()).await?;
            out.flush().await?;
        }
    }
    Ok(())
}

struct Worker {
    _child: Child,
    stdin: ChildStdin,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
}

/// Runs the idle test with `k` connections over `users` users on a running server.
pub async fn run(
    srv: &Server,
    k: usize,
    users: u32,
    mode: IdleMode,
    warm: bool,
) -> Result<Vec<Metric>> {
    for u in 0..users {
        let msgs = (0..10)
            .map(|i| crate::corpus::five_kb(u as u64 * 100 + i))
            .collect();
        preload(srv, &user(u), msgs).await?;
        let mut c = Conn::connect(srv.addr, None).await?;
        c.login(&user(u), PASSWORD).await?;
        c.cmd("SELECT INBOX").await?.ok()?;
        c.logout().await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (procs0, rss0, pss0) = srv.memory();
    let exe = std::env::current_exe()?;
    let nworkers = k.div_ceil(PER_WORKER);
    let start = Instant::now();
    let mut workers = Vec::new();
    for w in 0..nworkers {
        let count = PER_WORKER.min(k - w * PER_WORKER);
        let src = format!("127.0.0.{}", 2 + w);
        let mut child = Command::new(&exe)
            .args([
                "idle-worker",
                "--addr",
                &srv.addr.to_string(),
                "--src",
                &src,
            ])
            .args([
                "--first",
                &(w * PER_WORKER).to_string(),
                "--count",
                &count.to_string(),
            ])
            .args(["--users", &users.to_string(), "--mode", mode.name()])
            .args(warm.then_some("--warm"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("spawning idle-worker")?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("stdout")?).lines();
        workers.push(Worker {
            _child: child,
            stdin,
            stdout,
        });
    }
    let (mut ok, mut failed) = (0usize, 0usize);
    for w in workers.iter_mut() {
        let line = tokio::time::timeout(Duration::from_secs(900), w.stdout.next_line())
            .await
            .context("idle workers did not get ready")??
            .unwrap_or_default();
        let f: Vec<usize> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        if f.len() != 2 {
            bail!("bad worker answer: {line}");
        }
        ok += f[0];
        failed += f[1];
    }
    let setup = start.elapsed().as_secs_f64();
    println!("  {ok} idlers up ({failed} failed) in {setup:.1} s");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (procs, rss, pss) = srv.memory();
    let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / ok.max(1) as f64 / 1024.0;
    // Notification latency: one APPEND per user, from a separate session.
    for w in workers.iter_mut() {
        w.stdin.write_all(b"ARM\n").await?;
        w.stdin.flush().await?;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut t0 = vec![0u64; users as usize];
    for u in 0..users {
        let mut c = Conn::connect(srv.addr, None).await?;
        c.login(&user(u), PASSWORD).await?;
        t0[u as usize] = now_us();
        c.append("INBOX", &crate::corpus::five_kb(999_999 + u as u64), "")
            .await?;
        c.logout().await?;
    }
    let mut lats = crate::report::Lat::default();
    let mut missing = 0;
    for w in workers.iter_mut() {
        w.stdin.write_all(b"REPORT 40000\n").await?;
        w.stdin.flush().await?;
    }
    for w in workers.iter_mut() {
        while let Some(line) =
            tokio::time::timeout(Duration::from_secs(60), w.stdout.next_line()).await??
        {
            if line == "END" {
                break;
            }
            let f: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|v| v.parse().ok())
                .collect();
            match f.as_slice() {
                [u, t] if *t > 0 => {
                    lats.push(Duration::from_micros(t.saturating_sub(t0[*u as usize])))
                }
                _ => missing += 1,
            }
        }
    }
    drop(workers);
    // The plain scenario keeps its name (and plot); the TLS ones are scenarios of their own.
    let sc: &'static str = match (mode, warm) {
        (IdleMode::Plain, _) => "idle",
        (IdleMode::Tls, false) => "idle-tls",
        (IdleMode::Tls, true) => "idle-tls-warm",
        (IdleMode::TlsCompress, false) => "idle-tls-compress",
        (IdleMode::TlsCompress, true) => "idle-tls-compress-warm",
    };
    let mut pss_m = m(
        sc,
        format!("{k} idlers: PSS per connection"),
        "KiB",
        false,
        per(pss, pss0),
    );
    if mode == IdleMode::Plain {
        pss_m.plot = Some(("idle-memory-per-connection", k as f64));
    }
    println!(
        "  server processes: {procs0} before, {procs} with idlers; {missing} idlers missed the new mail"
    );
    let max = lats.0.iter().max().copied().unwrap_or(0) as f64 / 1000.0;
    let within_1s = lats.0.iter().filter(|&&us| us < 1_000_000).count();
    Ok(vec![
        m(
            sc,
            format!("{k} idlers: connections up"),
            "conns",
            true,
            ok as f64,
        ),
        pss_m,
        m(
            sc,
            format!("{k} idlers: RSS per connection"),
            "KiB",
            false,
            per(rss, rss0),
        ),
        m(
            sc,
            format!("{k} idlers: setup rate"),
            "conn/s",
            true,
            ok as f64 / setup,
        ),
        m(
            sc,
            format!("{k} idlers: new mail to idler p50"),
            "ms",
            false,
            lats.pct_ms(0.5),
        ),
        m(
            sc,
            format!("{k} idlers: new mail to all idlers (max)"),
            "ms",
            false,
            max,
        ),
        m(
            sc,
            format!("{k} idlers: idlers notified within 1 s"),
            "conns",
            true,
            within_1s as f64,
        ),
        m(
            sc,
            format!("{k} idlers: idlers not notified in 40 s"),
            "count",
            false,
            missing as f64,
        ),
    ])
}
