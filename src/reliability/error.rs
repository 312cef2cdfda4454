/// What can go wrong in the reliability layers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReliabilityError {
    /// The shared store (Redis) could not be reached or refused a command.
    #[error("rate limit store: {0}")]
    Store(String),
    /// A setting cannot work (a bad Redis URL, ...).
    #[error("rate limit configuration: {0}")]
    Config(String),
}

impl From<ReliabilityError> for crate::error::ApiError {
    fn from(e: ReliabilityError) -> Self {
        Self::internal(e)
    }
}
