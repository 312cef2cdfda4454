//! The PostgreSQL half of the entity benchmark: the kernel against plain sqlx.

use std::sync::atomic::{AtomicU64, Ordering};

use app_kernel::db::DatabaseKind;
use criterion::Criterion;
use serde_json::json;
use sqlx::Row as _;

use super::{kernel_find100, kernel_get, kernel_save, scoped_db, ROWS};

/// A row as a hand-written service answers it: a JSON object (as the SQLite baseline does).
fn item(row: &sqlx::postgres::PgRow) -> serde_json::Value {
    let text = |c: &str| row.try_get::<String, _>(c).expect("text");
    json!({"id": text("id"), "owner": text("owner"), "n": row.try_get::<i64, _>("n").expect("n"), "name": text("name"),
        "created_at": text("created_at"), "updated_at": text("updated_at")})
}

pub(super) fn bench(c: &mut Criterion, rt: &tokio::runtime::Runtime, url: &str) {
    let schema = format!("bench_{}", std::process::id());
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-csearch_path%3D{schema}");
    let (admin, db) = scoped_db(rt, DatabaseKind::Postgres, url, &format!("CREATE SCHEMA {schema}"), &scoped);
    let raw = rt.block_on(sqlx::postgres::PgPoolOptions::new().max_connections(8).connect(&scoped)).expect("raw pool");
    let counter = AtomicU64::new(0);
    let next = || counter.fetch_add(1, Ordering::Relaxed) % ROWS;

    let mut g = c.benchmark_group("postgres/get");
    kernel_get(&mut g, rt, &db, &next);
    sqlx_select!(
        g,
        rt,
        raw,
        item,
        r#"SELECT * FROM "bench_items" WHERE ("id" = $1) LIMIT $2"#,
        format!("item-{}", next()),
        1_i64
    );
    g.finish();

    let mut g = c.benchmark_group("postgres/save");
    kernel_save(&mut g, rt, &db, &next);
    g.bench_function("raw", |b| {
        b.to_async(rt).iter(|| async {
            let i = next();
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let rows = sqlx::query(
                r#"INSERT INTO "bench_items" ("id", "owner", "n", "name", "created_at", "updated_at") VALUES ($1, $2, $3, $4, $5, $6)
                   ON CONFLICT ("id") DO UPDATE SET "owner" = excluded."owner", "n" = excluded."n", "name" = excluded."name", "updated_at" = excluded."updated_at" RETURNING *"#,
            )
            .bind(format!("item-{i}"))
            .bind(format!("o{}", i % 10))
            .bind(i as i64)
            .bind("renamed")
            .bind(&now)
            .bind(&now)
            .fetch_all(&raw)
            .await
            .expect("save");
            rows.iter().map(item).collect::<Vec<_>>()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("postgres/find100");
    kernel_find100(&mut g, rt, &db, &next);
    sqlx_select!(
        g,
        rt,
        raw,
        item,
        r#"SELECT * FROM "bench_items" WHERE ("owner" = $1) ORDER BY "n" DESC LIMIT $2"#,
        format!("o{}", next() % 10),
        100_i64,
        rows = 100
    );
    g.finish();

    rt.block_on(db.close());
    rt.block_on(raw.close());
    rt.block_on(admin.execute(&format!("DROP SCHEMA {schema} CASCADE"), &[])).expect("drop schema");
}
