//! The SQLite WAL under sustained writes: the kernel's checkpoint thread against
//! SQLite's own checkpoint in the commit, measured in the same run.
//!
//! Run: `cargo bench --bench sqlite_wal`
//!
//! Each side writes 2 KB rows back to back, never pausing, for [`ROUND_SECS`] per round;
//! the sides alternate for [`ROUNDS`] rounds, each on a new database file. Per round it
//! records the rows written per second, how often the WAL was started over (the
//! checkpoint sequence number in the WAL's header) and the largest WAL seen. It prints
//! the medians of each side and the kernel / SQLite ratios. What the kernel promises
//! (`src/db/sqlite_checkpoints.rs`): the WAL is started over under writes that never
//! pause (without the step that holds the writer, PASSIVE checkpoints never catch up
//! and it only grows), so it stays within a few MB; SQLite's own checkpoint bounds it
//! at ~4 MB by making one commit in a thousand pages wait for the disk.

use std::path::Path;
use std::time::{Duration, Instant};

use app_kernel::db::{DatabaseSettings, Db};
use serde_json::json;

/// Rounds per side.
const ROUNDS: usize = 5;
/// How long one side's round writes.
const ROUND_SECS: u64 = 2;
/// A row's body, in bytes.
const ROW: usize = 2000;

/// One round of one side: rows per second, WAL restarts per second, largest WAL in MB.
struct Round {
    rows_per_sec: f64,
    restarts_per_sec: f64,
    peak_wal_mb: f64,
}

/// How many times the WAL at `path` was started over (0 before it exists).
fn wal_restarts(wal: &Path) -> u32 {
    std::fs::read(wal).ok().filter(|h| h.len() >= 16).map_or(0, |h| u32::from_be_bytes(h[12..16].try_into().unwrap()))
}

fn wal_mb(wal: &Path) -> f64 {
    std::fs::metadata(wal).map_or(0.0, |m| m.len() as f64 / 1e6)
}

/// Writes for a round through `write`, sampling the WAL every 50 rows.
fn round(wal: &Path, mut write: impl FnMut()) -> Round {
    let (started, mut rows, mut peak) = (Instant::now(), 0_u64, 0.0_f64);
    let before = wal_restarts(wal);
    while started.elapsed() < Duration::from_secs(ROUND_SECS) {
        write();
        rows += 1;
        if rows % 50 == 0 {
            peak = peak.max(wal_mb(wal));
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let restarts = f64::from(wal_restarts(wal).saturating_sub(before));
    Round { rows_per_sec: rows as f64 / secs, restarts_per_sec: restarts / secs, peak_wal_mb: peak.max(wal_mb(wal)) }
}

fn kernel_round(rt: &tokio::runtime::Runtime, dir: &Path) -> Round {
    let path = dir.join("kernel.db");
    let db = rt.block_on(Db::connect(&DatabaseSettings::sqlite(path.display().to_string()), "bench")).unwrap();
    rt.block_on(db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)", &[])).unwrap();
    let body = json!("x".repeat(ROW));
    let r = round(&dir.join("kernel.db-wal"), || {
        rt.block_on(db.execute("INSERT INTO t (body) VALUES (?)", std::slice::from_ref(&body))).unwrap();
    });
    rt.block_on(db.close());
    r
}

fn sqlite_round(dir: &Path) -> Round {
    let path = dir.join("sqlite.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    // The kernel's pragmas but for the checkpoint: SQLite's default, in the commit past 1000 pages.
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON").unwrap();
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)").unwrap();
    let body = "x".repeat(ROW);
    let mut insert = conn.prepare("INSERT INTO t (body) VALUES (?1)").unwrap();
    round(&dir.join("sqlite.db-wal"), || {
        insert.execute([&body]).unwrap();
    })
}

/// One figure of a round.
type Stat = fn(&Round) -> f64;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (mut kernel, mut sqlite) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        kernel.push(kernel_round(&rt, tempfile::tempdir().unwrap().path()));
        sqlite.push(sqlite_round(tempfile::tempdir().unwrap().path()));
    }
    let stat = |rounds: &[Round], f: Stat| median(rounds.iter().map(f).collect());
    println!("sustained 2 KB writes, {ROUNDS} rounds of {ROUND_SECS} s per side, medians:");
    println!("{:>28} {:>12} {:>12} {:>8}", "", "kernel", "sqlite", "ratio");
    let rows: [(&str, Stat); 3] = [
        ("rows/s", |r| r.rows_per_sec),
        ("WAL restarts/s", |r| r.restarts_per_sec),
        ("largest WAL (MB)", |r| r.peak_wal_mb),
    ];
    for (name, f) in rows {
        let (k, s) = (stat(&kernel, f), stat(&sqlite, f));
        println!("{name:>28} {k:>12.1} {s:>12.1} {:>8.2}", k / s);
    }
    let restarted = kernel.iter().filter(|r| r.restarts_per_sec > 0.0).count();
    println!("kernel rounds in which the WAL was started over: {restarted}/{ROUNDS}");
}
