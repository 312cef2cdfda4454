//! The queue's depth for the `kernel_jobs_queue_depth` gauge: one statement of three
//! counts over the unfinished jobs (pending and retry, due or not; running), never
//! reading the finished ones.

use serde_json::json;

use super::{int, SqlQueue};
use crate::jobs::backend::{JobStatus, QueueDepth};
use crate::jobs::JobError;

impl SqlQueue {
    /// Due, scheduled and running jobs at `now` (see `QueueBackend::queue_depth`).
    pub(super) async fn depth(&self, now: i64) -> Result<QueueDepth, JobError> {
        let (pending, retry, running) =
            (JobStatus::Pending.as_str(), JobStatus::Retry.as_str(), JobStatus::Running.as_str());
        let waiting = format!("SELECT COUNT(*) FROM [kernel_jobs] WHERE [status] IN ('{pending}', '{retry}')");
        let sql = format!(
            "SELECT ({waiting} AND [run_at] <= ?) AS [due], ({waiting} AND [run_at] > ?) AS [scheduled], \
             (SELECT COUNT(*) FROM [kernel_jobs] WHERE [status] = '{running}') AS [running]"
        );
        let row = self.db.fetch_optional(&sql, &[json!(now), json!(now)]).await?;
        let count = |col: &str| row.as_ref().map_or(0, |r| u64::try_from(int(r, col)).unwrap_or(0));
        Ok(QueueDepth { due: count("due"), scheduled: count("scheduled"), running: count("running") })
    }
}
