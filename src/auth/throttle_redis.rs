//! The login throttle's Redis backend: failure counts shared by every instance.
//!
//! One sorted set per key (`<prefix>login:{<address>}:ip`, `...:user:<login>`), a member per attempt
//! scored by the Redis server's own clock (so instances with skewed clocks agree),
//! trimmed to the window on every call and expiring with it. A reservation is one
//! Lua script over the attempt's two keys, so parallel attempts cannot both take the
//! last place; the keys share their `{address}` hash tag, so the script is safe on a
//! Redis Cluster too.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::throttle::{LoginThrottleBackend, ThrottleRule};
use super::AuthError;
use crate::redis_conn::Keyspace;

/// Reserves one attempt on every key, or none. KEYS: the attempt's keys; ARGV[1]
/// the attempt id, then per key its window ms and max failures. Returns how many
/// milliseconds to wait (0: reserved).
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[2 * i])
  local max = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count >= max then
    local freeing = redis.call('ZRANGE', key, count - max, count - max, 'WITHSCORES')
    local w = tonumber(freeing[2]) + window - now
    if w < 1 then w = 1 end
    if w > wait then wait = w end
  end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, ARGV[2 * i])
end
return 0
";

/// Takes the attempt ARGV[1] back from every key.
const RELEASE: &str = r"
for _, key in ipairs(KEYS) do
  redis.call('ZREM', key, ARGV[1])
end
return 1
";

/// Failure counts in Redis, shared by every instance of the service.
#[derive(Debug, Clone)]
pub struct RedisLoginThrottle {
    keys: Keyspace,
    reserve: Script,
    release: Script,
}

impl RedisLoginThrottle {
    /// Connects to `url`; keys start with `prefix` (the kernel's `redis.key_prefix`).
    ///
    /// # Errors
    /// [`AuthError::Config`] for a bad URL, [`AuthError::Internal`] when Redis cannot be reached.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, AuthError> {
        redis::parse_redis_url(url).ok_or_else(|| AuthError::Config("redis url: not a redis:// URL".into()))?;
        let keys = Keyspace::connect(url, prefix, "login").await.map_err(unreachable)?;
        Ok(Self { keys, reserve: Script::new(RESERVE), release: Script::new(RELEASE) })
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
    async fn reserve(&self, keys: &[(String, ThrottleRule)], id: &str) -> Result<Option<Duration>, AuthError> {
        let mut invocation = self.reserve.prepare_invoke();
        invocation.arg(id);
        for (key, rule) in keys {
            invocation.key(self.keys.key(key)).arg(window_ms(*rule)).arg(rule.max_failures.max(1));
        }
        let wait_ms: u64 = invocation.invoke_async(&mut self.keys.conn()).await.map_err(unreachable)?;
        Ok((wait_ms > 0).then(|| Duration::from_millis(wait_ms)))
    }

    async fn release(&self, keys: &[String], id: &str) -> Result<(), AuthError> {
        let mut invocation = self.release.prepare_invoke();
        invocation.arg(id);
        for key in keys {
            invocation.key(self.keys.key(key));
        }
        let _: i64 = invocation.invoke_async(&mut self.keys.conn()).await.map_err(unreachable)?;
        Ok(())
    }

    async fn clear(&self, key: &str) -> Result<(), AuthError> {
        let _: i64 =
            redis::cmd("DEL").arg(self.keys.key(key)).query_async(&mut self.keys.conn()).await.map_err(unreachable)?;
        Ok(())
    }
}
