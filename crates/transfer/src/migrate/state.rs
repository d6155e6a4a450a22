//! What earlier runs migrated, so a second run fetches only what is new: per source folder its
//! UIDVALIDITY, the local mailbox (and its UIDVALIDITY) and, per source UID, the local UID and
//! a matching key (the Message-ID, for when the source's UIDs cannot be trusted).
//!
//! Kept in a state file in the data directory (`migrate/<account>.state`), not in the store:
//! it is the migration tool's bookkeeping, not mail. The file is a log of tab-separated
//! records appended as batches are stored (so an interrupted run resumes after its last stored
//! batch) and rewritten compactly at the end of a run:
//! `V folder uidvalidity local local_uidvalidity` starts (or restarts) a folder,
//! `M folder src_uid local_uid key` records a message, `X folder src_uid` forgets one,
//! `D folder` forgets a folder.

use std::collections::BTreeMap;
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// One migrated message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub local_uid: u32,
    /// Message-ID, or `size/internaldate` when there is none.
    pub key: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderState {
    pub uidvalidity: u32,
    pub local: String,
    pub local_uidvalidity: u32,
    /// Source UID -> what it became.
    pub msgs: BTreeMap<u32, Entry>,
}

pub struct State {
    path: PathBuf,
    pub folders: BTreeMap<String, FolderState>,
    log: Option<BufWriter<std::fs::File>>,
}

fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '\t' => o.push_str("\\t"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            c => o.push(c),
        }
    }
    o
}

fn unescape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            o.push(c);
            continue;
        }
        match it.next() {
            Some('t') => o.push('\t'),
            Some('n') => o.push('\n'),
            Some('r') => o.push('\r'),
            Some(c) => o.push(c),
            None => {}
        }
    }
    o
}

/// The state file of `account` under `data_dir`.
pub fn path_for(data_dir: &Path, account: &str) -> PathBuf {
    let plain = !account.is_empty()
        && !account.starts_with('.')
        && account
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@+-".contains(c));
    let file = if plain {
        format!("{account}.state")
    } else {
        let hex: String = account.bytes().map(|b| format!("{b:02x}")).collect();
        format!("x-{hex}.state")
    };
    data_dir.join("migrate").join(file)
}

impl State {
    /// Reads the state (empty if there is none yet).
    pub fn load(path: PathBuf) -> Result<State> {
        let mut st = State {
            path,
            folders: BTreeMap::new(),
            log: None,
        };
        let file = match std::fs::File::open(&st.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(st),
            Err(e) => return Err(e).with_context(|| format!("reading {}", st.path.display())),
        };
        for line in std::io::BufReader::new(file).lines() {
            let line = line.with_context(|| format!("reading {}", st.path.display()))?;
            // A line cut short by a crash is ignored (its batch is fetched again... and
            // matched by its key, see `Migration::folder`).
            let f: Vec<String> = line.split('\t').map(unescape).collect();
            let num = |i: usize| f.get(i).and_then(|s| s.parse::<u32>().ok());
            match (f[0].as_str(), f.len()) {
                ("V", 5) => {
                    if let (Some(uv), Some(luv)) = (num(2), num(4)) {
                        st.folders.insert(
                            f[1].clone(),
                            FolderState {
                                uidvalidity: uv,
                                local: f[3].clone(),
                                local_uidvalidity: luv,
                                msgs: BTreeMap::new(),
                            },
                        );
                    }
                }
                ("M", 5) => {
                    if let (Some(src), Some(local), Some(fs)) =
                        (num(2), num(3), st.folders.get_mut(&f[1]))
                    {
                        fs.msgs.insert(
                            src,
                            Entry {
                                local_uid: local,
                                key: f[4].clone(),
                            },
                        );
                    }
                }
                ("X", 3) => {
                    if let (Some(src), Some(fs)) = (num(2), st.folders.get_mut(&f[1])) {
                        fs.msgs.remove(&src);
                    }
                }
                ("D", 2) => {
                    st.folders.remove(&f[1]);
                }
                _ => {}
            }
        }
        Ok(st)
    }

    fn write(&mut self, fields: &[&str]) -> Result<()> {
        if self.log.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .with_context(|| format!("opening {}", self.path.display()))?;
            self.log = Some(BufWriter::new(f));
        }
        let line: Vec<String> = fields.iter().map(|f| escape(f)).collect();
        if let Some(log) = &mut self.log {
            writeln!(log, "{}", line.join("\t"))?;
        }
        Ok(())
    }

    /// Writes what was recorded since the last flush.
    pub fn flush(&mut self) -> Result<()> {
        if let Some(log) = &mut self.log {
            log.flush()
                .with_context(|| format!("writing {}", self.path.display()))?;
        }
        Ok(())
    }

    /// Starts a folder afresh (no messages yet).
    pub fn begin_folder(
        &mut self,
        folder: &str,
        uidvalidity: u32,
        local: &str,
        local_uidvalidity: u32,
    ) -> Result<()> {
        self.folders.insert(
            folder.to_string(),
            FolderState {
                uidvalidity,
                local: local.to_string(),
                local_uidvalidity,
                msgs: BTreeMap::new(),
            },
        );
        self.write(&[
            "V",
            folder,
            &uidvalidity.to_string(),
            local,
            &local_uidvalidity.to_string(),
        ])
    }

    pub fn record(&mut self, folder: &str, src_uid: u32, entry: Entry) -> Result<()> {
        self.write(&[
            "M",
            folder,
            &src_uid.to_string(),
            &entry.local_uid.to_string(),
            &entry.key,
        ])?;
        if let Some(fs) = self.folders.get_mut(folder) {
            fs.msgs.insert(src_uid, entry);
        }
        Ok(())
    }

    pub fn forget(&mut self, folder: &str, src_uid: u32) -> Result<()> {
        if let Some(fs) = self.folders.get_mut(folder) {
            fs.msgs.remove(&src_uid);
        }
        self.write(&["X", folder, &src_uid.to_string()])
    }

    pub fn forget_folder(&mut self, folder: &str) -> Result<()> {
        self.folders.remove(folder);
        self.write(&["D", folder])
    }

    /// Rewrites the file with only the current state (atomically).
    pub fn compact(&mut self) -> Result<()> {
        self.flush()?;
        self.log = None;
        let Some(dir) = self.path.parent() else {
            return Ok(());
        };
        std::fs::create_dir_all(dir)?;
        let tmp = self.path.with_extension("state.tmp");
        {
            let mut w = BufWriter::new(
                std::fs::File::create(&tmp)
                    .with_context(|| format!("writing {}", tmp.display()))?,
            );
            for (name, fs) in &self.folders {
                writeln!(
                    w,
                    "V\t{}\t{}\t{}\t{}",
                    escape(name),
                    fs.uidvalidity,
                    escape(&fs.local),
                    fs.local_uidvalidity
                )?;
                for (src, e) in &fs.msgs {
                    writeln!(
                        w,
                        "M\t{}\t{src}\t{}\t{}",
                        escape(name),
                        e.local_uid,
                        escape(&e.key)
                    )?;
                }
            }
            w.flush()?;
            w.get_ref().sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("replacing {}", self.path.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_replays_and_compacts() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "alice");
        let mut st = State::load(path.clone()).unwrap();
        st.begin_folder("Sent\tx", 7, "Sent", 3).unwrap();
        for uid in 1..=3 {
            let key = format!("<{uid}@x>");
            st.record(
                "Sent\tx",
                uid,
                Entry {
                    local_uid: uid + 10,
                    key,
                },
            )
            .unwrap();
        }
        st.forget("Sent\tx", 2).unwrap();
        st.begin_folder("Gone", 1, "Gone", 1).unwrap();
        st.forget_folder("Gone").unwrap();
        st.flush().unwrap();
        let again = State::load(path.clone()).unwrap();
        assert_eq!(again.folders, st.folders);
        let f = &again.folders["Sent\tx"];
        assert_eq!(
            (f.uidvalidity, f.local.as_str(), f.local_uidvalidity),
            (7, "Sent", 3)
        );
        assert_eq!(f.msgs.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(f.msgs[&3].key, "<3@x>");
        st.compact().unwrap();
        assert_eq!(State::load(path).unwrap().folders, st.folders);
        assert!(path_for(dir.path(), "../x").ends_with("x-2e2e2f78.state"));
    }
}
