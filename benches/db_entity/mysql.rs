//! The MySQL/MariaDB half of the entity benchmark: the kernel against plain sqlx.
//!
//! MySQL has no `RETURNING`: a save is the upsert then a read of the row by id, for
//! the kernel and for the raw baseline alike.

use std::sync::atomic::{AtomicU64, Ordering};

use app_kernel::db::DatabaseKind;
use criterion::Criterion;
use serde_json::json;
use sqlx::Row as _;

use super::{kernel_find100, kernel_get, kernel_save, scoped_db, ROWS};

/// A row as a hand-written service answers it: a JSON object (as the SQLite baseline does).
fn item(row: &sqlx::mysql::MySqlRow) -> serde_json::Value {
    let text = |c: &str| row.try_get::<String, _>(c).expect("text");
    json!({"id": text("id"), "owner": text("owner"), "n": row.try_get::<i64, _>("n").expect("n"), "name": text("name"),
        "created_at": text("created_at"), "updated_at": text("updated_at")})
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, rest) = url.rsplit_once('/').expect("a mysql:// url with a database");
    let query = rest.find('?').map_or("", |i| &rest[i..]);
    format!("{base}/{database}{query}")
}

pub(super) fn bench(c: &mut Criterion, rt: &tokio::runtime::Runtime, url: &str) {
    let database = format!("bench_{}", std::process::id());
    let scoped = with_database(url, &database);
    let (admin, db) = scoped_db(rt, DatabaseKind::Mysql, url, &format!("CREATE DATABASE {database}"), &scoped);
    let raw = rt.block_on(sqlx::mysql::MySqlPoolOptions::new().max_connections(8).connect(&scoped)).expect("raw pool");
    let counter = AtomicU64::new(0);
    let next = || counter.fetch_add(1, Ordering::Relaxed) % ROWS;

    let mut g = c.benchmark_group("mysql/get");
    kernel_get(&mut g, rt, &db, &next);
    sqlx_select!(
        g,
        rt,
        raw,
        item,
        "SELECT * FROM `bench_items` WHERE (`id` = ?) LIMIT ?",
        format!("item-{}", next()),
        1_i64
    );
    g.finish();

    let mut g = c.benchmark_group("mysql/save");
    kernel_save(&mut g, rt, &db, &next);
    g.bench_function("raw", |b| {
        b.to_async(rt).iter(|| async {
            let i = next();
            let id = format!("item-{i}");
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            sqlx::query(
                "INSERT INTO `bench_items` (`id`, `owner`, `n`, `name`, `created_at`, `updated_at`) VALUES (?, ?, ?, ?, ?, ?) \
                 ON DUPLICATE KEY UPDATE `owner` = VALUES(`owner`), `n` = VALUES(`n`), `name` = VALUES(`name`), \
                 `updated_at` = VALUES(`updated_at`)",
            )
            .bind(&id)
            .bind(format!("o{}", i % 10))
            .bind(i as i64)
            .bind("renamed")
            .bind(&now)
            .bind(&now)
            .execute(&raw)
            .await
            .expect("save");
            let rows =
                sqlx::query("SELECT * FROM `bench_items` WHERE `id` = ?").bind(&id).fetch_all(&raw).await.expect("read");
            rows.iter().map(item).collect::<Vec<_>>()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("mysql/find100");
    kernel_find100(&mut g, rt, &db, &next);
    sqlx_select!(
        g,
        rt,
        raw,
        item,
        "SELECT * FROM `bench_items` WHERE (`owner` = ?) ORDER BY `n` DESC LIMIT ?",
        format!("o{}", next() % 10),
        100_i64,
        rows = 100
    );
    g.finish();

    rt.block_on(db.close());
    rt.block_on(raw.close());
    rt.block_on(admin.execute(&format!("DROP DATABASE {database}"), &[])).expect("drop database");
}
