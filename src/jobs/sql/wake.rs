//! Wake-ups for idle workers on the SQL engines that can give them (see
//! `DatabaseKind::change_feed`):
//!
//! - PostgreSQL: storing a due job (an enqueue, a hand-back) sends a `NOTIFY` on channel
//!   `kernel_jobs`, delivered when its transaction commits; each worker `LISTEN`s on a
//!   connection of its own (see `jobs::wakeups`). The channel is shared by every schema
//!   of the database: a notification for another schema's queue costs a worker one
//!   claim that finds nothing.
//! - SQLite: each worker watches the file for commits by any process (`PRAGMA
//!   data_version`, every few milliseconds, on a read connection of its own); after a
//!   commit, one indexed read asks whether a job is due, and only then is it a wake-up,
//!   so the app's own writes never make idle workers take the write lock to claim.
//!
//! MySQL has neither: its workers poll.

use futures::StreamExt;
use tokio::sync::watch;

use serde_json::json;

use crate::db::dialect::ChangeFeed;
use crate::db::Db;
use crate::jobs::backend::{now_ms, JobStatus};
use crate::jobs::wakeups::{self, Messages};

/// The channel.
pub(super) const CHANNEL: &str = "kernel_jobs";

/// The statement that notifies idle workers.
pub(super) const NOTIFY: &str = "SELECT pg_notify('kernel_jobs', '')";

/// Forwards the channel's notifications (or the file's commits that leave a job
/// due) to `tx` until every receiver is gone.
pub(super) async fn listen(db: Db, tx: watch::Sender<u64>) {
    wakeups::forward(tx, || {
        let db = db.clone();
        async move {
            let notifications = db.listen(CHANNEL).await.map_err(|e| e.to_string())?;
            Ok(notifications.map(|n| -> Messages {
                let messages = n.map(|item| item.map_err(|e| e.to_string()));
                match db.kind().change_feed() {
                    Some(ChangeFeed::Commits) => messages
                        .filter(move |item| {
                            let db = db.clone();
                            let lost = item.is_err();
                            async move { lost || due(&db).await }
                        })
                        .boxed(),
                    Some(ChangeFeed::Notifications) | None => messages.boxed(),
                }
            }))
        }
    })
    .await;
}

/// Whether a pending or retried job is due (a failed read says yes: the claim decides).
async fn due(db: &Db) -> bool {
    let sql = "SELECT 1 AS due FROM [kernel_jobs] WHERE [status] IN (?, ?) AND [run_at] <= ? LIMIT 1";
    let params = [json!(JobStatus::Pending.as_str()), json!(JobStatus::Retry.as_str()), json!(now_ms())];
    db.fetch_optional(sql, &params).await.map_or(true, |row| row.is_some())
}
