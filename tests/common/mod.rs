//! Running the real `mailkeep` binary for tests: a fresh data directory, port 0 listeners, and
//! users created with the CLI.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub imap: SocketAddr,
    pub imaps: SocketAddr,
    child: Child,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mailkeep")
}

impl TestServer {
    /// Start a server with users `alice` and `bob` (password `pass`).
    pub fn start() -> TestServer {
        Self::start_with("", &["alice", "bob"])
    }

    /// Start a server; `extra` is appended to the generated TOML.
    pub fn start_with(extra: &str, users: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("mailkeep.toml");
        let text = format!(
            "data_dir = {:?}\n[imap]\nlisten = [\"127.0.0.1:0\"]\n[imaps]\nlisten = [\"127.0.0.1:0\"]\n{extra}",
            dir.path().join("data")
        );
        std::fs::write(&config, text).expect("write config");
        for u in users {
            add_user(&config, u, "pass");
        }
        Self::spawn(dir, config)
    }

    fn spawn(dir: tempfile::TempDir, config: PathBuf) -> TestServer {
        let mut child = Command::new(bin())
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn mailkeep");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let (mut imap, mut imaps) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut line = String::new();
        while (imap.is_none() || imaps.is_none()) && Instant::now() < deadline {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            if let Some(rest) = line.trim().strip_prefix("mailkeep: ") {
                let mut it = rest.split(" listening on ");
                let (kind, addr) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
                let addr: Option<SocketAddr> = addr.parse().ok();
                match kind {
                    "imap" => imap = addr,
                    "imaps" => imaps = addr,
                    _ => {}
                }
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).unwrap_or(0) > 0 {
                sink.clear();
            }
        });
        TestServer {
            dir,
            config,
            imap: imap.expect("server printed its imap address"),
            imaps: imaps.expect("server printed its imaps address"),
            child,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// kill -9 and start again on the same data directory (new ports).
    pub fn crash_and_restart(mut self) -> TestServer {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        let config = self.config.clone();
        std::mem::forget(self);
        Self::spawn(dir, config)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn add_user(config: &Path, name: &str, password: &str) {
    let mut child = Command::new(bin())
        .args(["user", "add", name, "--allow-weak-password", "--config"])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mailkeep user add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write password");
    let out = child.wait_with_output().expect("user add");
    assert!(
        out.status.success(),
        "user add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
