//! The SQL queue: jobs in table `kernel_jobs` of the service's own database.
//!
//! A claim takes the best due jobs by priority, then oldest `run_at`, and gives them a
//! fresh lease token in one atomic step (see `claim.rs`: `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL and MySQL, the single writer on SQLite). Every ack matches on
//! `(id, lease_token)`, so a worker whose lease was taken over cannot overwrite the new
//! owner's work. `enqueue_many` stores a batch of jobs without unique keys with
//! multi-row `INSERT`s in one transaction. PostgreSQL has its own indexes and
//! statements (`postgres.rs`). Idle workers are woken when a due job is stored (`wake.rs`):
//! by `NOTIFY` on PostgreSQL, by the file's commits on SQLite, and on MySQL/MariaDB by a
//! byte on local sockets from the storing process once its statement or transaction has
//! committed (`doorbell.rs`), with due checks for the jobs of other hosts. A table made by an
//! older kernel gets the newer columns when the queue opens (`upgrade.rs`).

use std::time::Duration;

use serde_json::{json, Value};

use super::backend::{ClaimedJob, FailOutcome, JobRecord, JobStatus, NewJob, QueueBackend, QueueDepth};
use super::{JobError, JobSettings};
use crate::db::dialect::ChangeFeed;
use crate::db::{DatabaseKind, Db, DbError, Transaction};

mod admin;
mod claim;
mod depth;
mod doorbell;
mod postgres;
mod rows;
mod upgrade;
mod wake;

use rows::{int, record, text, COLUMNS};

/// The jobs table.
pub const JOBS_TABLE: &str = "kernel_jobs";

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS [kernel_jobs] (
    [id] VARCHAR(64) NOT NULL PRIMARY KEY,
    [task] VARCHAR(255) NOT NULL,
    [payload] TEXT NOT NULL,
    [status] VARCHAR(16) NOT NULL,
    [priority] BIGINT NOT NULL,
    [run_at] BIGINT NOT NULL,
    [attempts] BIGINT NOT NULL,
    [max_attempts] BIGINT NOT NULL,
    [timeout_ms] BIGINT NOT NULL,
    [user_id] VARCHAR(255),
    [unique_key] VARCHAR(255) UNIQUE,
    [lease_token] VARCHAR(64),
    [lease_until] BIGINT,
    [worker_id] VARCHAR(255),
    [result] TEXT,
    [error] TEXT,
    [created_at] BIGINT NOT NULL,
    [updated_at] BIGINT NOT NULL,
    [trace_parent] VARCHAR(64)
)";

const INDEX: &str = "CREATE INDEX IF NOT EXISTS [kernel_jobs_due] ON [kernel_jobs] ([status], [priority], [run_at])";
const MYSQL_INDEX: &str = "INDEX [kernel_jobs_due] ([status], [priority], [run_at])";

/// The SQL queue engine.
#[derive(Debug, Clone)]
pub struct SqlQueue {
    db: Db,
    /// MySQL/MariaDB: the due checks' interval where a local socket wakes workers too.
    due_check_interval: Duration,
}

impl SqlQueue {
    /// Inserts one job (and wakes idle workers, see [`wakes`] and [`rings`]).
    async fn insert(&self, job: &NewJob) -> Result<(), DbError> {
        if wakes(self.db.kind(), job) {
            self.db.fetch_all(&INSERT_NOTIFY, &insert_params(job)).await.map(drop)
        } else {
            self.db.execute(&INSERT, &insert_params(job)).await?;
            if rings(self.db.kind(), job) {
                doorbell::ring(self.db.location());
            }
            Ok(())
        }
    }

    /// Wakes this host's idle workers where nothing else does (MySQL/MariaDB): a job is due.
    fn ring(&self) {
        if self.db.kind().change_feed() == Some(ChangeFeed::DueChecks) {
            doorbell::ring(self.db.location());
        }
    }

    /// Sets how often idle MySQL/MariaDB workers ask whether a job is due, for jobs
    /// stored from other hosts (default 50 ms; see `JobSettings::due_check_interval`).
    #[must_use]
    pub fn with_due_check_interval(mut self, every: Duration) -> Self {
        self.due_check_interval = every;
        self
    }

    /// Runs one update guarded by a job's lease token; whether it hit the job (a
    /// stale token hits nothing). A deadlock victim is tried again.
    async fn leased_update(&self, sql: &str, params: &[Value]) -> Result<bool, JobError> {
        claim::retry_deadlocks(|| async { Ok(self.db.execute(sql, params).await? == 1) }).await
    }

    /// Opens the queue in `db`, creating its table and index if needed.
    ///
    /// # Errors
    /// The table cannot be created.
    pub async fn open(db: Db) -> Result<Self, JobError> {
        let (schema, indexes) = match db.kind() {
            DatabaseKind::Postgres => (SCHEMA.to_owned(), postgres::indexes().to_vec()),
            // Its index inside the table (MySQL, unlike MariaDB, has no `CREATE INDEX IF
            // NOT EXISTS`), and its own character set: payloads hold any Unicode, whatever
            // the server's default.
            DatabaseKind::Mysql => {
                (format!("{}, {MYSQL_INDEX}) DEFAULT CHARSET=utf8mb4", SCHEMA.trim_end_matches(')')), Vec::new())
            }
            DatabaseKind::Sqlite => (SCHEMA.to_owned(), vec![INDEX.to_owned()]),
        };
        db.execute_schema(&schema).await?;
        upgrade::add_missing_columns(&db).await?;
        for index in &indexes {
            db.execute_schema(index).await?;
        }
        Ok(Self { db, due_check_interval: JobSettings::default().due_check_interval })
    }
}

const INSERT_HEAD: &str = "INSERT INTO [kernel_jobs] ([id], [task], [payload], [status], [priority], [run_at], \
    [attempts], [max_attempts], [timeout_ms], [user_id], [unique_key], [created_at], [updated_at], [trace_parent]) VALUES";
const INSERT_ROW: &str = "(?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)";
/// One job's `INSERT`.
static INSERT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| format!("{INSERT_HEAD} {INSERT_ROW}"));

/// Rows per multi-row `INSERT` of `enqueue_many`: 13 parameters each, far below every
/// engine's limit on parameters per statement.
const INSERT_ROWS: usize = 200;

fn insert_params(job: &NewJob) -> Vec<Value> {
    vec![
        json!(job.id),
        json!(job.task),
        json!(job.payload.to_string()),
        json!(JobStatus::Pending.as_str()),
        json!(job.priority.rank()),
        json!(job.run_at),
        json!(job.max_attempts),
        json!(job.timeout_ms),
        json!(job.user_id),
        json!(job.unique_key),
        json!(job.now),
        json!(job.now),
        json!(job.trace_parent),
    ]
}

const COMPLETE: &str = "UPDATE [kernel_jobs] SET [status] = ?, [result] = ?, [error] = NULL, [lease_token] = NULL, \
    [lease_until] = NULL, [unique_key] = NULL, [updated_at] = ? WHERE [id] = ? AND [lease_token] = ? AND [status] = ?";

fn complete_params(id: &str, token: &str, result: &Value, now: i64) -> [Value; 6] {
    [
        json!(JobStatus::Done.as_str()),
        json!(result.to_string()),
        json!(now),
        json!(id),
        json!(token),
        json!(JobStatus::Running.as_str()),
    ]
}

const BY_UNIQUE: &str = "SELECT [id] FROM [kernel_jobs] WHERE [unique_key] = ?";

/// One job's `INSERT` that also wakes idle PostgreSQL workers.
static INSERT_NOTIFY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("WITH [stored] AS ({} RETURNING [id]) SELECT pg_notify('{}', '') FROM [stored]", *INSERT, wake::CHANNEL)
});

/// Whether storing `job` should wake idle workers: it is due, on PostgreSQL.
fn wakes(kind: DatabaseKind, job: &NewJob) -> bool {
    kind.notifies() && job.run_at <= job.now
}

/// Whether storing `job` should ring this host's idle workers: it is due, on an engine
/// that notifies no one (MySQL/MariaDB).
fn rings(kind: DatabaseKind, job: &NewJob) -> bool {
    kind.change_feed() == Some(ChangeFeed::DueChecks) && job.run_at <= job.now
}

/// Inserts `job` inside the app's transaction (see `JobClient::enqueue_in`); idle
/// workers are woken when it commits (MySQL/MariaDB: rung after the commit).
pub(crate) async fn insert_in(tx: &mut Transaction, job: NewJob) -> Result<String, JobError> {
    if let Some(key) = &job.unique_key {
        if let Some(row) = tx.fetch_optional(BY_UNIQUE, &[json!(key)]).await? {
            return Ok(text(&row, "id"));
        }
    }
    if wakes(tx.kind(), &job) {
        tx.fetch_all(&INSERT_NOTIFY, &insert_params(&job)).await?;
    } else {
        tx.execute(&INSERT, &insert_params(&job)).await?;
        if rings(tx.kind(), &job) {
            let location = tx.db().location().to_owned();
            tx.after_commit(move || {
                doorbell::ring(&location);
            });
        }
    }
    Ok(job.id)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

#[async_trait::async_trait]
impl QueueBackend for SqlQueue {
    async fn enqueue(&self, job: NewJob) -> Result<String, JobError> {
        let Some(key) = job.unique_key.clone() else {
            self.insert(&job).await?;
            return Ok(job.id);
        };
        for _ in 0..3 {
            if let Some(row) = self.db.fetch_optional(BY_UNIQUE, &[json!(key)]).await? {
                return Ok(text(&row, "id"));
            }
            match self.insert(&job).await {
                Ok(()) => return Ok(job.id),
                // Lost a race with another enqueue of the same key: read the winner.
                Err(DbError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(JobError::Storage(format!("unique key {key}: concurrent enqueues kept conflicting")))
    }

    async fn enqueue_many(&self, jobs: Vec<NewJob>) -> Result<Vec<String>, JobError> {
        // A unique key needs its look-up and conflict retry per job.
        if jobs.len() < 2 || jobs.iter().any(|j| j.unique_key.is_some()) {
            let mut ids = Vec::with_capacity(jobs.len());
            for job in jobs {
                ids.push(self.enqueue(job).await?);
            }
            return Ok(ids);
        }
        let mut tx = self.db.transaction().await?;
        for chunk in jobs.chunks(INSERT_ROWS) {
            let sql = format!("{INSERT_HEAD} {}", vec![INSERT_ROW; chunk.len()].join(", "));
            let params: Vec<Value> = chunk.iter().flat_map(insert_params).collect();
            tx.execute(&sql, &params).await?;
        }
        if jobs.iter().any(|job| wakes(self.db.kind(), job)) {
            tx.fetch_all(wake::NOTIFY, &[]).await?;
        }
        tx.commit().await?;
        if jobs.iter().any(|job| rings(self.db.kind(), job)) {
            self.ring();
        }
        Ok(jobs.into_iter().map(|j| j.id).collect())
    }

    async fn claim(&self, worker_id: &str, n: usize, lease: Duration, now: i64) -> Result<Vec<ClaimedJob>, JobError> {
        self.claim_due(worker_id, n, lease, now).await
    }

    async fn complete(&self, id: &str, token: &str, result: &Value, now: i64) -> Result<bool, JobError> {
        self.leased_update(COMPLETE, &complete_params(id, token, result, now)).await
    }

    async fn complete_many(&self, acks: &[(&str, &str, &Value)], now: i64) -> Result<Vec<bool>, JobError> {
        match self.db.kind() {
            DatabaseKind::Postgres if acks.len() > 1 => return self.complete_many_postgres(acks, now).await,
            DatabaseKind::Postgres | DatabaseKind::Sqlite | DatabaseKind::Mysql => {}
        }
        if acks.len() < 2 {
            let mut done = Vec::with_capacity(acks.len());
            for (id, token, result) in acks {
                done.push(self.complete(id, token, result, now).await?);
            }
            return Ok(done);
        }
        // One transaction: one commit (one log flush) for the batch. Rows are locked
        // in id order, so two batches cannot wait on each other in a cycle.
        let mut order: Vec<usize> = (0..acks.len()).collect();
        order.sort_by_key(|&i| acks[i].0);
        claim::retry_deadlocks(|| async {
            let mut tx = self.db.transaction().await?;
            let mut done = vec![false; acks.len()];
            for &i in &order {
                let (id, token, result) = acks[i];
                done[i] = tx.execute(COMPLETE, &complete_params(id, token, result, now)).await? == 1;
            }
            tx.commit().await?;
            Ok(done)
        })
        .await
    }

    async fn fail(&self, id: &str, token: &str, error: &str, outcome: FailOutcome, now: i64) -> Result<bool, JobError> {
        let (status, run_at, unique) = match outcome {
            FailOutcome::RetryAt(at) => (JobStatus::Retry, at, "[unique_key]"),
            FailOutcome::Dead => (JobStatus::Dead, now, "NULL"),
        };
        let sql = format!(
            "UPDATE [kernel_jobs] SET [status] = ?, [run_at] = ?, [error] = ?, [lease_token] = NULL, \
             [lease_until] = NULL, [unique_key] = {unique}, [updated_at] = ? \
             WHERE [id] = ? AND [lease_token] = ? AND [status] = ?"
        );
        let failed = self
            .leased_update(
                &sql,
                &[
                    json!(status.as_str()),
                    json!(run_at),
                    json!(error),
                    json!(now),
                    json!(id),
                    json!(token),
                    json!(JobStatus::Running.as_str()),
                ],
            )
            .await?;
        if failed && status == JobStatus::Retry && run_at <= now {
            self.ring();
        }
        Ok(failed)
    }

    async fn extend(&self, id: &str, token: &str, lease: Duration, now: i64) -> Result<bool, JobError> {
        self.leased_update(
            "UPDATE [kernel_jobs] SET [lease_until] = ? WHERE [id] = ? AND [lease_token] = ? AND [status] = ?",
            &[json!(now + ms(lease)), json!(id), json!(token), json!(JobStatus::Running.as_str())],
        )
        .await
    }

    async fn release(&self, id: &str, token: &str, now: i64) -> Result<bool, JobError> {
        let released = self
            .leased_update(
                "UPDATE [kernel_jobs] SET [status] = ?, [run_at] = ?, [attempts] = [attempts] - 1, \
                 [lease_token] = NULL, [lease_until] = NULL, [updated_at] = ? \
                 WHERE [id] = ? AND [lease_token] = ? AND [status] = ?",
                &[
                    json!(JobStatus::Pending.as_str()),
                    json!(now),
                    json!(now),
                    json!(id),
                    json!(token),
                    json!(JobStatus::Running.as_str()),
                ],
            )
            .await?;
        if released {
            self.ring();
        }
        if released && self.db.kind().notifies() {
            // The job is back either way; without the wake-up, workers find it by polling.
            if let Err(e) = self.db.fetch_all(wake::NOTIFY, &[]).await {
                tracing::debug!(error = %e, "job wake-up not sent");
            }
        }
        Ok(released)
    }

    async fn get(&self, id: &str) -> Result<Option<JobRecord>, JobError> {
        let row = self
            .db
            .fetch_optional(&format!("SELECT {COLUMNS} FROM [kernel_jobs] WHERE [id] = ?"), &[json!(id)])
            .await?;
        row.as_ref().map(record).transpose()
    }

    fn wakeups(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.db.kind().change_feed()?;
        let (tx, rx) = tokio::sync::watch::channel(0);
        tokio::spawn(wake::listen(self.db.clone(), tx, self.due_check_interval));
        Some(rx)
    }

    async fn prune(&self, before: i64) -> Result<u64, JobError> {
        self.delete_finished(before).await
    }

    async fn list_jobs(&self, filter: &super::JobFilter) -> Result<super::JobPage, JobError> {
        self.list_page(filter).await
    }

    async fn retry_job(&self, id: &str, now: i64) -> Result<super::JobChange, JobError> {
        self.retry_now(id, now).await
    }

    async fn cancel_job(&self, id: &str, now: i64) -> Result<super::JobChange, JobError> {
        self.cancel_waiting(id, now).await
    }

    /// Three counts in one statement, each matching a partial index of PostgreSQL
    /// (`kernel_jobs_waiting`, `kernel_jobs_leases`; the statuses are literals so that
    /// its cached plan can use them) or a range of `kernel_jobs_due` elsewhere:
    /// finished jobs are never read.
    async fn queue_depth(&self, now: i64) -> Result<QueueDepth, JobError> {
        self.depth(now).await
    }
}
