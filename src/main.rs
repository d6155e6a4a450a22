//! `mailkeep`: the server and its admin commands. Argument parsing, configuration loading and
//! logging setup only; everything else lives in the crates.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use mailkeep_server::{Config, Server};
use mailkeep_store::MailStore;
use mailkeep_store::sqlite::SqliteStore;

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

fn main() -> Result<()> {
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
            runtime.block_on(user(config, action))
        }
        Command::Check(loc) => {
            let config = load_config(&loc)?;
            runtime.block_on(check(config))
        }
        Command::Domain { action, location } => {
            let config = load_config(&location)?;
            runtime.block_on(domain(config, action))
        }
        Command::Alias { action, location } => {
            let config = load_config(&location)?;
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
            runtime.block_on(quota(config, action))
        }
    }
}

fn load_config(loc: &Location) -> Result<Config> {
    let mut config = match &loc.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Config::from_toml(&text).with_context(|| format!("in {}", path.display()))?
        }
        None => Config::default(),
    };
    if let Some(dir) = &loc.data_dir {
        config.data_dir = dir.clone();
    }
    Ok(config)
}

fn init_logging(config: &Config) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match config.log.format.as_str() {
        "json" => builder.json().init(),
        "text" => builder.init(),
        other => bail!("log.format must be \"text\" or \"json\", not {other:?}"),
    }
    Ok(())
}

fn open_store(config: &Config) -> Result<Arc<SqliteStore>> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let store = SqliteStore::open(&config.data_dir)
        .with_context(|| format!("opening the store in {}", config.data_dir.display()))?;
    store.set_default_quota(config.quota.limits());
    store.set_tombstone_retention(config.store.tombstone_retention());
    Ok(store)
}

async fn serve(config: Config) -> Result<()> {
    let store = open_store(&config)?;
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
        welcome(&*store, &addrs, server.tls_fingerprint()).await?;
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
    let store = open_store(&config)?;
    match action {
        UserAction::Add { name, secret } => {
            if !mailkeep_auth::valid_user_name(&name) {
                bail!("invalid user name {name:?}");
            }
            let (hash, keys) = new_secret(&config, &name, &secret)?;
            store.create_user(&name, &hash).await?;
            if let Some(keys) = keys {
                store.set_scram_keys(&name, Some(&keys)).await?;
            }
            eprintln!("added {name}");
        }
        UserAction::Del { name } => {
            store.delete_user(&name).await?;
            eprintln!("deleted {name}");
        }
        UserAction::Passwd { name, secret } => {
            if store.get_user(&name).await?.is_none() {
                bail!("no such user {name:?}");
            }
            let (hash, keys) = new_secret(&config, &name, &secret)?;
            // Setting the hash drops the old SCRAM keys; the new ones follow.
            store.set_password(&name, &hash).await?;
            if let Some(keys) = keys {
                store.set_scram_keys(&name, Some(&keys)).await?;
            }
            eprintln!("password changed for {name}");
        }
        UserAction::List => {
            for u in store.list_users().await? {
                println!("{}", u.name);
            }
        }
        UserAction::Import {
            format: ImportFormat::PasswdFile { file, update },
        } => import_passwd_file(&*store, &file, update).await?,
    }
    Ok(())
}

/// The hash to store (and SCRAM keys, for a password) from `--hash` or a password read and
/// checked against the policy.
fn new_secret(
    config: &Config,
    name: &str,
    secret: &SecretArgs,
) -> Result<(String, Option<mailkeep_store::ScramKeys>)> {
    if let Some(hash) = &secret.hash {
        let stored = mailkeep_auth::hashes::import(hash).map_err(|e| anyhow::anyhow!("{e}"))?;
        return Ok((stored, None));
    }
    let password = read_password(name)?;
    if !secret.allow_weak_password {
        mailkeep_auth::policy::check(&password, config.auth.min_password_length)?;
    }
    let keys = mailkeep_auth::scram::Secrets::generate(
        password.as_bytes(),
        config
            .auth
            .scram_iterations
            .clamp(1, mailkeep_auth::scram::MAX_ITERATIONS),
    )
    .map(|s| mailkeep_store::ScramKeys {
        iterations: s.iterations,
        salt: s.salt,
        stored_key: s.stored_key.to_vec(),
        server_key: s.server_key.to_vec(),
    });
    Ok((mailkeep_auth::hash_password(&password), keys))
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

async fn check(config: Config) -> Result<()> {
    let store = open_store(&config)?;
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

async fn domain(config: Config, action: DomainAction) -> Result<()> {
    let store = open_store(&config)?;
    match action {
        DomainAction::Add { domain } => {
            let d = mailkeep_store::recipients::normalize_domain(&domain)?;
            match store.add_domain(&d).await {
                Err(mailkeep_store::StoreError::AlreadyExists) => {
                    bail!("{d} is already a local domain")
                }
                r => r?,
            }
            eprintln!("added domain {d}");
        }
        DomainAction::Del { domain } => {
            let d = mailkeep_store::recipients::normalize_domain(&domain)?;
            store.delete_domain(&d).await?;
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
    let store = open_store(&config)?;
    match action {
        AliasAction::Add { address, target } => {
            let a = mailkeep_store::recipients::normalize_alias(&address)?;
            match store.add_alias(&a, &target).await {
                Err(mailkeep_store::StoreError::AlreadyExists) => bail!("{a} is already an alias"),
                Err(mailkeep_store::StoreError::NoSuchUser) => bail!("no such account {target:?}"),
                r => r?,
            }
            eprintln!("added alias {a} -> {target}");
        }
        AliasAction::Del { address } => {
            let a = mailkeep_store::recipients::normalize_alias(&address)?;
            store.delete_alias(&a).await?;
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
    let store = open_store(&config)?;
    match action {
        QuotaAction::Set {
            name,
            storage,
            messages,
        } => {
            if storage.is_none() && messages.is_none() {
                bail!("give --storage, --messages or both");
            }
            let storage = storage.map(|s| quota_setting(&s, parse_size)).transpose()?;
            let messages = messages.map(|s| quota_setting(&s, count)).transpose()?;
            match store.set_quota(&name, storage, messages).await {
                Err(mailkeep_store::StoreError::NoSuchUser) => bail!("no such account {name:?}"),
                r => r?,
            }
            println!("{}", quota_show(&store, name).await?);
        }
        QuotaAction::Get { name } => println!("{}", quota_show(&store, name).await?),
        QuotaAction::List => {
            for u in store.list_users().await? {
                println!("{}", quota_show(&store, u.name).await?);
            }
        }
    }
    Ok(())
}

/// `NAME storage USED/LIMIT (SOURCE) messages USED/LIMIT (SOURCE)`.
async fn quota_show(store: &SqliteStore, name: String) -> Result<String> {
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
