//! The SQLite side shared by the entity benchmarks: the table, its seed, and the
//! hand-written baseline (`RawPool`) the kernel is compared with.

// Compiled into two benches, each of which uses part of it.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use app_kernel::db::Db;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::Connection;
use serde_json::{json, Map, Value};

pub(crate) const ROWS: u64 = 1000;
pub(crate) const TABLE: &str = "bench_items";
pub(crate) const READERS: usize = 4;

pub(crate) const GET_SQL: &str = r#"SELECT * FROM "bench_items" WHERE ("id" = ?) LIMIT ?"#;
pub(crate) const SAVE_SQL: &str = r#"INSERT INTO "bench_items" ("id", "owner", "n", "name", "created_at", "updated_at") VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT ("id") DO UPDATE SET "owner" = excluded."owner", "n" = excluded."n", "name" = excluded."name", "updated_at" = excluded."updated_at" RETURNING *"#;
pub(crate) const FIND_SQL: &str = r#"SELECT * FROM "bench_items" WHERE ("owner" = ?) ORDER BY "n" DESC LIMIT ?"#;

pub(crate) async fn seed(db: &Db) {
    let items = (0..ROWS).map(
        |i| json!({"id": format!("item-{i}"), "owner": format!("o{}", i % 10), "n": i, "name": format!("item {i}")}),
    );
    db.save_many(TABLE, items).await.expect("seed");
}

/// A seeded SQLite file, the kernel's handle on it and the baseline pool.
pub(crate) struct Fixture {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) path: std::path::PathBuf,
    pub(crate) db: Db,
    pub(crate) pool: RawPool,
    /// Keep it bound for as long as the database is used: dropping it deletes the file.
    pub(crate) dir: tempfile::TempDir,
}

/// The SQLite fixture both entity benchmarks start from.
pub(crate) fn fixture() -> Fixture {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.db");
    let settings = app_kernel::db::DatabaseSettings::sqlite(path.to_string_lossy());
    let db = rt.block_on(Db::connect(&settings, "bench")).expect("open");
    rt.block_on(seed(&db));
    let pool = RawPool::open(&path);
    Fixture { rt, path, db, pool, dir }
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

pub(crate) fn open_raw(path: &std::path::Path) -> Connection {
    let conn = Connection::open(path).expect("raw open");
    conn.pragma_update(None, "journal_mode", "WAL").expect("wal");
    conn.pragma_update(None, "synchronous", "NORMAL").expect("sync");
    conn.busy_timeout(Duration::from_secs(10)).expect("busy");
    conn
}

/// The hand-written service's pool: one writer, readers opened up front.
#[derive(Clone)]
pub(crate) struct RawPool {
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Mutex<Vec<Connection>>>,
}

impl RawPool {
    pub(crate) fn open(path: &std::path::Path) -> Self {
        let readers = (0..READERS).map(|_| open_raw(path)).collect();
        Self { writer: Arc::new(Mutex::new(open_raw(path))), readers: Arc::new(Mutex::new(readers)) }
    }

    pub(crate) async fn read(&self, sql: &'static str, params: Vec<SqlValue>) -> Vec<Map<String, Value>> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = readers.lock().expect("readers").pop().expect("an idle reader");
            let rows = json_rows(&conn, sql, &params);
            readers.lock().expect("readers").push(conn);
            rows
        })
        .await
        .expect("join")
    }

    pub(crate) async fn write(&self, sql: &'static str, params: Vec<SqlValue>) -> Vec<Map<String, Value>> {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || json_rows(&writer.lock().expect("writer"), sql, &params))
            .await
            .expect("join")
    }
}

fn json_rows(conn: &Connection, sql: &str, params: &[SqlValue]) -> Vec<Map<String, Value>> {
    let mut stmt = conn.prepare_cached(sql).expect("prepare");
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter())).expect("query");
    let mut out = Vec::new();
    while let Some(row) = rows.next().expect("row") {
        let mut map = Map::new();
        for (i, name) in names.iter().enumerate() {
            let v = match row.get_ref(i).expect("value") {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(n) => Value::from(n),
                ValueRef::Real(f) => Value::from(f),
                ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::from(b),
            };
            map.insert(name.clone(), v);
        }
        out.push(map);
    }
    out
}
