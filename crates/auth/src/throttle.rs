//! Failed logins counted across connections, per source and per account.
//!
//! A per-connection delay does not slow a guesser that opens many connections, so failures are
//! counted here, shared by every connection of the process:
//! - per source: one IPv4 address, or one IPv6 /64 (what one customer usually gets);
//! - per account: the account name tried (resolved, or as typed for unknown names, so an
//!   unknown name is throttled exactly like a real one).
//!
//! Each failure adds a growing delay to the answer; at the threshold the key is blocked for
//! `block`, doubled by each further failure up to `max_block`. A blocked attempt is not checked
//! at all (no argon2 hash): the caller sleeps as long as a check would have taken and answers
//! exactly as for a wrong password, so nothing tells the client it is blocked, nor which
//! accounts exist. A record with no failure for twice `max_block` is forgotten.
//!
//! An account block would let anybody lock its owner out; so a source that logged in to the
//! account successfully (within the same memory time) is not held by the account's block,
//! only by its own. Trusted networks (a webmail, loopback by default) are never throttled.
//!
//! Memory: at most [`MAX_RECORDS`] records per map; when full, forgettable records go first,
//! then records below their threshold, and when even that does not make room the new key is
//! not tracked (the IP table still holds the blocked sources).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Records kept at most in each of the source, account and known-good maps.
pub const MAX_RECORDS: usize = 100_000;

/// Throttling thresholds (the `[auth]` settings).
#[derive(Debug, Clone)]
pub struct ThrottleConfig {
    /// Failures from one source (IPv4 address, IPv6 /64) before it is blocked. 0: no source limit.
    pub ip_failures: u32,
    /// Failures against one account before it is blocked. 0: no account limit.
    pub account_failures: u32,
    /// Extra delay per failure already counted for the source or account.
    pub delay_step: Duration,
    /// Cap of that extra delay.
    pub max_delay: Duration,
    /// First block; each further failure doubles it.
    pub block: Duration,
    /// Longest block.
    pub max_block: Duration,
    /// Sources never throttled.
    pub trusted: Vec<Network>,
    /// Password checks one source may have waiting for the hashing threads; more fail at once.
    pub hash_queue_per_source: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            ip_failures: 10,
            account_failures: 5,
            delay_step: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
            block: Duration::from_secs(300),
            max_block: Duration::from_secs(3600),
            trusted: vec![
                "127.0.0.0/8".parse().expect("literal network"),
                "::1/128".parse().expect("literal network"),
            ],
            hash_queue_per_source: 4,
        }
    }
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or one address).
///
/// Written here rather than taken from a crate: a prefix match is a few lines and the auth
/// crate stays free of another dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Whether `ip` is inside (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: bad prefix length"))?,
        };
        Ok(Network { addr, prefix })
    }
}

/// Where a login comes from, as throttled: an IPv4 address or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    pub fn of(ip: IpAddr) -> Source {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & (u128::MAX << 64);
                Source(IpAddr::V6(Ipv6Addr::from(bits)))
            }
            v4 => Source(v4),
        }
    }
}

/// Whether an attempt may be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Blocked,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
}

#[derive(Default)]
struct State {
    sources: HashMap<Source, Record>,
    accounts: HashMap<String, Record>,
    /// (account, source) pairs with a recent successful login.
    good: HashMap<(String, Source), Instant>,
}

/// Shared failed-login counters (see the module documentation).
pub struct Throttle {
    config: ThrottleConfig,
    state: Mutex<State>,
}

/// The key an account is counted under: case-folded, bounded.
fn account_key(account: &str) -> String {
    let mut end = account.len().min(256);
    while !account.is_char_boundary(end) {
        end -= 1;
    }
    account[..end].to_lowercase()
}

impl Throttle {
    pub fn new(mut config: ThrottleConfig) -> Throttle {
        config.max_block = config.max_block.max(config.block);
        Throttle {
            config,
            state: Mutex::new(State::default()),
        }
    }

    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// Trusted sources are never throttled nor held to the hashing queue's per-source bound.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.config.trusted.iter().any(|n| n.contains(ip))
    }

    fn forget_after(&self) -> Duration {
        self.config.max_block * 2
    }

    fn block_for(&self, over: u32) -> Duration {
        let factor = 1u32.checked_shl(over.min(31)).unwrap_or(u32::MAX);
        self.config
            .block
            .checked_mul(factor)
            .unwrap_or(self.config.max_block)
            .min(self.config.max_block)
    }

    fn blocked(&self, r: Option<&Record>, threshold: u32, now: Instant) -> bool {
        match r {
            Some(r) if threshold > 0 && r.failures >= threshold => {
                now < r.last + self.block_for(r.failures - threshold)
            }
            _ => false,
        }
    }

    fn delay_of(&self, r: Option<&Record>) -> Duration {
        let n = r.map_or(0, |r| r.failures.saturating_sub(1));
        self.config
            .delay_step
            .saturating_mul(n)
            .min(self.config.max_delay)
    }

    /// An attempt from `ip` against `account` begins: may it be checked? Either way it is
    /// counted as a failure at once (a success takes it back, see [`Throttle::succeeded`]), so
    /// attempts running at the same time cannot all slip under the threshold: at most the
    /// threshold's number of checks get through, however many connections try at once.
    pub fn begin(&self, ip: IpAddr, account: &str) -> Verdict {
        self.begin_at(ip, account, Instant::now())
    }

    fn begin_at(&self, ip: IpAddr, account: &str, now: Instant) -> Verdict {
        if self.is_trusted(ip) {
            return Verdict::Allowed;
        }
        let source = Source::of(ip);
        let key = account_key(account);
        let forget = self.forget_after();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let st = &mut *st;
        let known_good = st
            .good
            .get(&(key.clone(), source))
            .is_some_and(|t| now.duration_since(*t) < forget);
        let blocked = self.blocked(st.sources.get(&source), self.config.ip_failures, now)
            || (!known_good
                && self.blocked(st.accounts.get(&key), self.config.account_failures, now));
        bump(
            &mut st.sources,
            source,
            now,
            forget,
            self.config.ip_failures,
        );
        bump(
            &mut st.accounts,
            key,
            now,
            forget,
            self.config.account_failures,
        );
        if blocked {
            Verdict::Blocked
        } else {
            Verdict::Allowed
        }
    }

    /// No failure counted for `ip`'s source but (at most) the attempt just begun: its password
    /// checks go to the queue served first.
    pub fn is_clean(&self, ip: IpAddr) -> bool {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.sources
            .get(&Source::of(ip))
            .is_none_or(|r| r.failures <= 1)
    }

    /// The extra delay a failed attempt's answer gets: it grows with the failures counted for
    /// its source or account.
    pub fn delay(&self, ip: IpAddr, account: &str) -> Duration {
        if self.is_trusted(ip) {
            return Duration::ZERO;
        }
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let a = st.sources.get(&Source::of(ip));
        let b = st.accounts.get(&account_key(account));
        self.delay_of(a).max(self.delay_of(b))
    }

    /// A successful login: the account's count is cleared, the attempt is taken back from the
    /// source's count, and this source may log in to the account even while others' failures
    /// hold it. The source's other failures stay (one known password must not buy guesses at
    /// other accounts).
    pub fn succeeded(&self, ip: IpAddr, account: &str) {
        if self.is_trusted(ip) {
            return;
        }
        let now = Instant::now();
        let key = account_key(account);
        let source = Source::of(ip);
        let forget = self.forget_after();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.accounts.remove(&key);
        if let Some(r) = st.sources.get_mut(&source) {
            r.failures = r.failures.saturating_sub(1);
            if r.failures == 0 {
                st.sources.remove(&source);
            }
        }
        if st.good.len() >= MAX_RECORDS {
            st.good.retain(|_, t| now.duration_since(*t) < forget);
            if st.good.len() >= MAX_RECORDS {
                st.good.clear();
            }
        }
        st.good.insert((key, source), now);
    }

    /// Records held (sources, accounts, known-good pairs): for tests and diagnostics.
    pub fn len(&self) -> (usize, usize, usize) {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        (st.sources.len(), st.accounts.len(), st.good.len())
    }
}

/// Add a failure to `key`'s record, making room if the map is full.
fn bump<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Record>,
    key: K,
    now: Instant,
    forget: Duration,
    threshold: u32,
) {
    if let Some(r) = map.get_mut(&key) {
        if now.duration_since(r.last) >= forget {
            r.failures = 0;
        }
        r.failures = r.failures.saturating_add(1);
        r.last = now;
        return;
    }
    if map.len() >= MAX_RECORDS {
        map.retain(|_, r| now.duration_since(r.last) < forget);
        if map.len() >= MAX_RECORDS && threshold > 0 {
            map.retain(|_, r| r.failures >= threshold);
        }
        if map.len() >= MAX_RECORDS {
            return;
        }
    }
    map.insert(
        key,
        Record {
            failures: 1,
            last: now,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ThrottleConfig {
        ThrottleConfig {
            ip_failures: 4,
            account_failures: 3,
            trusted: vec!["10.0.0.0/8".parse().unwrap()],
            ..ThrottleConfig::default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks() {
        let n: Network = "127.0.0.0/8".parse().unwrap();
        assert!(n.contains(ip("127.9.9.9")));
        assert!(n.contains(ip("::ffff:127.0.0.1")));
        assert!(!n.contains(ip("128.0.0.1")));
        assert!(!n.contains(ip("::1")));
        let n: Network = "2001:db8::/32".parse().unwrap();
        assert!(n.contains(ip("2001:db8:1::5")));
        assert!(!n.contains(ip("2001:db9::5")));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        assert!("::1".parse::<Network>().unwrap().contains(ip("::1")));
        for bad in ["10.0.0.0/33", "nonsense", "::/129", "1.2.3.4/x"] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sources_group_ipv6_by_64() {
        assert_eq!(
            Source::of(ip("2001:db8:0:1::5")),
            Source::of(ip("2001:db8:0:1:ffff::9"))
        );
        assert_ne!(
            Source::of(ip("2001:db8:0:1::5")),
            Source::of(ip("2001:db8:0:2::5"))
        );
        assert_ne!(Source::of(ip("192.0.2.1")), Source::of(ip("192.0.2.2")));
    }

    /// A failed attempt: begun, checked (here: not), and its delay asked for.
    fn fail(t: &Throttle, from: &str, account: &str) -> (Verdict, Duration) {
        let v = t.begin(ip(from), account);
        (v, t.delay(ip(from), account))
    }

    #[test]
    fn account_is_blocked_for_every_untrusted_source_but_known_good_ones() {
        let t = Throttle::new(config());
        assert_eq!(t.begin(ip("192.0.2.50"), "alice"), Verdict::Allowed);
        t.succeeded(ip("192.0.2.50"), "alice");
        for i in 0..3 {
            assert_eq!(fail(&t, "192.0.2.1", "Alice").0, Verdict::Allowed, "{i}");
        }
        assert_eq!(fail(&t, "192.0.2.1", "alice").0, Verdict::Blocked);
        assert_eq!(fail(&t, "192.0.2.2", "ALICE").0, Verdict::Blocked);
        // Another account from another source is fine.
        assert_eq!(fail(&t, "192.0.2.3", "bob").0, Verdict::Allowed);
        // The owner's usual source and trusted networks are not held.
        assert_eq!(t.begin(ip("192.0.2.50"), "alice"), Verdict::Allowed);
        assert_eq!(t.begin(ip("10.1.2.3"), "alice"), Verdict::Allowed);
    }

    #[test]
    fn source_is_blocked_across_accounts() {
        let t = Throttle::new(config());
        for i in 0..4 {
            assert_eq!(fail(&t, "192.0.2.1", &format!("u{i}")).0, Verdict::Allowed);
        }
        assert_eq!(t.begin(ip("192.0.2.1"), "fresh"), Verdict::Blocked);
        assert_eq!(t.begin(ip("192.0.2.2"), "fresh2"), Verdict::Allowed);
        // Trusted sources are never counted.
        for _ in 0..10 {
            assert_eq!(
                fail(&t, "10.0.0.1", "x"),
                (Verdict::Allowed, Duration::ZERO)
            );
        }
    }

    #[test]
    fn simultaneous_attempts_cannot_slip_under_the_threshold() {
        // Attempts are counted when they begin, before any result is known.
        let t = Throttle::new(config());
        let allowed = (0..50)
            .filter(|i| t.begin(ip(&format!("192.0.2.{i}")), "alice") == Verdict::Allowed)
            .count();
        assert_eq!(allowed, 3);
    }

    #[test]
    fn clean_sources() {
        let t = Throttle::new(config());
        assert!(t.is_clean(ip("192.0.2.1")));
        t.begin(ip("192.0.2.1"), "a");
        assert!(t.is_clean(ip("192.0.2.1")), "only the attempt running");
        t.begin(ip("192.0.2.1"), "a");
        assert!(!t.is_clean(ip("192.0.2.1")));
        assert!(t.is_clean(ip("192.0.2.2")));
    }

    #[test]
    fn success_takes_its_attempt_back() {
        let t = Throttle::new(config());
        for _ in 0..10 {
            assert_eq!(t.begin(ip("192.0.2.1"), "alice"), Verdict::Allowed);
            t.succeeded(ip("192.0.2.1"), "alice");
        }
        assert_eq!(t.len().0, 0);
    }

    #[test]
    fn delay_grows_and_is_capped() {
        let t = Throttle::new(ThrottleConfig {
            ip_failures: 0,
            account_failures: 0,
            ..config()
        });
        let delays: Vec<_> = (0..40).map(|_| fail(&t, "192.0.2.1", "a")).collect();
        assert_eq!(delays[0], (Verdict::Allowed, Duration::ZERO));
        assert_eq!(delays[1].1, Duration::from_millis(250));
        assert!(delays.windows(2).all(|w| w[0].1 <= w[1].1));
        assert_eq!(delays.last().unwrap().1, Duration::from_secs(4));
        // Thresholds of 0 never block.
        assert!(delays.iter().all(|d| d.0 == Verdict::Allowed));
    }

    #[test]
    fn blocks_double_and_end() {
        let t = Throttle::new(ThrottleConfig {
            block: Duration::from_millis(40),
            max_block: Duration::from_millis(100),
            ..config()
        });
        assert_eq!(t.block_for(0), Duration::from_millis(40));
        assert_eq!(t.block_for(1), Duration::from_millis(80));
        assert_eq!(t.block_for(2), Duration::from_millis(100));
        assert_eq!(t.block_for(400), Duration::from_millis(100));
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        for _ in 0..3 {
            t.begin_at(ip("192.0.2.1"), "a", start);
        }
        // Blocked for 40 ms; the blocked attempt counts too, so the block is 80 ms from it.
        assert_eq!(t.begin_at(ip("192.0.2.3"), "a", at(39)), Verdict::Blocked);
        assert_eq!(t.begin_at(ip("192.0.2.4"), "a", at(118)), Verdict::Blocked);
        // Over: one more attempt is checked (the account's 6th); then blocked for the longest
        // block (100 ms).
        assert_eq!(t.begin_at(ip("192.0.2.1"), "a", at(220)), Verdict::Allowed);
        assert_eq!(t.begin_at(ip("192.0.2.5"), "a", at(319)), Verdict::Blocked);
        // A success from the owner clears the account (the guessing source stays blocked).
        assert_eq!(t.begin_at(ip("192.0.2.3"), "a", at(320)), Verdict::Blocked);
        t.succeeded(ip("192.0.2.9"), "a");
        assert_eq!(t.begin_at(ip("192.0.2.3"), "a", at(321)), Verdict::Allowed);
        // The source's three failures at 0 ms were forgotten at 220 ms (twice the longest block
        // without a failure), so it is below its threshold again.
        assert_eq!(t.begin_at(ip("192.0.2.1"), "b", at(322)), Verdict::Allowed);
    }

    /// The target: at most 20 guesses an hour from one IP at one account once blocked.
    /// (An attempt while blocked counts too, so a guesser that keeps trying is never let
    /// through again; one that knows the settings and waits out each block gets the most.)
    #[test]
    fn guesses_per_hour_at_one_account() {
        let t = Throttle::new(ThrottleConfig {
            trusted: Vec::new(),
            ..ThrottleConfig::default()
        });
        let start = Instant::now();
        let (from, hammering) = (ip("192.0.2.1"), (0..3600u64).step_by(2));
        let checked = hammering
            .filter(|s| {
                t.begin_at(from, "victim", start + Duration::from_secs(*s)) == Verdict::Allowed
            })
            .count();
        assert_eq!(checked, 5);
        let t = Throttle::new(ThrottleConfig {
            trusted: Vec::new(),
            ..ThrottleConfig::default()
        });
        let (from, mut checked) = (ip("192.0.2.2"), 0);
        for s in 0..3600u64 {
            let now = start + Duration::from_secs(s);
            let free = {
                let st = t.state.lock().unwrap();
                !t.blocked(st.accounts.get("victim"), t.config.account_failures, now)
                    && !t.blocked(st.sources.get(&Source::of(from)), t.config.ip_failures, now)
            };
            if free && t.begin_at(from, "victim", now) == Verdict::Allowed {
                checked += 1;
            }
        }
        assert!(checked <= 20, "{checked}");
        assert_eq!(checked, 8, "5, then after blocks of 5, 10 and 20 minutes");
    }

    #[test]
    fn memory_is_bounded() {
        let t = Throttle::new(config());
        for i in 0..(MAX_RECORDS as u32 + 1000) {
            let a = std::net::Ipv4Addr::from(0x0b00_0000 + i);
            t.begin(IpAddr::V4(a), "victim");
        }
        let (s, a, _) = t.len();
        assert!(s <= MAX_RECORDS && a == 1, "{s} {a}");
    }
}
