//! Starting, measuring and stopping the servers under test (Dovecot variants, Mailkeep).

use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "pass";
pub const USERS: u32 = 100;
const MAIL_UID: u32 = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    DovecotDefault,
    DovecotPerf,
    /// Mailkeep on its embedded store (SQLite in the data directory).
    Mailkeep,
    /// N Mailkeep nodes sharing one throwaway PostgreSQL (`--store postgres --nodes N`).
    MailkeepPg(u8),
}

/// The most nodes `--nodes` takes.
pub const MAX_NODES: u8 = 8;

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::DovecotDefault => "dovecot-default",
            Kind::DovecotPerf => "dovecot-perf",
            Kind::Mailkeep => "mailkeep",
            Kind::MailkeepPg(n) => {
                const NAMES: [&str; MAX_NODES as usize] = [
                    "mailkeep-pg-1node",
                    "mailkeep-pg-2nodes",
                    "mailkeep-pg-3nodes",
                    "mailkeep-pg-4nodes",
                    "mailkeep-pg-5nodes",
                    "mailkeep-pg-6nodes",
                    "mailkeep-pg-7nodes",
                    "mailkeep-pg-8nodes",
                ];
                NAMES[(n.clamp(1, MAX_NODES) - 1) as usize]
            }
        }
    }
    pub fn is_dovecot(self) -> bool {
        matches!(self, Kind::DovecotDefault | Kind::DovecotPerf)
    }
    /// Mailkeep nodes started (0 for Dovecot).
    pub fn nodes(self) -> usize {
        match self {
            Kind::Mailkeep => 1,
            Kind::MailkeepPg(n) => n.max(1) as usize,
            _ => 0,
        }
    }
}

enum Stopper {
    Dovecot(PathBuf),
    Pid(u32),
    /// A PostgreSQL data directory, stopped with `pg_ctl stop`.
    Postgres(PathBuf),
}

/// Everything started, so that ctrl-c / errors can stop it.
static RUNNING: Mutex<Vec<Stopper>> = Mutex::new(Vec::new());
/// Temporary directories not yet removed.
static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn keep_dirs() -> bool {
    std::env::var_os("MAILKEEP_BENCH_KEEP").is_some()
}

fn remove_dir(dir: &Path) {
    if let Ok(mut v) = DIRS.lock() {
        v.retain(|d| d != dir);
    }
    if keep_dirs() {
        return;
    }
    // Exiting server processes may still write a file or two: retry.
    for _ in 0..5 {
        if std::fs::remove_dir_all(dir).is_ok() || !dir.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn stop_one(s: &Stopper) {
    match s {
        Stopper::Dovecot(conf) => {
            let _ = Command::new("doveadm")
                .arg("-c")
                .arg(conf)
                .arg("stop")
                .stderr(Stdio::null())
                .status();
        }
        Stopper::Pid(pid) => {
            let _ = Command::new("kill")
                .arg(pid.to_string())
                .stderr(Stdio::null())
                .status();
        }
        Stopper::Postgres(dir) => crate::pg::stop_dir(dir),
    }
}

/// Stops every server still running (used on ctrl-c and on error).
pub fn stop_all() {
    let list: Vec<Stopper> = RUNNING
        .lock()
        .map(|mut v| v.drain(..).collect())
        .unwrap_or_default();
    // Latest first: nodes before the database they use.
    for s in list.iter().rev() {
        stop_one(s);
    }
    let dirs: Vec<PathBuf> = DIRS.lock().map(|v| v.clone()).unwrap_or_default();
    for d in &dirs {
        remove_dir(d);
    }
}

pub struct Options {
    pub mailkeep_bin: PathBuf,
    /// Connections the server must accept at once (sizes Dovecot's limits).
    pub max_conns: usize,
    /// Extra lines appended to the generated Dovecot configuration.
    pub dovecot_extra: String,
    /// Also listen for LMTP (on another free loopback port); the number is the expected
    /// concurrent LMTP clients (Dovecot perf keeps that many `lmtp` processes ready).
    pub lmtp: Option<usize>,
    /// `--store postgres`: PostgreSQL's shared_buffers.
    pub pg_shared_buffers: String,
    /// `--store postgres`: each node's `[store] pool_size` (None: Mailkeep's default).
    pub pg_pool_size: Option<usize>,
    /// Each node's CPU list for `taskset -c` (node i gets entry i modulo the list), if any.
    pub pin: Vec<String>,
    /// Also create `bulkuser1..N` with argon2id hashes (see `accounts`), on both servers.
    pub bulk_accounts: usize,
}

pub struct Server {
    pub kind: Kind,
    /// The first node's IMAP address (preloading goes there).
    pub addr: SocketAddr,
    /// Every node's IMAP address; [`Server::next_addr`] deals them out round-robin.
    pub addrs: Vec<SocketAddr>,
    next: std::sync::atomic::AtomicUsize,
    /// The LMTP listener, if started with one.
    pub lmtp_addr: Option<SocketAddr>,
    pub dir: PathBuf,
    /// Directory holding the mail (Dovecot: Maildirs; Mailkeep: data_dir).
    pub mail_dir: PathBuf,
    conf: PathBuf,
    /// Mailkeep nodes (empty for Dovecot).
    children: Vec<Child>,
    /// `--store postgres`: the database the nodes share.
    pg: Option<crate::pg::Postgres>,
}

pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn temp_dir(kind: Kind) -> Result<PathBuf> {
    let base = std::env::var_os("MAILKEEP_BENCH_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let d = base.join(format!(
        "mkbench-{}-{}-{}",
        kind.name(),
        std::process::id(),
        free_port()?
    ));
    std::fs::create_dir_all(&d)?;
    if let Ok(mut v) = DIRS.lock() {
        v.push(d.clone());
    }
    Ok(d)
}

/// The LMTP part of the Dovecot configuration (lmtp scenario only): a TCP listener, the
/// recipient's local part as the user name (`testuserN@example.org` is `testuserN`, looked up
/// in the passwd-file through the static userdb), and in perf mode `clients` processes
/// started in advance. `mail_fsync` stays at its default (`optimized`: each delivered file
/// is fsynced before the 250).
pub fn dovecot_lmtp_conf(lmtp_port: u16, perf: bool, clients: usize) -> String {
    let extra = if perf {
        format!("  process_min_avail = {clients}\n")
    } else {
        String::new()
    };
    format!(
        "protocols = imap lmtp\n\
         protocol lmtp {{\n  auth_username_format = %Ln\n}}\n\
         service lmtp {{\n  inet_listener lmtp {{\n    address = 127.0.0.1\n    port = {lmtp_port}\n  }}\n{extra}}}\n"
    )
}

/// The Dovecot configuration used by the benchmark (both variants).
pub fn dovecot_conf(dir: &Path, port: u16, perf: bool, max_conns: usize) -> String {
    let d = dir.display();
    let (login_extra, imap_extra) = if perf {
        (
            "  service_count = 0\n  process_min_avail = 2\n",
            "  service_count = 100\n  process_min_avail = 4\n",
        )
    } else {
        ("", "")
    };
    // Built-in defaults: default_client_limit = 1000, imap process_limit = 1024. Raised only
    // when a test needs more simultaneous connections than that.
    let limits = if max_conns > 900 {
        format!(
            "default_client_limit = {}\ndefault_process_limit = {}\n",
            max_conns + 1000,
            max_conns + 500
        )
    } else {
        String::new()
    };
    let imap_limit = if max_conns > 900 {
        format!("  process_limit = {}\n", max_conns + 500)
    } else {
        String::new()
    };
    format!(
        "instance_name = mkbench-{port}\nbase_dir = {d}/run\nstate_dir = {d}/state\nprotocols = imap\n\
         listen = 127.0.0.1\nlog_path = {d}/log/dovecot.log\ninfo_log_path = {d}/log/info.log\n\
         ssl = no\ndisable_plaintext_auth = no\nauth_mechanisms = plain login\n\
         first_valid_uid = 8\nfirst_valid_gid = 8\nmail_location = maildir:{d}/mail/%u/Maildir\n{limits}\
         namespace inbox {{\n  inbox = yes\n  separator = /\n}}\n\
         passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/users\n}}\n\
         userdb {{\n  driver = static\n  args = uid=mail gid=mail home={d}/mail/%u\n}}\n\
         protocol imap {{\n  mail_max_userip_connections = 100000\n}}\n\
         service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n{login_extra}}}\n\
         service imap {{\n{imap_extra}{imap_limit}}}\n"
    )
}

impl Server {
    pub async fn start(kind: Kind, o: &Options) -> Result<Server> {
        let dir = temp_dir(kind)?;
        let port = free_port()?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        let lmtp_addr: Option<SocketAddr> = match o.lmtp {
            Some(_) => Some(format!("127.0.0.1:{}", free_port()?).parse()?),
            None => None,
        };
        let mut srv = if kind.is_dovecot() {
            for sub in ["run", "state", "log", "mail"] {
                std::fs::create_dir_all(dir.join(sub))?;
            }
            std::os::unix::fs::chown(dir.join("mail"), Some(MAIL_UID), Some(MAIL_UID))?;
            let mut users: String = (1..=USERS)
                .map(|i| format!("testuser{i}:{{PLAIN}}{PASSWORD}::::::\n"))
                .collect();
            if o.bulk_accounts > 0 {
                // The same `{ARGON2ID}` hash strings Mailkeep imports.
                let f = crate::accounts::passwd_file(&dir, o.bulk_accounts)?;
                users.push_str(&std::fs::read_to_string(f)?);
            }
            std::fs::write(dir.join("users"), users)?;
            let conf = dir.join("dovecot.conf");
            let perf = kind == Kind::DovecotPerf;
            let mut text = dovecot_conf(&dir, port, perf, o.max_conns);
            if let (Some(clients), Some(la)) = (o.lmtp, lmtp_addr) {
                text.push_str(&dovecot_lmtp_conf(la.port(), perf, clients));
            }
            std::fs::write(&conf, format!("{text}{}\n", o.dovecot_extra))?;
            let st = Command::new("dovecot")
                .arg("-c")
                .arg(&conf)
                .status()
                .context("running dovecot")?;
            if !st.success() {
                bail!("dovecot -c {} failed", conf.display());
            }
            RUNNING
                .lock()
                .map_err(|_| anyhow::anyhow!("lock"))?
                .push(Stopper::Dovecot(conf.clone()));
            Server {
                kind,
                addr,
                lmtp_addr,
                mail_dir: dir.join("mail"),
                addrs: vec![addr],
                next: Default::default(),
                dir,
                conf,
                children: Vec::new(),
                pg: None,
            }
        } else {
            let bin = &o.mailkeep_bin;
            if !bin.exists() {
                bail!(
                    "Mailkeep binary {} not found (build it with cargo build --release)",
                    bin.display()
                );
            }
            let nodes = kind.nodes();
            let pg = match kind {
                Kind::MailkeepPg(_) => {
                    // Each node's pool plus its listener connection, and some to spare.
                    let pool = o.pg_pool_size.unwrap_or(16);
                    let pg = crate::pg::Postgres::start(
                        &dir.join("pg"),
                        &o.pg_shared_buffers,
                        nodes * (pool + 2) + 20,
                    )?;
                    RUNNING
                        .lock()
                        .map_err(|_| anyhow::anyhow!("lock"))?
                        .push(Stopper::Postgres(pg.dir.clone()));
                    Some(pg)
                }
                _ => None,
            };
            let store = match &pg {
                Some(pg) => {
                    let pool = o
                        .pg_pool_size
                        .map(|n| format!("pool_size = {n}\n"))
                        .unwrap_or_default();
                    format!(
                        "[store]\nbackend = \"postgres\"\nurl = \"{}\"\n{pool}",
                        pg.url()
                    )
                }
                None => String::new(),
            };
            let mut addrs = vec![addr];
            for _ in 1..nodes {
                addrs.push(format!("127.0.0.1:{}", free_port()?).parse()?);
            }
            // Node i: its own directory (data_dir, config, log), its own port; with
            // PostgreSQL all share the database. Node 1 listens for LMTP if asked.
            let mut confs = Vec::new();
            for (i, a) in addrs.iter().enumerate() {
                let ndir = if i == 0 {
                    dir.clone()
                } else {
                    let d = dir.join(format!("node{}", i + 1));
                    std::fs::create_dir_all(&d)?;
                    d
                };
                let data = ndir.join("data");
                let conf = ndir.join("mailkeep.toml");
                let lmtp = match lmtp_addr {
                    Some(la) if i == 0 => format!("[lmtp]\nlisten = [\"{la}\"]\n"),
                    _ => String::new(),
                };
                std::fs::write(
                    &conf,
                    format!(
                        // The idle scenario holds thousands of connections from a few 127.0.0.x
                        // addresses: far above the default per-IP limit.
                        "data_dir = \"{}\"\n[imap]\nlisten = [\"{a}\"]\n[imaps]\nlisten = []\n\
                         [limits]\nmax_connections_per_ip = 100000\nmax_connections_per_user = 0\nmax_connections_per_user_ip = 0\n{lmtp}{store}",
                        data.display()
                    ),
                )?;
                confs.push((ndir, conf));
            }
            let conf = confs[0].1.clone();
            if lmtp_addr.is_some() {
                // testuserN@example.org then resolves to the account testuserN.
                let out = Command::new(bin)
                    .args(["domain", "add", crate::lmtp::DOMAIN, "--config"])
                    .arg(&conf)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .output()?;
                if !out.status.success() {
                    bail!(
                        "`{} domain add` failed ({}): {}",
                        bin.display(),
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
            }
            // Accounts are in the store: with PostgreSQL, added once for every node.
            for i in 1..=USERS {
                let mut c = Command::new(bin)
                    .args(["user", "add", "--config"])
                    .arg(&conf)
                    .arg(format!("testuser{i}"))
                    .arg("--allow-weak-password")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()?;
                use std::io::Write;
                // The command may exit without reading stdin; its status tells.
                let _ = c
                    .stdin
                    .take()
                    .context("stdin")?
                    .write_all(format!("{PASSWORD}\n").as_bytes());
                let out = c.wait_with_output()?;
                if !out.status.success() {
                    bail!(
                        "`{} user add` failed ({}): {}",
                        bin.display(),
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
            }
            if o.bulk_accounts > 0 {
                // One bulk import: the argon2id hashes are stored as they are.
                let f = crate::accounts::passwd_file(&dir, o.bulk_accounts)?;
                let t = Instant::now();
                let out = Command::new(bin)
                    .args(["user", "import", "--config"])
                    .arg(&conf)
                    .arg("passwd-file")
                    .arg(&f)
                    .stdin(Stdio::null())
                    .output()?;
                let said = String::from_utf8_lossy(&out.stdout);
                if !out.status.success() || !said.contains(&format!("imported {}", o.bulk_accounts))
                {
                    bail!(
                        "`{} user import passwd-file` failed ({}): {} {}",
                        bin.display(),
                        out.status,
                        said.trim(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
                println!(
                    "  {} accounts imported in {:.1} s",
                    o.bulk_accounts,
                    t.elapsed().as_secs_f64()
                );
            }
            let mut children = Vec::new();
            for (i, (ndir, nconf)) in confs.iter().enumerate() {
                let log = std::fs::File::create(ndir.join("mailkeep.log"))?;
                let mut cmd = match o.pin.get(i % o.pin.len().max(1)) {
                    Some(cpus) => {
                        let mut c = Command::new("taskset");
                        c.args(["-c", cpus]).arg(bin);
                        c
                    }
                    None => Command::new(bin),
                };
                let child = cmd
                    .arg("serve")
                    .arg("--config")
                    .arg(nconf)
                    .stdout(log.try_clone()?)
                    .stderr(log)
                    .spawn()
                    .context("starting mailkeep serve")?;
                RUNNING
                    .lock()
                    .map_err(|_| anyhow::anyhow!("lock"))?
                    .push(Stopper::Pid(child.id()));
                children.push(child);
            }
            let mail_dir = match &pg {
                // The storage scenario's `du` then measures the database (WAL included).
                Some(pg) => pg.data(),
                None => dir.join("data"),
            };
            Server {
                kind,
                addr,
                addrs,
                next: Default::default(),
                lmtp_addr,
                mail_dir,
                dir,
                conf,
                children,
                pg,
            }
        };
        for a in srv.addrs.clone() {
            let t0 = Instant::now();
            loop {
                match tokio::time::timeout(
                    Duration::from_secs(2),
                    crate::imap::Conn::connect(a, None),
                )
                .await
                {
                    Ok(Ok(_)) => break,
                    _ if t0.elapsed() > Duration::from_secs(15) => {
                        srv.stop();
                        bail!("{} does not answer on {a}", kind.name());
                    }
                    _ => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
        for c in srv.children.iter_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                bail!("mailkeep exited: {st}");
            }
        }
        Ok(srv)
    }

    /// The next node's address, round-robin (as a TCP load balancer would deal out
    /// connections).
    pub fn next_addr(&self) -> SocketAddr {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.addrs[i % self.addrs.len()]
    }

    /// Root process ids of the server (Dovecot master / every mailkeep node).
    pub fn root_pids(&self) -> Vec<u32> {
        if !self.children.is_empty() {
            return self.children.iter().map(|c| c.id()).collect();
        }
        std::fs::read_to_string(self.dir.join("run/master.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .into_iter()
            .collect()
    }

    /// CPU seconds (user + system) used so far by the server's whole process tree,
    /// including its exited children that were waited for (cutime, cstime). PostgreSQL's
    /// are apart: [`Server::db_cpu_secs`].
    pub fn cpu_secs(&self) -> f64 {
        self.root_pids().into_iter().map(tree_cpu_secs).sum()
    }

    /// CPU seconds of the PostgreSQL server's processes (postmaster and its backends,
    /// including exited ones); 0 without PostgreSQL.
    pub fn db_cpu_secs(&self) -> f64 {
        self.pg
            .as_ref()
            .and_then(|p| p.pid())
            .map(tree_cpu_secs)
            .unwrap_or(0.0)
    }

    /// Whether the Mailkeep side runs on PostgreSQL.
    pub fn has_db(&self) -> bool {
        self.pg.is_some()
    }

    /// (process count, RSS bytes, PSS bytes) summed over the server's whole process tree.
    pub fn memory(&self) -> (usize, u64, u64) {
        tree_memory(&self.root_pids())
    }

    /// Maildir of a Dovecot user (for the direct-write fast path).
    pub fn maildir(&self, user: &str) -> Option<PathBuf> {
        self.kind
            .is_dovecot()
            .then(|| self.mail_dir.join(user).join("Maildir"))
    }

    pub fn stop(&mut self) {
        let mut stopped = Vec::new();
        if self.children.is_empty() {
            let s = Stopper::Dovecot(self.conf.clone());
            stop_one(&s);
            stopped.push(s);
        }
        for mut c in self.children.drain(..) {
            let s = Stopper::Pid(c.id());
            stop_one(&s);
            let _ = c.wait();
            stopped.push(s);
        }
        // The database after the nodes that use it.
        if let Some(mut pg) = self.pg.take() {
            pg.stop();
            stopped.push(Stopper::Postgres(pg.dir.clone()));
        }
        if let Ok(mut v) = RUNNING.lock() {
            v.retain(|x| {
                !stopped.iter().any(|me| match (x, me) {
                    (Stopper::Dovecot(a), Stopper::Dovecot(b)) => a == b,
                    (Stopper::Pid(a), Stopper::Pid(b)) => a == b,
                    (Stopper::Postgres(a), Stopper::Postgres(b)) => a == b,
                    _ => false,
                })
            });
        }
        remove_dir(&self.dir);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.dir.exists() {
            self.stop();
        }
    }
}

/// Clock ticks per second of /proc/*/stat times.
pub fn clk_tck() -> f64 {
    static TCK: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// CPU seconds (user + system, with waited-for children's) of `root`'s process tree.
pub fn tree_cpu_secs(root: u32) -> f64 {
    let mut ticks = 0u64;
    for p in process_tree(root) {
        if let Ok(st) = std::fs::read_to_string(format!("/proc/{p}/stat"))
            && let Some(close) = st.rfind(')')
        {
            // Fields 14-17 (utime, stime, cutime, cstime); the slice starts at field 3.
            ticks += st[close + 2..]
                .split_whitespace()
                .skip(11)
                .take(4)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    ticks as f64 / clk_tck()
}

/// CPU seconds the whole machine has spent busy (all but idle and iowait), from /proc/stat:
/// with the servers' and the load generator's, shows what other work took.
pub fn machine_busy_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(l) = s.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let v: Vec<u64> = l
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal [guest guest_nice, counted in user]
    let busy: u64 = v
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, x)| *x)
        .sum();
    busy as f64 / clk_tck()
}

/// (process count, RSS bytes, PSS bytes) summed over the process trees of `roots`, from
/// /proc/PID/smaps_rollup.
pub fn tree_memory(roots: &[u32]) -> (usize, u64, u64) {
    let pids: Vec<u32> = roots.iter().flat_map(|r| process_tree(*r)).collect();
    let (mut rss, mut pss) = (0, 0);
    for p in &pids {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")) {
            for l in s.lines() {
                let kb = |l: &str| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                if l.starts_with("Rss:") {
                    rss += kb(l) * 1024;
                } else if l.starts_with("Pss:") {
                    pss += kb(l) * 1024;
                }
            }
        }
    }
    (pids.len(), rss, pss)
}

/// All descendants of `root` (inclusive).
pub fn process_tree(root: u32) -> Vec<u32> {
    let mut parent = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Ok(st) = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                && let Some(close) = st.rfind(')')
                && let Some(pp) = st[close + 2..]
                    .split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u32>().ok())
            {
                parent.push((pid, pp));
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parent.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

/// Writes messages straight into a Dovecot Maildir (`cur/`), owned by the mail user.
pub fn write_maildir(maildir: &Path, msgs: impl Iterator<Item = Vec<u8>>) -> Result<usize> {
    for sub in ["", "cur", "new", "tmp"] {
        let p = maildir.join(sub);
        std::fs::create_dir_all(&p)?;
    }
    if let Some(home) = maildir.parent() {
        std::os::unix::fs::chown(home, Some(MAIL_UID), Some(MAIL_UID))?;
    }
    std::os::unix::fs::chown(maildir, Some(MAIL_UID), Some(MAIL_UID))?;
    for sub in ["cur", "new", "tmp"] {
        std::os::unix::fs::chown(maildir.join(sub), Some(MAIL_UID), Some(MAIL_UID))?;
    }
    let base = 1_700_000_000u64;
    let mut n = 0;
    for (i, m) in msgs.enumerate() {
        let f =
            maildir
                .join("cur")
                .join(format!("{}.M{i}P1.bench,S={}:2,", base + i as u64, m.len()));
        std::fs::write(&f, &m)?;
        std::os::unix::fs::chown(&f, Some(MAIL_UID), Some(MAIL_UID))?;
        n += 1;
    }
    Ok(n)
}

/// (apparent bytes, allocated bytes) of a directory tree, via du.
pub fn du(dir: &Path) -> Result<(u64, u64)> {
    let run = |args: &[&str]| -> Result<u64> {
        let out = Command::new("du").args(args).arg(dir).output()?;
        let s = String::from_utf8_lossy(&out.stdout);
        Ok(s.split_whitespace().next().unwrap_or("0").parse()?)
    };
    Ok((
        run(&["-s", "-B1", "--apparent-size"])?,
        run(&["-s", "-B1"])?,
    ))
}
