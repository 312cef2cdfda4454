//! [`JobContext`]: what a running task knows about itself, and the kernel handles.

use crate::db::Db;

use super::JobClient;

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

    /// Whether this is the last attempt before the job is dead.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}
