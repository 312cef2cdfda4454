//! The entity API's public face on [`Db`]: each method runs one [`Ctx`] operation
//! on the pool (a transaction has the same methods, in `transaction.rs`).

use serde_json::Value;

use super::dialect::{validate_entity_table, validate_identifier};
use super::entity::Ctx;
use super::value::Row;
use super::{Db, DbError, EntityList, Find};

/// The entity API on the pool. Each call is one statement (plus, under auto-schema,
/// the DDL a new table or field needs).
impl Db {
    fn ctx(&self) -> Ctx<'_> {
        Ctx { db: self, target: self.target(), overlay: None }
    }

    /// Upserts `entity` (a JSON object, or anything that serializes to one) by its `id`,
    /// generating a UUID v7 when it has none; returns the stored row.
    ///
    /// # Errors
    /// Not an object, a bad field name, a value that does not fit its column, a missing
    /// table or field the schema policy does not add, or the engine's refusal.
    pub async fn save_entity(&self, table: &str, entity: impl serde::Serialize) -> Result<Row, DbError> {
        let value = serde_json::to_value(entity)
            .map_err(|e| DbError::InvalidInput { field: "entity", message: e.to_string() })?;
        self.ctx().save(table, value).await
    }

    /// Saves every entity in one transaction: all are stored or none.
    ///
    /// # Errors
    /// As [`Db::save_entity`], for the first entity that fails.
    pub async fn save_many(&self, table: &str, entities: impl IntoIterator<Item = Value>) -> Result<Vec<Row>, DbError> {
        let entities: Vec<Value> = entities.into_iter().collect();
        if self.inner.schema_policy.is_additive() {
            // The schema first, outside the transaction: MySQL cannot change it inside one.
            let mut all = Row::new();
            for obj in entities.iter().filter_map(Value::as_object) {
                for (k, v) in obj {
                    if all.get(k).is_none_or(Value::is_null) {
                        all.insert(k.clone(), v.clone());
                    }
                }
            }
            let valid = validate_entity_table(table).is_ok() && all.keys().all(|k| validate_identifier(k).is_ok());
            if valid && !all.is_empty() {
                for stamp in ["created_at", "updated_at"] {
                    all.insert(stamp.into(), Value::Null);
                }
                self.ctx().ensure_row(table, &all).await?;
            }
        }
        let mut tx = self.transaction().await?;
        let saved = tx.save_many(table, entities).await?;
        tx.commit().await?;
        Ok(saved)
    }

    /// The live entity with this `id`, if any.
    ///
    /// # Errors
    /// A bad table name or the engine's refusal; a missing table is `Ok(None)`.
    pub async fn get_entity(&self, table: &str, id: &str) -> Result<Option<Row>, DbError> {
        self.ctx().get(table, id).await
    }

    /// The live entity with this `id`, or [`DbError::NotFound`] (a 404 for clients).
    ///
    /// # Errors
    /// As [`Db::get_entity`], and [`DbError::NotFound`].
    pub async fn require_entity(&self, table: &str, id: &str) -> Result<Row, DbError> {
        let found = self.get_entity(table, id).await?;
        found.ok_or_else(|| DbError::NotFound { table: table.to_owned(), id: id.to_owned() })
    }

    /// The entities `find` selects; a missing table has none.
    ///
    /// # Errors
    /// A bad table name or `order_by`, a malformed filter, or the engine's refusal.
    pub async fn find_entities(&self, table: &str, find: Find) -> Result<Vec<Row>, DbError> {
        self.ctx().find(table, &find).await
    }

    /// The entities `find` selects, as the JSON array [`Db::find_entities`]'s rows
    /// serialize to, byte for byte, written from the driver's rows without a map per
    /// row: the list path for a handler that answers them as they are.
    ///
    /// # Errors
    /// As [`Db::find_entities`].
    pub async fn find_entities_json(&self, table: &str, find: Find) -> Result<EntityList, DbError> {
        self.ctx().find_json(table, &find).await.map(EntityList::new)
    }

    /// How many entities `find`'s filter selects (its order and paging are ignored).
    ///
    /// # Errors
    /// As [`Db::find_entities`].
    pub async fn count_entities(&self, table: &str, find: Find) -> Result<u64, DbError> {
        self.ctx().count(table, &find).await
    }

    /// Deletes the entity for good; `false` when there was none.
    ///
    /// # Errors
    /// A bad table name or the engine's refusal.
    pub async fn delete_entity(&self, table: &str, id: &str) -> Result<bool, DbError> {
        self.ctx().delete(table, id).await
    }

    /// Marks the entity deleted (`deleted_at`); `false` when there was no live one.
    ///
    /// # Errors
    /// As [`Db::delete_entity`].
    pub async fn soft_delete_entity(&self, table: &str, id: &str) -> Result<bool, DbError> {
        self.ctx().soft_delete(table, id).await
    }
}
