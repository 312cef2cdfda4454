//! Commits by other connections to a SQLite file, as a stream: what lets idle job
//! workers on SQLite wake within milliseconds of an enqueue, at no cost while nothing
//! is written.
//!
//! A read connection of the watcher's own asks SQLite's `PRAGMA data_version`, whose
//! value changes when any other connection (this process's or another's) has committed
//! since the last ask. Each change is an item; changes that come while an item waits to
//! be taken are one item. The question costs microseconds and takes no lock (WAL
//! readers never block the writer). When it is asked:
//!
//! - On Linux, when the OS reports a write to the database file or its `-wal` file
//!   (inotify, watching the folder that holds them, so a WAL made anew is still seen),
//!   at most once per [`GAP`] (a burst of writes is one question), and every
//!   [`SAFETY`] in case a report was missed. Nothing runs while nothing is written.
//!   The OS reports the writes made on this host: a writer on another host (through a
//!   network file system, where SQLite's WAL does not work anyway) is seen by the
//!   safety question, within a second.
//! - Where no watch can be set up (another OS, inotify's per-user limits reached, a
//!   database SQLite names no file for, no tokio reactor), every [`EVERY`] on a thread
//!   of its own: the fallback, which costs about 1 % of a core while idle
//!   (CONTRIBUTING.md, jobs). The start-up log says which one runs.
//!
//! A failed question (or a lost watch) ends the stream with an error; dropping the
//! stream stops the watcher.

use std::time::Duration;

use futures::StreamExt;
use rusqlite::Connection;
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::db::backend::Notifications;
use crate::db::DbError;

/// How often the fallback thread asks.
pub(crate) const EVERY: Duration = Duration::from_millis(10);

/// The shortest time between two questions prompted by the OS's reports: under a
/// stream of writes, the watcher asks (and a job worker reads the queue) at most this
/// often.
pub(crate) const GAP: Duration = Duration::from_millis(5);

/// How often the watcher asks when the OS reports nothing.
pub(crate) const SAFETY: Duration = Duration::from_secs(1);

/// Watches the database file that `conn` (a connection of its own) reads: through the
/// OS's reports of its writes where it can, else by asking every [`EVERY`].
pub(crate) fn watch(conn: Connection) -> Result<Notifications, DbError> {
    #[cfg(target_os = "linux")]
    match file_events::Files::open(&conn) {
        Ok(files) => {
            tracing::debug!(path = conn.path().unwrap_or_default(), "SQLite commits: watching the file's writes");
            return file_events::watch(files, conn);
        }
        Err(e) => tracing::info!(
            error = %e,
            every_ms = EVERY.as_millis(),
            "SQLite commits: the OS cannot report the file's writes; asking on a timer"
        ),
    }
    watch_polling(conn)
}

/// The database's `data_version`.
fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("PRAGMA data_version")?.query_row([], |r| r.get::<_, i64>(0))
}

/// The fallback: a thread asks every [`EVERY`].
pub(crate) fn watch_polling(conn: Connection) -> Result<Notifications, DbError> {
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

#[cfg(target_os = "linux")]
mod file_events;

#[cfg(test)]
mod tests;
