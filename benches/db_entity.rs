//! The entity API against the same statements written directly with the driver.
//!
//! Run: `cargo bench --bench db_entity` (SQLite), and with
//! `KERNEL_TEST_POSTGRES_URL=... KERNEL_TEST_MYSQL_URL=... cargo bench --all-features --bench
//! db_entity` for PostgreSQL and MySQL/MariaDB too. Groups `sqlite/{get,save,find100}`,
//! `postgres/...` and `mysql/...` each hold a `kernel` and a `raw` function; the overhead is
//! kernel / raw - 1 on the medians. The engines, operations and baselines are those of
//! `db_entity/engines.rs`, shared with `db_entity_interleaved`.
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

use criterion::{criterion_group, criterion_main, Criterion};

#[path = "db_entity/mod.rs"]
mod shared;

use shared::{engines, sqlite_raw};

use engines::{kernel, Engine, Op};
use sqlite_raw::{open_raw, FIND_SQL, GET_SQL, ROWS, SAVE_SQL};

fn bench_engine(c: &mut Criterion, rt: &tokio::runtime::Runtime, engine: &Engine, sync: Option<&rusqlite::Connection>) {
    let counter = AtomicU64::new(0);
    let next = || counter.fetch_add(1, Ordering::Relaxed);
    for op in Op::ALL {
        let mut g = c.benchmark_group(format!("{}/{}", engine.name, op.name()));
        g.bench_function("kernel", |b| b.to_async(rt).iter(|| kernel(&engine.db, op, next())));
        g.bench_function("raw", |b| b.to_async(rt).iter(|| engine.raw.run(op, next())));
        if let Some(conn) = sync {
            g.bench_function("raw-sync", |b| b.iter(|| sqlite_sync(conn, op, next() % ROWS)));
        }
        g.finish();
    }
}

/// The SQLite statements run synchronously on the bench thread, rows left as rusqlite values.
fn sqlite_sync(conn: &rusqlite::Connection, op: Op, i: u64) -> usize {
    let n = i64::try_from(i).expect("small");
    let (sql, params): (&str, Vec<Box<dyn rusqlite::ToSql>>) = match op {
        Op::Get => (GET_SQL, vec![Box::new(format!("item-{i}")), Box::new(1)]),
        Op::Save => {
            let now = engines::now();
            let values: [Box<dyn rusqlite::ToSql>; 6] = [
                Box::new(format!("item-{i}")),
                Box::new(format!("o{}", i % 10)),
                Box::new(n),
                Box::new("renamed"),
                Box::new(now.clone()),
                Box::new(now),
            ];
            (SAVE_SQL, values.into())
        }
        Op::Find100 => (FIND_SQL, vec![Box::new(format!("o{}", i % 10)), Box::new(100)]),
    };
    let mut stmt = conn.prepare_cached(sql).expect("prepare");
    let columns = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter())).expect("query");
    let mut out = Vec::new();
    while let Some(row) = rows.next().expect("row") {
        let values = (0..columns).map(|c| row.get::<_, rusqlite::types::Value>(c).expect("value"));
        out.push(values.collect::<Vec<_>>());
    }
    out.len()
}

fn bench_all(c: &mut Criterion) {
    let fixture = sqlite_raw::fixture();
    let sync = open_raw(&fixture.path);
    let sqlite = engines::sqlite_engine(&fixture);
    bench_engine(c, &fixture.rt, &sqlite, Some(&sync));
    sqlite.close(&fixture.rt);
    for engine in engines::server_engines(&fixture.rt) {
        bench_engine(c, &fixture.rt, &engine, None);
        engine.close(&fixture.rt);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(40).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_all
}
criterion_main!(benches);
