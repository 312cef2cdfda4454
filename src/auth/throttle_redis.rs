//! The login throttle's Redis backend: failure counts shared by every instance.
//!
//! One sorted set per key (`<prefix>login:<key>`), a member per failure scored by
//! the Redis server's own clock (so instances with skewed clocks agree), trimmed to
//! the window on every call and expiring with it. Each operation is one Lua script,
//! atomic and on one key, so it is safe on a Redis Cluster too.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::throttle::{LoginThrottleBackend, ThrottleRule};
use super::AuthError;
use crate::redis_conn::Keyspace;

/// Trims the window; returns how many milliseconds the key must still wait (0: none).
/// KEYS[1] key; ARGV[1] window ms; ARGV[2] max failures.
const BLOCKED_FOR: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local max = tonumber(ARGV[2])
if count < max then return 0 end
local freeing = redis.call('ZRANGE', KEYS[1], count - max, count - max, 'WITHSCORES')
local wait = tonumber(freeing[2]) + window - now
if wait < 1 then return 1 end
return wait
";

/// Records one failure. KEYS[1] key; ARGV[1] window ms; ARGV[2] a unique member suffix.
const RECORD: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]))
redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
";

/// Failure counts in Redis, shared by every instance of the service.
#[derive(Debug, Clone)]
pub struct RedisLoginThrottle {
    keys: Keyspace,
    blocked_for: Script,
    record: Script,
}

impl RedisLoginThrottle {
    /// Connects to `url`; keys start with `prefix` (the kernel's `redis.key_prefix`).
    ///
    /// # Errors
    /// [`AuthError::Config`] for a bad URL, [`AuthError::Internal`] when Redis cannot be reached.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, AuthError> {
        redis::parse_redis_url(url).ok_or_else(|| AuthError::Config("redis url: not a redis:// URL".into()))?;
        let keys = Keyspace::connect(url, prefix, "login").await.map_err(unreachable)?;
        Ok(Self { keys, blocked_for: Script::new(BLOCKED_FOR), record: Script::new(RECORD) })
    }
}

fn unreachable(e: redis::RedisError) -> AuthError {
    AuthError::Internal(format!("login throttle: redis: {e}"))
}

fn window_ms(rule: ThrottleRule) -> u64 {
    u64::try_from(rule.window.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl LoginThrottleBackend for RedisLoginThrottle {
    async fn blocked_for(&self, key: &str, rule: ThrottleRule) -> Result<Option<Duration>, AuthError> {
        let wait_ms: u64 = self
            .blocked_for
            .key(self.keys.key(key))
            .arg(window_ms(rule))
            .arg(rule.max_failures)
            .invoke_async(&mut self.keys.conn())
            .await
            .map_err(unreachable)?;
        Ok((wait_ms > 0).then(|| Duration::from_millis(wait_ms)))
    }

    async fn record_failure(&self, key: &str, rule: ThrottleRule) -> Result<(), AuthError> {
        let member = uuid::Uuid::new_v4().simple().to_string();
        let _: i64 = self
            .record
            .key(self.keys.key(key))
            .arg(window_ms(rule))
            .arg(member)
            .invoke_async(&mut self.keys.conn())
            .await
            .map_err(unreachable)?;
        Ok(())
    }

    async fn clear(&self, key: &str) -> Result<(), AuthError> {
        let _: i64 =
            redis::cmd("DEL").arg(self.keys.key(key)).query_async(&mut self.keys.conn()).await.map_err(unreachable)?;
        Ok(())
    }
}
