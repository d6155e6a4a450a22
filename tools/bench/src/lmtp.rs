//! Scenario 6: LMTP delivery. N clients, one LMTP connection each (LHLO once), deliver
//! ~5 KB messages to R recipients per transaction in a loop for a fixed time; afterwards the
//! mailboxes are counted over IMAP (STATUS) to check that every accepted delivery arrived.

use crate::corpus::five_kb;
use crate::imap::{CMD_TIMEOUT, Conn};
use crate::report::{Lat, Metric, m};
use crate::servers::{PASSWORD, Server, USERS};
use anyhow::{Context, Result, anyhow, bail};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// The domain of the recipient addresses (a local domain of both servers).
pub const DOMAIN: &str = "example.org";
const SENDER: &str = "bench@example.net";

/// A minimal LMTP client (RFC 2033), pipelining MAIL/RCPT/DATA when the server offers it.
pub struct Lmtp {
    rd: BufReader<OwnedReadHalf>,
    wr: BufWriter<OwnedWriteHalf>,
    pipelining: bool,
}

/// One reply: its code and its last line.
struct Reply(u16, String);

impl Lmtp {
    /// Connects, reads the greeting and says LHLO.
    pub async fn connect(addr: SocketAddr) -> Result<Lmtp> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (r, w) = stream.into_split();
        let mut c = Lmtp {
            rd: BufReader::with_capacity(16 * 1024, r),
            wr: BufWriter::with_capacity(16 * 1024, w),
            pipelining: false,
        };
        let (g, _) = c.reply_lines().await.context("greeting")?;
        if g.0 != 220 {
            bail!("unexpected greeting: {}", g.1);
        }
        c.wr.write_all(b"LHLO bench.example.net\r\n").await?;
        c.wr.flush().await?;
        let (r, lines) = c.reply_lines().await.context("LHLO")?;
        if r.0 != 250 {
            bail!("LHLO refused: {}", r.1);
        }
        c.pipelining = lines.iter().any(|l| {
            l.get(4..)
                .is_some_and(|k| k.eq_ignore_ascii_case("PIPELINING"))
        });
        Ok(c)
    }

    /// Reads one (possibly multi-line) reply; returns it and all its lines.
    async fn reply_lines(&mut self) -> Result<(Reply, Vec<String>)> {
        let mut lines = Vec::new();
        loop {
            let mut buf = Vec::with_capacity(128);
            let n = tokio::time::timeout(CMD_TIMEOUT, self.rd.read_until(b'\n', &mut buf))
                .await
                .map_err(|_| anyhow!("timeout waiting for a reply"))??;
            if n == 0 {
                bail!("connection closed by server");
            }
            let s = String::from_utf8_lossy(&buf).trim_end().to_string();
            let code: u16 = s
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| anyhow!("malformed reply: {s}"))?;
            let last = s.as_bytes().get(3) != Some(&b'-');
            lines.push(s);
            if last {
                let l = lines.last().cloned().unwrap_or_default();
                return Ok((Reply(code, l), lines));
            }
        }
    }

    async fn reply(&mut self) -> Result<Reply> {
        Ok(self.reply_lines().await?.0)
    }

    /// One transaction: MAIL FROM, RCPT TO per recipient, DATA with `stuffed` (the message,
    /// dot-stuffed, ending in `CRLF.CRLF`). Returns which recipients got a 2xx after DATA;
    /// any other reply before that is an error.
    async fn deliver(&mut self, rcpts: &[String], stuffed: &[u8]) -> Result<Vec<bool>> {
        let mut head = format!("MAIL FROM:<{SENDER}>\r\n");
        for r in rcpts {
            head.push_str(&format!("RCPT TO:<{r}>\r\n"));
        }
        head.push_str("DATA\r\n");
        if self.pipelining {
            self.wr.write_all(head.as_bytes()).await?;
            self.wr.flush().await?;
            for i in 0..rcpts.len() + 2 {
                let r = self.reply().await?;
                let want = if i == rcpts.len() + 1 { 354 } else { 250 };
                if r.0 != want {
                    bail!("unexpected reply {}", r.1);
                }
            }
        } else {
            for (i, line) in head.split_inclusive("\r\n").enumerate() {
                self.wr.write_all(line.as_bytes()).await?;
                self.wr.flush().await?;
                let r = self.reply().await?;
                let want = if i == rcpts.len() + 1 { 354 } else { 250 };
                if r.0 != want {
                    bail!("unexpected reply to {}: {}", line.trim_end(), r.1);
                }
            }
        }
        self.wr.write_all(stuffed).await?;
        self.wr.flush().await?;
        let mut ok = Vec::with_capacity(rcpts.len());
        for _ in rcpts {
            ok.push((200..300).contains(&self.reply().await?.0));
        }
        Ok(ok)
    }

    async fn quit(mut self) -> Result<()> {
        self.wr.write_all(b"QUIT\r\n").await?;
        self.wr.flush().await?;
        self.reply().await?;
        Ok(())
    }
}

/// The message as DATA content: lines starting with `.` get another, then `CRLF.CRLF`.
fn dot_stuff(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + 64);
    let mut bol = true;
    for &b in msg {
        if bol && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        bol = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Recipient `k` of client `ci` with `rcpts` recipients per message: distinct users while
/// clients x rcpts <= USERS.
fn rcpt_user(ci: usize, rcpts: usize, k: usize) -> String {
    format!("testuser{}", (ci * rcpts + k) % USERS as usize + 1)
}

/// What one client did.
#[derive(Default)]
struct Tally {
    lat: Lat,
    messages: u64,
    rcpt_ok: u64,
    errors: u64,
    /// user -> deliveries accepted (2xx after DATA).
    per_user: BTreeMap<String, u64>,
}

async fn connect_retry(addr: SocketAddr) -> Result<Lmtp> {
    let t0 = Instant::now();
    loop {
        match Lmtp::connect(addr).await {
            Ok(c) => return Ok(c),
            Err(e) if t0.elapsed() > Duration::from_secs(10) => {
                return Err(e.context(format!("LMTP on {addr}")));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// One run: `clients` connections delivering to `rcpts` recipients each for `dur`.
/// `expected` accumulates the deliveries per user over the runs on the same server, and is
/// compared with the mailboxes afterwards.
pub async fn run(
    srv: &Arc<Server>,
    clients: usize,
    rcpts: usize,
    dur: Duration,
    expected: &mut BTreeMap<String, u64>,
) -> Result<Vec<Metric>> {
    let addr = srv
        .lmtp_addr
        .ok_or_else(|| anyhow!("server started without LMTP"))?;
    // Connected (and LHLO said) before the clock starts: the rate is of transactions.
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(connect_retry(addr).await?);
    }
    let (cpu0, own0) = (srv.cpu_secs(), own_cpu_secs());
    let start = Instant::now();
    let deadline = start + dur;
    let mut set = tokio::task::JoinSet::new();
    for (ci, c) in conns.into_iter().enumerate() {
        let to: Vec<String> = (0..rcpts)
            .map(|k| format!("{}@{DOMAIN}", rcpt_user(ci, rcpts, k)))
            .collect();
        let users: Vec<String> = (0..rcpts).map(|k| rcpt_user(ci, rcpts, k)).collect();
        // Distinct messages per run, client and transaction (no server can deduplicate).
        let seed0 = (rcpts as u64) << 40 | (ci as u64) << 24;
        set.spawn(async move {
            let mut t = Tally::default();
            let mut c = Some(c);
            let mut n = 0u64;
            while Instant::now() < deadline {
                // Generated outside the timed part; ~5 KB of text costs microseconds.
                let stuffed = dot_stuff(&five_kb(seed0 + n));
                n += 1;
                let conn = match c.as_mut() {
                    Some(x) => x,
                    None => match Lmtp::connect(addr).await {
                        Ok(x) => c.insert(x),
                        Err(e) => {
                            t.errors += 1;
                            if t.errors <= 3 {
                                eprintln!("  LMTP reconnect failed: {e:#}");
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    },
                };
                let t0 = Instant::now();
                match conn.deliver(&to, &stuffed).await {
                    Ok(ok) => {
                        t.lat.push(t0.elapsed());
                        t.messages += 1;
                        for (u, good) in users.iter().zip(&ok) {
                            if *good {
                                t.rcpt_ok += 1;
                                *t.per_user.entry(u.clone()).or_default() += 1;
                            }
                        }
                        if ok.iter().any(|g| !g) {
                            t.errors += 1;
                        }
                    }
                    Err(e) => {
                        t.errors += 1;
                        if t.errors <= 3 {
                            eprintln!("  LMTP transaction failed: {e:#}");
                        }
                        // The state of the session is unknown: start a new one.
                        c = None;
                    }
                }
            }
            if let Some(c) = c {
                let _ = c.quit().await;
            }
            t
        });
    }
    let mut all = Tally::default();
    while let Some(r) = set.join_next().await {
        let t = r?;
        all.lat.merge(t.lat);
        all.messages += t.messages;
        all.rcpt_ok += t.rcpt_ok;
        all.errors += t.errors;
        for (u, k) in t.per_user {
            *expected.entry(u).or_default() += k;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = srv.cpu_secs() - cpu0;
    let own = own_cpu_secs() - own0;
    let missing = verify(srv, expected).await?;
    println!(
        "  R={rcpts}: {} messages, {} recipient deliveries in {secs:.1} s, server CPU {cpu:.2} s, \
         {} errors, {missing} deliveries not found",
        all.messages, all.rcpt_ok, all.errors
    );
    let sc = "lmtp";
    let p = format!("{clients} clients, {rcpts} rcpt");
    Ok(vec![
        m(
            sc,
            format!("{p}: messages/s"),
            "msg/s",
            true,
            all.messages as f64 / secs,
        ),
        m(
            sc,
            format!("{p}: recipient deliveries/s"),
            "dlv/s",
            true,
            all.rcpt_ok as f64 / secs,
        ),
        m(
            sc,
            format!("{p}: transaction p50"),
            "ms",
            false,
            all.lat.pct_ms(0.5),
        ),
        m(
            sc,
            format!("{p}: transaction p99"),
            "ms",
            false,
            all.lat.pct_ms(0.99),
        ),
        m(
            sc,
            format!("{p}: server CPU per 1000 messages"),
            "s",
            false,
            cpu * 1000.0 / (all.messages.max(1) as f64),
        ),
        m(
            sc,
            format!("{p}: load generator CPU per 1000 messages"),
            "s",
            false,
            own * 1000.0 / (all.messages.max(1) as f64),
        ),
        m(
            sc,
            format!("{p}: errors"),
            "count",
            false,
            all.errors as f64,
        ),
        m(
            sc,
            format!("{p}: accepted but not in the mailbox"),
            "count",
            false,
            missing as f64,
        ),
    ])
}

/// CPU seconds (user + system) of this process so far: the load generator's share of the
/// machine, which the servers do not get.
pub fn own_cpu_secs() -> f64 {
    let ticks: u64 = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|st| {
            let close = st.rfind(')')?;
            Some(
                st[close + 2..]
                    .split_whitespace()
                    .skip(11)
                    .take(2)
                    .filter_map(|v| v.parse::<u64>().ok())
                    .sum(),
            )
        })
        .unwrap_or(0);
    ticks as f64 / crate::servers::clk_tck()
}

/// Counts each user's INBOX over IMAP (STATUS MESSAGES) and returns how many of the
/// expected deliveries are not there (or extra: the absolute difference, summed).
async fn verify(srv: &Server, expected: &BTreeMap<String, u64>) -> Result<u64> {
    let mut diff = 0u64;
    for (u, want) in expected {
        let mut c = Conn::connect(srv.addr, None).await?;
        c.login(u, PASSWORD).await?;
        let r = c.cmd("STATUS INBOX (MESSAGES)").await?.ok()?;
        let line = r
            .untagged
            .iter()
            .find(|l| l.starts_with(b"* STATUS"))
            .map(|l| String::from_utf8_lossy(l).to_ascii_uppercase())
            .unwrap_or_default();
        let got: u64 = line
            .split("MESSAGES ")
            .nth(1)
            .and_then(|x| {
                x.split(|ch: char| !ch.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            })
            .ok_or_else(|| anyhow!("no MESSAGES in STATUS for {u}: {line}"))?;
        if got != *want {
            eprintln!("  {u}: {got} messages in INBOX, {want} delivered");
        }
        diff += got.abs_diff(*want);
        c.logout().await?;
    }
    Ok(diff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuffing() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuff(b".x"), b"..x\r\n.\r\n");
    }

    #[test]
    fn recipients_distinct() {
        let mut all: Vec<String> = (0..16)
            .flat_map(|c| (0..3).map(move |k| rcpt_user(c, 3, k)))
            .collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 48);
    }
}
