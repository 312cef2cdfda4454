//! Schema changes outside a caller's transaction: one at a time per table, across
//! processes, checked against the table as the database has it, and never half done.
//!
//! A change runs on a task of its own (a dropped request cannot stop it between two
//! statements, nor leave MySQL's session lock on a pooled connection), in a
//! transaction that first takes the engine's DDL lock (`dialect::ddl_lock`: an advisory
//! lock on PostgreSQL, `GET_LOCK` on MySQL, the write lock on SQLite), then reads the
//! table's columns afresh, checks the [`SchemaPolicy`] against them, and only then runs
//! DDL. Two instances adding columns to one table at once therefore see each other's
//! columns, and the policy's limits hold for their sum.

use std::sync::Arc;

use crate::db::backend::{Target, TxBackend};
use crate::db::dialect::{ddl_lock, index_column, index_exists_sql, quote_unchecked};
use crate::db::schema::{self, TableSchema};
use crate::db::schema_policy::SchemaPolicy;
use crate::db::value::{ColumnKind, Param};
use crate::db::{Db, DbError};

/// What a schema change makes sure of.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    /// The table.
    pub(crate) table: String,
    /// Columns it must have.
    pub(crate) fields: Vec<(String, ColumnKind)>,
    /// Indexes it must have: name and columns.
    pub(crate) indexes: Vec<(String, Vec<String>)>,
    /// The policy a save's change passes; `None` for the app's own declaration.
    pub(crate) policy: Option<SchemaPolicy>,
}

impl Db {
    /// Runs `change` (see the module docs); returns the table's schema afterwards.
    pub(crate) async fn change_schema(&self, change: Change) -> Result<Arc<TableSchema>, DbError> {
        let db = self.clone();
        tokio::spawn(async move { db.change_schema_now(&change).await })
            .await
            .map_err(|e| DbError::Query(format!("schema change task ended: {e}")))?
    }

    async fn change_schema_now(&self, change: &Change) -> Result<Arc<TableSchema>, DbError> {
        let _ddl = self.inner.schema.ddl.lock().await;
        let kind = self.inner.kind;
        let mut tx = self.inner.backend.begin().await?;
        let lock = ddl_lock(kind);
        let table = Param::Text(change.table.clone());
        if let Some((take, _)) = lock {
            let rows = tx.fetch(take.to_owned(), vec![table.clone()]).await?;
            let refused = rows.first().and_then(|r| r.get("locked")).is_some_and(|v| v.as_i64() != Some(1));
            if refused {
                let _ = tx.rollback().await;
                return Err(DbError::Query(format!("timed out waiting for the DDL lock of {}", change.table)));
            }
        }
        let result = self.apply_locked(&mut *tx, change).await;
        if let Some((_, Some(release))) = lock {
            let _ = tx.fetch(release.to_owned(), vec![table]).await;
        }
        match result {
            Ok(schema) => {
                tx.commit().await?;
                self.inner.schema.put(&change.table, schema.clone());
                Ok(schema)
            }
            Err(e) => {
                let _ = tx.rollback().await;
                Err(e)
            }
        }
    }

    async fn apply_locked(&self, tx: &mut dyn TxBackend, change: &Change) -> Result<Arc<TableSchema>, DbError> {
        let kind = self.inner.kind;
        let mut target = Target::Tx(tx);
        let table = change.table.as_str();
        let fresh = schema::introspect(kind, &mut target, table).await?;
        let fields: Vec<(&str, ColumnKind)> = change.fields.iter().map(|(n, k)| (n.as_str(), *k)).collect();
        if let Some(policy) = &change.policy {
            policy.check(table, fresh.as_deref(), &fields)?;
        }
        let mut current = match &fresh {
            Some(s) if fields.iter().all(|(n, _)| s.has(n)) => s.clone(),
            _ => schema::apply(kind, &mut target, table, fresh.as_deref(), &fields).await?,
        };
        for (name, columns) in &change.indexes {
            let exists = target
                .fetch(
                    index_exists_sql(kind).to_owned(),
                    vec![Param::Text(table.to_owned()), Param::Text(name.clone())],
                    false,
                )
                .await?;
            if !exists.is_empty() {
                continue;
            }
            let cols: Vec<String> =
                columns.iter().map(|c| index_column(kind, c, current.kind(c).unwrap_or(ColumnKind::Text))).collect();
            let q = |n: &str| quote_unchecked(kind, n);
            let sql = format!("CREATE INDEX {} ON {} ({})", q(name), q(table), cols.join(", "));
            target.execute(sql, Vec::new()).await?;
        }
        if !change.indexes.is_empty() {
            current = schema::introspect(kind, &mut target, table).await?.unwrap_or(current);
        }
        Ok(current)
    }
}
