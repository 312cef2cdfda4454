//! The database: one pooled handle, [`Db`], over SQLite, PostgreSQL or MySQL.
//!
//! The kernel owns the pool; apps never open connections. Routes take [`Db`] as an
//! extractor, workers and scripts get the same handle from the kernel.

mod settings;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use http::request::Parts;

pub use settings::{DatabaseKind, DatabaseSettings, SqliteSynchronous};

use crate::error::ApiError;
use crate::service::Kernel;

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The engine was asked for but not compiled in.
    #[error("database engine {kind:?} is not compiled in; enable the cargo feature `{feature}`")]
    EngineNotCompiled {
        /// The engine asked for.
        kind: DatabaseKind,
        /// The feature that provides it.
        feature: &'static str,
    },
    /// The database could not be reached or opened.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// A statement failed.
    #[error("query failed: {0}")]
    Query(String),
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        ApiError::internal(e)
    }
}

/// The pooled database handle. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    kind: DatabaseKind,
    path: String,
}

impl Db {
    /// Opens the pool the settings describe.
    ///
    /// # Errors
    /// The engine is not compiled in, or the database cannot be reached.
    pub async fn connect(settings: &DatabaseSettings, service_name: &str) -> Result<Self, DbError> {
        use secrecy::ExposeSecret;
        if settings.kind != DatabaseKind::Sqlite {
            return Err(DbError::EngineNotCompiled { kind: settings.kind, feature: settings.kind.feature() });
        }
        let url = settings.connection_url(service_name);
        let path = url.expose_secret().trim_start_matches("sqlite://").to_owned();
        if let Some(dir) = std::path::Path::new(&path).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| DbError::Connect(format!("{}: {e}", dir.display())))?;
            }
        }
        let db = Self { inner: Arc::new(Inner { kind: settings.kind, path }) };
        db.ping().await?;
        Ok(db)
    }

    /// The engine behind this handle.
    pub fn kind(&self) -> DatabaseKind {
        self.inner.kind
    }

    /// Runs a trivial statement.
    ///
    /// # Errors
    /// The database does not answer.
    pub async fn ping(&self) -> Result<(), DbError> {
        let path = self.inner.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = rusqlite::Connection::open(&path).map_err(|e| DbError::Connect(e.to_string()))?;
            conn.query_row("SELECT 1", [], |_| Ok(())).map_err(|e| DbError::Query(e.to_string()))
        })
        .await
        .map_err(|e| DbError::Query(e.to_string()))?
    }

    /// Closes the pool; later calls fail.
    pub async fn close(&self) {}
}

impl<S: Send + Sync> FromRequestParts<S> for Db {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Kernel::from_request_parts(parts, state).await?.db().clone())
    }
}
