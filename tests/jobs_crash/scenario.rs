//! The worker kill loop on one engine, ending in its verdict line.
//!
//! Two worker processes drain a queue of short jobs while one of them is SIGKILLed and
//! restarted every `every`, again and again. For each kill, the jobs that worker had
//! started and not finished are "cut off"; the time until they are all done again is
//! a recovery. Then a SIGTERM round: fresh short jobs and a few slow ones (longer than
//! the shutdown grace) run when both workers get SIGTERM; each must exit in time, the
//! short jobs finished and the slow ones handed back, none left running under a lease.
//! A restarted worker finishes the rest. At the end every job is `done`, and a job
//! ran again only after a kill or a SIGTERM of the worker that ran it before: each run
//! but a job's last is by a worker stopped before the next run started (the side-effect
//! table records each run's worker and start; a lease lost by a live worker fails this).

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::time::{Duration, Instant};

use app_kernel::jobs::{now_ms, EnqueueOptions, JobStatus};
use serde_json::json;

use crate::engine::Engine;
use crate::workers::Workers;

/// How big one engine's run is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    /// Short jobs enqueued before the kills.
    pub(crate) jobs: usize,
    /// SIGKILLs, alternating between the two workers.
    pub(crate) kills: usize,
    /// Time between two kills.
    pub(crate) every: Duration,
    /// Short jobs of the SIGTERM round.
    pub(crate) term_jobs: usize,
}

/// How long a short job's task takes.
const SHORT_MS: u64 = 50;
/// How long a slow job's task takes: more than the shutdown grace.
const SLOW_MS: u64 = 2_000;
/// Slow jobs in the SIGTERM round.
const SLOW_JOBS: usize = 2;
/// The shutdown grace of the workers: a short job finishes in it, a slow one does not.
pub(crate) const GRACE: Duration = Duration::from_millis(500);
/// How long after a kill its cut-off jobs are looked up.
const SETTLE: Duration = Duration::from_millis(300);
/// The longest wait for a queue to drain.
const DRAIN_LIMIT: Duration = Duration::from_secs(90);

/// Runs the scenario, prints its verdict line and asserts it passed.
pub(crate) async fn worker_kill_loop(engine: Engine, plan: Plan) {
    let mut failures = Vec::new();
    let mut ids = enqueue(&engine, plan.jobs, SHORT_MS).await;
    let mut workers = Workers::new(engine.target.clone(), 2);
    workers.spawn(0);
    workers.spawn(1);
    let mut seen = Seen::default();
    let mut cut_total = 0;
    for kill in 0..plan.kills {
        seen.poll_for(&engine, plan.every).await;
        let slot = kill % 2;
        let pid = workers.pid(slot);
        workers.sigkill(slot);
        let killed_at = Instant::now();
        seen.stopped.insert(pid, now_ms());
        // A server may still finish a statement the worker sent just before it died
        // (a run's row, an ack): look once that has settled, well within the lease
        // (extended every third of it, so at least two thirds are left at the kill).
        seen.poll_for(&engine, SETTLE).await;
        let cut = seen.started_not_done(&engine, pid).await;
        cut_total += cut.len();
        seen.recovering.push((killed_at, cut));
        workers.spawn(slot);
    }
    if cut_total == 0 {
        failures.push("no kill caught a job in flight: the run proves nothing".to_owned());
    }
    if let Err(e) = seen.drain(&engine).await {
        failures.push(format!("after the kills: {e}"));
    }

    // The slow jobs first, so that short ones run beside them when the signal comes.
    let slow_ids = enqueue(&engine, SLOW_JOBS, SLOW_MS).await;
    let term_ids = enqueue(&engine, plan.term_jobs, SHORT_MS).await;
    if let Err(e) = seen.until_started(&engine, &slow_ids).await {
        failures.push(e);
    }
    seen.stopped.extend(workers.pids().into_iter().map(|pid| (pid, now_ms())));
    if let Err(e) = workers.sigterm_all(GRACE + Duration::from_secs(10)) {
        failures.push(e);
    }
    let mut handed_back = 0;
    for id in term_ids.iter().chain(&slow_ids) {
        match status(&engine, id).await {
            Some(JobStatus::Running) => failures.push(format!("job {id} left running under a lease after SIGTERM")),
            Some(JobStatus::Pending) if slow_ids.contains(id) => handed_back += 1,
            _ => {}
        }
    }
    if handed_back != SLOW_JOBS {
        failures.push(format!("{handed_back} of {SLOW_JOBS} slow jobs handed back at SIGTERM"));
    }
    workers.spawn(0);
    if let Err(e) = seen.drain(&engine).await {
        failures.push(format!("after SIGTERM: {e}"));
    }
    if let Err(e) = workers.sigterm_all(GRACE + Duration::from_secs(10)) {
        failures.push(e);
    }
    for id in &slow_ids {
        let attempts = engine.client.status(id).await.expect("status").map_or(0, |j| j.attempts);
        if attempts != 1 {
            failures.push(format!("handed-back job {id} counts {attempts} attempts, not 1"));
        }
    }
    ids.extend(term_ids);
    ids.extend(slow_ids);

    let mut lost = 0;
    for id in &ids {
        if status(&engine, id).await != Some(JobStatus::Done) {
            lost += 1;
        }
    }
    let runs = runs(&engine).await;
    let never_ran = ids.iter().filter(|id| !runs.contains_key(*id)).count();
    if never_ran > 0 {
        failures.push(format!("{never_ran} jobs have no recorded run"));
    }
    let duplicates: usize = runs.values().map(|r| r.len() - 1).sum();
    let unexpected: Vec<_> = runs
        .iter()
        .filter(|(_, r)| !r.windows(2).all(|w| seen.stopped.get(&w[0].pid).is_some_and(|at| *at <= w[1].at)))
        .map(|(id, r)| format!("{id} run by {r:?}"))
        .collect();
    if !unexpected.is_empty() {
        let stopped = &seen.stopped;
        failures.push(format!("jobs ran again while the worker of their previous run was alive: {unexpected:?} (workers stopped: {stopped:?})"));
    }
    if lost > 0 {
        failures.push(format!("{lost} jobs not done"));
    }
    let result = if failures.is_empty() { "PASS" } else { "FAIL" };
    let line = format!(
        "VERDICT scenario=worker_kill_loop engine={} result={result} jobs={} kills={} lost={lost} duplicates={duplicates} recovery_ms={}",
        engine.name,
        ids.len(),
        plan.kills,
        seen.recovery.as_millis(),
    );
    // Straight to the process's stdout: the test runner hides a passing test's println!.
    let _ = writeln!(
        std::io::stdout().lock(),
        "{line}\n  cut off by kills: {cut_total}, handed back at SIGTERM: {handed_back}"
    );
    drop(workers);
    engine.finish().await;
    assert!(failures.is_empty(), "{line}\n{}", failures.join("\n"));
}

async fn enqueue(engine: &Engine, n: usize, ms: u64) -> Vec<String> {
    let opts = || EnqueueOptions::new().max_attempts(100);
    let jobs = (0..n).map(|_| ("work".to_owned(), json!({ "ms": ms }), opts()));
    engine.client.enqueue_many(jobs).await.expect("enqueue").into_iter().map(|e| e.job_id).collect()
}

async fn status(engine: &Engine, id: &str) -> Option<JobStatus> {
    engine.client.status(id).await.expect("status").map(|j| j.status)
}

/// One run of a job: the worker process, and when it started (Unix ms).
#[derive(Debug)]
struct Run {
    pid: u32,
    at: i64,
}

/// The runs of each job, in the order they started, from the side-effect table.
async fn runs(engine: &Engine) -> HashMap<String, Vec<Run>> {
    let rows = engine.db.fetch_all("SELECT [job_id], [pid], [at] FROM [crash_runs]", &[]).await.expect("runs");
    let mut runs: HashMap<String, Vec<Run>> = HashMap::new();
    for r in rows {
        let pid = u32::try_from(r["pid"].as_i64().expect("pid")).expect("a pid");
        let run = Run { pid, at: r["at"].as_i64().expect("start") };
        runs.entry(r["job_id"].as_str().expect("job id").to_owned()).or_default().push(run);
    }
    for r in runs.values_mut() {
        r.sort_by_key(|run| run.at);
    }
    runs
}

/// What the test has learnt of the jobs while they run.
#[derive(Default)]
struct Seen {
    /// Jobs seen done (they stay done).
    done: HashSet<String>,
    /// When each stopped worker was killed or sent SIGTERM (Unix ms), by pid.
    stopped: HashMap<u32, i64>,
    /// Per kill, when it happened and the jobs it cut off that are not done again yet.
    recovering: Vec<(Instant, Vec<String>)>,
    /// The longest time from a kill until the jobs it cut off were all done.
    recovery: Duration,
}

impl Seen {
    /// The jobs that the (dead) worker `pid` started and did not finish.
    async fn started_not_done(&mut self, engine: &Engine, pid: u32) -> Vec<String> {
        let rows = engine
            .db
            .fetch_all("SELECT DISTINCT [job_id] FROM [crash_runs] WHERE [pid] = ?", &[json!(pid)])
            .await
            .expect("runs of the killed worker");
        let mut cut = Vec::new();
        for id in rows.iter().filter_map(|r| r["job_id"].as_str()) {
            if !self.is_done(engine, id).await {
                cut.push(id.to_owned());
            }
        }
        cut
    }

    async fn is_done(&mut self, engine: &Engine, id: &str) -> bool {
        if self.done.contains(id) {
            return true;
        }
        let done = status(engine, id).await == Some(JobStatus::Done);
        if done {
            self.done.insert(id.to_owned());
        }
        done
    }

    /// Checks the kills still recovering: a kill whose jobs are all done has recovered.
    async fn check_recovery(&mut self, engine: &Engine) {
        let mut still = Vec::new();
        for (killed_at, jobs) in std::mem::take(&mut self.recovering) {
            let mut open = Vec::new();
            for id in jobs {
                if !self.is_done(engine, &id).await {
                    open.push(id);
                }
            }
            if open.is_empty() {
                self.recovery = self.recovery.max(killed_at.elapsed());
            } else {
                still.push((killed_at, open));
            }
        }
        self.recovering = still;
    }

    /// Watches recoveries for `period`.
    async fn poll_for(&mut self, engine: &Engine, period: Duration) {
        let until = Instant::now() + period;
        while Instant::now() < until {
            self.check_recovery(engine).await;
            tokio::time::sleep(Duration::from_millis(25).min(until.saturating_duration_since(Instant::now()))).await;
        }
    }

    /// Waits until the queue holds no unfinished job and every kill has recovered.
    async fn drain(&mut self, engine: &Engine) -> Result<(), String> {
        let deadline = Instant::now() + DRAIN_LIMIT;
        loop {
            self.check_recovery(engine).await;
            let depth = engine.client.backend().queue_depth(now_ms()).await.expect("queue depth");
            if depth.due + depth.scheduled + depth.running == 0 && self.recovering.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("queue not drained after {DRAIN_LIMIT:?}: {depth:?}"));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until each of `ids` has started a run.
    async fn until_started(&mut self, engine: &Engine, ids: &[String]) -> Result<(), String> {
        let deadline = Instant::now() + DRAIN_LIMIT;
        loop {
            let runs = runs(engine).await;
            if ids.iter().all(|id| runs.contains_key(id)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("the slow jobs did not start within {DRAIN_LIMIT:?}"));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
