use http::StatusCode;

use crate::error::ApiError;

/// What can go wrong with stream leases.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The user holds as many open streams as allowed (the spec's `StreamLimitExceeded`).
    #[error("too many concurrent streams: at most {max} per user")]
    LimitExceeded {
        /// Streams allowed per user.
        max: u32,
    },
    /// A refreshed lease had expired (its place may have been taken).
    #[error("the stream lease expired before it was refreshed")]
    Expired,
    /// The lease store (Redis) could not be reached or refused a command.
    #[error("stream lease store: {0}")]
    Store(String),
}

impl From<StreamError> for ApiError {
    /// 429 `too_many_streams`; 503 `stream_leases_unavailable` when the store cannot
    /// be asked (streams are refused rather than let through uncounted); 500 else.
    fn from(e: StreamError) -> Self {
        match &e {
            StreamError::LimitExceeded { .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_streams", e.to_string())
            }
            StreamError::Store(_) => {
                tracing::warn!(error = %e, "stream refused: the lease store cannot be asked");
                ApiError::unavailable("stream_leases_unavailable", "Streams cannot be counted right now; try again")
            }
            _ => ApiError::internal(e),
        }
    }
}
