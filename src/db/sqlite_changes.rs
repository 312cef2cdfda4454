//! Commits by other connections to a SQLite file, as a stream: what lets idle job
//! workers on SQLite wake within milliseconds of an enqueue without a busy poll.
//!
//! A thread of its own holds one read connection and asks SQLite's `PRAGMA
//! data_version` every [`EVERY`]: the value changes when any other connection (this
//! process's or another's) has committed since the last ask. Each change is an item;
//! changes that come while an item waits to be taken are one item. The question costs
//! microseconds and takes no lock (WAL readers never block the writer). The thread ends
//! when the stream is dropped; a failed question ends the stream with an error.

use std::time::Duration;

use futures::StreamExt;
use rusqlite::Connection;
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::db::backend::Notifications;
use crate::db::DbError;

/// How often the thread asks.
pub(crate) const EVERY: Duration = Duration::from_millis(10);

/// Watches the database file that `conn` (a connection of its own) reads.
pub(crate) fn watch(conn: Connection) -> Result<Notifications, DbError> {
    let version = |c: &Connection| c.prepare_cached("PRAGMA data_version")?.query_row([], |r| r.get::<_, i64>(0));
    let mut last = version(&conn).map_err(DbError::query)?;
    let (tx, rx) = mpsc::channel::<Result<(), DbError>>(1);
    std::thread::Builder::new()
        .name("kernel-sqlite-changes".into())
        .spawn(move || loop {
            std::thread::sleep(EVERY);
            if tx.is_closed() {
                return;
            }
            match version(&conn) {
                Ok(v) if v != last => {
                    last = v;
                    if let Err(TrySendError::Closed(_)) = tx.try_send(Ok(())) {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(DbError::query(e)));
                    return;
                }
            }
        })
        .map_err(|e| DbError::Connect(format!("change watcher thread: {e}")))?;
    Ok(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }).boxed())
}
