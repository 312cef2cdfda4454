//! The job queue contract: one suite, run on every engine.
//!
//! SQLite always; PostgreSQL, MariaDB and Redis when `KERNEL_TEST_POSTGRES_URL`,
//! `KERNEL_TEST_MYSQL_URL`, `KERNEL_TEST_REDIS_URL` are set. Each test gets its own
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

use app_kernel::db::DatabaseKind;
use app_kernel::jobs::{
    now_ms, EnqueueOptions, JobClient, JobContext, JobError, JobRegistry, JobSettings, JobStatus, Priority, TaskError,
    Worker,
};
use app_kernel::ApiError;
use common::db::TestDb;
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

async fn engines(test: &str) -> Vec<Engine> {
    let mut out = Vec::new();
    let sqlite = TestDb::new(DatabaseKind::Sqlite, test).await.expect("sqlite");
    out.push(Engine { name: "sqlite", db: sqlite, redis: None });
    #[cfg(feature = "postgres")]
    if let Some(db) = TestDb::new(DatabaseKind::Postgres, test).await {
        out.push(Engine { name: "postgres", db, redis: None });
    }
    // A database whose default character set cannot hold every payload: the kernel's
    // table must not depend on the server's defaults.
    #[cfg(feature = "mysql")]
    if let Some(db) = TestDb::with_charset(DatabaseKind::Mysql, test, "latin1").await {
        out.push(Engine { name: "mysql", db, redis: None });
    }
    #[cfg(feature = "redis")]
    if let Some(url) = common::service_url("KERNEL_TEST_REDIS_URL", test) {
        let db = TestDb::new(DatabaseKind::Sqlite, test).await.expect("sqlite");
        out.push(Engine { name: "redis", db, redis: Some(common::RedisKeys::new(&url, "jobs")) });
    }
    out
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
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            for engine in engines(stringify!($name)).await {
                eprintln!("{}: {}", stringify!($name), engine.name);
                suite::$name(&engine).await;
                engine.db.finish().await;
            }
        }
    )*};
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
