//! JSON values in and out of SQL, with their types kept.
//!
//! Each entity column has a [`ColumnKind`], chosen from the first non-null value saved
//! into it (or read from the declared type of a table the app created). Values are
//! checked against it on save and restored from it on read, so `true` comes back as
//! `true` (not `1`), `{"a":1}` as an object, and the string `"{\"a\":1}"` as a string.

use serde_json::{Number, Value};

use crate::db::DbError;

/// One row: column name to JSON value.
pub type Row = serde_json::Map<String, Value>;

/// What an entity column holds (and the column type the kernel creates for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ColumnKind {
    /// 64-bit integers.
    Integer,
    /// Floating-point numbers (integers are accepted and come back as floats).
    Float,
    /// Booleans.
    Bool,
    /// Strings.
    Text,
    /// Any JSON value, stored as JSON (arrays, objects, or a column first saved as null).
    Json,
}

impl ColumnKind {
    /// The kind a new column gets from the first value saved into it.
    pub(crate) fn of(value: &Value) -> Self {
        match value {
            Value::Number(n) if n.is_i64() => Self::Integer,
            Value::Number(_) => Self::Float,
            Value::Bool(_) => Self::Bool,
            Value::String(_) => Self::Text,
            Value::Null | Value::Array(_) | Value::Object(_) => Self::Json,
        }
    }

    /// Whether [`restore`] can change a value read from a column of this kind.
    pub(crate) fn restores(self, json_as_text: bool) -> bool {
        match self {
            Self::Bool | Self::Float => true,
            Self::Json => json_as_text,
            Self::Integer | Self::Text => false,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Integer => "integer",
            Self::Float => "number",
            Self::Bool => "boolean",
            Self::Text => "string",
            Self::Json => "JSON",
        }
    }
}

/// The JSON type name of `value`, for messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value to bind. Engines turn it into their own parameter types.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    /// SQL NULL, typed when the column is known (PostgreSQL needs it).
    Null(Option<ColumnKind>),
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Text(String),
    /// A JSON document (an array or object, or any value for a JSON column).
    Json(Value),
}

impl Param {
    /// A raw query parameter: the JSON type decides the SQL type.
    pub(crate) fn from_json(value: Value) -> Self {
        match value {
            Value::Null => Self::Null(None),
            Value::Bool(b) => Self::Bool(b),
            Value::Number(n) => n.as_i64().map_or_else(|| Self::Float(n.as_f64().unwrap_or(f64::NAN)), Self::Int),
            Value::String(s) => Self::Text(s),
            v @ (Value::Array(_) | Value::Object(_)) => Self::Json(v),
        }
    }

    /// An entity field: checked against its column's kind.
    pub(crate) fn for_column(table: &str, column: &str, kind: ColumnKind, value: Value) -> Result<Self, DbError> {
        let mismatch = |v: &Value| DbError::TypeMismatch {
            table: table.to_owned(),
            column: column.to_owned(),
            expected: kind.describe(),
            found: json_type(v),
        };
        Ok(match (kind, value) {
            (_, Value::Null) => Self::Null(Some(kind)),
            (ColumnKind::Json, v) => Self::Json(v),
            (ColumnKind::Integer, Value::Number(n)) if n.is_i64() => Self::Int(n.as_i64().unwrap_or_default()),
            (ColumnKind::Float, Value::Number(n)) => Self::Float(n.as_f64().unwrap_or(f64::NAN)),
            (ColumnKind::Bool, Value::Bool(b)) => Self::Bool(b),
            (ColumnKind::Text, Value::String(s)) => Self::Text(s),
            (_, v) => return Err(mismatch(&v)),
        })
    }

    /// The value a read of this parameter gives back from a column that stores it
    /// unchanged (see `TableSchema::inserts_read_back_as_bound`), types restored.
    pub(crate) fn read_back(&self) -> Value {
        match self {
            Self::Null(_) => Value::Null,
            Self::Bool(b) => Value::Bool(*b),
            Self::Int(i) => Value::from(*i),
            Self::Float(f) => float(*f),
            Self::Text(s) => Value::String(s.clone()),
            Self::Json(v) => v.clone(),
        }
    }

    /// The JSON text of a JSON parameter, for engines that store it as text.
    pub(crate) fn json_text(value: &Value) -> String {
        value.to_string()
    }
}

/// A float as JSON (`null` for NaN and infinities, which JSON cannot hold).
pub(crate) fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// Restores the JSON type of a value read from a column of `kind`.
pub(crate) fn restore(kind: ColumnKind, value: Value, json_as_text: bool) -> Value {
    match (kind, value) {
        (ColumnKind::Bool, Value::Number(n)) => Value::Bool(n.as_i64().is_some_and(|i| i != 0)),
        (ColumnKind::Json, Value::String(s)) if json_as_text => serde_json::from_str(&s).unwrap_or(Value::String(s)),
        (ColumnKind::Float, Value::Number(n)) if !n.is_f64() => n.as_f64().map_or(Value::Number(n), float),
        (_, v) => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_check_values() {
        assert_eq!(ColumnKind::of(&json!(1)), ColumnKind::Integer);
        assert_eq!(ColumnKind::of(&json!(1.5)), ColumnKind::Float);
        assert_eq!(ColumnKind::of(&json!([1])), ColumnKind::Json);
        assert_eq!(Param::for_column("t", "n", ColumnKind::Float, json!(2)).unwrap(), Param::Float(2.0));
        assert!(matches!(
            Param::for_column("t", "n", ColumnKind::Integer, json!("2")),
            Err(DbError::TypeMismatch { expected: "integer", found: "string", .. })
        ));
        assert_eq!(Param::for_column("t", "j", ColumnKind::Json, json!("x")).unwrap(), Param::Json(json!("x")));
    }

    #[test]
    fn restore_keeps_strings_that_look_like_json() {
        assert_eq!(restore(ColumnKind::Text, json!("{\"a\":1}"), true), json!("{\"a\":1}"));
        assert_eq!(restore(ColumnKind::Json, json!("{\"a\":1}"), true), json!({"a": 1}));
        assert_eq!(restore(ColumnKind::Json, json!("\"s\""), true), json!("s"));
        assert_eq!(restore(ColumnKind::Bool, json!(1), true), json!(true));
        assert_eq!(restore(ColumnKind::Float, json!(3), true), json!(3.0));
    }
}
