//! [`Connection`]: one connection held by one caller, for a statement it repeats many
//! times a second. On PostgreSQL and MySQL it is a connection of its own, opened
//! outside the pool (it takes none of the pool's places and is never pinged before a
//! statement); on SQLite, which has no network round trip to save, the pool serves.

use serde_json::Value;

use super::backend::OwnConnection;
use super::{Db, DbError, Row};

/// A connection held by its caller; closed when dropped.
#[derive(Debug)]
pub(crate) struct Connection {
    db: Db,
    own: Option<Box<dyn OwnConnection>>,
}

impl Db {
    /// A connection of the caller's own (see [`Connection`]).
    ///
    /// # Errors
    /// The server cannot be reached or refuses the connection.
    pub(crate) async fn own_connection(&self) -> Result<Connection, DbError> {
        let own = self.inner.backend.own_connection().await?;
        Ok(Connection { db: self.clone(), own })
    }
}

impl Connection {
    /// As [`Db::fetch_optional`], on this connection.
    pub(crate) async fn fetch_optional(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, DbError> {
        let Some(own) = self.own.as_mut() else { return self.db.fetch_optional(sql, params).await };
        let (sql, params) = self.db.prepare(sql, params)?;
        Ok(own.fetch(sql, params).await?.into_iter().next())
    }
}
