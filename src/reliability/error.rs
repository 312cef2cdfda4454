/// What can go wrong in the reliability layers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReliabilityError {
    /// The shared store (Redis) could not be reached (or its URL is malformed), or
    /// refused a command.
    #[error("reliability store: {0}")]
    Store(String),
    /// The SQL store's database (the service's own) cannot be reached: a request
    /// that would run without its key would only wait for the same database again,
    /// so it gets 503 `database_unavailable` at once.
    #[error("reliability store: {0}")]
    DatabaseUnavailable(crate::db::DbError),
}

impl From<ReliabilityError> for crate::error::ApiError {
    fn from(e: ReliabilityError) -> Self {
        match e {
            ReliabilityError::DatabaseUnavailable(cause) => crate::db::DbError::unavailable_answer(&cause),
            ReliabilityError::Store(_) => Self::internal(e),
        }
    }
}
