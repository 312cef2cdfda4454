//! Reliability: the API rate limit and idempotency keys.
//!
//! Owns [`ReliabilitySettings`] and two layers of the stack, each with its store in
//! process, or in Redis when `redis_url` is set (so that every instance shares it):
//! [`RateLimitLayer`] counts each caller's requests on the routes under `api_prefix`
//! ([`RateLimiter`], [`RateLimitStore`]) with the `RateLimit-*` headers of
//! docs/CONTRACT.md; [`IdempotencyLayer`] keeps and replays the answers to requests with an
//! `Idempotency-Key` ([`IdempotencyStore`]). Errors: [`ReliabilityError`].

mod caller;
mod error;
mod idempotency;
mod idempotency_layer;
#[cfg(feature = "redis")]
mod idempotency_redis;
mod idempotency_sql;
mod layer;
mod rate_limit;
#[cfg(feature = "redis")]
mod rate_limit_redis;
mod settings;

pub use caller::Callers;
pub use error::ReliabilityError;
pub use idempotency::{
    Begin, IdempotencyStore, MemoryIdempotencyStore, Record, StoredResponse, DEFAULT_MAX_KEYS_PER_CALLER,
};
pub use idempotency_layer::{
    Idempotency, IdempotencyLayer, DEFAULT_MAX_RECORD_BYTES, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED,
};
#[cfg(feature = "redis")]
pub use idempotency_redis::RedisIdempotencyStore;
pub use idempotency_sql::{SqlIdempotencyStore, IDEMPOTENCY_TABLE};
pub use layer::{RateLimit, RateLimitLayer, RATELIMIT_LIMIT, RATELIMIT_REMAINING, RATELIMIT_RESET};
pub use rate_limit::{MemoryRateLimitStore, RateDecision, RateLimitStore, RateLimiter, WindowCount};
#[cfg(feature = "redis")]
pub use rate_limit_redis::RedisRateLimitStore;
pub use settings::ReliabilitySettings;

/// The reliability parts a service runs with (each `None` when turned off).
#[derive(Debug, Default)]
pub(crate) struct Parts {
    pub(crate) limiter: Option<RateLimiter>,
    pub(crate) idempotency: Option<std::sync::Arc<dyn IdempotencyStore>>,
}

impl Parts {
    /// Opens what `settings` turns on: in Redis when a Redis URL is set (and the
    /// `redis` feature is on), so every instance shares it; without Redis, the
    /// idempotency records live in `db` when it is a server database (PostgreSQL,
    /// MySQL: instances share it), in process on SQLite. The rate limit without
    /// Redis counts per instance.
    ///
    /// # Errors
    /// Redis cannot be reached, or its URL is malformed; the database refused the
    /// records' table.
    pub(crate) async fn open(
        r: &ReliabilitySettings,
        redis_url: Option<&str>,
        redis_prefix: &str,
        db: &crate::db::Db,
    ) -> Result<Self, ReliabilityError> {
        use std::sync::Arc;
        #[cfg(feature = "redis")]
        if let Some(url) = redis_url {
            let prefix = redis_prefix;
            let limiter = match r.rate_limit_enabled {
                true => Some(Arc::new(RedisRateLimitStore::connect(url, prefix).await?) as Arc<dyn RateLimitStore>),
                false => None,
            };
            let idempotency = match r.idempotency_enabled {
                true => {
                    let store = RedisIdempotencyStore::connect(url, prefix)
                        .await?
                        .with_max_keys_per_caller(r.idempotency_max_keys_per_caller)
                        .with_record_ttl(std::time::Duration::from_secs(r.idempotency_ttl_seconds));
                    Some(Arc::new(store) as Arc<dyn IdempotencyStore>)
                }
                false => None,
            };
            return Ok(Self { limiter: limiter.map(|store| Self::limiter(r, store)), idempotency });
        }
        let _ = (redis_url, redis_prefix);
        let limiter = r.rate_limit_enabled.then(|| Self::limiter(r, Arc::new(MemoryRateLimitStore::default())));
        let per_caller = r.idempotency_max_keys_per_caller;
        let idempotency: Option<Arc<dyn IdempotencyStore>> = match r.idempotency_enabled {
            false => None,
            // Instances sharing a server database agree through it.
            true if db.kind().shared_by_instances() => {
                let store = SqlIdempotencyStore::open(db.clone()).await?.with_max_keys_per_caller(per_caller);
                tracing::info!("idempotency records: the database (shared by every instance; no REDIS_URL)");
                Some(Arc::new(store))
            }
            true => Some(Arc::new(MemoryIdempotencyStore::default().with_max_keys_per_caller(per_caller))),
        };
        Ok(Self { limiter, idempotency })
    }

    fn limiter(r: &ReliabilitySettings, store: std::sync::Arc<dyn RateLimitStore>) -> RateLimiter {
        RateLimiter::new(r.rate_limit_requests, std::time::Duration::from_secs(r.rate_limit_window_seconds), store)
    }
}
