//! The admins' jobs view on the SQL queue: list, retry, cancel, and the deletion of
//! finished jobs (`prune`, the view's purge).
//!
//! A list is one `SELECT` ordered by the primary key (newest id first), one row more
//! than the page to tell whether another page follows. A retry or a cancel is one
//! `UPDATE` whose `WHERE` names the statuses it may change, so it and a worker's
//! claim cannot both take a job: PostgreSQL and MySQL lock the row and test the
//! status again on the version they lock, SQLite has one writer. When the `UPDATE`
//! hits nothing, a read tells a missing job from one in another status.

use serde_json::{json, Value};

use super::claim::retry_deadlocks;
use super::{record, wake, SqlQueue, COLUMNS};
use crate::jobs::admin::{JobChange, JobFilter, JobPage};
use crate::jobs::backend::{JobStatus, QueueBackend};
use crate::jobs::JobError;

impl SqlQueue {
    /// A page of jobs (see [`QueueBackend::list_jobs`]).
    pub(super) async fn list_page(&self, filter: &JobFilter) -> Result<JobPage, JobError> {
        let size = filter.page_size();
        let mut conditions = Vec::new();
        let mut params: Vec<Value> = Vec::new();
        if let Some(status) = filter.status {
            conditions.push("[status] = ?");
            params.push(json!(status.as_str()));
        }
        if let Some(task) = &filter.task {
            conditions.push("[task] = ?");
            params.push(json!(task));
        }
        if let Some(before) = &filter.before {
            conditions.push("[id] < ?");
            params.push(json!(before));
        }
        let condition = match conditions.is_empty() {
            true => String::new(),
            false => format!(" WHERE {}", conditions.join(" AND ")),
        };
        params.push(json!(size + 1));
        let sql = format!("SELECT {COLUMNS} FROM [kernel_jobs]{condition} ORDER BY [id] DESC LIMIT ?");
        let rows = self.db.fetch_all(&sql, &params).await?;
        let mut jobs = rows.iter().map(record).collect::<Result<Vec<_>, _>>()?;
        let next = match jobs.len() > size {
            true => {
                jobs.truncate(size);
                jobs.last().map(|j| j.id.clone())
            }
            false => None,
        };
        Ok(JobPage { jobs, next })
    }

    /// An admin's retry (see [`QueueBackend::retry_job`]).
    pub(super) async fn retry_now(&self, id: &str, now: i64) -> Result<JobChange, JobError> {
        let sql = "UPDATE [kernel_jobs] SET [status] = ?, [run_at] = ?, [updated_at] = ?, \
             [max_attempts] = CASE WHEN [max_attempts] > [attempts] THEN [max_attempts] ELSE [attempts] + 1 END \
             WHERE [id] = ? AND [status] IN (?, ?)";
        let params = [
            json!(JobStatus::Pending.as_str()),
            json!(now),
            json!(now),
            json!(id),
            json!(JobStatus::Retry.as_str()),
            json!(JobStatus::Dead.as_str()),
        ];
        let change = self.change(id, sql, &params).await?;
        if change == JobChange::Changed {
            self.ring();
        }
        if change == JobChange::Changed && self.db.kind().notifies() {
            // The job is due either way; without the wake-up, workers find it by polling.
            if let Err(e) = self.db.fetch_all(wake::NOTIFY, &[]).await {
                tracing::debug!(error = %e, "job wake-up not sent");
            }
        }
        Ok(change)
    }

    /// An admin's cancel (see [`QueueBackend::cancel_job`]).
    pub(super) async fn cancel_waiting(&self, id: &str, now: i64) -> Result<JobChange, JobError> {
        let sql = "UPDATE [kernel_jobs] SET [status] = ?, [unique_key] = NULL, [updated_at] = ? \
             WHERE [id] = ? AND [status] IN (?, ?)";
        let params = [
            json!(JobStatus::Cancelled.as_str()),
            json!(now),
            json!(id),
            json!(JobStatus::Pending.as_str()),
            json!(JobStatus::Retry.as_str()),
        ];
        self.change(id, sql, &params).await
    }

    /// Deletes done, dead and cancelled jobs last changed before `before` (see
    /// [`QueueBackend::prune`]).
    pub(super) async fn delete_finished(&self, before: i64) -> Result<u64, JobError> {
        let finished = [JobStatus::Done, JobStatus::Dead, JobStatus::Cancelled];
        let mut params: Vec<Value> = finished.iter().map(|s| json!(s.as_str())).collect();
        params.push(json!(before));
        let sql = "DELETE FROM [kernel_jobs] WHERE [status] IN (?, ?, ?) AND [updated_at] < ?";
        Ok(self.db.execute(sql, &params).await?)
    }

    /// Runs a guarded `UPDATE` of job `id`; when it hits nothing, says why.
    async fn change(&self, id: &str, sql: &str, params: &[Value]) -> Result<JobChange, JobError> {
        let hit = retry_deadlocks(|| async { Ok(self.db.execute(sql, params).await? == 1) }).await?;
        if hit {
            return Ok(JobChange::Changed);
        }
        Ok(match self.get(id).await? {
            Some(job) => JobChange::Refused(job.status),
            None => JobChange::NotFound,
        })
    }
}
