//! A throwaway PostgreSQL for `--store postgres`: `initdb` into the server's temporary
//! directory, listening only on a unix socket there, durable as the embedded store is
//! (`fsync = on`, `synchronous_commit = on`: a tagged OK for APPEND means the mail is on
//! disk), stopped and removed with the server. As root it runs as the `postgres` user, since
//! PostgreSQL refuses to run as root.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The port number in the socket's name (`.s.PGSQL.<port>`); nothing listens on TCP.
const PORT: u16 = 5432;

pub struct Postgres {
    /// Holds the socket, the log and `data/`.
    pub dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    stopped: bool,
}

/// Where `initdb` and `pg_ctl` are: `$MAILKEEP_PG_BIN`, else the newest Debian
/// `/usr/lib/postgresql/<version>/bin`, else `pg_config --bindir`.
fn find_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("MAILKEEP_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    bin.join("initdb").exists().then_some(bin)
}

impl Postgres {
    /// initdb + start in `dir` (created), then creates the database `mailkeep`.
    /// `shared_buffers` as PostgreSQL reads it (e.g. "1GB").
    pub fn start(dir: &Path, shared_buffers: &str, max_connections: usize) -> Result<Postgres> {
        let bin = find_bin().context(
            "PostgreSQL is not installed (no initdb found; set MAILKEEP_PG_BIN or \
             apt-get install postgresql)",
        )?;
        std::fs::create_dir_all(dir)?;
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .arg("postgres:")
                .arg(dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                bail!("chown postgres: {}", dir.display());
            }
        }
        let pg = Postgres {
            dir: dir.to_path_buf(),
            bin,
            as_postgres,
            stopped: false,
        };
        let data = pg.data();
        // --no-sync: initdb's own files need no fsync for a throwaway cluster; the server
        // below runs with fsync on.
        pg.run(
            "initdb",
            &[
                "-D",
                path_str(&data)?,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
        let opts = format!(
            "-k {} -p {PORT} -c listen_addresses='' -c fsync=on -c synchronous_commit=on \
             -c shared_buffers={shared_buffers} -c max_connections={max_connections}",
            dir.display()
        );
        let log = dir.join("log");
        pg.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&data)?,
                "-l",
                path_str(&log)?,
                "-o",
                &opts,
                "-w",
                "start",
            ],
        )?;
        pg.run(
            "createdb",
            &[
                "-h",
                path_str(dir)?,
                "-p",
                &PORT.to_string(),
                "-U",
                "postgres",
                "mailkeep",
            ],
        )?;
        Ok(pg)
    }

    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The `[store] url` of the database (unix socket).
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@{}:{PORT}/mailkeep",
            self.dir.display().to_string().replace('/', "%2F")
        )
    }

    /// The postmaster's process id (first line of `postmaster.pid`).
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<()> {
        let out = self
            .command(tool)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {tool}"))?;
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            bail!(
                "{tool} failed: {}{}{log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Stops the server (fast shutdown: sessions are disconnected).
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if let Ok(d) = path_str(&self.data()) {
            let _ = self.run("pg_ctl", &["-D", d, "-m", "fast", "-w", "stop"]);
        }
    }
}

impl Drop for Postgres {
    /// Also when starting the nodes failed.
    fn drop(&mut self) {
        self.stop();
    }
}

/// Stops the PostgreSQL in `dir` at once (after ctrl-c, when the server may still hold it).
pub fn stop_dir(dir: &Path) {
    let Some(bin) = find_bin() else { return };
    let Some(data) = dir.join("data").to_str().map(str::to_string) else {
        return;
    };
    let pg = Postgres {
        dir: dir.to_path_buf(),
        bin,
        as_postgres: is_root(),
        stopped: true,
    };
    let _ = pg.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str().context("non-UTF-8 path")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
