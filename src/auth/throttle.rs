//! The login throttle: after too many failed logins for one username, or from one
//! client address, further attempts are refused with 429 and `Retry-After`.
//!
//! A sliding window: by default 5 failures per username and 20 per address within
//! 15 minutes. A success clears the username's failures (not the address's, so an
//! attacker cannot reset their count with an account of their own). IPv6 addresses
//! count per /64, the block one host usually holds. [`LoginThrottle`] is the façade;
//! the state lives behind [`LoginThrottleBackend`]: [`MemoryLoginThrottle`] in
//! process (bounded: expired entries are pruned and the number of tracked keys is
//! capped), a Redis backend when instances must share it.

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
    /// Failures per username within `window` before logins for it are refused (default 5).
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
    /// Failures allowed within `window`; the next attempt is refused.
    pub max_failures: u32,
    /// The sliding window.
    pub window: Duration,
}

/// Where failure counts live. Implementations must be safe to share across tasks.
#[async_trait]
pub trait LoginThrottleBackend: Send + Sync + std::fmt::Debug {
    /// How long `key` must still wait, or `None` if it may try now.
    async fn blocked_for(&self, key: &str, rule: ThrottleRule) -> Result<Option<Duration>, AuthError>;
    /// Counts one failure for `key`.
    async fn record_failure(&self, key: &str, rule: ThrottleRule) -> Result<(), AuthError>;
    /// Forgets `key`'s failures.
    async fn clear(&self, key: &str) -> Result<(), AuthError>;
}

/// The login throttle façade. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LoginThrottle {
    settings: LoginThrottleSettings,
    backend: Arc<dyn LoginThrottleBackend>,
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

    fn rules(&self, ip: Option<IpAddr>, username: &str) -> Vec<(String, ThrottleRule)> {
        let window = self.settings.window;
        let mut keys = vec![(
            username_key(username),
            ThrottleRule { max_failures: self.settings.max_failures_per_username, window },
        )];
        if let Some(ip) = ip {
            keys.push((ip_key(ip), ThrottleRule { max_failures: self.settings.max_failures_per_ip, window }));
        }
        keys
    }

    /// Refuses the attempt if the username or the address is throttled.
    ///
    /// # Errors
    /// [`AuthError::Throttled`] with the longest wait; a backend's error.
    pub async fn check(&self, ip: Option<IpAddr>, username: &str) -> Result<(), AuthError> {
        if !self.settings.enabled {
            return Ok(());
        }
        let mut wait = Duration::ZERO;
        for (key, rule) in self.rules(ip, username) {
            wait = wait.max(self.backend.blocked_for(&key, rule).await?.unwrap_or_default());
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(AuthError::Throttled { retry_after: wait.as_secs_f64().ceil() as u64 })
        }
    }

    /// Counts a failed login for the username and the address.
    ///
    /// # Errors
    /// A backend's error.
    pub async fn record_failure(&self, ip: Option<IpAddr>, username: &str) -> Result<(), AuthError> {
        if !self.settings.enabled {
            return Ok(());
        }
        for (key, rule) in self.rules(ip, username) {
            self.backend.record_failure(&key, rule).await?;
        }
        Ok(())
    }

    /// A successful login: forgets the username's failures.
    ///
    /// # Errors
    /// A backend's error.
    pub async fn record_success(&self, username: &str) -> Result<(), AuthError> {
        self.backend.clear(&username_key(username)).await
    }
}

fn username_key(username: &str) -> String {
    format!("login:user:{}", username.trim().to_lowercase())
}

fn ip_key(ip: IpAddr) -> String {
    format!("login:ip:{}", crate::client_addr::bucket(ip))
}

/// The in-process backend: a sliding window of failure times per key.
#[derive(Debug)]
pub struct MemoryLoginThrottle {
    max_keys: usize,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    window: Duration,
    failures: VecDeque<Instant>,
}

impl Entry {
    fn expire(&mut self, now: Instant) {
        while self.failures.front().is_some_and(|t| now.duration_since(*t) >= self.window) {
            self.failures.pop_front();
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

    fn blocked_at(&self, key: &str, rule: ThrottleRule, now: Instant) -> Option<Duration> {
        let mut entries = self.lock();
        let entry = entries.get_mut(key)?;
        entry.expire(now);
        if entry.failures.len() < rule.max_failures as usize {
            return None;
        }
        let oldest = entry.failures.front()?;
        Some(rule.window.saturating_sub(now.duration_since(*oldest)))
    }

    fn record_at(&self, key: &str, rule: ThrottleRule, now: Instant) {
        let mut entries = self.lock();
        if !entries.contains_key(key) && entries.len() >= self.max_keys {
            entries.retain(|_, e| {
                e.expire(now);
                !e.failures.is_empty()
            });
            if entries.len() >= self.max_keys {
                let stalest = entries.iter().min_by_key(|(_, e)| e.failures.back().copied()).map(|(k, _)| k.clone());
                if let Some(k) = stalest {
                    entries.remove(&k);
                }
            }
        }
        let entry =
            entries.entry(key.to_owned()).or_insert_with(|| Entry { window: rule.window, failures: VecDeque::new() });
        entry.window = rule.window;
        entry.expire(now);
        entry.failures.push_back(now);
        // Only the latest `max_failures` times decide when the key is free again.
        while entry.failures.len() > rule.max_failures.max(1) as usize {
            entry.failures.pop_front();
        }
    }
}

#[async_trait]
impl LoginThrottleBackend for MemoryLoginThrottle {
    async fn blocked_for(&self, key: &str, rule: ThrottleRule) -> Result<Option<Duration>, AuthError> {
        Ok(self.blocked_at(key, rule, Instant::now()))
    }

    async fn record_failure(&self, key: &str, rule: ThrottleRule) -> Result<(), AuthError> {
        self.record_at(key, rule, Instant::now());
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

    #[test]
    fn sliding_window_blocks_then_frees() {
        let memory = MemoryLoginThrottle::new(10);
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(memory.blocked_at("k", RULE, t0 + Duration::from_secs(i * 10)), None);
            memory.record_at("k", RULE, t0 + Duration::from_secs(i * 10));
        }
        assert_eq!(memory.blocked_at("k", RULE, t0 + Duration::from_secs(25)), Some(Duration::from_secs(35)));
        assert_eq!(memory.blocked_at("k", RULE, t0 + Duration::from_secs(60)), None, "oldest failure slid out");
    }

    #[test]
    fn memory_is_bounded() {
        let memory = MemoryLoginThrottle::new(2);
        let t0 = Instant::now();
        memory.record_at("a", RULE, t0);
        memory.record_at("b", RULE, t0 + Duration::from_secs(1));
        memory.record_at("c", RULE, t0 + Duration::from_secs(2));
        assert_eq!(memory.tracked_keys(), 2);
        assert!(!memory.lock().contains_key("a"), "the stalest key went");
        memory.record_at("d", RULE, t0 + Duration::from_secs(120));
        assert_eq!(memory.tracked_keys(), 1, "expired keys are pruned");
    }

    #[tokio::test]
    async fn username_and_ip_limits_and_success_reset() {
        let settings =
            LoginThrottleSettings { max_failures_per_username: 2, max_failures_per_ip: 3, ..Default::default() };
        let throttle = LoginThrottle::new(settings);
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        throttle.record_failure(Some(ip), "Ann").await.unwrap();
        throttle.record_failure(Some(ip), " ann ").await.unwrap();
        let Err(AuthError::Throttled { retry_after }) = throttle.check(Some(ip), "ANN").await else { panic!() };
        assert!((899..=900).contains(&retry_after), "{retry_after}");
        throttle.record_success("ann").await.unwrap();
        assert_eq!(throttle.check(Some(ip), "ann").await, Ok(()));
        throttle.record_failure(Some(ip), "bob").await.unwrap();
        assert!(throttle.check(Some(ip), "carol").await.is_err(), "the address is over its limit");
        assert_eq!(throttle.check(Some("203.0.113.10".parse().unwrap()), "carol").await, Ok(()));
    }

    #[test]
    fn ipv6_counts_per_64() {
        let a = ip_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        assert_eq!(a, ip_key("2001:db8:1:2:bbbb::2".parse().unwrap()));
        assert_ne!(a, ip_key("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(ip_key("::ffff:192.0.2.1".parse().unwrap()), "login:ip:192.0.2.1");
    }
}
