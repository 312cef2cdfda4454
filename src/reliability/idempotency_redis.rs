//! The idempotency records' Redis store: every instance replays the same answers.
//!
//! One string per caller and key (`<prefix>idem:{<caller>}:<key>`) holding the
//! record as JSON and expiring with it, and per caller a sorted set of its record
//! names by the time they began (`<prefix>idem:{<caller>}`), which bounds the
//! records a caller holds. The braces keep a caller's keys in one Redis Cluster
//! slot. `begin` is one Lua script (read, or evict past the cap and create the
//! running record): of two instances receiving the same key at once, one starts
//! and the other sees it running.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::idempotency::{Begin, IdempotencyStore, Record, DEFAULT_MAX_KEYS_PER_CALLER};
use super::rate_limit_redis::store;
use super::ReliabilityError;
use crate::redis_conn::{millis, Keyspace};

/// KEYS[1] the record, KEYS[2] the caller's set; ARGV[1] the running record's
/// JSON, ARGV[2] its ttl in ms, ARGV[3] records per caller, ARGV[4] the done ttl
/// in ms (how long a member may be live). Returns the existing record's JSON, or
/// nil after creating the running one.
const BEGIN: &str = r"
local found = redis.call('GET', KEYS[1])
if found then return found end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[4]))
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3]) + 1
if extra > 0 then
  local old = redis.call('ZPOPMIN', KEYS[2], extra)
  for i = 1, #old, 2 do redis.call('DEL', old[i]) end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], now, KEYS[1])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return false
";

/// KEYS[1] the record, KEYS[2] the caller's set; ARGV[1] the record's JSON,
/// ARGV[2] its ttl in ms. Keeps the record only if it was not evicted meanwhile.
const FINISH: &str = r"
if redis.call('ZSCORE', KEYS[2], KEYS[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1
";

/// KEYS[1] the record, KEYS[2] the caller's set.
const FORGET: &str = r"
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], KEYS[1])
return 1
";

/// Records in Redis, shared by every instance of the service.
#[derive(Debug, Clone)]
pub struct RedisIdempotencyStore {
    keys: Keyspace,
    begin: Script,
    finish: Script,
    forget: Script,
    max_per_caller: usize,
    /// How long a caller's set member may be live: the longest done ttl seen.
    member_ttl: Duration,
}

impl RedisIdempotencyStore {
    /// Connects to `url`; keys start with `prefix` (the kernel's `redis.key_prefix`).
    /// A caller keeps [`DEFAULT_MAX_KEYS_PER_CALLER`] records at most.
    ///
    /// # Errors
    /// [`ReliabilityError::Store`] for a bad URL, or when Redis cannot be reached.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, ReliabilityError> {
        let keys = Keyspace::connect(url, prefix, "idem").await.map_err(store)?;
        Ok(Self {
            keys,
            begin: Script::new(BEGIN),
            finish: Script::new(FINISH),
            forget: Script::new(FORGET),
            max_per_caller: DEFAULT_MAX_KEYS_PER_CALLER,
            member_ttl: Duration::from_secs(24 * 3600),
        })
    }

    /// At most `n` records per caller.
    #[must_use]
    pub fn with_max_keys_per_caller(mut self, n: usize) -> Self {
        self.max_per_caller = n.max(1);
        self
    }

    /// The ttl of done records (default 24 h): how long a caller's set remembers one.
    #[must_use]
    pub fn with_record_ttl(mut self, ttl: Duration) -> Self {
        self.member_ttl = ttl;
        self
    }

    /// The record's name and its caller's set's name.
    fn names(&self, caller: &str, key: &str) -> (String, String) {
        let set = self.keys.key(&["{", caller, "}"].concat());
        ([set.as_str(), ":", key].concat(), set)
    }
}

#[async_trait]
impl IdempotencyStore for RedisIdempotencyStore {
    async fn begin(
        &self,
        caller: &str,
        key: &str,
        fingerprint: &str,
        running_ttl: Duration,
    ) -> Result<Begin, ReliabilityError> {
        let (record, set) = self.names(caller, key);
        let found: Option<String> = self
            .begin
            .key(&record)
            .key(set)
            .arg(Record::running(fingerprint).to_json()?)
            .arg(millis(running_ttl))
            .arg(self.max_per_caller)
            .arg(millis(self.member_ttl.max(running_ttl)))
            .invoke_async(&mut self.keys.conn())
            .await
            .map_err(store)?;
        let Some(found) = found else { return Ok(Begin::Started) };
        Ok(Record::from_json(&found)?.begin(fingerprint))
    }

    async fn finish(&self, caller: &str, key: &str, record: Record, ttl: Duration) -> Result<(), ReliabilityError> {
        let (name, set) = self.names(caller, key);
        let _: i64 = self
            .finish
            .key(name)
            .key(set)
            .arg(record.to_json()?)
            .arg(millis(ttl))
            .invoke_async(&mut self.keys.conn())
            .await
            .map_err(store)?;
        Ok(())
    }

    async fn forget(&self, caller: &str, key: &str) -> Result<(), ReliabilityError> {
        let (name, set) = self.names(caller, key);
        let _: i64 = self.forget.key(name).key(set).invoke_async(&mut self.keys.conn()).await.map_err(store)?;
        Ok(())
    }
}
