//! The watcher on Linux: inotify reports writes to the database's folder; a report that
//! names the database file or its `-wal` file prompts one `data_version` question.

use std::ffi::OsString;
use std::io;
use std::time::Instant;

use futures::{FutureExt, StreamExt};
use inotify::{EventMask, EventOwned, EventStream, Inotify, WatchMask};
use rusqlite::Connection;

use super::{version, GAP, SAFETY};
use crate::db::backend::Notifications;
use crate::db::DbError;

/// The OS's reports of writes to one database's files.
#[derive(Debug)]
pub(super) struct Files {
    events: EventStream<[u8; 4096]>,
    /// The database file's name and its WAL's, in their folder.
    names: [OsString; 2],
}

impl Files {
    /// Watches the folder of the file `conn` reads; an error where there is no file
    /// (in memory, a temporary database), no inotify or no tokio reactor.
    pub(super) fn open(conn: &Connection) -> io::Result<Self> {
        let path = conn.path().filter(|p| !p.is_empty()).ok_or_else(|| io::Error::other("no database file"))?;
        // The folder that holds the file itself (its writes are reported there, not
        // where a symbolic link to it lies).
        let path = std::fs::canonicalize(path)?;
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(io::Error::other("no folder"));
        };
        let mut wal = name.to_owned();
        wal.push("-wal");
        let inotify = Inotify::init()?;
        inotify.watches().add(dir, WatchMask::MODIFY)?;
        Ok(Self { events: inotify.into_event_stream([0; 4096])?, names: [name.to_owned(), wal] })
    }

    /// Waits for a report of a write to the database (or an overflow of the reports,
    /// which may have held one): `true`; or for [`SAFETY`] to pass: `false`. An error
    /// when the watch is gone (its folder removed) or the reports cannot be read.
    pub(super) async fn written(&mut self) -> Result<bool, DbError> {
        let safety = tokio::time::sleep(SAFETY);
        tokio::pin!(safety);
        loop {
            tokio::select! {
                event = self.events.next() => match event {
                    Some(Ok(e)) if e.mask.contains(EventMask::IGNORED) => {
                        return Err(DbError::query("the database's folder is no longer watched"));
                    }
                    Some(Ok(e)) if self.concerns(&e) => return Ok(true),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(DbError::query(format!("file events: {e}"))),
                    None => return Err(DbError::query("file events ended")),
                },
                () = &mut safety => return Ok(false),
            }
        }
    }

    fn concerns(&self, event: &EventOwned) -> bool {
        event.mask.contains(EventMask::Q_OVERFLOW) || event.name.as_ref().is_some_and(|n| self.names.contains(n))
    }

    /// Drops the reports already here: the next question answers for them.
    fn drain(&mut self) {
        while let Some(Some(Ok(_))) = self.events.next().now_or_never() {}
    }
}

/// The watcher's connection and the last `data_version` it saw.
#[derive(Debug)]
struct Versions {
    conn: Option<Connection>,
    last: i64,
}

impl Versions {
    /// Whether another connection committed since the last question. Asked on a
    /// blocking thread: a read may wait for a lock where the file is not in WAL mode.
    async fn changed(&mut self) -> Result<bool, DbError> {
        let conn = self.conn.take().ok_or(DbError::Closed)?;
        let (conn, v) = tokio::task::spawn_blocking(move || {
            let v = version(&conn);
            (conn, v)
        })
        .await
        .map_err(|e| DbError::query(format!("change watcher: {e}")))?;
        self.conn = Some(conn);
        let v = v.map_err(DbError::query)?;
        Ok(std::mem::replace(&mut self.last, v) != v)
    }
}

/// A stream with an item per question that finds a commit; it ends after an error.
pub(super) fn watch(files: Files, conn: Connection) -> Result<Notifications, DbError> {
    let last = version(&conn).map_err(DbError::query)?;
    let state = Some((files, Versions { conn: Some(conn), last }, Instant::now()));
    Ok(futures::stream::unfold(state, |state| async move {
        let (mut files, mut versions, mut asked) = state?;
        loop {
            if let Err(e) = files.written().await {
                return Some((Err(e), None));
            }
            let wait = GAP.saturating_sub(asked.elapsed());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            files.drain();
            asked = Instant::now();
            match versions.changed().await {
                Ok(true) => return Some((Ok(()), Some((files, versions, asked)))),
                Ok(false) => {}
                Err(e) => return Some((Err(e), None)),
            }
        }
    })
    .boxed())
}
