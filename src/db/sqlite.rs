//! SQLite through rusqlite, behind a kernel-owned pool.
//!
//! One writer connection (SQLite allows one writer at a time; queueing writers on an
//! async mutex instead of SQLite's lock means "database is locked" never reaches a
//! caller) and up to `pool_size` readers, which WAL lets run beside the writer. Every
//! call runs in `spawn_blocking`; statements are prepared once per connection and cached.
//! WAL checkpoints run on a thread of their own (see `sqlite_checkpoints`).
//!
//! Durability: `synchronous=NORMAL` (the default) in WAL mode survives a crash of the
//! process, but the last commits may roll back on power loss or an OS crash;
//! `synchronous=FULL` survives those too and costs an fsync per commit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params_from_iter, Connection, OpenFlags, ToSql};
use tokio::sync::{OwnedMutexGuard, Semaphore};

use crate::db::backend::{Backend, TxBackend};
use crate::db::json_rows::Columns;
use crate::db::sqlite_checkpoints::{self, CheckpointThread, Checkpoints};
use crate::db::sqlite_rows::{json_of, rows_of};
use crate::db::value::{Param, Row};
use crate::db::{DbError, SqliteSynchronous};

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const STATEMENT_CACHE: usize = 256;

type Writer = Arc<sqlite_checkpoints::Writer>;

/// The pool: one writer and its readers.
#[derive(Debug)]
pub(crate) struct SqliteBackend {
    writer: Writer,
    readers: Option<Arc<Readers>>,
    /// `None` in memory (no WAL).
    checkpoints: Option<Checkpoints>,
    checkpoint_thread: Mutex<Option<CheckpointThread>>,
    waits: crate::db::metrics::Waits,
}

#[derive(Debug)]
struct Readers {
    path: String,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    /// How many readers there are.
    size: usize,
}

impl SqliteBackend {
    /// Opens (creating) the file at `path`, in WAL mode.
    pub(crate) async fn open(path: &str, readers: u32, sync: SqliteSynchronous) -> Result<Self, DbError> {
        let owned = path.to_owned();
        let in_memory = path == ":memory:" || path.is_empty();
        let count = if in_memory { 0 } else { readers as usize };
        // Readers are opened up front, so a burst of load never waits on opening files.
        let (writer, idle) = tokio::task::spawn_blocking(move || {
            let writer = open_writer(&owned, sync)?;
            let idle = (0..count).map(|_| open_reader(&owned)).collect::<Result<Vec<_>, _>>()?;
            Ok::<_, DbError>((Arc::new(tokio::sync::Mutex::new(Some(writer))), idle))
        })
        .await
        .map_err(joined)??;
        let (checkpoints, thread) = if in_memory {
            (None, None)
        } else {
            let (owned, weak) = (path.to_owned(), Arc::downgrade(&writer));
            let started = tokio::task::spawn_blocking(move || sqlite_checkpoints::start(|| open(&owned), weak));
            let (checkpoints, thread) = started.await.map_err(joined)??;
            (Some(checkpoints), Some(thread))
        };
        let readers = (count > 0).then(|| {
            Arc::new(Readers {
                path: path.to_owned(),
                idle: Mutex::new(idle),
                permits: Arc::new(Semaphore::new(count)),
                size: count,
            })
        });
        let waits = crate::db::metrics::Waits::new("sqlite");
        Ok(Self { writer, readers, checkpoints, checkpoint_thread: Mutex::new(thread), waits })
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let guard = lock_writer(&self.writer, &self.waits).await;
        let result = tokio::task::spawn_blocking(move || {
            let conn = guard.as_ref().ok_or(DbError::Closed)?;
            if !conn.is_autocommit() {
                // A transaction whose task panicked left it open; nothing may build on it.
                let _ = conn.execute_batch("ROLLBACK");
            }
            f(conn)
        })
        .await
        .map_err(joined)?;
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.wrote();
        }
        result
    }

    /// Runs `f` on a reader (on the writer when there are none); `Ok(None)` from `f`
    /// means "this needs the writer", which the caller then asks for.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<Option<T>, DbError> + Send + 'static,
    ) -> Result<Option<T>, DbError> {
        let Some(readers) = self.readers.clone() else { return self.write(f).await };
        let permit = match readers.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let since = std::time::Instant::now();
                let permit = readers.permits.clone().acquire_owned().await.map_err(|_| DbError::Closed);
                self.waits.waited(since);
                permit?
            }
        };
        tokio::task::spawn_blocking(move || {
            let idle = readers.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
            // A reader is missing only if one panicked mid-call; it is replaced.
            let conn = match idle {
                Some(conn) => conn,
                None => open_reader(&readers.path)?,
            };
            let result = f(&conn);
            if !readers.permits.is_closed() {
                readers.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(conn);
            }
            drop(permit);
            result
        })
        .await
        .map_err(joined)?
    }
}

#[async_trait]
impl Backend for SqliteBackend {
    async fn execute(&self, sql: String, params: Vec<Param>) -> Result<u64, DbError> {
        self.write(move |conn| execute(conn, &sql, &params)).await
    }

    async fn fetch(&self, sql: String, params: Vec<Param>, writes: bool) -> Result<Vec<Row>, DbError> {
        if writes {
            return self.write(move |conn| fetch(conn, &sql, &params)).await;
        }
        let (sql, params) = (Arc::new(sql), Arc::new(params));
        let (query, args) = (Arc::clone(&sql), Arc::clone(&params));
        let rows = self
            .read(move |conn| {
                // One cache lookup: the statement that says it only reads is the one that runs.
                let mut stmt = conn.prepare_cached(&query).map_err(error)?;
                stmt.readonly().then(|| rows_of(&mut stmt, &args)).transpose()
            })
            .await?;
        match rows {
            Some(rows) => Ok(rows),
            // A statement that writes (`UPDATE .. RETURNING`, say) runs on the writer.
            None => self.write(move |conn| fetch(conn, &sql, &params)).await,
        }
    }

    async fn fetch_json(&self, sql: String, params: Vec<Param>, columns: Columns) -> Result<Option<Vec<u8>>, DbError> {
        let (sql, params, columns) = (Arc::new(sql), Arc::new(params), Arc::new(columns));
        let (query, args, cols) = (Arc::clone(&sql), Arc::clone(&params), Arc::clone(&columns));
        let json = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&query).map_err(error)?;
                stmt.readonly().then(|| json_of(&mut stmt, &args, &cols)).transpose()
            })
            .await?;
        match json {
            Some(json) => Ok(json),
            None => {
                self.write(move |conn| json_of(&mut *conn.prepare_cached(&sql).map_err(error)?, &params, &columns))
                    .await
            }
        }
    }

    async fn begin(&self) -> Result<Box<dyn TxBackend>, DbError> {
        let guard = Some(lock_writer(&self.writer, &self.waits).await);
        let mut tx = SqliteTx { guard, checkpoints: self.checkpoints.clone() };
        tx.with(|conn| {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            conn.execute_batch("BEGIN IMMEDIATE").map_err(error)
        })
        .await?;
        Ok(Box::new(tx))
    }

    /// Commits by other connections (see `sqlite_changes`), whatever the channel; `None`
    /// in memory, where no other connection can commit.
    async fn listen(&self, _channel: &str) -> Result<Option<crate::db::backend::Notifications>, DbError> {
        let Some(readers) = &self.readers else { return Ok(None) };
        let path = readers.path.clone();
        let conn = tokio::task::spawn_blocking(move || open_reader(&path)).await.map_err(joined)??;
        crate::db::sqlite_changes::watch(conn).map(Some)
    }

    fn pool_stats(&self) -> crate::db::metrics::PoolStats {
        let writer_idle = u64::from(self.writer.try_lock().is_ok());
        let (readers_idle, readers) = self.readers.as_ref().map_or((0, 0), |r| (r.permits.available_permits(), r.size));
        let readers_idle = u64::try_from(readers_idle).unwrap_or(0);
        let readers = u64::try_from(readers).unwrap_or(0);
        crate::db::metrics::PoolStats {
            in_use: (1 - writer_idle) + readers.saturating_sub(readers_idle),
            idle: writer_idle + readers_idle,
        }
    }

    async fn close(&self) {
        if let Some(readers) = &self.readers {
            readers.permits.close();
            readers.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        }
        self.writer.lock().await.take();
        let thread = self.checkpoint_thread.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.stop()).await;
        }
    }
}

/// The writer: at once when it is free, else after a wait (counted and timed, see
/// `db::metrics`).
async fn lock_writer(writer: &Writer, waits: &crate::db::metrics::Waits) -> OwnedMutexGuard<Option<Connection>> {
    if let Ok(guard) = Arc::clone(writer).try_lock_owned() {
        return guard;
    }
    let since = std::time::Instant::now();
    let guard = Arc::clone(writer).lock_owned().await;
    waits.waited(since);
    guard
}

/// A transaction: it owns the writer until commit, rollback or drop.
#[derive(Debug)]
struct SqliteTx {
    guard: Option<OwnedMutexGuard<Option<Connection>>>,
    checkpoints: Option<Checkpoints>,
}

impl SqliteTx {
    async fn with<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&Connection) -> Result<T, DbError> + Send + 'static,
    ) -> Result<T, DbError> {
        let guard = self.guard.take().ok_or(DbError::Closed)?;
        let (guard, result) = tokio::task::spawn_blocking(move || {
            let result = guard.as_ref().ok_or(DbError::Closed).and_then(f);
            (guard, result)
        })
        .await
        .map_err(joined)?;
        self.guard = Some(guard);
        result
    }
}

#[async_trait]
impl TxBackend for SqliteTx {
    async fn execute(&mut self, sql: String, params: Vec<Param>) -> Result<u64, DbError> {
        self.with(move |conn| execute(conn, &sql, &params)).await
    }

    async fn fetch(&mut self, sql: String, params: Vec<Param>) -> Result<Vec<Row>, DbError> {
        self.with(move |conn| fetch(conn, &sql, &params)).await
    }

    async fn execute_unprepared(&mut self, sql: String) -> Result<(), DbError> {
        // `execute_batch` runs every statement of the text (`prepare` would run the first
        // and drop the rest unseen); a statement's changes, `RETURNING` ones included, are
        // all made at its first step, which is all it takes.
        self.with(move |conn| conn.execute_batch(&sql).map_err(error)).await
    }

    async fn commit(mut self: Box<Self>) -> Result<(), DbError> {
        self.with(|conn| conn.execute_batch("COMMIT").map_err(error)).await?;
        self.guard = None;
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.wrote();
        }
        Ok(())
    }

    async fn rollback(mut self: Box<Self>) -> Result<(), DbError> {
        self.with(|conn| conn.execute_batch("ROLLBACK").map_err(error)).await?;
        self.guard = None;
        Ok(())
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        let Some(guard) = self.guard.take() else { return };
        let rollback = move || {
            if let Some(conn) = guard.as_ref() {
                let _ = conn.execute_batch("ROLLBACK");
            }
        };
        // The writer stays locked until the rollback is done, so no one sees the work.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => drop(handle.spawn_blocking(rollback)),
            Err(_) => rollback(),
        }
    }
}

fn open_writer(path: &str, sync: SqliteSynchronous) -> Result<Connection, DbError> {
    let conn = open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(connect)?;
    if path != ":memory:" && !mode.eq_ignore_ascii_case("wal") {
        return Err(DbError::Connect(format!("{path}: WAL mode refused (journal_mode={mode})")));
    }
    let sync = match sync {
        SqliteSynchronous::Normal => "NORMAL",
        SqliteSynchronous::Full => "FULL",
    };
    let backstop = sqlite_checkpoints::BACKSTOP_PAGES;
    conn.execute_batch(&format!(
        "PRAGMA synchronous={sync}; PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint={backstop}"
    ))
    .map_err(connect)?;
    Ok(conn)
}

fn open_reader(path: &str) -> Result<Connection, DbError> {
    open(path)
}

fn open(path: &str) -> Result<Connection, DbError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| DbError::Connect(format!("{path}: {e}")))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(connect)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

fn execute(conn: &Connection, sql: &str, params: &[Param]) -> Result<u64, DbError> {
    let mut stmt = conn.prepare_cached(sql).map_err(error)?;
    let n = stmt.execute(params_from_iter(params.iter())).map_err(error)?;
    Ok(n as u64)
}

fn fetch(conn: &Connection, sql: &str, params: &[Param]) -> Result<Vec<Row>, DbError> {
    let mut stmt = conn.prepare_cached(sql).map_err(error)?;
    rows_of(&mut stmt, params)
}

impl ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Param::Null(_) => ToSqlOutput::Owned(rusqlite::types::Value::Null),
            Param::Bool(b) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(i64::from(*b))),
            Param::Int(i) => ToSqlOutput::Owned(rusqlite::types::Value::Integer(*i)),
            Param::Float(f) => ToSqlOutput::Owned(rusqlite::types::Value::Real(*f)),
            Param::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Param::Json(v) => ToSqlOutput::Owned(rusqlite::types::Value::Text(Param::json_text(v))),
        })
    }
}

pub(crate) fn error(e: rusqlite::Error) -> DbError {
    if let rusqlite::Error::SqliteFailure(code, _) = &e {
        let unique = [rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE, rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY];
        if unique.contains(&code.extended_code) {
            return DbError::Conflict(e.to_string());
        }
    }
    DbError::query(e)
}

fn connect(e: rusqlite::Error) -> DbError {
    DbError::Connect(e.to_string())
}

fn joined(e: tokio::task::JoinError) -> DbError {
    DbError::Query(format!("database task failed: {e}"))
}
