//! The API rate limit: `rate_limit_requests` per `rate_limit_window` for each caller
//! (its user id when it is authenticated, else its address), counted in fixed windows
//! that start with the caller's first request.
//!
//! [`RateLimiter`] is the façade the middleware calls; the counts live behind
//! [`RateLimitStore`]: [`MemoryRateLimitStore`] in process (bounded: expired windows
//! are pruned and the number of tracked callers is capped), a Redis store when
//! instances must share them.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::ReliabilityError;

/// A caller's window after one more request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    /// Requests counted in the window, this one included.
    pub count: u64,
    /// How long until the window ends and the count starts over.
    pub resets_in: Duration,
}

/// Where request counts live. Implementations must be safe to share across tasks.
#[async_trait]
pub trait RateLimitStore: Send + Sync + std::fmt::Debug {
    /// Counts one request for `key` in its current window (a new one of length
    /// `window` if it has none) and says where the window stands.
    async fn hit(&self, key: &str, window: Duration) -> Result<WindowCount, ReliabilityError>;
}

/// What the limiter decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    /// Whether the request may go on.
    pub allowed: bool,
    /// Requests allowed per window.
    pub limit: u32,
    /// Requests left in the window after this one.
    pub remaining: u32,
    /// Whole seconds until the window starts over (at least 1).
    pub reset_secs: u64,
}

/// The rate limit façade. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    store: Arc<dyn RateLimitStore>,
}

impl RateLimiter {
    /// `limit` requests per `window` for each caller, counted in `store`.
    pub fn new(limit: u32, window: Duration, store: Arc<dyn RateLimitStore>) -> Self {
        Self { limit, window, store }
    }

    /// Requests allowed per window.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Counts a request of `caller` (a user id or an address bucket, already
    /// prefixed by its kind) and decides.
    ///
    /// # Errors
    /// The store could not be asked.
    pub async fn check(&self, caller: &str) -> Result<RateDecision, ReliabilityError> {
        let WindowCount { count, resets_in } = self.store.hit(caller, self.window).await?;
        let used = u32::try_from(count).unwrap_or(u32::MAX);
        Ok(RateDecision {
            allowed: used <= self.limit,
            limit: self.limit,
            remaining: self.limit.saturating_sub(used),
            reset_secs: resets_in.as_secs_f64().ceil().max(1.0) as u64,
        })
    }
}

const SHARDS: usize = 16;

/// The in-process store: one counter per caller, in shards so that requests of
/// different callers rarely wait for each other.
#[derive(Debug)]
pub struct MemoryRateLimitStore {
    shards: Vec<Mutex<HashMap<String, (Instant, u64)>>>,
    per_shard: usize,
    hasher: std::collections::hash_map::RandomState,
}

impl MemoryRateLimitStore {
    /// A store that tracks `max_callers` callers at most (their windows expire and
    /// are pruned; past the cap the oldest window is dropped, as if it had ended).
    pub fn new(max_callers: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: max_callers.div_ceil(SHARDS).max(1),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn shard(&self, key: &str) -> &Mutex<HashMap<String, (Instant, u64)>> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }
}

impl Default for MemoryRateLimitStore {
    fn default() -> Self {
        Self::new(100_000)
    }
}

#[async_trait]
impl RateLimitStore for MemoryRateLimitStore {
    async fn hit(&self, key: &str, window: Duration) -> Result<WindowCount, ReliabilityError> {
        let now = Instant::now();
        let mut shard = self.shard(key).lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((start, count)) = shard.get_mut(key) {
            if now.duration_since(*start) < window {
                *count += 1;
                return Ok(WindowCount { count: *count, resets_in: window - now.duration_since(*start) });
            }
            (*start, *count) = (now, 1);
            return Ok(WindowCount { count: 1, resets_in: window });
        }
        if shard.len() >= self.per_shard {
            shard.retain(|_, (start, _)| now.duration_since(*start) < window);
            if shard.len() >= self.per_shard {
                let oldest = shard.iter().min_by_key(|(_, (start, _))| *start).map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    shard.remove(&oldest);
                }
            }
        }
        shard.insert(key.to_owned(), (now, 1));
        Ok(WindowCount { count: 1, resets_in: window })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(limit: u32, window: Duration) -> RateLimiter {
        RateLimiter::new(limit, window, Arc::new(MemoryRateLimitStore::default()))
    }

    #[tokio::test]
    async fn counts_down_then_refuses_until_the_window_ends() {
        let l = limiter(3, Duration::from_secs(1));
        let mut remaining = Vec::new();
        for _ in 0..4 {
            let d = l.check("user:a").await.unwrap();
            remaining.push((d.allowed, d.remaining));
        }
        assert_eq!(remaining, [(true, 2), (true, 1), (true, 0), (false, 0)]);
        assert!(l.check("user:b").await.unwrap().allowed, "another caller has its own window");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let d = l.check("user:a").await.unwrap();
        assert_eq!((d.allowed, d.remaining), (true, 2), "a new window");
    }

    #[tokio::test]
    async fn reset_is_in_whole_seconds_and_never_zero() {
        let l = limiter(1, Duration::from_millis(1500));
        assert_eq!(l.check("k").await.unwrap().reset_secs, 2);
        let l = limiter(1, Duration::from_millis(10));
        assert_eq!(l.check("k").await.unwrap().reset_secs, 1);
    }

    #[tokio::test]
    async fn the_store_tracks_a_bounded_number_of_callers() {
        let store = MemoryRateLimitStore::new(SHARDS * 2);
        for i in 0..1000 {
            store.hit(&format!("ip:{i}"), Duration::from_secs(60)).await.unwrap();
        }
        let tracked: usize = store.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(tracked <= SHARDS * 2, "{tracked} callers tracked");
    }
}
