//! The Lua scripts of the Redis queue: each operation is one script, so it is atomic.
//!
//! Ack scripts (`FAIL`, `EXTEND`, `RELEASE`) run after `HOLDS`, which returns 0 unless
//! the caller's token still holds the running job; `COMPLETE_MANY` makes the same test
//! for each job of its batch.

/// Enqueues a batch: ARGV holds 11 values per job (the 11th, the job's
/// `traceparent`, may be empty). Publishes one wake-up
/// on `wake` when any job is due now.
pub(super) const ENQUEUE: &str = r"
local p = KEYS[1]
local out = {}
local due = false
for i = 1, #ARGV, 11 do
  local id, uk, now = ARGV[i], ARGV[i + 8], tonumber(ARGV[i + 9])
  local existing = uk ~= '' and redis.call('GET', p .. 'unique:' .. uk)
  if existing then
    table.insert(out, existing)
  else
    if uk ~= '' then redis.call('SET', p .. 'unique:' .. uk, id) end
    local h = p .. 'job:' .. id
    redis.call('HSET', h, 'id', id, 'task', ARGV[i + 1], 'payload', ARGV[i + 2], 'status', 'pending',
      'priority', ARGV[i + 3], 'run_at', ARGV[i + 4], 'attempts', 0, 'max_attempts', ARGV[i + 5],
      'timeout_ms', ARGV[i + 6], 'created_at', now, 'updated_at', now)
    if ARGV[i + 7] ~= '' then redis.call('HSET', h, 'user_id', ARGV[i + 7]) end
    if uk ~= '' then redis.call('HSET', h, 'unique_key', uk) end
    if ARGV[i + 10] ~= '' then redis.call('HSET', h, 'trace_parent', ARGV[i + 10]) end
    redis.call('ZADD', p .. 'ids', 0, id) -- the jobs view's index (see admin.rs)
    local run_at = tonumber(ARGV[i + 4])
    if run_at <= now then
      redis.call('ZADD', p .. 'ready', tonumber(ARGV[i + 3]) * 1e13 + run_at, id)
      due = true
    else
      redis.call('ZADD', p .. 'delayed', run_at, id)
    end
    table.insert(out, id)
  end
end
if due then redis.call('PUBLISH', p .. 'wake', '1') end
return out
";

/// Jobs per `ENQUEUE` call of `enqueue_many`, so one script never blocks Redis long.
pub(super) const ENQUEUE_BATCH: usize = 500;

pub(super) const CLAIM: &str = r"
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
pub(super) const HOLDS: &str = r"
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

/// Marks a batch done: ARGV is `now` then (id, token, result) per job; returns 1 or 0
/// per job, 0 when its token no longer holds it (the `HOLDS` test, per job).
pub(super) const COMPLETE_MANY: &str = r"
local p = KEYS[1]
local now = ARGV[1]
local out = {}
for i = 2, #ARGV, 3 do
  local id = ARGV[i]
  local h = p .. 'job:' .. id
  if redis.call('HGET', h, 'lease_token') ~= ARGV[i + 1] or redis.call('HGET', h, 'status') ~= 'running' then
    table.insert(out, 0)
  else
    redis.call('HSET', h, 'status', 'done', 'result', ARGV[i + 2], 'updated_at', now)
    redis.call('HDEL', h, 'lease_token', 'error')
    redis.call('ZREM', p .. 'leases', id)
    redis.call('ZADD', p .. 'finished', now, id)
    local uk = redis.call('HGET', h, 'unique_key')
    if uk and redis.call('GET', p .. 'unique:' .. uk) == id then redis.call('DEL', p .. 'unique:' .. uk) end
    table.insert(out, 1)
  end
end
return out
";

pub(super) const FAIL: &str = r"
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

pub(super) const EXTEND: &str = r"
redis.call('ZADD', p .. 'leases', ARGV[3], id)
return 1
";

pub(super) const RELEASE: &str = r"
redis.call('HDEL', h, 'lease_token')
redis.call('ZREM', p .. 'leases', id)
redis.call('HSET', h, 'status', 'pending', 'run_at', ARGV[3], 'updated_at', ARGV[3])
redis.call('HINCRBY', h, 'attempts', -1)
local pr = tonumber(redis.call('HGET', h, 'priority') or '1')
redis.call('ZADD', p .. 'ready', pr * 1e13 + tonumber(ARGV[3]), id)
redis.call('PUBLISH', p .. 'wake', '1')
return 1
";

pub(super) const PRUNE: &str = r"
local p = KEYS[1]
local ids = redis.call('ZRANGEBYSCORE', p .. 'finished', '-inf', '(' .. ARGV[1], 'LIMIT', 0, 500)
for _, id in ipairs(ids) do
  redis.call('DEL', p .. 'job:' .. id)
  redis.call('ZREM', p .. 'finished', id)
  redis.call('ZREM', p .. 'ids', id)
end
return #ids
";
