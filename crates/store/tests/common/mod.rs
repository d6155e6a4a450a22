//! Helpers shared by the embedded backend's test files.
#![allow(dead_code)] // each test file uses some of them

use std::path::Path;

use mailkeep_store::conformance::message;

pub fn blob_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for shard in std::fs::read_dir(dir.join("blobs")).unwrap() {
        for f in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let f = f.unwrap();
            if !f.file_name().to_string_lossy().starts_with('.') {
                out.push(f.path());
            }
        }
    }
    out
}

/// A body too big and too random to be kept in the index: it goes to a file.
pub fn file_message(subject: &str, seed: u64) -> mailkeep_store::NewMessage {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = seed;
    let body: String = (0..64 * 1024)
        .map(|i| {
            if i % 77 == 76 {
                return '\n';
            }
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            B64[(x >> 58) as usize] as char
        })
        .collect();
    message(subject, &body)
}

pub fn rows(dir: &Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(dir.join("index.sqlite3")).unwrap();
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

pub fn inline_bodies(dir: &Path) -> i64 {
    rows(dir, "bodies")
}
