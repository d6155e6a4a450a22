//! Scenario `stress`: the standard IMAP stress mix (the states and probabilities of Dovecot's
//! imaptest, as issue 11 lists them), against mailboxes preloaded with messages of varied
//! sizes (the corpus, plus generated ones from 1 KB to 200 KB).
//!
//! Each client loops one session: LOGIN (100%), LIST "" * (50%), STATUS of another mailbox
//! (50%), SELECT INBOX (100%), a FETCH of a random range of up to 100 messages with 1 to 4
//! random items (100%), a FETCH of one random message with one random body section (100%),
//! STORE on up to a fifth of the mailbox (at most 50) with +FLAGS, -FLAGS or FLAGS of random
//! system flags and keywords, half of them .SILENT (50%), STORE +FLAGS (\Deleted) on about 5%
//! of the messages (at least one) and EXPUNGE (100%), APPEND of a corpus message (100%),
//! LOGOUT (100%). Messages are chosen among those the session sees (sequence numbers of its
//! own SELECT); two clients may share an account, so a message another session expunged may
//! be answered NO by a server that says so: counted apart ("expunged under it"), not as a
//! protocol error.

use crate::corpus::{Corpus, Rng, message};
use crate::imap::{Conn, Status};
use crate::load::{preload, user};
use crate::report::{Metric, m};
use crate::servers::{PASSWORD, Server, USERS};
use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The second mailbox every account has (STATUS's target).
const OTHER: &str = "Archive";

const FETCH_ITEMS: &[&str] = &[
    "UID",
    "FLAGS",
    "ENVELOPE",
    "INTERNALDATE",
    "BODY",
    "BODYSTRUCTURE",
    "RFC822.SIZE",
    "BODY.PEEK[HEADER.FIELDS (From To Cc Subject References In-Reply-To Message-ID)]",
];
const BODY_ITEMS: &[&str] = &[
    "BODY.PEEK[HEADER]",
    "RFC822.HEADER",
    "BODY.PEEK[]",
    "BODY.PEEK[1]",
    "BODY.PEEK[TEXT]",
];
const FLAGS: &[&str] = &[
    "\\Seen",
    "\\Answered",
    "\\Flagged",
    "\\Draft",
    "$Forwarded",
    "$Junk",
    "$Label1",
    "$Work",
];

/// Message `i` of the preload: every fourth from the corpus (2-8 KB, some with attachments),
/// the others generated with a size spread evenly on a log scale from 1 KB to 200 KB.
pub fn stress_message(corpus: &Corpus, i: u64) -> Vec<u8> {
    if i.is_multiple_of(4) {
        return corpus.get(i / 4);
    }
    let mut r = Rng::new(i ^ 0x5EED_5EED);
    let size = (1024.0 * 200f64.powf(r.below(1_000_000) as f64 / 1_000_000.0)) as usize;
    // Above 16 KB, most of the size is an attachment, as in real mail.
    let (body, attach) = if size > 16 * 1024 {
        (4096, size - 4096)
    } else {
        (size.saturating_sub(700).max(200), 0)
    };
    message(i.wrapping_add(7_000_000), body, attach)
}

/// Preloads every account's INBOX with `per_user` messages and creates [`OTHER`] with a few.
pub async fn preload_all(srv: &Server, corpus: &Arc<Corpus>, per_user: usize) -> Result<()> {
    let t = Instant::now();
    for u in 0..USERS {
        let msgs: Vec<Vec<u8>> = (0..per_user)
            .map(|j| stress_message(corpus, (u as usize * per_user + j) as u64))
            .collect();
        let name = user(u);
        preload(srv, &name, msgs).await?;
        let mut c = Conn::connect(srv.addr, None).await?;
        c.login(&name, PASSWORD).await?;
        c.cmd(&format!("CREATE {OTHER}")).await?;
        for j in 0..3 {
            c.append(OTHER, &corpus.get(1_000_000 + j), "").await?;
        }
        // Open INBOX once, so Dovecot builds its index before the clock starts.
        c.cmd("SELECT INBOX").await?.ok()?;
        c.logout().await?;
    }
    println!(
        "  stress: preloaded {USERS} users x {per_user} messages in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

#[derive(Default)]
struct Totals {
    sessions: AtomicU64,
    errors: AtomicU64,
    expunged: AtomicU64,
}

/// Per command name: (count, total microseconds).
type PerCommand = BTreeMap<&'static str, (u64, u64)>;

struct Client<'a> {
    c: Conn,
    rng: Rng,
    per: &'a mut PerCommand,
    lat: &'a mut crate::report::Lat,
    totals: &'a Totals,
}

impl Client<'_> {
    /// Runs `cmd`, timed under `name`. NO about expunged messages is counted apart; any other
    /// NO or BAD is an error.
    async fn run(&mut self, name: &'static str, cmd: &str) -> Result<crate::imap::Resp> {
        let t = Instant::now();
        let r = self.c.cmd(cmd).await?;
        self.record(name, t.elapsed());
        match r.status {
            Status::Ok => Ok(r),
            Status::No if expunge_race(&r.tagged) => {
                self.totals.expunged.fetch_add(1, Ordering::Relaxed);
                Ok(r)
            }
            _ => bail!("{cmd}: {}", r.tagged.trim_end()),
        }
    }

    fn record(&mut self, name: &'static str, d: Duration) {
        let e = self.per.entry(name).or_default();
        e.0 += 1;
        e.1 += d.as_micros() as u64;
        self.lat.push(d);
    }

    fn pick<'s>(&mut self, from: &[&'s str]) -> &'s str {
        from[self.rng.below(from.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.rng.below(100) < percent
    }
}

fn expunge_race(tagged: &str) -> bool {
    let t = tagged.to_ascii_lowercase();
    t.contains("expunge")
}

async fn session(
    srv: &Server,
    corpus: &Corpus,
    name: &str,
    seed: u64,
    per: &mut PerCommand,
    lat: &mut crate::report::Lat,
    totals: &Totals,
) -> Result<()> {
    let t = Instant::now();
    let mut c = Conn::connect(srv.next_addr(), None).await?;
    c.login(name, PASSWORD).await?;
    let mut s = Client {
        c,
        rng: Rng::new(seed),
        per,
        lat,
        totals,
    };
    s.record("LOGIN", t.elapsed());
    if s.chance(50) {
        s.run("LIST", "LIST \"\" *").await?;
    }
    if s.chance(50) {
        s.run(
            "STATUS",
            &format!("STATUS {OTHER} (MESSAGES UNSEEN UIDNEXT)"),
        )
        .await?;
    }
    let sel = s.run("SELECT", "SELECT INBOX").await?;
    let exists = sel.exists().unwrap_or(0) as u64;
    if exists > 0 {
        // A random range of up to 100 messages, 1 to 4 random items.
        let len = 1 + s.rng.below(exists.min(100));
        let lo = 1 + s.rng.below(exists - len + 1);
        let mut items: Vec<&str> = Vec::new();
        for _ in 0..1 + s.rng.below(4) {
            let it = s.pick(FETCH_ITEMS);
            if !items.contains(&it) {
                items.push(it);
            }
        }
        let cmd = format!("FETCH {lo}:{} ({})", lo + len - 1, items.join(" "));
        s.run("FETCH range", &cmd).await?;
        // One message, one body section.
        let k = 1 + s.rng.below(exists);
        let item = s.pick(BODY_ITEMS);
        s.run("FETCH body", &format!("FETCH {k} ({item})")).await?;
        if s.chance(50) {
            let n = 1 + s.rng.below((exists / 5).clamp(1, 50));
            let set: Vec<String> = (0..n)
                .map(|_| (1 + s.rng.below(exists)).to_string())
                .collect();
            let mut flags: Vec<&str> = Vec::new();
            for _ in 0..1 + s.rng.below(3) {
                let f = s.pick(FLAGS);
                if !flags.contains(&f) {
                    flags.push(f);
                }
            }
            let op = s.pick(&["+FLAGS", "-FLAGS", "FLAGS"]);
            let silent = if s.chance(50) { ".SILENT" } else { "" };
            let cmd = format!("STORE {} {op}{silent} ({})", set.join(","), flags.join(" "));
            s.run("STORE", &cmd).await?;
        }
        // About 5% of the messages (at least one) deleted and expunged.
        let n = (exists / 20).max(1);
        let set: Vec<String> = (0..n)
            .map(|_| (1 + s.rng.below(exists)).to_string())
            .collect();
        s.run(
            "STORE \\Deleted",
            &format!("STORE {} +FLAGS.SILENT (\\Deleted)", set.join(",")),
        )
        .await?;
        s.run("EXPUNGE", "EXPUNGE").await?;
    }
    // APPEND of a corpus-shaped message (as many arrive as leave, on average).
    for _ in 0..(exists / 20).max(1) {
        let msg = stress_message(corpus, 10_000_000 + s.rng.below(1_000_000));
        let t = Instant::now();
        s.c.append("INBOX", &msg, "").await?;
        s.record("APPEND", t.elapsed());
    }
    let t = Instant::now();
    let Client { c, per, lat, .. } = s;
    c.logout().await?;
    let d = t.elapsed();
    let e = per.entry("LOGOUT").or_default();
    e.0 += 1;
    e.1 += d.as_micros() as u64;
    lat.push(d);
    Ok(())
}

/// `clients` clients loop stress sessions for `dur`.
pub async fn run(
    srv: &Arc<Server>,
    corpus: &Arc<Corpus>,
    clients: usize,
    dur: Duration,
) -> Result<Vec<Metric>> {
    let totals = Arc::new(Totals::default());
    let cpu0 = srv.cpu_secs();
    let split = crate::cpu::CpuSnap::take(srv);
    let start = Instant::now();
    let deadline = start + dur;
    let mut set = tokio::task::JoinSet::new();
    for ci in 0..clients {
        let (srv, corpus, totals) = (srv.clone(), corpus.clone(), totals.clone());
        set.spawn(async move {
            let mut per = PerCommand::new();
            let mut lat = crate::report::Lat::default();
            let mut n: u64 = 0;
            while Instant::now() < deadline {
                let name = user((ci as u64 + n * clients as u64) as u32);
                let seed = (ci as u64) << 32 | n;
                match session(&srv, &corpus, &name, seed, &mut per, &mut lat, &totals).await {
                    Ok(()) => {
                        totals.sessions.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        if totals.errors.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("  stress protocol error ({name}): {e:#}");
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                n += 1;
            }
            (per, lat)
        });
    }
    let mut per = PerCommand::new();
    let mut lat = crate::report::Lat::default();
    while let Some(r) = set.join_next().await {
        let (p, l) = r?;
        for (k, (n, us)) in p {
            let e = per.entry(k).or_default();
            e.0 += n;
            e.1 += us;
        }
        lat.merge(l);
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = srv.cpu_secs() - cpu0;
    let sessions = totals.sessions.load(Ordering::Relaxed);
    let sc = "stress";
    let mut tp = m(
        sc,
        format!("{clients} clients: sessions/s"),
        "sess/s",
        true,
        sessions as f64 / secs,
    );
    tp.plot = Some(("stress-throughput", clients as f64));
    let mut out = vec![
        tp,
        m(
            sc,
            format!("{clients} clients: command p99"),
            "ms",
            false,
            lat.pct_ms(0.99),
        ),
        m(
            sc,
            format!("{clients} clients: server CPU per 1000 sessions"),
            "s",
            false,
            cpu * 1000.0 / (sessions.max(1) as f64),
        ),
        m(
            sc,
            format!("{clients} clients: protocol errors"),
            "count",
            false,
            totals.errors.load(Ordering::Relaxed) as f64,
        ),
        m(
            sc,
            format!("{clients} clients: NO for a message expunged under it"),
            "count",
            false,
            totals.expunged.load(Ordering::Relaxed) as f64,
        ),
    ];
    out.extend(split.metrics(srv, sc, clients, sessions));
    for (name, (n, us)) in per {
        out.push(m(
            sc,
            format!("{clients} clients: {name} rate"),
            "cmd/s",
            true,
            n as f64 / secs,
        ));
        out.push(m(
            sc,
            format!("{clients} clients: {name} mean latency"),
            "ms",
            false,
            us as f64 / 1000.0 / (n.max(1) as f64),
        ));
    }
    Ok(out)
}
