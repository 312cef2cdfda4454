//! What a save may change in the schema: [`SchemaPolicy`], and the check that every
//! schema change a save asks for passes before any DDL runs.
//!
//! Guarantees: under [`SchemaPolicy::Closed`] the entity API never runs DDL; under
//! [`SchemaPolicy::Additive`] a save adds at most [`SchemaLimits::max_new_columns`]
//! columns and never takes a table past [`SchemaLimits::max_columns`]. The check runs
//! against the table as the database has it, inside the lock that serialises schema
//! changes across processes (`Ctx::change_schema`), so several instances adding columns
//! at once stay within the limits too. A refused save changes nothing: no DDL, no row.

use crate::db::schema::TableSchema;
use crate::db::value::ColumnKind;
use crate::db::DbError;

/// What `save_entity` may change in the database's schema.
///
/// The default is [`SchemaPolicy::Closed`]: in production, tables and columns are the
/// app's decision (`Service::table`, `schema_init`), never a client's. For development,
/// [`SchemaPolicy::additive`] (`DATABASE_SCHEMA=additive`) lets a save create its table
/// and add the columns its fields need, within [`SchemaLimits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SchemaPolicy {
    /// No DDL at request time: a save to a missing table, or with a field that is not
    /// a column, is refused (422 `unknown_fields`).
    #[default]
    Closed,
    /// A save may create a missing table and add columns, within the limits.
    Additive(SchemaLimits),
}

/// How far [`SchemaPolicy::Additive`] lets saves grow a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchemaLimits {
    /// Columns a save may take a table to, `id`, `created_at` and `updated_at`
    /// included (default 64). Tables declared wider by the app are not refused reads
    /// or saves of their own columns; saves just add no more.
    pub max_columns: usize,
    /// Columns one save may add (default 16).
    pub max_new_columns: usize,
}

impl Default for SchemaLimits {
    fn default() -> Self {
        Self { max_columns: 64, max_new_columns: 16 }
    }
}

impl SchemaLimits {
    /// Limits of `max_columns` per table and `max_new_columns` per save.
    pub fn new(max_columns: usize, max_new_columns: usize) -> Self {
        Self { max_columns, max_new_columns }
    }
}

impl SchemaPolicy {
    /// Additive, with the default [`SchemaLimits`].
    pub fn additive() -> Self {
        Self::Additive(SchemaLimits::default())
    }

    /// Parses `closed` or `additive` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "closed" => Some(Self::Closed),
            "additive" => Some(Self::additive()),
            _ => None,
        }
    }

    /// Whether saves may change the schema at all.
    pub fn is_additive(&self) -> bool {
        matches!(self, Self::Additive(_))
    }

    /// Checks the change that saving `fields` into `table` (as `current` has it; `None`:
    /// missing) needs. Returns the fields to add (all of them for a new table).
    ///
    /// # Errors
    /// [`DbError::UnknownFields`] or [`DbError::MissingTable`] under `Closed`; [`DbError::FieldNameClash`] for a
    /// field that differs from a column only in case (one column on MySQL and SQLite);
    /// [`DbError::TooManyNewFields`] / [`DbError::TooManyColumns`] past the limits.
    pub(crate) fn check<'f>(
        &self,
        table: &str,
        current: Option<&TableSchema>,
        fields: &'f [(&'f str, ColumnKind)],
    ) -> Result<Vec<(&'f str, ColumnKind)>, DbError> {
        let missing: Vec<(&str, ColumnKind)> =
            fields.iter().filter(|(n, _)| !current.is_some_and(|s| s.has(n))).copied().collect();
        if missing.is_empty() {
            return Ok(missing);
        }
        let names = |list: &[(&str, ColumnKind)]| list.iter().map(|(n, _)| (*n).to_owned()).collect::<Vec<_>>();
        let limits = match self {
            Self::Closed if current.is_none() => return Err(DbError::MissingTable { table: table.to_owned() }),
            Self::Closed => return Err(DbError::UnknownFields { table: table.to_owned(), fields: names(&missing) }),
            Self::Additive(limits) => limits,
        };
        let clashes: Vec<String> = missing
            .iter()
            .filter(|(n, _)| {
                let in_table = current.is_some_and(|s| s.columns.keys().any(|c| c.eq_ignore_ascii_case(n)));
                in_table || fields.iter().any(|(other, _)| other != n && other.eq_ignore_ascii_case(n))
            })
            .map(|(n, _)| (*n).to_owned())
            .collect();
        if !clashes.is_empty() {
            return Err(DbError::FieldNameClash { table: table.to_owned(), fields: clashes });
        }
        // A new table's `id`, `created_at` and `updated_at` are the kernel's, not the save's.
        let added = missing.iter().filter(|(n, _)| !matches!(*n, "id" | "created_at" | "updated_at")).count();
        if added > limits.max_new_columns {
            let (table, limit, fields) = (table.to_owned(), limits.max_new_columns, names(&missing));
            return Err(DbError::TooManyNewFields { table, limit, fields });
        }
        let existing = current.map_or(0, |s| s.columns.len());
        if existing + missing.len() > limits.max_columns {
            let (table, limit, fields) = (table.to_owned(), limits.max_columns, names(&missing));
            return Err(DbError::TooManyColumns { table, limit, fields });
        }
        Ok(missing)
    }
}

/// A refused save, logged at warn (the line carries the request's caller) and counted
/// in [`ENTITY_SCHEMA_REFUSALS_TOTAL`](crate::observability::names::ENTITY_SCHEMA_REFUSALS_TOTAL);
/// other errors pass unnoticed.
pub(crate) fn note_refusal(table: &str, e: &DbError) {
    let reason = match e {
        DbError::UnknownFields { .. } => "unknown_fields",
        DbError::InvalidFieldNames { .. } => "invalid_field_name",
        DbError::FieldNameClash { .. } => "field_name_clash",
        DbError::TooManyNewFields { .. } => "too_many_new_fields",
        DbError::TooManyColumns { .. } => "too_many_columns",
        _ => return,
    };
    let name = crate::observability::names::ENTITY_SCHEMA_REFUSALS_TOTAL;
    metrics::counter!(name, "table" => table.to_owned(), "reason" => reason).increment(1);
    tracing::warn!(table, reason, "entity save refused: {e}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn table(columns: &[&str]) -> Arc<TableSchema> {
        let mut s = TableSchema::default();
        for c in columns {
            s.columns.insert((*c).to_owned(), ColumnKind::Text);
        }
        Arc::new(s)
    }

    fn text(names: &[&'static str]) -> Vec<(&'static str, ColumnKind)> {
        names.iter().map(|n| (*n, ColumnKind::Text)).collect()
    }

    #[test]
    fn closed_names_the_fields_that_are_not_columns() {
        let t = table(&["id", "created_at", "updated_at", "name"]);
        let fields = text(&["id", "name", "colour", "size"]);
        match SchemaPolicy::Closed.check("w", Some(&t), &fields) {
            Err(DbError::UnknownFields { fields, .. }) => assert_eq!(fields, ["colour", "size"]),
            other => panic!("{other:?}"),
        }
        assert!(SchemaPolicy::Closed.check("w", Some(&t), &text(&["name"])).unwrap().is_empty());
        assert!(matches!(SchemaPolicy::Closed.check("w", None, &fields), Err(DbError::MissingTable { .. })));
    }

    #[test]
    fn additive_stops_at_its_limits() {
        let policy = SchemaPolicy::Additive(SchemaLimits::new(6, 2));
        let t = table(&["id", "created_at", "updated_at"]);
        let two = text(&["a", "b"]);
        assert_eq!(policy.check("w", Some(&t), &two).unwrap().len(), 2);
        let three = text(&["a", "b", "c"]);
        assert!(matches!(policy.check("w", Some(&t), &three), Err(DbError::TooManyNewFields { limit: 2, .. })));
        let full = table(&["id", "created_at", "updated_at", "a", "b"]);
        match policy.check("w", Some(&full), &text(&["c", "d"])) {
            Err(DbError::TooManyColumns { limit: 6, fields, .. }) => assert_eq!(fields, ["c", "d"]),
            other => panic!("{other:?}"),
        }
        // A new table: the kernel's three columns do not count as the save's additions.
        let fresh = text(&["id", "created_at", "updated_at", "a", "b"]);
        assert_eq!(policy.check("w", None, &fresh).unwrap().len(), 5);
    }

    #[test]
    fn a_field_differing_only_in_case_is_refused() {
        let policy = SchemaPolicy::additive();
        let t = table(&["id", "name"]);
        assert!(matches!(policy.check("w", Some(&t), &text(&["Name"])), Err(DbError::FieldNameClash { .. })));
        assert!(matches!(policy.check("w", Some(&t), &text(&["b", "B"])), Err(DbError::FieldNameClash { .. })));
    }

    #[test]
    fn parses_its_env_values() {
        assert_eq!(SchemaPolicy::parse("Closed"), Some(SchemaPolicy::Closed));
        assert_eq!(SchemaPolicy::parse("additive"), Some(SchemaPolicy::additive()));
        assert_eq!(SchemaPolicy::parse("auto"), None);
    }
}
