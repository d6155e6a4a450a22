//! Connections per account, and per account from one address, counted over the server's IMAP
//! sessions ([`mailkeep_session::gate::LoginGate`]): one account cannot take every slot, and a
//! misconfigured client opening connection after connection is refused at login.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use mailkeep_session::gate::{LoginGate, LoginGuard};

#[derive(Default)]
struct Counts {
    per_user: HashMap<String, usize>,
    per_user_ip: HashMap<(String, IpAddr), usize>,
}

/// The counts, shared by every session; 0 in a limit means none.
pub struct UserLimits {
    max_per_user: usize,
    max_per_user_ip: usize,
    counts: Arc<Mutex<Counts>>,
}

impl UserLimits {
    pub fn new(max_per_user: usize, max_per_user_ip: usize) -> UserLimits {
        UserLimits {
            max_per_user,
            max_per_user_ip,
            counts: Arc::default(),
        }
    }
}

/// Gives the place back when the session ends.
struct Held {
    user: String,
    ip: IpAddr,
    counts: Arc<Mutex<Counts>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (std::mem::take(&mut self.user), self.ip);
        if let Some(n) = c.per_user_ip.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                c.per_user_ip.remove(&key);
            }
        }
        if let Some(n) = c.per_user.get_mut(&key.0) {
            *n -= 1;
            if *n == 0 {
                c.per_user.remove(&key.0);
            }
        }
    }
}

impl LoginGate for UserLimits {
    fn admit(&self, user: &str, ip: IpAddr) -> Result<LoginGuard, String> {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (user.to_string(), ip);
        let from_ip = c.per_user_ip.get(&key).copied().unwrap_or(0);
        if self.max_per_user_ip > 0 && from_ip >= self.max_per_user_ip {
            return Err(format!(
                "Too many connections of this account from your address (max_connections_per_user_ip={}).",
                self.max_per_user_ip
            ));
        }
        let all = c.per_user.get(user).copied().unwrap_or(0);
        if self.max_per_user > 0 && all >= self.max_per_user {
            return Err(format!(
                "Too many connections of this account (max_connections_per_user={}).",
                self.max_per_user
            ));
        }
        *c.per_user_ip.entry(key).or_default() += 1;
        *c.per_user.entry(user.to_string()).or_default() += 1;
        drop(c);
        Ok(LoginGuard::new(Held {
            user: user.to_string(),
            ip,
            counts: self.counts.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_account_and_address_and_frees_on_drop() {
        let limits = UserLimits::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let g1 = limits.admit("alice", a).unwrap();
        let _g2 = limits.admit("alice", a).unwrap();
        let err = limits.admit("alice", a).err().unwrap();
        assert!(err.contains("max_connections_per_user_ip=2"), "{err}");
        let _g3 = limits.admit("alice", b).unwrap();
        let err = limits.admit("alice", b).err().unwrap();
        assert!(err.contains("max_connections_per_user=3"), "{err}");
        // Other accounts are not affected.
        let _bob = limits.admit("bob", a).unwrap();
        drop(g1);
        let _g4 = limits.admit("alice", a).unwrap();
        drop(_g4);
        drop(_g2);
        drop(_g3);
        let c = limits.counts.lock().unwrap();
        assert_eq!(c.per_user.get("alice"), None);
        assert_eq!(c.per_user_ip.len(), 1); // bob's
    }

    #[test]
    fn zero_means_no_limit() {
        let limits = UserLimits::new(0, 0);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let guards: Vec<_> = (0..1000).map(|_| limits.admit("a", ip).unwrap()).collect();
        assert_eq!(guards.len(), 1000);
    }
}
