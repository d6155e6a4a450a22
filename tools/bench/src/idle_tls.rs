//! The idle scenario's TLS variants (issue 11): an IDLE connection over STARTTLS, optionally
//! with COMPRESS=DEFLATE (RFC 4978) on top, as real clients connect. Mailkeep only: the
//! client here accepts any certificate (the server's generated one) and speaks just enough
//! IMAP to LOGIN, SELECT, COMPRESS and IDLE.

use anyhow::{Context, Result, bail};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types};
use zlib_rs::{Deflate, DeflateFlush, Inflate, InflateFlush};

/// Which idle connections the scenario opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IdleMode {
    /// Plaintext IMAP (loopback).
    Plain,
    /// STARTTLS, then LOGIN, SELECT, IDLE.
    Tls,
    /// STARTTLS, LOGIN, SELECT, COMPRESS DEFLATE, IDLE.
    TlsCompress,
}

impl IdleMode {
    pub fn name(self) -> &'static str {
        match self {
            IdleMode::Plain => "plain",
            IdleMode::Tls => "tls",
            IdleMode::TlsCompress => "tls-compress",
        }
    }
}

/// Accepts whatever certificate the server shows: a benchmark on loopback.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &pki_types::CertificateDer<'_>,
        _: &[pki_types::CertificateDer<'_>],
        _: &pki_types::ServerName<'_>,
        _: &[u8],
        _: pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub fn connector() -> Result<TlsConnector> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// A line-oriented IMAP stream, raw-deflated in both directions once `compress` is called.
pub struct Lines<S> {
    s: S,
    buf: Vec<u8>,
    deflate: Option<Deflate>,
    inflate: Option<Inflate>,
    tag: u32,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Lines<S> {
    fn new(s: S) -> Self {
        Lines {
            s,
            buf: Vec::new(),
            deflate: None,
            inflate: None,
            tag: 0,
        }
    }

    async fn send(&mut self, text: &[u8]) -> Result<()> {
        match &mut self.deflate {
            None => self.s.write_all(text).await?,
            Some(d) => {
                let mut out = vec![0u8; text.len() + 1024];
                let before = d.total_out();
                d.compress(text, &mut out, DeflateFlush::SyncFlush)
                    .map_err(|e| anyhow::anyhow!("deflate: {}", e.as_str()))?;
                out.truncate((d.total_out() - before) as usize);
                self.s.write_all(&out).await?;
            }
        }
        self.s.flush().await?;
        Ok(())
    }

    /// One line without CRLF.
    pub async fn read_line(&mut self) -> Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.truncate(line.len() - 1);
                if line.ends_with(b"\r") {
                    line.pop();
                }
                return Ok(line);
            }
            let mut raw = [0u8; 4096];
            let n = self.s.read(&mut raw).await?;
            if n == 0 {
                bail!("connection closed by server");
            }
            match &mut self.inflate {
                None => self.buf.extend_from_slice(&raw[..n]),
                Some(i) => {
                    let mut input = &raw[..n];
                    while !input.is_empty() {
                        let mut out = [0u8; 16 * 1024];
                        let (in0, out0) = (i.total_in(), i.total_out());
                        i.decompress(input, &mut out, InflateFlush::NoFlush)
                            .map_err(|e| anyhow::anyhow!("inflate: {}", e.as_str()))?;
                        let used = (i.total_in() - in0) as usize;
                        let made = (i.total_out() - out0) as usize;
                        self.buf.extend_from_slice(&out[..made]);
                        input = &input[used..];
                        if used == 0 && made == 0 {
                            bail!("inflate made no progress");
                        }
                    }
                }
            }
        }
    }

    /// A command; fails unless its tagged answer is OK.
    async fn cmd(&mut self, text: &str) -> Result<()> {
        self.tag += 1;
        let tag = format!("A{}", self.tag);
        self.send(format!("{tag} {text}\r\n").as_bytes()).await?;
        loop {
            let line = self.read_line().await?;
            if let Some(rest) = line.strip_prefix(format!("{tag} ").as_bytes()) {
                if !rest.starts_with(b"OK") {
                    bail!("{text}: {}", String::from_utf8_lossy(&line));
                }
                return Ok(());
            }
        }
    }
}

/// Connect from `src`, STARTTLS, LOGIN, SELECT INBOX, COMPRESS (for `TlsCompress`), with
/// `warm` 100 SEARCH commands, and IDLE; the stream is left waiting for untagged answers.
pub async fn open(
    tls: &TlsConnector,
    addr: SocketAddr,
    src: IpAddr,
    user: &str,
    password: &str,
    mode: IdleMode,
    warm: bool,
) -> Result<Lines<tokio_rustls::client::TlsStream<TcpStream>>> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(src, 0))?;
    let tcp = sock.connect(addr).await?;
    tcp.set_nodelay(true)?;
    let mut plain = Lines::new(tcp);
    let greeting = plain.read_line().await?;
    if !greeting.starts_with(b"* OK") {
        bail!("greeting: {}", String::from_utf8_lossy(&greeting));
    }
    plain.cmd("STARTTLS").await?;
    let name = pki_types::ServerName::try_from("localhost")?;
    let s = tls.connect(name, plain.s).await.context("TLS handshake")?;
    let mut c = Lines::new(s);
    c.cmd(&format!("LOGIN {user} {password}")).await?;
    c.cmd("SELECT INBOX").await?;
    if mode == IdleMode::TlsCompress {
        c.cmd("COMPRESS DEFLATE").await?;
        c.deflate = Some(Deflate::new(6, false, 15));
        c.inflate = Some(Inflate::new(false, 15));
    }
    if warm {
        // A client that has talked for a while has filled the server's 32 KiB inflate window
        // (an untouched window is not resident): 100 pipelined commands, 34 KiB.
        let mut batch = String::new();
        let first = c.tag + 1;
        for _ in 0..100 {
            c.tag += 1;
            batch.push_str(&format!("A{} SEARCH TEXT {}\r\n", c.tag, "x".repeat(330)));
        }
        c.send(batch.as_bytes()).await?;
        for t in first..=c.tag {
            let tag = format!("A{t} ");
            while !c.read_line().await?.starts_with(tag.as_bytes()) {}
        }
    }
    c.tag += 1;
    let tag = c.tag;
    c.send(format!("A{tag} IDLE\r\n").as_bytes()).await?;
    let line = c.read_line().await?;
    if !line.starts_with(b"+") {
        bail!("IDLE refused: {}", String::from_utf8_lossy(&line));
    }
    Ok(c)
}
