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
    Mailkeep,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::DovecotDefault => "dovecot-default",
            Kind::DovecotPerf => "dovecot-perf",
            Kind::Mailkeep => "mailkeep",
        }
    }
    pub fn is_dovecot(self) -> bool {
        self != Kind::Mailkeep
    }
}

enum Stopper {
    Dovecot(PathBuf),
    Pid(u32),
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
    }
}

/// Stops every server still running (used on ctrl-c and on error).
pub fn stop_all() {
    let list: Vec<Stopper> = RUNNING
        .lock()
        .map(|mut v| v.drain(..).collect())
        .unwrap_or_default();
    for s in &list {
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
}

pub struct Server {
    pub kind: Kind,
    pub addr: SocketAddr,
    /// The LMTP listener, if started with one.
    pub lmtp_addr: Option<SocketAddr>,
    pub dir: PathBuf,
    /// Directory holding the mail (Dovecot: Maildirs; Mailkeep: data_dir).
    pub mail_dir: PathBuf,
    conf: PathBuf,
    child: Option<Child>,
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
            let users: String = (1..=USERS)
                .map(|i| format!("testuser{i}:{{PLAIN}}{PASSWORD}::::::\n"))
                .collect();
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
                dir,
                conf,
                child: None,
            }
        } else {
            let bin = &o.mailkeep_bin;
            if !bin.exists() {
                bail!(
                    "Mailkeep binary {} not found (build it with cargo build --release)",
                    bin.display()
                );
            }
            let data = dir.join("data");
            let conf = dir.join("mailkeep.toml");
            let lmtp = lmtp_addr
                .map(|a| format!("[lmtp]\nlisten = [\"{a}\"]\n"))
                .unwrap_or_default();
            std::fs::write(
                &conf,
                format!(
                    // The idle scenario holds thousands of connections from a few 127.0.0.x
                    // addresses: far above the default per-IP limit.
                    "data_dir = \"{}\"\n[imap]\nlisten = [\"{addr}\"]\n[imaps]\nlisten = []\n\
                     [limits]\nmax_connections_per_ip = 100000\nmax_connections_per_user = 0\nmax_connections_per_user_ip = 0\n{lmtp}",
                    data.display()
                ),
            )?;
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
            let log = std::fs::File::create(dir.join("mailkeep.log"))?;
            let child = Command::new(bin)
                .arg("serve")
                .arg("--config")
                .arg(&conf)
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("starting mailkeep serve")?;
            RUNNING
                .lock()
                .map_err(|_| anyhow::anyhow!("lock"))?
                .push(Stopper::Pid(child.id()));
            Server {
                kind,
                addr,
                lmtp_addr,
                mail_dir: data,
                dir,
                conf,
                child: Some(child),
            }
        };
        let t0 = Instant::now();
        loop {
            match tokio::time::timeout(
                Duration::from_secs(2),
                crate::imap::Conn::connect(addr, None),
            )
            .await
            {
                Ok(Ok(_)) => break,
                _ if t0.elapsed() > Duration::from_secs(15) => {
                    srv.stop();
                    bail!("{} does not answer on {addr}", kind.name());
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        if let Some(c) = srv.child.as_mut()
            && let Ok(Some(st)) = c.try_wait()
        {
            bail!("mailkeep exited: {st}");
        }
        Ok(srv)
    }

    /// Root process ids of the server (Dovecot master / mailkeep).
    fn root_pid(&self) -> Option<u32> {
        match &self.child {
            Some(c) => Some(c.id()),
            None => std::fs::read_to_string(self.dir.join("run/master.pid"))
                .ok()?
                .trim()
                .parse()
                .ok(),
        }
    }

    /// CPU seconds (user + system) used so far by the server's whole process tree,
    /// including its exited children that were waited for (cutime, cstime).
    pub fn cpu_secs(&self) -> f64 {
        let Some(root) = self.root_pid() else {
            return 0.0;
        };
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

    /// (process count, RSS bytes, PSS bytes) summed over the server's whole process tree.
    pub fn memory(&self) -> (usize, u64, u64) {
        let Some(root) = self.root_pid() else {
            return (0, 0, 0);
        };
        let pids = process_tree(root);
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

    /// Maildir of a Dovecot user (for the direct-write fast path).
    pub fn maildir(&self, user: &str) -> Option<PathBuf> {
        self.kind
            .is_dovecot()
            .then(|| self.mail_dir.join(user).join("Maildir"))
    }

    pub fn stop(&mut self) {
        let me = if let Some(mut c) = self.child.take() {
            let s = Stopper::Pid(c.id());
            stop_one(&s);
            let _ = c.wait();
            s
        } else {
            let s = Stopper::Dovecot(self.conf.clone());
            stop_one(&s);
            s
        };
        if let Ok(mut v) = RUNNING.lock() {
            v.retain(|x| match (x, &me) {
                (Stopper::Dovecot(a), Stopper::Dovecot(b)) => a != b,
                (Stopper::Pid(a), Stopper::Pid(b)) => a != b,
                _ => true,
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
