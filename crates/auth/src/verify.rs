//! Password checks for logins: argon2id on a small dedicated pool, with a cache of recent
//! successful logins.
//!
//! Why a pool of its own: argon2id allocates 19 MiB per hash. Run on tokio's blocking pool
//! (up to 512 threads), every thread that ever hashed keeps that memory in its malloc arena:
//! we measured 18 MiB of RSS per idle connection that way. Two long-lived threads (one per core
//! of a small machine) bound it to 2 x 19 MiB for the whole process (none while no check
//! waits), and also bound how much CPU password guessing can take from mail serving.
//!
//! Why a cache: phones and sync clients log in again and again with the same password (every
//! few minutes, and once per folder for some). Like Dovecot's `auth_cache`, a successful login
//! is remembered for [`CACHE_TTL`] as a keyed SHA-256 of the password (the key is random per
//! process), tied to the stored PHC string so a password change invalidates it at once. A failed
//! login always pays the full argon2 cost, so the cache does not help guessing.
//!
//! Why a fair queue: two threads are a queue, and one flooding client used to fill it (others'
//! first logins waited seconds). Checks are queued per source (IPv4 address, IPv6 /64) and
//! served round-robin, at most a few waiting per source (more are refused without a hash and
//! answered as a wrong password); sources with no failures counted are served first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};

use crate::throttle::Source;

/// How long a successful login is remembered.
pub const CACHE_TTL: Duration = Duration::from_secs(3600);
/// Entries kept at most: a bound on memory whatever the number of users.
const CACHE_MAX: usize = 100_000;
/// Threads that run argon2.
const THREADS: usize = 2;
/// Checks waiting in all, whatever their source: beyond, a login is answered as a temporary
/// failure at once ([`Refused::Full`]). Each session waits for at most one check, so this is
/// reached only when more connections than this log in at the same moment (a login storm of
/// 5,000 after a restart filled the earlier 4,096); a job holds its password and hash, well
/// under 1 KiB.
const MAX_QUEUED: usize = 16_384;
/// Recent hash durations kept to imitate a check's time when none is made.
const SAMPLES: usize = 64;

struct Entry {
    phc: String,
    mac: [u8; 32],
    at: Instant,
}

struct Job {
    phc: String,
    password: Vec<u8>,
    reply: Reply,
}

/// What a job does: check a password against `phc`, or hash it anew (a rehash after a login
/// with an imported hash: on these threads too, for the same memory reason).
enum Reply {
    Verify(tokio::sync::oneshot::Sender<bool>),
    Hash(tokio::sync::oneshot::Sender<String>),
}

impl Reply {
    fn is_closed(&self) -> bool {
        match self {
            Reply::Verify(r) => r.is_closed(),
            Reply::Hash(r) => r.is_closed(),
        }
    }
}

/// Who a check is queued for: a source, or this process itself (the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum QueueKey {
    Local,
    Source(Source),
}

/// A hashing queue: one FIFO per source, served round-robin, so a source with a thousand
/// checks waiting delays another source's first check by at most one check per waiting
/// source, not by a thousand. There are two: sources without failures counted go first (see
/// [`check_login_queued`]), so even many guessing sources at once do not hold up the others.
#[derive(Default)]
struct Queue {
    per: HashMap<QueueKey, VecDeque<Job>>,
    /// Sources with checks waiting, in serving order.
    order: VecDeque<QueueKey>,
    total: usize,
}

impl Queue {
    fn waiting(&self, key: &QueueKey) -> usize {
        self.per.get(key).map_or(0, VecDeque::len)
    }

    fn push(&mut self, key: QueueKey, job: Job) {
        let jobs = self.per.entry(key).or_default();
        if jobs.is_empty() {
            self.order.push_back(key);
        }
        jobs.push_back(job);
        self.total += 1;
    }

    fn pop(&mut self) -> Option<Job> {
        let key = self.order.pop_front()?;
        let jobs = self.per.get_mut(&key)?;
        let job = jobs.pop_front();
        if jobs.is_empty() {
            self.per.remove(&key);
        } else {
            self.order.push_back(key);
        }
        self.total -= usize::from(job.is_some());
        job
    }
}

struct Verifier {
    key: [u8; 32],
    cache: Mutex<HashMap<String, Entry>>,
    /// `[first, then]`: checks of sources without failures, and the others.
    queue: Mutex<[Queue; 2]>,
    ready: Condvar,
    /// Durations of recent argon2 checks (a ring).
    samples: Mutex<(Vec<Duration>, usize)>,
}

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        for i in 0..THREADS {
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || worker(i == 0))
                .expect("spawning the password hashing threads");
        }
        Verifier {
            key,
            cache: Mutex::new(HashMap::new()),
            queue: Mutex::new([Queue::default(), Queue::default()]),
            ready: Condvar::new(),
            samples: Mutex::new((Vec::new(), 0)),
        }
    })
}

fn worker(first: bool) {
    let v = verifier();
    // This thread's argon2 memory, kept while checks are waiting (see `blocks`).
    let mut blocks = crate::blocks::Blocks::default();
    if first {
        // A first sample of a check's duration (see `hash_time_sample`), made here so no other
        // thread ever holds argon2 memory.
        let t = Instant::now();
        blocks.verify(DUMMY_HASH, b"x");
        record_sample(t.elapsed());
    }
    loop {
        let job = {
            let mut q = v.queue.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(job) = q[0].pop().or_else(|| q[1].pop()) {
                    break job;
                }
                if blocks.held() {
                    // Nothing waiting: the memory goes back to the system while the thread
                    // waits (see `blocks`), outside the queue's lock.
                    drop(q);
                    blocks.release();
                    q = v.queue.lock().unwrap_or_else(|e| e.into_inner());
                    continue;
                }
                q = v.ready.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        // The client gave up (disconnected) while waiting: nobody reads the answer.
        if job.reply.is_closed() {
            continue;
        }
        match job.reply {
            Reply::Verify(reply) => {
                let t = Instant::now();
                let ok = blocks
                    .verify(&job.phc, &job.password)
                    .unwrap_or_else(|| crate::verify_password(&job.phc, &job.password));
                record_sample(t.elapsed());
                let _ = reply.send(ok);
            }
            Reply::Hash(reply) => {
                let _ = reply.send(crate::hash_password(&String::from_utf8_lossy(
                    &job.password,
                )));
            }
        }
    }
}

fn record_sample(d: Duration) {
    let v = verifier();
    let mut s = v.samples.lock().unwrap_or_else(|e| e.into_inner());
    let (ring, next) = &mut *s;
    if ring.len() < SAMPLES {
        ring.push(d);
    } else {
        ring[*next % SAMPLES] = d;
    }
    *next = (*next + 1) % SAMPLES;
}

/// How long a password check takes, drawn from the recent ones: a blocked or refused attempt
/// sleeps this long so its answer comes as late as a checked one's.
pub fn hash_time_sample() -> Duration {
    let v = verifier();
    let s = v.samples.lock().unwrap_or_else(|e| e.into_inner());
    let ring = &s.0;
    if ring.is_empty() {
        return Duration::from_millis(20);
    }
    ring[rand::thread_rng().gen_range(0..ring.len())]
}

fn mac(key: &[u8; 32], user: &str, password: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(key);
    h.update((user.len() as u64).to_be_bytes());
    h.update(user.as_bytes());
    h.update(password);
    h.finalize().into()
}

/// Constant-time comparison: the time taken must not tell how many bytes matched.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a check was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The source already has its bound of checks waiting: answered as a wrong password.
    SourceBusy,
    /// The whole queue is full: answered as a temporary failure, so clients try again
    /// instead of asking their user for the password anew.
    Full,
}

/// May one more check join a queue of `total` checks, `waiting` of them from its source?
fn admit(total: usize, waiting: usize, bound: usize) -> Result<(), Refused> {
    if total >= MAX_QUEUED {
        return Err(Refused::Full);
    }
    if waiting >= bound.max(1) {
        return Err(Refused::SourceBusy);
    }
    Ok(())
}

/// Run argon2 verification on the pool, queued for `key` (in the first queue if `first`).
/// `Err`: the key already has `bound` checks waiting, or the whole queue is full, and nothing
/// was checked.
async fn verify_on_pool(
    key: QueueKey,
    bound: usize,
    first: bool,
    phc: &str,
    password: &[u8],
) -> Result<bool, Refused> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    {
        let v = verifier();
        let mut q = v.queue.lock().unwrap_or_else(|e| e.into_inner());
        admit(
            q[0].total + q[1].total,
            q[0].waiting(&key) + q[1].waiting(&key),
            bound,
        )?;
        let job = Job {
            phc: phc.to_string(),
            password: password.to_vec(),
            reply: Reply::Verify(tx),
        };
        q[usize::from(!first)].push(key, job);
        v.ready.notify_one();
    }
    Ok(rx.await.unwrap_or(false))
}

/// Hash `password` as argon2id on the hashing threads (queued behind the checks of this
/// process's own key, see [`QueueKey::Local`]). `None` if the queue is full.
pub(crate) async fn hash_on_pool(password: &str) -> Option<String> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    {
        let v = verifier();
        let mut q = v.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q[0].total + q[1].total >= MAX_QUEUED {
            return None;
        }
        let job = Job {
            phc: String::new(),
            password: password.as_bytes().to_vec(),
            reply: Reply::Hash(tx),
        };
        q[1].push(QueueKey::Local, job);
        v.ready.notify_one();
    }
    rx.await.ok()
}

/// Check a login. `phc` is the user's stored hash, or `None` for an unknown user, which is
/// checked against a dummy hash so the answer takes as long as for a wrong password.
pub async fn check_login(user: &str, phc: Option<&str>, password: &[u8]) -> bool {
    check_login_queued(None, usize::MAX, true, user, phc, password)
        .await
        .unwrap_or(false)
}

/// [`check_login`] queued fairly for `source` (round-robin between sources), with at most
/// `bound` checks of that source waiting; `first`: in the queue served first (the source has
/// no failures counted). `Err`: refused, nothing checked (see [`Refused`] for the answer; the
/// caller waits [`hash_time_sample`] first either way).
pub(crate) async fn check_login_queued(
    source: Option<Source>,
    bound: usize,
    first: bool,
    user: &str,
    phc: Option<&str>,
    password: &[u8],
) -> Result<bool, Refused> {
    let key = source.map_or(QueueKey::Local, QueueKey::Source);
    let Some(phc) = phc else {
        verify_on_pool(key, bound, first, DUMMY_HASH, password).await?;
        return Ok(false);
    };
    let v = verifier();
    let m = mac(&v.key, user, password);
    {
        let cache = v.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = cache.get(user)
            && e.phc == phc
            && same(&e.mac, &m)
            && e.at.elapsed() < CACHE_TTL
        {
            return Ok(true);
        }
    }
    if !verify_on_pool(key, bound, first, phc, password).await? {
        return Ok(false);
    }
    let mut cache = v.cache.lock().unwrap_or_else(|e| e.into_inner());
    if cache.len() >= CACHE_MAX {
        cache.retain(|_, e| e.at.elapsed() < CACHE_TTL);
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
    }
    cache.insert(
        user.to_string(),
        Entry {
            phc: phc.to_string(),
            mac: m,
            at: Instant::now(),
        },
    );
    Ok(true)
}

/// What an unknown user's password is checked against, so the answer takes as long as for a
/// wrong password: an argon2id hash with the parameters of [`crate::hash_password`] (a test
/// checks they match), of a password nobody types. A constant, so no thread but the hashing
/// pool's ever runs argon2.
#[cfg(not(fuzzing))]
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$pt/c83C1YRgoEW28fWgj7g$DCd0TW8QsKJywLnRFDnwmS/7/xCm9MVCk/C85e5+vI4";
/// Under the fuzzers (`--cfg fuzzing`, set by cargo-fuzz) the cheapest argon2id: every fuzzed
/// login to an unknown name would otherwise cost a production hash.
#[cfg(fuzzing)]
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=8,t=1,p=1$ZnV6enNhbHQ$4m1Ts9vJgMlVHlsQEPRmB2u+/j+M4mWa9TmpGx2wRp4";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cache_accepts_only_the_same_password_and_hash() {
        let phc = crate::hash_password("right");
        assert!(!check_login("cache-u1", Some(&phc), b"wrong").await);
        assert!(check_login("cache-u1", Some(&phc), b"right").await);
        // From the cache now; a wrong password still fails.
        assert!(check_login("cache-u1", Some(&phc), b"right").await);
        assert!(!check_login("cache-u1", Some(&phc), b"wrong").await);
        // A password change (new PHC string) makes the old password fail at once.
        let new_phc = crate::hash_password("new");
        assert!(!check_login("cache-u1", Some(&new_phc), b"right").await);
        assert!(check_login("cache-u1", Some(&new_phc), b"new").await);
        // Another user with the same password is not served from this user's entry.
        assert!(!check_login("cache-u2", Some(&new_phc), b"right").await);
        assert!(!check_login("nobody", None, b"new").await);
    }

    #[tokio::test]
    async fn cached_login_is_fast() {
        let phc = crate::hash_password("pw");
        assert!(check_login("cache-u3", Some(&phc), b"pw").await);
        let t = Instant::now();
        for _ in 0..100 {
            assert!(check_login("cache-u3", Some(&phc), b"pw").await);
        }
        // 100 argon2 checks would take seconds; cached ones take microseconds each.
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn queue_is_fair_between_sources() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let phc = crate::hash_password("pw");
        let flood = Source::of("192.0.2.1".parse().unwrap());
        let other = Source::of("192.0.2.2".parse().unwrap());
        let done = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let (phc, done) = (phc.clone(), done.clone());
                tokio::spawn(async move {
                    let r = check_login_queued(
                        Some(flood),
                        usize::MAX,
                        false,
                        "fq-a",
                        Some(&phc),
                        b"no",
                    )
                    .await;
                    done.fetch_add(1, Ordering::SeqCst);
                    r
                })
            })
            .collect();
        // Counted in completed checks, not in time: a loaded test machine makes every hash
        // slower, not the order in which the queue serves them. Wait until most of the flood
        // is queued, then queue the other source's one check.
        let key = QueueKey::Source(flood);
        loop {
            let waiting = {
                let q = verifier().queue.lock().unwrap();
                q[0].waiting(&key) + q[1].waiting(&key)
            };
            if waiting + done.load(Ordering::SeqCst) >= 30 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let r = check_login_queued(Some(other), usize::MAX, false, "fq-b", Some(&phc), b"pw").await;
        let flood_done_before = done.load(Ordering::SeqCst);
        assert_eq!(r, Ok(true));
        for task in tasks {
            assert_eq!(task.await.unwrap(), Ok(false));
        }
        // Served after a few of the flood's 40 checks (round-robin: one of theirs per thread,
        // plus those already running or queued before the flood filled), not after all.
        assert!(flood_done_before <= 15, "{flood_done_before} of 40 before");
    }

    #[test]
    fn a_full_queue_is_a_temporary_failure_not_a_wrong_password() {
        // 5,000 logins at once (a restart's storm) fit: each session waits for one check.
        assert_eq!(admit(5_000, 0, usize::MAX), Ok(()));
        assert_eq!(admit(MAX_QUEUED - 1, 0, usize::MAX), Ok(()));
        assert_eq!(admit(MAX_QUEUED, 0, usize::MAX), Err(Refused::Full));
        // A full queue wins over the source's bound: the answer must not blame the password.
        assert_eq!(admit(MAX_QUEUED, 5, 2), Err(Refused::Full));
        assert_eq!(admit(10, 2, 2), Err(Refused::SourceBusy));
        assert_eq!(admit(10, 0, 0), Ok(()));
        assert_eq!(admit(10, 1, 0), Err(Refused::SourceBusy));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn queue_is_bounded_per_source() {
        let phc = crate::hash_password("pw");
        let src = Source::of("192.0.2.3".parse().unwrap());
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let phc = phc.clone();
                tokio::spawn(async move {
                    check_login_queued(Some(src), 2, true, "fq-c", Some(&phc), b"no").await
                })
            })
            .collect();
        let mut refused = 0;
        for task in tasks {
            match task.await.unwrap() {
                Err(Refused::SourceBusy) => refused += 1,
                r => assert_eq!(r, Ok(false)),
            }
        }
        assert!(refused >= 10, "{refused} of 20 refused");
        // hash_time_sample imitates a check: the same order as a real one.
        let d = hash_time_sample();
        assert!(
            d > Duration::from_micros(100) && d < Duration::from_secs(5),
            "{d:?}"
        );
    }

    #[test]
    fn dummy_hash_has_the_parameters_of_new_hashes() {
        use argon2::password_hash::PasswordHash;
        let fresh = crate::hash_password("x");
        let (a, b) = (
            PasswordHash::new(DUMMY_HASH).unwrap(),
            PasswordHash::new(&fresh).unwrap(),
        );
        assert_eq!(
            (a.algorithm, a.version, a.params.to_string()),
            (b.algorithm, b.version, b.params.to_string())
        );
        assert_eq!(a.hash.unwrap().len(), b.hash.unwrap().len());
    }
}
