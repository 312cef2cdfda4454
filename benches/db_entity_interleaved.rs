//! The entity API against the hand-written SQLite baseline, measured interleaved.
//!
//! Run: `cargo bench --bench db_entity_interleaved`. Criterion (`--bench db_entity`)
//! measures the kernel and the raw function in windows seconds apart; each call is
//! mostly a `spawn_blocking` hand-off, and on a shared machine two windows can differ
//! by more than the code does. Here the two sides alternate in short rounds in one
//! process, on one runtime and one database file, and the medians of the rounds are
//! compared: for each of get, save and find100 it prints the median µs per call of
//! each side and the overhead kernel / raw - 1.

use std::time::Instant;

use app_kernel::db::{Db, Find};
use rusqlite::types::Value as SqlValue;
use serde_json::json;

#[path = "db_entity/sqlite_raw.rs"]
mod sqlite_raw;
use sqlite_raw::{fixture, Fixture, RawPool, FIND_SQL, GET_SQL, ROWS, SAVE_SQL, TABLE};

/// Rounds per operation; the first two of each side are warm-up and not counted.
const ROUNDS: usize = 18;

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

async fn kernel(db: &Db, op: &str, i: u64) {
    let id = format!("item-{}", i % ROWS);
    match op {
        "get" => assert!(db.get_entity(TABLE, &id).await.expect("get").is_some()),
        "save" => {
            let item = json!({"id": id, "owner": format!("o{}", i % 10), "n": i % ROWS, "name": "renamed"});
            db.save_entity(TABLE, item).await.expect("save");
        }
        _ => {
            let q = Find::new().filter("[owner] = ?", [format!("o{}", i % 10)]).order_by("[n] DESC").limit(100);
            assert_eq!(db.find_entities(TABLE, q).await.expect("find").len(), 100);
        }
    }
}

async fn raw(pool: &RawPool, op: &str, i: u64) {
    let text = SqlValue::Text;
    match op {
        "get" => assert_eq!(
            pool.read(GET_SQL, vec![text(format!("item-{}", i % ROWS)), SqlValue::Integer(1)]).await.len(),
            1
        ),
        "save" => {
            let (id, now) = (format!("item-{}", i % ROWS), now());
            let n = i64::try_from(i % ROWS).expect("small");
            let params = vec![
                text(id),
                text(format!("o{}", i % 10)),
                SqlValue::Integer(n),
                text("renamed".into()),
                text(now.clone()),
                text(now),
            ];
            assert_eq!(pool.write(SAVE_SQL, params).await.len(), 1);
        }
        _ => {
            let rows = pool.read(FIND_SQL, vec![text(format!("o{}", i % 10)), SqlValue::Integer(100)]).await;
            assert_eq!(rows.len(), 100);
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let Fixture { rt, db, pool, dir: _dir, .. } = fixture();
    println!("sqlite, {ROUNDS} alternating rounds per operation (2 of each side for warm-up), medians");
    for (op, calls) in [("get", 3000u64), ("save", 3000), ("find100", 300)] {
        let (mut k, mut r) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let t = Instant::now();
            rt.block_on(async {
                for i in 0..calls {
                    kernel(&db, op, i).await;
                }
            });
            let kernel_us = t.elapsed().as_secs_f64() * 1e6 / calls as f64;
            let t = Instant::now();
            rt.block_on(async {
                for i in 0..calls {
                    raw(&pool, op, i).await;
                }
            });
            let raw_us = t.elapsed().as_secs_f64() * 1e6 / calls as f64;
            if round >= 2 {
                k.push(kernel_us);
                r.push(raw_us);
            }
        }
        let (k, r) = (median(k), median(r));
        println!("{op:<8} kernel {k:8.2} µs   raw {r:8.2} µs   overhead {:+6.1} %", (k / r - 1.0) * 100.0);
    }
    rt.block_on(db.close());
}
