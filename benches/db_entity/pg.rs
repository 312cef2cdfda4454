//! PostgreSQL: the bench's own schema, and the baseline on plain sqlx.

use app_kernel::db::DatabaseKind;
use serde_json::json;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::Row as _;

use super::engines::{now, server_engine, Baseline, Engine, Op};

const GET: &str = r#"SELECT * FROM "bench_items" WHERE ("id" = $1) LIMIT $2"#;
const SAVE: &str = r#"INSERT INTO "bench_items" ("id", "owner", "n", "name", "created_at", "updated_at") VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT ("id") DO UPDATE SET "owner" = excluded."owner", "n" = excluded."n", "name" = excluded."name", "updated_at" = excluded."updated_at" RETURNING *"#;
const FIND: &str = r#"SELECT * FROM "bench_items" WHERE ("owner" = $1) ORDER BY "n" DESC LIMIT $2"#;

/// A row as a hand-written service answers it: a JSON object (as the SQLite baseline does).
fn item(row: &PgRow) -> serde_json::Value {
    let text = |c: &str| row.try_get::<String, _>(c).expect("text");
    json!({"id": text("id"), "owner": text("owner"), "n": row.try_get::<i64, _>("n").expect("n"), "name": text("name"),
        "created_at": text("created_at"), "updated_at": text("updated_at")})
}

pub(crate) fn engine(rt: &tokio::runtime::Runtime, url: &str) -> Engine {
    let schema = format!("bench_{}", std::process::id());
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-csearch_path%3D{schema}");
    let statements = (&*format!("CREATE SCHEMA {schema}"), format!("DROP SCHEMA {schema} CASCADE"));
    server_engine(rt, DatabaseKind::Postgres, (url, &scoped), statements, |rt, scoped| {
        Baseline::Postgres(rt.block_on(PgPoolOptions::new().max_connections(8).connect(scoped)).expect("raw pool"))
    })
}

/// `op` on item `i`; the number of rows answered.
pub(crate) async fn run(pool: &PgPool, op: Op, i: u64) -> usize {
    let n = i64::try_from(i).expect("small");
    let rows = match op {
        Op::Get => sqlx::query(GET).bind(format!("item-{i}")).bind(1_i64).fetch_all(pool).await,
        Op::Save => {
            let now = now();
            let query = sqlx::query(SAVE).bind(format!("item-{i}")).bind(format!("o{}", i % 10)).bind(n);
            query.bind("renamed").bind(&now).bind(&now).fetch_all(pool).await
        }
        Op::Find100 => sqlx::query(FIND).bind(format!("o{}", i % 10)).bind(100_i64).fetch_all(pool).await,
    };
    rows.expect("query").iter().map(item).collect::<Vec<_>>().len()
}
