//! The idempotency records' Redis store: every instance replays the same answers.
//!
//! One string per caller and key (`<prefix>idem:<caller>:<key>`) holding the record
//! as JSON and expiring with it. `begin` is one Lua script (read, or create the
//! running record): of two instances receiving the same key at once, one starts
//! and the other sees it running.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;

use super::idempotency::{Begin, IdempotencyStore, Record};
use super::rate_limit_redis::store;
use super::ReliabilityError;
use crate::redis_conn::{millis, Keyspace};

/// KEYS[1] the record; ARGV[1] the running record's JSON; ARGV[2] its ttl in ms.
/// Returns the existing record's JSON, or nil after creating the running one.
const BEGIN: &str = r"
local found = redis.call('GET', KEYS[1])
if found then return found end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
";

/// Records in Redis, shared by every instance of the service.
#[derive(Debug, Clone)]
pub struct RedisIdempotencyStore {
    keys: Keyspace,
    begin: Script,
}

impl RedisIdempotencyStore {
    /// Connects to `url`; keys start with `prefix` (the kernel's `redis.key_prefix`).
    ///
    /// # Errors
    /// [`ReliabilityError::Store`] for a bad URL, or when Redis cannot be reached.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, ReliabilityError> {
        let keys = Keyspace::connect(url, prefix, "idem").await.map_err(store)?;
        Ok(Self { keys, begin: Script::new(BEGIN) })
    }
}

fn json(record: &Record) -> Result<String, ReliabilityError> {
    serde_json::to_string(record).map_err(|e| ReliabilityError::Store(format!("idempotency record: {e}")))
}

#[async_trait]
impl IdempotencyStore for RedisIdempotencyStore {
    async fn begin(&self, key: &str, fingerprint: &str, running_ttl: Duration) -> Result<Begin, ReliabilityError> {
        let running = json(&Record { fingerprint: fingerprint.to_owned(), response: None })?;
        let found: Option<String> = self
            .begin
            .key(self.keys.key(key))
            .arg(running)
            .arg(millis(running_ttl))
            .invoke_async(&mut self.keys.conn())
            .await
            .map_err(store)?;
        let Some(found) = found else { return Ok(Begin::Started) };
        let record: Record = serde_json::from_str(&found)
            .map_err(|e| ReliabilityError::Store(format!("idempotency record {key}: {e}")))?;
        Ok(record.begin(fingerprint))
    }

    async fn finish(&self, key: &str, record: Record, ttl: Duration) -> Result<(), ReliabilityError> {
        let _: () = redis::cmd("SET")
            .arg(self.keys.key(key))
            .arg(json(&record)?)
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut self.keys.conn())
            .await
            .map_err(store)?;
        Ok(())
    }

    async fn forget(&self, key: &str) -> Result<(), ReliabilityError> {
        let _: i64 =
            redis::cmd("DEL").arg(self.keys.key(key)).query_async(&mut self.keys.conn()).await.map_err(store)?;
        Ok(())
    }
}
