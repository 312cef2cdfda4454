//! The entity API against the same statements written directly with the driver.
//!
//! Run: `cargo bench --bench db_entity` (SQLite), and with
//! `KERNEL_TEST_POSTGRES_URL=... cargo bench --features postgres --bench db_entity` for
//! PostgreSQL too. Groups `sqlite/{get,save,find100}` and `postgres/...` each hold a
//! `kernel` and a `raw` function; the overhead is kernel / raw - 1 on the medians.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use app_kernel::db::{DatabaseSettings, Db, Find};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

const ROWS: u64 = 1000;
const TABLE: &str = "bench_items";

async fn seed(db: &Db) {
    let items = (0..ROWS).map(
        |i| json!({"id": format!("item-{i}"), "owner": format!("o{}", i % 10), "n": i, "name": format!("item {i}")}),
    );
    db.save_many(TABLE, items).await.expect("seed");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

fn bench_sqlite(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.db");
    let db = rt.block_on(Db::connect(&DatabaseSettings::sqlite(path.to_string_lossy()), "bench")).expect("open");
    rt.block_on(seed(&db));
    let raw = rusqlite::Connection::open(&path).expect("raw open");
    raw.pragma_update(None, "journal_mode", "WAL").expect("wal");
    raw.pragma_update(None, "synchronous", "NORMAL").expect("sync");
    raw.busy_timeout(Duration::from_secs(10)).expect("busy");
    let counter = AtomicU64::new(0);
    let next = || counter.fetch_add(1, Ordering::Relaxed) % ROWS;

    let read_all = |stmt: &mut rusqlite::CachedStatement<'_>, params: &[&dyn rusqlite::ToSql]| {
        let n = stmt.column_count();
        let mut rows = stmt.query(params).expect("query");
        let mut out = Vec::new();
        while let Some(row) = rows.next().expect("row") {
            out.push((0..n).map(|i| row.get::<_, rusqlite::types::Value>(i).expect("value")).collect::<Vec<_>>());
        }
        out
    };

    let mut g = c.benchmark_group("sqlite/get");
    g.bench_function("kernel", |b| {
        b.to_async(&rt).iter(|| async { db.get_entity(TABLE, &format!("item-{}", next())).await.expect("get") })
    });
    g.bench_function("raw", |b| {
        b.iter(|| {
            let mut stmt =
                raw.prepare_cached(r#"SELECT * FROM "bench_items" WHERE ("id" = ?) LIMIT ?"#).expect("prepare");
            read_all(&mut stmt, &[&format!("item-{}", next()), &1])
        })
    });
    g.finish();

    let mut g = c.benchmark_group("sqlite/save");
    g.bench_function("kernel", |b| {
        b.to_async(&rt).iter(|| async {
            let i = next();
            db.save_entity(
                TABLE,
                json!({"id": format!("item-{i}"), "owner": format!("o{}", i % 10), "n": i, "name": "renamed"}),
            )
            .await
            .expect("save")
        })
    });
    g.bench_function("raw", |b| {
        b.iter(|| {
            let i = next();
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let mut stmt = raw
                .prepare_cached(
                    r#"INSERT INTO "bench_items" ("id", "owner", "n", "name", "created_at", "updated_at") VALUES (?, ?, ?, ?, ?, ?)
                       ON CONFLICT ("id") DO UPDATE SET "owner" = excluded."owner", "n" = excluded."n", "name" = excluded."name", "updated_at" = excluded."updated_at" RETURNING *"#,
                )
                .expect("prepare");
            read_all(&mut stmt, &[&format!("item-{i}"), &format!("o{}", i % 10), &(i as i64), &"renamed", &now, &now])
        })
    });
    g.finish();

    let mut g = c.benchmark_group("sqlite/find100");
    g.bench_function("kernel", |b| {
        b.to_async(&rt).iter(|| async {
            let q = Find::new().filter("[owner] = ?", [format!("o{}", next() % 10)]).order_by("[n] DESC").limit(100);
            let rows = db.find_entities(TABLE, q).await.expect("find");
            assert_eq!(rows.len(), 100);
        })
    });
    g.bench_function("raw", |b| {
        b.iter(|| {
            let mut stmt = raw
                .prepare_cached(r#"SELECT * FROM "bench_items" WHERE ("owner" = ?) ORDER BY "n" DESC LIMIT ?"#)
                .expect("prepare");
            let rows = read_all(&mut stmt, &[&format!("o{}", next() % 10), &100]);
            assert_eq!(rows.len(), 100);
        })
    });
    g.finish();
    rt.block_on(db.close());
}

#[cfg(feature = "postgres")]
#[path = "db_entity/pg.rs"]
mod pg;

fn bench_postgres(c: &mut Criterion) {
    #[cfg(feature = "postgres")]
    if let Ok(url) = std::env::var("KERNEL_TEST_POSTGRES_URL") {
        pg::bench(c, &runtime(), &url);
        return;
    }
    let _ = c;
    eprintln!("skipped: postgres benchmarks (KERNEL_TEST_POSTGRES_URL unset or feature `postgres` off)");
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(40).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_sqlite, bench_postgres
}
criterion_main!(benches);
