//! Export of an account: as a Maildir++ tree Dovecot can read (`cur/` with the `:2,` flags and
//! keyword letters, `dovecot-keywords`, `dovecot-uidlist` version 3 with our UIDs and
//! UIDVALIDITY, the file's mtime as INTERNALDATE, `subscriptions`), or as mbox files in
//! Thunderbird's layout (`Folder`, children in `Folder.sbd/`), mboxrd-quoted.
//!
//! Message bytes are written as stored (CRLF line ends), so an import of an export gives the
//! same bytes. mbox messages get three header lines put first (`Status:`, `X-Status:`,
//! `X-Keywords:`) for their flags, which the mbox import takes off again; the `From ` line
//! carries the INTERNALDATE in UTC (to the second: the zone offset is not kept, nor by the
//! Maildir's mtime).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use mailkeep_store::{MailStore, Mailbox, MessageMeta, UserId};

use crate::maildir::info_suffix;
use crate::mbox::{export_header, from_line};
use crate::progress::Progress;

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Maildir,
    Mbox,
}

/// Exports every mailbox of `user` to `path`, which must be missing or empty (files of an
/// earlier export left there would be imported again with the new ones).
pub async fn export(
    store: &dyn MailStore,
    user: UserId,
    path: &Path,
    format: Format,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    if std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some()) {
        anyhow::bail!(
            "{} is not empty: export into a new directory",
            path.display()
        );
    }
    std::fs::create_dir_all(path)?;
    let mailboxes = store.list_mailboxes(user).await?;
    for mb in &mailboxes {
        let metas = store.messages(mb.id).await?;
        match format {
            Format::Maildir => maildir_folder(store, path, mb, &metas, progress).await?,
            Format::Mbox => mbox_folder(store, path, mb, &metas, progress).await?,
        }
    }
    if format == Format::Maildir {
        let subs = store.subscriptions(user).await?;
        let mut text = String::from("V\t2\n\n");
        for s in subs {
            text.push_str(&s.replace('/', "\t"));
            text.push('\n');
        }
        std::fs::write(path.join("subscriptions"), text)?;
    }
    Ok(())
}

/// The Maildir++ directory of a mailbox: the root for INBOX, `.A.B` for `A/B`.
pub fn maildir_dir(root: &Path, name: &str) -> PathBuf {
    if name == "INBOX" {
        return root.to_path_buf();
    }
    let dotted: Vec<String> = name.split('/').map(mailkeep_proto::utf7::encode).collect();
    root.join(format!(".{}", dotted.join(".")))
}

async fn maildir_folder(
    store: &dyn MailStore,
    root: &Path,
    mb: &Mailbox,
    metas: &[MessageMeta],
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let dir = maildir_dir(root, &mb.name);
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    // Keywords in order of first use; Maildir has letters for 26.
    let mut keywords: Vec<String> = Vec::new();
    for m in metas {
        for k in &m.flags.keywords {
            if !keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                keywords.push(k.clone());
            }
        }
    }
    let mut kw_text = String::new();
    for (i, k) in keywords.iter().take(26).enumerate() {
        kw_text.push_str(&format!("{i} {k}\n"));
    }
    std::fs::write(dir.join("dovecot-keywords"), kw_text)?;
    let mut uidlist = format!("3 V{} N{}\n", mb.uidvalidity, mb.uidnext.max(1));
    let mut folder = progress.folder(&mb.name, Some(metas.len() as u64));
    let pid = std::process::id();
    for m in metas {
        if m.flags.keywords.len() > 26
            || m.flags.keywords.iter().any(|k| {
                keywords
                    .iter()
                    .position(|x| x == k)
                    .is_some_and(|i| i >= 26)
            })
        {
            progress.skip(
                "keywords beyond the 26 Maildir letters (message kept, keyword lost)",
                format!("{} UID {}", mb.name, m.uid),
            );
        }
        let bytes = match store.message_bytes(mb.id, m.uid).await {
            Ok(b) => b,
            Err(e) => {
                progress.skip(
                    &format!("unreadable ({e})"),
                    format!("{} UID {}", mb.name, m.uid),
                );
                continue;
            }
        };
        let base = format!(
            "{}.M{}P{pid}.mailkeep,S={},W={}",
            m.internal_date.max(0),
            m.uid,
            bytes.len(),
            bytes.len()
        );
        let file = format!("{base}{}", info_suffix(&m.flags, &keywords));
        let path = dir.join("cur").join(&file);
        let mut f = std::fs::File::create(&path)?;
        f.write_all(&bytes)?;
        let when = UNIX_EPOCH + Duration::from_secs(m.internal_date.max(0) as u64);
        f.set_times(
            std::fs::FileTimes::new()
                .set_modified(when)
                .set_accessed(when),
        )?;
        uidlist.push_str(&format!("{} :{base}\n", m.uid));
        progress.advance(&mut folder, 1, bytes.len() as u64);
    }
    std::fs::write(dir.join("dovecot-uidlist"), uidlist)?;
    progress.finish_folder(folder);
    Ok(())
}

/// The mbox file of a mailbox: `A/B` is `A.sbd/B`.
pub fn mbox_file(root: &Path, name: &str) -> PathBuf {
    let parts: Vec<&str> = name.split('/').collect();
    let mut p = root.to_path_buf();
    for level in &parts[..parts.len() - 1] {
        p.push(format!("{level}.sbd"));
    }
    p.push(parts[parts.len() - 1]);
    p
}

/// `data` mboxrd-quoted: a `>` before every line that is `From ` after any number of `>`.
pub fn quote(data: &[u8], out: &mut Vec<u8>) {
    for line in data.split_inclusive(|&c| c == b'\n') {
        let n = line.iter().take_while(|&&c| c == b'>').count();
        if line[n..].starts_with(b"From ") {
            out.push(b'>');
        }
        out.extend_from_slice(line);
    }
}

async fn mbox_folder(
    store: &dyn MailStore,
    root: &Path,
    mb: &Mailbox,
    metas: &[MessageMeta],
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let path = mbox_file(root, &mb.name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut folder = progress.folder(&mb.name, Some(metas.len() as u64));
    let mut buf = Vec::new();
    for m in metas {
        let bytes = match store.message_bytes(mb.id, m.uid).await {
            Ok(b) => b,
            Err(e) => {
                progress.skip(
                    &format!("unreadable ({e})"),
                    format!("{} UID {}", mb.name, m.uid),
                );
                continue;
            }
        };
        let eol = "\r\n";
        buf.clear();
        buf.extend_from_slice(from_line(m.internal_date).as_bytes());
        buf.extend_from_slice(eol.as_bytes());
        buf.extend_from_slice(export_header(&m.flags, eol).as_bytes());
        quote(&bytes, &mut buf);
        if !bytes.ends_with(b"\n") {
            buf.extend_from_slice(eol.as_bytes());
        }
        buf.extend_from_slice(eol.as_bytes());
        out.write_all(&buf)?;
        progress.advance(&mut folder, 1, bytes.len() as u64);
    }
    out.flush()?;
    let f = out.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    progress.finish_folder(folder);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mboxrd_quote() {
        let mut out = Vec::new();
        quote(
            b"A: b\r\n\r\nFrom x\r\n>From y\r\n>>From z\r\nFromage\r\n",
            &mut out,
        );
        assert_eq!(
            out,
            b"A: b\r\n\r\n>From x\r\n>>From y\r\n>>>From z\r\nFromage\r\n".to_vec()
        );
    }

    #[test]
    fn layouts() {
        let r = Path::new("/x");
        assert_eq!(maildir_dir(r, "INBOX"), Path::new("/x"));
        assert_eq!(maildir_dir(r, "Lists/rust"), Path::new("/x/.Lists.rust"));
        assert_eq!(maildir_dir(r, "Entwürfe"), Path::new("/x/.Entw&APw-rfe"));
        assert_eq!(mbox_file(r, "Lists/rust"), Path::new("/x/Lists.sbd/rust"));
        assert_eq!(mbox_file(r, "INBOX"), Path::new("/x/INBOX"));
    }
}
