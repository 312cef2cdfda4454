//! Job queue throughput and enqueue-to-start latency, per engine (issue #5).
//!
//! Run: `cargo bench --bench jobs_throughput --all-features`. SQLite always runs, on a
//! temp file; PostgreSQL, MySQL/MariaDB and Redis run when `KERNEL_BENCH_POSTGRES_URL`,
//! `KERNEL_BENCH_MYSQL_URL`, `KERNEL_BENCH_REDIS_URL` (or the `KERNEL_TEST_*` names) are set.
//!
//! Each run, on a fresh store: enqueue `JOBS` no-op jobs with `enqueue_many` in batches of
//! `BATCH` (the enqueue rate), then drain them with one `Worker` at the default
//! `JobSettings` (`worker_count` 4, `poll_interval` 500 ms; the drain rate); the total is
//! `JOBS` over both times. Then, with a worker started and idle, enqueue `LATENCY_JOBS`
//! jobs one at a time, one every `GAP`; each handler records the time since just before
//! its `enqueue` call (the pickup latency). Before those, the idle worker's process CPU
//! over `IDLE_SECONDS` (3 s) is taken (each thread's run time in the window from
//! `/proc/self/task/*/schedstat`, Linux only; the bench does nothing else meanwhile):
//! the cost of waiting for work. Every
//! engine runs `RUNS` times and the table shows the median of each column. Override the
//! counts with `KERNEL_BENCH_JOBS`, `KERNEL_BENCH_RUNS`, `KERNEL_BENCH_LATENCY_JOBS`, the
//! worker's `worker_count` with `KERNEL_BENCH_CONCURRENCY`, and the idle time with
//! `KERNEL_BENCH_IDLE_SECONDS` (longer, to profile an idle worker: `strace -c -f -p`,
//! `perf record -p` while the run says it is idle).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use app_kernel::jobs::{EnqueueOptions, JobContext, JobRegistry, JobSettings, TaskError, Worker};
use serde_json::{json, Value};
use tokio::sync::Notify;

#[path = "jobs_throughput/engine.rs"]
mod engine;

const BATCH: usize = 500;
const GAP: Duration = Duration::from_millis(2);
/// How long the idle worker's CPU is taken over, by default.
const IDLE_SECONDS: usize = 3;

/// Each live thread's CPU time so far (nanoseconds from `/proc/self/task/*/schedstat`, by
/// thread id), if the OS says (Linux). A thread that ends while it is read is left out.
fn thread_cpu_times() -> Option<std::collections::HashMap<u64, u64>> {
    let mut times = std::collections::HashMap::new();
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse::<u64>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else { continue };
        if let Some(ns) = stat.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()) {
            times.insert(tid, ns);
        }
    }
    Some(times)
}

/// The CPU time the process's threads used from `before` to `after`: each thread alive at
/// the end, less what it had used before (a thread that ended in between takes its whole
/// time with it, which a process-wide sum would subtract: the reason for the per-thread sum).
fn cpu_between(before: &std::collections::HashMap<u64, u64>, after: &std::collections::HashMap<u64, u64>) -> Duration {
    let ns = after.iter().map(|(tid, ns)| ns.saturating_sub(before.get(tid).copied().unwrap_or(0))).sum();
    Duration::from_nanos(ns)
}

fn count(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Microseconds since the bench started: a monotonic clock jobs can carry.
fn clock_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// What the tasks report: jobs started, pickup latencies, and a wake-up at `target`.
#[derive(Debug, Default)]
struct Probe {
    started: AtomicUsize,
    target: AtomicUsize,
    reached: Notify,
    latencies_us: Mutex<Vec<u64>>,
}

impl Probe {
    fn start(&self) {
        if self.started.fetch_add(1, Ordering::AcqRel) + 1 == self.target.load(Ordering::Acquire) {
            self.reached.notify_one();
        }
    }

    fn expect(&self, n: usize) {
        self.started.store(0, Ordering::Release);
        self.target.store(n, Ordering::Release);
    }
}

fn registry(probe: &Arc<Probe>) -> JobRegistry {
    let (noop, stamp) = (Arc::clone(probe), Arc::clone(probe));
    JobRegistry::new()
        .task("noop", move |_: Value, _: JobContext| {
            noop.start();
            async { Ok::<_, TaskError>(Value::Null) }
        })
        .task("stamp", move |at_us: u64, _: JobContext| {
            stamp.latencies_us.lock().expect("latencies").push(clock_us().saturating_sub(at_us));
            stamp.start();
            async { Ok::<_, TaskError>(Value::Null) }
        })
}

/// One run's figures.
#[derive(Debug, Clone, Copy)]
struct Figures {
    enqueue: f64,
    drain: f64,
    total: f64,
    p50_ms: f64,
    p99_ms: f64,
    idle_cpu_pct: f64,
}

fn percentile(sorted_us: &[u64], p: f64) -> f64 {
    let rank = ((sorted_us.len() as f64 * p).ceil() as usize).clamp(1, sorted_us.len());
    sorted_us[rank - 1] as f64 / 1000.0
}

async fn run(
    engine: &engine::Engine,
    jobs: usize,
    latency_jobs: usize,
    concurrency: usize,
    idle_for: Duration,
) -> Figures {
    let probe = Arc::new(Probe::default());
    let mut settings = JobSettings::default();
    settings.worker_count = concurrency;
    let store = engine.open(registry(&probe), settings).await;
    let client = &store.client;

    let t0 = Instant::now();
    for chunk in (0..jobs).collect::<Vec<_>>().chunks(BATCH) {
        let batch = chunk.iter().map(|i| ("noop".to_owned(), json!({ "i": i }), EnqueueOptions::new()));
        client.enqueue_many(batch).await.expect("enqueue_many");
    }
    let enqueue_time = t0.elapsed();

    probe.expect(jobs);
    let t1 = Instant::now();
    let worker = Worker::new(client.clone(), store.db.clone());
    let p = Arc::clone(&probe);
    tokio::spawn(worker.run_until_stopped(async move { p.reached.notified().await })).await.expect("worker");
    let drain_time = t1.elapsed();

    probe.expect(latency_jobs);
    let worker = Worker::new(client.clone(), store.db.clone());
    let p = Arc::clone(&probe);
    let idle = tokio::spawn(worker.run_until_stopped(async move { p.reached.notified().await }));
    tokio::time::sleep(Duration::from_secs(1)).await;
    eprintln!("{}: idle worker, process {}, for {idle_for:?}", engine.name, std::process::id());
    let cpu0 = thread_cpu_times();
    tokio::time::sleep(idle_for).await;
    let idle_cpu_pct = match (cpu0, thread_cpu_times()) {
        (Some(a), Some(b)) => cpu_between(&a, &b).as_secs_f64() / idle_for.as_secs_f64() * 100.0,
        _ => f64::NAN,
    };
    let mut tick = tokio::time::interval(GAP);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for _ in 0..latency_jobs {
        tick.tick().await;
        client.enqueue("stamp", clock_us(), EnqueueOptions::new()).await.expect("enqueue");
    }
    tokio::time::timeout(Duration::from_secs(120), idle).await.expect("latency jobs ran").expect("worker");
    let mut lat = std::mem::take(&mut *probe.latencies_us.lock().expect("latencies"));
    lat.sort_unstable();
    store.finish().await;

    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    Figures {
        enqueue: rate(jobs, enqueue_time),
        drain: rate(jobs, drain_time),
        total: rate(jobs, enqueue_time + drain_time),
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
        idle_cpu_pct,
    }
}

fn median(runs: &[Figures], field: fn(&Figures) -> f64) -> f64 {
    let mut v: Vec<f64> = runs.iter().map(field).collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; this harness takes no arguments. RUST_LOG shows
    // the kernel's logs (a failing claim, say) on stderr.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let (jobs, runs) = (count("KERNEL_BENCH_JOBS", 50_000), count("KERNEL_BENCH_RUNS", 3).max(1));
    let latency_jobs = count("KERNEL_BENCH_LATENCY_JOBS", 2_000).max(1);
    let concurrency = count("KERNEL_BENCH_CONCURRENCY", JobSettings::default().worker_count).max(1);
    let idle_for = Duration::from_secs(count("KERNEL_BENCH_IDLE_SECONDS", IDLE_SECONDS).max(1) as u64);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let engines = engine::configured();
    let mut rows = Vec::new();
    for engine in &engines {
        let figures: Vec<Figures> = (1..=runs)
            .map(|i| {
                let f = rt.block_on(run(engine, jobs, latency_jobs, concurrency, idle_for));
                eprintln!("{} run {i}/{runs}: {f:.1?}", engine.name);
                f
            })
            .collect();
        rows.push((engine.name, figures));
    }
    println!("\n{jobs} no-op jobs, worker_count {concurrency}, pickup over {latency_jobs} jobs; median of {runs} runs");
    println!("| engine | enqueue jobs/s | drain jobs/s | total jobs/s | pickup p50 ms | pickup p99 ms | idle CPU % |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, f) in &rows {
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} |",
            median(f, |f| f.enqueue),
            median(f, |f| f.drain),
            median(f, |f| f.total),
            median(f, |f| f.p50_ms),
            median(f, |f| f.p99_ms),
            median(f, |f| f.idle_cpu_pct),
        );
    }
}
