//! [`JobContext`]: what a running task knows about itself, and the kernel handles.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::db::Db;

use super::{JobClient, TaskError};

/// Passed to every task handler: the job's identity and the kernel's handles, so
/// tasks need no global state.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The job's id.
    pub job_id: String,
    /// The task name.
    pub task: String,
    /// This attempt, from 1.
    pub attempt: u32,
    /// Attempts before the job is dead.
    pub max_attempts: u32,
    /// The user the job runs for, if the enqueuer gave one.
    pub user_id: Option<String>,
    pub(crate) db: Db,
    pub(crate) jobs: JobClient,
    /// The worker's `thread_pool_size` permits for [`run_blocking`](Self::run_blocking).
    pub(crate) blocking: Arc<Semaphore>,
}

impl JobContext {
    /// The service's database (the spec's `get_db_connection()` in workers).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The job client, to enqueue follow-up jobs.
    pub fn jobs(&self) -> &JobClient {
        &self.jobs
    }

    /// Runs blocking work (CPU-heavy code, a synchronous library) on tokio's blocking
    /// threads, at most `JobSettings::thread_pool_size` at once per worker: a burst of
    /// such jobs neither stalls the worker's async threads nor floods the blocking pool.
    ///
    /// # Errors
    /// `f` panicked.
    pub async fn run_blocking<T, F>(&self, f: F) -> Result<T, TaskError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.blocking).acquire_owned().await.map_err(|_| TaskError::new("worker stopped"))?;
        // The permit moves into the thread: a job that timed out still holds it until
        // its blocking work really ends.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        })
        .await
        .map_err(|e| TaskError::internal(format!("blocking work failed: {e}")))
    }

    /// Whether this is the last attempt before the job is dead.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}
