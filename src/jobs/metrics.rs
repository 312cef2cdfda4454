//! The jobs' metrics (names in [`names`]): per task, counters of enqueued, started,
//! completed, failed, retried and dead jobs and histograms of pickup latency and run
//! time; the depth of the queue by state (due, scheduled, running).
//!
//! Each task's handles are resolved once and kept (a short list behind a lock), so a
//! job costs a scan of the task names, not a registry lookup with new label strings.
//! The queue depth is asked of the engine only when `/metrics` is scraped, and at most
//! every [`DEPTH_EVERY`]: scrapes in between show the last sample.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::backend::{ClaimedJob, QueueBackend};
use crate::observability::names;

/// The shortest time between two queue depth samples.
pub(crate) const DEPTH_EVERY: Duration = Duration::from_secs(5);

/// The handles of one task's series.
#[derive(Debug)]
pub(crate) struct TaskSeries {
    pub(crate) enqueued: metrics::Counter,
    pub(crate) started: metrics::Counter,
    pub(crate) completed: metrics::Counter,
    pub(crate) failed: metrics::Counter,
    pub(crate) retried: metrics::Counter,
    pub(crate) dead: metrics::Counter,
    pub(crate) pickup: metrics::Histogram,
    pub(crate) run: metrics::Histogram,
}

impl TaskSeries {
    fn new(task: &str) -> Self {
        let labels = [(names::LABEL_TASK, task.to_owned())];
        Self {
            enqueued: metrics::counter!(names::JOBS_ENQUEUED_TOTAL, &labels),
            started: metrics::counter!(names::JOBS_STARTED_TOTAL, &labels),
            completed: metrics::counter!(names::JOBS_COMPLETED_TOTAL, &labels),
            failed: metrics::counter!(names::JOBS_FAILED_TOTAL, &labels),
            retried: metrics::counter!(names::JOBS_RETRIED_TOTAL, &labels),
            dead: metrics::counter!(names::JOBS_DEAD_TOTAL, &labels),
            pickup: metrics::histogram!(names::JOBS_PICKUP_LATENCY_SECONDS, &labels),
            run: metrics::histogram!(names::JOBS_RUN_DURATION_SECONDS, &labels),
        }
    }
}

/// Past this many task names the cache stops growing (the registry still records).
const MAX_CACHED_TASKS: usize = 256;

/// Each task name seen, with its series.
type TaskList = Vec<(Box<str>, Arc<TaskSeries>)>;

/// The jobs' metric handles of one [`JobClient`](super::JobClient) and its workers.
#[derive(Debug, Clone, Default)]
pub(crate) struct JobMetrics {
    tasks: Arc<Mutex<TaskList>>,
    /// When the queue depth was last sampled.
    depth_sampled: Arc<tokio::sync::Mutex<Option<Instant>>>,
}

impl JobMetrics {
    /// The series of `task`.
    pub(crate) fn task(&self, task: &str) -> Arc<TaskSeries> {
        let mut tasks = self.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, s)) = tasks.iter().find(|(name, _)| &**name == task) {
            return Arc::clone(s);
        }
        let series = Arc::new(TaskSeries::new(task));
        if tasks.len() < MAX_CACHED_TASKS {
            tasks.push((task.into(), Arc::clone(&series)));
        }
        series
    }

    /// Records the pickup latency of jobs just claimed at `now` (Unix ms): from when
    /// each was due (`run_at`) to now.
    pub(crate) fn claimed(&self, jobs: &[ClaimedJob], now: i64) {
        for c in jobs {
            #[allow(clippy::cast_precision_loss)]
            let seconds = (now - c.job.run_at).max(0) as f64 / 1000.0;
            self.task(&c.job.task).pickup.record(seconds);
        }
    }

    /// Samples the queue depth into its gauge, unless it was sampled less than
    /// [`DEPTH_EVERY`] ago. A failure keeps the last sample (and is logged).
    pub(crate) async fn sample_depth(&self, backend: &dyn QueueBackend) {
        let mut sampled = self.depth_sampled.lock().await;
        if sampled.is_some_and(|at| at.elapsed() < DEPTH_EVERY) {
            return;
        }
        match backend.queue_depth(super::backend::now_ms()).await {
            Ok(depth) => {
                for (state, n) in depth.by_state() {
                    #[allow(clippy::cast_precision_loss)]
                    metrics::gauge!(names::JOBS_QUEUE_DEPTH, names::LABEL_STATE => state).set(n as f64);
                }
            }
            Err(e) => tracing::warn!(error = %e, "sampling the job queue depth failed"),
        }
        *sampled = Some(Instant::now());
    }
}
