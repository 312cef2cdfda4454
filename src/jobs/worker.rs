//! [`Worker`]: claims due jobs and runs their tasks.
//!
//! Each claimed job runs under a lease that a heartbeat extends every third of the
//! lease while the task runs; a worker that dies stops extending it, and another
//! worker claims the job once the lease expires. A task that fails (an error, a panic,
//! its timeout) is retried after `backoff_base * 2^(attempt-1)` plus jitter, until
//! `max_attempts`; then it is dead with its last error.
//!
//! [`Worker::run_until_stopped`] claims for all its free slots in one call, and while
//! busy claims ahead beyond them (`ahead.rs`), hands results to a batching acker
//! (`acks.rs`) so that a slot is free as soon as its task ends, and waits while idle
//! until a job finishes, the engine signals an enqueue (Redis, PostgreSQL) or
//! `poll_interval` passes. Tests step it: [`Worker::run_once`] claims what is due, runs
//! it, acks each job itself, and reports.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde_json::Value;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use super::acks::{persist, Completion};
use super::ahead::Ahead;
use super::backend::{now_ms, ClaimedJob, FailOutcome};
use super::{JobClient, JobContext, TaskError};
use crate::db::Db;
use crate::observability::otel::JobSpan;
use crate::observability::trace_context::{self, TraceContext};

/// What one [`Worker::run_once`] did, by job id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunReport {
    /// Jobs that finished successfully.
    pub completed: Vec<String>,
    /// Jobs that failed and will be retried.
    pub retried: Vec<String>,
    /// Jobs that failed their last attempt.
    pub dead: Vec<String>,
    /// Jobs whose ack was refused: their lease had passed to another worker.
    pub lost: Vec<String>,
}

impl RunReport {
    /// How many jobs were run.
    pub fn ran(&self) -> usize {
        self.completed.len() + self.retried.len() + self.dead.len() + self.lost.len()
    }

    fn record(&mut self, id: String, outcome: Outcome) {
        match outcome {
            Outcome::Completed => self.completed.push(id),
            Outcome::Retried => self.retried.push(id),
            Outcome::Dead => self.dead.push(id),
            Outcome::Lost => self.lost.push(id),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Completed,
    Retried,
    Dead,
    Lost,
}

impl Outcome {
    /// The outcome's name (the job span's `outcome` attribute).
    fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Retried => "retried",
            Self::Dead => "dead",
            Self::Lost => "lost",
        }
    }
}

/// Runs jobs: [`run_once`](Self::run_once) for tests, [`run_until_stopped`](Self::run_until_stopped)
/// for the `worker` command.
#[derive(Debug, Clone)]
pub struct Worker {
    client: JobClient,
    db: Db,
    id: String,
    concurrency: usize,
    blocking: Arc<Semaphore>,
}

impl Worker {
    /// A worker for `client`'s tasks; tasks get `db` through their context.
    pub fn new(client: JobClient, db: Db) -> Self {
        let id = format!("{}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let concurrency = client.settings().worker_count.max(1);
        let blocking = Arc::new(Semaphore::new(client.settings().thread_pool_size.max(1)));
        Self { client, db, id, concurrency, blocking }
    }

    /// Jobs run at once (default `JobSettings::worker_count`).
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// This worker's id, stored on the jobs it claims.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Claims up to `concurrency` due jobs, runs them to the end, and reports.
    ///
    /// # Errors
    /// The claim failed (storage down).
    pub async fn run_once(&self) -> Result<RunReport, super::JobError> {
        let settings = self.client.settings();
        let now = now_ms();
        let claimed = self.client.backend().claim(&self.id, self.concurrency, settings.lease, now).await?;
        self.client.job_metrics().claimed(&claimed, now);
        let outcomes = futures::future::join_all(claimed.into_iter().map(|c| {
            let id = c.job.id.clone();
            self.execute(c, None).map(move |o| (id, o))
        }))
        .await;
        let mut report = RunReport::default();
        for (id, outcome) in outcomes {
            report.record(id, outcome);
        }
        Ok(report)
    }

    /// Runs jobs until `signal` completes; then claims nothing more, lets running jobs
    /// finish within `shutdown_grace`, and hands the rest back (their leases released,
    /// their attempt not counted). Finished jobs older than `retention` are pruned
    /// every minute.
    pub async fn run_until_stopped(self, signal: impl Future<Output = ()> + Send) {
        let settings = self.client.settings().clone();
        let mut running: JoinSet<Outcome> = JoinSet::new();
        let mut held: HashMap<tokio::task::Id, (String, String)> = HashMap::new();
        let mut next_prune = tokio::time::Instant::now();
        // Subscribed before the first claim, so no enqueue between a claim that found
        // nothing and the wait that follows it goes unnoticed.
        let mut wakeups = self.client.backend().wakeups();
        let (acks, acker) = super::acks::spawn(
            Arc::clone(self.client.backend()),
            self.concurrency * 2 + super::acks::BATCH,
            settings.lease,
        );
        let mut ahead = Ahead::new(settings.lease, tokio::time::Instant::now());
        tracing::info!(worker = %self.id, concurrency = self.concurrency, tasks = ?self.client.registry().names(), "worker started");
        tokio::pin!(signal);
        loop {
            if tokio::time::Instant::now() >= next_prune {
                next_prune += Duration::from_secs(60);
                let before = now_ms() - i64::try_from(settings.retention.as_millis()).unwrap_or(i64::MAX / 4);
                match self.client.backend().prune(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(pruned = n, "pruned finished jobs"),
                    Err(e) => tracing::warn!(error = %e, "pruning finished jobs failed"),
                }
            }
            // Every finished job frees its slot before the claim, so one claim fills them all.
            while let Some(done) = running.try_join_next_with_id() {
                held.remove(&joined_id(&done));
            }
            for c in ahead.stale(tokio::time::Instant::now()) {
                self.hand_back(c, "held unstarted for a third of its lease").await;
            }
            let want = ahead.claim_size(self.concurrency.saturating_sub(running.len()), tokio::time::Instant::now());
            if want > 0 {
                let (claimed_at, now) = (tokio::time::Instant::now(), now_ms());
                match self.client.backend().claim(&self.id, want, settings.lease, now).await {
                    Ok(jobs) => {
                        self.client.job_metrics().claimed(&jobs, now);
                        ahead.add(jobs, want, claimed_at);
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming jobs failed"),
                }
            }
            while running.len() < self.concurrency {
                let Some(c) = ahead.next() else { break };
                let key = (c.job.id.clone(), c.token.clone());
                let (me, acks) = (self.clone(), acks.clone());
                let handle = running.spawn(async move { me.execute(c, Some(&acks)).await });
                held.insert(handle.id(), key);
            }
            // A claim that left slots free found the queue empty: wait for a finished
            // job, a wake-up or the next poll before claiming again.
            let full = running.len() >= self.concurrency;
            tokio::select! {
                () = &mut signal => break,
                Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                    held.remove(&joined_id(&done));
                }
                () = tokio::time::sleep(settings.poll_interval), if !full => {}
                Some(Ok(())) = changed(wakeups.as_mut()), if !full && wakeups.is_some() => {}
            }
        }
        tracing::info!(running = running.len(), "worker stopping: no more claims");
        for c in ahead.drain() {
            self.hand_back(c, "the worker is stopping").await;
        }
        let deadline = tokio::time::sleep(settings.shutdown_grace);
        tokio::pin!(deadline);
        while !running.is_empty() {
            tokio::select! {
                Some(done) = running.join_next_with_id() => {
                    held.remove(&joined_id(&done));
                }
                () = &mut deadline => break,
            }
        }
        running.abort_all();
        while running.join_next().await.is_some() {}
        // The results already handed over are written before anything is handed back.
        drop(acks);
        if let Err(e) = acker.await {
            tracing::warn!(error = %e, "the acker stopped; unwritten results run again after their leases");
        }
        for (job, token) in held.into_values() {
            match self.client.backend().release(&job, &token, now_ms()).await {
                Ok(_) => tracing::warn!(job_id = %job, "shutdown grace expired: job handed back"),
                Err(e) => tracing::warn!(job_id = %job, error = %e, "releasing job failed; its lease will expire"),
            }
        }
        tracing::info!(worker = %self.id, "worker stopped");
    }

    /// Runs one claimed job and acks it (see [`counted`](Self::counted)) as a
    /// span of the trace stored with it: every log line of the job, the task's own
    /// included, carries its `trace_id`.
    async fn execute(&self, claimed: ClaimedJob, acks: Option<&mpsc::Sender<Completion>>) -> Outcome {
        let trace = TraceContext::for_job(&claimed.job.id, claimed.job.trace_parent.as_deref());
        let span = JobSpan::start(&claimed.job.task, &claimed.job.id, claimed.job.attempts);
        let work = self.counted(claimed, acks);
        match span {
            Some(span) => {
                let outcome = trace_context::scope(trace, JobSpan::wrap(&trace, work)).await;
                span.end(&trace, outcome.as_str());
                outcome
            }
            None => trace_context::scope(trace, work).await,
        }
    }

    /// Runs one claimed job and acks it (see [`run_claimed`](Self::run_claimed)), counting it
    /// in its task's metrics.
    async fn counted(&self, claimed: ClaimedJob, acks: Option<&mpsc::Sender<Completion>>) -> Outcome {
        let series = self.client.job_metrics().task(&claimed.job.task);
        series.started.increment(1);
        let outcome = self.run_claimed(claimed, acks).await;
        match outcome {
            Outcome::Completed => series.completed.increment(1),
            Outcome::Retried => {
                series.failed.increment(1);
                series.retried.increment(1);
            }
            Outcome::Dead => {
                series.failed.increment(1);
                series.dead.increment(1);
            }
            Outcome::Lost => {}
        }
        outcome
    }

    /// Runs one claimed job and acks it: a success through `acks` when given (the
    /// acker writes it with others), else directly, like every failure.
    async fn run_claimed(&self, claimed: ClaimedJob, acks: Option<&mpsc::Sender<Completion>>) -> Outcome {
        let ClaimedJob { job, token } = claimed;
        let backend = self.client.backend();
        let settings = self.client.settings();
        let ctx = JobContext {
            job_id: job.id.clone(),
            task: job.task.clone(),
            attempt: job.attempts,
            max_attempts: job.max_attempts,
            user_id: job.user_id.clone(),
            db: self.db.clone(),
            jobs: self.client.clone(),
            blocking: Arc::clone(&self.blocking),
        };
        let work = match self.client.registry().get(&job.task) {
            Some(task) => (task.handler)(job.payload.clone(), ctx),
            None => {
                let name = job.task.clone();
                Box::pin(async move { Err(TaskError::new(format!("task `{name}` is not registered in this worker"))) })
            }
        };
        let timeout = Duration::from_millis(job.timeout_ms.max(1));
        let began = std::time::Instant::now();
        let run = tokio::time::timeout(timeout, AssertUnwindSafe(work).catch_unwind());
        let lease = settings.lease;
        let heartbeat = async {
            let mut tick = tokio::time::interval((lease / 3).max(Duration::from_millis(10)));
            tick.tick().await;
            loop {
                tick.tick().await;
                match backend.extend(&job.id, &token, lease, now_ms()).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(job_id = %job.id, "lease lost while running"),
                    Err(e) => tracing::warn!(job_id = %job.id, error = %e, "lease heartbeat failed"),
                }
            }
        };
        let result: Result<Value, String> = tokio::select! {
            r = run => match r {
                Ok(Ok(Ok(v))) => Ok(v),
                Ok(Ok(Err(e))) => Err(e.into_stored()),
                Ok(Err(_panic)) => Err("task panicked".to_owned()),
                Err(_) => Err(format!("timed out after {} ms", timeout.as_millis())),
            },
            () = heartbeat => Err("lease heartbeat stopped".to_owned()),
        };
        self.client.job_metrics().task(&job.task).run.record(began.elapsed().as_secs_f64());
        let now = now_ms();
        let result = match (result, acks) {
            (Ok(result), Some(acks)) => {
                let completion = Completion { id: job.id.clone(), token: token.clone(), result };
                return match acks.send(completion).await {
                    Ok(()) => Outcome::Completed,
                    Err(mpsc::error::SendError(c)) => self.ack_directly(c, now).await,
                };
            }
            (result, _) => result,
        };
        let acked = match &result {
            Ok(value) => persist(lease, || backend.complete(&job.id, &token, value, now))
                .await
                .map(|ok| (ok, Outcome::Completed)),
            Err(error) => {
                let (outcome, kind) = if job.attempts >= job.max_attempts {
                    (FailOutcome::Dead, Outcome::Dead)
                } else {
                    let delay = settings.backoff_with_jitter(job.attempts);
                    (FailOutcome::RetryAt(now + i64::try_from(delay.as_millis()).unwrap_or(0)), Outcome::Retried)
                };
                tracing::warn!(job_id = %job.id, task = %job.task, attempt = job.attempts, error = %error, "job failed");
                persist(lease, || backend.fail(&job.id, &token, error, outcome, now)).await.map(|ok| (ok, kind))
            }
        };
        match acked {
            Ok((true, outcome)) => outcome,
            Ok((false, _)) => {
                tracing::warn!(job_id = %job.id, "ack refused: the lease passed to another worker");
                Outcome::Lost
            }
            Err(e) => {
                tracing::warn!(job_id = %job.id, error = %e, "ack failed; the job will run again after its lease");
                Outcome::Lost
            }
        }
    }
}

impl Worker {
    /// Hands a claimed job back unstarted (its attempt not counted).
    async fn hand_back(&self, c: ClaimedJob, why: &str) {
        if let Err(e) = self.client.backend().release(&c.job.id, &c.token, now_ms()).await {
            tracing::warn!(job_id = %c.job.id, error = %e, "handing back a job failed; its lease will expire");
        } else {
            tracing::debug!(job_id = %c.job.id, why, "job handed back unstarted");
        }
    }

    /// The fallback when the acker is gone: the worker writes the ack itself.
    async fn ack_directly(&self, c: Completion, now: i64) -> Outcome {
        let (backend, lease) = (self.client.backend(), self.client.settings().lease);
        match persist(lease, || backend.complete(&c.id, &c.token, &c.result, now)).await {
            Ok(true) => Outcome::Completed,
            Ok(false) => {
                tracing::warn!(job_id = %c.id, "ack refused: the lease passed to another worker");
                Outcome::Lost
            }
            Err(e) => {
                tracing::warn!(job_id = %c.id, error = %e, "ack failed; the job will run again after its lease");
                Outcome::Lost
            }
        }
    }
}

fn joined_id(done: &Result<(tokio::task::Id, Outcome), tokio::task::JoinError>) -> tokio::task::Id {
    match done {
        Ok((id, _)) => *id,
        Err(e) => e.id(),
    }
}

async fn changed(
    rx: Option<&mut tokio::sync::watch::Receiver<u64>>,
) -> Option<Result<(), tokio::sync::watch::error::RecvError>> {
    match rx {
        Some(rx) => Some(rx.changed().await),
        None => None,
    }
}
