//! The admins' jobs view on the Redis queue: list, retry, cancel, each one script.
//!
//! Listing reads `ids` (every stored job's id, score 0) newest first with
//! `ZREVRANGEBYLEX` (UUID v7 ids sort by creation) and keeps the jobs that match the
//! filter. One call examines at most [`SCAN_BUDGET`] ids, so a filter that matches
//! few jobs among many costs bounded time per page; such a page may hold fewer jobs
//! than asked and still name a next one. Jobs stored before `ids` existed (by an
//! older kernel) are not listed; `get` still reads them. Retry and cancel test the
//! job's status inside their script, so a claim (another script) cannot interleave.

use std::sync::LazyLock;

use redis::Script;

use super::{pairs, record, storage, RedisQueue};
use crate::jobs::admin::{JobChange, JobFilter, JobPage};
use crate::jobs::backend::JobStatus;
use crate::jobs::JobError;

/// The most ids one list call examines.
const SCAN_BUDGET: usize = 2000;

/// ARGV: before ('' for the newest), page size, status (''), task (''), budget.
/// Returns `{next or '', {job hash, ...}}`.
static LIST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p = KEYS[1]
local size, status, task, budget = tonumber(ARGV[2]), ARGV[3], ARGV[4], tonumber(ARGV[5])
local max = '+'
if ARGV[1] ~= '' then max = '(' .. ARGV[1] end
local out, scanned, last = {}, 0, ''
while scanned < budget do
  local ids = redis.call('ZREVRANGEBYLEX', p .. 'ids', max, '-', 'LIMIT', 0, 100)
  if #ids == 0 then return {'', out} end
  for _, id in ipairs(ids) do
    scanned = scanned + 1
    last = id
    local h = p .. 'job:' .. id
    local found = redis.call('HMGET', h, 'status', 'task')
    if found[1] and (status == '' or found[1] == status) and (task == '' or found[2] == task) then
      table.insert(out, redis.call('HGETALL', h))
      if #out == size then
        if #redis.call('ZREVRANGEBYLEX', p .. 'ids', '(' .. id, '-', 'LIMIT', 0, 1) == 0 then return {'', out} end
        return {id, out}
      end
    end
  end
  max = '(' .. last
end
return {last, out}
",
    )
});

/// ARGV: id, now. Returns `ok`, `missing`, or the status that refused the change.
pub(super) static RETRY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p, id, now = KEYS[1], ARGV[1], ARGV[2]
local h = p .. 'job:' .. id
local st = redis.call('HGET', h, 'status')
if not st then return 'missing' end
if st ~= 'retry' and st ~= 'dead' then return st end
redis.call('ZREM', p .. 'delayed', id)
redis.call('ZREM', p .. 'finished', id)
local attempts = tonumber(redis.call('HGET', h, 'attempts') or '0')
if tonumber(redis.call('HGET', h, 'max_attempts') or '1') <= attempts then
  redis.call('HSET', h, 'max_attempts', attempts + 1)
end
redis.call('HSET', h, 'status', 'pending', 'run_at', now, 'updated_at', now)
local pr = tonumber(redis.call('HGET', h, 'priority') or '1')
redis.call('ZADD', p .. 'ready', pr * 1e13 + tonumber(now), id)
redis.call('PUBLISH', p .. 'wake', '1')
return 'ok'
",
    )
});

/// ARGV: id, now. Returns `ok`, `missing`, or the status that refused the change.
pub(super) static CANCEL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p, id, now = KEYS[1], ARGV[1], ARGV[2]
local h = p .. 'job:' .. id
local st = redis.call('HGET', h, 'status')
if not st then return 'missing' end
if st ~= 'pending' and st ~= 'retry' then return st end
redis.call('ZREM', p .. 'ready', id)
redis.call('ZREM', p .. 'delayed', id)
redis.call('HSET', h, 'status', 'cancelled', 'updated_at', now)
redis.call('ZADD', p .. 'finished', now, id)
local uk = redis.call('HGET', h, 'unique_key')
if uk and redis.call('GET', p .. 'unique:' .. uk) == id then redis.call('DEL', p .. 'unique:' .. uk) end
return 'ok'
",
    )
});

impl RedisQueue {
    /// A page of jobs (see `QueueBackend::list_jobs`).
    pub(super) async fn list_page(&self, filter: &JobFilter) -> Result<JobPage, JobError> {
        let mut conn = self.conn.clone();
        let (next, rows): (String, Vec<Vec<String>>) = LIST
            .key(&self.prefix)
            .arg(filter.before.as_deref().unwrap_or(""))
            .arg(filter.page_size())
            .arg(filter.status.map(JobStatus::as_str).unwrap_or(""))
            .arg(filter.task.as_deref().unwrap_or(""))
            .arg(SCAN_BUDGET)
            .invoke_async(&mut conn)
            .await
            .map_err(storage)?;
        let jobs = rows.into_iter().map(|flat| record(&pairs(flat))).collect::<Result<Vec<_>, _>>()?;
        Ok(JobPage { jobs, next: (!next.is_empty()).then_some(next) })
    }

    /// Runs the retry or cancel `script` on job `id`.
    pub(super) async fn admin_change(&self, script: &Script, id: &str, now: i64) -> Result<JobChange, JobError> {
        let mut conn = self.conn.clone();
        let answer: String =
            script.key(&self.prefix).arg(id).arg(now).invoke_async(&mut conn).await.map_err(storage)?;
        Ok(match answer.as_str() {
            "ok" => JobChange::Changed,
            "missing" => JobChange::NotFound,
            other => JobChange::Refused(
                JobStatus::parse(other).ok_or_else(|| JobError::Storage(format!("unknown job status {other}")))?,
            ),
        })
    }
}
