//! What the kernel knows of each entity table, and auto-schema.
//!
//! A table's columns and their [`ColumnKind`]s are read from the database once and
//! cached, so a save or a read of a known table costs no extra query. With
//! `auto_schema` on, a save to a missing table creates it (`id` primary key,
//! `created_at`, `updated_at`) and a save with a new field adds the column; in a
//! transaction the change is kept aside and published on commit. Missing tables are
//! never cached: a table created later (by `schema_init`, another process) is seen.
//! A read that returns a column the cache lacks (another process added it) reads
//! the table's schema afresh, and a read that depended on it runs again; a count,
//! which returns no columns, reads it afresh when the cache says the table has no
//! `deleted_at` and is older than [`COUNT_TRUSTS_FOR`].

use crate::FastMap as HashMap;
use std::sync::{Arc, RwLock};

use crate::db::backend::Target;
use crate::db::dialect::{
    column_type, key_type, kind_of_declared, quote_unchecked, sqlite_keeps_bound_values, table_options,
};
use crate::db::value::{ColumnKind, Param};
use crate::db::{DatabaseKind, DbError};

/// How long a count trusts a cached "no `deleted_at`" (another process may soft
/// delete, which adds the column).
pub(crate) const COUNT_TRUSTS_FOR: std::time::Duration = std::time::Duration::from_secs(1);

/// The columns of one table.
#[derive(Debug, Clone, Default)]
pub(crate) struct TableSchema {
    pub(crate) columns: HashMap<String, ColumnKind>,
    /// SQLite only: a row inserted with the kernel's bound values reads back exactly
    /// as bound (no column default, no generated column, every column's affinity
    /// keeps its kind's values), so a fresh save can answer without reading it back.
    pub(crate) inserts_read_back_as_bound: bool,
    /// SQLite only: generated columns, which reads return and saves never name.
    pub(crate) generated: Vec<String>,
    /// When the columns were read from the database.
    pub(crate) read_at: Option<std::time::Instant>,
}

impl TableSchema {
    pub(crate) fn kind(&self, column: &str) -> Option<ColumnKind> {
        self.columns.get(column).copied()
    }

    pub(crate) fn has(&self, column: &str) -> bool {
        self.columns.contains_key(column)
    }

    /// Whether a read returns `column` (a saved or a generated column).
    pub(crate) fn reads(&self, column: &str) -> bool {
        self.has(column) || self.generated.iter().any(|g| g == column)
    }
}

/// Tables known to exist, by name.
pub(crate) type Tables = HashMap<String, Arc<TableSchema>>;

/// The shared cache, and the lock that serialises this process's DDL.
#[derive(Debug, Default)]
pub(crate) struct SchemaCache {
    tables: RwLock<Tables>,
    pub(crate) ddl: tokio::sync::Mutex<()>,
}

impl SchemaCache {
    pub(crate) fn get(&self, table: &str) -> Option<Arc<TableSchema>> {
        self.tables.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(table).cloned()
    }

    pub(crate) fn put(&self, table: &str, schema: Arc<TableSchema>) {
        self.tables.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(table.to_owned(), schema);
    }

    /// Forgets every table (after migrations, which may have changed any).
    pub(crate) fn clear(&self) {
        self.tables.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    pub(crate) fn forget(&self, table: &str) {
        self.tables.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(table);
    }

    pub(crate) fn publish(&self, tables: Tables) {
        self.tables.write().unwrap_or_else(std::sync::PoisonError::into_inner).extend(tables);
    }
}

/// Reads `table`'s columns from the database; `None` when it does not exist.
pub(crate) async fn introspect(
    kind: DatabaseKind,
    target: &mut Target<'_>,
    table: &str,
) -> Result<Option<Arc<TableSchema>>, DbError> {
    let sql = match kind {
        DatabaseKind::Sqlite => {
            "SELECT name, type, dflt_value IS NOT NULL AS has_default, hidden FROM pragma_table_xinfo(?)"
        }
        DatabaseKind::Postgres => {
            "SELECT column_name::text AS name, data_type::text AS type FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1"
        }
        DatabaseKind::Mysql => {
            "SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type, COLUMN_COMMENT AS comment \
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?"
        }
    };
    let rows = target.fetch(sql.to_owned(), vec![Param::Text(table.to_owned())], false).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    let int = |r: &crate::db::Row, c: &str| r.get(c).and_then(serde_json::Value::as_i64).unwrap_or(0);
    let mut columns = HashMap::with_capacity_and_hasher(rows.len(), Default::default());
    let mut inserts_read_back_as_bound = kind.has_type_affinity();
    let mut generated = Vec::new();
    for r in &rows {
        let declared = text(r.get("type"));
        let column_kind = kind_of_declared(&declared, &text(r.get("comment")));
        if kind.has_type_affinity() {
            let is_generated = int(r, "hidden") != 0;
            inserts_read_back_as_bound &=
                !is_generated && int(r, "has_default") == 0 && sqlite_keeps_bound_values(column_kind, &declared);
            if is_generated {
                generated.push(text(r.get("name")));
                continue; // never saved into
            }
        }
        columns.insert(text(r.get("name")), column_kind);
    }
    Ok(Some(Arc::new(TableSchema {
        columns,
        inserts_read_back_as_bound,
        generated,
        read_at: Some(std::time::Instant::now()),
    })))
}

/// Creates `table` with `fields`, or adds the `fields` it lacks. Returns the new schema.
///
/// Another process may have made the same change first: "already exists" is not an
/// error as long as the columns are there afterwards.
pub(crate) async fn apply(
    kind: DatabaseKind,
    target: &mut Target<'_>,
    table: &str,
    current: Option<&TableSchema>,
    fields: &[(&str, ColumnKind)],
) -> Result<Arc<TableSchema>, DbError> {
    let q = |name: &str| quote_unchecked(kind, name);
    let mut schema = match current {
        Some(schema) => Arc::new(schema.clone()),
        None => {
            let mut cols = vec![format!("{} {} PRIMARY KEY", q("id"), key_type(kind))];
            for (name, k) in fields.iter().filter(|(n, _)| *n != "id") {
                cols.push(format!("{} {}", q(name), column_type(kind, *k)));
            }
            let sql = format!("CREATE TABLE IF NOT EXISTS {} ({}){}", q(table), cols.join(", "), table_options(kind));
            // Two processes creating it at once can both pass `IF NOT EXISTS`
            // (PostgreSQL then refuses the second with a duplicate type name).
            let created = target.execute(sql, Vec::new()).await;
            match (introspect(kind, target, table).await?, created) {
                (Some(schema), _) => schema,
                (None, Err(e)) => return Err(e),
                (None, Ok(_)) => return Err(DbError::Query(format!("table {table} was not created"))),
            }
        }
    };
    let missing: Vec<_> = fields.iter().filter(|(n, _)| !schema.has(n)).collect();
    if missing.is_empty() {
        return Ok(schema);
    }
    let mut failure = None;
    for (name, k) in missing {
        let sql = format!("ALTER TABLE {} ADD COLUMN {} {}", q(table), q(name), column_type(kind, *k));
        if let Err(e) = target.execute(sql, Vec::new()).await {
            failure = Some(e);
        }
    }
    schema = introspect(kind, target, table).await?.unwrap_or_default();
    match fields.iter().find(|(n, _)| !schema.has(n)) {
        None => Ok(schema),
        Some((name, _)) => Err(failure.unwrap_or_else(|| DbError::Query(format!("column {name} was not created")))),
    }
}
