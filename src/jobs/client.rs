//! [`JobClient`]: enqueues jobs and reads their status.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::backend::{now_ms, JobRecord, NewJob, Priority, QueueBackend};
use super::{JobError, JobRegistry, JobSettings};
use crate::db::{Db, Transaction};

/// How to enqueue one job; every field is optional.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct EnqueueOptions {
    /// Priority (default normal).
    pub priority: Priority,
    /// The user the job runs for (who may read its status).
    pub user_id: Option<String>,
    /// Time limit of one attempt (default: the task's, else the settings').
    pub timeout: Option<Duration>,
    /// Attempts before it is dead (default: the task's, else the settings').
    pub max_attempts: Option<u32>,
    /// Not before now + this.
    pub delay: Option<Duration>,
    /// Not before this time (wins over `delay`).
    pub run_at: Option<chrono::DateTime<chrono::Utc>>,
    /// At most one unfinished job per key: a second enqueue returns the first job's id.
    pub unique_key: Option<String>,
}

impl EnqueueOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the priority.
    pub fn priority(mut self, p: Priority) -> Self {
        self.priority = p;
        self
    }
    /// Sets the user.
    pub fn user_id(mut self, user: impl Into<String>) -> Self {
        self.user_id = Some(user.into());
        self
    }
    /// Sets the per-attempt time limit.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
    /// Sets the attempts before it is dead.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }
    /// Runs not before now + `d`.
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = Some(d);
        self
    }
    /// Runs not before `at`.
    pub fn run_at(mut self, at: chrono::DateTime<chrono::Utc>) -> Self {
        self.run_at = Some(at);
        self
    }
    /// Sets the unique key.
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }
}

/// An enqueued job's handle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Enqueued {
    /// Its id, for `GET /api/v1/jobs/{id}`.
    pub job_id: String,
}

/// Enqueues jobs for the registered tasks and reads their status. Cheap to clone;
/// routes take it as an extractor, tasks get it from their `JobContext`.
#[derive(Clone)]
pub struct JobClient {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn QueueBackend>,
    registry: JobRegistry,
    settings: JobSettings,
    sql: bool,
    metrics: super::metrics::JobMetrics,
}

impl std::fmt::Debug for JobClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobClient")
            .field("backend", &self.inner.backend)
            .field("tasks", &self.inner.registry)
            .finish_non_exhaustive()
    }
}

impl JobClient {
    /// A client over `backend`. `sql` says whether it stores jobs in the service's
    /// database (which makes [`enqueue_in`](Self::enqueue_in) possible).
    pub fn new(backend: Arc<dyn QueueBackend>, registry: JobRegistry, settings: JobSettings, sql: bool) -> Self {
        Self { inner: Arc::new(Inner { backend, registry, settings, sql, metrics: Default::default() }) }
    }

    /// A client on the SQL queue in `db` (creates table `kernel_jobs` if needed).
    ///
    /// # Errors
    /// The table cannot be created.
    pub async fn sql(db: Db, registry: JobRegistry, settings: JobSettings) -> Result<Self, JobError> {
        let backend = super::sql::SqlQueue::open(db).await?.with_due_check_interval(settings.due_check_interval);
        Ok(Self::new(Arc::new(backend), registry, settings, true))
    }

    /// A client on the Redis queue at `url`, keys under `prefix`.
    ///
    /// # Errors
    /// Redis cannot be reached.
    #[cfg(feature = "redis")]
    pub async fn redis(
        url: &str,
        prefix: &str,
        registry: JobRegistry,
        settings: JobSettings,
    ) -> Result<Self, JobError> {
        let backend = super::redis::RedisQueue::connect(url, prefix).await?;
        Ok(Self::new(Arc::new(backend), registry, settings, false))
    }

    /// The client `settings` describe: Redis when `redis_url` is set (and the
    /// engine is `Auto` or `Redis`), else the SQL queue in `db`.
    ///
    /// # Errors
    /// The engine cannot be opened, or Redis is asked for without a URL or the feature.
    pub async fn from_settings(
        settings: &JobSettings,
        db: Db,
        registry: JobRegistry,
        redis_url: Option<&str>,
        redis_prefix: &str,
    ) -> Result<Self, JobError> {
        use super::QueueEngine;
        let jobs = settings.clone();
        #[cfg(not(feature = "redis"))]
        let _ = redis_prefix;
        match (jobs.backend, redis_url) {
            (QueueEngine::Sql, _) | (QueueEngine::Auto, None) => Self::sql(db, registry, jobs).await,
            (QueueEngine::Redis, None) => Err(JobError::Config("jobs.backend = redis needs REDIS_URL".into())),
            #[cfg(feature = "redis")]
            (_, Some(url)) => Self::redis(url, redis_prefix, registry, jobs).await,
            #[cfg(not(feature = "redis"))]
            (_, Some(_)) => Err(JobError::Config("REDIS_URL is set but the `redis` feature is not compiled in".into())),
        }
    }

    /// The queue engine (for tests and tools).
    pub fn backend(&self) -> &Arc<dyn QueueBackend> {
        &self.inner.backend
    }

    /// The registered tasks.
    pub fn registry(&self) -> &JobRegistry {
        &self.inner.registry
    }

    /// The job settings.
    pub fn settings(&self) -> &JobSettings {
        &self.inner.settings
    }

    /// Enqueues `task` with `payload`.
    ///
    /// # Errors
    /// [`JobError::UnknownTask`] if no task has that name (422 `unknown_task` through
    /// `ApiError`), or the queue failed.
    pub async fn enqueue(
        &self,
        task: &str,
        payload: impl Serialize,
        options: EnqueueOptions,
    ) -> Result<Enqueued, JobError> {
        let job = self.prepare(task, payload, options)?;
        let job_id = self.inner.backend.enqueue(job).await?;
        self.inner.metrics.task(task).enqueued.increment(1);
        Ok(Enqueued { job_id })
    }

    /// Enqueues several jobs, in order, in one round trip where the engine can: one
    /// transaction on the SQL queue (when no job has a unique key), one script on Redis.
    ///
    /// # Errors
    /// As [`enqueue`](Self::enqueue); nothing is enqueued if a task name is unknown. On
    /// a storage failure the batch may be partly enqueued (on SQL without unique keys:
    /// none of it).
    pub async fn enqueue_many<P: Serialize>(
        &self,
        jobs: impl IntoIterator<Item = (String, P, EnqueueOptions)>,
    ) -> Result<Vec<Enqueued>, JobError> {
        let prepared =
            jobs.into_iter().map(|(t, p, o)| self.prepare(&t, p, o)).collect::<Result<Vec<_>, JobError>>()?;
        let tasks: Vec<String> = prepared.iter().map(|j| j.task.clone()).collect();
        let ids = self.inner.backend.enqueue_many(prepared).await?;
        for task in &tasks {
            self.inner.metrics.task(task).enqueued.increment(1);
        }
        Ok(ids.into_iter().map(|job_id| Enqueued { job_id }).collect())
    }

    /// Enqueues inside the app's own transaction: the job exists only if it commits.
    ///
    /// # Errors
    /// As [`enqueue`](Self::enqueue); [`JobError::Config`] when the queue is not the
    /// SQL queue of this database.
    pub async fn enqueue_in(
        &self,
        tx: &mut Transaction,
        task: &str,
        payload: impl Serialize,
        options: EnqueueOptions,
    ) -> Result<Enqueued, JobError> {
        if !self.inner.sql {
            return Err(JobError::Config("enqueue_in needs the SQL job queue (the service's database)".into()));
        }
        let job = self.prepare(task, payload, options)?;
        let job_id = super::sql::insert_in(tx, job).await?;
        // Counted when inserted: a transaction rolled back later still counts.
        self.inner.metrics.task(task).enqueued.increment(1);
        Ok(Enqueued { job_id })
    }

    /// The job's current state, or `None` if it is unknown (or pruned).
    ///
    /// # Errors
    /// The queue failed.
    pub async fn status(&self, job_id: &str) -> Result<Option<JobRecord>, JobError> {
        self.inner.backend.get(job_id).await
    }

    /// The jobs' metric handles, shared with this client's workers.
    pub(crate) fn job_metrics(&self) -> &super::metrics::JobMetrics {
        &self.inner.metrics
    }

    /// Samples the queue depth into `kernel_jobs_queue_depth` (a `/metrics` scrape
    /// calls it), unless a sample is younger than a few seconds.
    pub async fn sample_queue_depth(&self) {
        self.inner.metrics.sample_depth(&*self.inner.backend).await;
    }

    fn prepare(&self, task: &str, payload: impl Serialize, o: EnqueueOptions) -> Result<NewJob, JobError> {
        let registered = self.inner.registry.get(task).ok_or_else(|| JobError::UnknownTask(task.to_owned()))?;
        let payload = serde_json::to_value(payload).map_err(|e| JobError::InvalidPayload(e.to_string()))?;
        let s = &self.inner.settings;
        let now = now_ms();
        let run_at = match (o.run_at, o.delay) {
            (Some(at), _) => at.timestamp_millis(),
            (None, Some(d)) => now + i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2),
            (None, None) => now,
        };
        let timeout =
            o.timeout.or(registered.options.timeout).unwrap_or_else(|| Duration::from_secs(s.default_timeout_secs));
        Ok(NewJob {
            id: uuid::Uuid::now_v7().to_string(),
            task: task.to_owned(),
            payload,
            priority: o.priority,
            run_at,
            max_attempts: o.max_attempts.or(registered.options.max_attempts).unwrap_or(s.max_attempts).max(1),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            user_id: o.user_id,
            unique_key: o.unique_key,
            now,
            // The span this task runs (a request's, or a job's for a follow-up job).
            trace_parent: crate::observability::trace_context::current().map(|t| t.traceparent()),
        })
    }
}

// The job client of the router's state (the spec's `get_job_client()`).
state_extractor!(JobClient);
