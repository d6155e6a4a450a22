//! `mailkeep`: the server and its admin commands. Argument parsing, configuration loading and
//! logging setup only; everything else lives in the crates.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use mailkeep_server::{Config, Server};
use mailkeep_store::MailStore;
use mailkeep_store::postgres::{BodiesConfig, BodiesKind, PgStore, S3Settings};
use mailkeep_store::sqlite::SqliteStore;

mod migrate_cli;
mod store_copy_cli;
mod transfer_cli;

#[derive(Parser)]
#[command(name = "mailkeep", version, about = "An IMAP4rev2 mail server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the configuration and data are.
#[derive(Args, Clone)]
struct Location {
    /// The TOML configuration file.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// The data directory (overrides `data_dir` of the configuration).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the IMAP server.
    Serve(Location),
    /// Manage accounts.
    User {
        #[command(subcommand)]
        action: UserAction,
        #[command(flatten)]
        location: Location,
    },
    /// Check the index and message files for consistency.
    Check(Location),
    /// Take a consistent snapshot of the data directory into DIR while the server runs
    /// (incremental when DIR holds an earlier backup; body files are hard-linked when DIR is on
    /// the same file system).
    Backup {
        dir: PathBuf,
        #[command(flatten)]
        location: Location,
    },
    /// Restore the backup in DIR into the (empty or new) data directory, then check it.
    Restore {
        dir: PathBuf,
        #[command(flatten)]
        location: Location,
    },
    /// Configuration file tools.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Manage the local mail domains (LMTP delivery).
    Domain {
        #[command(subcommand)]
        action: DomainAction,
        #[command(flatten)]
        location: Location,
    },
    /// Manage address aliases (LMTP delivery).
    Alias {
        #[command(subcommand)]
        action: AliasAction,
        #[command(flatten)]
        location: Location,
    },
    /// Import mail into an account: `import maildir PATH --user NAME`, `import mbox FILE|DIR
    /// --user NAME [--folder NAME]`. Safe while the server runs.
    Import {
        #[command(subcommand)]
        source: transfer_cli::ImportSource,
        #[command(flatten)]
        location: Location,
    },
    /// Export an account's mail: `export maildir|mbox --user NAME PATH`.
    Export {
        format: transfer_cli::ExportFormat,
        /// The account to export.
        #[arg(long)]
        user: String,
        /// A new (or empty) directory to write to.
        path: PathBuf,
        #[command(flatten)]
        location: Location,
    },
    /// Manage account quotas (storage and message count; `[quota]` sets the default).
    Quota {
        #[command(subcommand)]
        action: QuotaAction,
        #[command(flatten)]
        location: Location,
    },
    /// Database tools (`db migrate`: bring the store's schema up to date).
    Db {
        #[command(subcommand)]
        action: DbAction,
        #[command(flatten)]
        location: Location,
    },
    /// Manage app passwords: one per device, for IMAP and POP3 (the only way in once two-factor
    /// authentication is on).
    AppPassword {
        #[command(subcommand)]
        action: AppPasswordAction,
        #[command(flatten)]
        location: Location,
    },
    /// Store tools (`store copy --from CONFIG --to CONFIG`: move an installation between the
    /// embedded store and PostgreSQL).
    Store {
        #[command(subcommand)]
        action: store_copy_cli::StoreAction,
    },
    /// Migrate accounts from another IMAP server (resumable; see `migrate --help`).
    Migrate {
        #[command(flatten)]
        args: Box<migrate_cli::MigrateArgs>,
        #[command(flatten)]
        location: Location,
    },
}

#[derive(Subcommand)]
enum DbAction {
    /// Apply the schema migrations not yet applied (the server also does at start).
    Migrate,
}

#[derive(Subcommand)]
enum AppPasswordAction {
    /// Make an app password for the account NAME, labelled LABEL (e.g. "Phone"); it is printed
    /// once (16 letters) and stored hashed.
    Add { name: String, label: String },
    /// List an account's app passwords: label, creation and last use.
    List { name: String },
    /// Revoke an app password: it stops working at once, also for open sessions (at their
    /// next command).
    Revoke { name: String, label: String },
}

#[derive(Subcommand)]
enum TwoFaAction {
    /// Turn on two-factor authentication (TOTP, RFC 6238): prints the otpauth:// URI and a QR
    /// code, reads a first code from the authenticator (from standard input when it is not a
    /// terminal) and prints one-time recovery codes. From then on the main password no longer
    /// logs in over IMAP or POP3: use app passwords.
    Enable { name: String },
    /// Turn it off (the administrator's recovery for a lost authenticator).
    Disable { name: String },
    /// Show whether it is on, the recovery codes left and the number of app passwords.
    Status { name: String },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Validate FILE without starting anything: prints "ok" (and any warnings) or the errors.
    Check { file: PathBuf },
}

#[derive(Subcommand)]
enum QuotaAction {
    /// Set an account's own limits (either flag alone leaves the other as it is). A size is
    /// `2G`, `500M`, `10K` or bytes; `none` or `0` clears the account's limit (the `[quota]`
    /// default applies again); `unlimited` means no limit whatever the default.
    Set {
        name: String,
        #[arg(long)]
        storage: Option<String>,
        #[arg(long)]
        messages: Option<String>,
    },
    /// Show an account's usage and limits.
    Get { name: String },
    /// Usage and limits of every account.
    List,
}

#[derive(Subcommand)]
enum DomainAction {
    /// Add a local domain: every account `alice` then receives mail for `alice@DOMAIN`.
    Add { domain: String },
    /// Remove a local domain.
    Del { domain: String },
    /// List local domains.
    List,
}

#[derive(Subcommand)]
enum AliasAction {
    /// Deliver mail for ADDRESS (`name@domain`, or `@domain` for a catch-all) to the account
    /// TARGET. One address to several accounts or to an external address is not supported.
    Add { address: String, target: String },
    /// Remove an alias.
    Del { address: String },
    /// List aliases.
    List,
}

#[derive(Subcommand)]
enum UserAction {
    /// Add an account. The password is read from standard input when it is not a terminal,
    /// otherwise asked for; it must have `[auth] min_password_length` characters and not be a
    /// common password.
    Add {
        name: String,
        #[command(flatten)]
        secret: SecretArgs,
    },
    /// Delete an account and all its mail.
    Del { name: String },
    /// Change an account's password (read and checked like `add`).
    Passwd {
        name: String,
        #[command(flatten)]
        secret: SecretArgs,
    },
    /// List accounts.
    List,
    /// Add accounts in bulk from another server's files.
    Import {
        #[command(subcommand)]
        format: ImportFormat,
    },
    /// Two-factor authentication of an account.
    #[command(name = "2fa")]
    TwoFa {
        #[command(subcommand)]
        action: TwoFaAction,
    },
}

/// Where a new password comes from.
#[derive(Args)]
struct SecretArgs {
    /// Use an existing Dovecot hash instead of a password: `{SCHEME}...` with SCHEME one of
    /// ARGON2ID, ARGON2I, SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, SSHA512, SSHA256,
    /// SCRAM-SHA-256. It is replaced by an argon2id hash at the account's next login.
    #[arg(long, value_name = "HASH")]
    hash: Option<String>,
    /// Skip the password policy (minimum length, common passwords): for tests.
    #[arg(long)]
    allow_weak_password: bool,
}

#[derive(Subcommand)]
enum ImportFormat {
    /// Dovecot's passwd-file: `user:{SCHEME}hash:uid:gid:gecos:home:shell:extra` per line
    /// (only the user and the hash are used; blank lines and `#` comments are skipped).
    /// Accounts that exist already are skipped unless `--update` is given, which replaces
    /// their password hash (their mail is kept).
    PasswdFile {
        file: PathBuf,
        /// Replace the hash of accounts that exist already.
        #[arg(long)]
        update: bool,
    },
}

/// glibc's malloc raises its mmap threshold each time a large block is freed (up to 32 MiB),
/// after which blocks that size come from the heap and stay in the process when freed: the
/// peak memory of one 30 MiB delivery varied by a quarter between runs (+123 or +150 MiB)
/// depending on which came first. A fixed 4 MiB threshold keeps message-sized buffers mapped
/// and given back on free, and smaller ones (zstd contexts, pages) on the heap as before.
fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a malloc setting; called before any thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

/// Rust's allocations go to jemalloc. Measured against glibc's malloc (alternated runs, same
/// machine): LMTP delivery at 16 clients +14% (3,551 -> 4,067 msg/s mean of five, server CPU
/// 0.35-0.43 -> 0.29-0.34 s per 1,000 messages), where malloc and free were ~15% of the
/// server's samples, spread over many small parsing buffers; the stress mix ~5%. Idle
/// connections at 4,000 (with the setting below): TLS 15.7 -> 15.8-15.9 KiB each, plain 8.7 ->
/// 8.0, TLS + COMPRESS 27.5 -> 25.1. The C libraries (SQLite, zstd) still allocate from glibc's
/// malloc: hence `fix_mmap_threshold`.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read at its start (the environment's `_RJEM_MALLOC_CONF` is read after
/// and wins). Each thread's cache holds at most 20 free blocks per small size class, not 200:
/// with the default, idle TLS connections cost 16.3-16.5 KiB each at 4,000 (glibc: 15.7), with
/// 20 they cost 15.8; LMTP delivery was the same (alternated runs, 4,205-4,378 msg/s against
/// 4,242-4,657).
#[cfg(not(target_env = "msvc"))]
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8] = b"tcache_nslots_small_max:20\0";

fn main() -> Result<()> {
    fix_mmap_threshold();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(loc) => {
            let config = load_config(&loc)?;
            init_logging(&config)?;
            runtime.block_on(serve(config))
        }
        Command::User { action, location } => {
            let config = load_config(&location)?;
            init_cli_logging(&config)?;
            runtime.block_on(user(config, action))
        }
        Command::Check(loc) => {
            let config = load_config(&loc)?;
            runtime.block_on(check(config))
        }
        Command::Backup { dir, location } => {
            let config = load_config(&location)?;
            runtime.block_on(backup(config, dir))
        }
        Command::Restore { dir, location } => {
            let config = load_config(&location)?;
            runtime.block_on(restore(config, dir))
        }
        Command::Config {
            action: ConfigAction::Check { file },
        } => config_check(&file),
        Command::Domain { action, location } => {
            let config = load_config(&location)?;
            init_cli_logging(&config)?;
            runtime.block_on(domain(config, action))
        }
        Command::Alias { action, location } => {
            let config = load_config(&location)?;
            init_cli_logging(&config)?;
            runtime.block_on(alias(config, action))
        }
        Command::Import { source, location } => {
            let config = load_config(&location)?;
            runtime.block_on(transfer_cli::import(config, source))
        }
        Command::Export {
            format,
            user,
            path,
            location,
        } => {
            let config = load_config(&location)?;
            runtime.block_on(transfer_cli::export(config, format, user, path))
        }
        Command::Quota { action, location } => {
            let config = load_config(&location)?;
            init_cli_logging(&config)?;
            runtime.block_on(quota(config, action))
        }
        Command::Db {
            action: DbAction::Migrate,
            location,
        } => {
            let config = load_config(&location)?;
            runtime.block_on(db_migrate(config))
        }
        Command::AppPassword { action, location } => {
            let config = load_config(&location)?;
            init_cli_logging(&config)?;
            runtime.block_on(app_password(config, action))
        }
        Command::Store { action } => runtime.block_on(store_copy_cli::run(action)),
        Command::Migrate { args, location } => {
            let config = load_config(&location)?;
            let store = runtime.block_on(open_store(&config))?;
            runtime.block_on(migrate_cli::run(store, &config.data_dir, *args))
        }
    }
}

fn load_config(loc: &Location) -> Result<Config> {
    let mut config = match &loc.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let (config, warnings) = Config::from_toml_with_warnings(&text)
                .with_context(|| format!("in {}", path.display()))?;
            // Before logging is set up (the file says how): straight to standard error.
            for w in warnings {
                eprintln!("mailkeep: {}: warning: {w}", path.display());
            }
            config
        }
        None => Config::default(),
    };
    if let Some(dir) = &loc.data_dir {
        config.data_dir = dir.clone();
    }
    Ok(config)
}

type BoxedLayer = Box<dyn tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>;

fn init_logging(config: &Config) -> Result<()> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let normal = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let normal: BoxedLayer = match config.log.format.as_str() {
        "json" => normal.json().with_filter(filter).boxed(),
        "text" => normal.with_filter(filter).boxed(),
        other => bail!("log.format must be \"text\" or \"json\", not {other:?}"),
    };
    let mut layers = vec![normal];
    layers.extend(audit_file_layer(config)?);
    tracing_subscriber::registry().with(layers).init();
    Ok(())
}

/// The audit lines: the `mailkeep::audit` target (admin changes, revoked sessions, recovery
/// codes) and the login lines of `mailkeep_auth` (`event=auth_success|auth_failure|
/// auth_blocked`, the fail2ban format).
fn is_audit(meta: &tracing::Metadata<'_>) -> bool {
    meta.target() == "mailkeep::audit"
        || (meta.target().starts_with("mailkeep_auth")
            && meta.is_event()
            && meta.fields().field("event").is_some())
}

/// `[log] audit_file`: a layer appending the audit lines to that file (text, no colours).
fn audit_file_layer(config: &Config) -> Result<Option<BoxedLayer>> {
    use tracing_subscriber::Layer;
    let Some(path) = &config.log.audit_file else {
        return Ok(None);
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening the audit file {}", path.display()))?;
    Ok(Some(
        tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .with_filter(tracing_subscriber::filter::filter_fn(is_audit))
            .boxed(),
    ))
}

/// Admin commands log only their audit lines: to `[log] audit_file` if set, else to stderr.
fn init_cli_logging(config: &Config) -> Result<()> {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let layer = match audit_file_layer(config)? {
        Some(l) => l,
        None => tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                m.target() == "mailkeep::audit"
            }))
            .boxed(),
    };
    tracing_subscriber::registry().with(layer).init();
    Ok(())
}

/// Who runs this command: the OS user (and `SUDO_USER` through sudo) and the uid.
fn os_user() -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid());
    // The uid's name in /etc/passwd (what the kernel says), else what the environment says.
    let from_passwd = std::fs::read_to_string("/etc/passwd").ok().and_then(|t| {
        t.lines().find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
        })
    });
    let name = from_passwd
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .unwrap_or_else(|| "?".into());
    match std::env::var("SUDO_USER") {
        Ok(sudo) => format!("{name}(uid {uid}, sudo by {sudo})"),
        Err(_) => format!("{name}(uid {uid})"),
    }
}

/// One audit line for an admin change made with the CLI:
/// `event=admin_change action=user_add name="alice" by="root(uid 0)" detail="..."`.
fn audit(action: &str, name: &str, detail: &str) {
    tracing::info!(
        target: "mailkeep::audit",
        event = %"admin_change",
        action = %action,
        name = ?name,
        by = ?os_user(),
        detail = ?detail,
    );
}

/// The store `[store] backend` names: the embedded one in the data directory, or PostgreSQL.
async fn open_store(config: &Config) -> Result<Arc<dyn MailStore>> {
    config.store.validate().map_err(anyhow::Error::msg)?;
    if config.store.backend == "postgres" {
        let url = config.store.url.as_deref().unwrap_or_default();
        let store = PgStore::open_with(url, config.store.pool_size, &bodies_config(config))
            .await
            .context("opening the PostgreSQL store")?;
        store.set_default_quota(config.quota.limits());
        store.set_tombstone_retention(config.store.tombstone_retention());
        return Ok(store);
    }
    Ok(open_sqlite(config)?)
}

/// Where the PostgreSQL store keeps body bytes (`[store] bodies`, `bodies_dir`, `[store.s3]`).
fn bodies_config(config: &Config) -> BodiesConfig {
    let s = &config.store;
    BodiesConfig {
        kind: match s.bodies.as_str() {
            "dir" => BodiesKind::Dir,
            "s3" => BodiesKind::S3,
            _ => BodiesKind::Postgres,
        },
        dir: s.bodies_dir.clone(),
        s3: (!s.s3.endpoint.is_empty()).then(|| S3Settings {
            endpoint: s.s3.endpoint.clone(),
            bucket: s.s3.bucket.clone(),
            region: s.s3.region.clone(),
            access_key: s.s3.access_key.clone(),
            secret_key: s.s3.secret_key.clone(),
            path_style: s.s3.path_style,
        }),
    }
}

fn open_sqlite(config: &Config) -> Result<Arc<SqliteStore>> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let store = SqliteStore::open(&config.data_dir)
        .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
    store.set_default_quota(config.quota.limits());
    store.set_tombstone_retention(config.store.tombstone_retention());
    Ok(store)
}

async fn serve(config: Config) -> Result<()> {
    let store = open_store(&config).await?;
    let first_start = store.list_users().await?.is_empty();
    let server = Server::bind(config.clone(), store.clone()).await?;
    // Printed before the IMAP lines, which tests wait for last.
    for addr in server.lmtp_addrs() {
        println!("mailkeep: lmtp listening on {addr}");
        tracing::info!(listener = "lmtp", %addr, "listening");
    }
    let addrs = server.local_addrs();
    for (kind, addr) in &addrs {
        // Tests and scripts read this line to find ports chosen with port 0.
        println!("mailkeep: {kind} listening on {addr}");
        tracing::info!(listener = %kind, %addr, "listening");
    }
    if first_start {
        welcome(&*store, &addrs, server.tls_fingerprint().as_deref()).await?;
    }
    server.run(shutdown_signal()).await
}

/// First start on an empty data directory: make an account and say exactly how to log in.
async fn welcome(
    store: &dyn MailStore,
    addrs: &[(mailkeep_server::ListenerKind, std::net::SocketAddr)],
    fingerprint: Option<&str>,
) -> Result<()> {
    let password = mailkeep_auth::generate_password();
    store
        .create_user("admin", &mailkeep_auth::hash_password(&password))
        .await?;
    println!();
    println!("  First start: created the account 'admin' with the password: {password}");
    println!("  (shown once; change it with `mailkeep user passwd admin`)");
    for (kind, addr) in addrs {
        let how = match kind {
            mailkeep_server::ListenerKind::Imap => {
                "IMAP, STARTTLS (plain login allowed from this machine)"
            }
            mailkeep_server::ListenerKind::Imaps => "IMAP over TLS, self-signed certificate",
            mailkeep_server::ListenerKind::Pop3 => {
                "POP3, STLS (plain login allowed from this machine)"
            }
            mailkeep_server::ListenerKind::Pop3s => "POP3 over TLS, self-signed certificate",
        };
        println!("  {kind}: host {} port {}  ({how})", addr.ip(), addr.port());
    }
    if let Some(f) = fingerprint {
        println!("  certificate SHA-256: {f}");
    }
    println!();
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn read_password(prompt_for: &str) -> Result<String> {
    let mut stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {prompt_for}: "))?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            bail!("the passwords differ");
        }
        first
    } else {
        let mut s = String::new();
        stdin.read_to_string(&mut s)?;
        // One line: the trailing newline of `echo` is not part of the password.
        s.lines().next().unwrap_or("").to_string()
    };
    if password.is_empty() {
        bail!("empty password");
    }
    Ok(password)
}

async fn user(config: Config, action: UserAction) -> Result<()> {
    let store = open_store(&config).await?;
    match action {
        UserAction::Add { name, secret } => {
            if !mailkeep_auth::valid_user_name(&name) {
                bail!("invalid user name {name:?}");
            }
            let (hash, keys) = new_secret(&config, &name, &secret)?;
            store.create_user(&name, &hash).await?;
            store_scram_keys(&*store, &name, keys).await?;
            audit("user_add", &name, "");
            eprintln!("added {name}");
        }
        UserAction::Del { name } => {
            store.delete_user(&name).await?;
            audit("user_del", &name, "");
            eprintln!("deleted {name}");
        }
        UserAction::Passwd { name, secret } => {
            if store.get_user(&name).await?.is_none() {
                bail!("no such user {name:?}");
            }
            let (hash, keys) = new_secret(&config, &name, &secret)?;
            // Setting the hash drops the old SCRAM keys; the new ones follow.
            store.set_password(&name, &hash).await?;
            store_scram_keys(&*store, &name, keys).await?;
            audit("user_passwd", &name, "");
            eprintln!("password changed for {name}");
        }
        UserAction::List => {
            for u in store.list_users().await? {
                println!("{}", u.name);
            }
        }
        UserAction::Import {
            format: ImportFormat::PasswdFile { file, update },
        } => {
            import_passwd_file(&*store, &file, update).await?;
            audit("user_import", "", &file.display().to_string());
        }
        UserAction::TwoFa { action } => two_fa(&*store, action).await?,
    }
    Ok(())
}

async fn two_fa(store: &dyn MailStore, action: TwoFaAction) -> Result<()> {
    use mailkeep_auth::twofa;
    match action {
        TwoFaAction::Enable { name } => {
            let enrollment = twofa::begin(store, &name, "Mailkeep").await?;
            audit("2fa_enroll", &name, "");
            println!("{}", enrollment.uri);
            match qrcode::QrCode::new(enrollment.uri.as_bytes()) {
                Ok(code) => println!(
                    "{}",
                    code.render::<qrcode::render::unicode::Dense1x2>()
                        .quiet_zone(true)
                        .build()
                ),
                Err(e) => eprintln!("(no QR code: {e})"),
            }
            println!(
                "Scan the QR code (or type the secret {}) into an authenticator app.",
                mailkeep_auth::totp::base32(&enrollment.secret)
            );
            use std::io::Write;
            std::io::stdout().flush()?;
            let interactive = std::io::stdin().is_terminal();
            let mut tries = if interactive { 3 } else { 1 };
            let codes = loop {
                if interactive {
                    eprint!("Code shown by the app: ");
                }
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                match twofa::confirm(store, &name, line.trim(), mailkeep_auth::totp::now()).await {
                    Ok(codes) => break codes,
                    Err(mailkeep_auth::app_passwords::Error::WrongCode) if tries > 1 => {
                        tries -= 1;
                        eprintln!("wrong code, try again");
                    }
                    Err(e) => {
                        audit("2fa_enable_failed", &name, &e.to_string());
                        bail!("{e}; two-factor authentication stays off for {name}");
                    }
                }
            };
            audit("2fa_enable", &name, "");
            println!("Two-factor authentication is on for {name}.");
            println!(
                "IMAP and POP3 clients now need app passwords: mailkeep app-password add {name} LABEL"
            );
            println!("Recovery codes (each logs in once in place of a password; shown only now):");
            for c in codes {
                println!("  {c}");
            }
        }
        TwoFaAction::Disable { name } => {
            if twofa::disable(store, &name).await? {
                audit("2fa_disable", &name, "");
                println!("Two-factor authentication is off for {name}.");
            } else {
                println!("Two-factor authentication was not on for {name}.");
            }
        }
        TwoFaAction::Status { name } => {
            let st = twofa::status(store, &name).await?;
            let state = if st.enabled {
                "on"
            } else if st.pending {
                "off (enrollment waiting for its first code)"
            } else {
                "off"
            };
            println!(
                "{name}: two-factor {state}, recovery codes left {}, app passwords {}",
                st.recovery_codes_left, st.app_passwords
            );
        }
    }
    Ok(())
}

/// Unix seconds as `2026-12-05 06:01 UTC`.
fn show_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

async fn app_password(config: Config, action: AppPasswordAction) -> Result<()> {
    use mailkeep_auth::app_passwords;
    let store = open_store(&config).await?;
    match action {
        AppPasswordAction::Add { name, label } => {
            let (password, _) = app_passwords::add(&*store, &name, &label).await?;
            audit("app_password_add", &name, &label);
            eprintln!("app password {label:?} for {name} (shown once):");
            println!("{password}");
        }
        AppPasswordAction::List { name } => {
            for p in app_passwords::list(&*store, &name).await? {
                let used = p.last_used.map_or("never used".to_string(), |t| {
                    format!("last used {}", show_time(t))
                });
                println!("{}\tcreated {}\t{used}", p.label, show_time(p.created));
            }
        }
        AppPasswordAction::Revoke { name, label } => {
            app_passwords::revoke(&*store, &name, &label).await?;
            audit("app_password_revoke", &name, &label);
            eprintln!("revoked the app password {label:?} of {name}");
        }
    }
    Ok(())
}

/// The hash to store (and SCRAM keys, for a password: SCRAM-SHA-256's, and SCRAM-SHA-1's
/// where `[auth] scram_sha1` is on) from `--hash` or a password read and checked against the
/// policy.
fn new_secret(
    config: &Config,
    name: &str,
    secret: &SecretArgs,
) -> Result<(String, Vec<mailkeep_auth::scram::Secrets>)> {
    use mailkeep_auth::scram::{Hash, MAX_ITERATIONS, Secrets};
    if let Some(hash) = &secret.hash {
        let stored = mailkeep_auth::hashes::import(hash).map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok((stored, Vec::new()));
    }
    let password = read_password(name)?;
    if !secret.allow_weak_password {
        mailkeep_auth::policy::check(&password, config.auth.min_password_length)?;
    }
    let iterations = config.auth.scram_iterations.clamp(1, MAX_ITERATIONS);
    let hashes: &[Hash] = if config.auth.scram_sha1 {
        &[Hash::Sha256, Hash::Sha1]
    } else {
        &[Hash::Sha256]
    };
    let keys = hashes
        .iter()
        .filter_map(|&h| Secrets::generate_with(h, password.as_bytes(), iterations))
        .collect();
    Ok((mailkeep_auth::hash_password(&password), keys))
}

/// Stores the SCRAM keys [`new_secret`] derived.
async fn store_scram_keys(
    store: &dyn MailStore,
    name: &str,
    keys: Vec<mailkeep_auth::scram::Secrets>,
) -> Result<()> {
    for s in keys {
        let sha1 = s.hash == mailkeep_auth::scram::Hash::Sha1;
        let keys = mailkeep_auth::scram_keys::to_store(s);
        if sha1 {
            store.set_scram_sha1_keys(name, Some(&keys)).await?;
        } else {
            store.set_scram_keys(name, Some(&keys)).await?;
        }
    }
    Ok(())
}

/// `mailkeep user import passwd-file FILE`: one account per line; a line that cannot be
/// imported is reported with its reason and skipped, the others go on.
async fn import_passwd_file(
    store: &dyn MailStore,
    file: &std::path::Path,
    update: bool,
) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let (mut imported, mut updated, mut skipped) = (0usize, 0usize, 0usize);
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let mut fields = line.splitn(3, ':');
        let name = fields.next().unwrap_or("").trim();
        let hash = fields.next().unwrap_or("").trim();
        let outcome: Result<&str, String> = async {
            if !mailkeep_auth::valid_user_name(name) {
                return Err("invalid user name".into());
            }
            if hash.is_empty() {
                return Err("no password hash".into());
            }
            let stored = mailkeep_auth::hashes::import(hash)?;
            match store.create_user(name, &stored).await {
                Ok(_) => Ok("imported"),
                Err(mailkeep_store::StoreError::UserExists) if update => {
                    store
                        .set_password(name, &stored)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok("updated")
                }
                Err(mailkeep_store::StoreError::UserExists) => {
                    Err("the account exists (--update replaces its hash)".into())
                }
                Err(e) => Err(e.to_string()),
            }
        }
        .await;
        match outcome {
            Ok("imported") => imported += 1,
            Ok(_) => updated += 1,
            Err(reason) => {
                skipped += 1;
                eprintln!("line {}: {name:?} skipped: {reason}", i + 1);
            }
        }
    }
    println!("imported {imported}, updated {updated}, skipped {skipped}");
    Ok(())
}

async fn db_migrate(config: Config) -> Result<()> {
    config.store.validate().map_err(anyhow::Error::msg)?;
    if config.store.backend == "postgres" {
        let url = config.store.url.as_deref().unwrap_or_default();
        let applied = PgStore::migrate(url)
            .await
            .context("migrating the PostgreSQL schema")?;
        match applied.as_slice() {
            [] => println!("ok: the PostgreSQL schema is up to date"),
            v => println!("ok: applied PostgreSQL schema migration(s) {v:?}"),
        }
    } else {
        // The embedded store upgrades its index when it opens.
        open_sqlite(&config)?;
        println!("ok: the embedded store is up to date");
    }
    Ok(())
}

async fn check(config: Config) -> Result<()> {
    let store = open_store(&config).await?;
    let problems = store.check().await?;
    if problems.is_empty() {
        println!("ok: index and message files agree");
        return Ok(());
    }
    for p in &problems {
        println!("problem: {p}");
    }
    bail!("{} problem(s) found", problems.len())
}

async fn backup(config: Config, dir: PathBuf) -> Result<()> {
    if !config.data_dir.join("index.sqlite3").is_file() {
        bail!(
            "no data directory to back up at {}",
            config.data_dir.display()
        );
    }
    if config.store.backend == "postgres" {
        bail!("backup is of the embedded store; back up PostgreSQL with its own tools (pg_dump)");
    }
    let store = open_sqlite(&config)?;
    let s = {
        let store = store.clone();
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || store.backup(&dir)).await?
    }
    .with_context(|| format!("backing up into {}", dir.display()))?;
    println!("backup: {s}");
    Ok(())
}

async fn restore(config: Config, dir: PathBuf) -> Result<()> {
    let s = SqliteStore::restore(&dir, &config.data_dir).with_context(|| {
        format!(
            "restoring {} into {}",
            dir.display(),
            config.data_dir.display()
        )
    })?;
    println!("restore: {s}");
    // Opening migrates an index from an older version; then the same check as `mailkeep check`.
    check(config).await
}

/// `mailkeep config check FILE`: exit 0 and "ok" (after any warnings), or 1 and the errors.
fn config_check(file: &std::path::Path) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    match Config::check_toml(&text) {
        Ok(warnings) => {
            for w in &warnings {
                println!("{}: warning: {w}", file.display());
            }
            println!("ok");
            Ok(())
        }
        Err(e) => {
            println!("{}: error: {e}", file.display());
            std::process::exit(1);
        }
    }
}

async fn domain(config: Config, action: DomainAction) -> Result<()> {
    let store = open_store(&config).await?;
    match action {
        DomainAction::Add { domain } => {
            let d = mailkeep_store::recipients::normalize_domain(&domain)?;
            match store.add_domain(&d).await {
                Err(mailkeep_store::StoreError::AlreadyExists) => {
                    bail!("{d} is already a local domain")
                }
                r => r?,
            }
            audit("domain_add", &d, "");
            eprintln!("added domain {d}");
        }
        DomainAction::Del { domain } => {
            let d = mailkeep_store::recipients::normalize_domain(&domain)?;
            store.delete_domain(&d).await?;
            audit("domain_del", &d, "");
            eprintln!("deleted domain {d}");
        }
        DomainAction::List => {
            for d in store.list_domains().await? {
                println!("{d}");
            }
        }
    }
    Ok(())
}

async fn alias(config: Config, action: AliasAction) -> Result<()> {
    let store = open_store(&config).await?;
    match action {
        AliasAction::Add { address, target } => {
            let a = mailkeep_store::recipients::normalize_alias(&address)?;
            match store.add_alias(&a, &target).await {
                Err(mailkeep_store::StoreError::AlreadyExists) => bail!("{a} is already an alias"),
                Err(mailkeep_store::StoreError::NoSuchUser) => bail!("no such account {target:?}"),
                r => r?,
            }
            audit("alias_add", &a, &target);
            eprintln!("added alias {a} -> {target}");
        }
        AliasAction::Del { address } => {
            let a = mailkeep_store::recipients::normalize_alias(&address)?;
            store.delete_alias(&a).await?;
            audit("alias_del", &a, "");
            eprintln!("deleted alias {a}");
        }
        AliasAction::List => {
            for (a, t) in store.list_aliases().await? {
                println!("{a} {t}");
            }
        }
    }
    Ok(())
}

/// A `quota set` value: `none`/`0` (the default applies), `unlimited`, or a limit read by
/// `parse` (a size for storage, a count for messages).
fn quota_setting(
    text: &str,
    parse: impl Fn(&str) -> Result<u64, String>,
) -> Result<mailkeep_store::QuotaSetting> {
    use mailkeep_store::QuotaSetting;
    Ok(match text.trim().to_ascii_lowercase().as_str() {
        "none" | "default" => QuotaSetting::Default,
        "unlimited" => QuotaSetting::Unlimited,
        _ => QuotaSetting::limit(parse(text.trim()).map_err(anyhow::Error::msg)?),
    })
}

/// `used/limit (where the limit comes from)` for one resource.
fn quota_line(
    used: u64,
    limit: Option<u64>,
    setting: mailkeep_store::QuotaSetting,
    show: impl Fn(u64) -> String,
) -> String {
    use mailkeep_store::QuotaSetting;
    let limit = limit.map_or("unlimited".to_string(), &show);
    let source = match setting {
        QuotaSetting::Default => "default",
        QuotaSetting::Unlimited | QuotaSetting::Limit(_) => "account",
    };
    format!("{}/{limit} ({source})", show(used))
}

async fn quota(config: Config, action: QuotaAction) -> Result<()> {
    use mailkeep_store::quota::parse_size;
    let count = |t: &str| {
        t.parse::<u64>()
            .map_err(|_| format!("{t:?} is not a number of messages"))
    };
    let store = open_store(&config).await?;
    match action {
        QuotaAction::Set {
            name,
            storage,
            messages,
        } => {
            if storage.is_none() && messages.is_none() {
                bail!("give --storage, --messages or both");
            }
            let detail = format!(
                "storage={} messages={}",
                storage.as_deref().unwrap_or("-"),
                messages.as_deref().unwrap_or("-")
            );
            let storage = storage.map(|s| quota_setting(&s, parse_size)).transpose()?;
            let messages = messages.map(|s| quota_setting(&s, count)).transpose()?;
            match store.set_quota(&name, storage, messages).await {
                Err(mailkeep_store::StoreError::NoSuchUser) => bail!("no such account {name:?}"),
                r => r?,
            }
            audit("quota_set", &name, &detail);
            println!("{}", quota_show(&*store, name).await?);
        }
        QuotaAction::Get { name } => println!("{}", quota_show(&*store, name).await?),
        QuotaAction::List => {
            for u in store.list_users().await? {
                println!("{}", quota_show(&*store, u.name).await?);
            }
        }
    }
    Ok(())
}

/// `NAME storage USED/LIMIT (SOURCE) messages USED/LIMIT (SOURCE)`.
async fn quota_show(store: &dyn MailStore, name: String) -> Result<String> {
    use mailkeep_store::quota::format_size;
    let Some(user) = store.get_user(&name).await? else {
        bail!("no such account {name:?}");
    };
    let q = store.quota(user.id).await?;
    let storage = quota_line(
        q.storage_used,
        q.limits.storage,
        q.storage_setting,
        format_size,
    );
    let messages = quota_line(
        q.messages_used,
        q.limits.messages,
        q.messages_setting,
        |n| n.to_string(),
    );
    Ok(format!("{name} storage {storage} messages {messages}"))
}
