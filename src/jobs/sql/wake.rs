//! Wake-ups for idle workers on PostgreSQL: storing a due job (an enqueue, a
//! hand-back) sends a `NOTIFY` on channel `kernel_jobs`, delivered when its transaction
//! commits; each worker `LISTEN`s on a connection of its own (see `jobs::wakeups`).
//! The channel is shared by every schema of the database: a notification for another
//! schema's queue costs a worker one claim that finds nothing.

use futures::StreamExt;
use tokio::sync::watch;

use crate::db::Db;
use crate::jobs::wakeups::{self, Messages};

/// The channel.
pub(super) const CHANNEL: &str = "kernel_jobs";

/// The statement that notifies idle workers.
pub(super) const NOTIFY: &str = "SELECT pg_notify('kernel_jobs', '')";

/// Forwards the channel's notifications to `tx` until every receiver is gone.
pub(super) async fn listen(db: Db, tx: watch::Sender<u64>) {
    wakeups::forward(tx, || {
        let db = db.clone();
        async move {
            let notifications = db.listen(CHANNEL).await.map_err(|e| e.to_string())?;
            Ok(notifications.map(|n| -> Messages { n.map(|item| item.map_err(|e| e.to_string())).boxed() }))
        }
    })
    .await;
}
