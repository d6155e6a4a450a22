//! `mailkeep migrate`: arguments and password handling; the work is in
//! `mailkeep_transfer::migrate`.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use mailkeep_store::MailStore;
use mailkeep_transfer::migrate::{self, Options, client::Login};

/// Pull every folder, message, flag, keyword and INTERNALDATE from another IMAP server.
/// Resumable: a second run fetches only what is new and reports what changed at the source.
#[derive(Args)]
pub struct MigrateArgs {
    /// The source: `imaps://user@host[:port]` (or `imap://` for plain/STARTTLS). Without a
    /// user, the source login is the local account name.
    #[arg(long)]
    pub from: String,
    /// The local account to migrate into (and the source login unless --from names one).
    #[arg(
        long,
        required_unless_present = "all_users",
        conflicts_with = "all_users"
    )]
    pub user: Option<String>,
    /// A file whose first line is the source password (else standard input, or asked).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Migrate many accounts: lines `user password`, or `user` with --master-user.
    #[arg(long, value_name = "FILE")]
    pub all_users: Option<PathBuf>,
    /// Log in at the source as this master user on behalf of each account (AUTHENTICATE
    /// PLAIN with an authorization identity, or Dovecot's `user*master` LOGIN).
    #[arg(long)]
    pub master_user: Option<String>,
    /// A file whose first line is the master user's password.
    #[arg(long, requires = "master_user")]
    pub master_password_file: Option<PathBuf>,
    /// Accounts migrated at once with --all-users.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// Accept any TLS certificate from the source (a self-signed test server).
    #[arg(long)]
    pub insecure: bool,
    /// Delete local copies of messages that are gone at the source (otherwise only reported).
    #[arg(long)]
    pub delete_missing: bool,
    /// No progress lines, only the final report.
    #[arg(long)]
    pub quiet: bool,
    /// UIDs per UID FETCH command.
    #[arg(long, default_value_t = 200, hide = true)]
    pub chunk: usize,
    /// UID FETCH commands in flight.
    #[arg(long, default_value_t = 4, hide = true)]
    pub in_flight: usize,
}

fn first_line(path: &Path) -> Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let line = text.lines().next().unwrap_or("").to_string();
    if line.is_empty() {
        bail!("{} holds no password", path.display());
    }
    Ok(line)
}

fn ask_password(prompt_for: &str) -> Result<String> {
    let mut stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        rpassword::prompt_password(format!("Source password for {prompt_for}: "))?
    } else {
        let mut s = String::new();
        stdin.read_to_string(&mut s)?;
        s.lines().next().unwrap_or("").to_string()
    };
    if password.is_empty() {
        bail!("empty password");
    }
    Ok(password)
}

/// Makes the local account if it is missing and its source password is known (the same
/// password then works here); otherwise it must exist.
async fn ensure_account(store: &dyn MailStore, name: &str, password: Option<&str>) -> Result<()> {
    if store.get_user(name).await?.is_some() {
        return Ok(());
    }
    if !mailkeep_auth::valid_user_name(name) {
        bail!("invalid local account name {name:?}");
    }
    let Some(password) = password else {
        bail!("no local account {name:?}: make it first with `mailkeep user add {name}`");
    };
    let hash = mailkeep_auth::hash_password(password);
    match store.create_user(name, &hash).await {
        Ok(_) | Err(mailkeep_store::StoreError::UserExists) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

pub async fn run(store: Arc<dyn MailStore>, data_dir: &Path, args: MigrateArgs) -> Result<()> {
    let (endpoint, url_user) = migrate::parse_url(&args.from, args.insecure)?;
    let master = match &args.master_user {
        Some(m) => {
            let pw = match &args.master_password_file {
                Some(f) => first_line(f)?,
                None => ask_password(m)?,
            };
            Some((m.clone(), pw))
        }
        None => None,
    };
    let job = |local: String, source_user: String, password: Option<String>| -> Result<Options> {
        let login = match (&master, password) {
            (_, Some(password)) => Login::User {
                user: source_user,
                password,
            },
            (Some((m, pw)), None) => Login::Master {
                user: source_user,
                master: m.clone(),
                password: pw.clone(),
            },
            (None, None) => bail!("no password for {source_user} (and no --master-user)"),
        };
        Ok(Options {
            endpoint: endpoint.clone(),
            login,
            local_user: local,
            data_dir: data_dir.to_path_buf(),
            delete_missing: args.delete_missing,
            quiet: args.quiet,
            chunk: args.chunk,
            in_flight: args.in_flight,
        })
    };
    let mut jobs = Vec::new();
    if let Some(file) = &args.all_users {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        for line in text.lines() {
            let Some((user, password)) = migrate::parse_users_line(line) else {
                continue;
            };
            ensure_account(&*store, &user, password.as_deref()).await?;
            jobs.push(job(user.clone(), user, password)?);
        }
    } else {
        let local = args.user.clone().unwrap_or_default();
        let source_user = url_user.clone().unwrap_or_else(|| local.clone());
        let password = match (&args.password_file, &master) {
            (Some(f), _) => Some(first_line(f)?),
            (None, Some(_)) => None,
            (None, None) => Some(ask_password(&source_user)?),
        };
        ensure_account(&*store, &local, password.as_deref()).await?;
        jobs.push(job(local, source_user, password)?);
    }
    let mut failed = 0;
    for (user, result) in migrate::migrate_many(store, jobs, args.parallel).await {
        match result {
            Ok(report) => println!("{report}"),
            Err(e) => {
                failed += 1;
                println!("{user}: failed: {e:#}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} account(s) failed");
    }
    Ok(())
}
