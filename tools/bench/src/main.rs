//! mailkeep-bench: compares Mailkeep with Dovecot (default and high-performance login
//! mode) on the same machine in the same run. See docs/benchmarks.md.

mod accounts;
mod corpus;
mod cpu;
mod idle;
mod idle_tls;
mod imap;
mod large;
mod lmtp;
mod load;
mod merge;
mod pg;
mod report;
mod servers;
mod sort;
mod storm;
mod stress;

use anyhow::Result;
use clap::{Parser, Subcommand};
use report::{Metric, Report};
use servers::{Kind, Server};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "IMAP benchmark: Mailkeep vs Dovecot on loopback")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Small sizes for a run of a couple of minutes.
    #[arg(long, global = true)]
    quick: bool,
    /// Benchmark Dovecot only (skip Mailkeep).
    #[arg(long, global = true)]
    dovecot_only: bool,
    /// The Mailkeep binary.
    #[arg(long, global = true, default_value = "target/release/mailkeep")]
    mailkeep_bin: PathBuf,
    /// Dovecot variants to run: default, perf.
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "default,perf"
    )]
    variants: Vec<String>,
    /// Seconds per mixed-session run and per LMTP run (default 20, quick 5).
    #[arg(long, global = true)]
    duration: Option<u64>,
    /// Client counts for the mixed sessions (default 10,50,200; quick 10,50).
    #[arg(long, global = true, value_delimiter = ',')]
    clients: Option<Vec<usize>>,
    /// Messages preloaded per user for the mixed sessions (default 100; quick 20).
    #[arg(long, global = true)]
    preload: Option<usize>,
    /// Idle connection counts (default 1000,5000,15000; quick 300).
    #[arg(long, global = true, value_delimiter = ',')]
    idle: Option<Vec<usize>>,
    /// Users sharing the idle connections (all idlers of a user share its INBOX).
    #[arg(long, global = true, default_value_t = 4)]
    idle_users: u32,
    /// Idle connections: plain, tls (STARTTLS) or tls-compress (STARTTLS + COMPRESS=DEFLATE;
    /// Mailkeep only).
    #[arg(long, global = true, value_enum, default_value = "plain")]
    idle_mode: idle_tls::IdleMode,
    /// TLS idle modes: send 100 commands (34 KiB) before IDLE, so the connection's buffers
    /// (COMPRESS: the 32 KiB inflate window) have been used, as after a while of real use.
    #[arg(long, global = true)]
    idle_warm: bool,
    /// Distinct accounts (argon2id hashes) logging in once each in the rest scenario
    /// (default 1000; quick 200).
    #[arg(long, global = true)]
    rest_accounts: Option<usize>,
    /// Distinct accounts (argon2id hashes) connecting at once in the storm scenario
    /// (default 5000; quick 300).
    #[arg(long, global = true)]
    storm_accounts: Option<usize>,
    /// Messages APPENDed in the delivery test (default 10000; quick 1000).
    #[arg(long, global = true)]
    delivery: Option<usize>,
    /// Messages in the large mailbox (default 100000; quick 5000).
    #[arg(long, global = true)]
    large: Option<usize>,
    /// Messages in the storage test (default 10000; quick 1000).
    #[arg(long, global = true)]
    storage: Option<usize>,
    /// Concurrent LMTP clients in the lmtp scenario (one connection each).
    #[arg(long, global = true, default_value_t = 16)]
    lmtp_clients: usize,
    /// Recipients per LMTP transaction, one run each (default 1,3).
    #[arg(long, global = true, value_delimiter = ',', default_value = "1,3")]
    lmtp_rcpts: Vec<usize>,
    /// Use the real messages in this directory instead of generated ones.
    #[arg(long, global = true)]
    corpus: Option<PathBuf>,
    /// Use the repository's corpus (tests/corpus/messages) instead of generated messages.
    #[arg(long, global = true)]
    real_corpus: bool,
    /// Extra Dovecot settings, e.g. "mailbox_idle_check_interval = 1 secs" (default: none).
    #[arg(long, global = true, default_value = "")]
    dovecot_extra: String,
    /// Mailkeep's store, one run each: sqlite (the embedded store, one node) and/or postgres
    /// (a throwaway PostgreSQL, fsync and synchronous_commit on, shared by --nodes nodes).
    #[arg(long, global = true, value_delimiter = ',', default_value = "sqlite")]
    store: Vec<StoreKind>,
    /// With --store postgres: mailkeep serve nodes on the one database, one run per count
    /// (e.g. 1,2); clients are dealt out to the nodes round-robin.
    #[arg(long, global = true, value_delimiter = ',', default_value = "1",
          value_parser = clap::value_parser!(u8).range(1..=servers::MAX_NODES as i64))]
    nodes: Vec<u8>,
    /// With --store postgres: PostgreSQL's shared_buffers.
    #[arg(long, global = true, default_value = "1GB")]
    pg_shared_buffers: String,
    /// With --store postgres: each node's [store] pool_size (default: Mailkeep's own).
    #[arg(long, global = true)]
    pg_pool_size: Option<usize>,
    /// Pin Mailkeep nodes with taskset: one CPU list per node, separated by '/', e.g.
    /// "0/1" (node 1 on CPU 0, node 2 on CPU 1). Default: no pinning.
    #[arg(long, global = true, value_delimiter = '/')]
    pin: Vec<String>,
    /// Where results (JSON, markdown, SVG) are written.
    #[arg(long, global = true, default_value = "docs/bench")]
    out_dir: PathBuf,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
enum StoreKind {
    Sqlite,
    Postgres,
}

#[derive(Subcommand, Clone, PartialEq, Eq)]
enum Cmd {
    /// All scenarios.
    All,
    /// 1. Mixed sessions.
    Mixed,
    /// 2. Idle connections.
    Idle,
    /// 3. Delivery (APPEND rate).
    Delivery,
    /// 4. Large mailbox.
    Large,
    /// 5. Storage on disk.
    Storage,
    /// 6. LMTP delivery (messages/s with 1 and 3 recipients).
    Lmtp,
    /// 7. The standard IMAP stress mix (imaptest's states), 50 and 200 clients.
    Stress,
    /// 8. SORT and THREAD on one big mailbox (--large messages, default 100000).
    Sort,
    /// Memory at rest (issue 11): --rest-accounts distinct accounts (default 1000, argon2id
    /// hashes) each LOGIN, SELECT, LOGOUT (the first 100 one at a time, then 50 at a time).
    Rest,
    /// Login storm (issue 11): --storm-accounts distinct accounts (default 5000, argon2id
    /// hashes) connect at once, LOGIN, SELECT, IDLE.
    Storm,
    /// Merge results JSON files of several runs (later files win) into one table and plots.
    Merge {
        /// results*.json files, in order.
        files: Vec<PathBuf>,
        /// Base name of the merged files in --out-dir.
        #[arg(long, default_value = "results-merged")]
        name: String,
    },
    #[command(hide = true)]
    IdleWorker {
        #[arg(long)]
        addr: std::net::SocketAddr,
        #[arg(long)]
        src: std::net::IpAddr,
        #[arg(long)]
        first: usize,
        #[arg(long)]
        count: usize,
        #[arg(long)]
        users: u32,
        #[arg(long, value_enum, default_value = "plain")]
        mode: idle_tls::IdleMode,
        #[arg(long)]
        warm: bool,
    },
}

struct Ctx {
    cli: Cli,
    corpus: Arc<corpus::Corpus>,
    report: Report,
    mailkeep_ok: bool,
}

impl Ctx {
    fn targets(&self) -> Vec<Kind> {
        let mut v = Vec::new();
        if self.cli.variants.iter().any(|x| x == "default") {
            v.push(Kind::DovecotDefault);
        }
        if self.cli.variants.iter().any(|x| x == "perf") {
            v.push(Kind::DovecotPerf);
        }
        if !self.cli.dovecot_only && self.mailkeep_ok {
            for st in &self.cli.store {
                match st {
                    StoreKind::Sqlite => v.push(Kind::Mailkeep),
                    StoreKind::Postgres => {
                        v.extend(self.cli.nodes.iter().map(|n| Kind::MailkeepPg(*n)))
                    }
                }
            }
        }
        v
    }

    async fn start(&mut self, kind: Kind, max_conns: usize) -> Option<Server> {
        self.start_with(kind, max_conns, None, 0).await
    }

    async fn start_with(
        &mut self,
        kind: Kind,
        max_conns: usize,
        lmtp: Option<usize>,
        bulk_accounts: usize,
    ) -> Option<Server> {
        let o = servers::Options {
            mailkeep_bin: self.cli.mailkeep_bin.clone(),
            max_conns,
            dovecot_extra: self.cli.dovecot_extra.clone(),
            lmtp,
            pg_shared_buffers: self.cli.pg_shared_buffers.clone(),
            pg_pool_size: self.cli.pg_pool_size,
            pin: self.cli.pin.clone(),
            bulk_accounts,
        };
        match Server::start(kind, &o).await {
            Ok(s) => Some(s),
            Err(e) => {
                let msg = format!("{} skipped: {e:#}", kind.name());
                println!("  {msg}");
                if kind == Kind::Mailkeep {
                    self.mailkeep_ok = false;
                }
                if !kind.is_dovecot() {
                    self.report.notes.push(format!(
                        "{} not measured in this run ({e:#}).",
                        if kind == Kind::Mailkeep {
                            "Mailkeep"
                        } else {
                            kind.name()
                        }
                    ));
                } else {
                    self.report.notes.push(msg);
                }
                None
            }
        }
    }

    fn record(&mut self, kind: Kind, what: &str, r: Result<Vec<Metric>>) {
        match r {
            Ok(ms) => ms.into_iter().for_each(|x| self.report.add(kind.name(), x)),
            Err(e) => {
                let msg = format!("{} {what} failed: {e:#}", kind.name());
                eprintln!("  {msg}");
                self.report.notes.push(msg);
            }
        }
    }
}

fn pick<T: Clone>(v: &Option<T>, quick: bool, q: T, full: T) -> T {
    v.clone().unwrap_or(if quick { q } else { full })
}

async fn scenario(ctx: &mut Ctx, sc: Cmd) -> Result<()> {
    let q = ctx.cli.quick;
    for kind in ctx.targets() {
        println!("== {} on {}", sc_name(&sc), kind.name());
        match sc {
            Cmd::Mixed => {
                let preload = pick(&ctx.cli.preload, q, 20, 100);
                let dur = Duration::from_secs(pick(&ctx.cli.duration, q, 5, 20));
                let clients = pick(&ctx.cli.clients, q, vec![10, 50], vec![10, 50, 200]);
                let Some(srv) = ctx
                    .start(kind, clients.iter().max().copied().unwrap_or(0) + 50)
                    .await
                else {
                    continue;
                };
                let srv = Arc::new(srv);
                if let Err(e) = load::preload_all(&srv, &ctx.corpus, preload).await {
                    ctx.record(kind, "mixed preload", Err(e));
                    continue;
                }
                for n in clients {
                    let r = load::mixed(&srv, n, dur, preload).await;
                    ctx.record(kind, "mixed", r);
                }
            }
            Cmd::Idle => {
                if ctx.cli.idle_mode != idle_tls::IdleMode::Plain && kind.is_dovecot() {
                    // The benchmark's Dovecot has no TLS (nor imap_zlib) configured.
                    println!("  {}: TLS idle modes are Mailkeep only", kind.name());
                    continue;
                }
                for k in pick(&ctx.cli.idle, q, vec![300], vec![1000, 5000, 15000]) {
                    let Some(srv) = ctx.start(kind, k + 100).await else {
                        continue;
                    };
                    let (mode, warm) = (ctx.cli.idle_mode, ctx.cli.idle_warm);
                    let r = idle::run(&srv, k, ctx.cli.idle_users, mode, warm).await;
                    ctx.record(kind, "idle", r);
                }
            }
            Cmd::Delivery => {
                let total = pick(&ctx.cli.delivery, q, 1000, 10_000);
                let Some(srv) = ctx.start(kind, 100).await else {
                    continue;
                };
                let srv = Arc::new(srv);
                for clients in [1, 16] {
                    let r = load::delivery(&srv, clients, total).await;
                    ctx.record(kind, "delivery", r);
                }
            }
            Cmd::Large => {
                let n = pick(&ctx.cli.large, q, 5000, 100_000);
                let Some(srv) = ctx.start(kind, 100).await else {
                    continue;
                };
                let r = large::run(&srv, &ctx.corpus, n).await;
                ctx.record(kind, "large", r);
            }
            Cmd::Sort => {
                let n = pick(&ctx.cli.large, q, 5000, 100_000);
                let Some(srv) = ctx.start(kind, 100).await else {
                    continue;
                };
                let r = sort::run(&srv, &ctx.corpus, n).await;
                ctx.record(kind, "sort", r);
            }
            Cmd::Storage => {
                let n = pick(&ctx.cli.storage, q, 1000, 10_000);
                let Some(srv) = ctx.start(kind, 100).await else {
                    continue;
                };
                let r = load::storage(&Arc::new(srv), &ctx.corpus, n)
                    .await
                    .map(|(ms, raw)| {
                        println!("  raw corpus: {raw} bytes");
                        ms
                    });
                ctx.record(kind, "storage", r);
            }
            Cmd::Lmtp => {
                let dur = Duration::from_secs(pick(&ctx.cli.duration, q, 5, 20));
                let clients = ctx.cli.lmtp_clients.max(1);
                let Some(srv) = ctx.start_with(kind, clients + 50, Some(clients), 0).await else {
                    continue;
                };
                let srv = Arc::new(srv);
                // Deliveries per user over the runs on this server, checked after each.
                let mut expected = std::collections::BTreeMap::new();
                for r in ctx.cli.lmtp_rcpts.clone() {
                    // Other work on the machine takes cores from both sides: say how much.
                    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
                    let load = load.split_whitespace().next().unwrap_or("?");
                    ctx.report.notes.push(format!(
                        "lmtp {} R={r}: 1-minute load average {load} at the start.",
                        kind.name()
                    ));
                    let r = lmtp::run(&srv, clients, r.max(1), dur, &mut expected).await;
                    ctx.record(kind, "lmtp", r);
                }
            }
            Cmd::Stress => {
                let preload = pick(&ctx.cli.preload, q, 20, 100);
                let dur = Duration::from_secs(pick(&ctx.cli.duration, q, 5, 20));
                let clients = pick(&ctx.cli.clients, q, vec![50], vec![50, 200]);
                let Some(srv) = ctx
                    .start(kind, clients.iter().max().copied().unwrap_or(0) + 50)
                    .await
                else {
                    continue;
                };
                let srv = Arc::new(srv);
                if let Err(e) = stress::preload_all(&srv, &ctx.corpus, preload).await {
                    ctx.record(kind, "stress preload", Err(e));
                    continue;
                }
                for n in clients {
                    let r = stress::run(&srv, &ctx.corpus, n, dur).await;
                    ctx.record(kind, "stress", r);
                }
            }
            Cmd::Rest => {
                let n = pick(&ctx.cli.rest_accounts, q, 200, 1000).max(1);
                let Some(srv) = ctx.start_with(kind, 100, None, n).await else {
                    continue;
                };
                let r = storm::rest(&srv, n).await;
                ctx.record(kind, "rest", r);
            }
            Cmd::Storm => {
                let n = pick(&ctx.cli.storm_accounts, q, 300, 5000).max(1);
                let Some(srv) = ctx.start_with(kind, n + 100, None, n).await else {
                    continue;
                };
                let r = storm::storm(&srv, n).await;
                ctx.record(kind, "storm", r);
            }
            _ => {}
        }
    }
    Ok(())
}

fn sc_name(sc: &Cmd) -> &'static str {
    match sc {
        Cmd::Mixed => "mixed sessions",
        Cmd::Idle => "idle connections",
        Cmd::Delivery => "delivery",
        Cmd::Large => "large mailbox",
        Cmd::Storage => "storage",
        Cmd::Lmtp => "lmtp",
        Cmd::Stress => "stress",
        Cmd::Sort => "sort and thread",
        Cmd::Rest => "rest",
        Cmd::Storm => "storm",
        _ => "all",
    }
}

fn sh(cmd: &str) -> String {
    std::process::Command::new("sh")
        .args(["-c", cmd])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

async fn bench(cli: Cli) -> Result<()> {
    let corpus_dir = cli.corpus.clone().or_else(|| {
        cli.real_corpus.then(|| {
            [
                PathBuf::from("tests/corpus/messages"),
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus/messages"),
            ]
            .into_iter()
            .find(|p| p.is_dir())
        })?
    });
    let corpus = match &corpus_dir {
        Some(d) => corpus::Corpus::from_dir(d)?,
        None => corpus::Corpus::generated(),
    };
    let sc = cli.cmd.clone();
    let mut ctx = Ctx {
        cli,
        corpus: Arc::new(corpus),
        report: Report::default(),
        mailkeep_ok: true,
    };
    if !ctx.cli.dovecot_only && !ctx.cli.mailkeep_bin.exists() {
        let msg = format!(
            "Mailkeep skipped: binary {} not found",
            ctx.cli.mailkeep_bin.display()
        );
        println!("{msg}");
        ctx.report.notes.push(msg);
        ctx.mailkeep_ok = false;
    }
    let all = [
        Cmd::Mixed,
        Cmd::Idle,
        Cmd::Delivery,
        Cmd::Large,
        Cmd::Storage,
        Cmd::Lmtp,
        Cmd::Stress,
        Cmd::Sort,
        Cmd::Rest,
        Cmd::Storm,
    ];
    for s in all.into_iter().filter(|s| sc == Cmd::All || s == &sc) {
        scenario(&mut ctx, s).await?;
    }
    let meta = format!(
        "Run {} ({}), corpus: {}. Machine: {} CPUs, {} memory, kernel {}; {}.",
        sh("date -u '+%Y-%m-%d %H:%M UTC'"),
        if ctx.cli.quick {
            "--quick"
        } else {
            "full sizes"
        },
        ctx.corpus.describe(),
        sh("nproc"),
        sh("free -h | awk '/Mem:/ {print $2}'"),
        sh("uname -r"),
        sh("dovecot --version | sed 's/^/Dovecot /'")
    );
    ctx.report.notes.insert(0, meta);
    if ctx.cli.store.contains(&StoreKind::Postgres) {
        let pg = sh("postgres --version || pg_config --version");
        ctx.report.notes.insert(
            1,
            format!(
                "Mailkeep targets: `mailkeep` is the embedded store (SQLite, one node); \
                 `mailkeep-pg-Nnode(s)` is N `mailkeep serve` nodes sharing one throwaway \
                 PostgreSQL ({pg}; unix socket, fsync = on, synchronous_commit = on, \
                 shared_buffers = {}, pool_size {} per node{}), clients dealt out to the nodes \
                 round-robin. CPU figures are in cores (CPU seconds per second of the run): \
                 Mailkeep (all nodes), PostgreSQL (postmaster and backends), the load \
                 generator, and other processes on the machine.",
                ctx.cli.pg_shared_buffers,
                ctx.cli
                    .pg_pool_size
                    .map_or("16 (default)".to_string(), |n| n.to_string()),
                if ctx.cli.pin.is_empty() {
                    String::new()
                } else {
                    format!("; nodes pinned with taskset -c {}", ctx.cli.pin.join(" / "))
                }
            ),
        );
    }
    let md = ctx.report.markdown();
    println!("\n{md}");
    let out = &ctx.cli.out_dir;
    std::fs::create_dir_all(out)?;
    let suffix = if ctx.cli.quick { "-quick" } else { "" };
    let name = if sc == Cmd::All {
        "results".to_string()
    } else {
        format!("results-{}", sc_name(&sc).replace(' ', "-"))
    };
    std::fs::write(out.join(format!("{name}{suffix}.md")), &md)?;
    std::fs::write(out.join(format!("{name}{suffix}.json")), ctx.report.json())?;
    for (id, svg) in ctx.report.svgs() {
        std::fs::write(out.join(format!("{id}{suffix}.svg")), svg)?;
    }
    println!("results written to {}", out.display());
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Cmd::IdleWorker {
        addr,
        src,
        first,
        count,
        users,
        mode,
        warm,
    } = cli.cmd
    {
        return rt.block_on(idle::worker(addr, src, first, count, users, mode, warm));
    }
    if let Cmd::Merge { files, name } = &cli.cmd {
        return merge::run(files, &cli.out_dir, name);
    }
    rt.spawn(async {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: stopping servers");
            servers::stop_all();
            std::process::exit(130);
        }
    });
    let r = rt.block_on(bench(cli));
    servers::stop_all();
    r
}
