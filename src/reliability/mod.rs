//! Reliability: the API rate limit (and, to come, idempotency).
//!
//! Owns [`ReliabilitySettings`] and the rate limit: [`RateLimiter`] counts each
//! caller's requests in a [`RateLimitStore`] (in process, or Redis when `redis_url`
//! is set, so that every instance counts together), and [`RateLimitLayer`] applies it
//! to the routes under `api_prefix` with the `RateLimit-*` headers of CONTRACT.md.
//! Errors: [`ReliabilityError`].

mod error;
mod layer;
mod rate_limit;
#[cfg(feature = "redis")]
mod rate_limit_redis;
mod settings;

pub use error::ReliabilityError;
pub use layer::{RateLimit, RateLimitLayer, RATELIMIT_LIMIT, RATELIMIT_REMAINING, RATELIMIT_RESET};
pub use rate_limit::{MemoryRateLimitStore, RateDecision, RateLimitStore, RateLimiter, WindowCount};
#[cfg(feature = "redis")]
pub use rate_limit_redis::RedisRateLimitStore;
pub use settings::ReliabilitySettings;
