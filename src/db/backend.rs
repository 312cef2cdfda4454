//! The small trait each engine implements; [`Db`](crate::db::Db) is the façade over it.
//!
//! Statements reaching a backend are already in the engine's syntax and every value is
//! a bound [`Param`]. A [`TxBackend`] dropped without `commit` rolls back.

use async_trait::async_trait;

use crate::db::json_rows::{write_maps, Columns};
use crate::db::value::{Param, Row};
use crate::db::DbError;

/// A pool of connections to one engine.
#[async_trait]
pub(crate) trait Backend: Send + Sync + std::fmt::Debug {
    /// Runs a statement; returns the rows it affected.
    async fn execute(&self, sql: String, params: Vec<Param>) -> Result<u64, DbError>;
    /// Runs a statement and returns its rows. `writes` routes it to a writer where that matters.
    async fn fetch(&self, sql: String, params: Vec<Param>, writes: bool) -> Result<Vec<Row>, DbError>;
    /// Runs a read and returns its rows as a JSON array, their values restored as
    /// `columns` says (see `json_rows`); `None` when `columns` is strict and the rows
    /// hold a column its schema does not read. An engine with a row reader of its own
    /// writes the bytes without a map per row; the default goes through the maps.
    async fn fetch_json(&self, sql: String, params: Vec<Param>, columns: Columns) -> Result<Option<Vec<u8>>, DbError> {
        write_maps(self.fetch(sql, params, false).await?, &columns)
    }
    /// Starts a transaction on one connection.
    async fn begin(&self) -> Result<Box<dyn TxBackend>, DbError>;
    /// Closes the pool; later calls fail with [`DbError::Closed`].
    async fn close(&self);
    /// Notifications sent on `channel`, received on a connection of their own
    /// (PostgreSQL's `LISTEN`); `None` where the engine has no such thing.
    async fn listen(&self, _channel: &str) -> Result<Option<Notifications>, DbError> {
        Ok(None)
    }
    /// The pool's connections in use and idle, now.
    fn pool_stats(&self) -> crate::db::metrics::PoolStats;
    /// A connection of its own, outside the pool; `None` where the engine has no
    /// network connections to spare (SQLite), and the pool serves instead.
    async fn own_connection(&self) -> Result<Option<Box<dyn OwnConnection>>, DbError> {
        Ok(None)
    }
}

/// A connection held by one caller for a statement it repeats many times a second (the
/// jobs' due checks on MySQL): no pool acquire and no ping before each use, so a
/// statement costs one round trip. Closed when dropped.
#[async_trait]
pub(crate) trait OwnConnection: Send + std::fmt::Debug {
    /// Runs a statement and returns its rows.
    async fn fetch(&mut self, sql: String, params: Vec<Param>) -> Result<Vec<Row>, DbError>;
}

/// A stream with an item per notification received; an error when the connection
/// was lost (notifications sent meanwhile are lost too).
pub(crate) type Notifications = futures::stream::BoxStream<'static, Result<(), DbError>>;

/// A transaction holding one connection.
#[async_trait]
pub(crate) trait TxBackend: Send + std::fmt::Debug {
    /// Runs a statement; returns the rows it affected.
    async fn execute(&mut self, sql: String, params: Vec<Param>) -> Result<u64, DbError>;
    /// Runs a statement and returns its rows.
    async fn fetch(&mut self, sql: String, params: Vec<Param>) -> Result<Vec<Row>, DbError>;
    /// Runs one statement as written: unprepared, without parameters, rows ignored (a
    /// migration's statement, which may be DDL that cannot be prepared, such as MySQL's
    /// `CREATE TRIGGER`).
    async fn execute_unprepared(&mut self, sql: String) -> Result<(), DbError>;
    /// Makes the work permanent.
    async fn commit(self: Box<Self>) -> Result<(), DbError>;
    /// Undoes the work.
    async fn rollback(self: Box<Self>) -> Result<(), DbError>;
}

/// Where a statement runs: the pool, or an open transaction.
#[derive(Debug)]
pub(crate) enum Target<'a> {
    /// Any connection of the pool.
    Pool(&'a dyn Backend),
    /// The transaction's connection.
    Tx(&'a mut dyn TxBackend),
}

impl Target<'_> {
    pub(crate) async fn execute(&mut self, sql: String, params: Vec<Param>) -> Result<u64, DbError> {
        let done = match self {
            Self::Pool(b) => b.execute(sql, params).await,
            Self::Tx(t) => t.execute(sql, params).await,
        };
        done.inspect_err(crate::db::metrics::failed)
    }

    pub(crate) async fn fetch(&mut self, sql: String, params: Vec<Param>, writes: bool) -> Result<Vec<Row>, DbError> {
        let rows = match self {
            Self::Pool(b) => b.fetch(sql, params, writes).await,
            Self::Tx(t) => t.fetch(sql, params).await,
        };
        rows.inspect_err(crate::db::metrics::failed)
    }

    /// As [`Backend::fetch_json`]; a transaction's rows go through the maps.
    pub(crate) async fn fetch_json(
        &mut self,
        sql: String,
        params: Vec<Param>,
        columns: Columns,
    ) -> Result<Option<Vec<u8>>, DbError> {
        let json = match self {
            Self::Pool(b) => b.fetch_json(sql, params, columns).await,
            Self::Tx(t) => match t.fetch(sql, params).await {
                Ok(rows) => write_maps(rows, &columns),
                Err(e) => Err(e),
            },
        };
        json.inspect_err(crate::db::metrics::failed)
    }
}
