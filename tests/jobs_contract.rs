//! The job queue contract: one suite, run on every engine.
//!
//! SQLite always; PostgreSQL, MariaDB and Redis when `KERNEL_TEST_POSTGRES_URL`,
//! `KERNEL_TEST_MYSQL_URL`, `KERNEL_TEST_REDIS_URL` are set. Each test gets its own
//! SQLite file, PostgreSQL schema, MariaDB database or Redis key prefix. Nothing
//! sleeps to wait for a job: the worker is stepped with `run_once`.

mod common;

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
    redis: Option<(String, String)>,
}

impl Engine {
    async fn client(&self, registry: JobRegistry, settings: JobSettings) -> JobClient {
        match &self.redis {
            #[cfg(feature = "redis")]
            Some((url, prefix)) => JobClient::redis(url, prefix, registry, settings).await.expect("redis queue"),
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
    #[cfg(feature = "mysql")]
    if let Some(db) = TestDb::new(DatabaseKind::Mysql, test).await {
        out.push(Engine { name: "mysql", db, redis: None });
    }
    #[cfg(feature = "redis")]
    if let Some(url) = common::service_url("KERNEL_TEST_REDIS_URL", test) {
        let db = TestDb::new(DatabaseKind::Sqlite, test).await.expect("sqlite");
        out.push(Engine { name: "redis", db, redis: Some((url, format!("{}:", common::unique_name("jobs")))) });
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
);

mod suite {
    use super::*;

    pub(super) async fn enqueue_claim_complete(e: &Engine) {
        let (client, worker) = e.worker(registry(), quick()).await;
        let job = client.enqueue("echo", json!({"n": 1}), EnqueueOptions::new().user_id("u1")).await.unwrap();
        let pending = client.status(&job.job_id).await.unwrap().expect("stored");
        assert_eq!(pending.status, JobStatus::Pending);
        assert_eq!(pending.attempts, 0);
        assert_eq!(pending.user_id.as_deref(), Some("u1"));
        let report = worker.run_once().await.unwrap();
        assert_eq!(report.completed, vec![job.job_id.clone()], "{}", e.name);
        let done = client.status(&job.job_id).await.unwrap().unwrap();
        assert_eq!(done.status, JobStatus::Done);
        assert_eq!(done.attempts, 1);
        assert_eq!(done.result, Some(json!({"echo": {"n": 1}, "attempt": 1, "user": "u1"})));
        assert_eq!(worker.run_once().await.unwrap().ran(), 0, "nothing left");
        assert!(client.status("no-such-job").await.unwrap().is_none());
    }

    pub(super) async fn priority_order(e: &Engine) {
        let client = e.client(registry(), quick()).await;
        let low = client.enqueue("echo", 1, EnqueueOptions::new().priority(Priority::Low)).await.unwrap();
        let normal = client.enqueue("echo", 2, EnqueueOptions::new()).await.unwrap();
        let high = client.enqueue("echo", 3, EnqueueOptions::new().priority(Priority::High)).await.unwrap();
        let mut order = Vec::new();
        for _ in 0..3 {
            let c = client.backend().claim("w", 1, Duration::from_secs(30), now_ms()).await.unwrap();
            order.push(c[0].job.id.clone());
        }
        assert_eq!(order, vec![high.job_id, normal.job_id, low.job_id], "{}", e.name);
    }

    pub(super) async fn delayed_jobs_wait(e: &Engine) {
        let (client, worker) = e.worker(registry(), quick()).await;
        let later = client.enqueue("echo", 1, EnqueueOptions::new().delay(Duration::from_secs(3600))).await.unwrap();
        let past = chrono::Utc::now() - chrono::Duration::seconds(5);
        let due = client.enqueue("echo", 2, EnqueueOptions::new().run_at(past)).await.unwrap();
        let report = worker.run_once().await.unwrap();
        assert_eq!(report.completed, vec![due.job_id], "{}", e.name);
        assert_eq!(client.status(&later.job_id).await.unwrap().unwrap().status, JobStatus::Pending);
        let in_two_hours = now_ms() + 2 * 3600 * 1000;
        let c = client.backend().claim("w", 5, Duration::from_secs(30), in_two_hours).await.unwrap();
        assert_eq!(c.len(), 1, "due once its time has come");
        assert_eq!(c[0].job.id, later.job_id);
    }

    pub(super) async fn retry_with_backoff(e: &Engine) {
        let mut settings = quick();
        settings.backoff_base = Duration::from_secs(600);
        let (client, worker) = e.worker(registry(), settings).await;
        let job = client.enqueue("boom", json!({}), EnqueueOptions::new().max_attempts(3)).await.unwrap();
        let before = now_ms();
        let report = worker.run_once().await.unwrap();
        assert_eq!(report.retried, vec![job.job_id.clone()], "{}", e.name);
        let rec = client.status(&job.job_id).await.unwrap().unwrap();
        assert_eq!(rec.status, JobStatus::Retry);
        assert_eq!(rec.attempts, 1);
        assert_eq!(rec.error.as_deref(), Some("boom"));
        assert!(rec.run_at >= before + 600_000 && rec.run_at <= now_ms() + 750_000, "backoff {}", rec.run_at - before);
        assert_eq!(worker.run_once().await.unwrap().ran(), 0, "not before its backoff");
        let later = client.backend().claim("w", 1, Duration::from_secs(30), rec.run_at + 1).await.unwrap();
        assert_eq!(later.len(), 1, "{}", e.name);
        assert_eq!(later[0].job.attempts, 2);
    }

    pub(super) async fn dead_after_max_attempts(e: &Engine) {
        let (client, worker) = e.worker(registry(), quick()).await;
        let job = client.enqueue("boom", json!({}), EnqueueOptions::new().max_attempts(3)).await.unwrap();
        assert_eq!(worker.run_once().await.unwrap().retried.len(), 1);
        assert_eq!(worker.run_once().await.unwrap().retried.len(), 1);
        assert_eq!(worker.run_once().await.unwrap().dead, vec![job.job_id.clone()], "{}", e.name);
        let rec = client.status(&job.job_id).await.unwrap().unwrap();
        assert_eq!(rec.status, JobStatus::Dead);
        assert_eq!(rec.attempts, 3);
        assert_eq!(rec.error.as_deref(), Some("boom"));
        assert_eq!(worker.run_once().await.unwrap().ran(), 0);
    }

    pub(super) async fn timeout_is_a_failure(e: &Engine) {
        let (client, worker) = e.worker(registry(), quick()).await;
        let opts = EnqueueOptions::new().timeout(Duration::from_millis(50)).max_attempts(1);
        let job = client.enqueue("slow", json!({}), opts).await.unwrap();
        let report = worker.run_once().await.unwrap();
        assert_eq!(report.dead, vec![job.job_id.clone()], "{}", e.name);
        let rec = client.status(&job.job_id).await.unwrap().unwrap();
        assert!(rec.error.unwrap().contains("timed out"));
    }

    pub(super) async fn unknown_task_is_refused(e: &Engine) {
        let client = e.client(registry(), quick()).await;
        let err = client.enqueue("no_such_task", json!({}), EnqueueOptions::new()).await.unwrap_err();
        assert!(matches!(err, JobError::UnknownTask(ref t) if t == "no_such_task"), "{err:?}");
        let api = ApiError::from(err);
        assert_eq!(api.status().as_u16(), 422);
        assert_eq!(api.code(), "unknown_task");
        let many = client
            .enqueue_many(vec![
                ("echo".to_owned(), json!(1), EnqueueOptions::new()),
                ("nope".to_owned(), json!(2), EnqueueOptions::new()),
            ])
            .await;
        assert!(many.is_err());
        let c = client.backend().claim("w", 10, Duration::from_secs(30), now_ms()).await.unwrap();
        assert!(c.is_empty(), "nothing enqueued when one name is unknown");
    }

    pub(super) async fn unique_key_dedupes_unfinished_jobs(e: &Engine) {
        let (client, worker) = e.worker(registry(), quick()).await;
        let a = client.enqueue("echo", 1, EnqueueOptions::new().unique_key("order-7")).await.unwrap();
        let b = client.enqueue("echo", 2, EnqueueOptions::new().unique_key("order-7")).await.unwrap();
        assert_eq!(a, b, "{}", e.name);
        assert_eq!(worker.run_once().await.unwrap().completed, vec![a.job_id.clone()]);
        let c = client.enqueue("echo", 3, EnqueueOptions::new().unique_key("order-7")).await.unwrap();
        assert_ne!(a, c, "a finished job frees its key");
    }

    pub(super) async fn stale_ack_is_refused(e: &Engine) {
        let client = e.client(registry(), quick()).await;
        let job = client.enqueue("echo", 1, EnqueueOptions::new()).await.unwrap();
        let t0 = now_ms();
        let old = client.backend().claim("a", 1, Duration::from_millis(100), t0).await.unwrap().remove(0);
        let b = client.backend().claim("b", 1, Duration::from_secs(30), t0 + 1_000).await.unwrap();
        assert_eq!(b.len(), 1, "{}: expired lease reclaimed", e.name);
        let new = &b[0];
        assert_eq!(new.job.id, job.job_id);
        assert_ne!(new.token, old.token);
        let q = client.backend();
        assert!(!q.complete(&job.job_id, &old.token, &json!("stale"), t0 + 1_100).await.unwrap());
        assert!(!q.fail(&job.job_id, &old.token, "x", app_kernel::jobs::FailOutcome::Dead, t0 + 1_100).await.unwrap());
        assert!(!q.extend(&job.job_id, &old.token, Duration::from_secs(30), t0 + 1_100).await.unwrap());
        assert!(!q.release(&job.job_id, &old.token, t0 + 1_100).await.unwrap());
        assert!(q.complete(&job.job_id, &new.token, &json!("fresh"), t0 + 1_200).await.unwrap());
        let rec = client.status(&job.job_id).await.unwrap().unwrap();
        assert_eq!(rec.result, Some(json!("fresh")));
        assert_eq!(rec.attempts, 2);
    }

    pub(super) async fn batched_enqueue_and_acks(e: &Engine) {
        let client = e.client(registry(), quick()).await;
        let jobs = (0..3).map(|i| ("echo".to_owned(), i, EnqueueOptions::new()));
        let ids: Vec<String> = client.enqueue_many(jobs).await.unwrap().into_iter().map(|j| j.job_id).collect();
        assert_eq!(ids.len(), 3);
        let t0 = now_ms();
        let q = client.backend();
        let old = q.claim("a", 3, Duration::from_millis(100), t0).await.unwrap();
        assert_eq!(old.iter().map(|c| c.job.id.clone()).collect::<Vec<_>>(), ids, "{}: claim order", e.name);
        let new = q.claim("b", 3, Duration::from_secs(30), t0 + 1_000).await.unwrap();
        assert_eq!(new.len(), 3, "{}: expired leases reclaimed", e.name);
        let (r0, r1) = (json!("stale"), json!("fresh"));
        let acks = [
            (ids[0].as_str(), old[0].token.as_str(), &r0),
            (ids[1].as_str(), new[1].token.as_str(), &r1),
            (ids[2].as_str(), new[2].token.as_str(), &r1),
        ];
        assert_eq!(q.complete_many(&acks, t0 + 1_100).await.unwrap(), [false, true, true], "{}", e.name);
        assert_eq!(client.status(&ids[0]).await.unwrap().unwrap().status, JobStatus::Running);
        let done = client.status(&ids[1]).await.unwrap().unwrap();
        assert_eq!((done.status, done.result), (JobStatus::Done, Some(json!("fresh"))));
    }

    pub(super) async fn running_worker_drains_a_batch(e: &Engine) {
        let (client, worker) = e.worker(registry(), quick()).await;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(worker.run_until_stopped(async move { drop(stopped.await) }));
        // Enqueued while the worker runs (and may be idle): a wake-up or a poll finds them.
        let jobs = (0..40).map(|i| ("echo".to_owned(), i, EnqueueOptions::new()));
        let ids: Vec<String> = client.enqueue_many(jobs).await.unwrap().into_iter().map(|j| j.job_id).collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut pending = ids.clone();
        while !pending.is_empty() && std::time::Instant::now() < deadline {
            let mut left = Vec::new();
            for id in pending {
                if client.status(&id).await.unwrap().unwrap().status != JobStatus::Done {
                    left.push(id);
                }
            }
            pending = left;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.send(()).unwrap();
        running.await.unwrap();
        assert!(pending.is_empty(), "{}: not done: {pending:?}", e.name);
    }

    /// Busy workers claim beyond their free slots; stopped half way, they leave every
    /// job done or pending with its attempt uncounted, and no job runs twice.
    pub(super) async fn stopped_workers_hand_back_what_they_claimed_ahead(e: &Engine) {
        let runs: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
        let half = Arc::new(tokio::sync::Notify::new());
        let total = 3_000u64;
        let (seen, reached) = (Arc::clone(&runs), Arc::clone(&half));
        let reg = JobRegistry::new().task("count", move |n: u64, _ctx: JobContext| {
            let mut seen = seen.lock().unwrap();
            *seen.entry(n).or_default() += 1;
            if seen.len() as u64 == total / 2 {
                reached.notify_waiters();
            }
            async move { Ok::<_, TaskError>(n) }
        });
        let (client, _) = e.worker(reg, quick()).await;
        let jobs = (0..total).map(|n| ("count".to_owned(), n, EnqueueOptions::new()));
        let ids: Vec<String> = client.enqueue_many(jobs).await.unwrap().into_iter().map(|j| j.job_id).collect();
        let stop = Arc::new(tokio::sync::Notify::new());
        let halfway = half.notified();
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let stop = Arc::clone(&stop);
                let worker = Worker::new(client.clone(), e.db.db.clone());
                tokio::spawn(worker.run_until_stopped(async move { stop.notified().await }))
            })
            .collect();
        tokio::time::timeout(Duration::from_secs(60), halfway).await.expect("half the jobs ran");
        stop.notify_waiters();
        for w in workers {
            w.await.unwrap();
        }
        for id in &ids {
            let job = client.status(id).await.unwrap().unwrap();
            match job.status {
                JobStatus::Done => assert_eq!(job.attempts, 1, "{}: {job:?}", e.name),
                JobStatus::Pending => assert_eq!(job.attempts, 0, "{}: {job:?}", e.name),
                _ => panic!("{}: left {job:?}", e.name),
            }
        }
        let w = Worker::new(client.clone(), e.db.db.clone()).concurrency(64);
        while w.run_once().await.unwrap().ran() > 0 {}
        let runs = runs.lock().unwrap();
        assert_eq!(runs.len() as u64, total, "{}", e.name);
        assert!(runs.values().all(|&n| n == 1), "{}: a job ran twice", e.name);
    }

    /// On engines that signal enqueues (Redis, PostgreSQL), an idle worker starts a new
    /// job long before its next poll.
    pub(super) async fn idle_worker_wakes_on_enqueue(e: &Engine) {
        let mut settings = quick();
        settings.poll_interval = Duration::from_secs(600);
        let (client, worker) = e.worker(registry(), settings).await;
        if client.backend().wakeups().is_none() {
            return;
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(worker.run_until_stopped(async move { drop(stopped.await) }));
        // Not a wait for the job: time for the worker to find the queue empty and idle.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let job = client.enqueue("echo", 1, EnqueueOptions::new()).await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while client.status(&job.job_id).await.unwrap().unwrap().status != JobStatus::Done {
            assert!(std::time::Instant::now() < deadline, "{}: no wake-up", e.name);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.send(()).unwrap();
        running.await.unwrap();
    }

    pub(super) async fn expired_lease_is_claimable_again(e: &Engine) {
        let client = e.client(registry(), quick()).await;
        client.enqueue("echo", 1, EnqueueOptions::new()).await.unwrap();
        let t0 = now_ms();
        let q = client.backend();
        assert_eq!(q.claim("a", 1, Duration::from_secs(10), t0).await.unwrap().len(), 1);
        assert!(q.claim("b", 1, Duration::from_secs(10), t0 + 5_000).await.unwrap().is_empty(), "{}", e.name);
        let first = q.claim("a", 1, Duration::from_secs(10), t0).await;
        assert!(first.unwrap().is_empty());
        let c = q.claim("b", 1, Duration::from_secs(10), t0 + 9_000).await.unwrap();
        assert!(c.is_empty(), "lease still valid");
        // An extended lease is honoured.
        let again = q.claim("b", 1, Duration::from_secs(10), t0 + 11_000).await.unwrap();
        assert_eq!(again.len(), 1, "{}", e.name);
        assert!(q.extend(&again[0].job.id, &again[0].token, Duration::from_secs(60), t0 + 11_000).await.unwrap());
        assert!(q.claim("c", 1, Duration::from_secs(10), t0 + 30_000).await.unwrap().is_empty());
    }

    pub(super) async fn concurrent_workers_run_each_job_once(e: &Engine) {
        let runs: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
        let seen = Arc::clone(&runs);
        let reg = JobRegistry::new().task("count", move |n: u64, _ctx: JobContext| {
            let seen = Arc::clone(&seen);
            async move {
                *seen.lock().unwrap().entry(n).or_default() += 1;
                tokio::task::yield_now().await;
                Ok::<_, TaskError>(n)
            }
        });
        let mut settings = quick();
        settings.worker_count = 3;
        let (client, _) = e.worker(reg, settings).await;
        let total = 60u64;
        for n in 0..total {
            client.enqueue("count", n, EnqueueOptions::new()).await.unwrap();
        }
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let w = Worker::new(client.clone(), e.db.db.clone());
                tokio::spawn(async move {
                    let mut done = 0;
                    loop {
                        let r = w.run_once().await.expect("run_once");
                        assert!(r.lost.is_empty() && r.retried.is_empty() && r.dead.is_empty(), "{r:?}");
                        if r.ran() == 0 {
                            return done;
                        }
                        done += r.ran();
                    }
                })
            })
            .collect();
        let mut done = 0;
        for w in workers {
            done += w.await.unwrap();
        }
        // A worker may stop early when another holds the last jobs; drain what is left.
        let w = Worker::new(client.clone(), e.db.db.clone());
        done += w.run_once().await.unwrap().ran();
        let runs = runs.lock().unwrap();
        assert_eq!(done as u64, total, "{}", e.name);
        assert_eq!(runs.len() as u64, total);
        assert!(runs.values().all(|&n| n == 1), "{}: a job ran twice: {runs:?}", e.name);
    }

    pub(super) async fn release_hands_back_without_counting(e: &Engine) {
        let client = e.client(registry(), quick()).await;
        let job = client.enqueue("echo", 1, EnqueueOptions::new()).await.unwrap();
        let q = client.backend();
        let c = q.claim("a", 1, Duration::from_secs(30), now_ms()).await.unwrap().remove(0);
        assert!(q.release(&job.job_id, &c.token, now_ms()).await.unwrap(), "{}", e.name);
        let rec = client.status(&job.job_id).await.unwrap().unwrap();
        assert_eq!(rec.status, JobStatus::Pending);
        assert_eq!(rec.attempts, 0);
        assert_eq!(q.claim("b", 1, Duration::from_secs(30), now_ms()).await.unwrap().len(), 1);
    }

    pub(super) async fn prune_removes_finished_jobs(e: &Engine) {
        let (client, worker) = e.worker(registry(), quick()).await;
        let done = client.enqueue("echo", 1, EnqueueOptions::new()).await.unwrap();
        worker.run_once().await.unwrap();
        let waiting = client.enqueue("echo", 2, EnqueueOptions::new().delay(Duration::from_secs(60))).await.unwrap();
        assert_eq!(client.backend().prune(now_ms() - 60_000).await.unwrap(), 0, "{}", e.name);
        assert_eq!(client.backend().prune(now_ms() + 1).await.unwrap(), 1);
        assert!(client.status(&done.job_id).await.unwrap().is_none());
        assert!(client.status(&waiting.job_id).await.unwrap().is_some());
    }
}
