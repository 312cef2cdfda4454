/// Background job settings (the spec's `JobSettings`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JobSettings {
    /// Jobs a worker process runs at once (default 4).
    pub worker_count: usize,
    /// Threads for blocking work inside jobs (default 8).
    pub thread_pool_size: usize,
    /// Attempts before a failing job is kept as dead (default 3).
    pub max_attempts: u32,
    /// Default job timeout in seconds (default 300).
    pub default_timeout_secs: u64,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self { worker_count: 4, thread_pool_size: 8, max_attempts: 3, default_timeout_secs: 300 }
    }
}
