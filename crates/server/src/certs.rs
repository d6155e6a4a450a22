//! The certificates the TLS listeners present: one per set of names, chosen by the client's SNI,
//! and reloaded from their files on SIGHUP without touching open sessions (a handshake takes the
//! certificates that are current when it starts; sessions already running keep theirs).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use anyhow::{Context, Result};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Where one certificate comes from, and the names it answers for (`*.example.com` matches one
/// label). A source without names is only a default.
#[derive(Debug, Clone)]
pub struct Source {
    pub names: Vec<String>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The certificates as last loaded.
#[derive(Debug)]
struct Loaded {
    /// Lower-case exact names, and wildcard names without their `*.` prefix.
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    /// For clients without SNI or with an unknown name: the first source.
    default: Arc<CertifiedKey>,
    /// SHA-256 fingerprint of each source's leaf certificate, in source order.
    fingerprints: Vec<String>,
}

/// The server's certificates: a rustls resolver that can be reloaded.
#[derive(Debug)]
pub struct CertStore {
    sources: Vec<Source>,
    loaded: RwLock<Arc<Loaded>>,
}

impl CertStore {
    /// Loads every source; any unreadable file or mismatched key is an error.
    pub fn load(sources: Vec<Source>) -> Result<CertStore> {
        anyhow::ensure!(!sources.is_empty(), "no TLS certificate configured");
        let loaded = load_all(&sources)?;
        Ok(CertStore {
            sources,
            loaded: RwLock::new(Arc::new(loaded)),
        })
    }

    /// Reads every source again. On any error the certificates in use stay as they were.
    pub fn reload(&self) -> Result<()> {
        let loaded = load_all(&self.sources)?;
        *self.loaded.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(loaded);
        Ok(())
    }

    /// Fingerprints (SHA-256, colon-separated hex) of the current certificates, the default first.
    pub fn fingerprints(&self) -> Vec<String> {
        self.current().fingerprints.clone()
    }

    /// The certificate for a server name (as sent in SNI).
    pub fn for_name(&self, name: Option<&str>) -> Arc<CertifiedKey> {
        let loaded = self.current();
        let Some(name) = name else {
            return loaded.default.clone();
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(c) = loaded.exact.get(&name) {
            return c.clone();
        }
        if let Some((_, parent)) = name.split_once('.')
            && let Some(c) = loaded.wildcard.get(parent)
        {
            return c.clone();
        }
        loaded.default.clone()
    }

    fn current(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.for_name(hello.server_name()))
    }
}

fn load_all(sources: &[Source]) -> Result<Loaded> {
    let provider = rustls::crypto::ring::default_provider();
    let mut exact = HashMap::new();
    let mut wildcard = HashMap::new();
    let mut fingerprints = Vec::new();
    let mut default = None;
    for source in sources {
        let certs = super::tls::read_certs(&source.cert)?;
        let key = super::tls::read_key(&source.key)?;
        fingerprints.push(super::tls::fingerprint(certs[0].as_ref()));
        let certified = CertifiedKey::from_der(certs, key, &provider).with_context(|| {
            format!(
                "TLS certificate {} and key {} do not match",
                source.cert.display(),
                source.key.display()
            )
        })?;
        let certified = Arc::new(certified);
        default.get_or_insert_with(|| certified.clone());
        for name in &source.names {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            match name.strip_prefix("*.") {
                Some(parent) => wildcard.entry(parent.to_string()),
                None => exact.entry(name),
            }
            .or_insert_with(|| certified.clone());
        }
    }
    Ok(Loaded {
        exact,
        wildcard,
        default: default.context("no TLS certificate configured")?,
        fingerprints,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `names`, written to `dir/<stem>.{cert,key}.pem`.
    fn source(dir: &std::path::Path, stem: &str, names: &[&str]) -> Source {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![format!("{stem}.test")])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let s = Source {
            names,
            cert: dir.join(format!("{stem}.cert.pem")),
            key: dir.join(format!("{stem}.key.pem")),
        };
        std::fs::write(&s.cert, cert.pem()).unwrap();
        std::fs::write(&s.key, key.serialize_pem()).unwrap();
        s
    }

    fn leaf(c: &CertifiedKey) -> String {
        super::super::tls::fingerprint(c.cert[0].as_ref())
    }

    #[test]
    fn chooses_by_name_then_wildcard_then_default() {
        let dir = tempfile::tempdir().unwrap();
        let a = source(dir.path(), "a", &["mail.example.com", "IMAP.example.com."]);
        let b = source(dir.path(), "b", &["*.example.org"]);
        let store = CertStore::load(vec![a, b]).unwrap();
        let [fa, fb] = <[String; 2]>::try_from(store.fingerprints()).unwrap();
        assert_ne!(fa, fb);
        assert_eq!(leaf(&store.for_name(Some("mail.example.com"))), fa);
        assert_eq!(leaf(&store.for_name(Some("imap.EXAMPLE.com"))), fa);
        assert_eq!(leaf(&store.for_name(Some("imap.example.org"))), fb);
        // A wildcard covers one label only, and not the bare parent.
        assert_eq!(leaf(&store.for_name(Some("a.b.example.org"))), fa);
        assert_eq!(leaf(&store.for_name(Some("example.org"))), fa);
        assert_eq!(leaf(&store.for_name(Some("unknown.test"))), fa);
        assert_eq!(leaf(&store.for_name(None)), fa);
    }

    #[test]
    fn reload_takes_new_files_and_keeps_the_old_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = source(dir.path(), "a", &["a.test"]);
        let store = CertStore::load(vec![a.clone()]).unwrap();
        let before = store.fingerprints();
        // New files in place: the next handshake gets them.
        source(dir.path(), "a", &["a.test"]);
        store.reload().unwrap();
        let after = store.fingerprints();
        assert_ne!(before, after);
        assert_eq!(leaf(&store.for_name(Some("a.test"))), after[0]);
        // A broken key: the reload fails and the certificate in use stays.
        std::fs::write(&a.key, "not a key").unwrap();
        assert!(store.reload().is_err());
        assert_eq!(store.fingerprints(), after);
        // A key of another certificate: refused too.
        let other = source(dir.path(), "other", &[]);
        std::fs::copy(&other.key, &a.key).unwrap();
        let err = store.reload().unwrap_err().to_string();
        assert!(err.contains("do not match"), "{err}");
        assert_eq!(store.fingerprints(), after);
    }
}
