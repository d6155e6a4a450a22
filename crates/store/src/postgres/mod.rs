//! The `postgres` backend: every table of the [`MailStore`] in PostgreSQL, so several
//! mailkeep nodes can serve the same accounts.
//!
//! - Connections: a deadpool pool of tokio-postgres clients (TLS by rustls with the system's
//!   roots when the URL asks for it: `sslmode=require`; `prefer`, the default, tries it).
//! - Schema: numbered migrations (`migrations/*.sql`, see [`schema`]) applied at open.
//! - Concurrency: UIDs and modseqs come from `UPDATE mailboxes ... RETURNING` inside the
//!   writing transaction: the mailbox row's lock serializes its writers on every node, so
//!   UIDs, UIDNEXT and HIGHESTMODSEQ only ever rise. Locks are taken in one order: the
//!   account (quota), then mailboxes by ascending id, then bodies.
//! - Bodies: content-addressed (`bodies`, SHA-256 key, zstd), shared between identical
//!   messages (no lock on a shared body) and deleted with their last reference; their
//!   lower-cased text in `search` with trigram indexes. Their bytes in the row, or in a
//!   directory or S3-compatible bucket shared by the nodes ([`bodies`], `[store] bodies`).
//! - Object IDs, save dates, previews, sort keys: [`objects`]; imports: [`import`].
//! - Notifications: a change commits with `pg_notify('mailkeep', '<mailbox>:<modseq>')`; a
//!   listener on a connection of its own wakes this node's sessions ([`listen`]).

mod accounts;
pub mod bodies;
mod copy;
mod import;
mod listen;
mod messages;
mod objects;
pub mod schema;
pub mod testing;
mod urlauth;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

use bodies::Bodies;
pub use bodies::{BodiesConfig, BodiesKind, S3Settings};

use crate::{
    AppPassword, Changes, FlagOp, Flags, MailStore, Mailbox, MailboxId, MailboxStatus, MessageMeta,
    MessageObjects, NewMessage, Notifier, ParsedInfo, Quota, QuotaLimits, QuotaSetting, Result,
    ScramKeys, StoreError, StoreFlagsResult, TwoFactor, User, UserId,
};

/// Connections in the pool unless the configuration says otherwise.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// How long a command waits for the database to come back (a restart) before it is answered
/// `NO [UNAVAILABLE]`.
const UNAVAILABLE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
/// Pause between tries while the database is unavailable.
const UNAVAILABLE_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);
/// Longest wait for a free connection of the pool (all busy) before `NO [UNAVAILABLE]`.
const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// Longest wait for a new connection to the database (or a check of a pooled one).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        if is_connection_error(&e) {
            StoreError::Unavailable(schema::describe(&e))
        } else {
            StoreError::Internal(schema::describe(&e))
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::PoolError;
        match e {
            PoolError::Backend(e) => e.into(),
            PoolError::Timeout(_) => StoreError::Unavailable(format!("PostgreSQL pool: {e}")),
            e => StoreError::Internal(format!("PostgreSQL pool: {e}")),
        }
    }
}

/// An error of the connection rather than of the statement: the server could not be reached,
/// went away, or is shutting down or starting (SQLSTATE class 08, 57P01-57P03, 53300).
fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    if let Some(code) = e.code() {
        let code = code.code();
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300");
    }
    if e.is_closed() {
        return true;
    }
    // No public kind accessor: I/O on the socket, connecting, or a timeout.
    let text = e.to_string();
    ["error communicating", "error connecting", "timeout waiting"]
        .iter()
        .any(|p| text.starts_with(p))
}

/// The statement `sql` prepared on this pooled connection, from its cache (deadpool-postgres
/// keeps one per connection, keyed by the text) or prepared now and kept: PostgreSQL then
/// skips the parse and the round trip of a statement sent as text. Only for texts from a fixed
/// set (the cache is never trimmed); the schema is migrated before the pool serves.
pub(crate) async fn cached<C: deadpool_postgres::GenericClient>(
    c: &C,
    sql: &str,
) -> Result<tokio_postgres::Statement> {
    Ok(c.prepare_cached(sql).await?)
}

pub(crate) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// The store on PostgreSQL. Open with [`PgStore::open`].
pub struct PgStore {
    pool: Pool,
    /// Where body bytes go and are read from.
    bodies: Arc<Bodies>,
    notifier: Arc<Notifier>,
    default_quota: Mutex<QuotaLimits>,
    /// Seconds a tombstone is kept (see [`PgStore::set_tombstone_retention`]).
    retention: Arc<AtomicU64>,
    listener: tokio::task::JoinHandle<()>,
    upkeep: tokio::task::JoinHandle<()>,
    /// Since when no connection could be had (None: the last try worked).
    unreachable_since: Mutex<Option<tokio::time::Instant>>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
        self.upkeep.abort();
    }
}

/// How often each node runs the upkeep (expired body holds, old tombstones): cheap when there
/// is nothing to do, and harmless when nodes do it at once (row locks).
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Tombstones are kept this long unless set otherwise (the configuration's default).
const DEFAULT_RETENTION: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

async fn upkeep_loop(pool: Pool, retention: Arc<AtomicU64>, bodies: Arc<Bodies>) {
    loop {
        tokio::time::sleep(UPKEEP_EVERY).await;
        let age = std::time::Duration::from_secs(retention.load(Ordering::Relaxed));
        let r: Result<u64> = async {
            let mut client = pool.get().await?;
            let tx = client.transaction().await?;
            let n = messages::upkeep(&tx, age).await?;
            tx.commit().await?;
            Ok(n)
        }
        .await;
        match r {
            Ok(0) => {}
            Ok(n) => tracing::debug!(tombstones = n, "old tombstones pruned"),
            Err(e) => tracing::warn!(error = %e, "store upkeep"),
        }
        // Body files queued by transactions whose node stopped before deleting them.
        if let Err(e) = bodies.reap(&pool).await {
            tracing::warn!(error = %e, "deleting unreferenced body files");
        }
    }
}

/// How to connect: plain (`sslmode=disable`, or a unix socket) or TLS by rustls.
#[derive(Clone)]
pub(crate) enum Tls {
    None,
    Rustls(MakeRustlsConnect),
}

impl Tls {
    fn for_config(config: &tokio_postgres::Config) -> Result<Tls> {
        let unix_only = config
            .get_hosts()
            .iter()
            .all(|h| !matches!(h, tokio_postgres::config::Host::Tcp(_)));
        if unix_only || config.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
            Ok(Tls::None)
        } else {
            Ok(Tls::Rustls(rustls_connector()?))
        }
    }

    fn manager(&self, config: tokio_postgres::Config) -> Manager {
        let mc = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        match self {
            Tls::None => Manager::from_config(config, tokio_postgres::NoTls, mc),
            Tls::Rustls(t) => Manager::from_config(config, t.clone(), mc),
        }
    }

    /// A client whose connection is driven by a task of its own.
    async fn client(&self, config: &tokio_postgres::Config) -> Result<tokio_postgres::Client> {
        Ok(match self {
            Tls::None => {
                let (client, conn) = config.connect(tokio_postgres::NoTls).await?;
                tokio::spawn(conn);
                client
            }
            Tls::Rustls(t) => {
                let (client, conn) = config.connect(t.clone()).await?;
                tokio::spawn(conn);
                client
            }
        })
    }
}

/// rustls with the system's root certificates, for `sslmode=prefer/require`.
fn rustls_connector() -> Result<MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Internal(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

impl PgStore {
    /// Connects to `url` (`postgres://user:pass@host/db?sslmode=...`; a unix socket as
    /// `?host=/run/postgresql`), applies pending migrations and starts the listener.
    pub async fn open(url: &str, pool_size: usize) -> Result<Arc<PgStore>> {
        Self::open_with(url, pool_size, &BodiesConfig::default()).await
    }

    /// [`PgStore::open`] with the body bytes where `bodies` says (`[store] bodies`).
    pub async fn open_with(
        url: &str,
        pool_size: usize,
        bodies: &BodiesConfig,
    ) -> Result<Arc<PgStore>> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Cannot(format!("store url: {e}")))?;
        let tls = Tls::for_config(&config)?;
        {
            let mut client = tls.client(&config).await?;
            schema::migrate(&mut client).await?;
            bodies::ensure_schema(&mut client).await?;
        }
        let bodies = Arc::new(match bodies.kind {
            BodiesKind::Postgres if bodies.dir.is_none() && bodies.s3.is_none() => {
                Bodies::postgres()
            }
            _ => Bodies::open(bodies).await?,
        });
        let manager = tls.manager(config.clone());
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Internal(format!("PostgreSQL pool: {e}")))?;
        let notifier = Arc::new(Notifier::default());
        let listener = listen::start(config, tls, pool.clone(), notifier.clone()).await?;
        let retention = Arc::new(AtomicU64::new(DEFAULT_RETENTION.as_secs()));
        let upkeep = tokio::spawn(upkeep_loop(pool.clone(), retention.clone(), bodies.clone()));
        Ok(Arc::new(PgStore {
            pool,
            bodies,
            notifier,
            default_quota: Mutex::new(QuotaLimits::default()),
            retention,
            listener,
            upkeep,
            unreachable_since: Mutex::new(None),
        }))
    }

    /// Applies pending migrations to the database at `url` and returns the versions applied
    /// (`mailkeep db migrate`).
    pub async fn migrate(url: &str) -> Result<Vec<i32>> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Cannot(format!("store url: {e}")))?;
        let tls = Tls::for_config(&config)?;
        let mut client = tls.client(&config).await?;
        let applied = schema::migrate(&mut client).await?;
        bodies::ensure_schema(&mut client).await?;
        Ok(applied)
    }

    /// Deletes the files of bodies whose last reference went (normally done right after the
    /// commit that let go of them, and by the upkeep); returns how many went.
    pub async fn reap_bodies(&self) -> Result<u64> {
        self.bodies.reap(&self.pool).await
    }

    /// How long tombstones of expunged messages are kept (`[store] tombstone_days`); pruned
    /// by each node's upkeep, every minute.
    pub fn set_tombstone_retention(&self, age: std::time::Duration) {
        self.retention.store(age.as_secs(), Ordering::Relaxed);
    }

    /// A pooled connection. While the database cannot be reached (a restart) this waits up to
    /// [`UNAVAILABLE_WAIT`] for it to come back before giving up with `Unavailable`.
    /// Once it has been unreachable for that long, callers get `Unavailable` after one try,
    /// without waiting, until a connection is made again.
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client> {
        loop {
            match self.pool.get().await.map_err(StoreError::from) {
                Ok(c) => {
                    *self
                        .unreachable_since
                        .lock()
                        .unwrap_or_else(|e| e.into_inner()) = None;
                    return Ok(c);
                }
                Err(StoreError::Unavailable(m)) => {
                    let since = *self
                        .unreachable_since
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() >= UNAVAILABLE_WAIT {
                        return Err(StoreError::Unavailable(m));
                    }
                    tracing::debug!(error = %m, "PostgreSQL unavailable, waiting");
                    tokio::time::sleep(UNAVAILABLE_PAUSE).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The body files a transaction that did not commit wrote are deleted (unless another
    /// transaction's row refers to them).
    async fn forget_written(&self, files: &bodies::TxBodies) {
        let written = std::mem::take(&mut *files.written.lock().unwrap_or_else(|e| e.into_inner()));
        if let Err(e) = self.bodies.forget(&self.pool, written).await {
            tracing::warn!(error = %e, "deleting the body files of a failed transaction");
        }
    }

    fn default_quota(&self) -> QuotaLimits {
        *self.default_quota.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes this node's sessions on the changed mailboxes (other nodes hear the NOTIFY sent
    /// with the commit).
    fn announce(&self, changed: &[(MailboxId, u64)]) {
        let mut latest = std::collections::HashMap::new();
        for &(mb, modseq) in changed {
            let e = latest.entry(mb).or_insert(modseq);
            *e = (*e).max(modseq);
        }
        for (mb, modseq) in latest {
            self.notifier.notify(mb, modseq);
        }
    }
}

/// Runs `$body` (an async block using `tx`) in a transaction; commits, then announces the
/// changed mailboxes it returned beside its value. A transaction that lost a race PostgreSQL
/// resolves by aborting one side (see `is_retryable`) is run again.
///
/// A transaction whose connection was lost before its COMMIT was sent (the database restarted)
/// wrote nothing and is run again on a new connection for up to [`UNAVAILABLE_WAIT`]; one lost
/// during the COMMIT may or may not have been written, so it is not run again (that could
/// deliver a message twice) and the caller gets `Unavailable`.
macro_rules! write_tx {
    ($self:ident, |$tx:ident| $body:expr) => {{
        let mut attempt = 1;
        let start = tokio::time::Instant::now();
        loop {
            let files = Arc::new(bodies::TxBodies::default());
            let mut committing = false;
            let r = bodies::TX_BODIES
                .scope(files.clone(), async {
                    let mut client = $self.client().await?;
                    let $tx = client.transaction().await?;
                    let (value, changed) = $body.await?;
                    messages::send_notifications(&$tx, &changed).await?;
                    committing = true;
                    $tx.commit().await?;
                    Ok::<_, StoreError>((value, changed))
                })
                .await;
            match r {
                Ok((value, changed)) => {
                    $self.announce(&changed);
                    if files.released.load(Ordering::Relaxed) {
                        // The files of bodies this commit let go of (the upkeep retries).
                        if let Err(e) = $self.bodies.reap(&$self.pool).await {
                            tracing::warn!(error = %e, "deleting unreferenced body files");
                        }
                    }
                    break Ok(value);
                }
                Err(e) if attempt < MAX_ATTEMPTS && is_retryable(&e) => {
                    $self.forget_written(&files).await;
                    tracing::debug!(error = %e, attempt, "store transaction run again");
                    attempt += 1;
                    // Random, so that the two sides of a deadlock do not meet again.
                    let noise = std::hash::BuildHasher::hash_one(
                        &std::collections::hash_map::RandomState::new(),
                        attempt,
                    );
                    let pause = noise % (10 * u64::from(attempt)) + 1;
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                }
                Err(StoreError::Unavailable(m))
                    if !committing && start.elapsed() < UNAVAILABLE_WAIT =>
                {
                    $self.forget_written(&files).await;
                    tracing::debug!(error = %m, "store transaction run again on a new connection");
                    tokio::time::sleep(UNAVAILABLE_PAUSE).await;
                }
                Err(e) => {
                    // A connection lost during COMMIT may have committed: its files stay (at
                    // worst an orphan `check` removes), never a row without its file.
                    if !committing {
                        $self.forget_written(&files).await;
                    }
                    break Err(e);
                }
            }
        }
    }};
}

/// Times a write transaction is tried when PostgreSQL aborts it for a deadlock or a
/// serialization failure.
const MAX_ATTEMPTS: u32 = 5;

/// A deadlock victim (40P01), a serialization failure (40001), or a foreign key that failed
/// because another transaction deleted a shared body this one was about to refer to (23503):
/// nothing was written, and running the transaction again is the cure.
fn is_retryable(e: &StoreError) -> bool {
    matches!(e, StoreError::Internal(m)
        if m.starts_with("40P01:") || m.starts_with("40001:") || m.starts_with("23503:"))
}

#[async_trait]
impl MailStore for PgStore {
    async fn create_user(&self, name: &str, password_hash: &str) -> Result<User> {
        write_tx!(self, |tx| async {
            accounts::create_user(&tx, name, password_hash)
                .await
                .map(|u| (u, Vec::new()))
        })
    }
    async fn get_user(&self, name: &str) -> Result<Option<User>> {
        accounts::get_user(&self.client().await?, name).await
    }
    async fn list_users(&self) -> Result<Vec<User>> {
        accounts::list_users(&self.client().await?).await
    }
    async fn set_password(&self, name: &str, password_hash: &str) -> Result<()> {
        write_tx!(self, |tx| async {
            accounts::set_password(&tx, name, password_hash)
                .await
                .map(|u| (u, Vec::new()))
        })
    }
    async fn delete_user(&self, name: &str) -> Result<()> {
        write_tx!(self, |tx| async { accounts::delete_user(&tx, name).await })
    }
    async fn get_scram_keys(&self, name: &str) -> Result<Option<ScramKeys>> {
        accounts::get_scram_keys(&self.client().await?, false, name).await
    }
    async fn set_scram_keys(&self, name: &str, keys: Option<&ScramKeys>) -> Result<()> {
        accounts::set_scram_keys(&self.client().await?, false, name, keys).await
    }
    async fn get_scram_sha1_keys(&self, name: &str) -> Result<Option<ScramKeys>> {
        accounts::get_scram_keys(&self.client().await?, true, name).await
    }
    async fn set_scram_sha1_keys(&self, name: &str, keys: Option<&ScramKeys>) -> Result<()> {
        accounts::set_scram_keys(&self.client().await?, true, name, keys).await
    }
    async fn server_secret(&self, name: &str) -> Result<Vec<u8>> {
        accounts::server_secret(&self.client().await?, name).await
    }

    async fn get_two_factor(&self, name: &str) -> Result<Option<TwoFactor>> {
        accounts::get_two_factor(&self.client().await?, name).await
    }
    async fn set_two_factor(
        &self,
        name: &str,
        tf: Option<&TwoFactor>,
        recovery_hashes: &[Vec<u8>],
    ) -> Result<()> {
        write_tx!(self, |tx| async {
            accounts::set_two_factor(&tx, name, tf, recovery_hashes)
                .await
                .map(|v| (v, Vec::new()))
        })
    }
    async fn use_totp_step(&self, name: &str, step: i64) -> Result<bool> {
        accounts::use_totp_step(&self.client().await?, name, step).await
    }
    async fn use_recovery_code(&self, name: &str, hash: &[u8]) -> Result<bool> {
        accounts::use_recovery_code(&self.client().await?, name, hash).await
    }
    async fn recovery_codes_left(&self, name: &str) -> Result<u32> {
        accounts::recovery_codes_left(&self.client().await?, name).await
    }
    async fn add_app_password(
        &self,
        name: &str,
        label: &str,
        hash: &[u8],
        now: i64,
    ) -> Result<AppPassword> {
        accounts::add_app_password(&self.client().await?, name, label, hash, now).await
    }
    async fn list_app_passwords(&self, name: &str) -> Result<Vec<AppPassword>> {
        accounts::list_app_passwords(&self.client().await?, name).await
    }
    async fn revoke_app_password(&self, name: &str, label: &str) -> Result<()> {
        accounts::revoke_app_password(&self.client().await?, name, label).await
    }
    async fn find_app_password(&self, name: &str, hash: &[u8]) -> Result<Option<AppPassword>> {
        accounts::find_app_password(&self.client().await?, name, hash).await
    }
    async fn app_password_exists(&self, id: i64) -> Result<bool> {
        accounts::app_password_exists(&self.client().await?, id).await
    }
    async fn touch_app_password(&self, id: i64, now: i64, min_interval: i64) -> Result<()> {
        accounts::touch_app_password(&self.client().await?, id, now, min_interval).await
    }

    async fn list_mailboxes(&self, user: UserId) -> Result<Vec<Mailbox>> {
        accounts::list_mailboxes(&self.client().await?, user).await
    }
    async fn get_mailbox(&self, user: UserId, name: &str) -> Result<Option<Mailbox>> {
        accounts::get_mailbox(&self.client().await?, user, name).await
    }
    async fn create_mailbox(
        &self,
        user: UserId,
        name: &str,
        special_use: Option<&str>,
    ) -> Result<Mailbox> {
        write_tx!(self, |tx| async {
            accounts::create_mailbox(&tx, user, name, special_use)
                .await
                .map(|m| (m, Vec::new()))
        })
    }
    async fn delete_mailbox(&self, user: UserId, id: MailboxId) -> Result<()> {
        write_tx!(self, |tx| async {
            accounts::delete_mailbox(&tx, user, id).await
        })
    }
    async fn rename_mailbox(&self, user: UserId, id: MailboxId, new_name: &str) -> Result<()> {
        write_tx!(self, |tx| async {
            accounts::rename_mailbox(&tx, user, id, new_name)
                .await
                .map(|m| (m, Vec::new()))
        })
    }
    async fn subscribe(&self, user: UserId, name: &str) -> Result<()> {
        accounts::subscribe(&self.client().await?, user, name, true).await
    }
    async fn unsubscribe(&self, user: UserId, name: &str) -> Result<()> {
        accounts::subscribe(&self.client().await?, user, name, false).await
    }
    async fn subscriptions(&self, user: UserId) -> Result<Vec<String>> {
        accounts::subscriptions(&self.client().await?, user).await
    }
    async fn status(&self, mailbox: MailboxId) -> Result<MailboxStatus> {
        messages::status(&self.client().await?, mailbox).await
    }

    async fn append(
        &self,
        mailbox: MailboxId,
        messages: Vec<NewMessage>,
    ) -> Result<(u32, Vec<u32>)> {
        let quota = self.default_quota();
        write_tx!(self, |tx| async {
            messages::append(&tx, &self.bodies, mailbox, messages.clone(), None, quota).await
        })
    }
    async fn messages(&self, mailbox: MailboxId) -> Result<Vec<MessageMeta>> {
        messages::messages(&self.client().await?, mailbox).await
    }
    async fn changes_since(&self, mailbox: MailboxId, since: u64) -> Result<Changes> {
        let mut client = self.client().await?;
        // One snapshot: the changes and the counters agree.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let r = messages::changes_since(&tx, mailbox, since).await?;
        tx.commit().await?;
        Ok(r)
    }
    async fn message_bytes(&self, mailbox: MailboxId, uid: u32) -> Result<Arc<Vec<u8>>> {
        messages::message_bytes(&self.client().await?, &self.bodies, mailbox, uid)
            .await
            .map(Arc::new)
    }
    async fn parsed_info(&self, mailbox: MailboxId, uid: u32) -> Result<ParsedInfo> {
        let mut v = messages::parsed_infos(&self.client().await?, mailbox, &[uid], true).await?;
        v.pop().map(|(_, p)| p).ok_or(StoreError::NoSuchMailbox)
    }
    async fn parsed_infos(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
    ) -> Result<Vec<(u32, ParsedInfo)>> {
        messages::parsed_infos(&self.client().await?, mailbox, uids, false).await
    }
    async fn sort_keys(&self, mailbox: MailboxId, uids: &[u32]) -> Result<crate::KeyRows> {
        objects::sort_keys(&self.client().await?, mailbox, uids).await
    }
    async fn save_sort_keys(&self, mailbox: MailboxId, keys: Vec<(u32, Vec<u8>)>) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        write_tx!(self, |tx| async {
            objects::save_sort_keys(&tx, mailbox, &keys)
                .await
                .map(|v| (v, Vec::new()))
        })
    }
    async fn set_flags(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
        op: FlagOp,
        flags: &Flags,
        unchanged_since: Option<u64>,
    ) -> Result<StoreFlagsResult> {
        write_tx!(self, |tx| async {
            messages::set_flags(&tx, mailbox, uids, op, flags, unchanged_since).await
        })
    }
    async fn expunge(&self, mailbox: MailboxId, uids: &[u32]) -> Result<Vec<u32>> {
        // With no retention (`tombstone_days = 0`) tombstones go at every expunge, as in the
        // embedded store, rather than at the next upkeep a minute later.
        let prune_now = self.retention.load(Ordering::Relaxed) == 0;
        write_tx!(self, |tx| async {
            let done = messages::expunge_locked(&tx, mailbox, uids).await?;
            if prune_now {
                messages::prune_tombstones(&tx, std::time::Duration::ZERO).await?;
            }
            Ok::<_, StoreError>(done)
        })
    }
    async fn prune_tombstones(&self, age: std::time::Duration) -> Result<u64> {
        write_tx!(self, |tx| async {
            messages::prune_tombstones(&tx, age)
                .await
                .map(|n| (n, Vec::new()))
        })
    }
    async fn copy(
        &self,
        from: MailboxId,
        uids: &[u32],
        to: MailboxId,
    ) -> Result<(u32, Vec<(u32, u32)>)> {
        let quota = self.default_quota();
        write_tx!(self, |tx| async {
            messages::copy(&tx, from, uids, to, false, quota).await
        })
    }
    async fn move_messages(
        &self,
        from: MailboxId,
        uids: &[u32],
        to: MailboxId,
    ) -> Result<(u32, Vec<(u32, u32)>)> {
        let quota = self.default_quota();
        write_tx!(self, |tx| async {
            messages::copy(&tx, from, uids, to, true, quota).await
        })
    }
    async fn search_text(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
        needle: &str,
        body_only: bool,
    ) -> Result<Vec<u32>> {
        messages::search_text(&self.client().await?, mailbox, uids, needle, body_only).await
    }
    async fn claim_recent(&self, mailbox: MailboxId, claim: bool) -> Result<Vec<u32>> {
        messages::claim_recent(&self.client().await?, mailbox, claim).await
    }

    async fn message_objects(
        &self,
        mailbox: MailboxId,
        uids: &[u32],
    ) -> Result<Vec<(u32, MessageObjects)>> {
        objects::message_objects(&self.client().await?, mailbox, uids).await
    }
    async fn urlauth_key(
        &self,
        user: UserId,
        mailbox: MailboxId,
        create: bool,
    ) -> Result<Option<Vec<u8>>> {
        let client = self.client().await?;
        if create {
            urlauth::create_key(&client, user, mailbox).await
        } else {
            urlauth::get_key(&client, user, mailbox).await
        }
    }
    async fn reset_urlauth_keys(&self, user: UserId, mailbox: Option<MailboxId>) -> Result<()> {
        urlauth::reset(&self.client().await?, user, mailbox).await
    }
    async fn preview(&self, mailbox: MailboxId, uid: u32) -> Result<Option<String>> {
        objects::preview(&self.client().await?, mailbox, uid).await
    }
    async fn replace(
        &self,
        from: MailboxId,
        uid: u32,
        user: UserId,
        name: &str,
        message: NewMessage,
    ) -> Result<Option<(u32, u32)>> {
        let quota = self.default_quota();
        write_tx!(self, |tx| async {
            messages::replace(
                &tx,
                &self.bodies,
                from,
                uid,
                user,
                name,
                message.clone(),
                quota,
            )
            .await
        })
    }
    async fn import_mailbox(
        &self,
        user: UserId,
        name: &str,
        special_use: Option<&str>,
        uidvalidity: Option<u32>,
    ) -> Result<Mailbox> {
        write_tx!(self, |tx| async {
            import::import_mailbox(&tx, user, name, special_use, uidvalidity).await
        })
    }
    async fn append_with_uids(
        &self,
        mailbox: MailboxId,
        msgs: Vec<(u32, NewMessage)>,
    ) -> Result<u32> {
        let (uids, msgs): (Vec<u32>, Vec<NewMessage>) = msgs.into_iter().unzip();
        messages::check_ascending(&uids)?;
        let quota = self.default_quota();
        write_tx!(self, |tx| async {
            messages::append(&tx, &self.bodies, mailbox, msgs.clone(), Some(&uids), quota)
                .await
                .map(|((uidvalidity, _), changed)| (uidvalidity, changed))
        })
    }

    async fn server_secrets(&self) -> Result<Vec<(String, Vec<u8>)>> {
        copy::server_secrets(&self.client().await?).await
    }
    async fn set_server_secret(&self, name: &str, value: &[u8]) -> Result<()> {
        copy::set_server_secret(&self.client().await?, name, value).await
    }
    async fn recovery_code_hashes(&self, name: &str) -> Result<Vec<Vec<u8>>> {
        copy::recovery_code_hashes(&self.client().await?, name).await
    }
    async fn app_password_hashes(&self, name: &str) -> Result<Vec<crate::StoredAppPassword>> {
        copy::app_password_hashes(&self.client().await?, name).await
    }
    async fn restore_app_password(&self, name: &str, app: &crate::StoredAppPassword) -> Result<()> {
        copy::restore_app_password(&self.client().await?, name, app).await
    }
    async fn restore_mailbox(&self, user: UserId, mailbox: &Mailbox) -> Result<Mailbox> {
        write_tx!(self, |tx| async {
            copy::restore_mailbox(&tx, user, mailbox).await
        })
    }
    async fn restore_message_state(
        &self,
        mailbox: MailboxId,
        uidnext: u32,
        highest_modseq: u64,
        messages: &[crate::MessageState],
    ) -> Result<()> {
        write_tx!(self, |tx| async {
            copy::restore_message_state(&tx, mailbox, uidnext, highest_modseq, messages).await
        })
    }

    async fn add_domain(&self, domain: &str) -> Result<()> {
        accounts::add_domain(&self.client().await?, domain).await
    }
    async fn delete_domain(&self, domain: &str) -> Result<()> {
        accounts::delete_domain(&self.client().await?, domain).await
    }
    async fn list_domains(&self) -> Result<Vec<String>> {
        accounts::list_domains(&self.client().await?).await
    }
    async fn is_local_domain(&self, domain: &str) -> Result<bool> {
        accounts::is_local_domain(&self.client().await?, domain).await
    }
    async fn add_alias(&self, address: &str, target: &str) -> Result<()> {
        write_tx!(self, |tx| async {
            accounts::add_alias(&tx, address, target)
                .await
                .map(|v| (v, Vec::new()))
        })
    }
    async fn delete_alias(&self, address: &str) -> Result<()> {
        accounts::delete_alias(&self.client().await?, address).await
    }
    async fn list_aliases(&self) -> Result<Vec<(String, String)>> {
        accounts::list_aliases(&self.client().await?).await
    }
    async fn alias_target(&self, address: &str) -> Result<Option<String>> {
        accounts::alias_target(&self.client().await?, address).await
    }

    fn set_default_quota(&self, limits: QuotaLimits) {
        *self.default_quota.lock().unwrap_or_else(|e| e.into_inner()) = limits;
    }
    async fn set_quota(
        &self,
        user: &str,
        storage: Option<QuotaSetting>,
        messages: Option<QuotaSetting>,
    ) -> Result<()> {
        accounts::set_quota(&self.client().await?, user, storage, messages).await
    }
    async fn quota(&self, user: UserId) -> Result<Quota> {
        accounts::quota(&self.client().await?, user, self.default_quota()).await
    }

    fn notifier(&self) -> &Notifier {
        &self.notifier
    }
    async fn check(&self) -> Result<Vec<String>> {
        let mut client = self.client().await?;
        let mut problems = messages::check(&client, &self.bodies).await?;
        problems.extend(self.bodies.check_orphans(&mut client).await?);
        Ok(problems)
    }
}
