//! `mailkeep store copy --from CONFIG --to CONFIG`: moves an installation between the
//! embedded store and PostgreSQL (either way, or between two of the same kind), with progress
//! on standard error and a verification count at the end.
//!
//! Everything goes through the `MailStore` trait, so any pair of backends works. What is
//! copied: installation secrets (the key of app-password hashes and of SCRAM stand-in salts),
//! local domains, aliases, and per account its password hash, SCRAM keys, TOTP secret with
//! its recovery code hashes, app passwords (hashes, labels, dates), quota settings,
//! subscriptions, and every mailbox with its id (MAILBOXID), UIDVALIDITY, UIDNEXT,
//! HIGHESTMODSEQ and special use, and its messages with their UIDs, flags, keywords,
//! INTERNALDATE, SAVEDATE, modseqs and bytes (identical bodies stay stored once: both stores
//! share bodies by content). Not copied: expunge tombstones (the target treats every expunge
//! before the copy as forgotten, so a QRESYNC client is told of every missing UID), `\Recent`
//! (nothing is recent after a copy), THREADIDs (given again from the messages' headers) and
//! cached SORT keys (made again when needed).
//!
//! Like `doveadm backup` aimed at a new server, the target must be empty (no account, domain
//! or alias) unless `--force`, which replaces the target's accounts of the same names and adds
//! the rest; the source is only read. Stop the server on the source first: mail delivered
//! during the copy may be missed, and the verification then reports the difference.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use mailkeep_store::{
    Flags, MailStore, Mailbox, MessageBytes, MessageState, NewMessage, QuotaLimits, UserId,
};
use mailkeep_transfer::progress::Progress;
use sha2::{Digest, Sha256};

/// Messages per target transaction (one fsync each).
const BATCH_MESSAGES: usize = 500;
/// Bytes per target transaction (whichever of the two comes first).
const BATCH_BYTES: u64 = 16 << 20;

#[derive(Subcommand)]
pub enum StoreAction {
    /// Copy everything the store holds (accounts, secrets, domains, aliases, mailboxes,
    /// messages with their UIDs) into another store, e.g. from the embedded store to
    /// PostgreSQL or back; then compare both. Stop the server first.
    Copy(CopyArgs),
}

#[derive(Args)]
pub struct CopyArgs {
    /// The configuration of the store to copy from (only read).
    #[arg(long, value_name = "CONFIG")]
    from: PathBuf,
    /// The configuration of the store to copy into (empty, unless --force).
    #[arg(long, value_name = "CONFIG")]
    to: PathBuf,
    /// Copy into a store that already holds accounts: accounts of the same names there are
    /// deleted and copied anew, the others are kept.
    #[arg(long)]
    force: bool,
    /// No per-folder progress; only the summary and the verification.
    #[arg(long)]
    quiet: bool,
}

pub async fn run(action: StoreAction) -> Result<()> {
    let StoreAction::Copy(args) = action;
    let location = |config: &PathBuf| crate::Location {
        config: Some(config.clone()),
        data_dir: None,
    };
    let from = crate::load_config(&location(&args.from))?;
    let to = crate::load_config(&location(&args.to))?;
    if same_store(&from, &to) {
        bail!("--from and --to name the same store");
    }
    let source = crate::open_store(&from)
        .await
        .with_context(|| format!("opening the source store ({})", args.from.display()))?;
    let target = crate::open_store(&to)
        .await
        .with_context(|| format!("opening the target store ({})", args.to.display()))?;
    // The source's mail is copied whatever the target's default quota says; each account's
    // own setting is copied after its mail.
    target.set_default_quota(QuotaLimits::default());
    if !args.force {
        refuse_non_empty(&*target).await?;
    }
    let mut progress = Progress::new("store copy", args.quiet);
    let hashes = copy_all(&*source, &*target, &mut progress).await?;
    let summary = progress.finish();
    let report = verify(&*source, &*target, &hashes).await?;
    println!(
        "copied: {} accounts, {} folders, {} messages, {} bytes in {:.1} s ({:.0} msg/s)",
        report.accounts,
        summary.folders,
        summary.messages,
        summary.bytes,
        summary.elapsed.as_secs_f64(),
        summary.messages as f64 / summary.elapsed.as_secs_f64().max(1e-3)
    );
    println!(
        "verified: {} accounts, {} mailboxes, {} messages (UIDs, flags, dates, SHA-256 of \
         the bodies): {} mismatches",
        report.accounts,
        report.mailboxes,
        report.messages,
        report.mismatches.len()
    );
    if !report.mismatches.is_empty() {
        for m in report.mismatches.iter().take(50) {
            println!("mismatch: {m}");
        }
        if report.mismatches.len() > 50 {
            println!("... and {} more", report.mismatches.len() - 50);
        }
        bail!("the target differs from the source");
    }
    Ok(())
}

fn same_store(a: &mailkeep_server::Config, b: &mailkeep_server::Config) -> bool {
    match (a.store.backend.as_str(), b.store.backend.as_str()) {
        ("postgres", "postgres") => a.store.url == b.store.url,
        ("postgres", _) | (_, "postgres") => false,
        _ => {
            let canon = |p: &std::path::Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
            canon(&a.data_dir) == canon(&b.data_dir)
        }
    }
}

async fn refuse_non_empty(target: &dyn MailStore) -> Result<()> {
    let users = target.list_users().await?.len();
    let domains = target.list_domains().await?.len();
    let aliases = target.list_aliases().await?.len();
    if users + domains + aliases > 0 {
        bail!(
            "the target store is not empty ({users} accounts, {domains} domains, {aliases} \
             aliases): copy into a new store, or give --force to replace the target's accounts \
             of the same names"
        );
    }
    Ok(())
}

/// SHA-256 of each message's bytes as read from the source, per (account, mailbox): what the
/// verification compares the target's bytes with.
type BodyHashes = HashMap<(String, String), Vec<(u32, [u8; 32])>>;

async fn copy_all(
    source: &dyn MailStore,
    target: &dyn MailStore,
    progress: &mut Progress,
) -> Result<BodyHashes> {
    for (name, value) in source.server_secrets().await? {
        target.set_server_secret(&name, &value).await?;
    }
    for domain in source.list_domains().await? {
        if !target.is_local_domain(&domain).await? {
            target.add_domain(&domain).await?;
        }
    }
    let mut hashes = BodyHashes::new();
    for user in source.list_users().await? {
        copy_account(source, target, progress, &user.name, user.id, &mut hashes)
            .await
            .with_context(|| format!("copying the account {}", user.name))?;
    }
    for (address, account) in source.list_aliases().await? {
        match target.alias_target(&address).await? {
            Some(t) if t == account => {}
            Some(_) => {
                target.delete_alias(&address).await?;
                target.add_alias(&address, &account).await?;
            }
            None => target.add_alias(&address, &account).await?,
        }
    }
    Ok(hashes)
}

async fn copy_account(
    source: &dyn MailStore,
    target: &dyn MailStore,
    progress: &mut Progress,
    name: &str,
    id: UserId,
    hashes: &mut BodyHashes,
) -> Result<()> {
    let src = source
        .get_user(name)
        .await?
        .context("the account vanished from the source")?;
    if target.get_user(name).await?.is_some() {
        target.delete_user(name).await?;
    }
    let tu = target.create_user(name, &src.password_hash).await?;
    if let Some(keys) = source.get_scram_keys(name).await? {
        target.set_scram_keys(name, Some(&keys)).await?;
    }
    if let Some(keys) = source.get_scram_sha1_keys(name).await? {
        target.set_scram_sha1_keys(name, Some(&keys)).await?;
    }
    if let Some(tf) = source.get_two_factor(name).await? {
        let codes = source.recovery_code_hashes(name).await?;
        target.set_two_factor(name, Some(&tf), &codes).await?;
    }
    for app in source.app_password_hashes(name).await? {
        target.restore_app_password(name, &app).await?;
    }
    // INBOX first: it takes the place (and frees the id) of the INBOX `create_user` made.
    let mut mailboxes = source.list_mailboxes(id).await?;
    mailboxes.sort_by_key(|m| m.name != "INBOX");
    for mb in mailboxes {
        let done = copy_mailbox(source, target, progress, name, tu.id, &mb)
            .await
            .with_context(|| format!("copying the mailbox {}", mb.name))?;
        hashes.insert((name.to_owned(), mb.name.clone()), done);
    }
    for sub in source.subscriptions(id).await? {
        target.subscribe(tu.id, &sub).await?;
    }
    let quota = source.quota(id).await?;
    target
        .set_quota(
            name,
            Some(quota.storage_setting),
            Some(quota.messages_setting),
        )
        .await?;
    Ok(())
}

async fn copy_mailbox(
    source: &dyn MailStore,
    target: &dyn MailStore,
    progress: &mut Progress,
    user: &str,
    target_user: UserId,
    mb: &Mailbox,
) -> Result<Vec<(u32, [u8; 32])>> {
    let made = target.restore_mailbox(target_user, mb).await?;
    if made.id != mb.id {
        tracing::warn!(
            user,
            mailbox = %mb.name,
            "mailbox id {} is taken in the target: MAILBOXID changes (now {})",
            mb.id,
            made.id
        );
        eprintln!(
            "store copy: {user}/{}: id {} is taken in the target, MAILBOXID changes",
            mb.name, mb.id
        );
    }
    let metas = source.messages(mb.id).await?;
    let uids: Vec<u32> = metas.iter().map(|m| m.uid).collect();
    let saved: HashMap<u32, i64> = source
        .message_objects(mb.id, &uids)
        .await?
        .into_iter()
        .map(|(uid, o)| (uid, o.save_date))
        .collect();
    let mut folder = progress.folder(&format!("{user}/{}", mb.name), Some(metas.len() as u64));
    let mut hashes = Vec::with_capacity(metas.len());
    let mut states = Vec::with_capacity(metas.len());
    let mut batch: Vec<(u32, NewMessage)> = Vec::new();
    let mut batch_bytes = 0u64;
    for (i, meta) in metas.iter().enumerate() {
        let bytes = source.message_bytes(mb.id, meta.uid).await?;
        hashes.push((meta.uid, Sha256::digest(&bytes[..]).into()));
        states.push(MessageState {
            uid: meta.uid,
            modseq: meta.modseq,
            save_date: saved.get(&meta.uid).copied().unwrap_or(meta.internal_date),
        });
        batch_bytes += bytes.len() as u64;
        let parsed = mailkeep_mime::analyze(&bytes).into();
        batch.push((
            meta.uid,
            NewMessage {
                data: MessageBytes::Memory(bytes),
                flags: Flags {
                    system: meta.flags.system,
                    keywords: meta.flags.keywords.clone(),
                },
                internal_date: meta.internal_date,
                internal_date_offset: meta.internal_date_offset,
                parsed,
            },
        ));
        if batch.len() >= BATCH_MESSAGES || batch_bytes >= BATCH_BYTES || i + 1 == metas.len() {
            let n = batch.len() as u64;
            target
                .append_with_uids(made.id, std::mem::take(&mut batch))
                .await?;
            progress.advance(&mut folder, n, batch_bytes);
            batch_bytes = 0;
        }
    }
    target
        .restore_message_state(made.id, mb.uidnext, mb.highest_modseq, &states)
        .await?;
    progress.finish_folder(folder);
    Ok(hashes)
}

#[derive(Default)]
struct Verification {
    accounts: u64,
    mailboxes: u64,
    messages: u64,
    mismatches: Vec<String>,
}

/// Compares the target with the source: per account its secrets and settings, per mailbox
/// its UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and message count, per message its UID, flags,
/// dates, modseq and the SHA-256 of its bytes (read back from the target).
async fn verify(
    source: &dyn MailStore,
    target: &dyn MailStore,
    hashes: &BodyHashes,
) -> Result<Verification> {
    let mut v = Verification::default();
    let mut mismatches = Vec::new();
    for user in source.list_users().await? {
        v.accounts += 1;
        let name = user.name.as_str();
        let Some(tu) = target.get_user(name).await? else {
            mismatches.push(format!("{name}: account missing"));
            continue;
        };
        if tu.password_hash != user.password_hash {
            mismatches.push(format!("{name}: password hash differs"));
        }
        if target.get_scram_keys(name).await? != source.get_scram_keys(name).await?
            || target.get_scram_sha1_keys(name).await? != source.get_scram_sha1_keys(name).await?
        {
            mismatches.push(format!("{name}: SCRAM keys differ"));
        }
        if target.get_two_factor(name).await? != source.get_two_factor(name).await?
            || target.recovery_code_hashes(name).await? != source.recovery_code_hashes(name).await?
        {
            mismatches.push(format!(
                "{name}: two-factor secret or recovery codes differ"
            ));
        }
        if target.app_password_hashes(name).await? != source.app_password_hashes(name).await? {
            mismatches.push(format!("{name}: app passwords differ"));
        }
        let (sq, tq) = (source.quota(user.id).await?, target.quota(tu.id).await?);
        if (sq.storage_setting, sq.messages_setting) != (tq.storage_setting, tq.messages_setting) {
            mismatches.push(format!("{name}: quota settings differ"));
        }
        let (mut ss, mut ts) = (
            source.subscriptions(user.id).await?,
            target.subscriptions(tu.id).await?,
        );
        ss.sort();
        ts.sort();
        if ss != ts {
            mismatches.push(format!("{name}: subscriptions differ"));
        }
        let smbs = source.list_mailboxes(user.id).await?;
        let tmbs = target.list_mailboxes(tu.id).await?;
        for extra in tmbs
            .iter()
            .filter(|t| !smbs.iter().any(|s| s.name == t.name))
        {
            mismatches.push(format!("{name}/{}: only in the target", extra.name));
        }
        for smb in &smbs {
            v.mailboxes += 1;
            let at = format!("{name}/{}", smb.name);
            let Some(tmb) = tmbs.iter().find(|t| t.name == smb.name) else {
                mismatches.push(format!("{at}: mailbox missing"));
                continue;
            };
            if (tmb.uidvalidity, tmb.uidnext, tmb.special_use.as_deref())
                != (smb.uidvalidity, smb.uidnext, smb.special_use.as_deref())
            {
                mismatches.push(format!(
                    "{at}: UIDVALIDITY/UIDNEXT/special use {}/{}/{:?} in the source, {}/{}/{:?} \
                     in the target",
                    smb.uidvalidity,
                    smb.uidnext,
                    smb.special_use,
                    tmb.uidvalidity,
                    tmb.uidnext,
                    tmb.special_use
                ));
            }
            if tmb.highest_modseq < smb.highest_modseq {
                mismatches.push(format!("{at}: HIGHESTMODSEQ went down"));
            }
            let smsgs = source.messages(smb.id).await?;
            let tmsgs = target.messages(tmb.id).await?;
            v.messages += smsgs.len() as u64;
            if smsgs.len() != tmsgs.len() {
                mismatches.push(format!(
                    "{at}: {} messages in the source, {} in the target",
                    smsgs.len(),
                    tmsgs.len()
                ));
            }
            let suids: Vec<u32> = smsgs.iter().map(|m| m.uid).collect();
            let tuids: Vec<u32> = tmsgs.iter().map(|m| m.uid).collect();
            if suids != tuids {
                mismatches.push(format!("{at}: the UIDs differ"));
                continue;
            }
            for (s, t) in smsgs.iter().zip(&tmsgs) {
                if s != t {
                    mismatches.push(format!(
                        "{at} UID {}: flags, modseq, size or INTERNALDATE differ",
                        s.uid
                    ));
                }
            }
            let copied = hashes
                .get(&(name.to_owned(), smb.name.clone()))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let mut bad = 0u64;
            for &(uid, want) in copied {
                let got: [u8; 32] = match target.message_bytes(tmb.id, uid).await {
                    Ok(b) => Sha256::digest(&b[..]).into(),
                    Err(_) => [0; 32],
                };
                if got != want {
                    bad += 1;
                }
            }
            if bad > 0 {
                mismatches.push(format!("{at}: {bad} bodies differ"));
            }
        }
    }
    let (mut sd, mut td) = (source.list_domains().await?, target.list_domains().await?);
    sd.sort();
    td.sort();
    if sd.iter().any(|d| !td.contains(d)) {
        mismatches.push("domains missing in the target".into());
    }
    let ta = target.list_aliases().await?;
    for alias in source.list_aliases().await? {
        if !ta.contains(&alias) {
            mismatches.push(format!("alias {} missing in the target", alias.0));
        }
    }
    v.mismatches = mismatches;
    Ok(v)
}
