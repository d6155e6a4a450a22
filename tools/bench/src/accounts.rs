//! Many distinct accounts with real argon2id hashes, for the `rest` and `storm` scenarios
//! (issue 11): `bulkuser1..N`, each with its own salt, hashed by `mailkeep_auth::hash_password`
//! (Mailkeep's own parameters, as `mailkeep user add` stores them). The same hash strings go to
//! both servers: Mailkeep through `mailkeep user import passwd-file` (`{ARGON2ID}` hashes are
//! stored as they are, not rehashed), Dovecot into its passwd-file with the `{ARGON2ID}` prefix.
//!
//! Hashing costs ~20 ms of CPU per account, so the hashes are kept in a file in the bench's
//! temporary directory (`MAILKEEP_BENCH_TMP`, default the system's) and reused by later runs.

use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `bulkuser{i}` for i in 1..=N.
pub fn name(i: usize) -> String {
    format!("bulkuser{i}")
}

fn cache_file() -> PathBuf {
    let base = std::env::var_os("MAILKEEP_BENCH_TMP")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    base.join("mkbench-bulkusers-argon2id.passwd")
}

/// Lines `bulkuserI:{ARGON2ID}$argon2id$...` for the first `n` accounts, hashing (on all
/// cores) only those the cache file does not hold yet.
fn lines(n: usize) -> Result<Vec<String>> {
    let file = cache_file();
    let mut have: Vec<String> = std::fs::read_to_string(&file)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    // Only a prefix of well-formed lines in order counts (a run killed mid-write).
    let ok = have
        .iter()
        .enumerate()
        .take_while(|(i, l)| {
            l.strip_prefix(&format!("{}:{{ARGON2ID}}$argon2id$", name(i + 1)))
                .is_some()
        })
        .count();
    have.truncate(ok);
    if have.len() < n {
        let missing = n - have.len();
        println!(
            "  hashing {missing} argon2id passwords (kept in {} for later runs)",
            file.display()
        );
        let t = Instant::now();
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let first = have.len() + 1;
        let hashes: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|t| {
                    s.spawn(move || {
                        (first + t..first + missing)
                            .step_by(threads)
                            .map(|i| (i, mailkeep_auth::hash_password(crate::servers::PASSWORD)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let mut all: Vec<(usize, String)> = hs
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect();
            all.sort_by_key(|(i, _)| *i);
            all.into_iter()
                .map(|(i, h)| format!("{}:{{ARGON2ID}}{h}", name(i)))
                .collect()
        });
        if hashes.len() != missing {
            bail!("hashing threads failed");
        }
        have.extend(hashes);
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, have.join("\n") + "\n")?;
        std::fs::rename(&tmp, &file)?;
        println!("  hashed in {:.1} s", t.elapsed().as_secs_f64());
    }
    have.truncate(n);
    Ok(have)
}

/// Writes a passwd-file of the first `n` accounts to `dir` (Dovecot's format, which
/// `mailkeep user import passwd-file` reads too) and returns its path.
pub fn passwd_file(dir: &Path, n: usize) -> Result<PathBuf> {
    let path = dir.join("bulkusers.passwd");
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
    );
    for l in lines(n)? {
        writeln!(f, "{l}::::::")?;
    }
    f.flush()?;
    Ok(path)
}
