//! What the admins' jobs view asks of a queue engine: a filtered page of jobs, and
//! the outcome of a retry or a cancel.
//!
//! Every engine lists jobs newest first by id (UUID v7 ids sort by creation time) and
//! pages on the last id seen, so a page never repeats or skips a job that existed when
//! the first page was read, whatever is enqueued meanwhile. A retry or a cancel is
//! one atomic step on every engine, tested against the job's status in that step: a
//! job a worker holds (`running`) is refused, never changed under the worker.

use super::backend::{JobRecord, JobStatus};

/// Jobs per page when the caller names no limit.
pub const DEFAULT_PAGE: usize = 50;
/// The most jobs one page may hold.
pub const MAX_PAGE: usize = 200;

/// Which jobs to list (the default: every job, [`DEFAULT_PAGE`] per page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFilter {
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    /// Only jobs of this task.
    pub task: Option<String>,
    /// Only jobs older than this id (the `next` of the previous page).
    pub before: Option<String>,
    /// At most this many jobs (engines clamp it to 1..=[`MAX_PAGE`]).
    pub limit: usize,
}

impl Default for JobFilter {
    fn default() -> Self {
        Self { status: None, task: None, before: None, limit: DEFAULT_PAGE }
    }
}

impl JobFilter {
    /// The limit, clamped to 1..=[`MAX_PAGE`].
    pub fn page_size(&self) -> usize {
        self.limit.clamp(1, MAX_PAGE)
    }
}

/// One page of jobs, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobPage {
    /// The jobs.
    pub jobs: Vec<JobRecord>,
    /// Where the next page starts (pass it as [`JobFilter::before`]); `None` on the last.
    pub next: Option<String>,
}

/// What an admin's retry or cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobChange {
    /// Done: the job is in its new status.
    Changed,
    /// No such job.
    NotFound,
    /// Refused: the job is in this status, from which the change is not allowed.
    Refused(JobStatus),
}
