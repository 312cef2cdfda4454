//! The part of the PostgreSQL and MySQL backends that does not depend on the engine:
//! a sqlx pool and its transactions behind [`Backend`](super::backend::Backend) and
//! [`TxBackend`](super::backend::TxBackend). Each engine's file expands
//! [`sqlx_pool_backend!`] with its sqlx types, next to its own `bind` and `row`
//! functions, which the expansion calls with [`error`] from here.
//!
//! Statements reach sqlx wrapped in `AssertSqlSafe` (sqlx 0.9 refuses a dynamic
//! string otherwise): the `Db` façade builds them from the dialect's templates and
//! checked identifiers, and values are always bound, never spliced.

/// Defines `$backend` (a pool) and `$tx` (one of its transactions) for sqlx
/// database `$db`.
macro_rules! sqlx_pool_backend {
    ($backend:ident, $tx:ident, $db:ty, $pool:ty, $options:ty, $engine:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug)]
        pub(crate) struct $backend {
            pool: $pool,
            waits: crate::db::metrics::Waits,
        }

        impl $backend {
            /// Connects `pool_size` connections at most.
            pub(crate) async fn connect(url: &str, pool_size: u32) -> Result<Self, DbError> {
                let pool = <$options>::new()
                    .max_connections(pool_size.max(1))
                    .acquire_timeout(std::time::Duration::from_secs(30))
                    .connect(url)
                    .await
                    .map_err(|e| DbError::Connect(e.to_string()))?;
                Ok(Self { pool, waits: crate::db::metrics::Waits::new($engine) })
            }

            /// A connection: a free one at once, else waiting for one (the wait is
            /// counted and timed, see `db::metrics`).
            async fn conn(&self) -> Result<sqlx::pool::PoolConnection<$db>, DbError> {
                if let Some(conn) = self.pool.try_acquire() {
                    return Ok(conn);
                }
                let since = std::time::Instant::now();
                let conn = self.pool.acquire().await.map_err(error);
                self.waits.waited(since);
                conn
            }
        }

        #[async_trait::async_trait]
        impl crate::db::backend::Backend for $backend {
            async fn execute(&self, sql: String, params: Vec<Param>) -> Result<u64, DbError> {
                let mut conn = self.conn().await?;
                let done = crate::db::sqlx_pool::once_more_if_stale!(
                    conn,
                    bind(sqlx::query(sqlx::AssertSqlSafe(sql.as_str())), &params).execute(&mut *conn)
                );
                Ok(done.rows_affected())
            }

            async fn fetch(&self, sql: String, params: Vec<Param>, _writes: bool) -> Result<Vec<Row>, DbError> {
                let mut conn = self.conn().await?;
                let rows = crate::db::sqlx_pool::once_more_if_stale!(
                    conn,
                    bind(sqlx::query(sqlx::AssertSqlSafe(sql.as_str())), &params).fetch_all(&mut *conn)
                );
                rows.iter().map(row).collect()
            }

            async fn begin(&self) -> Result<Box<dyn crate::db::backend::TxBackend>, DbError> {
                Ok(Box::new($tx { tx: self.pool.begin().await.map_err(error)? }))
            }

            async fn close(&self) {
                self.pool.close().await;
            }

            async fn listen(&self, channel: &str) -> Result<Option<crate::db::backend::Notifications>, DbError> {
                listen(&self.pool, channel).await
            }

            fn pool_stats(&self) -> crate::db::metrics::PoolStats {
                let idle = u64::try_from(self.pool.num_idle()).unwrap_or(0);
                let size = u64::from(self.pool.size());
                crate::db::metrics::PoolStats { in_use: size.saturating_sub(idle), idle }
            }
        }

        /// A transaction; rolled back when dropped uncommitted.
        #[derive(Debug)]
        struct $tx {
            tx: sqlx::Transaction<'static, $db>,
        }

        #[async_trait::async_trait]
        impl crate::db::backend::TxBackend for $tx {
            async fn execute(&mut self, sql: String, params: Vec<Param>) -> Result<u64, DbError> {
                let done = bind(sqlx::query(sqlx::AssertSqlSafe(sql)), &params).execute(&mut *self.tx).await;
                Ok(crate::db::sqlx_pool::in_transaction(&mut *self.tx, done).await?.rows_affected())
            }

            async fn fetch(&mut self, sql: String, params: Vec<Param>) -> Result<Vec<Row>, DbError> {
                let rows = bind(sqlx::query(sqlx::AssertSqlSafe(sql)), &params).fetch_all(&mut *self.tx).await;
                let rows = crate::db::sqlx_pool::in_transaction(&mut *self.tx, rows).await?;
                rows.iter().map(row).collect()
            }

            async fn execute_unprepared(&mut self, sql: String) -> Result<(), DbError> {
                // A statement without arguments goes as text (PostgreSQL's simple query, MySQL's
                // COM_QUERY): never prepared, so DDL that cannot be prepared runs too.
                sqlx::Executor::execute(&mut *self.tx, sqlx::AssertSqlSafe(sql)).await.map(drop).map_err(error)
            }

            async fn commit(self: Box<Self>) -> Result<(), DbError> {
                self.tx.commit().await.map_err(error)
            }

            async fn rollback(self: Box<Self>) -> Result<(), DbError> {
                self.tx.rollback().await.map_err(error)
            }
        }
    };
}

pub(crate) use sqlx_pool_backend;

/// Runs the statement `$run` (an expression that uses the pool connection `$conn`);
/// when the server refuses a statement that connection cached because its table's
/// columns changed since (PostgreSQL: "cached plan must not change result type",
/// after another process or connection added a column), forgets the connection's
/// cached statements and runs it once more. The refusal comes before the statement
/// runs, so running it again is safe. (Inside a transaction the refusal has already
/// aborted it: see [`in_transaction`].)
macro_rules! once_more_if_stale {
    ($conn:ident, $run:expr) => {
        match $run.await {
            Err(e) if crate::db::sqlx_pool::is_stale_statement(&e) => {
                sqlx::Connection::clear_cached_statements(&mut *$conn).await.map_err(error)?;
                $run.await.map_err(error)?
            }
            done => done.map_err(error)?,
        }
    };
}

pub(crate) use once_more_if_stale;

/// The kernel's result for a statement run in a transaction on `conn`. A refused
/// stale statement has ended the transaction: the connection forgets its cached
/// statements (so the next transaction on it prepares afresh) and the caller is told
/// to run the transaction again.
pub(crate) async fn in_transaction<C, T>(conn: &mut C, done: Result<T, sqlx::Error>) -> Result<T, super::DbError>
where
    C: sqlx::Connection<Database: sqlx::database::HasStatementCache>,
{
    match done {
        Err(e) if is_stale_statement(&e) => {
            if let Err(e) = conn.clear_cached_statements().await {
                tracing::warn!(error = %e, "could not forget the connection's cached statements");
            }
            Err(super::DbError::SchemaChanged)
        }
        done => done.map_err(error),
    }
}

/// Whether the server refused a cached statement whose result columns changed.
pub(crate) fn is_stale_statement(e: &sqlx::Error) -> bool {
    // SQLSTATE 0A000 is "feature not supported"; the message tells this case apart.
    matches!(e, sqlx::Error::Database(d)
        if d.code().as_deref() == Some("0A000") && d.message().contains("cached plan must not change result type"))
}

/// The kernel's error for a sqlx error, the same on both engines.
pub(crate) fn error(e: sqlx::Error) -> super::DbError {
    use super::DbError;
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => DbError::Conflict(d.message().to_owned()),
        sqlx::Error::PoolClosed => DbError::Closed,
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => DbError::Connect(e.to_string()),
        _ => DbError::query(e),
    }
}
