//! The entity API against the hand-written baselines, measured interleaved.
//!
//! Run: `cargo bench --bench db_entity_interleaved` (SQLite), and with
//! `KERNEL_TEST_POSTGRES_URL=... KERNEL_TEST_MYSQL_URL=... cargo bench --all-features --bench
//! db_entity_interleaved` for PostgreSQL and MySQL/MariaDB too. Criterion (`--bench
//! db_entity`) measures the kernel and the baseline in windows seconds apart; each call
//! is mostly a thread hand-off or a round trip, and on a shared machine two windows
//! can differ by more than the code does. Here the two sides alternate in short rounds
//! in one process, on one runtime and the same data, and the medians of the rounds are
//! compared: for each engine and each of get, save and find100 it prints the median µs
//! per call of each side and the overhead kernel / raw - 1.

use std::time::Instant;

#[path = "db_entity/mod.rs"]
mod shared;

use shared::{engines, sqlite_raw};

use engines::{kernel, Engine, Op};

/// Rounds per side and operation; the first two of each side are warm-up and not counted.
const ROUNDS: usize = 18;
/// About how long one side's round lasts.
const ROUND_SECS: f64 = 0.1;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// µs per call of `calls` calls of one side.
fn timed<F: std::future::Future<Output = ()>>(
    rt: &tokio::runtime::Runtime,
    calls: u64,
    call: impl Fn(u64) -> F,
) -> f64 {
    let t = Instant::now();
    rt.block_on(async {
        for i in 0..calls {
            call(i).await;
        }
    });
    t.elapsed().as_secs_f64() * 1e6 / calls as f64
}

fn measure(rt: &tokio::runtime::Runtime, engine: &Engine) {
    for op in Op::ALL {
        // Calls per round: enough for about ROUND_SECS, from a first timing of the kernel.
        let probe = timed(rt, 20, |i| kernel(&engine.db, op, i));
        let calls = ((ROUND_SECS * 1e6 / probe) as u64).clamp(20, 5000);
        let (mut k, mut r) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let kernel_us = timed(rt, calls, |i| kernel(&engine.db, op, i));
            let raw_us = timed(rt, calls, |i| engine.raw.run(op, i));
            if round >= 2 {
                k.push(kernel_us);
                r.push(raw_us);
            }
        }
        let (k, r) = (median(k), median(r));
        println!(
            "{:<9}{:<8} kernel {k:9.2} µs   raw {r:9.2} µs   overhead {:+6.1} %   ({calls} calls per round)",
            engine.name,
            op.name(),
            (k / r - 1.0) * 100.0
        );
    }
}

fn main() {
    let fixture = sqlite_raw::fixture();
    let rt = &fixture.rt;
    println!("{ROUNDS} alternating rounds per side and operation (2 of each side for warm-up), medians");
    let sqlite = engines::sqlite_engine(&fixture);
    measure(rt, &sqlite);
    sqlite.close(rt);
    for engine in engines::server_engines(rt) {
        measure(rt, &engine);
        engine.close(rt);
    }
}
