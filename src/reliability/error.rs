/// What can go wrong in the reliability layers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReliabilityError {
    /// The shared store (Redis) could not be reached (or its URL is malformed), or
    /// refused a command.
    #[error("reliability store: {0}")]
    Store(String),
}

impl From<ReliabilityError> for crate::error::ApiError {
    fn from(e: ReliabilityError) -> Self {
        Self::internal(e)
    }
}
