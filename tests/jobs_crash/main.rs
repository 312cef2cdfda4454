//! The worker kill loop, on every jobs engine: two real worker processes on one queue,
//! SIGKILLed and restarted again and again while they run jobs, then stopped with
//! SIGTERM. Every job completes, none is lost, and only jobs in flight at a kill (or
//! handed back at a SIGTERM) run twice. Each engine's test ends with a line
//!
//! `VERDICT scenario=worker_kill_loop engine=E result=PASS|FAIL jobs=N kills=K lost=0 duplicates=D recovery_ms=...`
//!
//! SQLite always; PostgreSQL, MariaDB and Redis each ignored when its
//! `KERNEL_TEST_POSTGRES_URL`, `KERNEL_TEST_MYSQL_URL`, `KERNEL_TEST_REDIS_URL` is unset
//! (each in its own schema, database or key prefix, dropped at the end). The test binary re-executes itself as
//! the worker (`crash_worker_child`). Run: `cargo test --all-features --test jobs_crash
//! -- --nocapture`.

#[path = "../common/mod.rs"]
mod common;
mod engine;
mod scenario;
mod workers;

use std::time::Duration;

use app_kernel::jobs::Worker;
use common::trials::{self, test, Engine, Server};
use libtest_mimic::Trial;
use scenario::{Plan, GRACE};

/// The worker process of the kill loop, which runs it with `--ignored`; on its own it
/// is reported as ignored, not as a pass.
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

const SHORT: Plan = Plan { jobs: 400, kills: 6, every: Duration::from_millis(700), term_jobs: 40 };

/// `worker_kill_loop_ENGINE` on SQLite and on each server (ignored when its URL is unset).
fn kill_loops() -> Vec<Trial> {
    let mut all = Vec::new();
    let engines = [
        ("sqlite", None),
        ("postgres", Some(Server::Postgres)),
        ("mysql", Some(Server::Mysql)),
        ("redis", Some(Server::Redis)),
    ];
    for (name, server) in engines {
        if server.is_some_and(|s| !s.built()) {
            continue;
        }
        let mut trial = test(format!("worker_kill_loop_{name}")).threads(2);
        if let Some(server) = server {
            trial = trial.needs(server);
        }
        all.push(trial.run(move |urls| async move {
            let on = server.map_or(Engine::Local, |s| Engine::server(s, urls.get(s)));
            scenario::worker_kill_loop(engine::Engine::open(on, GRACE).await, SHORT).await;
        }));
    }
    all
}

fn main() {
    let mut all = kill_loops();
    all.push(test("crash_worker_child").threads(2).opt_in().run(|_| crash_worker_child()));
    trials::run(all);
}
