//! Why a database operation failed, and what a client sees of it.
//!
//! Caller mistakes (a bad identifier, a value of the wrong type, an unknown field)
//! become 4xx answers with a precise message; everything else is a 500 whose cause
//! (engine message, SQL) goes to the log and never to the client.

use crate::db::DatabaseKind;
use crate::error::{ApiError, FieldError};

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// A table or column name is not a plain identifier.
    #[error(
        "invalid identifier `{name}`: use ASCII letters, digits and underscores, not starting with a digit, at most 64 characters"
    )]
    InvalidIdentifier {
        /// The rejected name.
        name: String,
    },
    /// An `order_by` clause is not a comma-separated list of `[column] ASC|DESC`.
    #[error("invalid order_by `{clause}`: use `[column] ASC` or `[column] DESC`, separated by commas")]
    InvalidOrderBy {
        /// The rejected clause.
        clause: String,
    },
    /// A statement could not be translated (an unterminated literal, comment or `[`).
    #[error("malformed SQL: {0}")]
    MalformedSql(String),
    /// The number of `?` placeholders and of parameters differ.
    #[error("the statement has {expected} placeholder(s) but {got} parameter(s) were given")]
    ParamCount {
        /// Placeholders in the statement.
        expected: usize,
        /// Parameters given.
        got: usize,
    },
    /// An entity to save is not a JSON object.
    #[error("an entity must be a JSON object, got {found}")]
    NotAnObject {
        /// The JSON type given instead.
        found: &'static str,
    },
    /// A value does not fit its column's type.
    #[error("field `{column}` of `{table}` holds {expected} values, got {found}")]
    TypeMismatch {
        /// The table.
        table: String,
        /// The column.
        column: String,
        /// What the column holds.
        expected: &'static str,
        /// What was given.
        found: &'static str,
    },
    /// A field has no column and `auto_schema` is off.
    #[error("unknown field `{column}` for `{table}`")]
    UnknownColumn {
        /// The table.
        table: String,
        /// The field.
        column: String,
    },
    /// A table does not exist and `auto_schema` is off.
    #[error("table `{table}` does not exist and auto_schema is off: create it in schema_init")]
    MissingTable {
        /// The table.
        table: String,
    },
    /// Auto-schema needs DDL inside a MySQL transaction, which would commit it.
    #[error(
        "table `{table}` needs a schema change, which MySQL cannot make inside a transaction: \
         save once outside it, or create the table in schema_init"
    )]
    SchemaChangeInTransaction {
        /// The table.
        table: String,
    },
    /// The entity asked for does not exist (or is soft-deleted).
    #[error("{table} `{id}` not found")]
    NotFound {
        /// The table.
        table: String,
        /// The id asked for.
        id: String,
    },
    /// A unique constraint refused the write.
    #[error("duplicate value: {0}")]
    Conflict(String),
    /// A parameter for the query (`since`, a cursor, ...) is malformed.
    #[error("invalid {field}: {message}")]
    InvalidInput {
        /// Which parameter.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
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
    /// The pool was closed with [`Db::close`](crate::db::Db::close).
    #[error("the database pool is closed")]
    Closed,
    /// A statement failed.
    #[error("query failed: {0}")]
    Query(String),
    /// Inside a transaction, a statement the connection had prepared met a table
    /// whose columns another process changed since; PostgreSQL refused it, which
    /// ends the transaction. The connection prepares afresh: running it again works.
    #[error(
        "the columns of a table changed during the transaction (another process altered it): run the transaction again"
    )]
    SchemaChanged,
    /// A column's type cannot be turned into JSON; cast it in the query.
    #[error("column `{column}` has type {type_name}, which has no JSON form; cast it (e.g. to text)")]
    UnsupportedType {
        /// The column.
        column: String,
        /// The engine's type name.
        type_name: String,
    },
}

impl DbError {
    pub(crate) fn query(e: impl std::fmt::Display) -> Self {
        Self::Query(e.to_string())
    }
}

fn field_error(field: &str, msg: String, kind: &str) -> ApiError {
    ApiError::validation(vec![FieldError { loc: vec!["body".into(), field.into()], msg, kind: kind.into() }])
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match &e {
            DbError::InvalidIdentifier { .. }
            | DbError::InvalidOrderBy { .. }
            | DbError::InvalidInput { .. }
            | DbError::NotAnObject { .. } => ApiError::bad_request(e.to_string()),
            DbError::TypeMismatch { column, expected, found, .. } => {
                field_error(column, format!("expected {expected}, got {found}"), "type_error")
            }
            DbError::UnknownColumn { column, .. } => field_error(column, "unknown field".into(), "extra_forbidden"),
            DbError::NotFound { .. } => ApiError::not_found(e.to_string()),
            DbError::Conflict(_) => ApiError::conflict("conflict", "A record with the same unique value exists"),
            DbError::SchemaChanged => ApiError::unavailable("schema_changed", "The data changed shape; try again")
                .with_header(http::header::RETRY_AFTER, http::HeaderValue::from_static("1")),
            _ => ApiError::internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn client_errors_are_precise_and_internal_ones_hide_sql() {
        let bad = ApiError::from(DbError::InvalidIdentifier { name: "a b".into() });
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        assert!(bad.detail().contains("`a b`"));
        let typed = ApiError::from(DbError::TypeMismatch {
            table: "t".into(),
            column: "n".into(),
            expected: "integer",
            found: "string",
        });
        assert_eq!(typed.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let missing = ApiError::from(DbError::NotFound { table: "projects".into(), id: "7".into() });
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let changed = ApiError::from(DbError::SchemaChanged);
        assert_eq!(changed.status(), StatusCode::SERVICE_UNAVAILABLE);
        let internal = ApiError::from(DbError::Query("SELECT secret FROM t".into()));
        assert_eq!(internal.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!internal.detail().contains("SELECT"));
    }
}
