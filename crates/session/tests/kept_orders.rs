//! SORT orders and THREAD answers kept between commands and shared by sessions
//! (`mailkeep_session::orders`) answer exactly as a SORT or THREAD computed afresh, through new
//! mail, expunges and subsets of the mailbox.

mod common;

use std::sync::Arc;

use common::*;
use mailkeep_session::orders::{MIN_KEPT, OrderCache};
use mailkeep_store::{MessageBytes, NewMessage};

/// A message whose subject, sender and date repeat (ties), replying to an earlier one.
fn message(n: usize) -> NewMessage {
    let text = format!(
        "From: u{} <u{}@x.org>\r\nSubject: {}topic {}\r\nDate: {}\r\nMessage-ID: <m{n}@x.org>\r\n\
         References: <m{}@x.org>\r\n\r\nbody {}\r\n",
        n % 37,
        n % 37,
        if n.is_multiple_of(3) { "Re: " } else { "" },
        (n * 7919) % 101,
        format_args!("Mon, {} Jan 2001 10:00:00 +0000", 1 + n % 28),
        n / 3,
        "x".repeat(n % 50),
    );
    // Analyzed as APPEND does, so the keys kept at delivery have the subject, sender and date.
    let parsed = mailkeep_mime::analyze(text.as_bytes()).into();
    NewMessage {
        data: MessageBytes::Memory(Arc::new(text.into_bytes())),
        flags: Default::default(),
        internal_date: 1_700_000_000 + (n as i64 % 500),
        internal_date_offset: 0,
        parsed,
    }
}

/// The `* SORT` or `* THREAD` line of an answer.
fn answer(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("* SORT") || l.starts_with("* THREAD"))
        .unwrap_or_else(|| panic!("no answer in {out}"))
        .to_string()
}

/// The answer of a session with nothing kept.
async fn fresh(env: &Env, cmd: &str) -> String {
    let mut s = login(env, "alice").await;
    ok(&mut s, "S SELECT INBOX\r\n").await;
    answer(&ok(&mut s, cmd).await)
}

const COMMANDS: &[&str] = &[
    "C UID SORT (SUBJECT) UTF-8 ALL\r\n",
    "C SORT (REVERSE FROM DATE) UTF-8 ALL\r\n",
    "C UID SORT (SUBJECT) UTF-8 UID 1:900\r\n",
    "C SORT (SIZE REVERSE ARRIVAL) UTF-8 1:300\r\n",
    "C UID THREAD REFERENCES UTF-8 ALL\r\n",
    "C THREAD REFS UTF-8 ALL\r\n",
    "C THREAD ORDEREDSUBJECT UTF-8 ALL\r\n",
    "C UID THREAD ORDEREDSUBJECT UTF-8 UID 1:900\r\n",
];

/// Stores `messages` as another agent would, then lets each session see them.
async fn deliver(
    env: &Env,
    mb: i64,
    messages: Vec<NewMessage>,
    sessions: [&mut mailkeep_session::Session; 2],
) {
    env.store.append(mb, messages).await.unwrap();
    for s in sessions {
        ok(s, "N NOOP\r\n").await;
    }
}

async fn same_as_fresh(env: &Env, s: &mut mailkeep_session::Session, when: &str) {
    for cmd in COMMANDS {
        let kept = answer(&ok(s, cmd).await);
        assert_eq!(kept, fresh(env, cmd).await, "{when}: {cmd}");
    }
}

#[tokio::test]
async fn kept_orders_answer_as_computed_afresh() {
    scenario(env().await).await;
}

/// The same on PostgreSQL (its own reads of a few far-apart keys). Skipped, loudly, where
/// PostgreSQL is not installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_orders_on_postgres() {
    use mailkeep_store::postgres::PgStore;
    use mailkeep_store::postgres::testing::TestPostgres;
    let Some(pg) = TestPostgres::start() else {
        return;
    };
    let url = pg.create_database("kept_orders").await;
    let store = PgStore::open(&url, 4).await.expect("open PostgreSQL store");
    scenario(env_on(store).await).await;
}

async fn scenario(env: Env) {
    let mb = mailbox_id(&env, "alice", "INBOX").await;
    let n = MIN_KEPT + 200;
    env.store
        .append(mb, (0..n).map(message).collect())
        .await
        .unwrap();
    let orders = Arc::new(OrderCache::new());
    let mut a = login(&env, "alice").await;
    let mut b = login(&env, "alice").await;
    a.set_order_cache(orders.clone());
    b.set_order_cache(orders.clone());
    ok(&mut a, "S SELECT INBOX\r\n").await;
    ok(&mut b, "S SELECT INBOX\r\n").await;

    same_as_fresh(&env, &mut a, "first").await;
    assert!(orders.bytes() > 0, "nothing kept");
    let hits = orders.hits();
    // The other session answers from what the first kept.
    same_as_fresh(&env, &mut b, "kept").await;
    // All but SORT of 1:300 (a small part of the mailbox is sorted alone, not kept).
    assert_eq!(orders.hits(), hits + COMMANDS.len() as u64 - 1);

    // New mail, one of it sorting first: the kept orders lack it.
    let sessions = [&mut a, &mut b];
    deliver(
        &env,
        mb,
        vec![message(n), message(n + 1), message(1)],
        sessions,
    )
    .await;
    let hits = orders.hits();
    same_as_fresh(&env, &mut a, "new mail").await;
    // At least the links of REFERENCES and of REFS, continued with the new mail.
    assert!(
        orders.hits() >= hits + 2,
        "the kept links were not continued"
    );
    same_as_fresh(&env, &mut b, "new mail, kept").await;
    // More, with copies of older messages (ties broken by sequence number).
    let more = (n + 2..n + 60).chain(10..30).map(message).collect();
    deliver(&env, mb, more, [&mut b, &mut a]).await;
    same_as_fresh(&env, &mut b, "more new mail").await;
    same_as_fresh(&env, &mut a, "more new mail, kept").await;

    // Expunged mail: the kept sort orders still hold, the thread answers do not.
    ok(
        &mut a,
        "E STORE 1,5,17,300,900 +FLAGS.SILENT (\\Deleted)\r\n",
    )
    .await;
    ok(&mut a, "E EXPUNGE\r\n").await;
    ok(&mut b, "N NOOP\r\n").await;
    let hits = orders.hits();
    same_as_fresh(&env, &mut b, "expunged").await;
    // The three kept SORT orders and ORDEREDSUBJECT's order (twice); REFERENCES's step 1
    // starts again after an expunge, and REFS (next) uses the links it kept.
    assert_eq!(orders.hits(), hits + 6, "the kept orders were not reused");
    same_as_fresh(&env, &mut a, "expunged, kept").await;
}
