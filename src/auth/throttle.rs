//! The login throttle: too many failed logins from one client address, or for one
//! username from one address, and further attempts are refused with 429 and
//! `Retry-After` before any password is checked.
//!
//! A sliding window: by default 5 failures per username from one address and 20 per
//! address within 15 minutes. Keying the username limit by address means a stranger
//! elsewhere cannot lock a user out; an attacker with many addresses gets 5 guesses per
//! address per username (and 20 per address in all) every 15 minutes.
//!
//! Every attempt is *reserved* before the password is verified, in one atomic step
//! over both keys ([`LoginThrottle::begin`]): it counts as a failure from the start,
//! so parallel attempts cannot all pass a check made before any of them failed. A
//! success takes its reservation back and clears the username's failures from that
//! address (not the address's others, so an attacker cannot reset their count with
//! an account of their own); a failure, or an attempt that never finished, stays
//! counted. Logins are counted under [`login_key`](super::username::login_key)
//! (NFKC, lowercase), as the user table compares them. IPv6 addresses count per /64.
//!
//! [`LoginThrottle`] is the façade; the state lives behind [`LoginThrottleBackend`]:
//! [`MemoryLoginThrottle`] in process (bounded: expired entries are pruned and the
//! number of tracked keys is capped), a Redis backend when instances must share it.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::AuthError;

/// Login throttle settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginThrottleSettings {
    /// Throttle failed logins at all (default true).
    pub enabled: bool,
    /// Failures per username from one client address within `window` before
    /// logins for it from there are refused (default 5).
    pub max_failures_per_username: u32,
    /// Failures per client address within `window` (default 20).
    pub max_failures_per_ip: u32,
    /// The sliding window (default 15 minutes).
    pub window: Duration,
    /// The most keys the in-process backend tracks (default 100 000).
    pub max_tracked_keys: usize,
}

impl Default for LoginThrottleSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            max_failures_per_username: 5,
            max_failures_per_ip: 20,
            window: Duration::from_secs(15 * 60),
            max_tracked_keys: 100_000,
        }
    }
}

/// How many failures a key may have within a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRule {
    /// Failures allowed within `window`; the next attempt is refused (at least 1).
    pub max_failures: u32,
    /// The sliding window.
    pub window: Duration,
}

/// Where attempts are counted. Implementations must be safe to share across tasks.
#[async_trait]
pub trait LoginThrottleBackend: Send + Sync + std::fmt::Debug {
    /// In one atomic step: if every key is under its rule, counts the attempt `id`
    /// under each and answers `None`; else counts nothing and answers the longest
    /// wait. The keys of one attempt share their `{...}` part (one Redis Cluster slot).
    async fn reserve(&self, keys: &[(String, ThrottleRule)], id: &str) -> Result<Option<Duration>, AuthError>;
    /// Takes the attempt `id` back from `keys` (it succeeded: it was no failure).
    async fn release(&self, keys: &[String], id: &str) -> Result<(), AuthError>;
    /// Forgets `key`'s attempts.
    async fn clear(&self, key: &str) -> Result<(), AuthError>;
}

/// The login throttle façade. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    settings: LoginThrottleSettings,
    backend: Arc<dyn LoginThrottleBackend>,
}

/// A reserved login attempt: counted as a failure unless
/// [`LoginThrottle::succeeded`] takes it back.
#[derive(Debug)]
#[must_use = "an attempt is a failure unless `LoginThrottle::succeeded` is called"]
pub struct LoginAttempt {
    keys: Vec<String>,
    id: String,
}

impl LoginThrottle {
    /// A throttle with the in-process backend.
    pub fn new(settings: LoginThrottleSettings) -> Self {
        let backend = Arc::new(MemoryLoginThrottle::new(settings.max_tracked_keys));
        Self { settings, backend }
    }

    /// A throttle over another backend (Redis, for several instances).
    pub fn with_backend(settings: LoginThrottleSettings, backend: Arc<dyn LoginThrottleBackend>) -> Self {
        Self { settings, backend }
    }

    fn rules(&self, ip: Option<IpAddr>, login: &str) -> [(String, ThrottleRule); 2] {
        let window = self.settings.window;
        let address = ip.map_or_else(|| "unknown".to_owned(), crate::client_addr::bucket);
        let per_user = self.settings.max_failures_per_username.max(1);
        let per_ip = self.settings.max_failures_per_ip.max(1);
        [
            (format!("{{{address}}}:ip"), ThrottleRule { max_failures: per_ip, window }),
            (
                format!("{{{address}}}:user:{}", super::username::login_key(login)),
                ThrottleRule { max_failures: per_user, window },
            ),
        ]
    }

    /// Reserves a login attempt for `login` from `ip`, before its password is checked.
    ///
    /// # Errors
    /// [`AuthError::Throttled`] with the longest wait (nothing is counted then); a
    /// backend's error.
    pub async fn begin(&self, ip: Option<IpAddr>, login: &str) -> Result<LoginAttempt, AuthError> {
        if !self.settings.enabled {
            return Ok(LoginAttempt { keys: Vec::new(), id: String::new() });
        }
        let rules = self.rules(ip, login);
        let id = uuid::Uuid::new_v4().simple().to_string();
        match self.backend.reserve(&rules, &id).await? {
            None => Ok(LoginAttempt { keys: rules.into_iter().map(|(key, _)| key).collect(), id }),
            Some(wait) => Err(AuthError::Throttled { retry_after: wait.as_secs_f64().ceil().max(1.0) as u64 }),
        }
    }

    /// The attempt was not made (the password could not be checked): it is taken
    /// back, and nothing else changes.
    ///
    /// # Errors
    /// A backend's error.
    pub async fn abandoned(&self, attempt: LoginAttempt) -> Result<(), AuthError> {
        if attempt.keys.is_empty() {
            return Ok(());
        }
        self.backend.release(&attempt.keys, &attempt.id).await
    }

    /// The attempt succeeded: it is taken back, and the username's failures from
    /// that address are forgotten (the address's others are not).
    ///
    /// # Errors
    /// A backend's error.
    pub async fn succeeded(&self, attempt: LoginAttempt) -> Result<(), AuthError> {
        if attempt.keys.is_empty() {
            return Ok(());
        }
        self.backend.release(&attempt.keys, &attempt.id).await?;
        match attempt.keys.last() {
            Some(user_key) => self.backend.clear(user_key).await,
            None => Ok(()),
        }
    }
}

/// The in-process backend: a sliding window of attempt times per key.
#[derive(Debug)]
pub struct MemoryLoginThrottle {
    max_keys: usize,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    window: Duration,
    attempts: VecDeque<(Instant, String)>,
}

impl Entry {
    fn expire(&mut self, now: Instant) {
        while self.attempts.front().is_some_and(|(t, _)| now.duration_since(*t) >= self.window) {
            self.attempts.pop_front();
        }
    }
}

impl MemoryLoginThrottle {
    /// A backend that tracks at most `max_keys` keys.
    pub fn new(max_keys: usize) -> Self {
        Self { max_keys: max_keys.max(1), entries: Mutex::new(HashMap::new()) }
    }

    /// How many keys are tracked now.
    pub fn tracked_keys(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn reserve_at(&self, keys: &[(String, ThrottleRule)], id: &str, now: Instant) -> Option<Duration> {
        let mut entries = self.lock();
        let mut wait = Duration::ZERO;
        for (key, rule) in keys {
            let Some(entry) = entries.get_mut(key) else { continue };
            entry.window = rule.window;
            entry.expire(now);
            let max = rule.max_failures.max(1) as usize;
            if entry.attempts.len() >= max {
                let freeing = entry.attempts[entry.attempts.len() - max].0;
                wait = wait.max(rule.window.saturating_sub(now.duration_since(freeing)).max(Duration::from_millis(1)));
            }
        }
        if !wait.is_zero() {
            return Some(wait);
        }
        for (key, rule) in keys {
            if !entries.contains_key(key) && entries.len() >= self.max_keys {
                Self::make_room(&mut entries, now, self.max_keys);
            }
            let entry =
                entries.entry(key.clone()).or_insert_with(|| Entry { window: rule.window, attempts: VecDeque::new() });
            entry.attempts.push_back((now, id.to_owned()));
            // Only the latest `max_failures` times decide when the key is free again.
            while entry.attempts.len() > rule.max_failures.max(1) as usize {
                entry.attempts.pop_front();
            }
        }
        None
    }

    fn make_room(entries: &mut HashMap<String, Entry>, now: Instant, max_keys: usize) {
        entries.retain(|_, e| {
            e.expire(now);
            !e.attempts.is_empty()
        });
        if entries.len() >= max_keys {
            let stalest =
                entries.iter().min_by_key(|(_, e)| e.attempts.back().map(|(t, _)| *t)).map(|(k, _)| k.clone());
            if let Some(k) = stalest {
                entries.remove(&k);
            }
        }
    }

    fn release_now(&self, keys: &[String], id: &str) {
        let mut entries = self.lock();
        for key in keys {
            if let Some(entry) = entries.get_mut(key) {
                entry.attempts.retain(|(_, a)| a != id);
                if entry.attempts.is_empty() {
                    entries.remove(key);
                }
            }
        }
    }
}

#[async_trait]
impl LoginThrottleBackend for MemoryLoginThrottle {
    async fn reserve(&self, keys: &[(String, ThrottleRule)], id: &str) -> Result<Option<Duration>, AuthError> {
        Ok(self.reserve_at(keys, id, Instant::now()))
    }

    async fn release(&self, keys: &[String], id: &str) -> Result<(), AuthError> {
        self.release_now(keys, id);
        Ok(())
    }

    async fn clear(&self, key: &str) -> Result<(), AuthError> {
        self.lock().remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: ThrottleRule = ThrottleRule { max_failures: 3, window: Duration::from_secs(60) };

    fn one(key: &str) -> Vec<(String, ThrottleRule)> {
        vec![(key.to_owned(), RULE)]
    }

    #[test]
    fn sliding_window_blocks_then_frees() {
        let memory = MemoryLoginThrottle::new(10);
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(memory.reserve_at(&one("k"), &format!("{i}"), t0 + Duration::from_secs(i * 10)), None);
        }
        assert_eq!(memory.reserve_at(&one("k"), "x", t0 + Duration::from_secs(25)), Some(Duration::from_secs(35)));
        assert_eq!(memory.reserve_at(&one("k"), "y", t0 + Duration::from_secs(60)), None, "oldest slid out");
    }

    #[test]
    fn a_refused_reservation_counts_nothing_and_a_release_takes_one_back() {
        let memory = MemoryLoginThrottle::new(10);
        let t0 = Instant::now();
        let both = vec![("a".to_owned(), RULE), ("b".to_owned(), ThrottleRule { max_failures: 1, ..RULE })];
        assert_eq!(memory.reserve_at(&both, "1", t0), None);
        assert!(memory.reserve_at(&both, "2", t0).is_some(), "b is full");
        assert_eq!(memory.lock()["a"].attempts.len(), 1, "the refused attempt left a alone");
        memory.release_now(&["a".to_owned(), "b".to_owned()], "1");
        assert_eq!(memory.reserve_at(&both, "3", t0), None, "released");
    }

    #[test]
    fn memory_is_bounded() {
        let memory = MemoryLoginThrottle::new(2);
        let t0 = Instant::now();
        memory.reserve_at(&one("a"), "1", t0);
        memory.reserve_at(&one("b"), "2", t0 + Duration::from_secs(1));
        memory.reserve_at(&one("c"), "3", t0 + Duration::from_secs(2));
        assert_eq!(memory.tracked_keys(), 2);
        assert!(!memory.lock().contains_key("a"), "the stalest key went");
        memory.reserve_at(&one("d"), "4", t0 + Duration::from_secs(120));
        assert_eq!(memory.tracked_keys(), 1, "expired keys are pruned");
    }

    #[tokio::test]
    async fn per_address_and_username_limits_and_success_reset() {
        let settings =
            LoginThrottleSettings { max_failures_per_username: 2, max_failures_per_ip: 3, ..Default::default() };
        let throttle = LoginThrottle::new(settings);
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let other: IpAddr = "203.0.113.10".parse().unwrap();
        drop(throttle.begin(Some(ip), "Ann").await.unwrap());
        drop(throttle.begin(Some(ip), " ａｎｎ ").await.unwrap());
        let Err(AuthError::Throttled { retry_after }) = throttle.begin(Some(ip), "ANN").await else { panic!() };
        assert!((899..=900).contains(&retry_after), "{retry_after}");
        let elsewhere = throttle.begin(Some(other), "ann").await.expect("another address is not locked out");
        throttle.succeeded(elsewhere).await.unwrap();
        drop(throttle.begin(Some(ip), "bob").await.unwrap());
        assert!(throttle.begin(Some(ip), "carol").await.is_err(), "the address is over its limit");
    }

    #[test]
    fn ipv6_counts_per_64() {
        let throttle = LoginThrottle::new(LoginThrottleSettings::default());
        let key = |ip: &str| throttle.rules(Some(ip.parse().unwrap()), "x")[0].0.clone();
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::2"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.1"), "{192.0.2.1}:ip");
    }
}
