//! Upgrading a `kernel_jobs` table in place: columns added after the table's first
//! release are added to tables created before them, when the queue opens.
//!
//! `CREATE TABLE IF NOT EXISTS` leaves an existing table as it is; a read of each newer
//! column tells whether it is there. Every engine has `ALTER TABLE .. ADD COLUMN`, and a
//! nullable column without a default changes no existing row.

use super::JOBS_TABLE;
use crate::db::Db;
use crate::jobs::JobError;

/// `trace_parent`: the W3C `traceparent` of the span that enqueued the job.
const TRACE_COLUMN: &str = "[trace_parent] VARCHAR(64)";

/// Upgrades a `kernel_jobs` created before `trace_parent` in place: the column is
/// added when a read of it fails. Every engine has `ALTER TABLE .. ADD COLUMN`, and a
/// nullable column without a default changes no existing row. Two processes opening
/// an old database at once may both try; the loser's error is ignored once the
/// column reads.
pub(super) async fn add_missing_columns(db: &Db) -> Result<(), JobError> {
    // Qualified: SQLite reads an unknown, unqualified "column" as a string literal.
    let probe = "SELECT [kernel_jobs].[trace_parent] FROM [kernel_jobs] WHERE 1 = 0";
    if db.fetch_all(probe, &[]).await.is_ok() {
        return Ok(());
    }
    let added = db.execute_schema(&format!("ALTER TABLE [kernel_jobs] ADD COLUMN {TRACE_COLUMN}")).await;
    match (added, db.fetch_all(probe, &[]).await) {
        (_, Ok(_)) => {
            tracing::info!(table = JOBS_TABLE, column = "trace_parent", "jobs table upgraded");
            Ok(())
        }
        (Err(e), Err(_)) => Err(e.into()),
        (Ok(()), Err(e)) => Err(e.into()),
    }
}
