//! TLS with rustls: load the configured certificate, or generate a self-signed one into the data
//! directory on first start so that TLS is on by default.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::certs::{CertStore, Source};
use crate::config::{CertSetting, TlsConfig};

/// The server's TLS settings: the acceptor and the certificates it presents (reloadable).
pub struct Tls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub certs: Arc<CertStore>,
    /// The default certificate's file.
    pub cert_path: PathBuf,
}

impl Tls {
    /// SHA-256 fingerprint of the default certificate.
    pub fn fingerprint(&self) -> String {
        self.certs.fingerprints().swap_remove(0)
    }
}

/// Load (or create) the certificates and build the acceptor.
pub fn load(config: &TlsConfig, data_dir: &Path) -> Result<Tls> {
    let sources = match (&config.cert, &config.key) {
        (Some(CertSetting::File(c)), Some(k)) => vec![Source {
            names: Vec::new(),
            cert: c.clone(),
            key: k.clone(),
        }],
        (Some(CertSetting::Entries(entries)), None) => entries
            .iter()
            .map(|e| Source {
                names: e.names.clone(),
                cert: e.cert.clone(),
                key: e.key.clone(),
            })
            .collect(),
        (Some(CertSetting::Entries(_)), Some(_)) => {
            anyhow::bail!("[tls] key belongs in each [[tls.cert]] entry when there are entries")
        }
        (None, None) => {
            let (cert, key) = generate_if_missing(data_dir)?;
            vec![Source {
                names: Vec::new(),
                cert,
                key,
            }]
        }
        _ => anyhow::bail!("[tls] needs both cert and key, or neither"),
    };
    anyhow::ensure!(!sources.is_empty(), "[[tls.cert]] has no entry");
    let cert_path = sources[0].cert.clone();
    let certs = Arc::new(CertStore::load(sources)?);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(certs.clone());
    Ok(Tls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
        certs,
        cert_path,
    })
}

/// How long a generated certificate is valid.
const VALIDITY: time::Duration = time::Duration::days(365);
/// A generated certificate this close to its end is replaced at start.
const RENEW_BEFORE: time::Duration = time::Duration::days(30);

fn generate_if_missing(data_dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let dir = data_dir.join("tls");
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    let now = time::OffsetDateTime::now_utc();
    if cert_path.exists() && key_path.exists() {
        let not_after = read_certs(&cert_path)
            .ok()
            .and_then(|c| c.first().and_then(|c| not_after(c.as_ref())));
        match not_after {
            Some(end) if end - now > RENEW_BEFORE => return Ok((cert_path, key_path)),
            Some(end) => {
                tracing::warn!(%end, "the generated TLS certificate expires: replacing it")
            }
            None => {
                tracing::warn!(path = %cert_path.display(), "unreadable generated TLS certificate: replacing it")
            }
        }
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let (cert_pem, key_pem) = self_signed(now)?;
    write_private(&key_path, key_pem.as_bytes())?;
    std::fs::write(&cert_path, cert_pem)
        .with_context(|| format!("writing {}", cert_path.display()))?;
    tracing::info!(path = %cert_path.display(), "generated a self-signed TLS certificate");
    Ok((cert_path, key_path))
}

/// A self-signed certificate for the loopback names, valid from a day before `now` (clock skew)
/// for [`VALIDITY`] (rcgen's default, 1975 to 4096, is refused by some clients and pins a key
/// forever). Returns the certificate and key in PEM.
fn self_signed(now: time::OffsetDateTime) -> Result<(String, String)> {
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let mut params =
        rcgen::CertificateParams::new(names).context("generating a self-signed certificate")?;
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + VALIDITY;
    let key = rcgen::KeyPair::generate().context("generating a key")?;
    let cert = params
        .self_signed(&key)
        .context("generating a self-signed certificate")?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The notAfter of a DER certificate (RFC 5280 §4.1.2.5). Reading this one field by hand is a
/// few lines; a general X.509 parser would add a dozen crates for it.
fn not_after(der: &[u8]) -> Option<time::OffsetDateTime> {
    let (cert, _) = der_tlv(der, 0x30)?;
    let (mut tbs, _) = der_tlv(cert, 0x30)?;
    if tbs.first() == Some(&0xa0) {
        tbs = der_tlv(tbs, 0xa0)?.1; // version
    }
    tbs = der_tlv(tbs, 0x02)?.1; // serialNumber
    tbs = der_tlv(tbs, 0x30)?.1; // signature
    tbs = der_tlv(tbs, 0x30)?.1; // issuer
    let (validity, _) = der_tlv(tbs, 0x30)?;
    let tag = *validity.first()?;
    let rest = der_tlv(validity, tag)?.1; // notBefore
    let tag = *rest.first()?;
    let (text, _) = der_tlv(rest, tag)?;
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let (year, rest) = match (tag, text.len()) {
        // UTCTime: YYMMDDHHMMSS, years 1950-2049.
        (0x17, 12) => {
            let yy: i32 = text[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        // GeneralizedTime: YYYYMMDDHHMMSS.
        (0x18, 14) => (text[..4].parse().ok()?, &text[4..]),
        _ => return None,
    };
    let num = |i: usize| rest.get(i..i + 2)?.parse::<u8>().ok();
    let date =
        time::Date::from_calendar_date(year, time::Month::try_from(num(0)?).ok()?, num(2)?).ok()?;
    let clock = time::Time::from_hms(num(4)?, num(6)?, num(8)?).ok()?;
    Some(time::PrimitiveDateTime::new(date, clock).assume_utc())
}

/// One DER element with tag `tag` at the start of `input`: (its contents, what follows).
fn der_tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    if *input.first()? != tag {
        return None;
    }
    let first = *input.get(1)?;
    let (len, head) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let len = input
            .get(2..2 + n)?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, 2 + n)
    };
    let end = head.checked_add(len)?;
    Some((input.get(head..end)?, &input[end..]))
}

/// Write a file readable only by its owner (the private key).
fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(data)?;
    Ok(())
}

pub(crate) fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", path.display());
    Ok(certs)
}

pub(crate) fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .with_context(|| format!("parsing {}", path.display()))?
        .with_context(|| format!("no private key in {}", path.display()))
}

/// SHA-256 fingerprint as colon-separated hex, as browsers and `openssl x509 -fingerprint` show it.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let a = load(&TlsConfig::default(), dir.path()).unwrap();
        let b = load(&TlsConfig::default(), dir.path()).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 32 * 3 - 1);
        let mode = std::fs::metadata(dir.path().join("tls/key.pem")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn generated_certificate_is_valid_from_today_for_a_year() {
        let dir = tempfile::tempdir().unwrap();
        load(&TlsConfig::default(), dir.path()).unwrap();
        let certs = read_certs(&dir.path().join("tls/cert.pem")).unwrap();
        let end = not_after(certs[0].as_ref()).unwrap();
        let now = time::OffsetDateTime::now_utc();
        assert!(end > now + time::Duration::days(360), "{end}");
        assert!(end < now + time::Duration::days(370), "{end}");
    }

    #[test]
    fn expiring_generated_certificate_is_replaced_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        std::fs::create_dir_all(&tls).unwrap();
        // Made 350 days ago: 15 days left.
        let then = time::OffsetDateTime::now_utc() - time::Duration::days(350);
        let (cert, key) = self_signed(then).unwrap();
        std::fs::write(tls.join("cert.pem"), &cert).unwrap();
        std::fs::write(tls.join("key.pem"), &key).unwrap();
        let old = read_certs(&tls.join("cert.pem")).unwrap();
        let old_end = not_after(old[0].as_ref()).unwrap();
        assert!((old_end - (then + VALIDITY)).abs() < time::Duration::seconds(2));
        let loaded = load(&TlsConfig::default(), dir.path()).unwrap();
        assert_ne!(loaded.fingerprint(), fingerprint(old[0].as_ref()));
        let new = read_certs(&tls.join("cert.pem")).unwrap();
        assert!(not_after(new[0].as_ref()).unwrap() > old_end + time::Duration::days(300));
    }

    #[test]
    fn configured_certificate_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let then = time::OffsetDateTime::now_utc() - time::Duration::days(400);
        let (cert, key) = self_signed(then).unwrap();
        let c = TlsConfig {
            cert: Some(CertSetting::File(dir.path().join("c.pem"))),
            key: Some(dir.path().join("k.pem")),
        };
        std::fs::write(dir.path().join("c.pem"), &cert).unwrap();
        std::fs::write(dir.path().join("k.pem"), &key).unwrap();
        load(&c, dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("c.pem")).unwrap(),
            cert
        );
        assert!(!dir.path().join("tls").exists());
    }

    #[test]
    fn utc_and_generalized_times() {
        // notAfter 2049-12-31 (UTCTime) and 2050-01-01 (GeneralizedTime) in a minimal shape.
        fn cert(time_tlv: &[u8]) -> Vec<u8> {
            let mut validity = vec![0x17, 13];
            validity.extend_from_slice(b"250101000000Z");
            validity.extend_from_slice(time_tlv);
            let mut tbs = vec![0xa0, 3, 2, 1, 2, 0x02, 1, 7, 0x30, 0, 0x30, 0];
            tbs.push(0x30);
            tbs.push(validity.len() as u8);
            tbs.extend(validity);
            let mut c = vec![0x30, tbs.len() as u8];
            c.extend(tbs);
            let mut out = vec![0x30, c.len() as u8];
            out.extend(c);
            out
        }
        let mut utc = vec![0x17, 13];
        utc.extend_from_slice(b"491231235959Z");
        assert_eq!(not_after(&cert(&utc)).unwrap().year(), 2049);
        let mut gen_time = vec![0x18, 15];
        gen_time.extend_from_slice(b"20500101000000Z");
        assert_eq!(not_after(&cert(&gen_time)).unwrap().year(), 2050);
        assert_eq!(not_after(b"\x30\x05junk"), None);
    }

    #[test]
    fn half_config_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let c = TlsConfig {
            cert: Some(CertSetting::File(dir.path().join("c.pem"))),
            key: None,
        };
        assert!(load(&c, dir.path()).is_err());
    }
}
