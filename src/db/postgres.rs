//! PostgreSQL through a sqlx pool (cargo feature `postgres`).
//!
//! Values bind with their JSON type: integers as `BIGINT`, floats as `DOUBLE PRECISION`,
//! arrays and objects as `JSONB`. A null whose column is unknown is sent untyped, so
//! the server infers its type as it does for a literal `NULL`.

use serde_json::Value;
use sqlx::encode::IsNull;
use sqlx::postgres::{PgArgumentBuffer, PgPool, PgPoolOptions, PgRow, PgTypeInfo, Postgres};
use sqlx::types::Json;
use sqlx::{Column, Row as _, TypeInfo};

use super::sqlx_pool::error;
use crate::db::value::{float, ColumnKind, Param, Row};
use crate::db::DbError;

type Query<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

super::sqlx_pool::sqlx_pool_backend!(
    PgBackend,
    PgTx,
    Postgres,
    sqlx::postgres::PgConnection,
    PgPool,
    PgPoolOptions,
    "postgres",
    "A PostgreSQL pool."
);

/// A NULL with no declared type: the server infers it from where it is used.
struct UntypedNull;

impl sqlx::Type<Postgres> for UntypedNull {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(sqlx::postgres::types::Oid(0))
    }
}

impl sqlx::Encode<'_, Postgres> for UntypedNull {
    fn encode_by_ref(&self, _: &mut PgArgumentBuffer) -> Result<IsNull, sqlx::error::BoxDynError> {
        Ok(IsNull::Yes)
    }
}

/// `LISTEN channel` on a connection of its own, opened with the pool's settings.
async fn listen(pool: &PgPool, channel: &str) -> Result<Option<crate::db::backend::Notifications>, DbError> {
    use futures::StreamExt;
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await.map_err(error)?;
    listener.listen(channel).await.map_err(error)?;
    Ok(Some(listener.into_stream().map(|n| n.map(drop).map_err(error)).boxed()))
}

fn bind<'q>(mut q: Query<'q>, params: &'q [Param]) -> Query<'q> {
    for p in params {
        q = match p {
            Param::Null(None) => q.bind(UntypedNull),
            Param::Null(Some(ColumnKind::Integer)) => q.bind(None::<i64>),
            Param::Null(Some(ColumnKind::Float)) => q.bind(None::<f64>),
            Param::Null(Some(ColumnKind::Bool)) => q.bind(None::<bool>),
            Param::Null(Some(ColumnKind::Text)) => q.bind(None::<String>),
            Param::Null(Some(ColumnKind::Json)) => q.bind(None::<Json<Value>>),
            Param::Bool(b) => q.bind(*b),
            Param::Int(i) => q.bind(*i),
            Param::Float(f) => q.bind(*f),
            Param::Text(s) => q.bind(s.as_str()),
            Param::Json(v) => q.bind(Json(v)),
        };
    }
    q
}

fn row(r: &PgRow) -> Result<Row, DbError> {
    r.columns().iter().enumerate().map(|(i, col)| Ok((col.name().to_owned(), value(r, i, col)?))).collect()
}

/// The value of column `i` (`col`) of `r`.
fn value(r: &PgRow, i: usize, col: &<Postgres as sqlx::Database>::Column) -> Result<Value, DbError> {
    let e = error;
    let v = match col.type_info().name() {
        "BOOL" => r.try_get::<Option<bool>, _>(i).map_err(e)?.map(Value::Bool),
        "INT2" => r.try_get::<Option<i16>, _>(i).map_err(e)?.map(Value::from),
        "INT4" => r.try_get::<Option<i32>, _>(i).map_err(e)?.map(Value::from),
        "INT8" => r.try_get::<Option<i64>, _>(i).map_err(e)?.map(Value::from),
        "OID" => r.try_get::<Option<sqlx::postgres::types::Oid>, _>(i).map_err(e)?.map(|o| Value::from(o.0)),
        "FLOAT4" => r.try_get::<Option<f32>, _>(i).map_err(e)?.map(|f| float(f64::from(f))),
        "FLOAT8" => r.try_get::<Option<f64>, _>(i).map_err(e)?.map(float),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" | "CITEXT" | "UNKNOWN" => {
            r.try_get_unchecked::<Option<String>, _>(i).map_err(e)?.map(Value::String)
        }
        "JSON" | "JSONB" => r.try_get::<Option<Json<Value>>, _>(i).map_err(e)?.map(|j| j.0),
        "UUID" => r.try_get::<Option<uuid::Uuid>, _>(i).map_err(e)?.map(|u| Value::String(u.to_string())),
        "TIMESTAMPTZ" => r
            .try_get::<Option<chrono::DateTime<chrono::Utc>>, _>(i)
            .map_err(e)?
            .map(|t| Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))),
        "TIMESTAMP" => {
            r.try_get::<Option<chrono::NaiveDateTime>, _>(i).map_err(e)?.map(|t| Value::String(t.to_string()))
        }
        "DATE" => r.try_get::<Option<chrono::NaiveDate>, _>(i).map_err(e)?.map(|t| Value::String(t.to_string())),
        "BYTEA" => {
            r.try_get::<Option<Vec<u8>>, _>(i).map_err(e)?.map(|b| Value::String(data_encoding::BASE64.encode(&b)))
        }
        "VOID" => None,
        other => return Err(DbError::UnsupportedType { column: col.name().to_owned(), type_name: other.to_owned() }),
    };
    Ok(v.unwrap_or(Value::Null))
}
