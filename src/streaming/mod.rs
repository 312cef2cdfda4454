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
mod settings;

pub use error::StreamError;
pub use leases::{LeaseStore, MemoryLeaseStore, StreamLease, StreamLeases};
#[cfg(feature = "redis")]
pub use leases_redis::RedisLeaseStore;
pub use settings::StreamingSettings;
