//! Password checks for logins: argon2id on a small dedicated pool, with a cache of recent
//! successful logins.
//!
//! Why a pool of its own: argon2id allocates 19 MiB per hash. Run on tokio's blocking pool
//! (up to 512 threads), every thread that ever hashed keeps that memory in its malloc arena:
//! we measured 18 MiB of RSS per idle connection that way. Two long-lived threads (one per core
//! of a small machine) bound it to 2 x 19 MiB for the whole process, and also bound how much CPU
//! password guessing can take from mail serving.
//!
//! Why a cache: phones and sync clients log in again and again with the same password (every
//! few minutes, and once per folder for some). Like Dovecot's `auth_cache`, a successful login
//! is remembered for [`CACHE_TTL`] as a keyed SHA-256 of the password (the key is random per
//! process), tied to the stored PHC string so a password change invalidates it at once. A failed
//! login always pays the full argon2 cost, so the cache does not help guessing.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rand::RngCore;
use sha2::{Digest, Sha256};

/// How long a successful login is remembered.
pub const CACHE_TTL: Duration = Duration::from_secs(3600);
/// Entries kept at most: a bound on memory whatever the number of users.
const CACHE_MAX: usize = 100_000;
/// Threads that run argon2.
const THREADS: usize = 2;

struct Entry {
    phc: String,
    mac: [u8; 32],
    at: Instant,
}

type Job = (String, Vec<u8>, tokio::sync::oneshot::Sender<bool>);

struct Verifier {
    key: [u8; 32],
    cache: Mutex<HashMap<String, Entry>>,
    jobs: Mutex<mpsc::Sender<Job>>,
}

fn verifier() -> &'static Verifier {
    static V: OnceLock<Verifier> = OnceLock::new();
    V.get_or_init(|| {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        for i in 0..THREADS {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    loop {
                        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok((phc, password, reply)) = job else {
                            return;
                        };
                        let _ = reply.send(crate::verify_password(&phc, &password));
                    }
                })
                .expect("spawning the password hashing threads");
        }
        Verifier {
            key,
            cache: Mutex::new(HashMap::new()),
            jobs: Mutex::new(tx),
        }
    })
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

/// Run argon2 verification on the pool.
async fn verify_on_pool(phc: &str, password: &[u8]) -> bool {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sent = verifier()
        .jobs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((phc.to_string(), password.to_vec(), tx));
    sent.is_ok() && rx.await.unwrap_or(false)
}

/// Check a login. `phc` is the user's stored hash, or `None` for an unknown user, which is
/// checked against a dummy hash so the answer takes as long as for a wrong password.
pub async fn check_login(user: &str, phc: Option<&str>, password: &[u8]) -> bool {
    let Some(phc) = phc else {
        verify_on_pool(dummy_hash(), password).await;
        return false;
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
            return true;
        }
    }
    if !verify_on_pool(phc, password).await {
        return false;
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
    true
}

fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| crate::hash_password("mailkeep-dummy-password"))
}

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
}
