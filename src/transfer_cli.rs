//! `mailkeep import` and `mailkeep export`: argument parsing only; the work is in
//! `mailkeep-transfer`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Subcommand, ValueEnum};
use mailkeep_server::Config;
use mailkeep_transfer::progress::Progress;
use mailkeep_transfer::target::ImportOptions;
use mailkeep_transfer::{export, maildir, mbox};

#[derive(Subcommand)]
pub enum ImportSource {
    /// A Maildir (Maildir++ as Dovecot and Courier write it, or `--layout fs`): flags,
    /// keywords (`dovecot-keywords`), UIDs and UIDVALIDITY (`dovecot-uidlist`), INTERNALDATE
    /// from each file's mtime.
    Maildir {
        /// The Maildir's root (the INBOX's `cur/` and `new/` are there).
        path: PathBuf,
        /// The account to import into.
        #[arg(long)]
        user: String,
        /// `maildir++` (`.Sent`, `.Lists.rust`) or `fs` (`Sent/cur`, `Lists/rust/cur`).
        #[arg(long, value_enum, default_value_t = Layout::Maildirplusplus)]
        layout: Layout,
    },
    /// An mbox file or a directory of them (Thunderbird's `Folder.sbd/`, Apple Mail's
    /// `Folder.mbox/mbox`): mboxrd or mboxo, flags from `Status:`, `X-Status:`,
    /// `X-Keywords:` and `X-Mozilla-Status:`.
    Mbox {
        /// An mbox file, or a directory of them.
        path: PathBuf,
        /// The account to import into.
        #[arg(long)]
        user: String,
        /// The folder to import a file into (default: the file's name), or the folder to put
        /// a directory's folders under.
        #[arg(long)]
        folder: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Layout {
    #[value(name = "maildir++")]
    Maildirplusplus,
    Fs,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Maildir,
    Mbox,
}

pub async fn import(config: Config, source: ImportSource) -> Result<()> {
    let store = crate::open_store(&config).await?;
    let opts = ImportOptions {
        max_message_size: config.limits.max_message_size,
    };
    let user_of = |name: String| {
        let store = store.clone();
        async move {
            store
                .get_user(&name)
                .await?
                .with_context(|| format!("no such account {name:?}"))
        }
    };
    match source {
        ImportSource::Maildir { path, user, layout } => {
            let account = user_of(user).await?;
            let mut progress = Progress::new(format!("import {}", account.name), false);
            let layout = match layout {
                Layout::Maildirplusplus => maildir::Layout::MaildirPlusPlus,
                Layout::Fs => maildir::Layout::Fs,
            };
            maildir::import(&*store, account.id, &path, layout, opts, &mut progress).await?;
            progress.finish();
        }
        ImportSource::Mbox { path, user, folder } => {
            let account = user_of(user).await?;
            let mut progress = Progress::new(format!("import {}", account.name), false);
            mbox::import(
                &*store,
                account.id,
                &path,
                folder.as_deref(),
                opts,
                &mut progress,
            )
            .await?;
            progress.finish();
        }
    }
    Ok(())
}

pub async fn export(
    config: Config,
    format: ExportFormat,
    user: String,
    path: PathBuf,
) -> Result<()> {
    let store = crate::open_store(&config).await?;
    let account = store
        .get_user(&user)
        .await?
        .with_context(|| format!("no such account {user:?}"))?;
    let mut progress = Progress::new(format!("export {}", account.name), false);
    let format = match format {
        ExportFormat::Maildir => export::Format::Maildir,
        ExportFormat::Mbox => export::Format::Mbox,
    };
    export::export(&*store, account.id, &path, format, &mut progress).await?;
    progress.finish();
    Ok(())
}
