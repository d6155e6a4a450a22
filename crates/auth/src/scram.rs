//! SCRAM-SHA-256 and SCRAM-SHA-256-PLUS, server side (RFC 5802, RFC 7677), with the
//! `tls-exporter` channel binding (RFC 9266) and SASLprep (RFC 4013); SCRAM-SHA-1(-PLUS)
//! (RFC 5802's own) only where a setting turns it on, for old clients.
//!
//! Why our own state machine: of the server-side SCRAM crates on crates.io, `scram` has no
//! channel binding and no release since 2021, and `scram-rs` calls its server channel binding
//! untested, has no authzid and describes itself as not open source; the others are clients
//! or tied to one protocol (PostgreSQL). The cryptography comes from RustCrypto (`hmac`,
//! `pbkdf2`, `sha2`) and SASLprep from `stringprep`; what is here is message parsing and the
//! checks of RFC 5802 §5.
//!
//! The exchange (IMAP AUTHENTICATE carries each message base64-encoded):
//! 1. client-first `n,,n=user,r=cnonce` → [`ServerFirst::start`] parses it and answers
//!    `r=cnonce+snonce,s=salt,i=4096`;
//! 2. client-final `c=biws,r=...,p=proof` → [`ServerFirst::finish`] checks the channel
//!    binding, the nonce and the proof, and gives `v=signature` or an `e=` error.
//!
//! Accounts keep [`Secrets`] (StoredKey, ServerKey, salt, iterations), never the password.
//! An unknown user gets [`Secrets::fake`]: a salt derived from a server secret and the name,
//! stable across attempts, so the first answer does not tell whether the account exists.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The mechanism names.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
pub const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";
pub const SCRAM_SHA_1: &str = "SCRAM-SHA-1";
pub const SCRAM_SHA_1_PLUS: &str = "SCRAM-SHA-1-PLUS";
/// RFC 7677 §4: at least 4096 (Dovecot's default too).
pub const DEFAULT_ITERATIONS: u32 = 4096;
/// More would let a client-chosen name make the server spend seconds; no real store has it.
pub const MAX_ITERATIONS: u32 = 1_000_000;
/// RFC 9266: the label of the `tls-exporter` channel binding (32 bytes, empty context).
pub const TLS_EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";
/// Client nonce and user name beyond these are refused (a message is one short line).
const MAX_FIELD: usize = 1024;

/// The hash function of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// SCRAM-SHA-256 (RFC 7677): always offered.
    Sha256,
    /// SCRAM-SHA-1 (RFC 5802): only where `[auth] scram_sha1` asks for it.
    Sha1,
}

impl Hash {
    /// The output length in bytes (that of every key and proof).
    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha1 => 20,
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
            let mut m = <M as Mac>::new_from_slice(key).expect("HMAC takes any key length");
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        match self {
            Hash::Sha256 => run::<Hmac<Sha256>>(key, data),
            Hash::Sha1 => run::<Hmac<Sha1>>(key, data),
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha1 => Sha1::digest(data).to_vec(),
        }
    }

    /// Hi() of RFC 5802 §2.2: PBKDF2 with this hash's HMAC.
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.output_len()];
        match self {
            Hash::Sha256 => pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out),
            Hash::Sha1 => pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out),
        }
        out
    }
}

/// A SCRAM mechanism: its hash, and whether it is the `-PLUS` (channel binding) variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mechanism {
    pub hash: Hash,
    pub plus: bool,
}

impl Mechanism {
    /// Its SASL name.
    pub fn name(self) -> &'static str {
        match (self.hash, self.plus) {
            (Hash::Sha256, false) => SCRAM_SHA_256,
            (Hash::Sha256, true) => SCRAM_SHA_256_PLUS,
            (Hash::Sha1, false) => SCRAM_SHA_1,
            (Hash::Sha1, true) => SCRAM_SHA_1_PLUS,
        }
    }
}

/// The SCRAM mechanisms to advertise, strongest first: the -PLUS ones where the connection
/// `can_bind`, the SHA-1 ones where `sha1` is allowed.
pub fn advertised(can_bind: bool, sha1: bool) -> Vec<&'static str> {
    let mut out = Vec::with_capacity(4);
    if can_bind {
        out.push(SCRAM_SHA_256_PLUS);
    }
    out.push(SCRAM_SHA_256);
    if sha1 {
        if can_bind {
            out.push(SCRAM_SHA_1_PLUS);
        }
        out.push(SCRAM_SHA_1);
    }
    out
}

/// What a server keeps to check SCRAM logins of one account with one hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secrets {
    pub hash: Hash,
    pub iterations: u32,
    pub salt: Vec<u8>,
    /// H(ClientKey), [`Hash::output_len`] bytes.
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

/// SASLprep (RFC 4013) of a password or user name as SCRAM wants it (RFC 5802 §2.2: stored
/// strings, so unassigned code points are refused). `None`: not UTF-8 or prohibited.
pub fn saslprep(s: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(s).ok()?;
    stringprep::saslprep(s).ok().map(|c| c.into_owned())
}

impl Secrets {
    /// The SCRAM-SHA-256 keys of `password`: [`Secrets::derive_with`].
    pub fn derive(password: &[u8], salt: &[u8], iterations: u32) -> Option<Secrets> {
        Secrets::derive_with(Hash::Sha256, password, salt, iterations)
    }

    /// The keys of `password` (SASLprep'ed first) with this hash, salt and iteration count.
    /// `None` if the password is not UTF-8 or SASLprep refuses it: such a password cannot use
    /// SCRAM.
    pub fn derive_with(
        hash: Hash,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Option<Secrets> {
        let prepared = saslprep(password)?;
        let salted = hash.salted_password(prepared.as_bytes(), salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        Some(Secrets {
            hash,
            iterations,
            salt: salt.to_vec(),
            stored_key: hash.digest(&client_key),
            server_key: hash.hmac(&salted, b"Server Key"),
        })
    }

    /// SCRAM-SHA-256 keys with a fresh salt: [`Secrets::generate_with`].
    pub fn generate(password: &[u8], iterations: u32) -> Option<Secrets> {
        Secrets::generate_with(Hash::Sha256, password, iterations)
    }

    /// [`Secrets::derive_with`] with a fresh random 16-byte salt.
    pub fn generate_with(hash: Hash, password: &[u8], iterations: u32) -> Option<Secrets> {
        let mut salt = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut salt);
        Secrets::derive_with(hash, password, &salt, iterations)
    }

    /// Stand-in SCRAM-SHA-256 secrets: [`Secrets::fake_with`].
    pub fn fake(server_secret: &[u8], user: &str, iterations: u32) -> Secrets {
        Secrets::fake_with(Hash::Sha256, server_secret, user, iterations)
    }

    /// Stand-in secrets for a user that does not exist: the same salt every time for the same
    /// name (derived from `server_secret`, the same for both hashes, as a real account's
    /// could be), keys no proof can match.
    pub fn fake_with(hash: Hash, server_secret: &[u8], user: &str, iterations: u32) -> Secrets {
        let mut data = b"mailkeep scram salt\0".to_vec();
        data.extend_from_slice(user.as_bytes());
        let salt = Hash::Sha256.hmac(server_secret, &data)[..16].to_vec();
        data[..19].copy_from_slice(b"mailkeep scram keys");
        let k = Hash::Sha256.hmac(server_secret, &data)[..hash.output_len()].to_vec();
        Secrets {
            hash,
            iterations,
            salt,
            stored_key: k.clone(),
            server_key: k,
        }
    }

    /// Dovecot's stored form, without the `{SCRAM-SHA-256}` prefix:
    /// `iterations,salt_b64,storedkey_b64,serverkey_b64`.
    pub fn to_dovecot(&self) -> String {
        format!(
            "{},{},{},{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(&self.stored_key),
            B64.encode(&self.server_key)
        )
    }

    /// Parses [`Secrets::to_dovecot`]'s form of SCRAM-SHA-256 keys. `None` if malformed.
    pub fn from_dovecot(s: &str) -> Option<Secrets> {
        let mut it = s.trim().split(',');
        let iterations: u32 = it.next()?.parse().ok()?;
        let salt = B64.decode(it.next()?).ok()?;
        let stored_key = B64.decode(it.next()?).ok()?;
        let server_key = B64.decode(it.next()?).ok()?;
        if it.next().is_some()
            || !(1..=MAX_ITERATIONS).contains(&iterations)
            || salt.is_empty()
            || stored_key.len() != 32
            || server_key.len() != 32
        {
            return None;
        }
        Some(Secrets {
            hash: Hash::Sha256,
            iterations,
            salt,
            stored_key,
            server_key,
        })
    }

    /// Does `password` match these keys? (The `{SCRAM-SHA-256}` scheme used for PLAIN.)
    pub fn matches_password(&self, password: &[u8]) -> bool {
        Secrets::derive_with(self.hash, password, &self.salt, self.iterations)
            .is_some_and(|d| same(&d.stored_key, &self.stored_key))
    }
}

/// What to store after a successful password login (see [`upgrade`]).
#[derive(Debug, Clone, Default)]
pub struct Upgrade {
    /// An argon2id hash replacing an imported one.
    pub new_hash: Option<String>,
    /// SCRAM-SHA-256 keys for an account that has none (or whose hash was just replaced,
    /// which drops them).
    pub keys: Option<Secrets>,
    /// SCRAM-SHA-1 keys, likewise, where they are wanted.
    pub sha1_keys: Option<Secrets>,
}

/// After a successful PLAIN/LOGIN/USER-PASS login with `password`: rehash an imported hash
/// (not argon2id) and derive SCRAM-SHA-256 keys where `has_keys` is false, SCRAM-SHA-1 ones
/// where `want_sha1` (the setting is on and the account has none). The argon2id hash is made
/// on the password-checking threads (not tokio's blocking pool, whose threads would each keep
/// argon2's 19 MiB, see `verify`), PBKDF2 on a blocking thread. A password that is not UTF-8
/// keeps its hash; one SASLprep refuses gets no keys (it cannot be used with SCRAM).
pub async fn upgrade(
    stored_hash: &str,
    has_keys: bool,
    want_sha1: bool,
    password: &[u8],
    iterations: u32,
) -> Upgrade {
    let utf8 = std::str::from_utf8(password).ok();
    let rehash = !crate::hashes::is_current(stored_hash) && utf8.is_some();
    if !rehash && has_keys && !want_sha1 {
        return Upgrade::default();
    }
    let new_hash = match utf8 {
        Some(pw) if rehash => crate::verify::hash_on_pool(pw).await,
        _ => None,
    };
    if rehash && new_hash.is_none() {
        // The hashing queue is full: the old hash stays, and the keys come with the rehash at
        // a later login (stored now, the rehash would drop them again).
        return Upgrade::default();
    }
    let password = password.to_vec();
    // A rehash drops the stored keys: they follow (the caller counts them missing then).
    let (sha256, sha1) = (rehash || !has_keys, want_sha1);
    let derive = move || {
        let iterations = iterations.clamp(1, MAX_ITERATIONS);
        let make = |wanted: bool, hash| {
            wanted
                .then(|| Secrets::generate_with(hash, &password, iterations))
                .flatten()
        };
        (make(sha256, Hash::Sha256), make(sha1, Hash::Sha1))
    };
    let (keys, sha1_keys) = tokio::task::spawn_blocking(derive)
        .await
        .unwrap_or((None, None));
    Upgrade {
        new_hash,
        keys,
        sha1_keys,
    }
}

/// Constant-time equality of two keys (of the same hash: different lengths never match).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the transport offers for channel binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding<'a> {
    /// No TLS, or TLS where `tls-exporter` is not safe (TLS 1.2): `-PLUS` is not offered.
    Unavailable,
    /// The 32 bytes of the `tls-exporter` binding of this TLS connection (RFC 9266).
    TlsExporter(&'a [u8]),
}

impl<'a> Binding<'a> {
    /// The binding of a connection with this `tls-exporter` data (`None`: cannot bind).
    pub fn of(tls_exporter: Option<&'a [u8]>) -> Binding<'a> {
        match tls_exporter {
            Some(cb) => Binding::TlsExporter(cb),
            None => Binding::Unavailable,
        }
    }
}

/// The mechanism `name` names if it is one [`advertised`] gives for `can_bind` and `sha1`.
pub fn mechanism(name: &str, can_bind: bool, sha1: bool) -> Option<Mechanism> {
    let m = [Hash::Sha256, Hash::Sha1]
        .into_iter()
        .flat_map(|hash| [false, true].map(|plus| Mechanism { hash, plus }))
        .find(|m| m.name().eq_ignore_ascii_case(name))?;
    ((can_bind || !m.plus) && (sha1 || m.hash == Hash::Sha256)).then_some(m)
}

/// Why an exchange fails. [`ScramError::server_error`] is the RFC 5802 `e=` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramError {
    /// Not a SCRAM message (bad syntax, empty name, bad escape...).
    InvalidEncoding,
    InvalidUsernameEncoding,
    /// An authorization identity other than the user (no master users).
    AuthzidMismatch,
    /// `m=` or other mandatory extensions.
    ExtensionsNotSupported,
    /// A `p=` type other than `tls-exporter`.
    UnsupportedChannelBindingType,
    /// `p=` without `-PLUS`, or `-PLUS` on a connection that cannot bind.
    ChannelBindingNotSupported,
    /// `-PLUS` chosen but the client did not ask to bind (`n` or `y`).
    ChannelBindingRequired,
    /// `y`: the client could bind but thought we could not; we can (a downgrade).
    ServerDoesSupportChannelBinding,
    ChannelBindingsDontMatch,
    /// The client-final nonce is not the combined one.
    NonceMismatch,
    InvalidProof,
}

impl ScramError {
    /// The RFC 5802 §7 `server-error-value`.
    pub fn server_error(self) -> &'static str {
        match self {
            ScramError::InvalidEncoding => "invalid-encoding",
            ScramError::InvalidUsernameEncoding => "invalid-username-encoding",
            ScramError::AuthzidMismatch => "other-error",
            ScramError::ExtensionsNotSupported => "extensions-not-supported",
            ScramError::UnsupportedChannelBindingType => "unsupported-channel-binding-type",
            ScramError::ChannelBindingNotSupported => "channel-binding-not-supported",
            ScramError::ChannelBindingRequired => "channel-binding-not-supported",
            ScramError::ServerDoesSupportChannelBinding => "server-does-support-channel-binding",
            ScramError::ChannelBindingsDontMatch => "channel-bindings-dont-match",
            ScramError::NonceMismatch => "other-error",
            ScramError::InvalidProof => "invalid-proof",
        }
    }

    /// The `e=...` server-final message.
    pub fn message(self) -> String {
        format!("e={}", self.server_error())
    }
}

/// The parts of a client-first message the server needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// The user name, unescaped and SASLprep'ed.
    pub user: String,
    /// The GS2 header exactly as sent (`n,,`, `y,,`, `p=tls-exporter,,` ...), which the
    /// client-final `c=` must repeat.
    gs2_header: String,
    /// The client asked to bind (`p=`).
    binds: bool,
    nonce: String,
    /// `n=...,r=...[,ext]`: part of the AuthMessage.
    bare: String,
}

/// `saslname` unescaping: `=2C` is `,`, `=3D` is `=`, any other `=` is an error.
fn unescape_name(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3)?;
        out.push(match esc {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

fn printable_nonce(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_FIELD
        && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Parses a client-first message for mechanism `plus` (SCRAM-SHA-256-PLUS) or not, on a
/// connection offering `binding`.
pub fn parse_client_first(
    msg: &[u8],
    plus: bool,
    binding: Binding<'_>,
) -> Result<ClientFirst, ScramError> {
    let msg = std::str::from_utf8(msg).map_err(|_| ScramError::InvalidEncoding)?;
    // gs2-header = gs2-cbind-flag "," [ authzid ] ","
    let (flag, rest) = msg.split_once(',').ok_or(ScramError::InvalidEncoding)?;
    let (authzid, bare) = rest.split_once(',').ok_or(ScramError::InvalidEncoding)?;
    let gs2_header = msg[..msg.len() - bare.len()].to_string();
    let binds = match flag {
        "n" => false,
        "y" => false,
        f if f.starts_with("p=") => true,
        _ => return Err(ScramError::InvalidEncoding),
    };
    if let Some(kind) = flag.strip_prefix("p=") {
        if !plus {
            return Err(ScramError::ChannelBindingNotSupported);
        }
        if kind != "tls-exporter" {
            return Err(ScramError::UnsupportedChannelBindingType);
        }
        if binding == Binding::Unavailable {
            return Err(ScramError::ChannelBindingNotSupported);
        }
    } else if plus {
        return Err(ScramError::ChannelBindingRequired);
    } else if flag == "y" && binding != Binding::Unavailable {
        // RFC 5802 §6: the client supports binding and believes we do not, but we advertised
        // -PLUS on this connection: someone removed it on the way.
        return Err(ScramError::ServerDoesSupportChannelBinding);
    }
    // bare = [reserved-mext ","] username "," nonce ["," extensions]
    if bare.starts_with("m=") {
        return Err(ScramError::ExtensionsNotSupported);
    }
    let mut fields = bare.split(',');
    let name = fields
        .next()
        .and_then(|f| f.strip_prefix("n="))
        .ok_or(ScramError::InvalidEncoding)?;
    let nonce = fields
        .next()
        .and_then(|f| f.strip_prefix("r="))
        .ok_or(ScramError::InvalidEncoding)?;
    if !printable_nonce(nonce) || name.is_empty() || name.len() > MAX_FIELD {
        return Err(ScramError::InvalidEncoding);
    }
    let user = unescape_name(name)
        .and_then(|u| saslprep(u.as_bytes()))
        .filter(|u| !u.is_empty())
        .ok_or(ScramError::InvalidUsernameEncoding)?;
    if let Some(z) = authzid.strip_prefix("a=") {
        let z = unescape_name(z).ok_or(ScramError::InvalidUsernameEncoding)?;
        if z != user {
            return Err(ScramError::AuthzidMismatch);
        }
    } else if !authzid.is_empty() {
        return Err(ScramError::InvalidEncoding);
    }
    Ok(ClientFirst {
        user,
        gs2_header,
        binds,
        nonce: nonce.to_string(),
        bare: bare.to_string(),
    })
}

/// The server's state after its first message: what the client-final must agree with.
#[derive(Debug, Clone)]
pub struct ServerFirst {
    client: ClientFirst,
    /// `r=...,s=...,i=...` as sent.
    message: String,
    nonce: String,
    secrets: Secrets,
}

/// The outcome of the client-final message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The server-final message `v=...` to send.
    pub server_final: String,
}

impl ServerFirst {
    /// The server-first message for `client` with this account's (or fake) secrets.
    pub fn start(client: ClientFirst, secrets: Secrets) -> ServerFirst {
        let mut snonce = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut snonce);
        ServerFirst::with_nonce(client, secrets, &B64.encode(snonce))
    }

    fn with_nonce(client: ClientFirst, secrets: Secrets, snonce: &str) -> ServerFirst {
        let nonce = format!("{}{}", client.nonce, snonce);
        let message = format!(
            "r={nonce},s={},i={}",
            B64.encode(&secrets.salt),
            secrets.iterations
        );
        ServerFirst {
            client,
            message,
            nonce,
            secrets,
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn user(&self) -> &str {
        &self.client.user
    }

    /// Checks a client-final message. `binding` is the connection's (the same as at start).
    pub fn finish(&self, msg: &[u8], binding: Binding<'_>) -> Result<Verified, ScramError> {
        let msg = std::str::from_utf8(msg).map_err(|_| ScramError::InvalidEncoding)?;
        // client-final-message-without-proof "," proof; the proof is the last attribute.
        let (without_proof, proof) = msg.rsplit_once(",p=").ok_or(ScramError::InvalidEncoding)?;
        let mut fields = without_proof.split(',');
        let cbind = fields
            .next()
            .and_then(|f| f.strip_prefix("c="))
            .ok_or(ScramError::InvalidEncoding)?;
        let nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .ok_or(ScramError::InvalidEncoding)?;
        let cbind = B64.decode(cbind).map_err(|_| ScramError::InvalidEncoding)?;
        let hash = self.secrets.hash;
        let proof = B64
            .decode(proof)
            .ok()
            .filter(|p| p.len() == hash.output_len())
            .ok_or(ScramError::InvalidEncoding)?;
        let mut expected = self.client.gs2_header.as_bytes().to_vec();
        if self.client.binds {
            match binding {
                Binding::TlsExporter(data) => expected.extend_from_slice(data),
                Binding::Unavailable => return Err(ScramError::ChannelBindingNotSupported),
            }
        }
        if cbind != expected {
            return Err(ScramError::ChannelBindingsDontMatch);
        }
        if nonce != self.nonce {
            return Err(ScramError::NonceMismatch);
        }
        let auth_message = format!("{},{},{}", self.client.bare, self.message, without_proof);
        let signature = hash.hmac(&self.secrets.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(signature).map(|(p, s)| p ^ s).collect();
        if !same(&hash.digest(&client_key), &self.secrets.stored_key) {
            return Err(ScramError::InvalidProof);
        }
        let server_signature = hash.hmac(&self.secrets.server_key, auth_message.as_bytes());
        Ok(Verified {
            server_final: format!("v={}", B64.encode(server_signature)),
        })
    }
}

#[cfg(test)]
mod tests;
