//! The Redis queue: atomic Lua scripts over sorted sets and a hash per job.
//!
//! Keys, under the configured prefix (`app:` by default) + `jobs:`:
//! `ready` (due jobs, score `priority * 1e13 + run_at_ms`, so the best priority and
//! then the oldest come first), `delayed` (score `run_at_ms`), `leases` (running jobs,
//! score = lease deadline), `finished` (done and dead, score = when, for pruning),
//! `job:{id}` (a hash) and `unique:{key}` (the job holding a unique key).
//! Each operation is one script, so a claim, an ack or a hand-back is atomic; a claim
//! first moves due delayed jobs and expired leases back to `ready`.

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::Script;
use serde_json::Value;

use super::backend::{ClaimedJob, FailOutcome, JobRecord, JobStatus, NewJob, Priority, QueueBackend};
use super::JobError;

const ENQUEUE: &str = r"
local p = KEYS[1]
local id = ARGV[1]
if ARGV[9] ~= '' then
  local existing = redis.call('GET', p .. 'unique:' .. ARGV[9])
  if existing then return existing end
  redis.call('SET', p .. 'unique:' .. ARGV[9], id)
end
local h = p .. 'job:' .. id
redis.call('HSET', h, 'id', id, 'task', ARGV[2], 'payload', ARGV[3], 'status', 'pending', 'priority', ARGV[4],
  'run_at', ARGV[5], 'attempts', 0, 'max_attempts', ARGV[6], 'timeout_ms', ARGV[7],
  'created_at', ARGV[10], 'updated_at', ARGV[10])
if ARGV[8] ~= '' then redis.call('HSET', h, 'user_id', ARGV[8]) end
if ARGV[9] ~= '' then redis.call('HSET', h, 'unique_key', ARGV[9]) end
local run_at = tonumber(ARGV[5])
if run_at <= tonumber(ARGV[10]) then
  redis.call('ZADD', p .. 'ready', tonumber(ARGV[4]) * 1e13 + run_at, id)
else
  redis.call('ZADD', p .. 'delayed', run_at, id)
end
return id
";

const CLAIM: &str = r"
local p = KEYS[1]
local now = tonumber(ARGV[1])
local function requeue(id)
  local h = p .. 'job:' .. id
  local pr = tonumber(redis.call('HGET', h, 'priority') or '1')
  local ra = tonumber(redis.call('HGET', h, 'run_at') or '0')
  redis.call('ZADD', p .. 'ready', pr * 1e13 + ra, id)
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', p .. 'delayed', '-inf', now, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', p .. 'delayed', id)
  requeue(id)
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', p .. 'leases', '-inf', '(' .. now, 'LIMIT', 0, 1000)) do
  redis.call('ZREM', p .. 'leases', id)
  redis.call('HSET', p .. 'job:' .. id, 'status', 'pending')
  redis.call('HDEL', p .. 'job:' .. id, 'lease_token')
  requeue(id)
end
local n = tonumber(ARGV[2])
local out = {}
for i, id in ipairs(redis.call('ZRANGE', p .. 'ready', 0, n - 1)) do
  redis.call('ZREM', p .. 'ready', id)
  local h = p .. 'job:' .. id
  if redis.call('EXISTS', h) == 1 then
    redis.call('HSET', h, 'status', 'running', 'lease_token', ARGV[4 + i], 'worker_id', ARGV[4], 'updated_at', now)
    redis.call('HINCRBY', h, 'attempts', 1)
    redis.call('ZADD', p .. 'leases', now + tonumber(ARGV[3]), id)
    table.insert(out, redis.call('HGETALL', h))
  end
end
return out
";

/// Shared head of the ack scripts: the token must still hold the running job.
const HOLDS: &str = r"
local p = KEYS[1]
local id = ARGV[1]
local h = p .. 'job:' .. id
if redis.call('HGET', h, 'lease_token') ~= ARGV[2] or redis.call('HGET', h, 'status') ~= 'running' then
  return 0
end
local function finish(now)
  redis.call('ZADD', p .. 'finished', now, id)
  local uk = redis.call('HGET', h, 'unique_key')
  if uk and redis.call('GET', p .. 'unique:' .. uk) == id then redis.call('DEL', p .. 'unique:' .. uk) end
end
";

const COMPLETE: &str = r"
redis.call('HSET', h, 'status', 'done', 'result', ARGV[3], 'updated_at', ARGV[4])
redis.call('HDEL', h, 'lease_token', 'error')
redis.call('ZREM', p .. 'leases', id)
finish(ARGV[4])
return 1
";

const FAIL: &str = r"
redis.call('HDEL', h, 'lease_token')
redis.call('ZREM', p .. 'leases', id)
if ARGV[5] == 'retry' then
  redis.call('HSET', h, 'status', 'retry', 'error', ARGV[3], 'run_at', ARGV[6], 'updated_at', ARGV[4])
  redis.call('ZADD', p .. 'delayed', ARGV[6], id)
else
  redis.call('HSET', h, 'status', 'dead', 'error', ARGV[3], 'updated_at', ARGV[4])
  finish(ARGV[4])
end
return 1
";

const EXTEND: &str = r"
redis.call('ZADD', p .. 'leases', ARGV[3], id)
return 1
";

const RELEASE: &str = r"
redis.call('HDEL', h, 'lease_token')
redis.call('ZREM', p .. 'leases', id)
redis.call('HSET', h, 'status', 'pending', 'run_at', ARGV[3], 'updated_at', ARGV[3])
redis.call('HINCRBY', h, 'attempts', -1)
local pr = tonumber(redis.call('HGET', h, 'priority') or '1')
redis.call('ZADD', p .. 'ready', pr * 1e13 + tonumber(ARGV[3]), id)
return 1
";

const PRUNE: &str = r"
local p = KEYS[1]
local ids = redis.call('ZRANGEBYSCORE', p .. 'finished', '-inf', '(' .. ARGV[1], 'LIMIT', 0, 500)
for _, id in ipairs(ids) do
  redis.call('DEL', p .. 'job:' .. id)
  redis.call('ZREM', p .. 'finished', id)
end
return #ids
";

struct Scripts {
    enqueue: Script,
    claim: Script,
    complete: Script,
    fail: Script,
    extend: Script,
    release: Script,
    prune: Script,
}

/// The Redis queue engine (feature `redis`).
#[derive(Clone)]
pub struct RedisQueue {
    conn: ConnectionManager,
    prefix: String,
    scripts: std::sync::Arc<Scripts>,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

fn storage(e: redis::RedisError) -> JobError {
    JobError::Storage(e.to_string())
}

impl RedisQueue {
    /// Connects to `url`; keys go under `prefix` + `jobs:`.
    ///
    /// # Errors
    /// The URL is malformed or Redis cannot be reached.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, JobError> {
        let client = redis::Client::open(url).map_err(storage)?;
        let conn = ConnectionManager::new(client).await.map_err(storage)?;
        let acked = |body: &str| Script::new(&format!("{HOLDS}{body}"));
        Ok(Self {
            conn,
            prefix: format!("{prefix}jobs:"),
            scripts: std::sync::Arc::new(Scripts {
                enqueue: Script::new(ENQUEUE),
                claim: Script::new(CLAIM),
                complete: acked(COMPLETE),
                fail: acked(FAIL),
                extend: acked(EXTEND),
                release: acked(RELEASE),
                prune: Script::new(PRUNE),
            }),
        })
    }
}

fn record(h: &HashMap<String, String>) -> Result<JobRecord, JobError> {
    let s = |k: &str| h.get(k).cloned().unwrap_or_default();
    let n = |k: &str| h.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let json = |k: &str| h.get(k).map(|v| serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.clone())));
    let status = s("status");
    Ok(JobRecord {
        id: s("id"),
        task: s("task"),
        payload: json("payload").unwrap_or(Value::Null),
        status: JobStatus::parse(&status).ok_or_else(|| JobError::Storage(format!("unknown job status {status}")))?,
        priority: Priority::from_rank(n("priority")),
        attempts: u32::try_from(n("attempts")).unwrap_or(0),
        max_attempts: u32::try_from(n("max_attempts")).unwrap_or(1),
        timeout_ms: u64::try_from(n("timeout_ms")).unwrap_or(0),
        user_id: h.get("user_id").cloned(),
        run_at: n("run_at"),
        result: json("result"),
        error: h.get("error").cloned(),
        created_at: n("created_at"),
        updated_at: n("updated_at"),
    })
}

fn pairs(flat: Vec<String>) -> HashMap<String, String> {
    let mut it = flat.into_iter();
    let mut map = HashMap::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        map.insert(k, v);
    }
    map
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

#[async_trait::async_trait]
impl QueueBackend for RedisQueue {
    async fn enqueue(&self, job: NewJob) -> Result<String, JobError> {
        let mut conn = self.conn.clone();
        self.scripts
            .enqueue
            .key(&self.prefix)
            .arg(&job.id)
            .arg(&job.task)
            .arg(job.payload.to_string())
            .arg(job.priority.rank())
            .arg(job.run_at)
            .arg(job.max_attempts)
            .arg(job.timeout_ms)
            .arg(job.user_id.as_deref().unwrap_or(""))
            .arg(job.unique_key.as_deref().unwrap_or(""))
            .arg(job.now)
            .invoke_async(&mut conn)
            .await
            .map_err(storage)
    }

    async fn claim(&self, worker_id: &str, n: usize, lease: Duration, now: i64) -> Result<Vec<ClaimedJob>, JobError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let tokens: Vec<String> = (0..n).map(|_| uuid::Uuid::new_v4().simple().to_string()).collect();
        let mut conn = self.conn.clone();
        let mut inv = self.scripts.claim.key(&self.prefix);
        inv.arg(now).arg(n).arg(ms(lease)).arg(worker_id);
        for t in &tokens {
            inv.arg(t);
        }
        let rows: Vec<Vec<String>> = inv.invoke_async(&mut conn).await.map_err(storage)?;
        rows.into_iter()
            .map(|flat| {
                let h = pairs(flat);
                let token = h.get("lease_token").cloned().unwrap_or_default();
                Ok(ClaimedJob { job: record(&h)?, token })
            })
            .collect()
    }

    async fn complete(&self, id: &str, token: &str, result: &Value, now: i64) -> Result<bool, JobError> {
        let mut conn = self.conn.clone();
        let n: i64 = self
            .scripts
            .complete
            .key(&self.prefix)
            .arg(id)
            .arg(token)
            .arg(result.to_string())
            .arg(now)
            .invoke_async(&mut conn)
            .await
            .map_err(storage)?;
        Ok(n == 1)
    }

    async fn fail(&self, id: &str, token: &str, error: &str, outcome: FailOutcome, now: i64) -> Result<bool, JobError> {
        let (mode, at) = match outcome {
            FailOutcome::RetryAt(at) => ("retry", at),
            FailOutcome::Dead => ("dead", now),
        };
        let mut conn = self.conn.clone();
        let n: i64 = self
            .scripts
            .fail
            .key(&self.prefix)
            .arg(id)
            .arg(token)
            .arg(error)
            .arg(now)
            .arg(mode)
            .arg(at)
            .invoke_async(&mut conn)
            .await
            .map_err(storage)?;
        Ok(n == 1)
    }

    async fn extend(&self, id: &str, token: &str, lease: Duration, now: i64) -> Result<bool, JobError> {
        let mut conn = self.conn.clone();
        let n: i64 = self
            .scripts
            .extend
            .key(&self.prefix)
            .arg(id)
            .arg(token)
            .arg(now + ms(lease))
            .invoke_async(&mut conn)
            .await
            .map_err(storage)?;
        Ok(n == 1)
    }

    async fn release(&self, id: &str, token: &str, now: i64) -> Result<bool, JobError> {
        let mut conn = self.conn.clone();
        let n: i64 = self
            .scripts
            .release
            .key(&self.prefix)
            .arg(id)
            .arg(token)
            .arg(now)
            .invoke_async(&mut conn)
            .await
            .map_err(storage)?;
        Ok(n == 1)
    }

    async fn get(&self, id: &str) -> Result<Option<JobRecord>, JobError> {
        let mut conn = self.conn.clone();
        let h: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(format!("{}job:{id}", self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(storage)?;
        if h.is_empty() {
            return Ok(None);
        }
        record(&h).map(Some)
    }

    async fn prune(&self, before: i64) -> Result<u64, JobError> {
        let mut total = 0u64;
        loop {
            let mut conn = self.conn.clone();
            let n: u64 =
                self.scripts.prune.key(&self.prefix).arg(before).invoke_async(&mut conn).await.map_err(storage)?;
            total += n;
            if n < 500 {
                return Ok(total);
            }
        }
    }
}
