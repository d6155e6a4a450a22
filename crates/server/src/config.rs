//! The one TOML configuration file. Every key has a default, so an empty file (or none) runs a
//! server on loopback high ports with data in `./mailkeep-data`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The configuration format's version (top-level `version = 1`; optional). A file written
    /// for a newer format is refused rather than half understood.
    pub version: u32,
    /// Where the index, message bodies, the generated certificate and spool files live.
    pub data_dir: PathBuf,
    /// Plaintext IMAP listeners (STARTTLS offered).
    pub imap: Listeners,
    /// Implicit-TLS IMAP listeners (RFC 8314).
    pub imaps: Listeners,
    /// Plaintext POP3 listeners (STLS offered) and POP3 behaviour; no listener by default.
    pub pop3: Pop3Config,
    /// Implicit-TLS POP3 listeners (RFC 8314); none by default.
    pub pop3s: Listeners,
    pub tls: TlsConfig,
    pub auth: AuthConfig,
    pub limits: Limits,
    pub log: LogConfig,
    /// LMTP delivery (RFC 2033): off unless `listen` is set.
    pub lmtp: LmtpConfig,
    /// Default quota of accounts without their own (`mailkeep quota set`), and who may SETQUOTA.
    pub quota: QuotaConfig,
    /// `[store]`: how long the store keeps what it keeps.
    pub store: StoreConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: CONFIG_VERSION,
            data_dir: PathBuf::from("mailkeep-data"),
            imap: Listeners {
                listen: vec!["127.0.0.1:1143".parse().expect("literal address")],
            },
            imaps: Listeners {
                listen: vec!["127.0.0.1:1993".parse().expect("literal address")],
            },
            pop3: Pop3Config::default(),
            pop3s: Listeners::default(),
            tls: TlsConfig::default(),
            auth: AuthConfig::default(),
            limits: Limits::default(),
            log: LogConfig::default(),
            lmtp: LmtpConfig::default(),
            quota: QuotaConfig::default(),
            store: StoreConfig::default(),
        }
    }
}

/// `[quota]`: limits for accounts without their own setting (RFC 9208 QUOTA).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaConfig {
    /// Storage per account: the sum of its messages' sizes, `"2G"`, `"500M"`, `"10K"` or bytes
    /// (a string or a number); `"0"` is no limit.
    #[serde(deserialize_with = "size")]
    pub storage: u64,
    /// Messages per account; 0 is no limit.
    pub messages: u64,
    /// The account that may change quotas over IMAP (SETQUOTA); empty: nobody.
    pub admin: String,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            storage: 0,
            messages: 0,
            admin: "admin".into(),
        }
    }
}

impl QuotaConfig {
    /// The store's default limits.
    pub fn limits(&self) -> mailkeep_store::QuotaLimits {
        mailkeep_store::QuotaLimits::from_zero_unlimited(self.storage, self.messages)
    }
}

/// A size as `mailkeep_store::quota::parse_size` reads it, or a plain number of bytes.
fn size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Bytes(n) => Ok(n),
        Size::Text(t) => mailkeep_store::quota::parse_size(&t).map_err(serde::de::Error::custom),
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listeners {
    pub listen: Vec<SocketAddr>,
}

/// `[pop3]`: listeners, and what DELE does (for `[pop3s]` too).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pop3Config {
    pub listen: Vec<SocketAddr>,
    /// DELE expunges at QUIT; `false` keeps the messages and marks them `\Seen` (for people
    /// who read the same account by POP3 and IMAP).
    pub delete: bool,
}

impl Default for Pop3Config {
    fn default() -> Self {
        Pop3Config {
            listen: Vec::new(),
            delete: true,
        }
    }
}

/// A certificate chain and key in PEM files. When both are unset, a self-signed certificate is
/// generated into `data_dir/tls/` on first start. Several certificates chosen by the client's
/// SNI: `[[tls.cert]]` entries with `names`, `cert` and `key` (the first is the default).
/// The files are read again on SIGHUP.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub cert: Option<CertSetting>,
    pub key: Option<PathBuf>,
}

/// `[tls] cert = "file"` (with `key`), or a list of `[[tls.cert]]` entries.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CertSetting {
    File(PathBuf),
    Entries(Vec<CertEntry>),
}

/// One `[[tls.cert]]` entry: the names it answers for in SNI (`*.example.com` for one label).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertEntry {
    #[serde(default)]
    pub names: Vec<String>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Allow LOGIN/AUTHENTICATE without TLS from loopback addresses (a webmail or a test on the
    /// same machine). Passwords never cross a network in clear text either way.
    pub plaintext_on_loopback: bool,
    /// Failed logins on one connection before it is closed (slows down password guessing).
    pub max_failures: u32,
    /// Milliseconds every failed login waits before its answer.
    pub failure_delay_ms: u64,
    /// Failed logins from one source (IPv4 address, IPv6 /64), all connections and accounts
    /// together, before it is blocked (0: no limit).
    pub throttle_ip_failures: u32,
    /// Failed logins against one account, from any untrusted source, before it is blocked for
    /// all but the sources it logged in from lately (0: no limit).
    pub throttle_account_failures: u32,
    /// Milliseconds added to a failed login's answer per failure already counted for its source
    /// or account, up to `throttle_max_delay_ms`.
    pub throttle_delay_ms: u64,
    /// Cap of that growing delay.
    pub throttle_max_delay_ms: u64,
    /// Seconds of the first block; each attempt while blocked or after doubles it.
    pub block_secs: u64,
    /// Longest block; failures are forgotten after twice this without any.
    pub max_block_secs: u64,
    /// Networks (CIDR) never throttled; `[]` throttles loopback too.
    pub trusted_networks: Vec<String>,
    /// Password checks one source may have waiting for the hashing threads; more fail at once
    /// (answered like a wrong password).
    pub hash_queue_per_ip: usize,
    /// PBKDF2 iterations of the SCRAM-SHA-256 keys derived when a password is set or used
    /// (RFC 7677's minimum, as Dovecot; at most 1,000,000).
    pub scram_iterations: u32,
    /// Offer SCRAM-SHA-1 and SCRAM-SHA-1-PLUS too (RFC 5802), for old clients that know no
    /// SCRAM-SHA-256; their keys are kept from the next password set or login. Off: SHA-1 is
    /// weaker and a second set of keys is one more thing to steal.
    pub scram_sha1: bool,
    /// Shortest password `mailkeep user add`/`passwd` accept (common passwords are refused
    /// whatever their length); imported hashes are not checked.
    pub min_password_length: usize,
    /// `[auth.oauth]`: OAUTHBEARER and XOAUTH2 with JWT access tokens of one issuer; unset: off.
    pub oauth: Option<OAuthConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        let t = mailkeep_auth::ThrottleConfig::default();
        AuthConfig {
            plaintext_on_loopback: true,
            max_failures: 3,
            failure_delay_ms: 1000,
            throttle_ip_failures: t.ip_failures,
            throttle_account_failures: t.account_failures,
            throttle_delay_ms: t.delay_step.as_millis() as u64,
            throttle_max_delay_ms: t.max_delay.as_millis() as u64,
            block_secs: t.block.as_secs(),
            max_block_secs: t.max_block.as_secs(),
            trusted_networks: vec!["127.0.0.0/8".into(), "::1/128".into()],
            hash_queue_per_ip: t.hash_queue_per_source,
            scram_iterations: mailkeep_auth::scram::DEFAULT_ITERATIONS,
            scram_sha1: false,
            min_password_length: 10,
            oauth: None,
        }
    }
}

impl AuthConfig {
    /// The throttle's settings; an error names a bad `trusted_networks` entry.
    pub fn throttle(&self) -> Result<mailkeep_auth::ThrottleConfig, String> {
        let trusted = self
            .trusted_networks
            .iter()
            .map(|n| n.parse())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("auth.trusted_networks: {e}"))?;
        Ok(mailkeep_auth::ThrottleConfig {
            ip_failures: self.throttle_ip_failures,
            account_failures: self.throttle_account_failures,
            delay_step: Duration::from_millis(self.throttle_delay_ms),
            max_delay: Duration::from_millis(self.throttle_max_delay_ms),
            block: Duration::from_secs(self.block_secs),
            max_block: Duration::from_secs(self.max_block_secs),
            trusted,
            hash_queue_per_source: self.hash_queue_per_ip.max(1),
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Longest command line (without literals). 64 KiB holds a UID set of thousands of ranges;
    /// Dovecot's own limit is the same order.
    pub max_line_length: usize,
    /// Largest message (and literal): 50 MiB, above the common 25-35 MiB MTA limits once
    /// base64 overhead is counted. Larger ones get `NO [TOOBIG]`.
    pub max_message_size: u64,
    /// Connections in total: bounds memory and file descriptors (lowered at start to what the
    /// open-file limit leaves, see `Server::bind`).
    pub max_connections: usize,
    /// Connections from one IP address: one host cannot take every slot. A few hundred covers
    /// a NAT of busy clients; a load test from one address must raise it.
    pub max_connections_per_ip: usize,
    /// IMAP sessions one account may have at once (all addresses); a login beyond gets
    /// `NO [LIMIT]`. 0: no limit.
    pub max_connections_per_user: usize,
    /// IMAP sessions one account may have from one IP address (Dovecot's
    /// `mail_max_userip_connections`, 10 there). 0: no limit.
    pub max_connections_per_user_ip: usize,
    /// Seconds from connect (TLS handshake included) to a successful login; commands such as
    /// NOOP do not extend it (RFC 9051 §5.4 allows closing idle connections).
    pub unauthenticated_timeout_secs: u64,
    /// Seconds of inactivity before an authenticated connection is logged out: at least 30
    /// minutes by RFC 9051 §5.4 (IDLE clients re-issue every 29 minutes).
    pub idle_timeout_secs: u64,
    /// APPEND message literals larger than this are written to a spool file instead of being
    /// held in memory (only after login; no other literal is ever spooled).
    pub spool_threshold: u64,
    /// Mailboxes one account may have (CREATE, RENAME beyond it get `NO [LIMIT]`).
    pub max_mailboxes: usize,
    /// Subscriptions one account may have (SUBSCRIBE beyond it gets `NO [LIMIT]`).
    pub max_subscriptions: usize,
    /// Live `SEARCH`/`SORT RETURN (UPDATE)` contexts (RFC 5267) per session; more get `* NO [NOUPDATE]`.
    pub max_search_contexts: usize,
    /// Bytes one command may hold in memory after login, its lines and literals together
    /// (APPEND's spooled message literals excepted). Beyond: `NO [LIMIT]` or BYE.
    pub max_command_size: u64,
    /// Bytes one command may have before login, lines and literals together (LOGIN and
    /// AUTHENTICATE arguments, SASL responses). Beyond: `BAD`/`NO [LIMIT]` or BYE.
    pub max_prelogin_command_size: u64,
    /// Seconds a logged-in client may go without accepting any of our output before it is
    /// disconnected (before login the unauthenticated deadline applies to writes too).
    pub write_timeout_secs: u64,
    /// Bytes of all the messages of one APPEND (a MULTIAPPEND's together): bounds the spool
    /// disk one command can fill. Beyond: `NO [LIMIT]` (or BYE after a LITERAL+).
    pub max_append_command_size: u64,
    /// Offer COMPRESS=DEFLATE (RFC 4978) after login; an idle compressed connection costs
    /// 11-46 KiB more (mostly the 32 KiB inflate window the client may use, once it is used).
    pub compress_deflate: bool,
    /// Seconds an authenticated client has to send a whole command once its first byte came
    /// (slowloris): a client trickling a byte at a time is cut (`BYE [LIMIT]`, logged).
    pub command_timeout_secs: u64,
    /// Each literal of a command adds its size divided by this many bytes per second to the
    /// command's deadline (the slowest upload a client may use; the idle timeout still bounds all).
    pub literal_min_rate: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_length: 64 * 1024,
            max_message_size: 50 * 1024 * 1024,
            max_connections: 50_000,
            max_connections_per_ip: 256,
            max_connections_per_user: 100,
            max_connections_per_user_ip: 20,
            unauthenticated_timeout_secs: 60,
            idle_timeout_secs: 30 * 60,
            spool_threshold: 256 * 1024,
            max_mailboxes: 10_000,
            max_subscriptions: 10_000,
            max_search_contexts: 10,
            max_command_size: 1024 * 1024,
            max_prelogin_command_size: 8 * 1024,
            write_timeout_secs: 120,
            max_append_command_size: 512 * 1024 * 1024,
            compress_deflate: true,
            command_timeout_secs: 60,
            literal_min_rate: 4096,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter such as `info` or `mailkeep_server=debug,info`.
    pub level: String,
    /// Also append the audit lines (logins, failures, blocks, admin changes by the CLI) to this
    /// file; unset: they are only in the normal log (target `mailkeep::audit`/`mailkeep_auth`).
    pub audit_file: Option<PathBuf>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "text".into(),
            level: "info".into(),
            audit_file: None,
        }
    }
}

/// `[auth.oauth]`: the issuer whose JWT access tokens log in (OAUTHBEARER, RFC 7628; XOAUTH2).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// The issuer's public keys, a JWKS document (`{"keys": [...]}`), read at start.
    pub jwks_file: PathBuf,
    /// The token's `iss` must be this.
    pub issuer: String,
    /// The token's `aud` must hold this.
    pub audience: String,
    /// The claim naming the account: its name, or name@domain of a local domain.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
}

fn default_username_claim() -> String {
    "email".into()
}

/// `[lmtp]`: local delivery from an MTA (Postfix `lmtp:unix:…`, Exim `lmtp` transport).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LmtpConfig {
    /// Listeners: `host:port`, or a path (an entry with a `/`) for a Unix socket made with
    /// mode 0660 and removed at shutdown. Empty (the default): no LMTP.
    pub listen: Vec<String>,
    /// What splits `user+detail@domain` (delivered to the folder `detail` if it exists, any
    /// case, else INBOX). Empty: no detail addresses.
    pub detail_separator: String,
    /// Answer over-quota recipients `452 4.2.2` (the MTA retries) instead of `552 5.2.2`.
    pub quota_temporary: bool,
    /// Seconds an LMTP client may stay silent before `421` (RFC 5321 §4.5.3.2: at least 5 min).
    pub timeout_secs: u64,
}

impl Default for LmtpConfig {
    fn default() -> Self {
        LmtpConfig {
            listen: Vec::new(),
            detail_separator: "+".into(),
            quota_temporary: false,
            timeout_secs: 300,
        }
    }
}

/// `[store]`: retention of what the store keeps beside the mail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Days an expunge's tombstone is kept, so QRESYNC/CONDSTORE clients learn exactly what
    /// vanished (RFC 7162); a client last synced before that gets every missing UID instead.
    /// 0 prunes at every expunge (tests).
    pub tombstone_days: u32,
    /// Where mail is kept: "sqlite" (the embedded store in `data_dir`, the default) or
    /// "postgres" (PostgreSQL at `url`, for several nodes).
    pub backend: String,
    /// The PostgreSQL URL for `backend = "postgres"`: `postgres://user:password@host/db`
    /// (`?sslmode=require` for TLS; a unix socket as `postgres://user@%2Frun%2Fpostgresql/db`).
    pub url: Option<String>,
    /// Connections to PostgreSQL kept in the pool (`backend = "postgres"`).
    pub pool_size: usize,
    /// Where message bodies go with `backend = "postgres"`: "postgres" (in the database, the
    /// default), "dir" (files under `bodies_dir`) or "s3" (the bucket of `[store.s3]`).
    pub bodies: String,
    /// The directory of body files for `bodies = "dir"`, shared by every node.
    pub bodies_dir: Option<PathBuf>,
    /// `[store.s3]`: the S3-compatible bucket for `bodies = "s3"`.
    pub s3: S3Config,
}

/// `[store.s3]`: an S3-compatible bucket for message bodies (`[store] bodies = "s3"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// The service URL: `https://s3.eu-west-1.amazonaws.com`, `http://minio:9000`.
    pub endpoint: String,
    /// The bucket, created beforehand; every node uses the same one.
    pub bucket: String,
    /// The region requests are signed for.
    pub region: String,
    /// The access key; empty: `AWS_ACCESS_KEY_ID` from the environment.
    pub access_key: String,
    /// The secret key; empty: `AWS_SECRET_ACCESS_KEY` from the environment.
    pub secret_key: String,
    /// Path-style URLs (`endpoint/bucket/key`, what most S3-compatible servers want) rather
    /// than virtual-hosted ones (`bucket.endpoint/key`).
    pub path_style: bool,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: String::new(),
            bucket: String::new(),
            region: "us-east-1".into(),
            access_key: String::new(),
            secret_key: String::new(),
            path_style: true,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        // Cyrus prunes expunged records after 3-7 days (cyr_expire -X), Dovecot keeps its
        // transaction log about 2 days; a tombstone is a few dozen bytes, so a month covers a
        // device left off for a holiday at little cost.
        StoreConfig {
            tombstone_days: 30,
            backend: "sqlite".into(),
            url: None,
            pool_size: 16,
            bodies: "postgres".into(),
            bodies_dir: None,
            s3: S3Config::default(),
        }
    }
}

impl StoreConfig {
    /// `backend` is known and has what it needs.
    pub fn validate(&self) -> Result<(), String> {
        match self.backend.as_str() {
            "sqlite" => Ok(()),
            "postgres" if self.url.as_deref().is_some_and(|u| !u.is_empty()) => Ok(()),
            "postgres" => Err("store.backend = \"postgres\" needs store.url".into()),
            other => Err(format!(
                "store.backend must be \"sqlite\" or \"postgres\", not {other:?}"
            )),
        }?;
        match self.bodies.as_str() {
            "postgres" => Ok(()),
            "dir" | "s3" if self.backend != "postgres" => Err(format!(
                "store.bodies = {:?} needs store.backend = \"postgres\"",
                self.bodies
            )),
            "dir" if self.bodies_dir.is_none() => {
                Err("store.bodies = \"dir\" needs store.bodies_dir".into())
            }
            "s3" if self.s3.endpoint.is_empty() || self.s3.bucket.is_empty() => {
                Err("store.bodies = \"s3\" needs store.s3.endpoint and store.s3.bucket".into())
            }
            "dir" | "s3" => Ok(()),
            other => Err(format!(
                "store.bodies must be \"postgres\", \"dir\" or \"s3\", not {other:?}"
            )),
        }
    }

    pub fn tombstone_retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.tombstone_days) * 86_400)
    }
}

/// The newest configuration format this program reads (`version = …` at the top of the file).
pub const CONFIG_VERSION: u32 = 1;

/// A renamed key: `old` (`section.key`, or `key` at the top level) is still read, as `new` in
/// the same section, with a warning naming the replacement.
#[derive(Debug, Clone, Copy)]
pub struct Rename {
    pub old: &'static str,
    pub new: &'static str,
}

/// Keys renamed so far (none yet). A rename stays here for at least one release.
pub const DEPRECATED: &[Rename] = &[];

/// A configuration file that cannot be used: the message names the key and its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Parse a TOML document; warnings about deprecated keys are logged.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let (config, warnings) = Config::from_toml_with_warnings(text)?;
        for w in warnings {
            tracing::warn!("{w}");
        }
        Ok(config)
    }

    /// Parse a TOML document; also returns a warning for each deprecated key, naming its line
    /// and replacement. Unknown keys are errors naming the key and its line.
    pub fn from_toml_with_warnings(text: &str) -> Result<(Config, Vec<String>), ConfigError> {
        parse(text, DEPRECATED)
    }

    /// What `mailkeep config check` reports: the warnings of a valid file, or its errors.
    pub fn check_toml(text: &str) -> Result<Vec<String>, ConfigError> {
        let (config, warnings) = Config::from_toml_with_warnings(text)?;
        config.auth.throttle().map_err(ConfigError)?;
        config.store.validate().map_err(ConfigError)?;
        if !matches!(config.log.format.as_str(), "text" | "json") {
            return Err(ConfigError(format!(
                "log.format must be \"text\" or \"json\", not {:?}",
                config.log.format
            )));
        }
        Ok(warnings)
    }
}

/// The parse behind [`Config::from_toml_with_warnings`], with the table of renames as a
/// parameter so tests can try the mechanism.
fn parse(text: &str, renames: &[Rename]) -> Result<(Config, Vec<String>), ConfigError> {
    // Syntax errors (with their line) and the version come first: a newer file's new keys
    // would otherwise be reported as unknown ones.
    let table: toml::Table = toml::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
    if let Some(v) = table.get("version") {
        let line = key_line(text, "", "version").map_or(String::new(), |l| format!("line {l}: "));
        match v.as_integer() {
            Some(n) if n > i64::from(CONFIG_VERSION) => {
                return Err(ConfigError(format!(
                    "{line}configuration version {n} is newer than this program reads \
                     ({CONFIG_VERSION}): upgrade mailkeep or use a file for version {CONFIG_VERSION}"
                )));
            }
            Some(n) if n >= 1 => {}
            _ => {
                return Err(ConfigError(format!(
                    "{line}version must be a whole number from 1 to {CONFIG_VERSION}"
                )));
            }
        }
    }
    // Deprecated keys are renamed in the text itself, on their own line, so the errors of the
    // real parse below still point at the lines of the file as written.
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let mut warnings = Vec::new();
    for r in renames {
        let (section, old) = r.old.rsplit_once('.').unwrap_or(("", r.old));
        let new = r.new.rsplit_once('.').map_or(r.new, |(_, k)| k);
        let Some(line) = key_line(text, section, old) else {
            continue;
        };
        if key_line(text, section, new).is_some() {
            return Err(ConfigError(format!(
                "line {line}: `{}` is deprecated and `{}` is set too: remove `{}`",
                r.old, r.new, r.old
            )));
        }
        warnings.push(format!(
            "line {line}: `{}` is deprecated, use `{}` instead",
            r.old, r.new
        ));
        let l = &mut lines[line - 1];
        if let Some(at) = l.find(old) {
            l.replace_range(at..at + old.len(), new);
        }
    }
    let config: Config =
        toml::from_str(&lines.join("\n")).map_err(|e| ConfigError(e.to_string()))?;
    Ok((config, warnings))
}

/// The 1-based line where `key` is set in `[section]` (`""`: the top level), also as a dotted
/// `section.key = …` at the top level. A plain scan: enough for the keys of this file, which
/// are bare words.
fn key_line(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    let sets = |line: &str, name: &str| {
        let line = line.trim_start();
        let rest = line
            .strip_prefix(name)
            .or_else(|| line.strip_prefix(&format!("\"{name}\"")));
        rest.is_some_and(|r| r.trim_start().starts_with('='))
    };
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix('[') {
            current = h
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            continue;
        }
        if current == section && sets(t, key) {
            return Some(i + 1);
        }
        if current.is_empty() && !section.is_empty() && sets(t, &format!("{section}.{key}")) {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.data_dir, PathBuf::from("mailkeep-data"));
        assert_eq!(c.imap.listen[0].port(), 1143);
        assert_eq!(c.imaps.listen[0].port(), 1993);
        assert_eq!(c.limits.max_message_size, 50 * 1024 * 1024);
        assert!(c.pop3.listen.is_empty() && c.pop3s.listen.is_empty() && c.pop3.delete);
    }

    #[test]
    fn store_tombstone_days() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.store.tombstone_days, 30);
        let c = Config::from_toml("[store]\ntombstone_days = 0\n").unwrap();
        assert_eq!(c.store.tombstone_retention(), Duration::ZERO);
        assert!(Config::from_toml("[store]\ntombstone_hours = 1\n").is_err());
    }

    #[test]
    fn pop3_sections() {
        let c = Config::from_toml(
            "[pop3]\nlisten = [\"0.0.0.0:110\"]\ndelete = false\n[pop3s]\nlisten = [\"0.0.0.0:995\"]\n",
        )
        .unwrap();
        assert_eq!(c.pop3.listen[0].port(), 110);
        assert_eq!(c.pop3s.listen[0].port(), 995);
        assert!(!c.pop3.delete);
    }

    #[test]
    fn full_file() {
        let c = Config::from_toml(
            r#"
data_dir = "/var/lib/mailkeep"
[imap]
listen = ["0.0.0.0:143", "[::]:143"]
[imaps]
listen = ["0.0.0.0:993"]
[tls]
cert = "/etc/mailkeep/cert.pem"
key = "/etc/mailkeep/key.pem"
[auth]
plaintext_on_loopback = false
max_failures = 5
[limits]
max_line_length = 8192
idle_timeout_secs = 3600
[log]
format = "json"
"#,
        )
        .unwrap();
        assert_eq!(c.imap.listen.len(), 2);
        assert!(!c.auth.plaintext_on_loopback);
        assert_eq!(c.limits.max_line_length, 8192);
        assert_eq!(c.limits.unauthenticated_timeout_secs, 60);
        assert_eq!(c.log.format, "json");
    }

    #[test]
    fn lmtp_section() {
        let c = Config::from_toml("").unwrap();
        assert!(c.lmtp.listen.is_empty());
        assert_eq!(c.lmtp.detail_separator, "+");
        let c = Config::from_toml(
            "[lmtp]\nlisten = [\"127.0.0.1:2424\", \"/run/mailkeep/lmtp.sock\"]\ndetail_separator = \"-\"\n",
        )
        .unwrap();
        assert_eq!(c.lmtp.listen.len(), 2);
        assert_eq!(c.lmtp.detail_separator, "-");
    }

    #[test]
    fn auth_scram_and_password_policy_settings() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.auth.scram_iterations, 4096);
        assert_eq!(c.auth.min_password_length, 10);
        let c = Config::from_toml("[auth]\nscram_iterations = 10000\nmin_password_length = 12\n")
            .unwrap();
        assert_eq!(c.auth.scram_iterations, 10000);
        assert_eq!(c.auth.min_password_length, 12);
        assert!(!c.auth.scram_sha1);
        assert!(
            Config::from_toml("[auth]\nscram_sha1 = true\n")
                .unwrap()
                .auth
                .scram_sha1
        );
    }

    #[test]
    fn auth_throttle_settings() {
        let c = Config::from_toml("").unwrap();
        let t = c.auth.throttle().unwrap();
        assert!(
            t.trusted
                .iter()
                .any(|n| n.contains("127.0.0.9".parse().unwrap()))
        );
        assert_eq!(c.auth.failure_delay_ms, 1000);
        let c = Config::from_toml(
            "[auth]\ntrusted_networks = []\nthrottle_ip_failures = 3\nblock_secs = 60\n",
        )
        .unwrap();
        let t = c.auth.throttle().unwrap();
        assert!(t.trusted.is_empty());
        assert_eq!((t.ip_failures, t.block.as_secs()), (3, 60));
        let c = Config::from_toml("[auth]\ntrusted_networks = [\"10.0.0.0/33\"]\n").unwrap();
        assert!(c.auth.throttle().is_err());
    }

    #[test]
    fn quota_section() {
        let c = Config::from_toml("").unwrap();
        assert!(c.quota.limits().is_unlimited());
        assert_eq!(c.quota.admin, "admin");
        let c = Config::from_toml("[quota]\nstorage = \"2G\"\nmessages = 100000\n").unwrap();
        assert_eq!(c.quota.limits().storage, Some(2 << 30));
        assert_eq!(c.quota.limits().messages, Some(100_000));
        let c = Config::from_toml("[quota]\nstorage = 1048576\nadmin = \"root\"\n").unwrap();
        assert_eq!((c.quota.storage, c.quota.admin.as_str()), (1 << 20, "root"));
        assert!(Config::from_toml("[quota]\nstorage = \"2X\"\n").is_err());
        assert!(
            Config::from_toml("[quota]\nstorage = \"0\"\n")
                .unwrap()
                .quota
                .limits()
                .is_unlimited()
        );
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(Config::from_toml("[imap]\nlistenn = []\n").is_err());
    }

    /// Every unknown key, at the top level or in any section (also one with a custom
    /// deserializer), is reported with its name and line.
    #[test]
    fn unknown_keys_name_the_key_and_line() {
        for (text, key, line) in [
            ("data_dir = \"x\"\ndata_dri = \"y\"\n", "data_dri", 2),
            (
                "[imap]\nlisten = []\n\n[limits]\nmax_line_lenght = 5\n",
                "max_line_lenght",
                5,
            ),
            ("[quota]\nstorage = \"1G\"\nstorag = 1\n", "storag", 3),
            ("[auth]\n# comment\nmax_failure = 3\n", "max_failure", 3),
            ("[store]\ntombstone_hours = 1\n", "tombstone_hours", 2),
            ("[imap]\nlistenn = []\n", "listenn", 2),
            ("[nosuchsection]\nx = 1\n", "nosuchsection", 1),
        ] {
            let e = Config::from_toml(text).unwrap_err().to_string();
            assert!(e.contains(&format!("`{key}`")), "{text:?}: {e}");
            assert!(e.contains(&format!("line {line}")), "{text:?}: {e}");
        }
    }

    #[test]
    fn version_key() {
        assert_eq!(Config::from_toml("").unwrap().version, 1);
        assert_eq!(Config::from_toml("version = 1\n").unwrap().version, 1);
        let e = Config::from_toml("# new\nversion = 2\n[imap]\nfuture_key = 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("version 2 is newer"),
            "{e}"
        );
        assert!(Config::from_toml("version = 0\n").is_err());
        assert!(Config::from_toml("version = \"1\"\n").is_err());
    }

    #[test]
    fn deprecated_keys_warn_and_still_work() {
        const RENAMES: &[Rename] = &[
            Rename {
                old: "limits.max_line",
                new: "limits.max_line_length",
            },
            Rename {
                old: "datadir",
                new: "data_dir",
            },
        ];
        let text = "datadir = \"/srv/mail\"\n[limits]\n\nmax_line = 4096\n";
        let (c, warnings) = parse(text, RENAMES).unwrap();
        assert_eq!(c.limits.max_line_length, 4096);
        assert_eq!(c.data_dir, PathBuf::from("/srv/mail"));
        assert_eq!(
            warnings,
            [
                "line 4: `limits.max_line` is deprecated, use `limits.max_line_length` instead",
                "line 1: `datadir` is deprecated, use `data_dir` instead"
            ]
        );
        // The dotted form at the top level too.
        let (c, warnings) = parse("limits.max_line = 100\n", RENAMES).unwrap();
        assert_eq!((c.limits.max_line_length, warnings.len()), (100, 1));
        // Old and new together: an error, not a silent choice.
        let e = parse("[limits]\nmax_line = 1\nmax_line_length = 2\n", RENAMES).unwrap_err();
        assert!(e.0.contains("line 2") && e.0.contains("set too"), "{e}");
        // Errors after a rename keep the file's own line numbers.
        let e = parse("[limits]\nmax_line = 1\nbogus = 2\n", RENAMES).unwrap_err();
        assert!(e.0.contains("line 3") && e.0.contains("`bogus`"), "{e}");
        // Without the table the old key is simply unknown.
        assert!(Config::from_toml(text).is_err());
    }

    #[test]
    fn store_backend() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(
            (c.store.backend.as_str(), c.store.pool_size),
            ("sqlite", 16)
        );
        let c = Config::from_toml(
            "[store]\nbackend = \"postgres\"\nurl = \"postgres://m@db/mail\"\npool_size = 4\n",
        )
        .unwrap();
        assert_eq!(c.store.url.as_deref(), Some("postgres://m@db/mail"));
        assert_eq!(c.store.pool_size, 4);
        assert!(Config::check_toml("[store]\nbackend = \"postgres\"\n").is_err());
        assert!(Config::check_toml("[store]\nbackend = \"mysql\"\n").is_err());
    }

    #[test]
    fn store_bodies() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.store.bodies, "postgres");
        let pg = "[store]\nbackend = \"postgres\"\nurl = \"postgres://m@db/mail\"\n";
        let c =
            Config::from_toml(&format!("{pg}bodies = \"dir\"\nbodies_dir = \"/srv/b\"\n")).unwrap();
        assert_eq!(
            c.store.bodies_dir.as_deref(),
            Some(std::path::Path::new("/srv/b"))
        );
        assert!(c.store.validate().is_ok());
        let s3 = format!(
            "{pg}bodies = \"s3\"\n[store.s3]\nendpoint = \"http://minio:9000\"\n\
             bucket = \"mail\"\naccess_key = \"k\"\nsecret_key = \"s\"\n"
        );
        let c = Config::from_toml(&s3).unwrap();
        assert_eq!(
            (c.store.s3.bucket.as_str(), c.store.s3.region.as_str()),
            ("mail", "us-east-1")
        );
        assert!(c.store.s3.path_style);
        assert!(c.store.validate().is_ok());
        for bad in [
            format!("{pg}bodies = \"dir\"\n"),
            format!("{pg}bodies = \"s3\"\n"),
            format!("{pg}bodies = \"nfs\"\n"),
            "[store]\nbodies = \"dir\"\nbodies_dir = \"/srv/b\"\n".to_string(),
            format!("{pg}[store.s3]\nbucket_name = \"x\"\n"),
        ] {
            assert!(Config::check_toml(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn check_toml_reports_semantic_errors() {
        assert_eq!(Config::check_toml("").unwrap(), Vec::<String>::new());
        assert!(Config::check_toml("[log]\nformat = \"xml\"\n").is_err());
        assert!(Config::check_toml("[auth]\ntrusted_networks = [\"1.2.3.4/40\"]\n").is_err());
    }
}
