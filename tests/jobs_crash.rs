//! A real worker process, SIGKILLed in the middle of jobs, again and again: after a
//! restart every job completes, none is lost, and only jobs in flight at a kill run
//! twice. The test binary re-executes itself as the worker (`crash_worker_child`).

mod common;

use std::collections::HashMap;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use app_kernel::db::{DatabaseSettings, Db};
use app_kernel::jobs::{EnqueueOptions, JobClient, JobContext, JobRegistry, JobSettings, JobStatus, TaskError, Worker};
use serde_json::{json, Value};

const CHILD_ENV: &str = "APP_KERNEL_CRASH_WORKER_DB";
const WORKERS: usize = 4;

fn settings() -> JobSettings {
    let mut s = JobSettings::default();
    s.lease = Duration::from_millis(600);
    s.poll_interval = Duration::from_millis(20);
    s.worker_count = WORKERS;
    s.backoff_base = Duration::ZERO;
    s
}

async fn work(_: Value, ctx: JobContext) -> Result<Value, TaskError> {
    ctx.db().execute("INSERT INTO [crash_runs] ([job_id]) VALUES (?)", &[json!(ctx.job_id)]).await?;
    tokio::time::sleep(Duration::from_millis(40)).await;
    Ok(json!("ok"))
}

async fn open(path: &str) -> (Db, JobClient) {
    let db = Db::connect(&DatabaseSettings::sqlite(path), "crash").await.expect("open sqlite");
    let client = JobClient::sql(db.clone(), JobRegistry::new().task("work", work), settings()).await.expect("queue");
    (db, client)
}

/// The worker process of `sigkilled_workers_lose_no_job`, which runs it with
/// `--ignored`; on its own it is reported as ignored, not as a pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the worker process that sigkilled_workers_lose_no_job starts and kills"]
async fn crash_worker_child() {
    let path = std::env::var(CHILD_ENV).expect("started by sigkilled_workers_lose_no_job");
    let (db, client) = open(&path).await;
    Worker::new(client, db).run_until_stopped(std::future::pending()).await;
}

fn spawn_worker(path: &str) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "crash_worker_child", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn worker")
}

/// Jobs that started (their run is recorded) but are not done: what a kill cut off.
async fn started_not_done(db: &Db, client: &JobClient, ids: &[String]) -> usize {
    let rows = db.fetch_all("SELECT DISTINCT [job_id] FROM [crash_runs]", &[]).await.expect("runs");
    let mut cut = 0;
    for id in rows.iter().filter_map(|r| r["job_id"].as_str()).filter(|id| ids.iter().any(|i| i == id)) {
        if client.status(id).await.expect("status").map(|j| j.status) != Some(JobStatus::Done) {
            cut += 1;
        }
    }
    cut
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_workers_lose_no_job() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("crash.db").display().to_string();
    let (db, client) = open(&path).await;
    db.execute("CREATE TABLE [crash_runs] ([job_id] TEXT NOT NULL)", &[]).await.expect("runs table");
    let total = 80;
    let mut ids = Vec::new();
    for n in 0..total {
        ids.push(client.enqueue("work", n, EnqueueOptions::new().max_attempts(50)).await.expect("enqueue").job_id);
    }
    let kills = 4;
    let mut interrupted = 0;
    for round in 0..kills {
        let mut child = spawn_worker(&path);
        tokio::time::sleep(Duration::from_millis(400 + 150 * round)).await;
        child.kill().expect("SIGKILL"); // SIGKILL on Unix: no cleanup in the child
        child.wait().expect("reap");
        interrupted += started_not_done(&db, &client, &ids).await;
    }
    assert!(interrupted > 0, "no kill caught a job in flight: the test would prove nothing");
    let mut child = spawn_worker(&path);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut finished = 0;
    while Instant::now() < deadline {
        finished = 0;
        for id in &ids {
            if client.status(id).await.expect("status").map(|j| j.status) == Some(JobStatus::Done) {
                finished += 1;
            }
        }
        if finished == total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert_eq!(finished, total, "every job completes after the restarts");
    let rows = db.fetch_all("SELECT [job_id] FROM [crash_runs]", &[]).await.expect("runs");
    let mut runs: HashMap<String, usize> = HashMap::new();
    for r in rows {
        *runs.entry(r["job_id"].as_str().expect("id").to_owned()).or_default() += 1;
    }
    assert!(ids.iter().all(|id| runs.get(id).copied().unwrap_or(0) >= 1), "every job ran");
    let reruns: usize = runs.values().map(|n| n - 1).sum();
    eprintln!("{total} jobs, {kills} kills, {reruns} re-runs");
    assert!(reruns <= kills as usize * WORKERS, "only jobs in flight at a kill run again: {reruns} re-runs");
}
