//! Claiming due jobs: the best `n` by priority then `run_at`, each under a lease.
//!
//! Due jobs come from three index scans of `kernel_jobs_due` (`status`, `priority`,
//! `run_at`), each in that order and stopping after `n` rows: pending and retrying jobs
//! whose `run_at` has come, and running jobs whose lease expired. On PostgreSQL and
//! MySQL the scans lock their rows `FOR UPDATE SKIP LOCKED`, so concurrent claims pass
//! each other by instead of waiting. The best `n` of the scanned rows get the claim's
//! lease token; rows scanned but not taken are unlocked at commit. No scan reads done
//! or dead jobs, so a claim costs as much with millions of finished jobs as with none.
//!
//! PostgreSQL scans its own partial indexes instead (see `postgres.rs`): two scans, one
//! for waiting jobs and one for expired leases, each over the rows it can take only.
//! PostgreSQL and SQLite run the claim as one `WITH .. UPDATE .. RETURNING` statement.
//! MySQL/MariaDB (no `UPDATE .. RETURNING`) run it in a transaction: one locking
//! `SELECT` of the three scans, one `UPDATE` of the chosen ids, commit.

use std::time::Duration;

use serde_json::{json, Value};

use super::{ms, record, SqlQueue, COLUMNS};
use crate::db::DatabaseKind;
use crate::jobs::backend::{ClaimedJob, JobRecord, JobStatus};
use crate::jobs::JobError;

/// What each claimed job gets.
pub(super) const CLAIM_SET: &str = "[status] = ?, [lease_token] = ?, [lease_until] = ?, [worker_id] = ?, \
    [attempts] = [attempts] + 1, [updated_at] = ?";

/// The three scans: a status and the time column that must have passed, with its test.
const SCANS: [(JobStatus, &str); 3] = [
    (JobStatus::Pending, "[run_at] <= ?"),
    (JobStatus::Retry, "[run_at] <= ?"),
    (JobStatus::Running, "[lease_until] < ?"),
];

/// One scan's `SELECT` of `columns`; its parameters are the status, now and the limit.
/// The limit is a parameter, so claims of any size share one prepared statement.
fn scan(columns: &str, passed: &str, lock: &str) -> String {
    format!(
        "SELECT {columns} FROM [kernel_jobs] WHERE [status] = ? AND {passed} \
         ORDER BY [priority], [run_at] LIMIT ?{lock}"
    )
}

fn scan_params(now: i64, n: usize) -> Vec<Value> {
    SCANS.iter().flat_map(|(status, _)| [json!(status.as_str()), json!(now), json!(n)]).collect()
}

fn is_deadlock(e: &JobError) -> bool {
    let text = e.to_string();
    text.contains("Deadlock") || text.contains("40001") || text.contains("40P01")
}

/// Runs `op` again (up to 5 times, with a short growing pause) when the engine
/// picked it as a deadlock victim, as InnoDB does when workers' claims and acks
/// race. The victim's transaction is rolled back whole, so trying again is safe.
pub(super) async fn retry_deadlocks<T, F, Fut>(mut op: F) -> Result<T, JobError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, JobError>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Err(e) if attempt < 5 && is_deadlock(&e) => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(2 * attempt)).await;
            }
            result => return result,
        }
    }
}

impl SqlQueue {
    /// Claims up to `n` due jobs (see the module docs).
    pub(super) async fn claim_due(
        &self,
        worker_id: &str,
        n: usize,
        lease: Duration,
        now: i64,
    ) -> Result<Vec<ClaimedJob>, JobError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        // One token for the whole claim: acks match on (id, token), and a reclaim of any
        // of these jobs gives it a new token, so a shared token is as safe as one each.
        let token = uuid::Uuid::new_v4().simple().to_string();
        let set =
            [json!(JobStatus::Running.as_str()), json!(token), json!(now + ms(lease)), json!(worker_id), json!(now)];
        let mut jobs = retry_deadlocks(|| async {
            match self.db.kind() {
                DatabaseKind::Mysql => self.claim_in_transaction(n, &set, now).await,
                DatabaseKind::Postgres => self.claim_postgres(n, &set, now).await,
                _ => self.claim_returning(n, &set, now).await,
            }
        })
        .await?;
        // Ties in the scans' order are broken by id (UUID v7: enqueue order), as on Redis.
        jobs.sort_by(|a, b| (a.priority, a.run_at, &a.id).cmp(&(b.priority, b.run_at, &b.id)));
        Ok(jobs.into_iter().map(|job| ClaimedJob { job, token: token.clone() }).collect())
    }

    /// SQLite: one statement, one round trip.
    async fn claim_returning(&self, n: usize, set: &[Value], now: i64) -> Result<Vec<JobRecord>, JobError> {
        let cols = "[id], [priority], [run_at]";
        let ctes: Vec<String> = SCANS
            .iter()
            .enumerate()
            .map(|(i, (_, passed))| format!("[due{i}] AS ({})", scan(cols, passed, "")))
            .collect();
        let sql = format!(
            "WITH {} UPDATE [kernel_jobs] SET {CLAIM_SET} WHERE [id] IN (SELECT [id] FROM \
             (SELECT {cols} FROM [due0] UNION ALL SELECT {cols} FROM [due1] UNION ALL SELECT {cols} FROM [due2]) AS [due] \
             ORDER BY [priority], [run_at] LIMIT ?) RETURNING {COLUMNS}",
            ctes.join(", ")
        );
        let mut params = scan_params(now, n);
        params.extend_from_slice(set);
        params.push(json!(n));
        let rows = self.db.fetch_all(&sql, &params).await?;
        rows.iter().map(record).collect()
    }

    /// MySQL/MariaDB: lock and read the due rows, update the chosen ones, commit.
    async fn claim_in_transaction(&self, n: usize, set: &[Value], now: i64) -> Result<Vec<JobRecord>, JobError> {
        let lock = " FOR UPDATE SKIP LOCKED";
        let parts: Vec<String> = SCANS.iter().map(|(_, passed)| format!("({})", scan(COLUMNS, passed, lock))).collect();
        let select = format!("{} ORDER BY [priority], [run_at] LIMIT ?", parts.join(" UNION ALL "));
        let mut params = scan_params(now, n);
        params.push(json!(n));
        let mut tx = self.db.transaction().await?;
        let rows = tx.fetch_all(&select, &params).await?;
        if rows.is_empty() {
            // Release the locks of the rows this locking read scanned, now.
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        let mut jobs = rows.iter().map(record).collect::<Result<Vec<_>, _>>()?;
        // The id list is padded to a power of two with its last id (a repeat matches
        // nothing more), so a few prepared statements serve claims of every size.
        let padded = jobs.len().next_power_of_two();
        let marks = vec!["?"; padded].join(", ");
        let mut params = set.to_vec();
        params.extend(jobs.iter().map(|j| json!(j.id)));
        params.resize(set.len() + padded, json!(jobs[jobs.len() - 1].id));
        tx.execute(&format!("UPDATE [kernel_jobs] SET {CLAIM_SET} WHERE [id] IN ({marks})"), &params).await?;
        tx.commit().await?;
        for job in &mut jobs {
            job.status = JobStatus::Running;
            job.attempts += 1;
            job.updated_at = now;
        }
        Ok(jobs)
    }
}
