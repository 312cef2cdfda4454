//! The rate limit's Redis store: request counts shared by every instance.
//!
//! One counter per caller (`<prefix>ratelimit:<caller>`) that expires with its
//! window. Each hit is one Lua script on one key: atomic, so instances never lose a
//! count between them, and safe on a Redis Cluster.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::rate_limit::{RateLimitStore, WindowCount};
use super::ReliabilityError;
use crate::redis_conn::Keyspace;

/// Counts one request; returns {count, ms until the window ends}.
/// KEYS[1] the caller's counter; ARGV[1] the window in ms.
const HIT: &str = r"
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
";

/// Request counts in Redis, shared by every instance of the service.
#[derive(Debug, Clone)]
pub struct RedisRateLimitStore {
    keys: Keyspace,
    hit: Script,
}

impl RedisRateLimitStore {
    /// Connects to `url`; keys start with `prefix` (the kernel's `redis.key_prefix`).
    ///
    /// # Errors
    /// [`ReliabilityError::Store`] for a bad URL, or when Redis cannot be reached.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, ReliabilityError> {
        let keys = Keyspace::connect(url, prefix, "ratelimit").await.map_err(store)?;
        Ok(Self { keys, hit: Script::new(HIT) })
    }
}

pub(super) fn store(e: redis::RedisError) -> ReliabilityError {
    ReliabilityError::Store(format!("redis: {e}"))
}

#[async_trait]
impl RateLimitStore for RedisRateLimitStore {
    async fn hit(&self, key: &str, window: Duration) -> Result<WindowCount, ReliabilityError> {
        let (count, ttl_ms): (u64, u64) = self
            .hit
            .key(self.keys.key(key))
            .arg(crate::redis_conn::millis(window))
            .invoke_async(&mut self.keys.conn())
            .await
            .map_err(store)?;
        Ok(WindowCount { count, resets_in: Duration::from_millis(ttl_ms) })
    }
}
