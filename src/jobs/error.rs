use axum::http::StatusCode;

use crate::error::ApiError;

/// Why a job operation (enqueue, status, queue access) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// No task of this name is registered with the service.
    #[error("unknown task `{0}`: register it with ServiceBuilder::task")]
    UnknownTask(String),
    /// The payload could not be serialised to JSON.
    #[error("invalid payload: {0}")]
    InvalidPayload(String),
    /// The job queue is configured in a way that cannot work.
    #[error("job queue configuration: {0}")]
    Config(String),
    /// The queue's storage (database or Redis) failed.
    #[error("job queue storage: {0}")]
    Storage(String),
}

impl From<crate::db::DbError> for JobError {
    fn from(e: crate::db::DbError) -> Self {
        Self::Storage(e.to_string())
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::UnknownTask(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_task", e.to_string()),
            JobError::InvalidPayload(_) => ApiError::bad_request(e.to_string()),
            _ => ApiError::internal(e),
        }
    }
}

/// What a task handler returns on failure: any error converts into it with `?`.
///
/// It deliberately does not implement `std::error::Error`, so that
/// `impl<E: Error> From<E>` can exist (as with `anyhow::Error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError(String);

impl TaskError {
    /// A failure with this message (kept as the job's `error`).
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for TaskError {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}
