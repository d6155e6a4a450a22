//! Mailkeep's network side: listeners, TLS, one task per connection, limits, shutdown.
//!
//! # Layout
//! - [`config`]: the TOML configuration (every key has a default).
//! - [`tls`]: rustls setup; a self-signed certificate is generated on first start.
//! - [`Server`] (this file): binds the listeners, accepts connections, enforces the connection
//!   limits, and stops them all on shutdown.
//! - `conn`: one connection's task; reads commands (lines, literals, spooling), runs the
//!   session, follows its flow (STARTTLS, SASL, IDLE).
//! - `stream`: plain/TLS stream and the shrinking read buffer.
//!
//! Command logic lives in `mailkeep-session`; this crate never interprets a command.
#![forbid(unsafe_code)]

pub mod certs;
mod compress;
pub mod config;
mod conn;
mod lmtp;
mod pop3;
mod stream;
pub mod tls;
pub mod user_limits;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use mailkeep_store::MailStore;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub use config::Config;

/// What every connection shares.
pub(crate) struct Shared {
    pub config: Config,
    pub store: Arc<dyn MailStore>,
    pub tls: Option<tls::Tls>,
    pub spool_dir: PathBuf,
    pub shutdown: watch::Receiver<bool>,
    /// `limits.max_connections`, lowered to what the open-file limit leaves.
    max_connections: usize,
    counts: Mutex<Counts>,
    /// "connection refused" warnings, at most one a second.
    refused_log: Mutex<LogLimiter>,
    /// POP3 maildrop locks: one POP3 session per account.
    pub pop3_maildrops: Arc<mailkeep_pop3::Maildrops>,
    /// Failed logins per source and per account, across IMAP and POP3 connections.
    pub throttle: Arc<mailkeep_auth::Throttle>,
    /// IMAP sessions per account and per account and address.
    pub user_limits: Arc<user_limits::UserLimits>,
    /// `[auth.oauth]`: the issuer whose tokens log in (OAUTHBEARER, XOAUTH2).
    pub oauth: Option<Arc<mailkeep_auth::oauth::Validator>>,
    /// SORT orders and THREAD answers kept for every IMAP session.
    pub orders: Arc<mailkeep_session::orders::OrderCache>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Which protocol a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    Imap,
    Imaps,
    Pop3,
    Pop3s,
}

impl std::fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ListenerKind::Imap => "imap",
            ListenerKind::Imaps => "imaps",
            ListenerKind::Pop3 => "pop3",
            ListenerKind::Pop3s => "pop3s",
        })
    }
}

/// A bound, not yet running server.
pub struct Server {
    shared: Arc<Shared>,
    listeners: Vec<(ListenerKind, TcpListener)>,
    lmtp: lmtp::Listeners,
    shutdown_tx: watch::Sender<bool>,
}

impl Server {
    /// Load TLS and bind every listener (port 0 picks a free port: see [`Server::local_addrs`]).
    pub async fn bind(config: Config, store: Arc<dyn MailStore>) -> Result<Server> {
        let tls = tls::load(&config.tls, &config.data_dir)?;
        tracing::info!(fingerprint = %tls.fingerprint(), cert = %tls.cert_path.display(), "TLS certificate (SHA-256)");
        let spool_dir = config.data_dir.join("spool");
        std::fs::create_dir_all(&spool_dir)
            .with_context(|| format!("creating {}", spool_dir.display()))?;
        // Spool files left by a crash are garbage: their commands never got an answer.
        if let Ok(entries) = std::fs::read_dir(&spool_dir) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let mut listeners = Vec::new();
        for (kind, addrs) in [
            (ListenerKind::Imap, &config.imap.listen),
            (ListenerKind::Imaps, &config.imaps.listen),
            (ListenerKind::Pop3, &config.pop3.listen),
            (ListenerKind::Pop3s, &config.pop3s.listen),
        ] {
            for addr in addrs {
                let l = listen(*addr).with_context(|| format!("listening on {addr} ({kind})"))?;
                listeners.push((kind, l));
            }
        }
        let throttle = Arc::new(mailkeep_auth::Throttle::new(
            config.auth.throttle().map_err(anyhow::Error::msg)?,
        ));
        let oauth = match &config.auth.oauth {
            Some(o) => {
                let jwks = std::fs::read_to_string(&o.jwks_file).with_context(|| {
                    format!("reading [auth.oauth] jwks_file {}", o.jwks_file.display())
                })?;
                let v = mailkeep_auth::oauth::Validator::from_jwks(
                    &jwks,
                    &o.issuer,
                    &o.audience,
                    &o.username_claim,
                )
                .map_err(|e| anyhow::anyhow!("[auth.oauth]: {e}"))?;
                Some(Arc::new(v))
            }
            None => None,
        };
        let max_connections = connection_cap(config.limits.max_connections);
        let limits_per_user = (
            config.limits.max_connections_per_user,
            config.limits.max_connections_per_user_ip,
        );
        let lmtp = lmtp::Listeners::bind(&config.lmtp.listen).await?;
        let (shutdown_tx, shutdown) = watch::channel(false);
        let shared = Arc::new(Shared {
            config,
            store,
            tls: Some(tls),
            spool_dir,
            shutdown,
            max_connections,
            counts: Mutex::new(Counts::default()),
            refused_log: Mutex::new(LogLimiter::default()),
            pop3_maildrops: mailkeep_pop3::Maildrops::new(),
            throttle,
            orders: Arc::default(),
            user_limits: Arc::new(user_limits::UserLimits::new(
                limits_per_user.0,
                limits_per_user.1,
            )),
            oauth,
        });
        Ok(Server {
            shared,
            listeners,
            lmtp,
            shutdown_tx,
        })
    }

    /// The addresses actually bound.
    pub fn local_addrs(&self) -> Vec<(ListenerKind, SocketAddr)> {
        self.listeners
            .iter()
            .filter_map(|(k, l)| l.local_addr().ok().map(|a| (*k, a)))
            .collect()
    }

    /// The LMTP listeners: `host:port` (the port actually bound) or a Unix socket's path.
    pub fn lmtp_addrs(&self) -> Vec<String> {
        self.lmtp.addrs()
    }

    /// The TLS certificate's SHA-256 fingerprint.
    pub fn tls_fingerprint(&self) -> Option<String> {
        self.shared.tls.as_ref().map(|t| t.fingerprint())
    }

    /// Accept connections until `shutdown` completes, then tell every connection to end.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        for (kind, listener) in self.listeners {
            tasks.spawn(accept_loop(self.shared.clone(), kind, listener));
        }
        let sockets = self.lmtp.spawn(&self.shared, &mut tasks);
        let reload = tokio::spawn(reload_on_hangup(self.shared.clone()));
        shutdown.await;
        reload.abort();
        tracing::info!("shutting down");
        let _ = self.shutdown_tx.send(true);
        tasks.abort_all();
        // Give connections a moment to send their BYE.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        while self.shared.counts.lock().map(|c| c.total).unwrap_or(0) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        for path in sockets {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }
}

/// Reads the TLS certificates again on each SIGHUP (renewed by certbot, say). Handshakes after
/// it get the new ones; open sessions keep theirs. A failed reload keeps the old certificates.
async fn reload_on_hangup(shared: Arc<Shared>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Some(tls) = shared.tls.as_ref() else {
        return;
    };
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGHUP: TLS certificates will not be reloaded");
            return;
        }
    };
    while hangup.recv().await.is_some() {
        match tls.certs.reload() {
            Ok(()) => tracing::info!(
                fingerprints = ?tls.certs.fingerprints(),
                "SIGHUP: TLS certificates reloaded"
            ),
            Err(e) => tracing::error!(
                error = format!("{e:#}"),
                "SIGHUP: TLS certificates not reloaded, the old ones stay in use"
            ),
        }
    }
}

/// File descriptors kept free of connections (the store's database and blob files, spool
/// files, listeners, logs): an eighth of the limit, at least 64.
fn fd_reserve(nofile: u64) -> u64 {
    (nofile / 8).max(64)
}

/// Raise the open-file limit to its hard limit and return how many connections it leaves room
/// for: `configured`, or less when the limit is lower (logged).
fn connection_cap(configured: usize) -> usize {
    let nofile = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => {
            tracing::info!(nofile = n, "open-file limit");
            n
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            match rlimit::getrlimit(rlimit::Resource::NOFILE) {
                Ok((soft, _)) => soft,
                Err(_) => return configured,
            }
        }
    };
    let room = nofile.saturating_sub(fd_reserve(nofile));
    let cap = usize::try_from(room).unwrap_or(usize::MAX).min(configured);
    if cap < configured {
        tracing::warn!(
            configured,
            max_connections = cap,
            nofile,
            "max_connections lowered to fit the open-file limit"
        );
    }
    cap
}

/// Lets a warning through at most once per interval and counts the ones held back, so a flood
/// (thousands of failed accepts while out of file descriptors) cannot flood the log.
struct LogLimiter {
    last: Option<std::time::Instant>,
    suppressed: u64,
    interval: std::time::Duration,
}

impl Default for LogLimiter {
    fn default() -> Self {
        LogLimiter {
            last: None,
            suppressed: 0,
            interval: std::time::Duration::from_secs(1),
        }
    }
}

impl LogLimiter {
    /// `Some(number suppressed since the last one)` when this event may be logged.
    fn allow(&mut self, now: std::time::Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < self.interval)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// The accept queue asked of the kernel, which caps it at `net.core.somaxconn` (4096 on
/// current Linux). tokio's `TcpListener::bind` asks for 1024: 5,000 clients reconnecting at once
/// (issue 11's login storm) overflowed it, and once the kernel answers with SYN cookies a full
/// queue drops the handshake's last ACK: the client believes it is connected and waits for a
/// greeting that never comes (2,256 of 5,000 in the benchmark).
const LISTEN_BACKLOG: u32 = 65_535;

/// A listening socket as `TcpListener::bind` makes it (SO_REUSEADDR), with [`LISTEN_BACKLOG`].
fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let sock = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(LISTEN_BACKLOG)
}

async fn accept_loop(shared: Arc<Shared>, kind: ListenerKind, listener: TcpListener) {
    let mut accept_log = LogLimiter::default();
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and similar: wait instead of spinning.
                if let Some(suppressed) = accept_log.allow(std::time::Instant::now()) {
                    tracing::warn!(error = %e, suppressed, "accept failed");
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let Some(guard) = ConnGuard::admit(&shared, peer.ip()) else {
            tokio::spawn(refuse(tcp, kind));
            continue;
        };
        tracing::info!(%peer, listener = %kind, "connect");
        let shared = shared.clone();
        tokio::spawn(async move {
            let _guard = guard;
            // Each protocol's future in a box of its own size: the task is as big as its
            // largest variant, and POP3's would make every IMAP connection pay for it.
            match kind {
                ListenerKind::Imap | ListenerKind::Imaps => {
                    let imaps = kind == ListenerKind::Imaps;
                    Box::pin(conn::serve(shared.clone(), tcp, peer, imaps)).await
                }
                ListenerKind::Pop3 | ListenerKind::Pop3s => {
                    let pop3s = kind == ListenerKind::Pop3s;
                    Box::pin(pop3::serve(shared.clone(), tcp, peer, pop3s)).await
                }
            }
        });
    }
}

async fn refuse(mut tcp: TcpStream, kind: ListenerKind) {
    let text: &[u8] = match kind {
        ListenerKind::Pop3 | ListenerKind::Pop3s => {
            b"-ERR [SYS/TEMP] Too many connections, try again later.\r\n"
        }
        _ => b"* BYE Too many connections, try again later.\r\n",
    };
    // Never hold the socket for a client that does not read.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), tcp.write_all(text)).await;
}

/// Counts a connection against the limits while it lives.
struct ConnGuard {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl ConnGuard {
    fn admit(shared: &Arc<Shared>, ip: IpAddr) -> Option<ConnGuard> {
        let limits = &shared.config.limits;
        let mut counts = shared.counts.lock().unwrap_or_else(|e| e.into_inner());
        let per_ip = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if counts.total >= shared.max_connections || per_ip >= limits.max_connections_per_ip {
            let total = counts.total;
            drop(counts);
            let mut log = shared.refused_log.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(suppressed) = log.allow(std::time::Instant::now()) {
                tracing::warn!(%ip, total, per_ip, suppressed, "connection refused: limit reached");
            }
            return None;
        }
        counts.total += 1;
        counts.per_ip.insert(ip, per_ip + 1);
        Some(ConnGuard {
            shared: shared.clone(),
            ip,
        })
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut counts = self.shared.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// A login storm connects faster than the accept loop runs: the kernel's queue must hold
    /// more than tokio's default of 1024 (beyond it the SYN is dropped and the client hangs, or
    /// after a SYN cookie waits for a greeting that never comes).
    #[tokio::test]
    async fn listen_queue_holds_more_than_1024_waiting_connections() {
        const N: usize = 1500;
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let _ = rlimit::increase_nofile_limit(u64::MAX);
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        if somaxconn < N || soft < 2 * N as u64 + 100 {
            eprintln!("skipped: somaxconn {somaxconn}, open files {soft}");
            return;
        }
        let l = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        // Nothing is accepted while connecting, as when the accept loop lags behind.
        let mut clients = Vec::new();
        for _ in 0..N {
            match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
                Ok(Ok(c)) => clients.push(c),
                _ => break,
            }
        }
        let mut accepted = 0;
        while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(300), l.accept()).await {
            accepted += 1;
        }
        assert_eq!((clients.len(), accepted), (N, N));
    }

    #[test]
    fn log_limiter_lets_one_a_second_through_and_counts_the_rest() {
        let mut l = LogLimiter::default();
        let t0 = Instant::now();
        assert_eq!(l.allow(t0), Some(0));
        for i in 1..=6_000u64 {
            assert_eq!(l.allow(t0 + Duration::from_micros(i * 100)), None);
        }
        assert_eq!(l.allow(t0 + Duration::from_secs(1)), Some(6_000));
        assert_eq!(l.allow(t0 + Duration::from_millis(1_500)), None);
        assert_eq!(l.allow(t0 + Duration::from_secs(3)), Some(1));
    }

    #[test]
    fn connections_leave_room_for_the_store() {
        assert_eq!(fd_reserve(1024), 128);
        assert_eq!(fd_reserve(256), 64);
        // The limit was raised (or already at its hard limit): whatever it is, the cap leaves
        // the reserve free and never exceeds the configured number.
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        let cap = connection_cap(usize::MAX) as u64;
        let (raised, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert!(raised >= soft);
        assert_eq!(cap, raised - fd_reserve(raised));
        assert_eq!(connection_cap(10), 10);
    }
}
