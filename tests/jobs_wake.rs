//! An idle worker on SQLite or MySQL/MariaDB starts a job that another pool (as another
//! process would: its own connections, its own writer) enqueued, long before its next
//! poll: through the file's writes reported by the OS on SQLite, through the enqueuer's
//! byte on the worker's local socket on MySQL (its due checks are set far beyond the
//! test, so only the socket can wake it), also for a job enqueued inside a transaction,
//! whose wake-up must come after the commit. MySQL runs when `KERNEL_TEST_MYSQL_URL` is set.

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use app_kernel::db::SchemaPolicy;
use app_kernel::jobs::{EnqueueOptions, JobClient, JobContext, JobRegistry, JobSettings, JobStatus, TaskError, Worker};
use common::db::TestDb;
use common::trials::{self, test, Engine, Server};
use serde_json::Value;

/// The bound of the wake-up contract test (`tests/jobs_contract/workers.rs`): far below
/// the poll interval, far above a wake-up's milliseconds.
const BOUND: Duration = Duration::from_secs(10);

fn registry() -> JobRegistry {
    JobRegistry::new().task("echo", |payload: Value, _: JobContext| async move { Ok::<_, TaskError>(payload) })
}

async fn another_pools_enqueue_wakes_an_idle_worker(on: Engine) {
    let test_db = TestDb::new(&on).await;
    let kind = test_db.db.kind();
    let mut settings = JobSettings::default();
    // The poll never comes within the test: only a wake-up starts the jobs.
    settings.poll_interval = Duration::from_secs(600);
    settings.due_check_interval = Duration::from_secs(600);
    let client = JobClient::sql(test_db.db.clone(), registry(), settings.clone()).await.unwrap();
    let worker = Worker::new(client.clone(), test_db.db.clone());
    let other_db = test_db.connect(SchemaPolicy::additive()).await;
    let other = JobClient::sql(other_db.clone(), registry(), settings).await.unwrap();

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run_until_stopped(async move { drop(stopped.await) }));
    // Not a wait for the job: time for the worker to find the queue empty and idle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Two jobs, one after the other: the second comes after the worker went idle again.
    for n in 1..=2 {
        let job = other.enqueue("echo", n, EnqueueOptions::new()).await.unwrap();
        done_within_bound(&other, &job.job_id, kind, &format!("job {n}")).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A job in the app's transaction: seen only once committed, and woken then.
    let mut tx = other_db.transaction().await.unwrap();
    let job = other.enqueue_in(&mut tx, "echo", 3, EnqueueOptions::new()).await.unwrap();
    // Not a wait for the job: a wake-up sent before the commit would be spent by now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.commit().await.unwrap();
    done_within_bound(&other, &job.job_id, kind, "the job enqueued in a transaction").await;
    stop.send(()).unwrap();
    running.await.unwrap();
    other_db.close().await;
    test_db.finish().await;
}

async fn done_within_bound(client: &JobClient, job_id: &str, kind: app_kernel::db::DatabaseKind, what: &str) {
    let deadline = Instant::now() + BOUND;
    while client.status(job_id).await.unwrap().unwrap().status != JobStatus::Done {
        assert!(Instant::now() < deadline, "{kind:?}: the idle worker never started {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn main() {
    trials::run(
        test("another_pools_enqueue_wakes_an_idle_worker")
            .threads(2)
            .on_each(&[Server::Mysql], another_pools_enqueue_wakes_an_idle_worker),
    );
}
