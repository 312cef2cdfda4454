//! Fault scenarios over HTTP, against real example processes: two `widget_service`
//! instances on one PostgreSQL database, a load generator of several clients (lists,
//! and creates with an `Idempotency-Key`, some repeated on the other instance), and a
//! fault in the middle; `order_service`'s API and two workers run jobs alongside, and
//! every order accepted must be processed once. Each scenario is bounded in time, kills what it started when
//! it fails, and ends with one line on stdout that it also asserts:
//!
//! `VERDICT scenario=NAME result=PASS|FAIL sent=N failed=N ... recovery_ms=N`
//!
//! See RELIABILITY.md for the command of each and the last measured figures. The
//! examples must be built and current (`cargo test` builds them; after a change,
//! `cargo build --all-features --examples` before `--test faults_http`).
#![cfg(all(feature = "postgres", feature = "redis"))]

mod common;

mod faults_http {
    mod fleet;
    mod load;
    mod orders;
    pub(crate) mod postgres;
    pub(crate) mod redis;
    pub(crate) mod sigterm;
    pub(crate) mod soak;
    mod verdict;
}

/// One scenario at a time: each measures latencies on a shared 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drains_without_a_failed_request() {
    let _one = SERIAL.lock().await;
    faults_http::sigterm::run().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_under_load_fails_open_fast_and_shares_again() {
    let _one = SERIAL.lock().await;
    faults_http::redis::run().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_answers_fast_503s_and_serves_again() {
    let _one = SERIAL.lock().await;
    faults_http::postgres::run().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a soak: 10 minutes by default (KERNEL_TEST_SOAK_SECONDS); run with --ignored soak"]
async fn soak_at_half_capacity_stays_flat() {
    let _one = SERIAL.lock().await;
    faults_http::soak::run().await;
}
