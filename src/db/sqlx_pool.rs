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
/// database `$db`, whose connection type is `$conn`.
macro_rules! sqlx_pool_backend {
    ($backend:ident, $tx:ident, $db:ty, $conn:ty, $pool:ty, $options:ty, $engine:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug)]
        pub(crate) struct $backend {
            pool: $pool,
            waits: crate::db::metrics::Waits,
        }

        impl $backend {
            /// Connects `settings.pool_size` connections at most. A statement waits at
            /// most `settings.acquire_timeout` for a connection (opening one included),
            /// and an idle connection is pinged before it is handed out, so one the
            /// server dropped (a restart) is replaced rather than failing a request.
            pub(crate) async fn connect(url: &str, settings: &crate::db::DatabaseSettings) -> Result<Self, DbError> {
                let pool = <$options>::new()
                    .max_connections(settings.pool_size.max(1))
                    .acquire_timeout(settings.acquire_timeout)
                    .test_before_acquire(true)
                    .connect_lazy(url)
                    .map_err(|e| DbError::Connect(e.to_string()))?;
                crate::db::sqlx_pool::first_connection(&pool).await?;
                Ok(Self { pool, waits: crate::db::metrics::Waits::new($engine) })
            }

            /// A connection, through `acquire` so that an idle one is pinged first
            /// (`try_acquire` would skip that and hand out one a restarted server
            /// dropped); when none was idle, the wait is counted and timed (see
            /// `db::metrics`).
            async fn conn(&self) -> Result<sqlx::pool::PoolConnection<$db>, DbError> {
                let waits = self.pool.num_idle() == 0;
                let since = std::time::Instant::now();
                let conn = self.pool.acquire().await.map_err(error);
                if waits {
                    self.waits.waited(since);
                }
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

            async fn fetch_json(
                &self,
                sql: String,
                params: Vec<Param>,
                columns: crate::db::json_rows::Columns,
            ) -> Result<Option<Vec<u8>>, DbError> {
                let mut conn = self.conn().await?;
                let rows = crate::db::sqlx_pool::once_more_if_stale!(
                    conn,
                    bind(sqlx::query(sqlx::AssertSqlSafe(sql.as_str())), &params).fetch_all(&mut *conn)
                );
                crate::db::sqlx_pool::json_of(&rows, &columns, value)
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

            async fn own_connection(&self) -> Result<Option<Box<dyn crate::db::backend::OwnConnection>>, DbError> {
                let options = self.pool.connect_options();
                let conn = sqlx::ConnectOptions::connect(&*options).await.map_err(error)?;
                Ok(Some(Box::new(conn)))
            }
        }

        #[async_trait::async_trait]
        impl crate::db::backend::OwnConnection for $conn {
            async fn fetch(&mut self, sql: String, params: Vec<Param>) -> Result<Vec<Row>, DbError> {
                let conn = self;
                let rows = crate::db::sqlx_pool::once_more_if_stale!(
                    conn,
                    bind(sqlx::query(sqlx::AssertSqlSafe(sql.as_str())), &params).fetch_all(&mut *conn)
                );
                rows.iter().map(row).collect()
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

/// The rows as a JSON array, each value read by `value` (the engine's reader of one
/// column) and written without a map per row; `None` as for
/// [`RowWriter::new`](super::json_rows::RowWriter::new).
pub(crate) fn json_of<R: sqlx::Row>(
    rows: &[R],
    columns: &super::json_rows::Columns,
    value: impl Fn(&R, usize, &<R::Database as sqlx::Database>::Column) -> Result<serde_json::Value, super::DbError>,
) -> Result<Option<Vec<u8>>, super::DbError> {
    use super::json_rows::{write_value, Array, RowWriter};
    use sqlx::Column as _;
    let Some(first) = rows.first() else { return Ok(Some(b"[]".to_vec())) };
    let Some(writer) = RowWriter::new(first.columns().iter().map(|c| c.name()), columns) else { return Ok(None) };
    let mut array = Array::new();
    for r in rows {
        let cols = r.columns();
        writer.row(array.next_row(), |out, i, kind| {
            write_value(out, kind, writer.json_as_text(), value(r, i, &cols[i])?);
            Ok::<_, super::DbError>(())
        })?;
    }
    Ok(Some(array.finish()))
}

/// How long start-up waits for a server that refuses connections (one starting
/// beside the service, say) before it gives up; a request never waits this long.
const BOOT_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Opens the pool's first connection, retrying while the server cannot be reached,
/// for [`BOOT_WAIT`] at most; any other refusal (a wrong password, a missing
/// database) stops start-up at once.
pub(crate) async fn first_connection<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> Result<(), super::DbError> {
    let deadline = std::time::Instant::now() + BOOT_WAIT;
    loop {
        match pool.acquire().await {
            Ok(_) => return Ok(()),
            Err(e) if is_unreachable(&e) && std::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "database not reachable yet; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => return Err(super::DbError::Connect(e.to_string())),
        }
    }
}

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
        _ if is_unreachable(&e) => DbError::Unavailable(e.to_string()),
        _ => DbError::query(e),
    }
}

/// Whether `e` says the server cannot be reached or dropped the connection, rather
/// than refusing the statement: no connection within the acquire timeout, a socket
/// or TLS failure, a connection cut mid-answer, or the server's own "connection
/// exception" (SQLSTATE class 08; MySQL's shutdown is 08S01) or PostgreSQL's
/// shutting down, crashed or starting up (57P01 to 57P03; not 57014, a statement
/// cancelled by its own timeout).
fn is_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => {
            d.code().is_some_and(|c| c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03"))
        }
        _ => false,
    }
}
