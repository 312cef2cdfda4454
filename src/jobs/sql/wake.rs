//! Wake-ups for idle workers on the SQL engines that can give them (see
//! `DatabaseKind::change_feed`):
//!
//! - PostgreSQL: storing a due job (an enqueue, a hand-back) sends a `NOTIFY` on channel
//!   `kernel_jobs`, delivered when its transaction commits; each worker `LISTEN`s on a
//!   connection of its own (see `jobs::wakeups`). The channel is shared by every schema
//!   of the database: a notification for another schema's queue costs a worker one
//!   claim that finds nothing.
//! - SQLite: each worker watches the file for commits by any process
//!   (`db::sqlite_changes`: on Linux the OS reports the file's writes and each prompts a
//!   `PRAGMA data_version` question, so an idle worker with nothing written costs
//!   nothing; elsewhere the question is asked every 10 ms); after a commit, one indexed
//!   read asks whether a job is due, and only then is it a wake-up, so the app's own
//!   writes never make idle workers take the write lock to claim.
//!
//! - MySQL/MariaDB can notify no one. A process that stores a due job on this host wakes
//!   the idle workers over local sockets once it is committed (`doorbell.rs`): pickup in
//!   a few milliseconds, with no checks needed for it. For enqueuers on other
//!   hosts each worker also asks, with the same indexed read, whether a job is due, every
//!   `JobSettings::due_check_interval` (default 50 ms: such an enqueue is picked up after
//!   ~25 ms at the median, 50 ms at worst on an idle worker); where no socket can be
//!   bound (not Unix, an unusable temp dir) it asks every [`CHECK_EVERY`] instead, as
//!   logged at info. A check pauses at least [`CHECK_DUTY`] times as long as the last
//!   answer took, so the checks hold a slow server's time for one part in twenty at most,
//!   and runs on a connection of the worker's own outside the pool, so a check is one
//!   round trip. A scheduled job whose time has come is seen by the next check; a check
//!   that finds a job due while the worker is busy costs nothing but the check. A failed
//!   check ends the feed: workers poll at `poll_interval` until a check succeeds again,
//!   a second later.

use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::watch;

use serde_json::json;

use super::doorbell::Bell;
use crate::db::dialect::ChangeFeed;
use crate::db::{Connection, Db};
use crate::jobs::backend::{now_ms, JobStatus};
use crate::jobs::wakeups::{self, Messages};

/// The channel.
pub(super) const CHANNEL: &str = "kernel_jobs";

/// The statement that notifies idle workers.
pub(super) const NOTIFY: &str = "SELECT pg_notify('kernel_jobs', '')";

/// How often a worker asks whether a job is due where nothing notifies it (MySQL) and
/// no local socket wakes it.
pub(super) const CHECK_EVERY: Duration = Duration::from_millis(10);

/// The pause between two checks is at least this many times the last check's time.
pub(super) const CHECK_DUTY: u32 = 20;

/// The longest pause between two checks (a server that slow is polled as often).
const CHECK_MAX: Duration = Duration::from_millis(500);

/// Forwards the channel's notifications (or the file's commits that leave a job
/// due) to `tx` until every receiver is gone.
/// `check_every`: the due checks' interval where a local socket wakes the worker too.
pub(super) async fn listen(db: Db, tx: watch::Sender<u64>, check_every: Duration) {
    wakeups::forward(tx, || {
        let db = db.clone();
        async move {
            if db.kind().change_feed() == Some(ChangeFeed::DueChecks) {
                return Ok(Some(match Bell::bind(db.location()) {
                    Ok(bell) => futures::stream::select(bell.rings(), due_checks(db, check_every)).boxed(),
                    Err(e) => {
                        tracing::info!(error = %e, "no local socket for job wake-ups; asking every 10 ms whether a job is due");
                        due_checks(db, CHECK_EVERY)
                    }
                }));
            }
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
                    Some(ChangeFeed::Notifications | ChangeFeed::DueChecks) | None => messages.boxed(),
                }
            }))
        }
    })
    .await;
}

/// An item each time a check finds a job due; an error, and the end, when a check fails.
/// The checks run on a connection of the feed's own (one round trip each: no pool
/// acquire, no ping), opened by the first check.
fn due_checks(db: Db, every: Duration) -> Messages {
    futures::stream::unfold((db, None, every), move |(db, mut conn, mut pause)| async move {
        loop {
            tokio::time::sleep(pause).await;
            let asked = Instant::now();
            let answer = check(&db, &mut conn).await;
            pause = asked.elapsed().saturating_mul(CHECK_DUTY).clamp(every, CHECK_MAX.max(every));
            match answer {
                Ok(false) => {}
                Ok(true) => return Some((Ok(()), (db, conn, pause))),
                Err(e) => return Some((Err(e), (db, None, pause))),
            }
        }
    })
    .boxed()
}

/// One due check on `conn`, opened first if it is not yet.
async fn check(db: &Db, conn: &mut Option<Connection>) -> Result<bool, String> {
    let conn = match conn {
        Some(conn) => conn,
        None => conn.insert(db.own_connection().await.map_err(|e| e.to_string())?),
    };
    let row = conn.fetch_optional(DUE, &due_params()).await.map_err(|e| e.to_string())?;
    Ok(row.is_some())
}

/// Whether a pending or retried job is due (a failed read says yes: the claim decides).
async fn due(db: &Db) -> bool {
    due_now(db).await.unwrap_or(true)
}

/// Whether a pending or retried job is due: one indexed read that stops at the first.
async fn due_now(db: &Db) -> Result<bool, String> {
    db.fetch_optional(DUE, &due_params()).await.map(|row| row.is_some()).map_err(|e| e.to_string())
}

/// The indexed read that asks whether a pending or retried job is due.
const DUE: &str = "SELECT 1 AS due FROM [kernel_jobs] WHERE [status] IN (?, ?) AND [run_at] <= ? LIMIT 1";

fn due_params() -> [serde_json::Value; 3] {
    [json!(JobStatus::Pending.as_str()), json!(JobStatus::Retry.as_str()), json!(now_ms())]
}
