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

pub mod config;
mod conn;
mod lmtp;
mod stream;
pub mod tls;

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
    counts: Mutex<Counts>,
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
}

impl std::fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ListenerKind::Imap => "imap",
            ListenerKind::Imaps => "imaps",
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
        tracing::info!(fingerprint = %tls.fingerprint, cert = %tls.cert_path.display(), "TLS certificate (SHA-256)");
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
        ] {
            for addr in addrs {
                let l = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("listening on {addr} ({kind})"))?;
                listeners.push((kind, l));
            }
        }
        let lmtp = lmtp::Listeners::bind(&config.lmtp.listen).await?;
        let (shutdown_tx, shutdown) = watch::channel(false);
        let shared = Arc::new(Shared {
            config,
            store,
            tls: Some(tls),
            spool_dir,
            shutdown,
            counts: Mutex::new(Counts::default()),
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
    pub fn tls_fingerprint(&self) -> Option<&str> {
        self.shared.tls.as_ref().map(|t| t.fingerprint.as_str())
    }

    /// Accept connections until `shutdown` completes, then tell every connection to end.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        for (kind, listener) in self.listeners {
            tasks.spawn(accept_loop(self.shared.clone(), kind, listener));
        }
        let sockets = self.lmtp.spawn(&self.shared, &mut tasks);
        shutdown.await;
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

async fn accept_loop(shared: Arc<Shared>, kind: ListenerKind, listener: TcpListener) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and similar: wait instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let Some(guard) = ConnGuard::admit(&shared, peer.ip()) else {
            tokio::spawn(refuse(tcp));
            continue;
        };
        tracing::info!(%peer, listener = %kind, "connect");
        let shared = shared.clone();
        tokio::spawn(async move {
            let _guard = guard;
            conn::serve(shared.clone(), tcp, peer, kind == ListenerKind::Imaps).await;
        });
    }
}

async fn refuse(mut tcp: TcpStream) {
    let _ = tcp
        .write_all(b"* BYE Too many connections, try again later.\r\n")
        .await;
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
        if counts.total >= limits.max_connections || per_ip >= limits.max_connections_per_ip {
            tracing::warn!(%ip, total = counts.total, per_ip, "connection refused: limit reached");
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
