//! A small IMAP client: just what a migration needs (TLS or STARTTLS, LOGIN / AUTHENTICATE
//! PLAIN, LIST, EXAMINE, pipelined UID FETCH).
//!
//! Written here rather than taken from a crate: async-imap and imap-codec both hold every
//! literal of a response in memory (imap-codec's parser wants the whole response), and a
//! migration meets 50 MiB messages. This reader frames responses itself and spools a literal
//! bigger than [`SPOOL_OVER`] to a temporary file as it arrives, so a message never needs more
//! memory than a fixed buffer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Literals bigger than this are written to a temporary file instead of memory.
pub const SPOOL_OVER: u64 = 256 * 1024;
/// The text of one response (without its literals) may not be longer than this.
const MAX_TEXT: usize = 1024 * 1024;
/// A response may not carry more literals than this.
const MAX_LITERALS: usize = 64;
/// The source must send something within this time while a command runs.
const SILENCE: std::time::Duration = std::time::Duration::from_secs(300);

/// `f`, or an error after [`SILENCE`].
async fn in_time<T>(f: impl std::future::Future<Output = std::io::Result<T>>) -> Result<T> {
    match tokio::time::timeout(SILENCE, f).await {
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            bail!("the source closed the connection")
        }
        Ok(r) => r.context("reading from the source"),
        Err(_) => bail!("the source sent nothing for {} s", SILENCE.as_secs()),
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where the source server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// `imaps://`: TLS from the start. Otherwise STARTTLS when offered.
    pub tls: bool,
    /// Accept any certificate (a self-signed test server).
    pub insecure: bool,
}

/// How to log in at the source.
#[derive(Debug, Clone)]
pub enum Login {
    /// The account's own password.
    User { user: String, password: String },
    /// An administrator's master login on behalf of `user`: AUTHENTICATE PLAIN with `user` as
    /// the authorization identity when offered, else Dovecot's `LOGIN user*master`.
    Master {
        user: String,
        master: String,
        password: String,
    },
}

/// One literal of a response.
#[derive(Debug)]
pub enum Literal {
    Memory(Vec<u8>),
    /// Spooled: the file is removed when this is dropped.
    File(tempfile::TempPath, u64),
}

impl Literal {
    pub fn size(&self) -> u64 {
        match self {
            Literal::Memory(v) => v.len() as u64,
            Literal::File(_, n) => *n,
        }
    }
}

/// One response: its text, where each literal shows as its `{n}` announcement, and the
/// literals in order.
#[derive(Debug, Default)]
pub struct Response {
    pub text: Vec<u8>,
    pub literals: Vec<Option<Literal>>,
}

/// A token of a response's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// An atom or number; a `[...]` section (with spaces and parentheses) belongs to it.
    Atom(Vec<u8>),
    /// A quoted string, unescaped.
    Str(Vec<u8>),
    /// The n-th literal of the response.
    Lit(usize),
    Open,
    Close,
}

/// Splits a response text into tokens.
pub fn tokens(text: &[u8]) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut lit = 0;
    while i < text.len() {
        match text[i] {
            b' ' | b'\r' | b'\n' => i += 1,
            b'(' => {
                out.push(Tok::Open);
                i += 1;
            }
            b')' => {
                out.push(Tok::Close);
                i += 1;
            }
            b'"' => {
                i += 1;
                let mut s = Vec::new();
                while i < text.len() && text[i] != b'"' {
                    if text[i] == b'\\' && i + 1 < text.len() {
                        i += 1;
                    }
                    s.push(text[i]);
                    i += 1;
                }
                i += 1;
                out.push(Tok::Str(s));
            }
            b'{' | b'~' if literal_token_end(&text[i..]).is_some() => {
                i += literal_token_end(&text[i..]).unwrap_or(1);
                out.push(Tok::Lit(lit));
                lit += 1;
            }
            _ => {
                let start = i;
                let mut depth = 0;
                while i < text.len() {
                    let c = text[i];
                    if c == b'[' {
                        depth += 1;
                    } else if c == b']' && depth > 0 {
                        depth -= 1;
                    } else if depth == 0 && matches!(c, b' ' | b'(' | b')' | b'\r' | b'\n') {
                        break;
                    }
                    i += 1;
                }
                out.push(Tok::Atom(text[start..i].to_vec()));
            }
        }
    }
    out
}

/// The `n` of a line ending in `{n}`, `{n+}` or `~{n}` (CRLF already cut).
fn literal_announced(line: &[u8]) -> Option<u64> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&c| c == b'{')?;
    let digits = body[open + 1..]
        .strip_suffix(b"+")
        .unwrap_or(&body[open + 1..]);
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The length of a `{n}`, `{n+}` or `~{n}` at the start of `t`.
fn literal_token_end(t: &[u8]) -> Option<usize> {
    let t2 = t.strip_prefix(b"~").unwrap_or(t);
    let skip = t.len() - t2.len();
    let rest = t2.strip_prefix(b"{")?;
    let close = rest.iter().position(|&c| c == b'}')?;
    let inner = &rest[..close];
    let digits = inner.strip_suffix(b"+").unwrap_or(inner);
    (!digits.is_empty() && digits.iter().all(u8::is_ascii_digit)).then_some(skip + 1 + close + 1)
}

/// Quotes a string for a command (a synchronizing literal is never needed for what we send:
/// names with CR, LF or NUL are refused).
pub fn quote(s: &[u8]) -> Result<String> {
    if s.iter().any(|&c| c == b'\r' || c == b'\n' || c == 0) {
        bail!(
            "cannot send {:?} as a quoted string",
            String::from_utf8_lossy(s)
        );
    }
    let mut out = Vec::with_capacity(s.len() + 2);
    out.push(b'"');
    for &c in s {
        if c == b'"' || c == b'\\' {
            out.push(b'\\');
        }
        out.push(c);
    }
    out.push(b'"');
    String::from_utf8(out).map_err(|_| anyhow!("a name that is not UTF-8"))
}

/// A connection to the source server.
pub struct Client {
    conn: BufReader<Box<dyn Io>>,
    next_tag: u64,
    pub capabilities: Vec<String>,
    spool_dir: PathBuf,
}

/// How a tagged command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub ok: bool,
    pub text: String,
}

impl Client {
    /// Connects (TLS, or plain with STARTTLS when offered) and reads the capabilities.
    pub async fn connect(ep: &Endpoint, spool_dir: &Path) -> Result<Client> {
        let tcp = TcpStream::connect((ep.host.as_str(), ep.port))
            .await
            .with_context(|| format!("connecting to {}:{}", ep.host, ep.port))?;
        tcp.set_nodelay(true).ok();
        let io: Box<dyn Io> = if ep.tls {
            Box::new(tls(ep, tcp).await?)
        } else {
            Box::new(tcp)
        };
        let mut c = Client {
            conn: BufReader::with_capacity(64 * 1024, io),
            next_tag: 1,
            capabilities: Vec::new(),
            spool_dir: spool_dir.to_path_buf(),
        };
        let greeting = c.read_response().await?;
        if !greeting.text.starts_with(b"* OK") && !greeting.text.starts_with(b"* PREAUTH") {
            bail!("the server greeted with {}", c.show(&greeting.text));
        }
        c.refresh_capabilities().await?;
        if !ep.tls && c.has("STARTTLS") {
            let (_, done) = c.run("STARTTLS").await?;
            if !done.ok {
                bail!("STARTTLS refused: {}", done.text);
            }
            // Nothing may follow the tagged OK before the handshake.
            let plain = std::mem::replace(
                &mut c.conn,
                BufReader::new(Box::new(tokio::io::duplex(1).0) as Box<dyn Io>),
            );
            if !plain.buffer().is_empty() {
                bail!("the server sent data after STARTTLS's OK");
            }
            let inner = plain.into_inner();
            let tls = tls_over(ep, inner).await?;
            c.conn = BufReader::with_capacity(64 * 1024, Box::new(tls));
            c.refresh_capabilities().await?;
        }
        Ok(c)
    }

    fn show(&self, text: &[u8]) -> String {
        String::from_utf8_lossy(text).trim_end().to_string()
    }

    /// True if the server advertised `cap` (case-insensitive).
    pub fn has(&self, cap: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(cap))
    }

    async fn refresh_capabilities(&mut self) -> Result<()> {
        let (untagged, done) = self.run("CAPABILITY").await?;
        if !done.ok {
            bail!("CAPABILITY failed: {}", done.text);
        }
        self.capabilities = untagged
            .iter()
            .filter(|r| r.text.len() > 13 && r.text[..13].eq_ignore_ascii_case(b"* CAPABILITY "))
            .flat_map(|r| {
                String::from_utf8_lossy(&r.text[13..])
                    .split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        Ok(())
    }

    /// Logs in.
    pub async fn login(&mut self, login: &Login) -> Result<()> {
        let plain = self.has("AUTH=PLAIN");
        let done = match login {
            Login::User { user, password } if plain => self.auth_plain("", user, password).await?,
            Login::User { user, password } => {
                let cmd = format!(
                    "LOGIN {} {}",
                    quote(user.as_bytes())?,
                    quote(password.as_bytes())?
                );
                self.run(&cmd).await?.1
            }
            Login::Master {
                user,
                master,
                password,
            } if plain => self.auth_plain(user, master, password).await?,
            Login::Master {
                user,
                master,
                password,
            } => {
                let who = format!("{user}*{master}");
                let cmd = format!(
                    "LOGIN {} {}",
                    quote(who.as_bytes())?,
                    quote(password.as_bytes())?
                );
                self.run(&cmd).await?.1
            }
        };
        if !done.ok {
            bail!("login refused: {}", done.text);
        }
        // The OK may carry new capabilities; ask again.
        self.refresh_capabilities().await
    }

    async fn auth_plain(&mut self, authz: &str, authc: &str, password: &str) -> Result<Tagged> {
        let ir = base64::engine::general_purpose::STANDARD
            .encode(format!("{authz}\0{authc}\0{password}"));
        if self.has("SASL-IR") {
            return Ok(self.run(&format!("AUTHENTICATE PLAIN {ir}")).await?.1);
        }
        let tag = self.send("AUTHENTICATE PLAIN").await?;
        loop {
            let r = self.read_response().await?;
            if r.text.starts_with(b"+") {
                self.write_all(format!("{ir}\r\n").as_bytes()).await?;
            } else if let Some(done) = tagged(&r, &tag) {
                return Ok(done);
            }
        }
    }

    /// Sends a command; returns its tag.
    pub async fn send(&mut self, command: &str) -> Result<String> {
        let tag = format!("m{}", self.next_tag);
        self.next_tag += 1;
        self.write_all(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        Ok(tag)
    }

    async fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        let w = self.conn.get_mut();
        w.write_all(bytes).await.context("writing to the source")?;
        w.flush().await.context("writing to the source")?;
        Ok(())
    }

    /// Runs one command to its end: its untagged responses and how it ended.
    pub async fn run(&mut self, command: &str) -> Result<(Vec<Response>, Tagged)> {
        let tag = self.send(command).await?;
        let mut untagged = Vec::new();
        loop {
            let r = self.read_response().await?;
            if let Some(done) = tagged(&r, &tag) {
                return Ok((untagged, done));
            }
            untagged.push(r);
        }
    }

    /// Reads one response with its literals (big ones spooled).
    pub async fn read_response(&mut self) -> Result<Response> {
        let mut r = Response::default();
        loop {
            let before = r.text.len();
            let limit = (MAX_TEXT + 2 - before.min(MAX_TEXT)) as u64;
            let n = in_time((&mut self.conn).take(limit).read_until(b'\n', &mut r.text)).await?;
            if n == 0 {
                bail!("the source closed the connection");
            }
            if !r.text.ends_with(b"\n") {
                bail!("a response from the source is longer than {MAX_TEXT} bytes");
            }
            r.text.pop();
            if r.text.ends_with(b"\r") {
                r.text.pop();
            }
            let Some(len) = literal_announced(&r.text[before..]) else {
                if r.text.starts_with(b"* BYE") {
                    bail!("the source said {}", self.show(&r.text));
                }
                return Ok(r);
            };
            if r.literals.len() >= MAX_LITERALS {
                bail!("a response from the source has more than {MAX_LITERALS} literals");
            }
            let lit = self.read_literal(len).await?;
            r.literals.push(Some(lit));
        }
    }

    async fn read_literal(&mut self, len: u64) -> Result<Literal> {
        if len <= SPOOL_OVER {
            let mut v = vec![0u8; len as usize];
            in_time(self.conn.read_exact(&mut v)).await?;
            return Ok(Literal::Memory(v));
        }
        std::fs::create_dir_all(&self.spool_dir).ok();
        let file = tempfile::Builder::new()
            .prefix("migrate-")
            .tempfile_in(&self.spool_dir)
            .with_context(|| format!("making a spool file in {}", self.spool_dir.display()))?;
        let (f, path) = file.into_parts();
        let mut f = std::io::BufWriter::with_capacity(256 * 1024, f);
        let mut left = len;
        while left > 0 {
            let buf = in_time(self.conn.fill_buf()).await?;
            if buf.is_empty() {
                bail!("the source closed the connection inside a literal");
            }
            let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            // Buffered: a write reaches the disk every 256 KiB (the page cache, no fsync).
            std::io::Write::write_all(&mut f, &buf[..n]).context("spooling a literal")?;
            self.conn.consume(n);
            left -= n as u64;
        }
        std::io::Write::flush(&mut f).context("spooling a literal")?;
        Ok(Literal::File(path, len))
    }
}

/// The tagged status if `r` is the end of command `tag`.
pub fn tagged(r: &Response, tag: &str) -> Option<Tagged> {
    let rest = r.text.strip_prefix(tag.as_bytes())?.strip_prefix(b" ")?;
    let ok = rest.len() >= 2 && rest[..2].eq_ignore_ascii_case(b"OK");
    Some(Tagged {
        ok,
        text: String::from_utf8_lossy(rest).into_owned(),
    })
}

async fn tls<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    ep: &Endpoint,
    s: S,
) -> Result<tokio_rustls::client::TlsStream<S>> {
    let config = tls_config(ep.insecure)?;
    let name = rustls::pki_types::ServerName::try_from(ep.host.clone())
        .map_err(|e| anyhow!("bad server name {}: {e}", ep.host))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, s)
        .await
        .with_context(|| format!("TLS with {}", ep.host))
}

async fn tls_over(
    ep: &Endpoint,
    s: Box<dyn Io>,
) -> Result<tokio_rustls::client::TlsStream<Box<dyn Io>>> {
    tls(ep, s).await
}

fn tls_config(insecure: bool) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    if insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth());
    }
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        roots.add(cert).ok();
    }
    if roots.is_empty() {
        bail!(
            "no trusted certificates found on this system (install ca-certificates, or --insecure for a test server)"
        );
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// `--insecure`: any certificate is accepted (signatures are still checked).
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_of_a_fetch() {
        let t = tokens(
            b"* 3 FETCH (UID 7 FLAGS (\\Seen $Label1) INTERNALDATE \"05-Dec-2026 05:33:15 +0000\" BODY[HEADER.FIELDS (MESSAGE-ID)] {12} BODY[] {300})",
        );
        assert_eq!(t[0], Tok::Atom(b"*".to_vec()));
        assert!(t.contains(&Tok::Atom(b"BODY[HEADER.FIELDS (MESSAGE-ID)]".to_vec())));
        assert!(t.contains(&Tok::Str(b"05-Dec-2026 05:33:15 +0000".to_vec())));
        assert!(t.contains(&Tok::Lit(0)));
        assert!(t.contains(&Tok::Lit(1)));
        assert_eq!(t.last(), Some(&Tok::Close));
    }

    #[test]
    fn literal_announcements() {
        assert_eq!(literal_announced(b"* 1 FETCH (BODY[] {42}"), Some(42));
        assert_eq!(literal_announced(b"* 1 FETCH (BODY[] ~{42}"), Some(42));
        assert_eq!(literal_announced(b"a OK {x}"), None);
        assert_eq!(literal_announced(b"a OK done"), None);
    }

    /// A fake source on loopback answering each command line with `script(tag, command)`:
    /// bytes to send, and whether to close the connection after them.
    async fn fake_source(
        script: impl Fn(&str, &str) -> (Vec<u8>, bool) + Send + Sync + 'static,
    ) -> Endpoint {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let script = Arc::new(script);
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let script = script.clone();
                tokio::spawn(async move {
                    let mut s = BufReader::new(s);
                    s.get_mut().write_all(b"* OK fake\r\n").await.unwrap();
                    let mut line = String::new();
                    while s.read_line(&mut line).await.unwrap_or(0) > 0 {
                        let (tag, cmd) = line.trim_end().split_once(' ').unwrap();
                        let (out, close) = script(tag, cmd);
                        if s.get_mut().write_all(&out).await.is_err() || close {
                            return;
                        }
                        line.clear();
                    }
                });
            }
        });
        Endpoint {
            host: "127.0.0.1".into(),
            port,
            tls: false,
            insecure: false,
        }
    }

    #[tokio::test]
    async fn big_literals_are_spooled_and_bad_sources_end_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let big = SPOOL_OVER as usize * 3 + 5;
        let ep = fake_source(move |tag, cmd| match cmd {
            "CAPABILITY" => (
                format!("* CAPABILITY IMAP4rev1\r\n{tag} OK\r\n").into_bytes(),
                false,
            ),
            "BIG" => {
                let mut v = format!("* 1 FETCH (UID 1 BODY[] {{{big}}}\r\n").into_bytes();
                v.extend(std::iter::repeat_n(b'x', big));
                v.extend_from_slice(format!(")\r\n{tag} OK\r\n").as_bytes());
                (v, false)
            }
            "LONG" => {
                let mut v = b"* ".to_vec();
                v.extend(std::iter::repeat_n(b'y', MAX_TEXT + 10));
                (v, false)
            }
            _ => (b"* 1 FETCH (BODY[] {100}\r\nshort".to_vec(), true),
        })
        .await;
        let mut c = Client::connect(&ep, dir.path()).await.unwrap();
        let (mut untagged, done) = c.run("BIG").await.unwrap();
        assert!(done.ok);
        let item = crate::migrate::parse::fetch_item(&mut untagged[0]).unwrap();
        match item.body {
            Some(Literal::File(path, n)) => {
                assert_eq!(n, big as u64);
                assert_eq!(std::fs::metadata(&path).unwrap().len(), big as u64);
                let p = path.to_path_buf();
                drop(path);
                assert!(!p.exists(), "the spool file goes with its literal");
            }
            other => panic!("not spooled: {other:?}"),
        }
        let err = c.run("LONG").await.unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err:#}");

        // The connection closes inside a literal.
        let mut c = Client::connect(&ep, dir.path()).await.unwrap();
        let err = c.run("CUT").await.unwrap_err();
        assert!(format!("{err:#}").contains("closed"), "{err:#}");
    }

    #[test]
    fn quoting() {
        assert_eq!(quote(b"a\"b\\c").unwrap(), "\"a\\\"b\\\\c\"");
        assert!(quote(b"a\r\nb").is_err());
    }
}
