//! A throwaway PostgreSQL for tests: `initdb` into a temporary directory, a server listening
//! only on a unix socket in that directory (fsync off), one database per test, stopped and
//! removed when dropped. As root (CI), the server runs as the `postgres` user, since
//! PostgreSQL refuses to run as root.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running test server. Dropping it stops the server and removes its files.
pub struct TestPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    port: u16,
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

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl TestPostgres {
    /// Starts a server, or returns `None` after saying so loudly if PostgreSQL is not
    /// installed (Debian: `apt-get install postgresql`). Panics if it is installed but does
    /// not start.
    pub fn start() -> Option<TestPostgres> {
        let Some(bin) = find_bin() else {
            eprintln!(
                "\n*** SKIPPED: PostgreSQL is not installed (no initdb found; set \
                 MAILKEEP_PG_BIN or apt-get install postgresql) ***\n"
            );
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("mkpg")
            .tempdir()
            .expect("tempdir");
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .arg("postgres:")
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown of the test PostgreSQL directory to postgres");
        }
        let pg = TestPostgres {
            dir,
            bin,
            as_postgres,
            port: 5432,
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().expect("utf-8 path"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        let opts = format!(
            "-k {} -p {} -c listen_addresses='' -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            pg.dir.path().display(),
            pg.port
        );
        let log = pg.dir.path().join("log");
        pg.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("utf-8 path"),
                "-l",
                log.to_str().expect("utf-8 path"),
                "-o",
                &opts,
                "-w",
                "start",
            ],
        );
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
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

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self
            .command(tool)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {tool}: {e}"));
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
            panic!(
                "{tool} failed: {}\n{}\n{log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// The directory of the server's unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        let socket_dir = self.dir.path().display().to_string().replace('/', "%2F");
        format!("postgres://postgres@{socket_dir}:{}/{db}", self.port)
    }

    /// Creates database `name` and returns its URL.
    pub async fn create_database(&self, name: &str) -> String {
        let (client, conn) = tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls)
            .await
            .expect("connect to the test PostgreSQL");
        let driver = tokio::spawn(conn);
        // Two CREATE DATABASE at once may refuse ("source database template1 is being accessed
        // by other users"): tests running side by side try again.
        let mut tries = 0;
        while let Err(e) = client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
        {
            tries += 1;
            assert!(tries < 20, "CREATE DATABASE {name}: {e}");
            tokio::time::sleep(std::time::Duration::from_millis(100 * tries)).await;
        }
        drop(client);
        let _ = driver.await;
        self.url(name)
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args([
                "-D",
                data.to_str().unwrap_or(""),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
