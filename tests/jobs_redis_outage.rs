//! The Redis job queue with Redis down: an enqueue fails fast with 503
//! `jobs_unavailable` (never a hang, never a 500), a worker's claim fails fast, and
//! both work again once Redis is back on the same port, without a restart; a Redis that
//! stops answering (SIGSTOP) costs the same bounded wait. A job that finishes while
//! Redis is down is acked once it is back: done, run once, without waiting for its
//! lease. The test's own `redis-server` is killed and stopped, never the machine's
//! shared one (ignored without `redis-server` on `PATH`).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use app_kernel::jobs::{EnqueueOptions, JobClient, JobContext, JobRegistry, JobSettings, JobStatus, TaskError, Worker};
use app_kernel::ApiError;
use common::db::TestDb;
use common::own_server::OwnRedis;
use common::trials::{self, test, Program};
use serde_json::{json, Value};

/// What a request that enqueues may wait with Redis down: the queue's one-second
/// answer limit, and slack for a busy machine.
const BOUND: Duration = Duration::from_millis(1_500);

async fn work(_: Value, _: JobContext) -> Result<Value, TaskError> {
    Ok(Value::Null)
}

async fn a_dead_redis_fails_enqueue_and_claim_fast_then_the_queue_works_again() {
    let mut redis = OwnRedis::launch();
    let db = TestDb::sqlite().await;
    let registry = JobRegistry::new().task("work", work);
    let client = JobClient::redis(&redis.url(), "outage:", registry, JobSettings::default()).await.expect("queue");
    let worker = Worker::new(client.clone(), db.db.clone());
    client.enqueue("work", json!({}), EnqueueOptions::new()).await.expect("enqueue with Redis up");

    redis.kill();
    for n in 1..=3 {
        let began = Instant::now();
        let err = client.enqueue("work", json!({}), EnqueueOptions::new()).await.expect_err("Redis is down");
        let took = began.elapsed();
        assert!(took <= BOUND, "enqueue {n} with Redis down took {took:?}");
        let api = ApiError::from(err);
        assert_eq!(api.status().as_u16(), 503, "enqueue {n}: {api:?}");
        assert_eq!(api.code(), "jobs_unavailable");
    }
    let began = Instant::now();
    assert!(worker.run_once().await.is_err(), "a claim with Redis down fails");
    assert!(began.elapsed() <= BOUND, "a claim with Redis down took {:?}", began.elapsed());

    redis.spawn().expect("restart redis-server");
    let deadline = Instant::now() + Duration::from_secs(5);
    let job = loop {
        match client.enqueue("work", json!({}), EnqueueOptions::new()).await {
            Ok(job) => break job,
            Err(e) => assert!(Instant::now() < deadline, "enqueue still failing 5 s after the restart: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let report = worker.run_once().await.expect("claim after the restart");
    assert_eq!(report.completed, vec![job.job_id], "the queue runs jobs again");

    // A Redis that holds the connection but answers nothing: the answer limit, not a
    // refused connection, ends the wait.
    redis.signal("STOP");
    let began = Instant::now();
    let err = client.enqueue("work", json!({}), EnqueueOptions::new()).await.expect_err("Redis answers nothing");
    let took = began.elapsed();
    redis.signal("CONT");
    assert!(took <= BOUND, "enqueue to a stopped Redis took {took:?}");
    assert_eq!(ApiError::from(err).code(), "jobs_unavailable");
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Err(e) = client.enqueue("work", json!({}), EnqueueOptions::new()).await {
        assert!(Instant::now() < deadline, "enqueue still failing 5 s after SIGCONT: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    db.finish().await;
}

/// Runs of `slow`, and a signal that one began.
static SLOW_RUNS: AtomicUsize = AtomicUsize::new(0);
static SLOW_STARTED: tokio::sync::Notify = tokio::sync::Notify::const_new();

async fn slow(_: Value, _: JobContext) -> Result<Value, TaskError> {
    SLOW_RUNS.fetch_add(1, Ordering::SeqCst);
    SLOW_STARTED.notify_one();
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(Value::Null)
}

async fn a_job_that_ends_while_redis_is_down_is_acked_once_it_is_back() {
    // Kept in an append-only file, as a deployment with jobs on Redis runs it: the
    // running job's record survives the kill.
    let mut redis = OwnRedis::launch_persistent();
    let db = TestDb::sqlite().await;
    let registry = JobRegistry::new().task("slow", slow);
    let client = JobClient::redis(&redis.url(), "ack:", registry, JobSettings::default()).await.expect("queue");
    let job = client.enqueue("slow", json!({}), EnqueueOptions::new()).await.expect("enqueue with Redis up");
    let worker = Worker::new(client.clone(), db.db.clone());
    let run = tokio::spawn(async move { worker.run_once().await });
    tokio::time::timeout(Duration::from_secs(10), SLOW_STARTED.notified()).await.expect("the job started");

    redis.kill(); // while the job runs: it ends, and its ack meets a dead Redis
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.spawn().expect("restart redis-server");
    // The lease is 30 s: an ack given up at the outage would leave the job `running` until then.
    let report = tokio::time::timeout(Duration::from_secs(15), run).await.expect("run_once ended").unwrap();
    let report = report.expect("the claim (before the outage)");
    assert_eq!(
        (report.completed, report.lost),
        (vec![job.job_id.clone()], vec![]),
        "the ack was written after the restart"
    );
    let stored = client.status(&job.job_id).await.expect("status").expect("the job");
    assert_eq!(stored.status, JobStatus::Done);
    assert_eq!(SLOW_RUNS.load(Ordering::SeqCst), 1);
    db.finish().await;
}

fn main() {
    trials::run(vec![
        test("a_dead_redis_fails_enqueue_and_claim_fast_then_the_queue_works_again")
            .threads(2)
            .needs_program(Program::RedisServer)
            .run(|_| a_dead_redis_fails_enqueue_and_claim_fast_then_the_queue_works_again()),
        test("a_job_that_ends_while_redis_is_down_is_acked_once_it_is_back")
            .threads(2)
            .needs_program(Program::RedisServer)
            .run(|_| a_job_that_ends_while_redis_is_down_is_acked_once_it_is_back()),
    ]);
}
