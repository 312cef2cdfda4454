//! A short-lived cache of who a user id is (role, active flag, token version), so an
//! authenticated request does not read the user table every time.
//!
//! An entry lives `ttl` (default [`DEFAULT_TTL`]; zero turns the cache off). There
//! is one cache per database handle (every `UserStore` of the same `Db` shares it),
//! so this instance forgets a user at once when any of its stores deactivates them
//! or changes their role; another instance of the service notices within `ttl`.
//! The cache is bounded: past [`MAX_ENTRIES`] it starts over.

use crate::FastMap as HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::UserIdentity;

/// How long a looked-up identity is trusted by default.
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(2);
/// The most identities held at once.
pub(crate) const MAX_ENTRIES: usize = 10_000;

/// An identity, its token version, and when they were read.
type Entry = (Arc<UserIdentity>, u64, Instant);

#[derive(Debug)]
pub(crate) struct IdentityCache {
    ttl_ms: AtomicU64,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Default for IdentityCache {
    fn default() -> Self {
        Self::new(DEFAULT_TTL)
    }
}

impl IdentityCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        let cache = Self { ttl_ms: AtomicU64::new(0), entries: Mutex::default() };
        cache.set_ttl(ttl);
        cache
    }

    /// Sets how long entries live (the service's `identity_cache_ttl`).
    pub(crate) fn set_ttl(&self, ttl: Duration) {
        self.ttl_ms.store(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
        if ttl.is_zero() {
            self.lock().clear();
        }
    }

    fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms.load(Ordering::Relaxed))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The identity of an active user and their token version, if looked up less
    /// than `ttl` ago.
    pub(crate) fn get(&self, user_id: &str) -> Option<(Arc<UserIdentity>, u64)> {
        let ttl = self.ttl();
        if ttl.is_zero() {
            return None;
        }
        let entries = self.lock();
        let (identity, version, at) = entries.get(user_id)?;
        (at.elapsed() < ttl).then(|| (Arc::clone(identity), *version))
    }

    /// Remembers an active user's identity and token version.
    pub(crate) fn put(&self, identity: &Arc<UserIdentity>, version: u64) {
        if self.ttl().is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(identity.id.clone(), (Arc::clone(identity), version, Instant::now()));
    }

    /// Forgets `user_id` (deactivated, role changed).
    pub(crate) fn forget(&self, user_id: &str) {
        self.lock().remove(user_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann() -> Arc<UserIdentity> {
        Arc::new(UserIdentity { id: "u1".into(), username: "ann".into(), email: None, role: "user".into() })
    }

    #[test]
    fn holds_for_ttl_and_forgets_on_demand() {
        let cache = IdentityCache::new(Duration::from_millis(50));
        assert!(cache.get("u1").is_none());
        cache.put(&ann(), 4);
        assert_eq!(cache.get("u1").map(|(i, v)| (i.username.clone(), v)), Some(("ann".into(), 4)));
        cache.forget("u1");
        assert!(cache.get("u1").is_none());
        cache.put(&ann(), 0);
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get("u1").is_none(), "expired");
    }

    #[test]
    fn zero_ttl_is_off() {
        let cache = IdentityCache::new(Duration::ZERO);
        cache.put(&ann(), 0);
        assert!(cache.get("u1").is_none());
    }
}
