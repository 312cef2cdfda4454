use std::time::Duration;

/// Which queue engine carries the jobs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueEngine {
    /// Redis when `redis.url` is set, otherwise the service's own database.
    #[default]
    Auto,
    /// The service's database (table `kernel_jobs`).
    Sql,
    /// Redis (cargo feature `redis`; needs `redis.url`).
    Redis,
}

/// Background job settings (the spec's `JobSettings`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobSettings {
    /// Jobs a worker process runs at once (default 4).
    pub worker_count: usize,
    /// Blocking work inside jobs that one worker runs at once (default 8): the permits of
    /// `JobContext::run_blocking`, which runs it on tokio's blocking threads.
    pub thread_pool_size: usize,
    /// Attempts before a failing job is kept as dead (default 3).
    pub max_attempts: u32,
    /// Default job timeout in seconds (default 300).
    pub default_timeout_secs: u64,
    /// The queue engine (default: Redis if configured, else SQL).
    pub backend: QueueEngine,
    /// How long a claim holds a job without a heartbeat (default 30 s). A worker that
    /// dies loses its jobs to another worker after this long.
    pub lease: Duration,
    /// First retry delay; doubled per attempt, with up to 25 % jitter (default 1 s).
    pub backoff_base: Duration,
    /// Longest retry delay (default 1 h).
    pub backoff_max: Duration,
    /// How long an idle worker waits before polling again (default 500 ms).
    pub poll_interval: Duration,
    /// MySQL/MariaDB: how often an idle worker asks whether a job is due (default 50 ms),
    /// for jobs stored from other hosts; an enqueue on the same host wakes it at once.
    pub due_check_interval: Duration,
    /// Finished (done or dead) jobs are deleted after this long (default 7 days).
    pub retention: Duration,
    /// On SIGTERM, how long running jobs may take before they are handed back (default 30 s).
    pub shutdown_grace: Duration,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            worker_count: 4,
            thread_pool_size: 8,
            max_attempts: 3,
            default_timeout_secs: 300,
            backend: QueueEngine::Auto,
            lease: Duration::from_secs(30),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(3600),
            poll_interval: Duration::from_millis(500),
            due_check_interval: Duration::from_millis(50),
            retention: Duration::from_secs(7 * 24 * 3600),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

impl JobSettings {
    /// The delay before retry number `attempt` (1-based: the attempt that failed),
    /// without jitter: `backoff_base * 2^(attempt-1)`, capped at `backoff_max`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
        self.backoff_base.saturating_mul(factor).min(self.backoff_max)
    }

    /// [`backoff`](Self::backoff) plus up to 25 % random jitter, so that jobs that
    /// failed together do not retry together.
    pub fn backoff_with_jitter(&self, attempt: u32) -> Duration {
        let base = self.backoff(attempt);
        let jitter = base.mul_f64(crate::random::unit() * 0.25);
        (base + jitter).min(self.backoff_max.max(base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let s = JobSettings {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            ..JobSettings::default()
        };
        assert_eq!(s.backoff(1), Duration::from_millis(100));
        assert_eq!(s.backoff(2), Duration::from_millis(200));
        assert_eq!(s.backoff(4), Duration::from_millis(800));
        assert_eq!(s.backoff(5), Duration::from_secs(1));
        assert_eq!(s.backoff(99), Duration::from_secs(1));
        let j = s.backoff_with_jitter(2);
        assert!(j >= Duration::from_millis(200) && j <= Duration::from_millis(250), "{j:?}");
    }
}
