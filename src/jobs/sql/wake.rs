//! Wake-ups for idle workers on PostgreSQL: storing a due job (an enqueue, a
//! hand-back) sends a `NOTIFY` on channel `kernel_jobs`, delivered when its transaction
//! commits; each worker `LISTEN`s on a connection of its own and sees a counter change.
//! A notification that arrives while a worker is busy is not lost: the counter has
//! moved, so its next wait returns at once and it claims again. The channel is shared
//! by every schema of the database: a notification for another schema's queue costs
//! a worker one claim that finds nothing.

use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;

use crate::db::Db;

/// The channel.
pub(super) const CHANNEL: &str = "kernel_jobs";

/// The statement that notifies idle workers.
pub(super) const NOTIFY: &str = "SELECT pg_notify('kernel_jobs', '')";

/// Turns the channel's notifications into changes of `tx`, until every receiver is
/// gone; listens again after a lost connection (workers poll meanwhile).
pub(super) async fn listen(db: Db, tx: watch::Sender<u64>) {
    loop {
        match db.listen(CHANNEL).await {
            Ok(Some(mut notifications)) => {
                // Jobs stored before the listener went live: a claim finds them.
                tx.send_modify(|n| *n += 1);
                loop {
                    tokio::select! {
                        item = notifications.next() => match item {
                            Some(Ok(())) => tx.send_modify(|n| *n += 1),
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "job wake-up listener lost; polling until it is back");
                                break;
                            }
                            None => break,
                        },
                        () = tx.closed() => return,
                    }
                }
            }
            Ok(None) => return,
            Err(e) => tracing::warn!(error = %e, "job wake-up listener failed; polling meanwhile"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = tx.closed() => return,
        }
    }
}
