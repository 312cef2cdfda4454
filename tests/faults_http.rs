//! Fault scenarios over HTTP, against real example processes: two `widget_service`
//! instances on one PostgreSQL database, a load generator of several clients (lists,
//! and creates with an `Idempotency-Key`, some repeated on the other instance), and a
//! fault in the middle; `order_service`'s API and two workers run jobs alongside, and
//! every order accepted must be processed once. Each scenario is bounded in time, kills
//! what it started when it fails, and ends with one line on stdout that it also asserts:
//!
//! `VERDICT scenario=NAME result=PASS|FAIL sent=N failed=N ... recovery_ms=N`
//!
//! See RELIABILITY.md for the command of each and the last measured figures. The
//! examples must be built and current (`cargo test` builds them; after a change,
//! `cargo build --all-features --examples` before `--test faults_http`). Built with
//! the `postgres` and `redis` features (`required-features` in Cargo.toml).

mod common;

use common::trials::{self, test, Program, Server};

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

async fn one_at_a_time(scenario: impl std::future::Future<Output = ()>) {
    let _one = SERIAL.lock().await;
    scenario.await;
}

/// Each scenario on two runtime threads; ignored when the shared PostgreSQL server's
/// URL is unset or a server program it starts of its own is missing.
fn main() {
    let scenario = |name: &str| test(name).threads(2);
    trials::run(vec![
        scenario("sigterm_under_load_drains_without_a_failed_request")
            .needs(Server::Postgres)
            .run(|_| one_at_a_time(faults_http::sigterm::run())),
        scenario("redis_killed_and_restarted_under_load_fails_open_fast_and_shares_again")
            .needs(Server::Postgres)
            .needs_program(Program::RedisServer)
            .run(|_| one_at_a_time(faults_http::redis::run())),
        scenario("postgres_restarted_under_load_answers_fast_503s_and_serves_again")
            .needs_program(Program::PostgresServer)
            .run(|_| one_at_a_time(faults_http::postgres::run())),
        // A soak: 10 minutes by default (KERNEL_TEST_SOAK_SECONDS); run with --ignored soak.
        scenario("soak_at_half_capacity_stays_flat")
            .needs_program(Program::PostgresServer)
            .opt_in()
            .run(|_| one_at_a_time(faults_http::soak::run())),
    ]);
}
