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
    /// The queue's database cannot be reached; a client gets 503 `database_unavailable`.
    #[error("job queue storage: database unavailable: {0}")]
    DatabaseUnavailable(String),
    /// The queue's Redis cannot be reached; a client gets 503 `jobs_unavailable`.
    #[error("job queue storage: redis unreachable: {0}")]
    Unavailable(String),
}

impl From<crate::db::DbError> for JobError {
    fn from(e: crate::db::DbError) -> Self {
        if e.is_unavailable() {
            return Self::DatabaseUnavailable(e.to_string());
        }
        Self::Storage(e.to_string())
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::UnknownTask(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_task", e.to_string()),
            JobError::InvalidPayload(_) => ApiError::bad_request(e.to_string()),
            JobError::DatabaseUnavailable(_) => crate::db::DbError::unavailable_answer(&e),
            JobError::Unavailable(_) => {
                tracing::warn!(error = %e, "job queue unavailable");
                ApiError::unavailable("jobs_unavailable", "The job queue is unavailable; try again shortly")
                    .with_header(http::header::RETRY_AFTER, http::HeaderValue::from_static("1"))
            }
            _ => ApiError::internal(e),
        }
    }
}

/// What a task handler returns on failure: any error converts into it with `?`.
///
/// Its message becomes the job's `error`. A message made with [`TaskError::new`] is
/// the task's own word to the job's user and is shown to them as written; an error
/// converted with `?` (a database's, a library's) or made with
/// [`TaskError::internal`] is internal: the job's user sees `internal error`, admins
/// and the log see the detail.
///
/// It deliberately does not implement `std::error::Error`, so that
/// `impl<E: Error> From<E>` can exist (as with `anyhow::Error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    message: String,
    internal: bool,
}

/// How the job's `error` of an internal failure starts; the job's user sees only
/// [`INTERNAL_ERROR`].
pub(crate) const INTERNAL_PREFIX: &str = "internal error: ";
/// What the job's user sees of an internal failure.
pub const INTERNAL_ERROR: &str = "internal error";

impl TaskError {
    /// A failure with this message, shown to the job's user as written.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), internal: false }
    }

    /// A failure whose message is for admins and the log only.
    pub fn internal(message: impl Into<String>) -> Self {
        Self { message: message.into(), internal: true }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the message is internal (hidden from the job's user).
    pub fn is_internal(&self) -> bool {
        self.internal
    }

    /// The job's `error` as stored: an internal message marked as such.
    pub(crate) fn into_stored(self) -> String {
        if self.internal {
            [INTERNAL_PREFIX, &self.message].concat()
        } else {
            self.message
        }
    }
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for TaskError {
    fn from(e: E) -> Self {
        Self::internal(e.to_string())
    }
}
