//! Crash consistency: a child process appends as fast as it can and is killed with SIGKILL;
//! every APPEND it saw acknowledged must be in the reopened store, and the index must check
//! clean (a body file written for an append that never committed is swept at open).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use mailkeep_store::conformance::message;
use mailkeep_store::sqlite::SqliteStore;
use mailkeep_store::{MailStore, MessageBytes};

const DIR_VAR: &str = "MAILKEEP_CRASH_DIR";

/// The child: appends forever from 8 tasks, printing each acknowledged UID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by `killed_writer_loses_nothing_acknowledged` in a child process"]
async fn crash_child() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let store = SqliteStore::open(dir.as_ref()).unwrap();
    let user = match store.get_user("crash").await.unwrap() {
        Some(u) => u.id,
        None => store.create_user("crash", "h").await.unwrap().id,
    };
    let ib = store.get_mailbox(user, "INBOX").await.unwrap().unwrap().id;
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (store, out) = (store.clone(), out.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let body = format!("task {t} message {i}");
                let (_, uids) = store
                    .append(ib, vec![message("crash", &body)])
                    .await
                    .unwrap();
                let mut o = out.lock().unwrap();
                writeln!(o, "ack {} {body}", uids[0]).unwrap();
                o.flush().unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_writer_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked = Vec::new();
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_VAR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut n = 0;
        while let Some(Ok(line)) = lines.next() {
            if let Some(rest) = line.strip_prefix("ack ") {
                let (uid, body) = rest.split_once(' ').unwrap();
                acked.push((uid.parse::<u32>().unwrap(), body.to_owned()));
                n += 1;
                // Kill at a different point each round.
                if n == 20 + round * 17 {
                    break;
                }
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert!(acked.len() >= 60);

    let store = SqliteStore::open(dir.path()).unwrap();
    let user = store.get_user("crash").await.unwrap().unwrap().id;
    let ib = store.get_mailbox(user, "INBOX").await.unwrap().unwrap().id;
    for (uid, body) in &acked {
        let bytes = store.message_bytes(ib, *uid).await.unwrap();
        let MessageBytes::Memory(want) = message("crash", body).data else {
            unreachable!()
        };
        assert_eq!(bytes, want, "UID {uid}");
    }
    let problems = store.check().await.unwrap();
    assert!(problems.is_empty(), "{problems:?}");
}
