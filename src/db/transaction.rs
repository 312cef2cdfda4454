//! [`Transaction`]: work on one connection that is kept only on [`Transaction::commit`].
//!
//! Dropping a transaction (an early `return`, a `?` on an error, a panic) rolls it back.
//! Work the kernel registers with `after_commit` (a job queue's local wake-up) runs once
//! the commit succeeded, never after a rollback.
//!
//! ```no_run
//! # async fn demo(db: app_kernel::Db) -> Result<(), app_kernel::db::DbError> {
//! use serde_json::json;
//! let mut tx = db.transaction().await?;
//! let order = tx.save_entity("orders", json!({"total": 42})).await?;
//! tx.execute("UPDATE [stock] SET [count] = [count] - 1 WHERE [id] = ?", &[json!("sku-1")]).await?;
//! tx.commit().await?;
//! # let _ = order; Ok(()) }
//! ```

use serde_json::Value;

use crate::db::backend::{Target, TxBackend};
use crate::db::entity::Ctx;
use crate::db::schema::Tables;
use crate::db::{Db, DbError, EntityList, Find, Row};

/// An open transaction. Rolls back on drop unless committed.
#[derive(Debug)]
pub struct Transaction {
    db: Db,
    tx: Option<Box<dyn TxBackend>>,
    /// Tables this transaction created or altered, published on commit.
    tables: Tables,
    /// Run after a successful commit.
    after_commit: AfterCommit,
}

/// Work to run after a successful commit.
#[derive(Default)]
struct AfterCommit(Vec<Box<dyn FnOnce() + Send + Sync>>);

impl std::fmt::Debug for AfterCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} after commit", self.0.len())
    }
}

impl Transaction {
    pub(crate) fn new(db: Db, tx: Box<dyn TxBackend>) -> Self {
        Self { db, tx: Some(tx), tables: Tables::default(), after_commit: AfterCommit::default() }
    }

    fn ctx(&mut self) -> Result<Ctx<'_>, DbError> {
        let tx = self.tx.as_deref_mut().ok_or(DbError::Closed)?;
        Ok(Ctx { db: &self.db, target: Target::Tx(tx), overlay: Some(&mut self.tables) })
    }

    fn backend(&mut self) -> Result<&mut (dyn TxBackend + 'static), DbError> {
        match self.tx.as_deref_mut() {
            Some(tx) => Ok(tx),
            None => Err(DbError::Closed),
        }
    }

    /// Makes the work permanent.
    ///
    /// # Errors
    /// The engine refused the commit; the work is rolled back.
    pub async fn commit(mut self) -> Result<(), DbError> {
        let tx = self.tx.take().ok_or(DbError::Closed)?;
        tx.commit().await?;
        self.db.inner.schema.publish(std::mem::take(&mut self.tables));
        for work in std::mem::take(&mut self.after_commit.0) {
            work();
        }
        Ok(())
    }

    /// Runs `work` once the transaction commits (never if it rolls back).
    pub(crate) fn after_commit(&mut self, work: impl FnOnce() + Send + Sync + 'static) {
        self.after_commit.0.push(Box::new(work));
    }

    /// The database the transaction works in.
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// Undoes the work (dropping the transaction does the same).
    ///
    /// # Errors
    /// The engine refused the rollback (the connection is then discarded or reset).
    pub async fn rollback(mut self) -> Result<(), DbError> {
        let tx = self.tx.take().ok_or(DbError::Closed)?;
        tx.rollback().await
    }

    /// The engine behind the transaction.
    pub(crate) fn kind(&self) -> crate::db::DatabaseKind {
        self.db.kind()
    }

    /// As [`Db::execute`], inside the transaction.
    ///
    /// # Errors
    /// As [`Db::execute`].
    pub async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let (sql, params) = self.db.prepare(sql, params)?;
        self.backend()?.execute(sql, params).await
    }

    /// As [`Db::fetch_all`], inside the transaction.
    ///
    /// # Errors
    /// As [`Db::execute`].
    pub async fn fetch_all(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let (sql, params) = self.db.prepare(sql, params)?;
        self.backend()?.fetch(sql, params).await
    }

    /// As [`Db::fetch_optional`], inside the transaction.
    ///
    /// # Errors
    /// As [`Db::execute`].
    pub async fn fetch_optional(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, DbError> {
        Ok(self.fetch_all(sql, params).await?.into_iter().next())
    }

    /// As [`Db::save_entity`], inside the transaction.
    ///
    /// # Errors
    /// As [`Db::save_entity`].
    pub async fn save_entity(&mut self, table: &str, entity: impl serde::Serialize) -> Result<Row, DbError> {
        let value = serde_json::to_value(entity)
            .map_err(|e| DbError::InvalidInput { field: "entity", message: e.to_string() })?;
        self.ctx()?.save(table, value).await
    }

    /// Saves each entity in turn, inside the transaction.
    ///
    /// # Errors
    /// As [`Db::save_entity`], for the first entity that fails.
    pub async fn save_many(
        &mut self,
        table: &str,
        entities: impl IntoIterator<Item = Value>,
    ) -> Result<Vec<Row>, DbError> {
        let mut saved = Vec::new();
        for entity in entities {
            saved.push(self.ctx()?.save(table, entity).await?);
        }
        Ok(saved)
    }

    /// As [`Db::get_entity`], inside the transaction (it sees its own writes).
    ///
    /// # Errors
    /// As [`Db::get_entity`].
    pub async fn get_entity(&mut self, table: &str, id: &str) -> Result<Option<Row>, DbError> {
        self.ctx()?.get(table, id).await
    }

    /// As [`Db::find_entities`], inside the transaction.
    ///
    /// # Errors
    /// As [`Db::find_entities`].
    pub async fn find_entities(&mut self, table: &str, find: Find) -> Result<Vec<Row>, DbError> {
        self.ctx()?.find(table, &find).await
    }

    /// As [`Db::find_entities_json`], inside the transaction (through the maps).
    ///
    /// # Errors
    /// As [`Db::find_entities`].
    pub async fn find_entities_json(&mut self, table: &str, find: Find) -> Result<EntityList, DbError> {
        self.ctx()?.find_json(table, &find).await.map(EntityList::new)
    }

    /// As [`Db::count_entities`], inside the transaction.
    ///
    /// # Errors
    /// As [`Db::find_entities`].
    pub async fn count_entities(&mut self, table: &str, find: Find) -> Result<u64, DbError> {
        self.ctx()?.count(table, &find).await
    }

    /// As [`Db::delete_entity`], inside the transaction.
    ///
    /// # Errors
    /// As [`Db::delete_entity`].
    pub async fn delete_entity(&mut self, table: &str, id: &str) -> Result<bool, DbError> {
        self.ctx()?.delete(table, id).await
    }

    /// As [`Db::soft_delete_entity`], inside the transaction.
    ///
    /// # Errors
    /// As [`Db::delete_entity`].
    pub async fn soft_delete_entity(&mut self, table: &str, id: &str) -> Result<bool, DbError> {
        self.ctx()?.soft_delete(table, id).await
    }
}

impl Drop for Transaction {
    /// Sends the rollback now, on the runtime, rather than when the connection is
    /// next used: a dropped transaction's row locks (which a `SKIP LOCKED` reader
    /// would otherwise skip over) are released promptly.
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(async move {
                        if let Err(e) = tx.rollback().await {
                            tracing::warn!(error = %e, "rollback of a dropped transaction failed");
                        }
                    });
                }
                Err(_) => drop(tx),
            }
        }
    }
}
