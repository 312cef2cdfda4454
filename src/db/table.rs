//! [`EntityTable`]: an entity table declared by the app, with its fields and the
//! indexes its queries need, created or completed at start-up on every engine.
//!
//! Guarantees: declaring is repeatable and safe when several instances start at once
//! (it runs as a locked schema change, see `schema_change`); it only adds (a missing
//! table, missing columns, missing indexes), never drops or retypes; the table has the
//! entity API's `id`, `created_at` and `updated_at`, so `save_entity` works on it under
//! any [`SchemaPolicy`](crate::db::SchemaPolicy).

use crate::db::dialect::{validate_entity_table, validate_identifier, MAX_IDENTIFIER_LEN};
use crate::db::schema_change::Change;
use crate::db::value::ColumnKind;
use crate::db::{Db, DbError};

/// An entity table as the app declares it.
///
/// ```
/// use app_kernel::db::{ColumnKind, EntityTable};
/// let widgets = EntityTable::new("widgets")
///     .field("owner", ColumnKind::Text)
///     .field("name", ColumnKind::Text)
///     .field("size", ColumnKind::Integer)
///     .index(["owner", "created_at"]);
/// ```
#[derive(Debug, Clone)]
pub struct EntityTable {
    name: String,
    fields: Vec<(String, ColumnKind)>,
    indexes: Vec<Vec<String>>,
}

impl EntityTable {
    /// A table with the entity API's own columns: `id`, `created_at`, `updated_at`.
    pub fn new(name: impl Into<String>) -> Self {
        let managed = ["id", "created_at", "updated_at"].map(|n| (n.to_owned(), ColumnKind::Text));
        Self { name: name.into(), fields: managed.into(), indexes: Vec::new() }
    }

    /// Adds a field (a column holding `kind` values).
    #[must_use]
    pub fn field(mut self, name: impl Into<String>, kind: ColumnKind) -> Self {
        let name = name.into();
        self.fields.retain(|(n, _)| *n != name);
        self.fields.push((name, kind));
        self
    }

    /// Adds `deleted_at`, so soft deletes need no schema change at request time.
    #[must_use]
    pub fn soft_delete(self) -> Self {
        self.field("deleted_at", ColumnKind::Text)
    }

    /// Adds an index on `columns`, in order (the filter's columns first, then the sort's).
    #[must_use]
    pub fn index<I: IntoIterator<Item = S>, S: Into<String>>(mut self, columns: I) -> Self {
        self.indexes.push(columns.into_iter().map(Into::into).collect());
        self
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schema change this declaration makes sure of, its names checked.
    fn change(&self) -> Result<Change, DbError> {
        validate_entity_table(&self.name)?;
        for (field, _) in &self.fields {
            validate_identifier(field)?;
        }
        let mut indexes = Vec::with_capacity(self.indexes.len());
        for columns in &self.indexes {
            if columns.is_empty() {
                return Err(DbError::InvalidInput { field: "index", message: format!("{}: no columns", self.name) });
            }
            if let Some(unknown) = columns.iter().find(|c| !self.fields.iter().any(|(f, _)| f == *c)) {
                let message = format!("{}: `{unknown}` is not a declared field", self.name);
                return Err(DbError::InvalidInput { field: "index", message });
            }
            indexes.push((index_name(&self.name, columns), columns.clone()));
        }
        Ok(Change { table: self.name.clone(), fields: self.fields.clone(), indexes, policy: None })
    }
}

/// `TABLE_COL1_COL2_idx`, or, past the engines' name limit, its start and a hash.
fn index_name(table: &str, columns: &[String]) -> String {
    let name = format!("{table}_{}_idx", columns.join("_"));
    if name.len() <= MAX_IDENTIFIER_LEN {
        return name;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(name.as_bytes());
    let hash: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{}_{hash}_idx", &name[..MAX_IDENTIFIER_LEN - 17])
}

impl Db {
    /// Creates `table` if it is missing, and adds the columns and indexes it lacks.
    ///
    /// # Errors
    /// A bad name, an index on an undeclared field, or the engine's refusal.
    pub async fn declare(&self, table: &EntityTable) -> Result<(), DbError> {
        self.change_schema(table.change()?).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_fit_every_engine() {
        assert_eq!(index_name("widgets", &["owner".into(), "created_at".into()]), "widgets_owner_created_at_idx");
        let long = index_name(&"t".repeat(40), &["a".repeat(40)]);
        assert_eq!(long.len(), MAX_IDENTIFIER_LEN);
        assert!(validate_identifier(&long).is_ok());
        assert_ne!(long, index_name(&"t".repeat(40), &["a".repeat(41)]));
    }

    #[test]
    fn an_index_names_declared_fields_only() {
        let t = EntityTable::new("w").field("owner", ColumnKind::Text).index(["owner", "created_at"]);
        assert_eq!(t.change().unwrap().indexes.len(), 1);
        let bad = EntityTable::new("w").index(["nope"]);
        assert!(matches!(bad.change(), Err(DbError::InvalidInput { .. })));
        assert!(matches!(EntityTable::new("kernel_users").change(), Err(DbError::ReservedTable { .. })));
    }
}
