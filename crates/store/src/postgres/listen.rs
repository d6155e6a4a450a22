//! Hearing the other nodes: a connection of its own runs `LISTEN mailkeep`; each
//! notification (`<mailbox>:<modseq>`, sent with a commit) wakes this node's sessions on that
//! mailbox. Notifications that arrive together are coalesced per mailbox. When the connection
//! is lost it is made again (after 0.1 s, then longer pauses up to 1 s while the database is
//! down), and then every watched mailbox is woken, since changes made meanwhile were not
//! heard: each session re-syncs from the last modseq it saw.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::mpsc;
use tokio_postgres::Socket;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{AsyncMessage, Client, Config, Notification};

use super::Tls;
use super::messages::CHANNEL;
use crate::{MailboxId, Notifier, Result};

/// Pause before the first try to connect again after the listening connection was lost; it
/// doubles with each failed try up to [`RECONNECT_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// Longest pause between tries to connect again.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

struct Listening {
    // Dropping the client ends the connection.
    _client: Client,
    rx: mpsc::UnboundedReceiver<Notification>,
    _driver: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn connect(config: &Config, tls: Tls) -> Result<Listening> {
    match tls {
        Tls::None => connect_with(config, tokio_postgres::NoTls).await,
        Tls::Rustls(t) => connect_with(config, t).await,
    }
}

async fn connect_with<T>(config: &Config, tls: T) -> Result<Listening>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let (client, mut conn) = config.connect(tls).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if tx.send(n).is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "PostgreSQL listening connection lost");
                    break;
                }
                None => break,
            }
        }
    });
    let driver = AbortOnDrop(driver);
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    Ok(Listening {
        _client: client,
        rx,
        _driver: driver,
    })
}

/// Connects (so the node hears changes from the start), then listens in a task of its own.
pub(super) async fn start(
    config: Config,
    tls: Tls,
    pool: Pool,
    notifier: Arc<Notifier>,
) -> Result<tokio::task::JoinHandle<()>> {
    let first = connect(&config, tls.clone()).await?;
    Ok(tokio::spawn(run(config, tls, pool, notifier, first)))
}

async fn run(config: Config, tls: Tls, pool: Pool, notifier: Arc<Notifier>, first: Listening) {
    let mut current = Some(first);
    let mut pause = FIRST_PAUSE;
    loop {
        let Some(mut l) = current.take() else {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RECONNECT_PAUSE);
            let l = match connect(&config, tls.clone()).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "PostgreSQL listening connection");
                    continue;
                }
            };
            // Listening again: whatever changed while nobody listened is found by the woken
            // sessions, each from the last modseq it saw. If the wake-up cannot be done, the
            // connection is dropped and both are tried again: nothing may be missed.
            match wake_all(&pool, &notifier).await {
                Ok(n) => {
                    tracing::info!(woken = n, "PostgreSQL listening connection made again");
                    current = Some(l);
                    pause = FIRST_PAUSE;
                }
                Err(e) => tracing::warn!(error = %e, "waking sessions after a reconnect"),
            }
            continue;
        };
        while let Some(n) = l.rx.recv().await {
            let mut latest: HashMap<MailboxId, u64> = HashMap::new();
            let mut add = |n: Notification| {
                let Some((mb, modseq)) = n.payload().split_once(':') else {
                    return;
                };
                if let (Ok(mb), Ok(modseq)) = (mb.parse(), modseq.parse::<u64>()) {
                    let e = latest.entry(mb).or_insert(modseq);
                    *e = (*e).max(modseq);
                }
            };
            add(n);
            while let Ok(n) = l.rx.try_recv() {
                add(n);
            }
            for (mb, modseq) in latest {
                // This node's own changes were announced at their commit already.
                notifier.notify_newer(mb, modseq);
            }
        }
    }
}

/// Wakes every mailbox this node's sessions watch, with its current HIGHESTMODSEQ (0 for a
/// mailbox that is gone: its sessions find out when they look).
async fn wake_all(pool: &Pool, notifier: &Notifier) -> Result<usize> {
    let watched: Vec<MailboxId> = notifier.watched().into_iter().map(|(id, _)| id).collect();
    if watched.is_empty() {
        return Ok(0);
    }
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT id, highest_modseq FROM mailboxes WHERE id = ANY($1)",
            &[&watched],
        )
        .await?;
    let found: HashMap<MailboxId, u64> = rows
        .iter()
        .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
        .collect();
    for &mb in &watched {
        notifier.notify(mb, found.get(&mb).copied().unwrap_or(0));
    }
    Ok(watched.len())
}
