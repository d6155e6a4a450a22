//! The writer: group commit, rollback of failed jobs, the load measure.

use super::*;

/// The writer's load is the share of the last window it was busy.
#[test]
fn load_is_the_busy_share_of_the_last_window() {
    let mut load = Load::new();
    let t0 = load.window_start;
    assert!(load.light(), "nothing measured yet");
    // 200 ms of jobs in a 250 ms window: heavy.
    load.busy_until(
        t0 + Duration::from_millis(40),
        t0 + Duration::from_millis(240),
    );
    assert!(load.light(), "the window is not over");
    load.busy_until(
        t0 + Duration::from_millis(240),
        t0 + Duration::from_millis(250),
    );
    assert!(!load.light(), "{}", load.last);
    assert!((load.last - 0.84).abs() < 1e-9, "{}", load.last);
    // Then 20 ms of jobs in 300 ms: light again.
    let t1 = t0 + Duration::from_millis(250);
    load.busy_until(
        t1 + Duration::from_millis(280),
        t1 + Duration::from_millis(300),
    );
    assert!(load.light(), "{}", load.last);
    // A job begun before the window counts only from the window's start.
    let t2 = t1 + Duration::from_millis(300);
    load.busy_until(t2 - Duration::from_secs(5), t2 + Duration::from_millis(250));
    assert!((load.last - 1.0).abs() < 1e-9, "{}", load.last);
}

fn count(conn: &Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap()
}

/// Jobs queued while the writer is busy share one commit, and a failing job's changes are
/// undone without undoing its neighbours'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_shares_commit_and_isolates_failures() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE t(v INTEGER)").unwrap();
    conn.execute_batch(crate::sqlite::search::SCHEMA).unwrap();
    let blobs = BlobDir::open(dir.path().join("blobs")).unwrap();
    let writer = Arc::new(Writer::start(conn, blobs, Arc::new(Notifier::default())).unwrap());

    // Occupy the writer until all other jobs are queued.
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (started_tx, started_rx) = oneshot::channel::<()>();
    let w = writer.clone();
    let hold = tokio::spawn(async move {
        w.run(move |_| {
            let _ = started_tx.send(());
            let _ = release_rx.recv();
            Ok(())
        })
        .await
    });
    started_rx.await.unwrap();
    let before = writer.stats.commits.load(Ordering::SeqCst);
    let mut jobs = Vec::new();
    for i in 0..6i64 {
        let w = writer.clone();
        jobs.push(tokio::spawn(async move {
            w.run(move |ctx| {
                ctx.conn.execute("INSERT INTO t(v) VALUES (?1)", [i])?;
                if i % 2 == 1 {
                    return Err(StoreError::Cannot("odd".into()));
                }
                Ok(i)
            })
            .await
        }));
    }
    while writer.stats.queued.load(Ordering::SeqCst) < 6 {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    release_tx.send(()).unwrap();
    hold.await.unwrap().unwrap();
    let mut ok = 0;
    for (i, j) in jobs.into_iter().enumerate() {
        match j.await.unwrap() {
            Ok(v) => {
                assert_eq!(v, i as i64);
                ok += 1;
            }
            Err(StoreError::Cannot(_)) => assert_eq!(i % 2, 1),
            Err(e) => panic!("job {i}: {e}"),
        }
    }
    assert_eq!(ok, 3);
    let commits = writer.stats.commits.load(Ordering::SeqCst) - before;
    // The holding job's transaction, then one for all six.
    assert_eq!(commits, 2, "the six queued jobs share one commit");
    let check = Connection::open(&path).unwrap();
    assert_eq!(count(&check), 3, "failed jobs' inserts are rolled back");
}

/// A word indexed by a job that failed is not taken as known: the next body holding it
/// puts it in the vocabulary (else infix searches would never find that body).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_job_forgets_its_vocabulary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(crate::sqlite::search::SCHEMA).unwrap();
    let blobs = BlobDir::open(dir.path().join("blobs")).unwrap();
    let writer = Writer::start(conn, blobs, Arc::new(Notifier::default())).unwrap();
    let tokens = crate::sqlite::search::Tokens::of("zanzibarian words", 0);
    let t = tokens.clone();
    let failed = writer
        .run(move |ctx| {
            crate::sqlite::search::add_words(ctx.conn, &mut ctx.index.known, 1, &t)?;
            Err::<(), _>(StoreError::Cannot("no".into()))
        })
        .await;
    assert!(failed.is_err());
    writer
        .run(move |ctx| {
            crate::sqlite::search::add_words(ctx.conn, &mut ctx.index.known, 1, &tokens)
        })
        .await
        .unwrap();
    let check = Connection::open(&path).unwrap();
    let n: i64 = check
        .query_row(
            "SELECT count(*) FROM search_vocab WHERE term IN ('zanzibarian', 'words')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 2);
}
