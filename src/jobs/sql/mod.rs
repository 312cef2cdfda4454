//! The SQL queue: jobs in table `kernel_jobs` of the service's own database.
//!
//! Claims run in one short transaction: select the due ids (best priority, then oldest
//! `run_at`; `FOR UPDATE SKIP LOCKED` on PostgreSQL and MySQL, the single writer's
//! `BEGIN IMMEDIATE` on SQLite), then give each a fresh lease token. Every ack matches
//! on `(id, lease_token)`, so a worker whose lease was taken over cannot overwrite the
//! new owner's work.

use std::time::Duration;

use serde_json::{json, Value};

use super::backend::{ClaimedJob, FailOutcome, JobRecord, JobStatus, NewJob, Priority, QueueBackend};
use super::JobError;
use crate::db::{DatabaseKind, Db, DbError, Row, Transaction};

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
    [updated_at] BIGINT NOT NULL
)";

const INDEX: &str = "CREATE INDEX IF NOT EXISTS [kernel_jobs_due] ON [kernel_jobs] ([status], [priority], [run_at])";

/// The SQL queue engine.
#[derive(Debug, Clone)]
pub struct SqlQueue {
    db: Db,
}

impl SqlQueue {
    /// Opens the queue in `db`, creating its table and index if needed.
    ///
    /// # Errors
    /// The table cannot be created.
    pub async fn open(db: Db) -> Result<Self, JobError> {
        db.execute(SCHEMA, &[]).await?;
        if let Err(e) = db.execute(INDEX, &[]).await {
            // Another process may have created it at the same moment.
            tracing::debug!(error = %e, "kernel_jobs index");
        }
        Ok(Self { db })
    }

    async fn claim_once(
        &self,
        worker_id: &str,
        n: usize,
        lease: Duration,
        now: i64,
    ) -> Result<Vec<ClaimedJob>, JobError> {
        if n == 0 {
            return Ok(Vec::new());
        }

        let lock = match self.db.kind() {
            DatabaseKind::Sqlite => "",
            _ => " FOR UPDATE SKIP LOCKED",
        };
        let select = format!(
            "SELECT [id] FROM [kernel_jobs] WHERE ([status] IN (?, ?) AND [run_at] <= ?) \
             OR ([status] = ? AND [lease_until] < ?) ORDER BY [priority], [run_at] LIMIT {n}{lock}"
        );
        let mut tx = self.db.transaction().await?;
        let due = tx
            .fetch_all(
                &select,
                &[
                    json!(JobStatus::Pending.as_str()),
                    json!(JobStatus::Retry.as_str()),
                    json!(now),
                    json!(JobStatus::Running.as_str()),
                    json!(now),
                ],
            )
            .await?;
        if due.is_empty() {
            // Release the locks of the rows this locking read scanned, now.
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        let until = now + ms(lease);
        let mut tokens = Vec::with_capacity(due.len());
        for row in &due {
            let id = text(row, "id");
            let token = uuid::Uuid::new_v4().simple().to_string();
            tx.execute(
                "UPDATE [kernel_jobs] SET [status] = ?, [lease_token] = ?, [lease_until] = ?, [worker_id] = ?, \
                 [attempts] = [attempts] + 1, [updated_at] = ? WHERE [id] = ?",
                &[
                    json!(JobStatus::Running.as_str()),
                    json!(token),
                    json!(until),
                    json!(worker_id),
                    json!(now),
                    json!(id),
                ],
            )
            .await?;
            tokens.push((id, token));
        }
        let marks = vec!["?"; tokens.len()].join(", ");
        let ids: Vec<Value> = tokens.iter().map(|(id, _)| json!(id)).collect();
        let rows = tx.fetch_all(&format!("SELECT {COLUMNS} FROM [kernel_jobs] WHERE [id] IN ({marks})"), &ids).await?;
        tx.commit().await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for (id, token) in tokens {
            if let Some(row) = rows.iter().find(|r| text(r, "id") == id) {
                claimed.push(ClaimedJob { job: record(row)?, token });
            }
        }
        Ok(claimed)
    }
}

fn is_deadlock(e: &JobError) -> bool {
    let text = e.to_string();
    text.contains("Deadlock") || text.contains("40001") || text.contains("40P01")
}

const INSERT: &str = "INSERT INTO [kernel_jobs] ([id], [task], [payload], [status], [priority], [run_at], \
    [attempts], [max_attempts], [timeout_ms], [user_id], [unique_key], [created_at], [updated_at]) \
    VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)";

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
    ]
}

const BY_UNIQUE: &str = "SELECT [id] FROM [kernel_jobs] WHERE [unique_key] = ?";

/// Inserts `job` inside the app's transaction (see `JobClient::enqueue_in`).
pub(crate) async fn insert_in(tx: &mut Transaction, job: NewJob) -> Result<String, JobError> {
    if let Some(key) = &job.unique_key {
        if let Some(row) = tx.fetch_optional(BY_UNIQUE, &[json!(key)]).await? {
            return Ok(text(&row, "id"));
        }
    }
    tx.execute(INSERT, &insert_params(&job)).await?;
    Ok(job.id)
}

fn text(row: &Row, col: &str) -> String {
    match row.get(col) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

fn opt_text(row: &Row, col: &str) -> Option<String> {
    match row.get(col) {
        Some(Value::Null) | None => None,
        _ => Some(text(row, col)),
    }
}

fn int(row: &Row, col: &str) -> i64 {
    match row.get(col) {
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

fn record(row: &Row) -> Result<JobRecord, JobError> {
    let status = text(row, "status");
    let parse = |s: Option<String>| s.map(|s| serde_json::from_str(&s).unwrap_or(Value::String(s)));
    Ok(JobRecord {
        id: text(row, "id"),
        task: text(row, "task"),
        payload: parse(Some(text(row, "payload"))).unwrap_or(Value::Null),
        status: JobStatus::parse(&status).ok_or_else(|| JobError::Storage(format!("unknown job status {status}")))?,
        priority: Priority::from_rank(int(row, "priority")),
        attempts: u32::try_from(int(row, "attempts")).unwrap_or(0),
        max_attempts: u32::try_from(int(row, "max_attempts")).unwrap_or(1),
        timeout_ms: u64::try_from(int(row, "timeout_ms")).unwrap_or(0),
        user_id: opt_text(row, "user_id"),
        run_at: int(row, "run_at"),
        result: parse(opt_text(row, "result")),
        error: opt_text(row, "error"),
        created_at: int(row, "created_at"),
        updated_at: int(row, "updated_at"),
    })
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

const COLUMNS: &str = "[id], [task], [payload], [status], [priority], [run_at], [attempts], [max_attempts], \
    [timeout_ms], [user_id], [result], [error], [created_at], [updated_at]";

#[async_trait::async_trait]
impl QueueBackend for SqlQueue {
    async fn enqueue(&self, job: NewJob) -> Result<String, JobError> {
        let Some(key) = job.unique_key.clone() else {
            self.db.execute(INSERT, &insert_params(&job)).await?;
            return Ok(job.id);
        };
        for _ in 0..3 {
            if let Some(row) = self.db.fetch_optional(BY_UNIQUE, &[json!(key)]).await? {
                return Ok(text(&row, "id"));
            }
            match self.db.execute(INSERT, &insert_params(&job)).await {
                Ok(_) => return Ok(job.id),
                // Lost a race with another enqueue of the same key: read the winner.
                Err(DbError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(JobError::Storage(format!("unique key {key}: concurrent enqueues kept conflicting")))
    }

    async fn claim(&self, worker_id: &str, n: usize, lease: Duration, now: i64) -> Result<Vec<ClaimedJob>, JobError> {
        // InnoDB may pick a claim as a deadlock victim when workers race; the claim
        // is then rolled back whole, so it is safe to try again.
        let mut attempt = 0;
        loop {
            match self.claim_once(worker_id, n, lease, now).await {
                Err(e) if attempt < 5 && is_deadlock(&e) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(2 * attempt)).await;
                }
                result => return result,
            }
        }
    }

    async fn complete(&self, id: &str, token: &str, result: &Value, now: i64) -> Result<bool, JobError> {
        let n = self
            .db
            .execute(
                "UPDATE [kernel_jobs] SET [status] = ?, [result] = ?, [error] = NULL, [lease_token] = NULL, \
                 [lease_until] = NULL, [unique_key] = NULL, [updated_at] = ? \
                 WHERE [id] = ? AND [lease_token] = ? AND [status] = ?",
                &[
                    json!(JobStatus::Done.as_str()),
                    json!(result.to_string()),
                    json!(now),
                    json!(id),
                    json!(token),
                    json!(JobStatus::Running.as_str()),
                ],
            )
            .await?;
        Ok(n == 1)
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
        let n = self
            .db
            .execute(
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
        Ok(n == 1)
    }

    async fn extend(&self, id: &str, token: &str, lease: Duration, now: i64) -> Result<bool, JobError> {
        let n = self
            .db
            .execute(
                "UPDATE [kernel_jobs] SET [lease_until] = ? WHERE [id] = ? AND [lease_token] = ? AND [status] = ?",
                &[json!(now + ms(lease)), json!(id), json!(token), json!(JobStatus::Running.as_str())],
            )
            .await?;
        Ok(n == 1)
    }

    async fn release(&self, id: &str, token: &str, now: i64) -> Result<bool, JobError> {
        let n = self
            .db
            .execute(
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
        Ok(n == 1)
    }

    async fn get(&self, id: &str) -> Result<Option<JobRecord>, JobError> {
        let row = self
            .db
            .fetch_optional(&format!("SELECT {COLUMNS} FROM [kernel_jobs] WHERE [id] = ?"), &[json!(id)])
            .await?;
        row.as_ref().map(record).transpose()
    }

    async fn prune(&self, before: i64) -> Result<u64, JobError> {
        Ok(self
            .db
            .execute(
                "DELETE FROM [kernel_jobs] WHERE [status] IN (?, ?) AND [updated_at] < ?",
                &[json!(JobStatus::Done.as_str()), json!(JobStatus::Dead.as_str()), json!(before)],
            )
            .await?)
    }
}
