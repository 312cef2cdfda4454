//! The entity API against the same statements written directly with the driver.
//!
//! Run: `cargo bench --bench db_entity` (SQLite), and with
//! `KERNEL_TEST_POSTGRES_URL=... KERNEL_TEST_MYSQL_URL=... cargo bench --all-features --bench
//! db_entity` for PostgreSQL and MySQL/MariaDB too. Groups `sqlite/{get,save,find100}`,
//! `postgres/...` and `mysql/...` each hold a `kernel` and a `raw` function; the overhead is
//! kernel / raw - 1 on the medians.
//!
//! The SQLite `raw` baseline is what a careful hand-written async (axum) service does on
//! the fastest correct path: a small pool of rusqlite connections opened up front (one
//! writer behind a mutex, readers in an idle list), each call moved off the async worker
//! threads with `spawn_blocking`, statements from `prepare_cached`, and every row turned
//! into a `serde_json` object ready for an HTTP response. It writes the same SQL text the
//! kernel generates. `raw-sync` runs the same statements synchronously on the bench
//! thread, with no pool, no thread hop and rows left as rusqlite values: for information
//! only, since an async service cannot call SQLite that way.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use app_kernel::db::{Db, Find};
use criterion::{criterion_group, criterion_main, Criterion};
use rusqlite::types::Value as SqlValue;
use serde_json::json;

#[path = "db_entity/sqlite_raw.rs"]
mod sqlite_raw;
#[cfg(any(feature = "postgres", feature = "mysql"))]
use sqlite_raw::runtime;
use sqlite_raw::{open_raw, FIND_SQL, GET_SQL, ROWS, SAVE_SQL, TABLE};

/// A benchmark group of one engine.
type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;
/// The next item number to touch.
type Next<'a> = &'a dyn Fn() -> u64;

/// The kernel's side of `<engine>/get`: one entity by id.
fn kernel_get(g: &mut Group<'_>, rt: &tokio::runtime::Runtime, db: &Db, next: Next<'_>) {
    g.bench_function("kernel", |b| {
        b.to_async(rt).iter(|| async { db.get_entity(TABLE, &format!("item-{}", next())).await.expect("get") })
    });
}

/// The kernel's side of `<engine>/save`: an upsert of an existing entity.
fn kernel_save(g: &mut Group<'_>, rt: &tokio::runtime::Runtime, db: &Db, next: Next<'_>) {
    g.bench_function("kernel", |b| {
        b.to_async(rt).iter(|| async {
            let i = next();
            db.save_entity(
                TABLE,
                json!({"id": format!("item-{i}"), "owner": format!("o{}", i % 10), "n": i, "name": "renamed"}),
            )
            .await
            .expect("save")
        })
    });
}

/// The kernel's side of `<engine>/find100`: one owner's 100 entities, ordered.
fn kernel_find100(g: &mut Group<'_>, rt: &tokio::runtime::Runtime, db: &Db, next: Next<'_>) {
    g.bench_function("kernel", |b| {
        b.to_async(rt).iter(|| async {
            let q = Find::new().filter("[owner] = ?", [format!("o{}", next() % 10)]).order_by("[n] DESC").limit(100);
            assert_eq!(db.find_entities(TABLE, q).await.expect("find").len(), 100);
        })
    });
}

fn bench_sqlite(c: &mut Criterion) {
    let sqlite_raw::Fixture { rt, path, db, pool, dir: _dir } = sqlite_raw::fixture();
    let sync = open_raw(&path);
    let counter = AtomicU64::new(0);
    let next = || counter.fetch_add(1, Ordering::Relaxed) % ROWS;
    let text = SqlValue::Text;
    let now = || chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);

    let read_all = |stmt: &mut rusqlite::CachedStatement<'_>, params: &[&dyn rusqlite::ToSql]| {
        let n = stmt.column_count();
        let mut rows = stmt.query(params).expect("query");
        let mut out = Vec::new();
        while let Some(row) = rows.next().expect("row") {
            out.push((0..n).map(|i| row.get::<_, SqlValue>(i).expect("value")).collect::<Vec<_>>());
        }
        out
    };

    let mut g = c.benchmark_group("sqlite/get");
    kernel_get(&mut g, &rt, &db, &next);
    g.bench_function("raw", |b| {
        b.to_async(&rt).iter(|| async {
            let rows = pool.read(GET_SQL, vec![text(format!("item-{}", next())), SqlValue::Integer(1)]).await;
            rows.into_iter().next()
        })
    });
    g.bench_function("raw-sync", |b| {
        b.iter(|| {
            let mut stmt = sync.prepare_cached(GET_SQL).expect("prepare");
            read_all(&mut stmt, &[&format!("item-{}", next()), &1])
        })
    });
    g.finish();

    let mut g = c.benchmark_group("sqlite/save");
    kernel_save(&mut g, &rt, &db, &next);
    g.bench_function("raw", |b| {
        b.to_async(&rt).iter(|| async {
            let i = next();
            let now = now();
            let params = vec![
                text(format!("item-{i}")),
                text(format!("o{}", i % 10)),
                SqlValue::Integer(i as i64),
                text("renamed".into()),
                text(now.clone()),
                text(now),
            ];
            pool.write(SAVE_SQL, params).await.into_iter().next().expect("saved row")
        })
    });
    g.bench_function("raw-sync", |b| {
        b.iter(|| {
            let i = next();
            let now = now();
            let mut stmt = sync.prepare_cached(SAVE_SQL).expect("prepare");
            read_all(&mut stmt, &[&format!("item-{i}"), &format!("o{}", i % 10), &(i as i64), &"renamed", &now, &now])
        })
    });
    g.finish();

    let mut g = c.benchmark_group("sqlite/find100");
    kernel_find100(&mut g, &rt, &db, &next);
    g.bench_function("raw", |b| {
        b.to_async(&rt).iter(|| async {
            let rows = pool.read(FIND_SQL, vec![text(format!("o{}", next() % 10)), SqlValue::Integer(100)]).await;
            assert_eq!(rows.len(), 100);
        })
    });
    g.bench_function("raw-sync", |b| {
        b.iter(|| {
            let mut stmt = sync.prepare_cached(FIND_SQL).expect("prepare");
            let rows = read_all(&mut stmt, &[&format!("o{}", next() % 10), &100]);
            assert_eq!(rows.len(), 100);
        })
    });
    g.finish();
    rt.block_on(db.close());
}

/// An admin handle on `url` that has run `create` (a schema or database of the
/// bench's own), and a seeded handle on `scoped`, the URL that points into it.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn scoped_db(
    rt: &tokio::runtime::Runtime,
    kind: app_kernel::db::DatabaseKind,
    url: &str,
    create: &str,
    scoped: &str,
) -> (Db, Db) {
    let mut settings = app_kernel::db::DatabaseSettings::default();
    settings.kind = kind;
    settings.url = Some(url.to_owned().into());
    let admin = rt.block_on(Db::connect(&settings, "bench")).expect("connect");
    rt.block_on(admin.execute(create, &[])).expect(create);
    settings.url = Some(scoped.to_owned().into());
    let db = rt.block_on(Db::connect(&settings, "bench")).expect("connect scoped");
    rt.block_on(sqlite_raw::seed(&db));
    (admin, db)
}

/// The `raw` side of a select on an sqlx pool: `$sql` with two binds, each row made a
/// JSON object by `$item`; with `$rows`, the number of rows it must return.
#[cfg(any(feature = "postgres", feature = "mysql"))]
macro_rules! sqlx_select {
    ($g:expr, $rt:expr, $raw:expr, $item:expr, $sql:expr, $a:expr, $b:expr $(, rows = $rows:expr)?) => {
        $g.bench_function("raw", |b| {
            b.to_async($rt).iter(|| async {
                let rows = sqlx::query($sql).bind($a).bind($b).fetch_all(&$raw).await.expect("select");
                let rows = rows.iter().map($item).collect::<Vec<_>>();
                $(assert_eq!(rows.len(), $rows);)?
                rows
            })
        })
    };
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

#[cfg(feature = "mysql")]
#[path = "db_entity/mysql.rs"]
mod mysql;

fn bench_mysql(c: &mut Criterion) {
    #[cfg(feature = "mysql")]
    if let Ok(url) = std::env::var("KERNEL_TEST_MYSQL_URL") {
        mysql::bench(c, &runtime(), &url);
        return;
    }
    let _ = c;
    eprintln!("skipped: mysql benchmarks (KERNEL_TEST_MYSQL_URL unset or feature `mysql` off)");
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(40).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_sqlite, bench_postgres, bench_mysql
}
criterion_main!(benches);
