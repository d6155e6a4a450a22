//! Progress of a long transfer, per folder: a bar on a terminal (messages, bytes, rate, ETA),
//! plain lines otherwise, and a summary at the end with every skipped message and why.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain (non-terminal) progress line is printed for one folder.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// Reports one transfer (an import, an export, a migration of one account).
pub struct Progress {
    /// What is being transferred, e.g. `import alice`.
    label: String,
    terminal: bool,
    quiet: bool,
    started: Instant,
    folders: u64,
    messages: u64,
    bytes: u64,
    skipped: BTreeMap<String, Vec<String>>,
}

/// The progress of one folder; [`Progress::finish_folder`] ends it.
pub struct Folder {
    name: String,
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
    total: Option<u64>,
    messages: u64,
    bytes: u64,
}

/// What a finished transfer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub folders: u64,
    pub messages: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    /// Reason -> the messages skipped for it (names, file paths or UIDs).
    pub skipped: BTreeMap<String, Vec<String>>,
}

impl Progress {
    /// Bars when standard error is a terminal, plain lines otherwise; `quiet` prints nothing
    /// but the summary's caller still gets the figures.
    pub fn new(label: impl Into<String>, quiet: bool) -> Progress {
        Progress {
            label: label.into(),
            terminal: std::io::stderr().is_terminal(),
            quiet,
            started: Instant::now(),
            folders: 0,
            messages: 0,
            bytes: 0,
            skipped: BTreeMap::new(),
        }
    }

    /// Starts a folder of `total` messages (if known).
    pub fn folder(&self, name: &str, total: Option<u64>) -> Folder {
        let bar = (self.terminal && !self.quiet).then(|| {
            let bar = match total {
                Some(n) => ProgressBar::new(n),
                None => ProgressBar::new_spinner(),
            };
            bar.set_draw_target(ProgressDrawTarget::stderr());
            let template = "{prefix:>20} [{bar:30}] {pos}/{len} msgs {msg} {per_sec} ETA {eta}";
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(name.to_string());
            bar
        });
        Folder {
            name: name.to_string(),
            bar,
            started: Instant::now(),
            last_line: Instant::now(),
            total,
            messages: 0,
            bytes: 0,
        }
    }

    /// Counts `messages` messages of `bytes` bytes done in `folder`.
    pub fn advance(&self, folder: &mut Folder, messages: u64, bytes: u64) {
        folder.messages += messages;
        folder.bytes += bytes;
        if let Some(bar) = &folder.bar {
            bar.inc(messages);
            bar.set_message(HumanBytes(folder.bytes).to_string());
        } else if !self.quiet && folder.last_line.elapsed() >= PLAIN_EVERY {
            folder.last_line = Instant::now();
            eprintln!("{}: {}", self.label, folder.line());
        }
    }

    /// Records a message that was not transferred, and why (every skip is named).
    pub fn skip(&mut self, reason: &str, what: impl Into<String>) {
        self.skipped
            .entry(reason.to_string())
            .or_default()
            .push(what.into());
    }

    /// Ends a folder: clears its bar and prints its final line.
    pub fn finish_folder(&mut self, folder: Folder) {
        if let Some(bar) = &folder.bar {
            bar.finish_and_clear();
        }
        if !self.quiet {
            eprintln!("{}: {}", self.label, folder.line());
        }
        self.folders += 1;
        self.messages += folder.messages;
        self.bytes += folder.bytes;
    }

    /// The figures of the whole transfer; printed unless quiet.
    pub fn finish(self) -> Summary {
        let summary = Summary {
            folders: self.folders,
            messages: self.messages,
            bytes: self.bytes,
            elapsed: self.started.elapsed(),
            skipped: self.skipped,
        };
        if !self.quiet {
            eprintln!("{}: {}", self.label, summary);
        }
        summary
    }
}

impl Folder {
    /// Messages done so far in this folder.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let of = self.total.map(|t| format!("/{t}")).unwrap_or_default();
        format!(
            "{}: {}{} messages, {}, {:.0} msg/s",
            self.name,
            self.messages,
            of,
            HumanBytes(self.bytes),
            self.messages as f64 / secs
        )
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        write!(
            f,
            "done: {} folders, {} messages, {} in {:.1} s ({:.0} msg/s), {} skipped",
            self.folders,
            self.messages,
            HumanBytes(self.bytes),
            secs,
            self.messages as f64 / secs.max(1e-3),
            self.skipped.values().map(Vec::len).sum::<usize>()
        )?;
        for (reason, items) in &self.skipped {
            write!(f, "\n  skipped ({reason}): {}", items.len())?;
            for item in items.iter().take(20) {
                write!(f, "\n    {item}")?;
            }
            if items.len() > 20 {
                write!(f, "\n    ... and {} more", items.len() - 20)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_folders_messages_and_skips() {
        let mut p = Progress::new("test", true);
        let mut f = p.folder("INBOX", Some(3));
        p.advance(&mut f, 2, 100);
        p.advance(&mut f, 1, 50);
        assert_eq!(f.messages(), 3);
        p.finish_folder(f);
        p.skip("unreadable file", "cur/123");
        let s = p.finish();
        assert_eq!((s.folders, s.messages, s.bytes), (1, 3, 150));
        assert_eq!(s.skipped["unreadable file"], vec!["cur/123".to_string()]);
        assert!(s.to_string().contains("1 skipped"));
        assert!(s.to_string().contains("cur/123"));
    }
}
