//! Why a database operation failed, and what a client sees of it.
//!
//! Caller mistakes (a bad identifier, a value of the wrong type, an unknown field)
//! become 4xx answers with a precise message; a database that cannot be reached is a
//! 503 `database_unavailable` with `Retry-After`; everything else is a 500. The cause
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
    /// Fields that are not columns of the table, which the schema policy does not add
    /// (`Closed`).
    #[error("`{table}` has no field(s) {}", fields.join(", "))]
    UnknownFields {
        /// The table.
        table: String,
        /// The fields that are not columns.
        fields: Vec<String>,
    },
    /// A table does not exist and the schema policy does not create it (`Closed`).
    #[error(
        "table `{table}` does not exist: declare it (Service::table, schema_init) or set DATABASE_SCHEMA=additive"
    )]
    MissingTable {
        /// The table.
        table: String,
    },
    /// Field names that are not plain identifiers of at most 63 bytes.
    #[error(
        "invalid field name(s) {}: use ASCII letters, digits and underscores, not starting with a digit, at most 63 bytes",
        fields.join(", ")
    )]
    InvalidFieldNames {
        /// The rejected names.
        fields: Vec<String>,
    },
    /// Fields that differ from a column (or from each other) only in case, which MySQL
    /// and SQLite would store in one column.
    #[error("field(s) {} of `{table}` differ from another field only in case", fields.join(", "))]
    FieldNameClash {
        /// The table.
        table: String,
        /// The clashing fields.
        fields: Vec<String>,
    },
    /// A save would add more columns than the schema policy lets one save add.
    #[error("a save may add at most {limit} field(s) to `{table}`; this one adds {}", fields.join(", "))]
    TooManyNewFields {
        /// The table.
        table: String,
        /// The limit per save.
        limit: usize,
        /// The fields it would add.
        fields: Vec<String>,
    },
    /// A save would take the table past the schema policy's column limit.
    #[error("`{table}` may have at most {limit} columns; no room for {}", fields.join(", "))]
    TooManyColumns {
        /// The table.
        table: String,
        /// The column limit.
        limit: usize,
        /// The fields it would add.
        fields: Vec<String>,
    },
    /// The kernel's own tables (`kernel_*`) are not reachable through the entity API.
    #[error("table `{table}` is reserved for the kernel")]
    ReservedTable {
        /// The table.
        table: String,
    },
    /// A raw filter clause could carry SQL beyond its own condition (an unbalanced
    /// parenthesis or bracket, a `;`, a comment).
    #[error("unsafe filter clause: {0}")]
    UnsafeFilter(String),
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
    /// The database server cannot be reached (refused, restarting, a dropped
    /// connection), or no connection was free within the acquire timeout. A client
    /// gets 503 `database_unavailable` with `Retry-After`.
    #[error("database unavailable: {0}")]
    Unavailable(String),
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

    /// Whether the database could not be reached (see [`DbError::Unavailable`]):
    /// what other modules' errors check to answer 503 rather than 500.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    /// The answer for an unreachable database: 503 `database_unavailable`, with
    /// `Retry-After: 1`; the cause goes to the log only.
    pub fn unavailable_answer(cause: &impl std::fmt::Display) -> ApiError {
        tracing::warn!(error = %cause, "database unavailable");
        ApiError::unavailable("database_unavailable", "The database is unavailable; try again shortly")
            .with_header(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"))
    }
}

fn field_error(field: &str, msg: String, kind: &str) -> ApiError {
    ApiError::validation(vec![FieldError { loc: vec!["body".into(), field.into()], msg, kind: kind.into() }])
}

/// 422 with `code`, the error's message, and one entry per offending field.
fn fields_error(e: &DbError, code: &'static str, fields: &[String], kind: &str) -> ApiError {
    let msg = match e {
        DbError::UnknownFields { .. } => "not a field of this resource",
        DbError::InvalidFieldNames { .. } => "not a valid field name",
        DbError::FieldNameClash { .. } => "differs from another field only in case",
        _ => "no room for another field",
    };
    let errors = fields
        .iter()
        .map(|f| FieldError { loc: vec!["body".into(), f.clone()], msg: msg.into(), kind: kind.into() })
        .collect();
    ApiError::new(http::StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string()).with_errors(errors)
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
            DbError::UnknownFields { fields, .. } => fields_error(&e, "unknown_fields", fields, "extra_forbidden"),
            DbError::InvalidFieldNames { fields } => fields_error(&e, "invalid_field_name", fields, "value_error"),
            DbError::FieldNameClash { fields, .. } => fields_error(&e, "field_name_clash", fields, "value_error"),
            DbError::TooManyNewFields { fields, .. } => fields_error(&e, "too_many_new_fields", fields, "value_error"),
            DbError::TooManyColumns { fields, .. } => fields_error(&e, "too_many_columns", fields, "value_error"),
            DbError::ReservedTable { .. } | DbError::UnsafeFilter(_) => ApiError::bad_request(e.to_string()),
            DbError::NotFound { .. } => ApiError::not_found(e.to_string()),
            DbError::Conflict(_) => ApiError::conflict("conflict", "A record with the same unique value exists"),
            DbError::Unavailable(_) => DbError::unavailable_answer(&e),
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
        let down = ApiError::from(DbError::Unavailable("pool timed out".into()));
        assert_eq!((down.status(), down.code()), (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"));
        assert!(!down.detail().contains("pool"));
        let internal = ApiError::from(DbError::Query("SELECT secret FROM t".into()));
        assert_eq!(internal.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!internal.detail().contains("SELECT"));
    }
}
