//! The stream leases' Redis store: every instance counts a user's streams together.
//!
//! One sorted set per user (`<prefix>streams:<user>`), a member per lease scored by
//! its expiry on the Redis server's clock (so instances with skewed clocks agree);
//! expired members are dropped on every call and the set expires with its last
//! lease. Each operation is one Lua script on one key: atomic, and safe on a Redis
//! Cluster.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::leases::LeaseStore;
use super::StreamError;
use crate::redis_conn::{millis, Keyspace};

/// Drops expired leases, then adds ARGV[1] if fewer than ARGV[2] remain.
/// KEYS[1] the user's set; ARGV[1] lease id; ARGV[2] max; ARGV[3] ttl ms. Returns 1 if taken.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

/// Extends a live lease. KEYS[1] the user's set; ARGV[1] lease id; ARGV[2] ttl ms.
/// Returns 1 if it was live.
const REFRESH: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expires or tonumber(expires) <= now then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
";

/// Leases in Redis, shared by every instance of the service.
#[derive(Debug, Clone)]
pub struct RedisLeaseStore {
    keys: Keyspace,
    acquire: Script,
    refresh: Script,
}

impl RedisLeaseStore {
    /// Connects to `url`; keys start with `prefix` (the kernel's `redis.key_prefix`).
    ///
    /// # Errors
    /// [`StreamError::Store`] for a bad URL, or when Redis cannot be reached.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StreamError> {
        let keys = Keyspace::connect(url, prefix, "streams").await.map_err(store)?;
        Ok(Self { keys, acquire: Script::new(ACQUIRE), refresh: Script::new(REFRESH) })
    }
}

fn store(e: redis::RedisError) -> StreamError {
    StreamError::Store(format!("redis: {e}"))
}

#[async_trait]
impl LeaseStore for RedisLeaseStore {
    async fn acquire(&self, user: &str, lease: &str, max: u32, ttl: Duration) -> Result<bool, StreamError> {
        let taken: i64 = self
            .acquire
            .key(self.keys.key(user))
            .arg(lease)
            .arg(max)
            .arg(millis(ttl))
            .invoke_async(&mut self.keys.conn())
            .await
            .map_err(store)?;
        Ok(taken == 1)
    }

    async fn refresh(&self, user: &str, lease: &str, ttl: Duration) -> Result<bool, StreamError> {
        let live: i64 = self
            .refresh
            .key(self.keys.key(user))
            .arg(lease)
            .arg(millis(ttl))
            .invoke_async(&mut self.keys.conn())
            .await
            .map_err(store)?;
        Ok(live == 1)
    }

    async fn release(&self, user: &str, lease: &str) -> Result<(), StreamError> {
        let _: i64 = redis::cmd("ZREM")
            .arg(self.keys.key(user))
            .arg(lease)
            .query_async(&mut self.keys.conn())
            .await
            .map_err(store)?;
        Ok(())
    }
}
