//! The Redis queue: atomic Lua scripts over sorted sets and a hash per job.
//!
//! Keys, under the configured prefix (`app:` by default) + `jobs:`:
//! `ready` (due jobs, score `priority * 1e13 + run_at_ms`, so the best priority and
//! then the oldest come first), `delayed` (score `run_at_ms`), `leases` (running jobs,
//! score = lease deadline), `finished` (done, dead and cancelled, score = when, for pruning),
//! `job:{id}` (a hash), `unique:{key}` (the job holding a unique key) and `ids` (every
//! stored job's id, score 0, read in lexicographic order by the jobs view: `admin.rs`).
//! Each operation is one script, so a claim, an ack or a hand-back is atomic; a claim
//! first moves due delayed jobs and expired leases back to `ready`. Enqueues of due jobs
//! and hand-backs publish on channel `wake`, which idle workers subscribe to, so they
//! start a new job without waiting for their next poll.
//!
//! The connection sits behind the breaker of `redis_conn`: with Redis down, a command
//! fails within `QUEUE_RESPONSE_TIMEOUT` and then at once (503 `jobs_unavailable` for
//! an enqueue) until a probe finds Redis back; a worker's claims fail the same way and
//! it polls again. A command cut off by the time limit may still have run on a Redis
//! that was only slow: a caller that retries an enqueue after a 503 should give it a
//! `unique_key` to be sure of one job.

use std::collections::HashMap;
use std::time::Duration;

use redis::Script;
use serde_json::Value;
use tokio::sync::watch;

use super::backend::{ClaimedJob, FailOutcome, JobRecord, JobStatus, NewJob, Priority, QueueBackend, QueueDepth};
use super::JobError;

mod admin;
mod scripts;
mod wake;

use scripts::{CLAIM, COMPLETE_MANY, ENQUEUE, ENQUEUE_BATCH, EXTEND, FAIL, HOLDS, PRUNE, RELEASE};

struct Scripts {
    enqueue: Script,
    claim: Script,
    complete_many: Script,
    fail: Script,
    extend: Script,
    release: Script,
    prune: Script,
}

/// The Redis queue engine (feature `redis`).
#[derive(Clone)]
pub struct RedisQueue {
    client: redis::Client,
    conn: crate::redis_conn::GuardedConn,
    prefix: String,
    scripts: std::sync::Arc<Scripts>,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// A failure to reach Redis is [`JobError::Unavailable`] (503), any other a storage error.
fn storage(e: redis::RedisError) -> JobError {
    if crate::redis_conn::unreachable(&e) {
        return JobError::Unavailable(e.to_string());
    }
    JobError::Storage(e.to_string())
}

impl RedisQueue {
    /// Connects to `url`; keys go under `prefix` + `jobs:`.
    ///
    /// # Errors
    /// The URL is malformed or Redis cannot be reached.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, JobError> {
        let client = crate::redis_conn::client(url).map_err(storage)?;
        let timeout = crate::redis_conn::QUEUE_RESPONSE_TIMEOUT;
        let conn = crate::redis_conn::GuardedConn::connect(url, "jobs", timeout).await.map_err(storage)?;
        let acked = |body: &str| Script::new(&format!("{HOLDS}{body}"));
        Ok(Self {
            client,
            conn,
            prefix: format!("{prefix}jobs:"),
            scripts: std::sync::Arc::new(Scripts {
                enqueue: Script::new(ENQUEUE),
                claim: Script::new(CLAIM),
                complete_many: Script::new(COMPLETE_MANY),
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
        trace_parent: h.get("trace_parent").cloned(),
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
        let mut ids = self.enqueue_many(vec![job]).await?;
        ids.pop().ok_or_else(|| JobError::Storage("enqueue script returned no id".into()))
    }

    async fn enqueue_many(&self, jobs: Vec<NewJob>) -> Result<Vec<String>, JobError> {
        let mut ids = Vec::with_capacity(jobs.len());
        for chunk in jobs.chunks(ENQUEUE_BATCH) {
            let mut inv = self.scripts.enqueue.key(&self.prefix);
            for job in chunk {
                inv.arg(&job.id)
                    .arg(&job.task)
                    .arg(job.payload.to_string())
                    .arg(job.priority.rank())
                    .arg(job.run_at)
                    .arg(job.max_attempts)
                    .arg(job.timeout_ms)
                    .arg(job.user_id.as_deref().unwrap_or(""))
                    .arg(job.unique_key.as_deref().unwrap_or(""))
                    .arg(job.now)
                    .arg(job.trace_parent.as_deref().unwrap_or(""));
            }
            let mut conn = self.conn.clone();
            let batch: Vec<String> = inv.invoke_async(&mut conn).await.map_err(storage)?;
            ids.extend(batch);
        }
        Ok(ids)
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
        Ok(self.complete_many(&[(id, token, result)], now).await?.first() == Some(&true))
    }

    async fn complete_many(&self, acks: &[(&str, &str, &Value)], now: i64) -> Result<Vec<bool>, JobError> {
        let mut inv = self.scripts.complete_many.key(&self.prefix);
        inv.arg(now);
        for (id, token, result) in acks {
            inv.arg(*id).arg(*token).arg(result.to_string());
        }
        let mut conn = self.conn.clone();
        let done: Vec<i64> = inv.invoke_async(&mut conn).await.map_err(storage)?;
        Ok(done.into_iter().map(|n| n == 1).collect())
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

    fn wakeups(&self) -> Option<watch::Receiver<u64>> {
        let (tx, rx) = watch::channel(0);
        tokio::spawn(wake::listen(self.client.clone(), format!("{}wake", self.prefix), tx));
        Some(rx)
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

    async fn list_jobs(&self, filter: &super::JobFilter) -> Result<super::JobPage, JobError> {
        self.list_page(filter).await
    }

    async fn retry_job(&self, id: &str, now: i64) -> Result<super::JobChange, JobError> {
        self.admin_change(&admin::RETRY, id, now).await
    }

    async fn cancel_job(&self, id: &str, now: i64) -> Result<super::JobChange, JobError> {
        self.admin_change(&admin::CANCEL, id, now).await
    }

    /// Four counts of sorted sets in one atomic pipeline, each O(log n): `ready` and
    /// the due part of `delayed` (a claim moves those to `ready`) are due, the rest of
    /// `delayed` is scheduled, `leases` are running.
    async fn queue_depth(&self, now: i64) -> Result<QueueDepth, JobError> {
        let p = &self.prefix;
        let mut conn = self.conn.clone();
        let (ready, due_delayed, scheduled, running): (u64, u64, u64, u64) = redis::pipe()
            .atomic()
            .zcard(format!("{p}ready"))
            .zcount(format!("{p}delayed"), "-inf", now)
            .zcount(format!("{p}delayed"), format!("({now}"), "+inf")
            .zcard(format!("{p}leases"))
            .query_async(&mut conn)
            .await
            .map_err(storage)?;
        Ok(QueueDepth { due: ready + due_delayed, scheduled, running })
    }
}
