//! The database: one pooled handle, [`Db`], over SQLite, PostgreSQL or MySQL/MariaDB.
//!
//! The kernel owns the pool; apps never open connections. Routes take [`Db`] as an
//! extractor, workers and scripts get the same handle from the kernel. Three levels:
//!
//! - **Entities** (the spec's API): [`Db::save_entity`] upserts a JSON object by `id`
//!   (a UUID v7 when absent) and manages `created_at`/`updated_at`; [`Db::get_entity`],
//!   [`Db::find_entities`] with a [`Find`] (or [`Db::find_entities_json`], the same rows as
//!   the JSON bytes they serialize to, an [`EntityList`] a handler answers as it is),
//!   [`Db::count_entities`], [`Db::delete_entity`], [`Db::soft_delete_entity`]. Values keep
//!   their JSON types. Tables are declared
//!   ([`EntityTable`], with their indexes) or made in `schema_init`; under
//!   [`SchemaPolicy::Additive`] (development) a save creates the table or columns it
//!   needs, within [`SchemaLimits`]. Field names and the kernel's own tables are
//!   checked, and a refusal is a 422 that changes nothing.
//! - **Portable SQL**: [`Db::execute`], [`Db::fetch_all`], [`Db::fetch_optional`] take
//!   `[field]` for identifiers and `?` for values on every engine; values are always
//!   bound, never interpolated.
//! - **Transactions**: [`Db::transaction`] gives a [`Transaction`] with the same methods;
//!   it rolls back unless [`Transaction::commit`] is called.
//!
//! ```no_run
//! # async fn demo(db: app_kernel::Db) -> Result<(), app_kernel::db::DbError> {
//! use app_kernel::db::Find;
//! use serde_json::json;
//!
//! let project = db.save_entity("projects", json!({"owner": "u1", "name": "Apollo"})).await?;
//! let mine = db
//!     .find_entities("projects", Find::new().filter("[owner] = ?", ["u1"]).order_by("[created_at] DESC").limit(100))
//!     .await?;
//! assert_eq!(mine[0]["id"], project["id"]);
//! # Ok(()) }
//! ```

mod audit;
mod backend;
mod connection;
pub(crate) mod dialect;
mod entity;
mod entity_api;
mod entity_list;
mod error;
mod find;
mod json_rows;
mod metrics;
mod migrate;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
mod save;
mod scan_warning;
mod schema;
mod schema_change;
mod schema_policy;
mod settings;
mod sql_cache;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "sqlite")]
mod sqlite_changes;
#[cfg(feature = "sqlite")]
mod sqlite_checkpoints;
#[cfg(feature = "sqlite")]
mod sqlite_rows;
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod sqlx_pool;
mod table;
mod transaction;
mod translate;
mod value;

use std::sync::Arc;

use serde_json::Value;

pub use audit::{AuditEvent, AuditFilter, AuditLog, AuditPage, AUDIT_TABLE};
pub(crate) use connection::Connection;
pub use dialect::{validate_identifier, MAX_IDENTIFIER_LEN};
pub use entity_list::EntityList;
pub use error::DbError;
pub use find::{Cmp, Find};
pub use migrate::{AppliedMigration, MigrateError, MigrationState, MigrationStatus, Migrations};
pub use schema_policy::{SchemaLimits, SchemaPolicy};
pub use settings::{DatabaseKind, DatabaseSettings, SqliteSynchronous, DEFAULT_ACQUIRE_TIMEOUT, MAX_ACQUIRE_TIMEOUT};
pub use table::EntityTable;
pub use transaction::Transaction;
pub use value::ColumnKind;
pub use value::Row;

use backend::{Backend, Target};
use schema::SchemaCache;
use sql_cache::SqlCache;
use value::Param;

/// The pooled database handle. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    kind: DatabaseKind,
    /// Where the data lives: the URL without password or query (see [`Db::location`]).
    location: String,
    backend: Box<dyn Backend>,
    schema: SchemaCache,
    /// Translated and generated statements, so a hot path builds no SQL text.
    sql: SqlCache,
    /// Generated entity statements, by table, columns and clauses.
    entity_sql: SqlCache,
    schema_policy: SchemaPolicy,
    /// Development: warn about filtered finds that scan a large table.
    warn_full_scans: bool,
    scan_checks: scan_warning::ScanChecks,
}

impl Db {
    /// Opens the pool the settings describe. SQLite's file (default `./data/NAME.db`)
    /// and its directory are created.
    ///
    /// # Errors
    /// The engine is not compiled in, or the database cannot be reached.
    pub async fn connect(settings: &DatabaseSettings, service_name: &str) -> Result<Self, DbError> {
        use secrecy::ExposeSecret;
        let url = settings.connection_url(service_name);
        let url = url.expose_secret();
        let kind = settings.url.as_ref().and_then(|_| DatabaseKind::from_url(url)).unwrap_or(settings.kind);
        let backend = open(kind, url, settings).await?;
        let db = Self {
            inner: Arc::new(Inner {
                kind,
                location: location(url),
                backend,
                schema: SchemaCache::default(),
                sql: SqlCache::default(),
                entity_sql: SqlCache::default(),
                schema_policy: settings.schema,
                warn_full_scans: settings.warn_full_scans,
                scan_checks: scan_warning::ScanChecks::default(),
            }),
        };
        db.ping().await?;
        Ok(db)
    }

    /// The engine behind this handle.
    pub fn kind(&self) -> DatabaseKind {
        self.inner.kind
    }

    /// Where the data lives: the connection URL without its password and query, the
    /// same for every process that opens the same database under the same name (and
    /// different for `localhost` and `127.0.0.1`).
    pub(crate) fn location(&self) -> &str {
        &self.inner.location
    }

    /// Runs a trivial statement.
    ///
    /// # Errors
    /// The database does not answer.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.inner.backend.fetch("SELECT 1".to_owned(), Vec::new(), false).await.map(drop)
    }

    /// Closes the pool; later calls fail with [`DbError::Closed`].
    pub async fn close(&self) {
        self.inner.backend.close().await;
    }

    /// Runs a statement (`[field]` and `?` are translated); returns the rows affected.
    ///
    /// # Errors
    /// Malformed SQL, a placeholder count that differs from `params`, or the engine's refusal.
    pub async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let (sql, params) = self.prepare(sql, params)?;
        self.target().execute(sql, params).await
    }

    /// Runs DDL that is safe to repeat (`CREATE TABLE IF NOT EXISTS`, `CREATE INDEX IF
    /// NOT EXISTS`), which other instances may run at the same moment: what a
    /// `schema_init` should use. PostgreSQL's `IF NOT EXISTS` is not atomic: of two
    /// instances creating a table at once, the second can fail ("duplicate key value",
    /// "type ... already exists"); run once more, it finds the table there. So a
    /// failure runs it once more, and an error that is not such a race fails twice.
    ///
    /// # Errors
    /// As [`Db::execute`], from the second run.
    pub async fn execute_schema(&self, sql: &str) -> Result<(), DbError> {
        if self.execute(sql, &[]).await.is_err() {
            self.execute(sql, &[]).await?;
        }
        Ok(())
    }

    /// Runs a query; returns its rows as JSON objects.
    ///
    /// # Errors
    /// As [`Db::execute`].
    pub async fn fetch_all(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let (sql, params) = self.prepare(sql, params)?;
        self.target().fetch(sql, params, false).await
    }

    /// Runs a query; returns its first row.
    ///
    /// # Errors
    /// As [`Db::execute`].
    pub async fn fetch_optional(&self, sql: &str, params: &[Value]) -> Result<Option<Row>, DbError> {
        Ok(self.fetch_all(sql, params).await?.into_iter().next())
    }

    /// Notifications sent on `channel` (PostgreSQL `NOTIFY`), on a connection of their
    /// own; `None` on engines without them.
    pub(crate) async fn listen(&self, channel: &str) -> Result<Option<backend::Notifications>, DbError> {
        self.inner.backend.listen(channel).await
    }

    /// Starts a transaction on one connection (on SQLite: the writer, `BEGIN IMMEDIATE`).
    ///
    /// # Errors
    /// The pool is closed or the database does not answer.
    pub async fn transaction(&self) -> Result<Transaction, DbError> {
        let tx = self.inner.backend.begin().await?;
        Ok(Transaction::new(self.clone(), tx))
    }

    fn target(&self) -> Target<'_> {
        Target::Pool(&*self.inner.backend)
    }

    /// Translates `sql` and checks the parameter count.
    fn prepare(&self, sql: &str, params: &[Value]) -> Result<(String, Vec<Param>), DbError> {
        let t = self.translated(sql)?;
        if t.placeholders != params.len() {
            return Err(DbError::ParamCount { expected: t.placeholders, got: params.len() });
        }
        Ok((t.sql.clone(), params.iter().cloned().map(Param::from_json).collect()))
    }

    /// `sql` in the engine's syntax, translated once and then taken from the cache.
    fn translated(&self, sql: &str) -> Result<Arc<translate::Translated>, DbError> {
        self.inner.sql.get_or_build(sql, || translate::translate(self.inner.kind, sql))
    }
}

/// `url` without its password and its query: `scheme://user@host:port/path`.
fn location(url: &str) -> String {
    let url = url.split_once('?').map_or(url, |(base, _)| base);
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split_once(':').map_or(user_info, |(user, _)| user);
            format!("{scheme}://{user}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

async fn open(kind: DatabaseKind, url: &str, settings: &DatabaseSettings) -> Result<Box<dyn Backend>, DbError> {
    let _ = (url, settings);
    match kind {
        #[cfg(feature = "sqlite")]
        DatabaseKind::Sqlite => {
            let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
            let path = path.split('?').next().unwrap_or(path);
            if let Some(dir) = std::path::Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| DbError::Connect(format!("{}: {e}", dir.display())))?;
            }
            let pool = sqlite::SqliteBackend::open(path, settings.pool_size, settings.sqlite_synchronous).await?;
            Ok(Box::new(pool))
        }
        #[cfg(feature = "postgres")]
        DatabaseKind::Postgres => Ok(Box::new(postgres::PgBackend::connect(url, settings).await?)),
        #[cfg(feature = "mysql")]
        DatabaseKind::Mysql => Ok(Box::new(mysql::MySqlBackend::connect(url, settings).await?)),
        #[allow(unreachable_patterns)]
        kind => Err(DbError::EngineNotCompiled { kind, feature: kind.feature() }),
    }
}

// The database of the router's state (the spec's `get_db_connection()`).
state_extractor!(Db);

#[cfg(test)]
mod tests {
    #[test]
    fn a_location_has_no_password_and_no_query() {
        assert_eq!(super::location("mysql://root:s3cret@db:3306/app?ssl-mode=disabled"), "mysql://root@db:3306/app");
        assert_eq!(super::location("mysql://root@127.0.0.1:3306/test"), "mysql://root@127.0.0.1:3306/test");
        assert_eq!(super::location("mysql://db/app"), "mysql://db/app");
        assert_eq!(super::location("sqlite:data/app.db"), "sqlite:data/app.db");
    }
}
