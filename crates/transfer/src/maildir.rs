//! Maildir import: Maildir++ as Dovecot and Courier write it (`.Sent`, `.Lists.rust` beside
//! the INBOX's `cur/` and `new/`), or the plain layout (`Sent/cur`, `Lists/rust/cur`) with
//! [`Layout::Fs`].
//!
//! - Flags come from the `:2,` suffix (`D`raft, `F`lagged, `R`eplied, `S`een, `T`rashed;
//!   `P`assed has no IMAP flag), keywords from its letters `a`..`z` through the folder's
//!   `dovecot-keywords`; a file in `new/` without the suffix has none.
//! - UIDs and UIDVALIDITY come from `dovecot-uidlist` (versions 1 and 3) when there is one and
//!   the target mailbox is new or never held mail; files the uidlist does not name get UIDs
//!   after its next UID. Otherwise messages go after what the mailbox holds.
//! - INTERNALDATE is the file's mtime, as Dovecot takes it; `,S=` and `,W=` are sizes only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use mailkeep_store::{Flags, MailStore, MessageBytes, NewMessage, ParsedInfo, UserId, flags};

use crate::progress::Progress;
use crate::target::{ImportOptions, Target};

/// How folders are laid out under the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// Maildir++: `.Parent.Child/` directories beside the INBOX's `cur/`.
    #[default]
    MaildirPlusPlus,
    /// One directory per folder level: `Parent/Child/cur`.
    Fs,
}

/// System flags and keyword letters of a `:2,` suffix; `None` if the name has none.
pub fn parse_info(file_name: &str) -> Option<(u32, Vec<u8>)> {
    let (_, info) = file_name.rsplit_once(":2,")?;
    let mut system = 0;
    let mut letters = Vec::new();
    for c in info.bytes() {
        match c {
            b'D' => system |= flags::DRAFT,
            b'F' => system |= flags::FLAGGED,
            b'R' => system |= flags::ANSWERED,
            b'S' => system |= flags::SEEN,
            b'T' => system |= flags::DELETED,
            b'a'..=b'z' => letters.push(c),
            _ => {}
        }
    }
    Some((system, letters))
}

/// The `:2,` suffix for these flags (letters for the keywords found in `keywords`, which
/// gives each keyword's index), system flags in ASCII order as the Maildir spec asks.
pub fn info_suffix(f: &Flags, keywords: &[String]) -> String {
    let mut s = String::from(":2,");
    for (bit, c) in [
        (flags::DRAFT, 'D'),
        (flags::FLAGGED, 'F'),
        (flags::ANSWERED, 'R'),
        (flags::SEEN, 'S'),
        (flags::DELETED, 'T'),
    ] {
        if f.system & bit != 0 {
            s.push(c);
        }
    }
    for k in &f.keywords {
        if let Some(i) = keywords.iter().position(|x| x.eq_ignore_ascii_case(k))
            && i < 26
        {
            s.push((b'a' + i as u8) as char);
        }
    }
    s
}

/// The base name: the file name without its `:2,` info (what `dovecot-uidlist` names).
pub fn base_name(file_name: &str) -> &str {
    match file_name.find(':') {
        Some(i) => &file_name[..i],
        None => file_name,
    }
}

/// `,S=` (size) and `,W=` (size with CRLF line ends) of a Dovecot file name.
pub fn size_fields(file_name: &str) -> (Option<u64>, Option<u64>) {
    let (mut s, mut w) = (None, None);
    for field in base_name(file_name).split(',').skip(1) {
        if let Some(v) = field.strip_prefix("S=") {
            s = v.parse().ok();
        } else if let Some(v) = field.strip_prefix("W=") {
            w = v.parse().ok();
        }
    }
    (s, w)
}

/// `dovecot-keywords`: `N name` per line; the keyword of letter `a` + N.
pub fn parse_keywords(text: &str) -> Vec<Option<String>> {
    let mut out: Vec<Option<String>> = vec![None; 26];
    for line in text.lines() {
        let Some((n, name)) = line.trim_end().split_once(' ') else {
            continue;
        };
        if let Ok(i) = n.parse::<usize>()
            && i < 26
            && !name.is_empty()
        {
            out[i] = Some(name.to_string());
        }
    }
    out
}

/// What `dovecot-uidlist` says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Uidlist {
    pub uidvalidity: u32,
    pub next_uid: u32,
    /// Base name -> UID.
    pub uids: HashMap<String, u32>,
}

/// Parses `dovecot-uidlist`, version 1 (`1 UIDVALIDITY NEXTUID`, then `UID NAME`) or 3
/// (`3 V<uidvalidity> N<nextuid> G<guid>`, then `UID [EXT...] :NAME`). `None` if unreadable.
pub fn parse_uidlist(text: &str) -> Option<Uidlist> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split_whitespace().collect();
    let mut list = Uidlist::default();
    match *header.first()? {
        "1" => {
            list.uidvalidity = header.get(1)?.parse().ok()?;
            list.next_uid = header.get(2)?.parse().ok()?;
        }
        "2" | "3" => {
            for field in &header[1..] {
                if let Some(v) = field.strip_prefix('V') {
                    list.uidvalidity = v.parse().ok()?;
                } else if let Some(n) = field.strip_prefix('N') {
                    list.next_uid = n.parse().ok()?;
                }
            }
        }
        _ => return None,
    }
    for line in lines {
        let Some((uid, rest)) = line.split_once(' ') else {
            continue;
        };
        let Ok(uid) = uid.parse::<u32>() else {
            continue;
        };
        let name = match rest.find(':') {
            Some(i) if header[0] != "1" => &rest[i + 1..],
            _ => rest.split_whitespace().last().unwrap_or(""),
        };
        if !name.is_empty() && uid > 0 {
            list.uids.insert(base_name(name).to_string(), uid);
        }
    }
    if list.uidvalidity == 0 {
        return None;
    }
    Some(list)
}

/// The folders under `root`: (IMAP name, directory), INBOX first when it has `cur/`.
pub fn folders(root: &Path, layout: Layout) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    if root.join("cur").is_dir() || root.join("new").is_dir() {
        out.push(("INBOX".to_string(), root.to_path_buf()));
    }
    match layout {
        Layout::MaildirPlusPlus => {
            for entry in std::fs::read_dir(root)? {
                let entry = entry?;
                let file = entry.file_name();
                let Some(name) = file.to_str() else { continue };
                let Some(dotted) = name.strip_prefix('.') else {
                    continue;
                };
                if dotted.is_empty() || dotted == "." || !entry.path().join("cur").is_dir() {
                    continue;
                }
                let imap = dotted
                    .split('.')
                    .map(decode_name)
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((imap, entry.path()));
            }
        }
        Layout::Fs => walk_fs(root, "", &mut out)?,
    }
    let from = usize::from(out.first().is_some_and(|f| f.0 == "INBOX"));
    out[from..].sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn walk_fs(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file = entry.file_name();
        let Some(name) = file.to_str() else { continue };
        if matches!(name, "cur" | "new" | "tmp") || name.starts_with('.') {
            continue;
        }
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let imap = format!("{prefix}{}", decode_name(name));
        if entry.path().join("cur").is_dir() {
            out.push((imap.clone(), entry.path()));
        }
        walk_fs(&entry.path(), &format!("{imap}/"), out)?;
    }
    Ok(())
}

/// A folder name as Dovecot writes it (modified UTF-7) in UTF-8; kept as is if not valid.
fn decode_name(s: &str) -> String {
    mailkeep_proto::utf7::decode(s.as_bytes()).unwrap_or_else(|| s.to_string())
}

/// The subscriptions Dovecot kept in `subscriptions` (its version 2 format, `\t` between
/// levels, or the older one name per line with `.`).
pub fn parse_subscriptions(text: &str) -> Vec<String> {
    let mut lines = text.lines().peekable();
    let v2 = lines.peek().is_some_and(|l| l.starts_with("V\t"));
    if v2 {
        lines.next();
    }
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            if v2 {
                l.replace('\t', "/")
            } else {
                l.split('.').map(decode_name).collect::<Vec<_>>().join("/")
            }
        })
        .collect()
}

/// One message file found in a folder.
struct Found {
    path: PathBuf,
    name: String,
    size: u64,
    mtime: i64,
    uid: Option<u32>,
    system: u32,
    keywords: Vec<String>,
}

/// Imports the Maildir at `root` into `user`'s account, under `prefix/` if given.
pub async fn import(
    store: &dyn MailStore,
    user: UserId,
    root: &Path,
    layout: Layout,
    opts: ImportOptions,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let folders = folders(root, layout)?;
    if folders.is_empty() {
        anyhow::bail!(
            "{} holds no Maildir folder (no cur/ or new/)",
            root.display()
        );
    }
    for (name, dir) in folders {
        import_folder(store, user, &name, &dir, opts, progress).await?;
    }
    if let Ok(text) = std::fs::read_to_string(root.join("subscriptions")) {
        for name in parse_subscriptions(&text) {
            store.subscribe(user, &name).await?;
        }
    }
    Ok(())
}

async fn import_folder(
    store: &dyn MailStore,
    user: UserId,
    name: &str,
    dir: &Path,
    opts: ImportOptions,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let keywords = std::fs::read_to_string(dir.join("dovecot-keywords"))
        .map(|t| parse_keywords(&t))
        .unwrap_or_else(|_| vec![None; 26]);
    let uidlist = std::fs::read_to_string(dir.join("dovecot-uidlist"))
        .ok()
        .and_then(|t| parse_uidlist(&t));
    let mut found = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let file = entry.file_name();
            let shown = format!("{name}: {sub}/{}", file.to_string_lossy());
            let Some(fname) = file.to_str() else {
                progress.skip("file name not UTF-8", shown);
                continue;
            };
            if fname.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let meta = match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => m,
                Ok(_) => continue,
                Err(_) => {
                    progress.skip("unreadable file", shown);
                    continue;
                }
            };
            if meta.len() == 0 {
                progress.skip("empty file", shown);
                continue;
            }
            if meta.len() > opts.max_message_size {
                progress.skip("bigger than [limits] max_message_size", shown);
                continue;
            }
            if std::fs::File::open(&path).is_err() {
                progress.skip("unreadable file", shown);
                continue;
            }
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs() as i64);
            // Files in new/ have no info as a rule, but Dovecot gives them one when flags
            // are set before they move to cur/.
            let (system, letters) = parse_info(fname).unwrap_or_default();
            let kws = letters
                .iter()
                .filter_map(|&c| keywords[usize::from(c - b'a')].clone())
                .collect();
            found.push(Found {
                uid: uidlist
                    .as_ref()
                    .and_then(|l| l.uids.get(base_name(fname)).copied()),
                name: shown,
                path,
                size: meta.len(),
                mtime,
                system,
                keywords: kws,
            });
        }
    }
    // The uidlist's order first (ascending UID), then the files it does not know, oldest first.
    found.sort_by(|a, b| {
        (a.uid.is_none(), a.uid, a.mtime, &a.name).cmp(&(b.uid.is_none(), b.uid, b.mtime, &b.name))
    });
    let uids = uidlist.as_ref().map(|l| {
        let mut next = l.next_uid.max(1);
        let mut assigned = Vec::with_capacity(found.len());
        for f in &found {
            match f.uid {
                Some(u) => {
                    next = next.max(u.saturating_add(1));
                    assigned.push(u);
                }
                None => {
                    assigned.push(next);
                    next = next.saturating_add(1);
                }
            }
        }
        assigned
    });
    let low = uids.as_ref().and_then(|u| u.first().copied());
    let source = uidlist
        .as_ref()
        .zip(low)
        .map(|(l, low)| (l.uidvalidity, low));
    let mut target = Target::open(store, user, name, source).await?;
    let mut folder = progress.folder(name, Some(found.len() as u64));
    for (i, f) in found.into_iter().enumerate() {
        let message = NewMessage {
            data: MessageBytes::Received {
                path: f.path,
                len: f.size,
                binary: false,
            },
            flags: Flags {
                system: f.system,
                keywords: f.keywords,
            },
            internal_date: f.mtime,
            internal_date_offset: 0,
            parsed: ParsedInfo::default(),
        };
        let uid = uids.as_ref().map(|u| u[i]);
        target
            .push(progress, &mut folder, uid, message, f.size, f.name)
            .await;
    }
    target.flush(progress, &mut folder).await;
    progress.finish_folder(folder);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_suffix() {
        assert_eq!(
            parse_info("1.M2P3.host,S=10:2,FRSTab"),
            Some((
                flags::FLAGGED | flags::ANSWERED | flags::SEEN | flags::DELETED,
                b"ab".to_vec()
            ))
        );
        assert_eq!(parse_info("1.M2P3.host:2,PD"), Some((flags::DRAFT, vec![])));
        assert_eq!(parse_info("1.M2P3.host"), None);
        let f = Flags {
            system: flags::SEEN | flags::DRAFT | flags::ANSWERED,
            keywords: vec!["$Junk".into(), "work".into()],
        };
        let kw = vec!["work".to_string(), "$Junk".to_string()];
        assert_eq!(info_suffix(&f, &kw), ":2,DRSba");
        assert_eq!(base_name("1.M2.h,S=5:2,S"), "1.M2.h,S=5");
        assert_eq!(size_fields("1.M2.h,S=5,W=7:2,S"), (Some(5), Some(7)));
        assert_eq!(size_fields("1.M2.h:2,S"), (None, None));
    }

    #[test]
    fn keywords_file() {
        let k = parse_keywords("0 $Junk\n1 NonJunk\n3 $label1\nbad\n40 far\n");
        assert_eq!(k[0].as_deref(), Some("$Junk"));
        assert_eq!(k[1].as_deref(), Some("NonJunk"));
        assert_eq!(k[2], None);
        assert_eq!(k[3].as_deref(), Some("$label1"));
        assert_eq!(k.len(), 26);
    }

    #[test]
    fn uidlist_version_1() {
        let l = parse_uidlist(
            "1 1100000000 5\n1 1035478339.27041_118.foo.org\n4 1035478339.27041_119.foo.org:2,S\n",
        )
        .unwrap();
        assert_eq!((l.uidvalidity, l.next_uid), (1_100_000_000, 5));
        assert_eq!(l.uids["1035478339.27041_118.foo.org"], 1);
        assert_eq!(l.uids["1035478339.27041_119.foo.org"], 4);
    }

    #[test]
    fn uidlist_version_3() {
        let text = "3 V1275660208 N25 G3085f01b7f11094c501100008c4a11c1\n\
                    23 :1276528487.M364837P9451.kurkku,S=1355,W=1394\n\
                    24 W2000 S1900 :1276528488.M2P3.kurkku,S=1900,W=2000\n";
        let l = parse_uidlist(text).unwrap();
        assert_eq!((l.uidvalidity, l.next_uid), (1_275_660_208, 25));
        assert_eq!(l.uids["1276528487.M364837P9451.kurkku,S=1355,W=1394"], 23);
        assert_eq!(l.uids["1276528488.M2P3.kurkku,S=1900,W=2000"], 24);
        assert_eq!(parse_uidlist("garbage"), None);
        assert_eq!(parse_uidlist(""), None);
    }

    #[test]
    fn subscriptions_file() {
        assert_eq!(
            parse_subscriptions("V\t2\n\nLists\trust\nSent\n"),
            vec!["Lists/rust", "Sent"]
        );
        assert_eq!(
            parse_subscriptions("Lists.rust\nSent\n"),
            vec!["Lists/rust", "Sent"]
        );
    }

    #[test]
    fn maildir_plus_plus_folders() {
        let dir = tempfile::tempdir().unwrap();
        for d in [
            "cur",
            ".Sent/cur",
            ".Lists.rust/cur",
            ".Entw&APw-rfe/cur",
            ".notafolder",
        ] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let names: Vec<String> = folders(dir.path(), Layout::MaildirPlusPlus)
            .unwrap()
            .into_iter()
            .map(|f| f.0)
            .collect();
        assert_eq!(names, vec!["INBOX", "Entwürfe", "Lists/rust", "Sent"]);
        let fs = tempfile::tempdir().unwrap();
        for d in ["cur", "Sent/cur", "Lists/rust/cur"] {
            std::fs::create_dir_all(fs.path().join(d)).unwrap();
        }
        let names: Vec<String> = folders(fs.path(), Layout::Fs)
            .unwrap()
            .into_iter()
            .map(|f| f.0)
            .collect();
        assert_eq!(names, vec!["INBOX", "Lists/rust", "Sent"]);
    }
}
