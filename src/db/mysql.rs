//! MySQL and MariaDB through a sqlx pool (cargo feature `mysql`).
//!
//! JSON is bound and read as text (MariaDB's JSON is a LONGTEXT); `BOOLEAN` is
//! `TINYINT(1)`, restored to `true`/`false` by the entity layer. MySQL DDL is not
//! transactional (it commits the open transaction), so auto-schema refuses to change
//! the schema inside a transaction ([`DbError::SchemaChangeInTransaction`]);
//! `save_many` prepares the schema before it starts its transaction.

use serde_json::Value;
use sqlx::mysql::{MySql, MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::{Column, Row as _, TypeInfo};

use super::sqlx_pool::error;
use crate::db::value::{float, Param, Row};
use crate::db::DbError;

type Query<'q> = sqlx::query::Query<'q, MySql, sqlx::mysql::MySqlArguments>;

super::sqlx_pool::sqlx_pool_backend!(
    MySqlBackend,
    MySqlTx,
    MySql,
    sqlx::mysql::MySqlConnection,
    MySqlPool,
    MySqlPoolOptions,
    "mysql",
    "A MySQL pool."
);

/// MySQL has no notifications.
#[allow(clippy::unused_async)]
async fn listen(_: &MySqlPool, _: &str) -> Result<Option<crate::db::backend::Notifications>, DbError> {
    Ok(None)
}

fn bind<'q>(mut q: Query<'q>, params: &'q [Param]) -> Query<'q> {
    for p in params {
        q = match p {
            Param::Null(_) => q.bind(None::<String>),
            Param::Bool(b) => q.bind(*b),
            Param::Int(i) => q.bind(*i),
            Param::Float(f) => q.bind(*f),
            Param::Text(s) => q.bind(s.as_str()),
            Param::Json(v) => q.bind(Param::json_text(v)),
        };
    }
    q
}

fn row(r: &MySqlRow) -> Result<Row, DbError> {
    r.columns().iter().enumerate().map(|(i, col)| Ok((col.name().to_owned(), value(r, i, col)?))).collect()
}

/// The value of column `i` (`col`) of `r`.
fn value(r: &MySqlRow, i: usize, col: &<MySql as sqlx::Database>::Column) -> Result<Value, DbError> {
    let e = error;
    let name = col.type_info().name();
    let bytes = || r.try_get_unchecked::<Option<Vec<u8>>, _>(i).map_err(e);
    let v = match name {
        "NULL" => None,
        "BOOLEAN" => r.try_get::<Option<bool>, _>(i).map_err(e)?.map(Value::Bool),
        "TINYINT" | "SMALLINT" | "INT" | "MEDIUMINT" | "BIGINT" | "YEAR" => {
            r.try_get_unchecked::<Option<i64>, _>(i).map_err(e)?.map(Value::from)
        }
        n if n.ends_with("UNSIGNED") => r.try_get_unchecked::<Option<u64>, _>(i).map_err(e)?.map(Value::from),
        "FLOAT" => r.try_get::<Option<f32>, _>(i).map_err(e)?.map(|f| float(f64::from(f))),
        "DOUBLE" => r.try_get::<Option<f64>, _>(i).map_err(e)?.map(float),
        "DECIMAL" => bytes()?.map(|b| {
            let s = String::from_utf8_lossy(&b).into_owned();
            s.parse::<f64>().map_or(Value::String(s), float)
        }),
        // A `_bin` collation flags text columns as binary too: UTF-8 is read as text,
        // anything else as base64.
        "VARCHAR" | "CHAR" | "TEXT" | "TINYTEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM" | "SET" | "JSON" | "BINARY"
        | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" | "BIT" => bytes()?.map(|b| {
            String::from_utf8(b)
                .map_or_else(|e| Value::String(data_encoding::BASE64.encode(e.as_bytes())), Value::String)
        }),
        "DATETIME" | "TIMESTAMP" => {
            r.try_get::<Option<chrono::NaiveDateTime>, _>(i).map_err(e)?.map(|t| Value::String(t.to_string()))
        }
        "DATE" => r.try_get::<Option<chrono::NaiveDate>, _>(i).map_err(e)?.map(|t| Value::String(t.to_string())),
        other => return Err(DbError::UnsupportedType { column: col.name().to_owned(), type_name: other.to_owned() }),
    };
    Ok(v.unwrap_or(Value::Null))
}
