//! The queue engine trait: the one lifecycle every engine implements.

use std::time::Duration;

use serde_json::Value;

use super::JobError;

/// How soon a job runs relative to others that are due.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Before everything else that is due.
    High,
    /// The default.
    #[default]
    Normal,
    /// After everything else that is due.
    Low,
}

impl Priority {
    /// The rank stored by the engines (0 runs first).
    pub fn rank(self) -> i64 {
        match self {
            Self::High => 0,
            Self::Normal => 1,
            Self::Low => 2,
        }
    }

    /// The priority of a stored rank.
    pub fn from_rank(rank: i64) -> Self {
        match rank {
            i64::MIN..=0 => Self::High,
            1 => Self::Normal,
            _ => Self::Low,
        }
    }
}

/// Where a job is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Waiting to run (possibly not before `run_at`).
    Pending,
    /// Claimed by a worker under a lease.
    Running,
    /// Failed, waiting for its next attempt at `run_at`.
    Retry,
    /// Finished successfully; `result` holds what the task returned.
    Done,
    /// Failed `max_attempts` times; `error` holds the last error.
    Dead,
    /// Cancelled by an admin before it ran (see [`QueueBackend::cancel_job`]); never runs.
    Cancelled,
}

impl JobStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Retry => "retry",
            Self::Done => "done",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "running" => Self::Running,
            "retry" => Self::Retry,
            "done" => Self::Done,
            "dead" => Self::Dead,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

/// A job to store, as the client prepared it.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Its id (UUID v7).
    pub id: String,
    /// The registered task name.
    pub task: String,
    /// The task's input.
    pub payload: Value,
    /// Its priority.
    pub priority: Priority,
    /// Not before this time (Unix ms).
    pub run_at: i64,
    /// Attempts before it is dead.
    pub max_attempts: u32,
    /// Time limit of one attempt, in ms.
    pub timeout_ms: u64,
    /// The user it runs for.
    pub user_id: Option<String>,
    /// At most one unfinished job per key.
    pub unique_key: Option<String>,
    /// Now (Unix ms).
    pub now: i64,
    /// The W3C `traceparent` of the span that enqueued it (a request's), which the
    /// worker continues; `None` outside a trace.
    pub trace_parent: Option<String>,
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobRecord {
    /// Its id.
    pub id: String,
    /// The task name.
    pub task: String,
    /// The task's input.
    pub payload: Value,
    /// Where it is in its lifecycle.
    pub status: JobStatus,
    /// Its priority.
    pub priority: Priority,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts before it is dead.
    pub max_attempts: u32,
    /// Time limit of one attempt, in ms.
    pub timeout_ms: u64,
    /// The user it runs for.
    pub user_id: Option<String>,
    /// Next run not before (Unix ms).
    pub run_at: i64,
    /// What the task returned (when done).
    pub result: Option<Value>,
    /// The last error (after a failure).
    pub error: Option<String>,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Last changed (Unix ms).
    pub updated_at: i64,
    /// The W3C `traceparent` stored at enqueue (see [`NewJob::trace_parent`]).
    pub trace_parent: Option<String>,
}

/// A job a worker claimed: the record and the lease token that proves the claim.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    /// The job (status `running`, `attempts` counts this attempt).
    pub job: JobRecord,
    /// The claim's token; acks with another token are refused.
    pub token: String,
}

/// What becomes of a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Run again, not before this time (Unix ms).
    RetryAt(i64),
    /// Give up: the job is dead.
    Dead,
}

/// The unfinished jobs of a queue, by where they wait. Pending and retrying jobs are
/// `due` once their `run_at` has come and `scheduled` before; finished jobs (done,
/// dead) are not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Pending or retrying jobs whose `run_at` has come: the backlog workers drain.
    pub due: u64,
    /// Pending or retrying jobs whose `run_at` is still ahead (delayed jobs, retries
    /// in their backoff).
    pub scheduled: u64,
    /// Jobs claimed by a worker (an expired lease included, until it is claimed again).
    pub running: u64,
}

impl QueueDepth {
    /// The counts as `(state, count)` pairs, the `state` label's values.
    pub fn by_state(self) -> [(&'static str, u64); 3] {
        [("due", self.due), ("scheduled", self.scheduled), ("running", self.running)]
    }
}

/// A queue engine. Every engine passes the same contract suite (`tests/jobs_contract.rs`).
///
/// Lifecycle: `pending` -> `running` (under a lease) -> `done` | `retry` -> ... | `dead`;
/// an admin may retry a `retry` or `dead` job (it is `pending` again) and cancel a
/// `pending` or `retry` one (it is `cancelled`, finished unrun).
/// A running job whose lease expired is claimable again, with a new token; the old
/// token's acks are then refused (they return `false`).
#[async_trait::async_trait]
pub trait QueueBackend: Send + Sync + std::fmt::Debug + 'static {
    /// Stores a job. With a `unique_key` that an unfinished job holds, stores nothing
    /// and returns that job's id.
    async fn enqueue(&self, job: NewJob) -> Result<String, JobError>;
    /// Stores several jobs, in order, returning their ids as [`enqueue`](Self::enqueue)
    /// would. Engines override it to store a batch in one round trip; the default
    /// enqueues one by one and stops at the first failure.
    async fn enqueue_many(&self, jobs: Vec<NewJob>) -> Result<Vec<String>, JobError> {
        let mut ids = Vec::with_capacity(jobs.len());
        for job in jobs {
            ids.push(self.enqueue(job).await?);
        }
        Ok(ids)
    }
    /// Claims up to `n` due jobs, best priority then oldest `run_at` first, each under
    /// a lease of `lease` from `now` (Unix ms).
    async fn claim(&self, worker_id: &str, n: usize, lease: Duration, now: i64) -> Result<Vec<ClaimedJob>, JobError>;
    /// Marks a claimed job done with its result; `false` if the token no longer holds it.
    async fn complete(&self, id: &str, token: &str, result: &Value, now: i64) -> Result<bool, JobError>;
    /// Marks several claimed jobs done, each as [`complete`](Self::complete) would, and
    /// says for each (in order) whether its token still held it. Engines override it to
    /// write the batch in one round trip or transaction; the default acks one by one.
    async fn complete_many(&self, acks: &[(&str, &str, &Value)], now: i64) -> Result<Vec<bool>, JobError> {
        let mut done = Vec::with_capacity(acks.len());
        for (id, token, result) in acks {
            done.push(self.complete(id, token, result, now).await?);
        }
        Ok(done)
    }
    /// Records a failed attempt; `false` if the token no longer holds the job.
    async fn fail(&self, id: &str, token: &str, error: &str, outcome: FailOutcome, now: i64) -> Result<bool, JobError>;
    /// Extends a claim's lease to `now + lease`; `false` if the token no longer holds it.
    async fn extend(&self, id: &str, token: &str, lease: Duration, now: i64) -> Result<bool, JobError>;
    /// Hands a claimed job back unrun (its attempt is not counted); `false` if the token
    /// no longer holds it.
    async fn release(&self, id: &str, token: &str, now: i64) -> Result<bool, JobError>;
    /// One job.
    async fn get(&self, id: &str) -> Result<Option<JobRecord>, JobError>;
    /// Deletes done, dead and cancelled jobs last changed before `before` (Unix ms);
    /// returns how many.
    async fn prune(&self, before: i64) -> Result<u64, JobError>;
    /// Wake-ups for an idle worker: the value changes when jobs may have become due
    /// (an enqueue, a hand-back), from any process. `None` (the default) when the engine
    /// cannot tell; workers then find new jobs by polling every `poll_interval`, as they
    /// also do for delayed jobs and expired leases on every engine.
    fn wakeups(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
    /// A page of jobs matching `filter`, newest first (by id: UUID v7 ids sort by
    /// creation), for the admins' jobs view. A page may hold fewer than `limit` jobs
    /// and still have a next one: follow [`JobPage::next`](super::JobPage::next) until it is `None`.
    async fn list_jobs(&self, filter: &super::admin::JobFilter) -> Result<super::admin::JobPage, JobError>;
    /// An admin's retry: a `retry` or `dead` job becomes `pending`, due at `now`, with
    /// one attempt more if it had used them all (`max_attempts` rises to `attempts + 1`).
    async fn retry_job(&self, id: &str, now: i64) -> Result<super::admin::JobChange, JobError>;
    /// An admin's cancel: a `pending` or `retry` job becomes `cancelled` (finished,
    /// never run; its unique key is freed). A claimed (`running`) job is refused.
    async fn cancel_job(&self, id: &str, now: i64) -> Result<super::admin::JobChange, JobError>;
    /// Counts the unfinished jobs at `now` (Unix ms): due, scheduled and running (see
    /// [`QueueDepth`]), for the `kernel_jobs_queue_depth` gauge. Finished jobs are never
    /// read, so the count costs as much with millions of them as with none.
    async fn queue_depth(&self, now: i64) -> Result<QueueDepth, JobError>;
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
