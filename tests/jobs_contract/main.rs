//! The job queue contract: one suite, run on every engine.
//!
//! SQLite always (`NAME`); PostgreSQL, MariaDB and Redis as `SERVER::NAME`, each
//! ignored when its `KERNEL_TEST_*_URL` is unset. Each test gets its own
//! SQLite file, PostgreSQL schema, MariaDB database (`latin1` by default) or Redis key
//! prefix. Nothing
//! sleeps to wait for a job: the worker is stepped with `run_once`.

mod admin;
#[path = "../common/mod.rs"]
mod common;
mod depth;
mod lifecycle;
mod trace;
mod transaction;
mod workers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use app_kernel::jobs::{
    now_ms, EnqueueOptions, JobClient, JobContext, JobError, JobRegistry, JobSettings, JobStatus, Priority, TaskError,
    Worker,
};
use app_kernel::ApiError;
use common::db::TestDb;
use common::trials;
use serde_json::{json, Value};

/// One engine under test: where jobs go, and a database for task contexts.
struct Engine {
    name: &'static str,
    db: TestDb,
    /// The Redis engine's server and key prefix (its keys are deleted when it is dropped).
    redis: Option<common::RedisKeys>,
}

impl Engine {
    async fn client(&self, registry: JobRegistry, settings: JobSettings) -> JobClient {
        match &self.redis {
            #[cfg(feature = "redis")]
            Some(keys) => JobClient::redis(&keys.url, &keys.prefix, registry, settings).await.expect("redis queue"),
            #[cfg(not(feature = "redis"))]
            Some(_) => unreachable!(),
            None => JobClient::sql(self.db.db.clone(), registry, settings).await.expect("sql queue"),
        }
    }

    async fn worker(&self, registry: JobRegistry, settings: JobSettings) -> (JobClient, Worker) {
        let client = self.client(registry, settings).await;
        let worker = Worker::new(client.clone(), self.db.db.clone());
        (client, worker)
    }
}

/// The engine of `on`: SQLite in process, or a server (Redis keeps task contexts'
/// data in SQLite).
async fn engine(on: trials::Engine) -> Engine {
    match &on {
        trials::Engine::Local => Engine { name: "sqlite", db: TestDb::sqlite().await, redis: None },
        trials::Engine::Postgres(_) => Engine { name: "postgres", db: TestDb::new(&on).await, redis: None },
        // A database whose default character set cannot hold every payload: the kernel's
        // table must not depend on the server's defaults.
        trials::Engine::Mysql(_) => {
            Engine { name: "mysql", db: TestDb::with_charset(&on, "latin1").await, redis: None }
        }
        trials::Engine::Redis(url) => {
            Engine { name: "redis", db: TestDb::sqlite().await, redis: Some(common::RedisKeys::new(url, "jobs")) }
        }
    }
}

fn quick() -> JobSettings {
    let mut s = JobSettings::default();
    s.backoff_base = Duration::ZERO;
    s.worker_count = 8;
    s
}

async fn echo(payload: Value, ctx: JobContext) -> Result<Value, TaskError> {
    Ok(json!({"echo": payload, "attempt": ctx.attempt, "user": ctx.user_id}))
}

async fn boom(_: Value, _: JobContext) -> Result<Value, TaskError> {
    Err(TaskError::new("boom"))
}

async fn slow(_: Value, _: JobContext) -> Result<Value, TaskError> {
    tokio::time::sleep(Duration::from_secs(30)).await;
    Ok(Value::Null)
}

fn registry() -> JobRegistry {
    JobRegistry::new().task("echo", echo).task("boom", boom).task("slow", slow)
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        /// Each test on SQLite as `NAME`, and on each server as `SERVER::NAME`.
        fn main() {
            let servers = [trials::Server::Postgres, trials::Server::Mysql, trials::Server::Redis];
            let mut all = Vec::new();
            $(all.extend(trials::test(stringify!($name)).threads(4).on_each(&servers, |on| async move {
                let engine = engine(on).await;
                suite::$name(&engine).await;
                engine.db.finish().await;
            }));)*
            trials::run(all);
        }
    };
}

contract!(
    enqueue_claim_complete,
    priority_order,
    delayed_jobs_wait,
    retry_with_backoff,
    dead_after_max_attempts,
    timeout_is_a_failure,
    unknown_task_is_refused,
    unique_key_dedupes_unfinished_jobs,
    stale_ack_is_refused,
    expired_lease_is_claimable_again,
    concurrent_workers_run_each_job_once,
    release_hands_back_without_counting,
    prune_removes_finished_jobs,
    batched_enqueue_and_acks,
    running_worker_drains_a_batch,
    stopped_workers_hand_back_what_they_claimed_ahead,
    idle_worker_wakes_on_enqueue,
    trace_context_is_stored_and_continued,
    an_old_jobs_table_is_upgraded_in_place,
    admin_list_filters_and_pages,
    admin_retry_and_cancel,
    admin_changes_never_touch_a_claimed_job,
    admin_sparse_filter_reaches_old_jobs,
    queue_depth_counts_unfinished_jobs,
    enqueue_in_follows_its_transaction,
);

mod suite {
    pub(crate) use super::admin::*;
    pub(crate) use super::depth::*;
    pub(crate) use super::lifecycle::*;
    pub(crate) use super::trace::*;
    pub(crate) use super::transaction::*;
    pub(crate) use super::workers::*;
}
