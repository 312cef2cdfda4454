//! Safe streaming: per-user stream leases that free themselves when an instance dies.
//!
//! Owns [`StreamingSettings`] and the lease limiter: [`StreamLeases`] (an extractor
//! in a kernel's routes) gives each open stream a [`StreamLease`], at most
//! `max_concurrent_per_user` per user, counted in a [`LeaseStore`]: in process, or in
//! Redis when `redis_url` is set, so that the limit holds across every instance.
//! Errors: [`StreamError`] (429 `too_many_streams` past the limit).
//!
//! ```no_run
//! use app_kernel::auth::CurrentUser;
//! use app_kernel::streaming::StreamLeases;
//! use app_kernel::ApiError;
//! use axum::body::Body;
//! use futures::StreamExt;
//!
//! async fn stream_chat(user: CurrentUser, leases: StreamLeases) -> Result<Body, ApiError> {
//!     let lease = leases.acquire(&user.id).await?.keep_alive();
//!     let chunks = futures::stream::iter(["hello ", "world"]).map(move |chunk| {
//!         let _held = &lease; // freed when the body is dropped: finished, or the client left
//!         Ok::<_, std::io::Error>(chunk)
//!     });
//!     Ok(Body::from_stream(chunks))
//! }
//! ```

mod error;
mod leases;
#[cfg(feature = "redis")]
mod leases_redis;
mod leases_sql;
mod settings;

pub use error::StreamError;
pub use leases::{LeaseStore, MemoryLeaseStore, StreamLease, StreamLeases};
#[cfg(feature = "redis")]
pub use leases_redis::RedisLeaseStore;
pub use leases_sql::{SqlLeaseStore, LEASES_TABLE, LEASE_USERS_TABLE};
pub use settings::StreamingSettings;

/// The stream leases for `settings`, opened once at start-up: in Redis when
/// `redis_url` is set (and the `redis` feature is on), so the per-user limit holds
/// across every instance; without Redis, in `db` when it is a server database
/// (PostgreSQL, MySQL: instances share it); in process on SQLite.
///
/// # Errors
/// Redis cannot be reached; the database refused the leases' tables.
pub async fn open(
    settings: &StreamingSettings,
    redis_url: Option<&str>,
    redis_prefix: &str,
    db: &crate::db::Db,
) -> Result<StreamLeases, StreamError> {
    let ttl = std::time::Duration::from_secs(settings.lease_ttl_seconds);
    let max = settings.max_concurrent_per_user;
    #[cfg(feature = "redis")]
    if let Some(url) = redis_url {
        let store = RedisLeaseStore::connect(url, redis_prefix).await?;
        return Ok(StreamLeases::new(max, ttl, std::sync::Arc::new(store)));
    }
    let _ = (redis_url, redis_prefix);
    if db.kind().shared_by_instances() {
        tracing::info!("stream leases: the database (shared by every instance; no REDIS_URL)");
        return Ok(StreamLeases::new(max, ttl, std::sync::Arc::new(SqlLeaseStore::open(db.clone()).await?)));
    }
    Ok(StreamLeases::new(max, ttl, std::sync::Arc::new(MemoryLeaseStore::default())))
}
