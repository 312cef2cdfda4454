//! The worker kill loop, on every jobs engine: two real worker processes on one queue,
//! SIGKILLed and restarted again and again while they run jobs, then stopped with
//! SIGTERM. Every job completes, none is lost, and only jobs in flight at a kill (or
//! handed back at a SIGTERM) run twice. Each engine's test ends with a line
//!
//! `VERDICT scenario=worker_kill_loop engine=E result=PASS|FAIL jobs=N kills=K lost=0 duplicates=D recovery_ms=...`
//!
//! SQLite always; PostgreSQL, MariaDB and Redis when `KERNEL_TEST_POSTGRES_URL`,
//! `KERNEL_TEST_MYSQL_URL`, `KERNEL_TEST_REDIS_URL` are set (each in its own schema,
//! database or key prefix, dropped at the end). The test binary re-executes itself as
//! the worker (`crash_worker_child`). Run: `cargo test --all-features --test jobs_crash
//! -- --nocapture`.

#[path = "../common/mod.rs"]
mod common;
mod engine;
mod scenario;
mod workers;

use std::time::Duration;

use app_kernel::jobs::Worker;
use scenario::{Plan, GRACE};

/// The worker process of the kill loop, which runs it with `--ignored`; on its own it
/// is reported as ignored, not as a pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the worker process that the worker_kill_loop tests start and kill"]
async fn crash_worker_child() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    let target = engine::Target::from_env();
    let (db, client) = target.open().await;
    let ready = std::env::var(workers::READY_DIR).expect("started by the kill loop");
    std::fs::write(std::path::Path::new(&ready).join(std::process::id().to_string()), b"").expect("ready marker");
    Worker::new(client, db)
        .run_until_stopped(async move {
            term.recv().await;
        })
        .await;
}

async fn run(name: &'static str, plan: Plan) {
    if let Some(engine) = engine::Engine::open(name, GRACE).await {
        scenario::worker_kill_loop(engine, plan).await;
    }
}

const SHORT: Plan = Plan { jobs: 400, kills: 6, every: Duration::from_millis(700), term_jobs: 40 };

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_kill_loop_sqlite() {
    run("sqlite", SHORT).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_kill_loop_postgres() {
    run("postgres", SHORT).await;
}

#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_kill_loop_mysql() {
    run("mysql", SHORT).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_kill_loop_redis() {
    run("redis", SHORT).await;
}
