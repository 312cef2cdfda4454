//! The PostgreSQL side of the SQL queue: partial indexes, the claim, batched acks.
//!
//! Every claim and every ack changes a job's `status`, so PostgreSQL can never update a
//! job in place (no HOT update): each change leaves a dead row version and an entry in
//! every index whose predicate the new version meets, and nothing here waits for vacuum
//! to clear them. The queue therefore keeps two partial indexes holding only the rows a
//! claim can take, instead of one index over every status:
//!
//! - `kernel_jobs_waiting` (`priority`, `run_at`) of pending and retrying jobs;
//! - `kernel_jobs_leases` (`lease_until`) of running jobs: a claim reads only the
//!   leases that expired (usually none) and sorts them by priority and `run_at`; an
//!   index led by priority would make it walk every running job, and every dead version
//!   a running job left when it finished, on each claim.
//!
//! A finished job enters neither, and the statuses are written into the statements as
//! literals so that the server's cached generic plan still proves the partial indexes
//! usable. A claim is one `WITH .. UPDATE .. RETURNING` of two `FOR UPDATE SKIP
//! LOCKED` scans; a batch of acks is one `UPDATE .. FROM jsonb_to_recordset(..)`: one
//! round trip and one commit for the whole batch.

use std::collections::HashSet;

use serde_json::{json, Value};

use super::claim::{retry_deadlocks, CLAIM_SET};
use super::{record, SqlQueue, COLUMNS};
use crate::jobs::backend::{JobRecord, JobStatus};
use crate::jobs::JobError;

/// The partial indexes; the full index of the other engines is dropped.
pub(super) fn indexes() -> [String; 3] {
    let (pending, retry, running) =
        (JobStatus::Pending.as_str(), JobStatus::Retry.as_str(), JobStatus::Running.as_str());
    [
        format!(
            "CREATE INDEX IF NOT EXISTS [kernel_jobs_waiting] ON [kernel_jobs] ([priority], [run_at]) \
             WHERE [status] IN ('{pending}', '{retry}')"
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS [kernel_jobs_leases] ON [kernel_jobs] ([lease_until]) \
             WHERE [status] = '{running}'"
        ),
        "DROP INDEX IF EXISTS [kernel_jobs_due]".to_owned(),
    ]
}

impl SqlQueue {
    /// Claims the best `n` waiting jobs or expired leases; `set` is [`CLAIM_SET`]'s values.
    pub(super) async fn claim_postgres(&self, n: usize, set: &[Value], now: i64) -> Result<Vec<JobRecord>, JobError> {
        let (pending, retry, running) =
            (JobStatus::Pending.as_str(), JobStatus::Retry.as_str(), JobStatus::Running.as_str());
        let sql = format!(
            "WITH [waiting] AS (SELECT [id], [priority], [run_at] FROM [kernel_jobs] \
               WHERE [status] IN ('{pending}', '{retry}') AND [run_at] <= ? \
               ORDER BY [priority], [run_at] LIMIT ? FOR UPDATE SKIP LOCKED), \
             [expired] AS (SELECT [id], [priority], [run_at] FROM [kernel_jobs] \
               WHERE [status] = '{running}' AND [lease_until] < ? \
               ORDER BY [priority], [run_at] LIMIT ? FOR UPDATE SKIP LOCKED) \
             UPDATE [kernel_jobs] SET {CLAIM_SET} WHERE [id] IN (SELECT [id] FROM \
             (SELECT * FROM [waiting] UNION ALL SELECT * FROM [expired]) AS [due] \
             ORDER BY [priority], [run_at] LIMIT ?) RETURNING {COLUMNS}"
        );
        let n = json!(n);
        let mut params = vec![json!(now), n.clone(), json!(now), n.clone()];
        params.extend_from_slice(set);
        params.push(n);
        let rows = self.db.fetch_all(&sql, &params).await?;
        rows.iter().map(record).collect()
    }

    /// Marks done every ack whose token still holds its job, in one statement (its
    /// text is the same for every batch, so the server plans it once per connection);
    /// says for each ack whether it did.
    pub(super) async fn complete_many_postgres(
        &self,
        acks: &[(&str, &str, &Value)],
        now: i64,
    ) -> Result<Vec<bool>, JobError> {
        // Only a running job holds a lease token (claims set it, every other change
        // clears it), so the token alone proves the job still running. A test of the
        // status would also let the planner read every row of `kernel_jobs_leases`,
        // dead versions included, instead of the primary key. Sorted by id: rows are
        // updated in that order, so two batches cannot deadlock.
        let mut order: Vec<usize> = (0..acks.len()).collect();
        order.sort_by_key(|&i| acks[i].0);
        let batch: Vec<Value> = order
            .iter()
            .map(|&i| json!({"id": acks[i].0, "token": acks[i].1, "result": acks[i].2.to_string()}))
            .collect();
        let sql = format!(
            "UPDATE [kernel_jobs] AS [j] SET [status] = '{}', [result] = [v].[result], [error] = NULL, \
             [lease_token] = NULL, [lease_until] = NULL, [unique_key] = NULL, [updated_at] = ? \
             FROM jsonb_to_recordset(?) AS [v] ([id] TEXT, [token] TEXT, [result] TEXT) \
             WHERE [j].[id] = [v].[id] AND [j].[lease_token] = [v].[token] \
             RETURNING [v].[id], [v].[token]",
            JobStatus::Done.as_str(),
        );
        let params = [json!(now), Value::Array(batch)];
        let rows = retry_deadlocks(|| async { Ok(self.db.fetch_all(&sql, &params).await?) }).await?;
        let acked: HashSet<(String, String)> =
            rows.iter().map(|row| (super::text(row, "id"), super::text(row, "token"))).collect();
        Ok(acks.iter().map(|(id, token, _)| acked.contains(&((*id).to_owned(), (*token).to_owned()))).collect())
    }
}
