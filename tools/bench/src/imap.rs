//! Minimal IMAP client used by the benchmark: tagged commands, literals, APPEND, IDLE.

use anyhow::{Context, Result, anyhow, bail};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};

/// Per-command timeout; a server slower than this counts as a protocol error.
pub const CMD_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
}

/// The result of one tagged command.
pub struct Resp {
    pub status: Status,
    pub tagged: String,
    /// Untagged responses (literals inlined), without the trailing CRLF.
    pub untagged: Vec<Vec<u8>>,
}

impl Resp {
    /// Fails unless the status is OK.
    pub fn ok(self) -> Result<Resp> {
        if self.status != Status::Ok {
            bail!("server answered: {}", self.tagged.trim_end());
        }
        Ok(self)
    }

    /// Finds `[KEY value ...]` in the tagged line and returns the text after KEY.
    pub fn code(&self, key: &str) -> Option<String> {
        code_in(&self.tagged, key)
    }

    /// Number from `* n EXISTS` (last one seen).
    pub fn exists(&self) -> Option<u32> {
        self.untagged
            .iter()
            .rev()
            .find_map(|l| untagged_num(l, b"EXISTS"))
    }
}

pub fn code_in(line: &str, key: &str) -> Option<String> {
    let up = line.to_ascii_uppercase();
    let start = up.find(&format!("[{key}"))? + key.len() + 1;
    let end = line[start..].find(']')? + start;
    Some(line[start..end].trim().to_string())
}

/// Parses `* <n> <word>` and returns n.
pub fn untagged_num(line: &[u8], word: &[u8]) -> Option<u32> {
    let rest = line.strip_prefix(b"* ")?;
    let sp = rest.iter().position(|&b| b == b' ')?;
    let n: u32 = std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()?;
    let w = &rest[sp + 1..];
    (w.len() >= word.len() && w[..word.len()].eq_ignore_ascii_case(word)).then_some(n)
}

pub struct Conn {
    rd: BufReader<OwnedReadHalf>,
    wr: BufWriter<OwnedWriteHalf>,
    tag: u64,
    pub caps: String,
}

impl Conn {
    /// Connects (optionally from a given loopback source address) and reads the greeting.
    pub async fn connect(addr: SocketAddr, src: Option<std::net::IpAddr>) -> Result<Conn> {
        let stream = match src {
            Some(ip) => {
                let sock = TcpSocket::new_v4()?;
                sock.bind(SocketAddr::new(ip, 0))?;
                sock.connect(addr).await?
            }
            None => TcpStream::connect(addr).await?,
        };
        stream.set_nodelay(true)?;
        let (r, w) = stream.into_split();
        let mut c = Conn {
            rd: BufReader::with_capacity(16 * 1024, r),
            wr: BufWriter::with_capacity(16 * 1024, w),
            tag: 0,
            caps: String::new(),
        };
        let greet = tokio::time::timeout(CMD_TIMEOUT, c.read_line())
            .await
            .context("greeting timeout")??;
        let g = String::from_utf8_lossy(&greet).to_string();
        if !g.starts_with("* OK") {
            bail!("unexpected greeting: {g}");
        }
        if let Some(c2) = code_in(&g, "CAPABILITY") {
            c.caps = c2.to_ascii_uppercase();
        }
        Ok(c)
    }

    pub fn has_cap(&self, cap: &str) -> bool {
        self.caps.split_whitespace().any(|c| c == cap)
    }

    /// Reads one logical response line with any literals inlined (CRLF stripped).
    pub async fn read_line(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(128);
        loop {
            let start = out.len();
            let n = self.rd.read_until(b'\n', &mut out).await?;
            if n == 0 {
                bail!("connection closed by server");
            }
            if out.ends_with(b"\r\n") {
                out.truncate(out.len() - 2);
            } else if out.ends_with(b"\n") {
                out.truncate(out.len() - 1);
            }
            match literal_len(&out[start..]) {
                Some(len) => {
                    let at = out.len();
                    out.resize(at + len, 0);
                    self.rd.read_exact(&mut out[at..]).await?;
                }
                None => return Ok(out),
            }
        }
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("A{}", self.tag)
    }

    /// Reads responses until the tagged completion for `tag`.
    pub async fn read_until_tagged(&mut self, tag: &str) -> Result<Resp> {
        let mut untagged = Vec::new();
        loop {
            let line = self.read_line().await?;
            if line.starts_with(b"* ") || line.starts_with(b"+") {
                untagged.push(line);
                continue;
            }
            let s = String::from_utf8_lossy(&line).to_string();
            let Some(rest) = s.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) else {
                bail!("unexpected response line: {s}");
            };
            let status = match rest.get(..3).map(|x| x.to_ascii_uppercase()) {
                Some(ref x) if x == "OK " || x == "OK" => Status::Ok,
                Some(ref x) if x.starts_with("NO") => Status::No,
                _ => Status::Bad,
            };
            return Ok(Resp {
                status,
                tagged: s,
                untagged,
            });
        }
    }

    /// Sends one command and waits for its completion.
    pub async fn cmd(&mut self, cmd: &str) -> Result<Resp> {
        let tag = self.next_tag();
        self.wr
            .write_all(format!("{tag} {cmd}\r\n").as_bytes())
            .await?;
        self.wr.flush().await?;
        tokio::time::timeout(CMD_TIMEOUT, self.read_until_tagged(&tag))
            .await
            .map_err(|_| anyhow!("timeout waiting for {cmd}"))?
    }

    pub async fn login(&mut self, user: &str, pass: &str) -> Result<()> {
        let r = self.cmd(&format!("LOGIN {user} {pass}")).await?.ok()?;
        if let Some(c) = r.code("CAPABILITY") {
            self.caps = c.to_ascii_uppercase();
        } else {
            let r = self.cmd("CAPABILITY").await?.ok()?;
            if let Some(l) = r.untagged.iter().find(|l| l.starts_with(b"* CAPABILITY")) {
                self.caps = String::from_utf8_lossy(&l[12..]).to_ascii_uppercase();
            }
        }
        Ok(())
    }

    /// APPEND with a synchronizing (or LITERAL+) literal; returns the APPENDUID uid if given.
    pub async fn append(&mut self, mailbox: &str, msg: &[u8], flags: &str) -> Result<Option<u32>> {
        let tag = self.next_tag();
        let plus = self.has_cap("LITERAL+");
        let lit = if plus { "+" } else { "" };
        let head = format!(
            "{tag} APPEND {mailbox} ({flags}) {{{}{lit}}}\r\n",
            msg.len()
        );
        self.wr.write_all(head.as_bytes()).await?;
        if !plus {
            self.wr.flush().await?;
            loop {
                let l = tokio::time::timeout(CMD_TIMEOUT, self.read_line()).await??;
                if l.starts_with(b"+") {
                    break;
                }
                if !l.starts_with(b"* ") {
                    bail!("APPEND refused: {}", String::from_utf8_lossy(&l));
                }
            }
        }
        // With LITERAL+ the command line, the message and its CRLF leave in one write, as a
        // client that knows the server takes the literal sends them.
        self.wr.write_all(msg).await?;
        self.wr.write_all(b"\r\n").await?;
        self.wr.flush().await?;
        let r = tokio::time::timeout(CMD_TIMEOUT, self.read_until_tagged(&tag))
            .await
            .map_err(|_| anyhow!("timeout waiting for APPEND"))??
            .ok()?;
        Ok(r.code("APPENDUID")
            .and_then(|c| c.split_whitespace().nth(1)?.parse().ok()))
    }

    /// Pipelined APPENDs with LITERAL+ (caller checks the capability), `window` in flight.
    pub async fn append_pipelined(
        &mut self,
        mailbox: &str,
        msgs: &[&[u8]],
        window: usize,
    ) -> Result<()> {
        let mut tags = std::collections::VecDeque::new();
        for m in msgs {
            let tag = self.next_tag();
            let head = format!("{tag} APPEND {mailbox} {{{}+}}\r\n", m.len());
            self.wr.write_all(head.as_bytes()).await?;
            self.wr.write_all(m).await?;
            self.wr.write_all(b"\r\n").await?;
            tags.push_back(tag);
            if tags.len() >= window {
                self.wr.flush().await?;
                let t = tags.pop_front().unwrap_or_default();
                self.read_until_tagged(&t).await?.ok()?;
            }
        }
        self.wr.flush().await?;
        while let Some(t) = tags.pop_front() {
            self.read_until_tagged(&t).await?.ok()?;
        }
        Ok(())
    }

    /// Starts IDLE and waits for the continuation request.
    pub async fn idle(&mut self) -> Result<()> {
        let tag = self.next_tag();
        self.wr
            .write_all(format!("{tag} IDLE\r\n").as_bytes())
            .await?;
        self.wr.flush().await?;
        loop {
            let l = tokio::time::timeout(CMD_TIMEOUT, self.read_line()).await??;
            if l.starts_with(b"+") {
                return Ok(());
            }
            if !l.starts_with(b"* ") {
                bail!("IDLE refused: {}", String::from_utf8_lossy(&l));
            }
        }
    }

    pub async fn logout(mut self) -> Result<()> {
        self.cmd("LOGOUT").await?.ok()?;
        Ok(())
    }
}

fn literal_len(line: &[u8]) -> Option<usize> {
    let l = line.strip_suffix(b"}")?;
    let open = l.iter().rposition(|&b| b == b'{')?;
    let digits = l[open + 1..].strip_suffix(b"+").unwrap_or(&l[open + 1..]);
    std::str::from_utf8(digits).ok()?.parse().ok()
}
